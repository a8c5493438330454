"""``conformance run --parallel N``: check the providers in N processes and merge their reports.

Each process is ``python -m conformance run`` over a subset of the providers (:func:`assign`: balanced by a
static weight per provider, deterministic), with the run's seed and options, a ``--json`` report in a
temporary folder and its progress as JSON lines on its stdout (hidden flag ``--parallel-worker``). The
parent merges the reports (:meth:`conformance.results.Results.absorb`) and writes every report format with
the exit code of a serial run.

- **Same verdicts.** Every seed of a provider derives from the run seed and the provider id
  (:func:`conformance.context.sub_seed`), never from the process or the other providers, and every process
  gets the same ``--seed``.
- **Target.** Without ``--base-url`` each process starts its own embedded mock (for its providers); with
  ``--base-url`` every process checks the same target.
- **Budget.** Only a free target (our mock, or ``--free-target``) can hold several providers; a paid target
  is one provider and so one process, which holds the whole budget. A budget is never divided or multiplied
  (:func:`check_budget` refuses the combination should a paid target ever hold several providers).
- **Stopping.** ``--max-time`` is one deadline (wall clock) shared by every process. SIGINT/SIGTERM are
  forwarded to every process, which write their reports within ``STOP_GRACE``; the parent then merges
  what it got. A process that exits without a report is a suite error (``internal``) with its last
  output; a process that outlives the deadline or a signal by a margin is killed (never a hang). A process
  whose parent died sees its stdin close and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import specs

from .results import Results

#: seconds a process gets, after a forwarded signal, beyond its own STOP_GRACE to write its report
SIGNAL_MARGIN = 1.5
#: seconds a process gets after the shared --max-time deadline (plus STOP_GRACE) before it is killed
DEADLINE_MARGIN = 8.0
#: suite errors every process reports on its own when the run stops; the parent reports them once
STOP_ERRORS = ("max_time", "interrupted")


def weight(contract: specs.Contract) -> int:
    """Static cost estimate of checking one provider: its operations (each gets ``--examples`` generated
    cases) plus 2 for the fixture jobs and the lifecycle state machine. Unitless; only comparisons matter."""
    return len(contract.operations()) + 2


def assign(providers: list[str], processes: int, weights: dict[str, int] | None = None) -> list[list[str]]:
    """Split ``providers`` over ``processes`` subsets, balanced and deterministic.

    Longest processing time first: providers by decreasing weight (ties: their order in ``providers``), each
    to the subset with the least weight so far (ties: the lowest index). Each subset keeps the order of
    ``providers``; empty subsets are dropped (``processes`` is cut to ``len(providers)``).

    Args:
        providers: provider ids, in report order.
        processes: number of processes wanted (>= 1).
        weights: ``{provider: weight}``; default :func:`weight` of each provider's contract.

    Raises:
        ValueError: ``processes`` < 1.
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, not {processes}")
    if weights is None:
        weights = {pid: weight(specs.load(pid)) for pid in providers}
    n = min(processes, len(providers))
    loads = [0] * n
    chosen: list[set[str]] = [set() for _ in range(n)]
    order = sorted(range(len(providers)), key=lambda i: (-weights[providers[i]], i))
    for i in order:
        k = min(range(n), key=lambda j: (loads[j], j))
        loads[k] += weights[providers[i]]
        chosen[k].add(providers[i])
    return [[p for p in providers if p in c] for c in chosen if c]


def check_budget(target_free: bool, budget_given: bool, processes: int) -> str | None:
    """The one-line refusal of ``--parallel`` > 1 with a spend budget on a paid target, else None.

    A budget bounds the whole run; it is never split or repeated across processes. A paid target (not our
    mock, no ``--free-target``) takes exactly one provider, so this refusal guards an impossible case."""
    if processes > 1 and budget_given and not target_free:
        return ("--parallel > 1 with a spend budget needs a free target (a paid target is checked in one process, "
                "which holds the whole budget): use --parallel 1")
    return None


def _num(value: float) -> str:
    return repr(float(value))


