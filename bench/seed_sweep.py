"""False-failure rate of the main job (``conformance run``) against our own mock, over many random seeds.

Every run here checks our own mock, so every run must pass: any run that exits non-zero (a failing check,
a suite error, a crash, a usage error, or a run that does not finish within ``--run-timeout``: a "hang") is a
*false failure* of the suite, or a bug of the mock. The target rate is 0.

The sweep runs ``conformance run --seed S`` with seeds drawn from :class:`random.SystemRandom` (each one
printed), ``--runs`` times per provider (``--provider ID`` for every id of ``specs.provider_ids()``) and
``--all-runs`` times with ``--all``, against each kind of target:

- ``embedded``: no ``--base-url``; the suite starts the mock in-process (its default speed, 10);
- ``served``: one ``mockserver serve --port 0`` process at the mock's default speed (1), shared by every
  run of that kind (``--base-url http://127.0.0.1:PORT``);
- ``served-fast``: the same with ``mockserver serve --port 0 --speed 10``.

Runs go ``--jobs`` at a time (default: the number of CPUs), so runs of a served kind hit one shared mock
concurrently, which is part of what is measured. Each run writes ``--json`` to a temporary file; a failing
run is reported with its failing checks (``outcomes[*]`` with status ``failed``), its ``internal_errors``,
any suite-error/stop fields the report names (read tolerantly: the report format grows), the tail of its
stderr, and the exact command that reproduces it (for a served target, with the ``mockserver serve``
command of the same speed to start first; note that the sweep's shared mock also served concurrent runs).

Usage (from the repository root):

    .venv/bin/python bench/seed_sweep.py --runs 50          # the issue's acceptance: 3 targets x 6 providers
                                                            # x 50 + 3 x 2 --all = 906 runs
    .venv/bin/python bench/seed_sweep.py --runs 3 --all-runs 1 --jobs 2 --json reports/sweep.json
    .venv/bin/python bench/seed_sweep.py --providers fal,openai --targets served-fast --runs 20 \\
        --extra "--examples 10" --max-minutes 15

Prints one line per finished run, then a summary: runs per target x provider, false failures (count and
rate, overall, per provider and per target), exit codes seen, every failing run with its failing checks and
reproduce command, median / p95 / max wall time per target and the slowest run.

Exit code: 0 no false failure, 1 at least one (or a served mock failed to start), 2 bad arguments (one
line), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_KINDS = ("embedded", "served", "served-fast")
#: ``mockserver serve --speed`` per served kind (None: the mock's default speed).
SERVED_SPEED: dict[str, float | None] = {"served": None, "served-fast": 10.0}
ALL = "--all"
#: Flags the sweep sets itself; --extra may not contain them.
RESERVED_FLAGS = ("--provider", "--all", "--seed", "--base-url", "--json", "--speed", "--no-progress",
                  "--dry-run")
STDERR_TAIL_LINES = 12
MOCK_NAME = "sora-remix-mock"


class UsageError(Exception):
    """A bad argument; ``str(err)`` is the one line printed before exit code 2."""


def _display_python() -> str:
    """The interpreter as a user would type it from the repository root (``.venv/bin/python``)."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(ROOT))
    except ValueError:
        return str(exe)


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- served mocks --------------------------------------------------------------------------------------------

@dataclass
class ServedMock:
    """A ``mockserver serve`` process started by the sweep (one per served target kind).

    Attributes:
        kind: the target kind (``served`` or ``served-fast``).
        speed: the ``--speed`` given (None: the mock's default).
        url: root URL, e.g. ``http://127.0.0.1:41234`` (the value of ``--base-url`` for the runs).
        port: its port.
        proc: the process.
        log_path: where its stderr goes.
        health: the ``/__mock/health`` document read at start.
        exit_code: set by :func:`stop_served_mock`.
    """

    kind: str
    speed: float | None
    url: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    health: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    died_early: bool = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def serve_command(self) -> str:
        """The command starting an equivalent mock on the same port (run it before the reproduce command)."""
        argv = [_display_python(), "-m", "mockserver", "serve", "--port", str(self.port)]
        if self.speed is not None:
            argv += ["--speed", f"{self.speed:g}"]
        return shlex.join(argv)

    def log_tail(self, lines: int = STDERR_TAIL_LINES) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []


