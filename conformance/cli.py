"""``conformance`` command line.

    conformance run --all                          # every provider against the embedded mock
    conformance run --provider fal --base-url https://queue.fal.run --host-url run=https://fal.run
    conformance run --provider openai --base-url http://127.0.0.1:8000     # a running mock (free)
    conformance checks                             # list the registered checks

Exit codes: 0 everything passed, 1 conformance failures, 2 usage or configuration error (one line on
stderr, no traceback).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


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
    money = r.add_argument_group("spend guard (targets that are not the mock)")
    money.add_argument("--allow-spend", action="store_true", help="allow operations that cost money")
    money.add_argument("--max-spend-usd", type=_nonneg_float, default=0.0, metavar="USD",
                       help="stop before the estimated cost would pass this (default 0)")
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
    out = r.add_argument_group("reports")
    out.add_argument("--junit", metavar="PATH", help="write JUnit XML")
    out.add_argument("--json", metavar="PATH", help="write the full results as JSON")
    out.add_argument("--markdown", metavar="PATH", help="write a Markdown report")
    out.add_argument("--no-progress", action="store_true", help="no live progress on the terminal")
    sub.add_parser("checks", help="list the registered checks")
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

    from .registry import all_checks

    t = Table(title="Registered checks", title_justify="left")
    t.add_column("check", no_wrap=True)
    t.add_column("category", no_wrap=True)
    t.add_column("origin", no_wrap=True)
    t.add_column("asserts")
    for c in all_checks():
        t.add_row(c.name, c.category, c.origin, c.description)
    Console(width=None if sys.stdout.isatty() else 160).print(t)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    import specs

    from . import report
    from .context import RunConfig
    from .registry import UnknownCheckError, select
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
    host_urls = _pairs(args.host_url, "--host-url", providers, key_optional=False)
    api_key_env = _pairs(args.api_key_env, "--api-key-env", providers, key_optional=True)
    source_ids = _pairs(args.source_video_id, "--source-video-id", providers, key_optional=True)
    for pid in source_ids:
        if pid not in providers:
            raise UsageError(f"--source-video-id {pid}=...: {pid} is not a provider of this run")
    for out_path in (args.junit, args.json, args.markdown):
        if out_path:
            parent = os.path.dirname(os.path.abspath(out_path))
            if not os.path.isdir(parent):
                raise UsageError(f"cannot write {out_path}: directory {parent} does not exist")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10 ** 9)
    config = RunConfig(providers=providers, checks=checks, seed=seed, examples=args.examples,
                       paid_examples=args.paid_examples, lifecycle_runs=args.lifecycle_runs,
                       lifecycle_steps=args.lifecycle_steps, workers=max(1, args.workers),
                       allow_spend=args.allow_spend, max_spend_usd=args.max_spend_usd,
                       source_video_ids=source_ids, timeout=args.timeout,
                       job_timeout=args.job_timeout or (900.0 if args.base_url else 60.0))
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
    t0 = time.monotonic()
    try:
        if args.dry_run and args.base_url is None:
            from .target import Target

            target = Target(kind="embedded", label="the embedded mock", hosts={
                (pid, h["id"]): f"http://127.0.0.1/{pid}" for pid in providers for h in specs.load(pid).hosts},
                mock_root=None, credentials={})
        else:
            target = open_target(providers, base_url=args.base_url, host_urls=host_urls, api_key_env=api_key_env,
                                 speed=args.speed or DEFAULT_SPEED, seed=seed)
    except (TargetError, specs.SpecError) as exc:
        raise UsageError(str(exc)) from None
    try:
        if args.dry_run:
            render_plan(plan(config, target), config, target, console)
            return EXIT_OK
        err.print(f"conformance: {len(providers)} provider(s), {len(checks)} check(s), target {target.label}, "
                  f"seed {seed}", highlight=False)
        for note in target.notes:
            err.print(f"  note: {note}", highlight=False)
        progress, listener, stop = _progress(err, providers, enabled=not args.no_progress)
        try:
            results = execute(config, target, progress=progress, listener=listener)
        finally:
            stop()
    finally:
        target.close()
    report.render_summary(results, console)
    for e in results.internal_errors:
        err.print(f"conformance: internal error ({e}); see the JSON report notes", highlight=False)
    if args.junit:
        report.write_junit(results, args.junit)
    if args.json:
        report.write_json(results, args.json)
    if args.markdown:
        report.write_markdown(results, args.markdown)
    err.print(f"conformance: wall time {time.monotonic() - t0:.1f} s", highlight=False)
    return EXIT_OK if results.ok and not results.internal_errors else EXIT_FAIL


def _progress(console, providers: list[str], enabled: bool):
    """Live progress (rich, one line per provider: phase, passes and failures so far) on a terminal; plain
    phase lines otherwise. Returns ``(progress, listener, stop)`` callbacks."""
    import threading

    lock = threading.Lock()
    started = time.monotonic()
    counts = {p: [0, 0] for p in providers}
    phases = {p: "waiting" for p in providers}

    def listener(provider: str, check: str, what: str) -> None:
        with lock:
            c = counts.setdefault(provider, [0, 0])
            c[0 if what == "pass" else 1] += 1

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

        return update, listener, stop

    def line(provider: str, text: str) -> None:
        if not enabled:
            return
        with lock:
            ok, bad = counts.get(provider, [0, 0])
            console.print(f"  [{time.monotonic() - started:6.1f}s] {provider}: {text} (✓ {ok} ✗ {bad})",
                          highlight=False)

    return line, listener, lambda: None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``conformance`` console script and ``python -m conformance``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "checks":
            return cmd_checks()
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
