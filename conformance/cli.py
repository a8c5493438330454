"""``conformance`` command line.

    conformance run --all                          # every provider against the embedded mock
    conformance run --provider fal --base-url https://queue.fal.run --host-url run=https://fal.run
    conformance run --provider openai --base-url http://127.0.0.1:8000     # a running mock (free)
    conformance run --all --parallel 2             # the providers split over 2 processes, reports merged
    conformance checks                             # list the registered checks

Exit codes (``conformance run``):

- 0: every check that ran passed (notes about undocumented expectations do not fail a run);
- 1: conformance failures: the target deviates from a documented expectation;
- 2: usage or configuration error (one line on stderr, no traceback): bad flag, unknown provider,
  unreachable URL, missing key, report path that cannot be written;
- 3: no failures, but the verdict is incomplete: the suite hit an error of its own (it could not build or
  send a request, a check crashed) or the run reached ``--max-time``;
- 130 / 143: interrupted by SIGINT (Ctrl-C) / SIGTERM; the reports are written for what ran.

Failures take precedence over suite errors (1 before 3): a failure is a finding whatever else happened.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_SUITE = 0, 1, 2, 3
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}
STOP_GRACE = 1.5  # seconds a stopped run gets to wind down before the reports are written from what ran


class UsageError(Exception):
    """A bad flag or configuration; ``str(err)`` is the one line printed before exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, exit 2
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None):
        if status and message:
            raise UsageError(message.strip())
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def _processes(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def _pos_float(text: str) -> float:
    v = _nonneg_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def _drift_cli():
    from .drift import cli as drift_cli

    return drift_cli


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="conformance", description="Property-based conformance suite for the Sora 2 remix "
                "provider contracts (specs/).")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    r = sub.add_parser("run", help="check a target against the vendored contracts")
    _drift_cli().add_subcommands(sub)  # record, drift, diff (conformance/drift/)
    who = r.add_argument_group("what to check")
    who.add_argument("--provider", action="append", default=[], metavar="ID",
                     help="provider id (repeatable): " + ", ".join(_provider_ids()))
    who.add_argument("--all", action="store_true", help="every vendored provider")
    who.add_argument("--check", action="append", default=[], metavar="NAME",
                     help="run only these checks or categories (contract, lifecycle, document); repeatable")
    tgt = r.add_argument_group("target")
    tgt.add_argument("--base-url", metavar="URL", help="check this server instead of the embedded mock: a mock "
                     "(root or one provider's base URL), a proxy, or the real provider's primary host")
    tgt.add_argument("--host-url", action="append", default=[], metavar="HOST=URL",
                     help="URL of another host of the provider (e.g. run=https://fal.run); repeatable")
    tgt.add_argument("--api-key-env", action="append", default=[], metavar="[PROVIDER=]NAME",
                     help="environment variable holding the API key (default: provider.yaml auth.env)")
    tgt.add_argument("--speed", type=_pos_float, default=None, metavar="X",
                     help="time scale of the embedded mock (default 10: a 2.5 s job takes 0.25 s)")
    tgt.add_argument("--timeout", type=_pos_float, default=60.0, metavar="S", help="seconds per request")
    tgt.add_argument("--job-timeout", type=_pos_float, default=None, metavar="S",
                     help="seconds a job may take to finish (default 60 on the mock, 900 elsewhere)")
    tgt.add_argument("--max-time", type=_pos_float, default=None, metavar="S",
                     help="seconds the whole run may take; checks not reached by then are skipped and the run "
                     "exits 3 unless something failed (default: no bound)")
    tgt.add_argument("--only-target-hosts", action="store_true",
                     help="send nothing to a host the target does not name: URLs in answers that point elsewhere "
                     "(asset CDNs, status URLs) are not followed (downloads from them are skipped)")
    tgt.add_argument("--free-target", action="store_true",
                     help="declare that the target bills nothing (a third-party mock, a staging server): every "
                     "check runs as on our mock; only documented expectations can fail the run")
    money = r.add_argument_group("spend guard (paid targets: anything but our mock or a --free-target)")
    money.add_argument("--allow-spend", action="store_true",
                       help="allow operations that cost money, within a budget (at least one bound below)")
    money.add_argument("--max-paid-jobs", type=_positive_int, default=None, metavar="N",
                       help="at most N paid requests (jobs created)")
    money.add_argument("--max-video-seconds", type=_nonneg_float, default=None, metavar="S",
                       help="at most S seconds of video requested in total")
    money.add_argument("--max-spend-usd", type=_nonneg_float, default=None, metavar="USD",
                       help="stop before the estimated cost would pass this (needs a price)")
    money.add_argument("--usd-per-second", type=_nonneg_float, default=None, metavar="USD",
                       help="price per generated second where provider.yaml documents none (for the estimate "
                       "and --max-spend-usd)")
    money.add_argument("--dry-run", action="store_true", help="print the plan and its estimated cost; send "
                       "nothing to providers")
    money.add_argument("--source-video-id", action="append", default=[], metavar="[PROVIDER=]ID",
                       help="a completed video to remix and retrieve (needed for remix-only providers when "
                       "spending is not allowed)")
    gen = r.add_argument_group("generation")
    gen.add_argument("--seed", type=_positive_int, default=None, help="hypothesis seed (default: random, printed)")
    gen.add_argument("--examples", type=_positive_int, default=50, metavar="N",
                     help="generated examples per operation (default 50)")
    gen.add_argument("--paid-examples", type=_positive_int, default=1, metavar="N",
                     help="positive examples per paid operation on a target that is not the mock (default 1)")
    gen.add_argument("--lifecycle-runs", type=_positive_int, default=4, metavar="N",
                     help="state-machine runs per provider (default 4)")
    gen.add_argument("--lifecycle-steps", type=_positive_int, default=14, metavar="N",
                     help="steps per state-machine run (default 14)")
    gen.add_argument("--workers", type=_positive_int, default=8, metavar="N",
                     help="concurrent requests per operation (default 8)")
    gen.add_argument("--parallel", type=_processes, default=1, metavar="N",
                     help="check the providers in N processes (at most one per provider; balanced, deterministic "
                     "split) and merge their reports: same verdicts, reports and exit codes as --parallel 1 "
                     "(default: one process, providers in threads). Each process starts its own embedded mock; "
                     "with --base-url all hit the same target. --max-time, Ctrl-C and SIGTERM end every process. "
                     "A budget is never divided: a paid target takes one provider, so it runs in one process "
                     "with the whole budget")
    gen.add_argument("--parallel-worker", action="store_true", help=argparse.SUPPRESS)  # a process of --parallel
    gen.add_argument("--parallel-deadline", type=float, default=None, help=argparse.SUPPRESS)  # epoch seconds
    out = r.add_argument_group("reports")
    out.add_argument("--junit", metavar="PATH", help="write JUnit XML")
    out.add_argument("--json", metavar="PATH", help="write the full results as JSON")
    out.add_argument("--markdown", metavar="PATH", help="write a Markdown report")
    out.add_argument("--html", metavar="PATH", help="write a self-contained HTML report (matrix, filters, failures)")
    out.add_argument("--no-progress", action="store_true", help="no live progress on the terminal")
    sub.add_parser("checks", help="list the registered checks")
    from .compare import add_subcommand  # conformance compare FROM TO... (conformance/compare.py)

    add_subcommand(sub)
    return p