def start_served_mock(kind: str, speed: float | None, log_dir: Path, timeout: float = 60.0) -> ServedMock:
    """Start ``python -m mockserver serve --port 0 [--speed X]`` on 127.0.0.1 and wait until it is healthy.

    The port is parsed from the first line the server prints (``mockserver http://127.0.0.1:PORT (...)``),
    then ``GET /__mock/health`` is polled until it answers as our mock. Its stderr goes to
    ``log_dir/<kind>.log``; its stdout keeps being drained by a daemon thread.

    Raises:
        RuntimeError: the server exited, printed no URL, or did not become healthy within ``timeout``.
    """
    argv = [sys.executable, "-m", "mockserver", "serve", "--host", "127.0.0.1", "--port", "0"]
    if speed is not None:
        argv += ["--speed", f"{speed:g}"]
    log_path = log_dir / f"{kind}.log"
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                text=True, start_new_session=True, env=os.environ.copy())
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, name=f"mock-{kind}-stdout", daemon=True).start()
    deadline = time.monotonic() + timeout
    url = None
    try:
        while url is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{kind} mock printed no URL within {timeout:g} s")
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                tail = " | ".join(log_path.read_text(errors="replace").splitlines()[-3:])
                raise RuntimeError(f"{kind} mock exited with code {proc.wait()} before serving: {tail}")
            m = re.match(r"mockserver (https?://[^\s/]+:(\d+))", line.strip())
            if m:
                url, port = m.group(1), int(m.group(2))
        health = None
        while health is None:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} mock exited with code {proc.returncode} before it was healthy")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} mock at {url} not healthy within {timeout:g} s")
            try:
                with _no_proxy_opener().open(url + "/__mock/health", timeout=2) as resp:
                    doc = json.loads(resp.read())
                if isinstance(doc, dict) and doc.get("mock") == MOCK_NAME:
                    health = doc
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.1)
    except BaseException:
        _terminate(proc, grace=5)
        raise
    return ServedMock(kind=kind, speed=speed, url=url, port=port, proc=proc, log_path=log_path, health=health)


def _terminate(proc: subprocess.Popen, grace: float = 10.0) -> int | None:
    """SIGTERM the process group of ``proc`` (a session leader we started), then SIGKILL after ``grace``."""
    if proc.poll() is not None:
        return proc.returncode
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


def stop_served_mock(mock: ServedMock, grace: float = 10.0) -> int | None:
    """Stop a served mock cleanly (SIGTERM, then SIGKILL after ``grace`` seconds); returns its exit code."""
    mock.died_early = mock.died_early or not mock.alive()
    mock.exit_code = _terminate(mock.proc, grace)
    return mock.exit_code


# -- one conformance run -------------------------------------------------------------------------------------

@dataclass
class RunSpec:
    """One scheduled run: ``provider`` is a provider id or ``"--all"``."""

    index: int
    target: str
    provider: str
    seed: int


@dataclass
class RunResult:
    """What one run did.

    ``kind`` classifies it: ``ok`` (exit 0), ``fail`` (exit 1: conformance failures), ``usage`` (exit 2),
    ``suite-error`` (exit 3: suite error / incomplete), ``hang`` (killed after the run timeout), ``crash``
    (any other exit code, a signal, or no exit at all). Every kind but ``ok`` is a false failure.
    """

    index: int
    target: str
    provider: str
    seed: int
    argv: list[str]
    reproduce: str
    mock_command: str | None
    exit_code: int | None
    kind: str
    wall: float
    failing: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    report_found: bool = False

    @property
    def failed(self) -> bool:
        return self.kind != "ok"