#: The ``conformance run`` options that a run passes on unchanged (to its worker processes, into its re-run
#: commands): ``(flag, argparse dest, kind)``, kind ``flag`` (store_true), ``many`` (repeatable) or ``value``.
#: One table, so a new option of the target, budget or generation is passed on everywhere or nowhere.
RUN_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--base-url", "base_url", "value"), ("--host-url", "host_url", "many"), ("--api-key-env", "api_key_env", "many"),
    ("--only-target-hosts", "only_target_hosts", "flag"), ("--free-target", "free_target", "flag"),
    ("--allow-spend", "allow_spend", "flag"), ("--speed", "speed", "value"), ("--timeout", "timeout", "value"),
    ("--job-timeout", "job_timeout", "value"), ("--max-paid-jobs", "max_paid_jobs", "value"),
    ("--max-video-seconds", "max_video_seconds", "value"), ("--max-spend-usd", "max_spend_usd", "value"),
    ("--usd-per-second", "usd_per_second", "value"), ("--examples", "examples", "value"),
    ("--paid-examples", "paid_examples", "value"), ("--lifecycle-runs", "lifecycle_runs", "value"),
    ("--lifecycle-steps", "lifecycle_steps", "value"), ("--workers", "workers", "value"),
)


def run_options(args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> list[str]:
    """The arguments that repeat ``args``' :data:`RUN_OPTIONS` (target, budget, timing, generation), leaving
    out unset ones and those equal to ``defaults`` (argparse dest -> the parser's default; None: keep every set
    value). Numbers keep their exact value (floats as ``repr``)."""
    out: list[str] = []
    for flag, dest, kind in RUN_OPTIONS:
        value = getattr(args, dest, None)
        if value is None or value is False or value == [] or (defaults is not None and value == defaults.get(dest)):
            continue
        if kind == "flag":
            out.append(flag)
        elif kind == "many":
            for v in value:
                out += [flag, str(v)]
        else:
            out += [flag, _num(value) if isinstance(value, float) else str(value)]
    return out


def worker_argv(args: argparse.Namespace, providers: list[str], seed: int, report: str,
                deadline: float | None) -> list[str]:
    """The ``conformance`` arguments of the process that checks ``providers``: the run's options
    (:func:`run_options`), its seed, ``--json report`` and the hidden worker flags (``deadline``: wall-clock
    epoch seconds of ``--max-time``, or None). Report flags other than its JSON are not passed (the parent
    writes them)."""
    out = ["run", "--parallel-worker", "--seed", str(seed), "--json", report]
    for pid in providers:
        out += ["--provider", pid]
    for name in args.check:
        out += ["--check", name]
    out += run_options(args)
    for v in args.source_video_id:  # only this process's providers, keyed (an unkeyed id names the one provider)
        pid, sep, vid = v.partition("=")
        if not sep:
            pid, vid = providers[0], v
        if pid in providers:
            out += ["--source-video-id", f"{pid}={vid}"]
    if args.no_progress:
        out.append("--no-progress")
    if deadline is not None:
        out += ["--parallel-deadline", repr(deadline)]
    return out


def worker_command(argv: list[str]) -> list[str]:
    """The command line of one process: this interpreter running ``python -m conformance`` with ``argv``."""
    return [sys.executable, "-m", "conformance", *argv]


def _env() -> dict[str, str]:
    """The environment of a process: the parent's (API keys stay in the environment, never on a command
    line), with the folder holding this package first on PYTHONPATH."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Worker:
    """One process of a parallel run: its index (1-based), providers, process, report and stderr files."""

    index: int
    providers: list[str]
    proc: subprocess.Popen
    report: Path
    stderr: Path
    reader: threading.Thread | None = None
    signalled: bool = False
    killed: str | None = None  # why the parent killed it, if it did
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    def last_output(self, limit: int = 1500) -> str:
        """The tail of the process's stderr (``limit`` characters), '' when unreadable."""
        try:
            text = self.stderr.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text.strip()[-limit:]


def _read_events(w: Worker, progress: Callable[[str, str], None],
                 set_counts: Callable[[str, int, int], None]) -> None:
    """Relay a process's progress events (JSON lines ``{"provider", "phase"?, "ok", "bad"}``) until EOF."""
    assert w.proc.stdout is not None
    for line in w.proc.stdout:
        try:
            ev = json.loads(line)
            pid = ev["provider"]
        except (ValueError, TypeError, KeyError):
            continue  # not an event (a library printing to stdout)
        if "ok" in ev:
            set_counts(pid, int(ev["ok"]), int(ev.get("bad", 0)))
        if ev.get("phase"):
            progress(pid, str(ev["phase"]))


def _start(index: int, argv: list[str], providers: list[str], folder: Path, progress, set_counts) -> Worker:
    report = folder / f"worker-{index}.json"
    stderr = folder / f"worker-{index}.stderr"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(worker_command(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                env=_env(), text=True, encoding="utf-8", errors="replace",
                                start_new_session=True)  # signals come from the parent only, once
    w = Worker(index, providers, proc, report, stderr)
    w.reader = threading.Thread(target=_read_events, args=(w, progress, set_counts), daemon=True,
                                name=f"conformance-worker-{index}")
    w.reader.start()
    return w


def _wait(workers: list[Worker], got: list[str], deadline_mono: float | None, stop_grace: float) -> None:
    """Wait for every process; forward the first signal in ``got`` to each; kill a process that outlives a
    signal by ``stop_grace + SIGNAL_MARGIN`` or the deadline by ``stop_grace + DEADLINE_MARGIN`` seconds."""
    forwarded = False
    kill_at: float | None = None
    why = ""
    while True:
        alive = [w for w in workers if w.proc.poll() is None]
        now = time.monotonic()
        for w in workers:
            if w.ended is None and w.proc.returncode is not None:
                w.ended = now
        if not alive:
            return
        if got and not forwarded:
            sig = signal.SIGINT if got[0] == "SIGINT" else signal.SIGTERM
            for w in alive:
                try:
                    w.proc.send_signal(sig)
                    w.signalled = True
                except OSError:
                    pass
            forwarded = True
            kill_at = now + stop_grace + SIGNAL_MARGIN
            why = f"did not end within {stop_grace + SIGNAL_MARGIN:g} s of {got[0]}"
        if deadline_mono is not None and kill_at is None and now >= deadline_mono:
            kill_at = deadline_mono + stop_grace + DEADLINE_MARGIN
            why = f"did not end within {stop_grace + DEADLINE_MARGIN:g} s after --max-time"
        if kill_at is not None and now >= kill_at:
            for w in alive:
                w.killed = why
                try:
                    w.proc.kill()
                except OSError:
                    pass
            for w in alive:
                try:
                    w.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
                w.ended = time.monotonic()
            return
        time.sleep(0.05)


def _install(got: list[str]) -> dict:
    previous: dict = {}
    if threading.current_thread() is not threading.main_thread():
        return previous

    def handler(signum, frame) -> None:
        got.append(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous


def run_processes(args: argparse.Namespace, results: Results, groups: list[list[str]], seed: int, *,
                  target: dict[str, Any], budget, progress: Callable[[str, str], None],
                  set_counts: Callable[[str, int, int], None], stop_grace: float) -> str | None:
    """Check ``groups`` (one provider list per process) in parallel processes and merge their reports into
    ``results`` (created by the caller with every provider, in report order).

    Args:
        args: the parsed ``conformance run`` options (forwarded to every process).
        results: the run's :class:`Results`; its target, spend, stop reason, ``parallel`` section, end time
            and suite errors (crashed processes, the run's stop) are set here.
        groups: the providers of each process (:func:`assign`).
        seed: the run's seed (every process gets it).
        target: ``Target.describe()`` of a ``--base-url`` target, or {} for the embedded mock (each process
            starts its own; the merged description names them).
        budget: the run's :class:`conformance.spend.Budget` (the whole run's; reported with the sum of what
            the processes used).
        progress, set_counts: the live display's ``(provider, phase)`` and ``(provider, passes, failures)``.
        stop_grace: seconds a process gets to wind down after a stop (the CLI's ``STOP_GRACE``).

    Returns:
        The name of the signal that interrupted the run (``"SIGINT"``/``"SIGTERM"``), or None.
    """
    from .spend import merge_ledgers

    deadline_wall = time.time() + args.max_time if args.max_time else None
    deadline_mono = time.monotonic() + args.max_time if args.max_time else None
    got: list[str] = []
    previous = _install(got)
    workers: list[Worker] = []
    parts: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="conformance-parallel-") as tmp:
            folder = Path(tmp)
            for i, group in enumerate(groups, 1):
                if got:
                    break  # interrupted while starting: the rest never runs
                argv = worker_argv(args, group, seed, str(folder / f"worker-{i}.json"), deadline_wall)
                workers.append(_start(i, argv, group, folder, progress, set_counts))
            _wait(workers, got, deadline_mono, stop_grace)
            for w in workers:
                if w.reader is not None:
                    w.reader.join(2)
                if w.proc.stdin is not None:
                    w.proc.stdin.close()
                if w.proc.stdout is not None:
                    w.proc.stdout.close()
                parts.append(_collect(w, results, got))
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
    reasons = {p.get("stopped") for p in parts if p}
    if not got and ("max_time" in reasons or (deadline_mono is not None and time.monotonic() >= deadline_mono)):
        from .runner import _STOPPED

        results.stopped = "max_time"
        results.suite_error("max_time", None, _STOPPED["max_time"].format(t=args.max_time))
        for o in results.outcomes():
            if o.status == "skipped" and (o.skip_reason is None or o.skip_reason.startswith("not reached")):
                o.skip_reason = o.skip_reason or "not reached: the run stopped early (max_time)"
    results.target = _merged_target(target, [p.get("target") or {} for p in parts if p], len(groups), args)
    for note in results.target.get("notes") or []:
        pid = note.split(":")[0]
        if note not in results.notes.get(pid, []):
            results.note(pid, note)
    results.spend = merge_ledgers([p.get("spend") or {} for p in parts if p], budget)
    results.parallel = {
        "processes": len(groups), "requested": args.parallel,
        "assignment": groups,
        "process_wall_seconds": [round((w.ended or time.monotonic()) - w.started, 3) for w in workers],
        "exit_codes": [w.proc.returncode for w in workers],
        "budget": ("none used: the target is free" if results.target.get("free") else
                   "whole: a paid target is checked in one process, which holds the whole budget"),
    }
    results.finished = time.monotonic()
    return got[0] if got else None


def _collect(w: Worker, results: Results, got: list[str]) -> dict[str, Any]:
    """Merge one process's report into ``results``; a process without a report is a suite error (unless the
    run was interrupted before it could write one). Returns its report ({} when none)."""
    part: dict[str, Any] = {}
    problem = ""
    try:
        part = json.loads(w.report.read_text(encoding="utf-8"))
        part["suite_errors"] = [e for e in part["suite_errors"] if e.get("name") not in STOP_ERRORS]
        results.absorb(part)
    except FileNotFoundError:
        problem = "no report"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = f"an unreadable report ({type(exc).__name__}: {exc})"
        part = {}
    if not problem:
        return part
    who = f"worker process {w.index} ({', '.join(w.providers)})"
    if w.killed:
        first = f"{who} {w.killed}; killed"
    elif got and w.signalled:
        return {}  # stopped by the forwarded signal before it could write a report: its checks were not reached
    else:
        first = f"{who} crashed: exit code {w.proc.returncode}, {problem}"
    tail = w.last_output()
    last = tail.splitlines()[-1] if tail else "(no output)"
    results.suite_error("internal", None, f"{first}: {last}\n{tail}")
    for pid in w.providers:
        results.skip_all(pid, f"not reached: {who} ended without a report (exit code {w.proc.returncode})")
    return {}


def _merged_target(parent: dict[str, Any], parts: list[dict[str, Any]], processes: int,
                   args: argparse.Namespace) -> dict[str, Any]:
    """The target section of the merged report: the ``--base-url`` target's own description, or for the
    embedded mock one entry naming one mock per process, with every process's hosts and notes."""
    if parent:
        out = dict(parent)
    else:
        from .target import DEFAULT_SPEED

        speed = args.speed if args.speed is not None else DEFAULT_SPEED
        out = {"kind": "embedded", "label": f"embedded mocks, one per process ({processes} processes, speed {speed:g})",
               "free": True, "ours": True, "free_target": False, "hosts": {}, "notes": []}
    hosts = dict(out.get("hosts") or {})
    notes = list(out.get("notes") or [])
    for p in parts:
        if not parent:
            hosts.update(p.get("hosts") or {})
        notes += [n for n in p.get("notes") or [] if n not in notes]
    out["hosts"] = dict(sorted(hosts.items()))
    out["notes"] = notes
    return out