def _provider_ids() -> list[str]:
    import specs

    return specs.provider_ids()


def _pairs(values: list[str], flag: str, providers: list[str], *, key_optional: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        if "=" in v:
            k, _, val = v.partition("=")
            if not k or not val:
                raise UsageError(f"{flag} {v!r}: expected NAME=VALUE")
            out[k] = val
        elif key_optional:
            if len(providers) != 1 and flag != "--api-key-env":
                raise UsageError(f"{flag} {v!r}: with several providers write PROVIDER={v}")
            out[providers[0] if flag != "--api-key-env" else "*"] = v
        else:
            raise UsageError(f"{flag} {v!r}: expected HOST=URL")
    return out


def cmd_checks() -> int:
    from rich.console import Console
    from rich.table import Table

    from .checks import all_checks

    t = Table(title="Registered checks", title_justify="left")
    t.add_column("check", no_wrap=True)
    t.add_column("category", no_wrap=True)
    t.add_column("origin", no_wrap=True)
    t.add_column("asserts")
    t.add_column("expectation from (default; a contract's x-mock-only / x-assumption or provider.yaml expectations "
                 "refine it per evaluation)")
    for c in all_checks():
        t.add_row(c.name, c.category, c.origin, c.description, c.source.label())
    Console(width=None if sys.stdout.isatty() else 160).print(t)
    return EXIT_OK


def _report_paths(args: argparse.Namespace) -> None:
    """Create the folders of the report paths (``--junit reports/junit.xml`` on a fresh clone) and check that
    the files can be written, before anything runs. Raises :class:`UsageError`."""
    for flag, out_path in (("--junit", args.junit), ("--json", args.json), ("--markdown", args.markdown),
                           ("--html", args.html)):
        if not out_path:
            continue
        parent = os.path.dirname(os.path.abspath(out_path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{flag} {out_path}: cannot create directory {parent}: {exc.strerror or exc}") from None
        if os.path.isdir(out_path):
            raise UsageError(f"{flag} {out_path}: is a directory")
        if not os.access(parent, os.W_OK):
            raise UsageError(f"{flag} {out_path}: directory {parent} is not writable")


def _rerun_base(args: argparse.Namespace) -> str:
    """The ``conformance run`` options that name the same target, budget and generation (for re-run commands):
    :func:`conformance.parallel.run_options` without the values that are the parser's defaults."""
    import shlex

    from .parallel import run_options

    defaults = vars(build_parser().parse_args(["run"]))
    parts = ["conformance", "run", *run_options(args, defaults)]
    for v in args.source_video_id:
        parts += ["--source-video-id", v]
    return " ".join(shlex.quote(p) for p in parts)


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    import specs

    from . import report
    from .checks import select
    from .context import RunConfig, RunControl
    from .registry import UnknownCheckError
    from .results import Results
    from .runner import execute, plan, render_plan
    from .target import DEFAULT_SPEED, TargetError, open_target

    known = specs.provider_ids()
    if args.all and args.provider:
        raise UsageError("give --all or --provider, not both")
    providers = known if args.all else list(dict.fromkeys(args.provider))
    if not providers:
        raise UsageError("name the providers to check: --provider ID (repeatable) or --all")
    for pid in providers:
        if pid not in known:
            raise UsageError(f"unknown provider {pid!r} (known: {', '.join(known)})")
    try:
        checks = select(args.check)
    except UnknownCheckError as exc:
        raise UsageError(str(exc)) from None
    if args.speed is not None and args.base_url:
        raise UsageError("--speed applies to the embedded mock only (not with --base-url)")
    if args.free_target and not args.base_url:
        raise UsageError("--free-target declares a --base-url target free; the embedded mock is free already")
    budget_given = any(v is not None for v in (args.max_paid_jobs, args.max_video_seconds, args.max_spend_usd))
    if budget_given and not args.allow_spend:
        raise UsageError("a budget (--max-paid-jobs, --max-video-seconds, --max-spend-usd) needs --allow-spend")
    host_urls = _pairs(args.host_url, "--host-url", providers, key_optional=False)
    api_key_env = _pairs(args.api_key_env, "--api-key-env", providers, key_optional=True)
    source_ids = _pairs(args.source_video_id, "--source-video-id", providers, key_optional=True)
    for pid in source_ids:
        if pid not in providers:
            raise UsageError(f"--source-video-id {pid}=...: {pid} is not a provider of this run")
    _report_paths(args)
    if args.parallel_worker and args.parallel_deadline is not None:  # one deadline shared by every process
        args.max_time = max(0.05, args.parallel_deadline - time.time())
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10 ** 9)
    config = RunConfig(providers=providers, checks=checks, seed=seed, examples=args.examples,
                       paid_examples=args.paid_examples, lifecycle_runs=args.lifecycle_runs,
                       lifecycle_steps=args.lifecycle_steps, workers=max(1, args.workers),
                       allow_spend=args.allow_spend, max_spend_usd=args.max_spend_usd,
                       source_video_ids=source_ids, timeout=args.timeout,
                       job_timeout=args.job_timeout or (900.0 if args.base_url else 60.0),
                       max_time=args.max_time, max_paid_jobs=args.max_paid_jobs,
                       max_video_seconds=args.max_video_seconds, usd_per_second=args.usd_per_second,
                       only_target_hosts=args.only_target_hosts)
    config.negative_examples = max(1, args.examples // 2)
    config.unknown_examples = max(1, (args.examples * 2) // 5)
    import logging
    import shutil

    width = None if sys.stdout.isatty() else max(140, shutil.get_terminal_size((140, 40)).columns)
    console = Console(width=width)
    err = Console(stderr=True, width=width)
    if args.base_url is None:  # the embedded mock logs its own errors; the checks report them
        for name in ("mockserver", "openapi_core", "aiohttp.server", "aiohttp.access"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    processes = 1 if args.dry_run or args.parallel_worker else min(args.parallel, len(providers))
    t0 = time.monotonic()
    try:
        if args.dry_run and args.base_url is None:
            from .target import Target

            target = Target(kind="embedded", label="the embedded mock", hosts={
                (pid, h["id"]): f"http://127.0.0.1/{pid}" for pid in providers for h in specs.load(pid).hosts},
                mock_root=None, credentials={})
        elif processes > 1 and args.base_url is None:
            target = None  # every process starts its own embedded mock
        else:
            target = open_target(providers, base_url=args.base_url, host_urls=host_urls, api_key_env=api_key_env,
                                 speed=args.speed or DEFAULT_SPEED, seed=seed, free_target=args.free_target)
    except (TargetError, specs.SpecError) as exc:
        raise UsageError(str(exc)) from None
    if args.dry_run:
        try:
            render_plan(plan(config, target), config, target, console)
        finally:
            target.close()
        return EXIT_OK
    results = Results(checks, providers, seed)
    results.rerun_base = _rerun_base(args)
    if processes > 1:
        from . import parallel
        from .spend import Budget

        described = {}
        if target is not None:  # --base-url: every process checks this target; the parent only resolved it
            described = target.describe()
            target.close()
        refusal = parallel.check_budget(target is None or target.free, budget_given, processes)
        if refusal:
            raise UsageError(refusal)
        groups = parallel.assign(providers, processes)
        label = described.get("label") or f"embedded mocks, one per process (speed {args.speed or DEFAULT_SPEED:g})"
        err.print(f"conformance: {len(providers)} provider(s), {len(checks)} check(s), target {label}, seed {seed}, "
                  f"{len(groups)} processes: " + " | ".join(", ".join(g) for g in groups), highlight=False)
        for note in described.get("notes") or []:
            err.print(f"  note: {note}", highlight=False)
        progress, listener, set_counts, stop_progress = _progress(err, providers, enabled=not args.no_progress)
        signal_name = parallel.run_processes(
            args, results, groups, seed, target=described, progress=progress, set_counts=set_counts,
            budget=Budget(jobs=args.max_paid_jobs, video_seconds=args.max_video_seconds, usd=args.max_spend_usd),
            stop_grace=STOP_GRACE)
        stop_progress()
    else:
        control = RunControl(args.max_time)
        if args.parallel_worker:  # a process of --parallel: progress as JSON lines on stdout for the parent
            progress, listener, stop_progress = _worker_events(providers, enabled=not args.no_progress)
            _stop_when_parent_goes(control)
        else:
            err.print(f"conformance: {len(providers)} provider(s), {len(checks)} check(s), target {target.label}, "
                      f"seed {seed}", highlight=False)
            for note in target.notes:
                err.print(f"  note: {note}", highlight=False)
            progress, listener, _set, stop_progress = _progress(err, providers, enabled=not args.no_progress)
        signal_name = _run_with_signals(lambda: execute(config, target, progress=progress, listener=listener,
                                                        control=control, results=results), control)
        stop_progress()
        if signal_name is None:
            target.close()
    if signal_name is not None:
        results.stopped = "interrupted"
        if not any(e.name == "interrupted" for e in results.suite_errors):
            results.suite_error("interrupted", None, f"{signal_name}: the run was interrupted; checks not reached "
                                "are reported as skipped")
        for o in results.outcomes():
            if o.status == "skipped" and (o.skip_reason is None or o.skip_reason.startswith("not reached")):
                o.skip_reason = f"not reached: the run was interrupted ({signal_name})"
        if results.finished is None:
            results.finished = time.monotonic()
    code = EXIT_FAIL if not results.ok else EXIT_SUITE if results.suite_errors else EXIT_OK
    if signal_name is not None:
        code = EXIT_SIGNAL[signal_name]
    if args.parallel_worker:  # the parent writes every report from this one
        if args.json:
            report.write_json(results, args.json)
        return _exit(code, hard=True)  # at once: the stdin watch may still be reading (no shutdown race)
    report.render_summary(results, console)
    for e in results.suite_errors:
        first = e.message.splitlines()[0] if e.message else ""
        err.print(f"conformance: suite error [{e.name}] {e.provider or ''} {e.check or ''}: {first}".replace("  ", " "),
                  highlight=False, markup=False)
    if args.junit:
        report.write_junit(results, args.junit)
    if args.json:
        report.write_json(results, args.json)
    if args.markdown:
        report.write_markdown(results, args.markdown)
    if args.html:
        from .html_report import write_run

        write_run(results, args.html)
    if results.parallel:
        err.print(f"conformance: wall time {time.monotonic() - t0:.1f} s in {results.parallel['processes']} "
                  "processes (process wall times "
                  + ", ".join(f"{s:.1f}" for s in results.parallel["process_wall_seconds"]) + " s)", highlight=False)
    else:
        err.print(f"conformance: wall time {time.monotonic() - t0:.1f} s", highlight=False)
    return _exit(code, hard=signal_name is not None)


def _exit(code: int, *, hard: bool) -> int:
    """Return ``code``, or after a signal flush and end the process at once (worker threads may still be
    inside a request: do not wait for them)."""
    if hard:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _worker_events(providers: list[str], enabled: bool):
    """Progress of a process of ``--parallel`` for its parent: JSON lines on stdout,
    ``{"provider", "phase", "ok", "bad"}`` on each phase and ``{"provider", "ok", "bad"}`` at most every
    0.25 s while counts change. Returns ``(progress, listener, stop)`` callbacks; all no-ops when not
    ``enabled``."""
    import json
    import threading

    if not enabled:
        return (lambda provider, text: None), (lambda provider, check, what: None), (lambda: None)
    lock = threading.Lock()
    counts = {p: [0, 0] for p in providers}
    dirty: set[str] = set()
    stop_evt = threading.Event()

    def emit(provider: str, phase: str | None = None) -> None:
        ev = {"provider": provider, "ok": counts.get(provider, [0, 0])[0], "bad": counts.get(provider, [0, 0])[1]}
        if phase is not None:
            ev["phase"] = phase
        try:
            sys.stdout.write(json.dumps(ev) + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):  # the parent is gone: the stdin watch stops the run
            pass

    def progress(provider: str, text: str) -> None:
        with lock:
            dirty.discard(provider)
            emit(provider, text)

    def listener(provider: str, check: str, what: str) -> None:
        if what not in ("pass", "fail"):
            return
        with lock:
            counts.setdefault(provider, [0, 0])[0 if what == "pass" else 1] += 1
            dirty.add(provider)

    def tick() -> None:
        while not stop_evt.wait(0.25):
            with lock:
                for p in sorted(dirty):
                    emit(p)
                dirty.clear()

    th = threading.Thread(target=tick, daemon=True, name="conformance-events")
    th.start()

    def stop() -> None:
        stop_evt.set()
        th.join(1)
        with lock:
            for p in counts:
                emit(p)

    return progress, listener, stop


def _stop_when_parent_goes(control) -> None:
    """Stop the run when stdin closes: the parent of a ``--parallel`` process holds its stdin open and never
    writes to it, so EOF means the parent is gone (killed) and nobody will read this process's report."""
    import threading

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except (OSError, ValueError, AttributeError):
            return
        control.stop("interrupted")

    threading.Thread(target=watch, daemon=True, name="conformance-parent-watch").start()


def _run_with_signals(fn, control) -> str | None:
    """Run ``fn`` on a worker thread while the main thread waits with SIGINT/SIGTERM handlers installed.

    A signal stops the run (``control.stop("interrupted")``); the worker then gets :data:`STOP_GRACE` seconds
    to wind down. Returns the signal's name (``"SIGINT"``/``"SIGTERM"``) or None when ``fn`` ended by itself.
    Re-raises what ``fn`` raised.
    """
    import signal
    import threading

    box: dict = {}
    got: list[str] = []

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="conformance-run", daemon=True)
    previous = {}

    def handler(signum, frame) -> None:
        got.append(signal.Signals(signum).name)
        control.stop("interrupted")

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        worker.start()
        while worker.is_alive() and not got:
            worker.join(0.1)
        if got:
            worker.join(STOP_GRACE)
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
    if got:
        return got[0]
    if "error" in box:
        raise box["error"]
    return None


def _progress(console, providers: list[str], enabled: bool):
    """Live progress (rich, one line per provider: phase, passes and failures so far) on a terminal; plain
    phase lines otherwise (each prefixed by its provider). Returns ``(progress, listener, set_counts, stop)``
    callbacks: ``progress(provider, phase)``, ``listener(provider, check, "pass"|"fail"|"note")`` for one
    evaluation, ``set_counts(provider, passes, failures)`` for counts kept elsewhere (a process of
    ``--parallel``), ``stop()``."""
    import threading

    lock = threading.Lock()
    started = time.monotonic()
    counts = {p: [0, 0] for p in providers}
    phases = {p: "waiting" for p in providers}

    def listener(provider: str, check: str, what: str) -> None:
        if what not in ("pass", "fail"):
            return  # notes (undocumented expectations) are neither
        with lock:
            c = counts.setdefault(provider, [0, 0])
            c[0 if what == "pass" else 1] += 1

    def set_counts(provider: str, ok: int, bad: int) -> None:
        with lock:
            counts[provider] = [ok, bad]

    if enabled and console.is_terminal:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        prog = Progress(SpinnerColumn(), TextColumn("{task.fields[provider]:<10}"),
                        TextColumn("{task.description:<26}"), TextColumn("[green]✓ {task.fields[ok]}"),
                        TextColumn("[red]✗ {task.fields[bad]}"), TimeElapsedColumn(), console=console,
                        transient=False, refresh_per_second=8)
        tasks = {p: prog.add_task("waiting", provider=p, ok=0, bad=0, total=None) for p in providers}
        prog.start()
        stop_evt = threading.Event()

        def refresh() -> None:
            while not stop_evt.wait(0.25):
                with lock:
                    for p, t in tasks.items():
                        prog.update(t, description=phases[p], ok=counts[p][0], bad=counts[p][1])

        th = threading.Thread(target=refresh, daemon=True)
        th.start()

        def update(provider: str, text: str) -> None:
            with lock:
                phases[provider] = text

        def stop() -> None:
            stop_evt.set()
            th.join(2)
            with lock:
                for p, t in tasks.items():
                    prog.update(t, description=phases[p], ok=counts[p][0], bad=counts[p][1])
            prog.stop()

        return update, listener, set_counts, stop

    def line(provider: str, text: str) -> None:
        if not enabled:
            return
        with lock:
            ok, bad = counts.get(provider, [0, 0])
            console.print(f"  [{time.monotonic() - started:6.1f}s] {provider}: {text} (✓ {ok} ✗ {bad})",
                          highlight=False)

    return line, listener, set_counts, lambda: None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``conformance`` console script and ``python -m conformance``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "checks":
            return cmd_checks()
        if args.command == "compare":
            from .compare import run as run_compare

            return run_compare(args)
        if getattr(args, "drift_command", None):
            return _drift_cli().run(args)
        if args.command != "run":
            raise UsageError("conformance: give a command: run | checks | record | drift | diff "
                             "(see conformance --help)")
        return cmd_run(args)
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("conformance: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