def conformance_argv(provider: str, seed: int, base_url: str | None, extra: list[str]) -> list[str]:
    """The ``conformance run`` arguments of one run (without the interpreter, --no-progress and --json)."""
    argv = ["run", *([ALL] if provider == ALL else ["--provider", provider]), "--seed", str(seed)]
    if base_url:
        argv += ["--base-url", base_url]
    return argv + list(extra)


def classify(exit_code: int | None, timed_out: bool) -> str:
    """Kind of a run from its exit code (see :class:`RunResult`)."""
    if timed_out:
        return "hang"
    return {0: "ok", 1: "fail", 2: "usage", 3: "suite-error"}.get(exit_code, "crash")


def _short(value: Any, limit: int = 300) -> str:
    if isinstance(value, dict):
        named = [f"{k}={value[k]}" for k in ("name", "provider", "check", "operation") if value.get(k)]
        msg = value.get("message") or value.get("error") or value.get("detail")
        if named or msg:
            text = " ".join(named) + (f": {msg}" if msg else "")
        else:
            text = json.dumps(value, default=str)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failures_from_report(data: Any) -> tuple[list[str], list[str], list[str]]:
    """Read what failed from a ``conformance run --json`` report, tolerating format changes.

    Returns ``(failing, details, anomalies)``: ``failing`` names each failing check
    (``provider/check``), internal error and suite error in one short label; ``details`` has one line per
    failing check (count, operation, message, status, the check's own rerun command) and per error;
    ``anomalies`` lists what looked odd in the report itself.
    """
    failing: list[str] = []
    details: list[str] = []
    anomalies: list[str] = []
    if not isinstance(data, dict):
        return failing, details, [f"the JSON report is a {type(data).__name__}, not an object"]
    for o in data.get("outcomes") or []:
        if not isinstance(o, dict):
            continue
        status = o.get("status")
        nfail = o.get("failed") if isinstance(o.get("failed"), int) else 0
        if status in ("passed", "skipped", "noted") and not nfail:
            continue
        if status is None and not nfail:
            continue
        label = f"{o.get('provider', '?')}/{o.get('check', '?')}"
        if status not in (None, "failed"):
            label += f" [{status}]"
        failing.append(label)
        total = nfail + (o.get("passed") if isinstance(o.get("passed"), int) else 0)
        line = f"{label}: {nfail} failing of {total}"
        first = (o.get("failures") or [None])[0]
        if isinstance(first, dict):
            if first.get("operation"):
                line += f" · {first['operation']}"
            if first.get("status") is not None:
                line += f" · HTTP {first['status']}"
            line += f" · {_short(first.get('message', ''))}"
            if first.get("rerun"):
                line += f" · rerun: {first['rerun']}"
            elif first.get("curl"):
                line += f" · curl: {_short(first['curl'], 400)}"
        details.append(line)
    for err in data.get("internal_errors") or []:
        failing.append("internal_error")
        details.append(f"internal error: {_short(err)}")
    for key, value in data.items():
        k = key.lower()
        if key in ("internal_errors", "outcomes") or not value:
            continue
        if "error" in k or k in ("stopped", "incomplete", "aborted", "interrupted"):
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict) and item.get("name"):
                    failing.append(f"{key}:{item['name']}")
                else:
                    failing.append(key if isinstance(item, (dict, list)) else f"{key}:{_short(item, 40)}")
                details.append(f"{key}: {_short(item)}")
    if data.get("ok") is False and not failing:
        anomalies.append("report says ok=false but names no failing check or error")
    return failing, details, anomalies


def run_one(spec: RunSpec, base_url: str | None, extra: list[str], timeout: float, workdir: Path,
            mock_command: str | None = None, active: set | None = None,
            lock: threading.Lock | None = None) -> RunResult:
    """Run ``conformance run`` once (``--no-progress --json <tmp>``) with a timeout and classify it.

    The process runs in its own session; on timeout its whole process group gets SIGTERM, then SIGKILL.
    ``active``/``lock`` (optional) track the live process so that an interrupted sweep can stop it.
    Never raises for a failing run: everything lands in the returned :class:`RunResult`.
    """
    args = conformance_argv(spec.provider, spec.seed, base_url, extra)
    report = workdir / f"run-{spec.index:05d}.json"
    argv = [sys.executable, "-m", "conformance", *args, "--no-progress", "--json", str(report)]
    reproduce = shlex.join([_display_python(), "-m", "conformance", *args])
    t0 = time.monotonic()
    timed_out = False
    out = err = ""
    try:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, errors="replace",
                                start_new_session=True, env=os.environ.copy())
    except OSError as exc:
        return RunResult(spec.index, spec.target, spec.provider, spec.seed, argv, reproduce, mock_command,
                         None, "crash", 0.0, failing=["spawn"], details=[f"cannot start: {exc}"])
    if active is not None and lock is not None:
        with lock:
            active.add(proc)
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _terminate(proc, grace=5)
            try:
                out, err = proc.communicate(timeout=10)
            except (subprocess.TimeoutExpired, ValueError):
                out = err = ""
    finally:
        if active is not None and lock is not None:
            with lock:
                active.discard(proc)
    wall = time.monotonic() - t0
    code = None if timed_out else proc.returncode
    kind = classify(code, timed_out)
    result = RunResult(spec.index, spec.target, spec.provider, spec.seed, argv, reproduce, mock_command, code,
                       kind, wall)
    data = None
    if report.exists():
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
            result.report_found = True
        except (OSError, ValueError) as exc:
            result.anomalies.append(f"unreadable JSON report: {exc}")
        try:
            report.unlink()
        except OSError:
            pass
    if data is not None:
        result.failing, result.details, anomalies = failures_from_report(data)
        result.anomalies += anomalies
    if timed_out:
        result.failing.insert(0, f"hang (no exit within {timeout:g} s)")
    if code == 0 and result.failing:
        result.anomalies.append("exit code 0 but the report names failures")
    if code == 0 and data is None:
        result.anomalies.append("exit code 0 but no JSON report")
    if kind != "ok":
        if data is None and not timed_out:
            result.anomalies.append("no JSON report")
        tail = [ln for ln in (err or "").splitlines() if ln.strip()][-STDERR_TAIL_LINES:]
        if not tail:
            tail = [ln for ln in (out or "").splitlines() if ln.strip()][-STDERR_TAIL_LINES:]
        result.stderr_tail = tail
        if not result.failing:
            last = tail[-1] if tail else "no output"
            result.failing.append(f"exit {code}: {_short(last, 160)}")
    return result


# -- the sweep -----------------------------------------------------------------------------------------------

@dataclass
class SweepConfig:
    providers: list[str]
    targets: list[str]
    runs: int = 10
    all_runs: int = 2
    jobs: int = 2
    run_timeout: float = 300.0
    extra: list[str] = field(default_factory=list)
    max_minutes: float | None = None


def schedule(cfg: SweepConfig, rng: random.Random) -> list[RunSpec]:
    """Every run of the sweep, in order: round by round (so a time limit still leaves every target and
    provider sampled), ``--all`` runs first in a round (they are the longest), target by target within it
    (so that concurrent runs mostly share one served mock)."""
    specs_: list[RunSpec] = []
    for r in range(max(cfg.runs, cfg.all_runs)):
        for target in cfg.targets:
            who = ([ALL] if r < cfg.all_runs else []) + (list(cfg.providers) if r < cfg.runs else [])
            for provider in who:
                specs_.append(RunSpec(len(specs_) + 1, target, provider, rng.randrange(1, 10 ** 9)))
    return specs_


def _quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (defined for any non-empty list)."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def progress_line(r: RunResult, done: int, total: int, elapsed: float) -> str:
    status = "ok" if not r.failed else f"FALSE FAILURE ({r.kind}): " + ", ".join(r.failing[:6]) + (
        f" and {len(r.failing) - 6} more" if len(r.failing) > 6 else "")
    code = "-" if r.exit_code is None else str(r.exit_code)
    return (f"[{done:>4}/{total} {elapsed:7.1f}s] #{r.index:<4} {r.target:<11} {r.provider:<10} "
            f"seed {r.seed:<10} exit {code:>2} {r.wall:6.1f} s  {status}")


def summarize(cfg: SweepConfig, results: list[RunResult], scheduled: int, wall: float,
              mocks: dict[str, ServedMock], stopped_early: str | None) -> dict[str, Any]:
    """The machine-readable summary of a sweep (also what the text summary is printed from)."""
    results = sorted(results, key=lambda r: r.index)
    failures = [r for r in results if r.failed]
    cols = [*cfg.providers, *([ALL] if cfg.all_runs else [])]

    def rate(rs: list[RunResult]) -> dict[str, Any]:
        n, f = len(rs), sum(r.failed for r in rs)
        return {"runs": n, "false_failures": f, "rate": (f / n) if n else None}

    per_cell = {t: {p: rate([r for r in results if r.target == t and r.provider == p]) for p in cols}
                for t in cfg.targets}
    per_target = {t: rate([r for r in results if r.target == t]) for t in cfg.targets}
    per_provider = {p: rate([r for r in results if r.provider == p]) for p in cols}
    timing = {}
    for t in cfg.targets:
        walls = [r.wall for r in results if r.target == t]
        if walls:
            timing[t] = {"runs": len(walls), "median": statistics.median(walls),
                         "p95": _quantile(walls, 0.95), "max": max(walls)}
    slowest = max(results, key=lambda r: r.wall) if results else None
    return {
        "config": {**asdict(cfg), "cpus": os.cpu_count(), "python": sys.executable, "root": str(ROOT)},
        "scheduled": scheduled,
        "runs": len(results),
        "not_run": scheduled - len(results),
        "stopped_early": stopped_early,
        "wall_seconds": round(wall, 3),
        "false_failures": len(failures),
        "false_failure_rate": (len(failures) / len(results)) if results else None,
        "per_target": per_target,
        "per_provider": per_provider,
        "per_target_provider": per_cell,
        "exit_codes": {("timeout" if k is None else str(k)): v
                       for k, v in sorted(Counter(r.exit_code for r in results).items(),
                                          key=lambda kv: (kv[0] is None, kv[0] or 0))},
        "kinds": dict(Counter(r.kind for r in results)),
        "failing_runs": [asdict(r) for r in failures],
        "anomalies": [{"index": r.index, "target": r.target, "provider": r.provider, "seed": r.seed,
                       "anomalies": r.anomalies} for r in results if r.anomalies and not r.failed],
        "wall_per_target": timing,
        "slowest": None if slowest is None else {"index": slowest.index, "target": slowest.target,
                                                 "provider": slowest.provider, "seed": slowest.seed,
                                                 "wall": slowest.wall, "exit_code": slowest.exit_code,
                                                 "reproduce": slowest.reproduce},
        "served_mocks": {k: {"url": m.url, "speed": m.health.get("speed", m.speed), "exit_code": m.exit_code,
                             "died_early": m.died_early, "serve_command": m.serve_command(),
                             "log_tail": m.log_tail()} for k, m in mocks.items()},
        "all_runs": [{k: v for k, v in asdict(r).items() if k not in ("argv",)} for r in results],
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def render_summary(s: dict[str, Any]) -> list[str]:
    """The text summary of :func:`summarize`'s output, as lines."""
    cfg = s["config"]
    out = ["", "=" * 100,
           f"seed sweep: {s['runs']} runs of `conformance run` against our own mock in "
           f"{s['wall_seconds']:.1f} s (jobs {cfg['jobs']}, {cfg['cpus']} CPU(s), "
           f"extra {shlex.join(cfg['extra']) or 'none'})"]
    if s["stopped_early"]:
        out.append(f"stopped early: {s['stopped_early']}; {s['not_run']} of {s['scheduled']} scheduled runs "
                   "not run")
    out.append(f"FALSE FAILURES: {s['false_failures']} of {s['runs']} runs ({_pct(s['false_failure_rate'])}; "
               "target 0)")
    cols = list(next(iter(s["per_target_provider"].values()), {}).keys())
    width = max([11, *(len(c) + 1 for c in cols)])
    out.append("")
    out.append("false failures / runs, per target x provider:")
    out.append(f"  {'target':<12}" + "".join(f"{c:>{width}}" for c in cols) + f"{'total':>{width + 2}}"
               + f"{'rate':>9}")
    for t, row in s["per_target_provider"].items():
        tot = s["per_target"][t]
        cells = "".join(f"{str(row[c]['false_failures']) + '/' + str(row[c]['runs']):>{width}}" for c in cols)
        total = f"{tot['false_failures']}/{tot['runs']}"
        out.append(f"  {t:<12}{cells}{total:>{width + 2}}{_pct(tot['rate']):>9}")
    out.append(f"  {'per provider':<12}" + "".join(
        f"{_pct(s['per_provider'][c]['rate']):>{width}}" for c in cols))
    out.append("exit codes: " + ", ".join(f"{k} x{v}" for k, v in s["exit_codes"].items()) +
               "   kinds: " + ", ".join(f"{k} x{v}" for k, v in sorted(s["kinds"].items())))
    for kind, m in s["served_mocks"].items():
        state = f"exit {m['exit_code']}" + (" (DIED DURING THE SWEEP)" if m["died_early"] else "")
        out.append(f"served mock {kind}: {m['url']} speed {m['speed']}, stopped: {state}")
        if m["died_early"]:
            out += [f"    | {ln}" for ln in m["log_tail"]]
    if s["failing_runs"]:
        out += ["", f"FAILING RUNS ({len(s['failing_runs'])}), each with what failed and how to reproduce it "
                "(from the repository root):"]
        for r in s["failing_runs"]:
            code = "timeout" if r["exit_code"] is None else r["exit_code"]
            out.append(f"✗ #{r['index']} [{r['target']}] {r['provider']} seed {r['seed']}: exit {code} "
                       f"({r['kind']}) after {r['wall']:.1f} s")
            out.append("    failing: " + (", ".join(r["failing"]) or "(the report names nothing)"))
            out += [f"      - {d}" for d in r["details"]]
            for a in r["anomalies"]:
                out.append(f"    note: {a}")
            if r["stderr_tail"] and (not r["details"] or r["kind"] in ("crash", "usage", "hang")):
                out.append("    stderr (tail):")
                out += [f"      | {ln}" for ln in r["stderr_tail"]]
            if r["mock_command"]:
                out.append(f"    start the mock: {r['mock_command']} &   (same speed as the sweep's "
                           f"{r['target']} mock, which also served concurrent runs)")
            out.append(f"    reproduce:      {r['reproduce']}")
    if s["anomalies"]:
        out += ["", "passing runs with an odd report:"]
        out += [f"  #{a['index']} [{a['target']}] {a['provider']} seed {a['seed']}: "
                f"{'; '.join(a['anomalies'])}" for a in s["anomalies"]]
    out += ["", "wall time per run (concurrent runs share the CPUs):"]
    for t, w in s["wall_per_target"].items():
        out.append(f"  {t:<12} median {w['median']:6.1f} s   p95 {w['p95']:6.1f} s   max {w['max']:6.1f} s   "
                   f"({w['runs']} runs)")
    if s["slowest"]:
        sl = s["slowest"]
        code = "timeout" if sl["exit_code"] is None else sl["exit_code"]
        out.append(f"  slowest: #{sl['index']} [{sl['target']}] {sl['provider']} seed {sl['seed']}: "
                   f"{sl['wall']:.1f} s (exit {code}) · {sl['reproduce']}")
    verdict = ("PASS: no false failure" if not s["false_failures"] else
               f"FAIL: {s['false_failures']} false failure(s) in {s['runs']} runs")
    if not s["runs"]:
        verdict = "NO RESULT: no run finished"
    out += ["", verdict]
    return out


def sweep(cfg: SweepConfig, *, printer=print, rng: random.Random | None = None) -> dict[str, Any]:
    """Run the whole sweep and return :func:`summarize`'s summary; progress goes through ``printer``.

    Starts one served mock per served target kind (stopped at the end, whatever happens), runs every
    scheduled run ``cfg.jobs`` at a time, and stops scheduling after ``cfg.max_minutes``. A
    KeyboardInterrupt stops the live runs (not counted) and the mocks; the summary then says
    ``stopped_early == "interrupted"``.

    Raises:
        RuntimeError: a served mock failed to start.
    """
    rng = rng or random.SystemRandom()
    plan = schedule(cfg, rng)
    t0 = time.monotonic()
    deadline = t0 + cfg.max_minutes * 60 if cfg.max_minutes else None
    mocks: dict[str, ServedMock] = {}
    results: list[RunResult] = []
    active: set[subprocess.Popen] = set()
    lock = threading.Lock()
    stopped_early = None
    with tempfile.TemporaryDirectory(prefix="seed-sweep-") as tmp:
        workdir = Path(tmp)
        try:
            for kind in cfg.targets:
                if kind in SERVED_SPEED:
                    mocks[kind] = start_served_mock(kind, SERVED_SPEED[kind], workdir)
                    m = mocks[kind]
                    printer(f"served mock {kind}: {m.url} (speed {m.health.get('speed', m.speed)}, "
                            f"pid {m.proc.pid})")
            printer(f"{len(plan)} runs scheduled: {', '.join(cfg.targets)} x "
                    f"({len(cfg.providers)} provider(s) x {cfg.runs} + --all x {cfg.all_runs}), "
                    f"{cfg.jobs} at a time, timeout {cfg.run_timeout:g} s per run"
                    + (f", no new run after {cfg.max_minutes:g} min" if deadline else ""))
            pending = list(reversed(plan))
            futures: dict[Future, RunSpec] = {}
            with ThreadPoolExecutor(max_workers=cfg.jobs, thread_name_prefix="sweep") as pool:
                try:
                    while pending or futures:
                        while pending and len(futures) < cfg.jobs and stopped_early is None:
                            if deadline is not None and time.monotonic() >= deadline:
                                stopped_early = f"--max-minutes {cfg.max_minutes:g} reached"
                                break
                            spec = pending.pop()
                            mock = mocks.get(spec.target)
                            fut = pool.submit(run_one, spec, mock.url if mock else None, cfg.extra,
                                              cfg.run_timeout, workdir,
                                              mock.serve_command() if mock else None, active, lock)
                            futures[fut] = spec
                        if stopped_early is not None and not futures:
                            break
                        done, _ = wait(list(futures), timeout=0.5, return_when=FIRST_COMPLETED)
                        for fut in done:
                            futures.pop(fut)
                            r = fut.result()
                            results.append(r)
                            printer(progress_line(r, len(results), len(plan), time.monotonic() - t0))
                        for kind, m in mocks.items():
                            if not m.alive() and not m.died_early:
                                m.died_early = True
                                printer(f"served mock {kind} EXITED during the sweep "
                                        f"(code {m.proc.returncode})")
                except KeyboardInterrupt:  # stop the live runs (their results are dropped), report the rest
                    stopped_early = "interrupted"
                    pending.clear()
                    printer("seed_sweep: interrupted; stopping the live runs")
                    with lock:
                        live = list(active)
                    for proc in live:
                        _terminate(proc, grace=3)
                    wait(list(futures), timeout=30)
        finally:
            for m in mocks.values():
                stop_served_mock(m)
        return summarize(cfg, results, len(plan), time.monotonic() - t0, mocks, stopped_early)


# -- command line --------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        raise UsageError(message)


def _int(lo: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected a number >= {lo}, got {text!r}")
        return v
    return parse


def _pos_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="seed_sweep", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=_int(0), default=10, metavar="N", help="runs per provider per target (10)")
    p.add_argument("--all-runs", type=_int(0), default=2, metavar="N", help="runs of --all per target (2)")
    p.add_argument("--providers", metavar="A,B",
                   help="providers (default: every one of specs.provider_ids())")
    p.add_argument("--targets", metavar="K,K", default=",".join(TARGET_KINDS),
                   help="target kinds: " + ", ".join(TARGET_KINDS) + " (default: all three)")
    p.add_argument("--jobs", type=_int(1), default=os.cpu_count() or 1, metavar="N",
                   help="concurrent runs (default: number of CPUs)")
    p.add_argument("--run-timeout", type=_pos_float, default=300.0, metavar="S",
                   help="seconds per run before it counts as a hang (300)")
    p.add_argument("--json", metavar="PATH", help="write the machine-readable summary here")
    p.add_argument("--extra", action="append", default=[], metavar='"ARGS"',
                   help='extra arguments for every run, e.g. --extra "--examples 10" (repeatable)')
    p.add_argument("--max-minutes", type=_pos_float, default=None, metavar="M",
                   help="schedule no new run after M minutes; report what ran")
    return p


def parse_config(argv: list[str] | None) -> tuple[SweepConfig, str | None]:
    """Parse and validate the command line. Raises UsageError (one line) on any bad value."""
    import specs

    args = build_parser().parse_args(argv)
    known = specs.provider_ids()
    providers = known
    if args.providers is not None:
        providers = list(dict.fromkeys(x.strip() for x in args.providers.split(",") if x.strip()))
        unknown = [x for x in providers if x not in known]
        if unknown or not providers:
            raise UsageError(f"--providers: unknown provider(s) {', '.join(unknown) or '(none given)'} "
                             f"(known: {', '.join(known)})")
    targets = list(dict.fromkeys(x.strip() for x in args.targets.split(",") if x.strip()))
    bad = [t for t in targets if t not in TARGET_KINDS]
    if bad or not targets:
        raise UsageError(f"--targets: unknown kind(s) {', '.join(bad) or '(none given)'} "
                         f"(known: {', '.join(TARGET_KINDS)})")
    extra: list[str] = []
    for text in args.extra:
        try:
            extra += shlex.split(text)
        except ValueError as exc:
            raise UsageError(f"--extra {text!r}: {exc}") from None
    for a in extra:
        flag = a.split("=", 1)[0]
        if flag.startswith("--") and len(flag) > 2 and any(r.startswith(flag) for r in RESERVED_FLAGS):
            raise UsageError(f"--extra may not contain {flag}: the sweep sets {', '.join(RESERVED_FLAGS)}")
    if args.runs == 0 and args.all_runs == 0:
        raise UsageError("nothing to run: --runs and --all-runs are both 0")
    if args.json:
        parent = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(parent):
            raise UsageError(f"--json {args.json}: directory {parent} does not exist")
    cfg = SweepConfig(providers=providers, targets=targets, runs=args.runs, all_runs=args.all_runs,
                      jobs=args.jobs, run_timeout=args.run_timeout, extra=extra, max_minutes=args.max_minutes)
    return cfg, args.json


def main(argv: list[str] | None = None) -> int:
    try:
        cfg, json_path = parse_config(argv)
    except UsageError as exc:
        sys.stderr.write(f"seed_sweep: error: {exc}\n")
        return 2
    try:
        summary = sweep(cfg, printer=lambda line: print(line, flush=True))
    except RuntimeError as exc:
        print(f"seed_sweep: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # while starting or stopping the mocks
        print("seed_sweep: interrupted", file=sys.stderr)
        return 130
    for line in render_summary(summary):
        print(line)
    if json_path:
        Path(json_path).write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"summary written to {json_path}")
    if summary["stopped_early"] == "interrupted":
        return 130
    return 0 if summary["false_failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
