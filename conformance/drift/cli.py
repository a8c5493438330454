"""The drift commands: ``record``, ``drift`` and ``diff`` (argparse subcommands).

Wiring into the main CLI (conformance/cli.py)::

    from conformance.drift import cli as drift_cli
    drift_cli.add_subcommands(subparsers)          # registers record, drift, diff
    ...
    if args.command in drift_cli.COMMANDS:
        return drift_cli.run(args)

Until then ``python -m conformance.drift record|drift|diff ...`` runs them standalone.

Exit codes: 0 no finding at or above ``--fail-on`` (and, for ``record``, a complete flow); 1 drift at or above
``--fail-on`` (``record``: the flow failed part-way, the cassette was still written); 2 usage error, unreadable
input, unreachable target, or spend refused (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import specs
from specs.cassette import Cassette, CassetteError

from ..html_report import write_findings
from ..spend import SpendGuard
from .findings import FAIL_ON, FORMATS, Report, render
from .flows import FlowError, FlowOptions, SpendRefused, is_free_host, is_local, resolve_hosts, run_flow
from .observed import check_cassette
from .recorder import Recorder
from .specdiff import DiffError, diff_contracts, load_contract_doc

COMMANDS = ("record", "drift", "diff")
PROG = "conformance"


class UsageError(Exception):
    """A bad flag or input; ``str(err)`` is the one line printed before exit code 2."""


# -- argument definitions ------------------------------------------------------------------------------
def _add_target_args(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("recording target")
    g.add_argument("--base-url", metavar="URL", required=required,
                   help="base URL of the provider's primary host (the real one, or our mock: a mock URL maps "
                   "the provider's other hosts too)")
    g.add_argument("--host-url", metavar="HOST=URL", action="append", default=[],
                   help="base URL of another host of the provider, e.g. run=https://fal.run (repeatable)")
    g.add_argument("--api-key-env", metavar="VAR",
                   help="environment variable holding the API key (default: provider.yaml auth.env, e.g. "
                   "FAL_KEY); never pass a key on the command line")
    g.add_argument("--allow-spend", action="store_true",
                   help="allow billable operations (x-billable) against a target that is not our mock")
    g.add_argument("--max-spend-usd", type=float, default=0.0, metavar="USD",
                   help="budget for billable operations, USD (default 0); providers without a documented "
                   "price cannot be bounded and are refused")
    g.add_argument("--free-only", action="store_true",
                   help="record only operations that cost nothing (probes, lists, error shapes)")
    g.add_argument("--store-binary", action="store_true",
                   help="keep binary bodies (videos, images) beside the cassette so a replay serves the exact "
                   "bytes (default: content type, length and sha256 only)")
    g.add_argument("--ca-file", metavar="PEM", help="CA bundle to trust (e.g. the mock's --tls CA)")
    g.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    g.add_argument("--poll-interval", type=float, default=2.0, metavar="S",
                   help="longest wait between polls, seconds (default 2; provider hints may shorten it)")
    g.add_argument("--poll-timeout", type=float, default=900.0, metavar="S",
                   help="give up on a job after this many seconds (default 900)")
    g.add_argument("--request-timeout", type=float, default=120.0, metavar="S", help="per-request timeout (s)")
    g.add_argument("--seconds", type=int, default=4, metavar="N", help="clip length to request (default 4)")
    g.add_argument("--source-id", metavar="ID", help="remix this existing video instead of generating one")
    g.add_argument("--no-remix", action="store_true", help="skip the remix step")
    g.add_argument("--no-probes", action="store_true", help="skip the free error probes")
    g.add_argument("--no-cleanup", action="store_true", help="do not delete the videos the flow created")


def _add_report_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reports")
    g.add_argument("--format", choices=FORMATS, default="text", help="report format on stdout (default text)")
    g.add_argument("--report", metavar="FORMAT=PATH", action="append", default=[],
                   help="also write a report file, e.g. junit=drift.xml, markdown=drift.md, html=drift.html "
                   "(repeatable)")
    g.add_argument("--html", metavar="PATH", help="write a self-contained HTML report (same as --report html=PATH)")
    g.add_argument("--fail-on", choices=FAIL_ON, default="breaking",
                   help="exit 1 when a finding reaches this class: breaking (default), non-breaking, any, none")


def add_subcommands(subparsers: Any) -> None:
    """Register ``record``, ``drift`` and ``diff`` on an argparse subparsers object. Each parser sets
    ``args.drift_command`` so :func:`run` can dispatch."""
    r = subparsers.add_parser(
        "record", help="run a scripted flow against a provider and write a cassette (redacted)",
        description="Drive the provider through its family's remix flow (generate, poll, download, remix, "
        "probes) and record every request and response into a cassette. Secrets are redacted.")
    r.add_argument("--provider", metavar="ID", required=True, help=f"provider id ({', '.join(specs.provider_ids())})")
    _add_target_args(r, required=True)
    r.add_argument("--output", "-o", metavar="CASSETTE", help="cassette path (default: <provider>.cassette.json)")
    r.set_defaults(drift_command="record")

    d = subparsers.add_parser(
        "drift", help="compare recorded (or live) traffic with the contract",
        description="Compare cassettes (or a fresh recording with --base-url) with the provider's contract and "
        "report undocumented or missing fields, type and enum changes, undocumented statuses, content types "
        "and headers, and lifecycle differences, classed breaking / non-breaking / info.")
    d.add_argument("cassettes", nargs="*", metavar="CASSETTE", help="cassette files to check")
    d.add_argument("--provider", metavar="ID", help="provider id (default: the one named in the cassettes)")
    d.add_argument("--contract", metavar="PATH", help="compare with this contract (an openapi.yaml or a folder "
                   "with openapi.yaml + provider.yaml) instead of the vendored one")
    _add_target_args(d, required=False)
    d.add_argument("--save-cassette", metavar="PATH", help="with --base-url: keep the recording here")
    _add_report_args(d)
    d.set_defaults(drift_command="drift")

    f = subparsers.add_parser(
        "diff", help="compare two versions of a contract, classed for clients",
        description="Compare two contracts (a file, a folder with openapi.yaml [+ provider.yaml], or a vendored "
        "provider id) and class each change as breaking, non-breaking or info for clients.")
    f.add_argument("old", metavar="OLD")
    f.add_argument("new", metavar="NEW")
    _add_report_args(f)
    f.set_defaults(drift_command="diff")


# -- helpers -------------------------------------------------------------------------------------------
def _contract(provider: str | None) -> specs.Contract:
    if not provider:
        raise UsageError("--provider is required")
    try:
        return specs.load(provider)
    except specs.SpecError as exc:
        raise UsageError(str(exc)) from None


def _host_urls(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        host, sep, url = item.partition("=")
        if not sep or not host or not url.startswith(("http://", "https://")):
            raise UsageError(f"--host-url must look like run=https://fal.run, not {item!r}")
        out[host.strip()] = url.strip()
    return out


def _verify(args: argparse.Namespace) -> bool | str:
    if args.insecure:
        return False
    if args.ca_file:
        if not Path(args.ca_file).is_file():
            raise UsageError(f"--ca-file {args.ca_file}: no such file")
        return args.ca_file
    return True


def _options(args: argparse.Namespace) -> FlowOptions:
    for name in ("poll_interval", "poll_timeout", "request_timeout"):
        if not getattr(args, name) > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if args.seconds < 1:
        raise UsageError("--seconds must be at least 1")
    if args.max_spend_usd < 0:
        raise UsageError("--max-spend-usd must be >= 0")
    return FlowOptions(poll_interval=args.poll_interval, poll_timeout=args.poll_timeout,
                       request_timeout=args.request_timeout, seconds=args.seconds, source_id=args.source_id,
                       remix=not args.no_remix, probes=not args.no_probes, cleanup=not args.no_cleanup,
                       allow_spend=args.allow_spend, max_spend_usd=args.max_spend_usd, free_only=args.free_only,
                       verify=_verify(args))


def _api_key(contract: specs.Contract, args: argparse.Namespace, hosts: dict[str, str]) -> str:
    var = args.api_key_env or contract.auth.get("env")
    key = os.environ.get(var) if var else None
    if key:
        return key
    if all(is_local(u) for u in hosts.values()):
        return "drift-recorder-local-key"
    raise UsageError(f"set {var} in the environment (the API key for {contract.id}); keys are never taken from "
                     "the command line")


def _spend_guard(contract: specs.Contract, hosts: dict[str, str], free_hosts: set[str], options: FlowOptions) -> Any:
    """The conformance suite's per-request spend guard (conformance/spend.py), or None when it cannot be built
    (the pre-flight check still applies)."""

    class _Target:
        free = len(free_hosts) == len(hosts)

        @staticmethod
        def base_url(provider: str, host: str) -> str | None:
            return hosts.get(host) if provider == contract.id else None

    try:
        return SpendGuard(_Target(), {contract.id: contract}, allow_spend=options.allow_spend,
                          max_spend_usd=options.max_spend_usd)
    except Exception:
        return None


def _check_reachable(url: str, verify: bool | str) -> None:
    import httpx

    try:
        with httpx.Client(verify=verify, timeout=5, trust_env=False) as c:
            c.get(url)
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None


def record(contract: specs.Contract, args: argparse.Namespace, output: Path | None) -> tuple[Cassette, list[str]]:
    """Run the flow for ``args`` and return ``(cassette, flow errors)``; writes the cassette to ``output``.

    Raises:
        UsageError: bad flags, unreachable target, missing key, or spend refused.
    """
    try:
        hosts = resolve_hosts(contract, args.base_url, _host_urls(args.host_url))
    except FlowError as exc:
        raise UsageError(str(exc)) from None
    for url in hosts.values():
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--base-url must be an http(s) URL, not {url!r}")
    options = _options(args)
    key = _api_key(contract, args, hosts)
    free_hosts = {h for h, u in hosts.items() if is_free_host(u, options.verify)}
    for h, url in hosts.items():
        if is_local(url) and h not in free_hosts:
            _check_reachable(url, options.verify)
    guard = _spend_guard(contract, hosts, free_hosts, options)
    rec = Recorder(provider=contract.id, hosts=hosts, secrets=[key], store_binary=args.store_binary, guard=guard)
    try:
        result = run_flow(contract, hosts, key, rec, options, free_hosts=free_hosts)
    except SpendRefused as exc:
        raise UsageError(str(exc)) from None
    if not rec.cassette.interactions:
        raise UsageError(f"nothing was recorded: {'; '.join(result.errors) or 'the flow made no request'}")
    if all(i.response is None for i in rec.cassette.interactions):
        raise UsageError(f"cannot reach {args.base_url}: {result.errors[0] if result.errors else 'no response'}")
    if output is not None:
        try:
            rec.cassette.save(output)
        except CassetteError as exc:
            raise UsageError(str(exc)) from None
    return rec.cassette, result.errors


def _write_reports(report: Report, args: argparse.Namespace) -> None:
    targets = []
    for item in args.report:
        fmt, sep, path = item.partition("=")
        fmt = "markdown" if fmt == "md" else fmt
        if not sep or fmt not in (*FORMATS, "html") or not path:
            raise UsageError(f"--report must look like junit=drift.xml (formats: {', '.join(FORMATS)}, html), "
                             f"not {item!r}")
        targets.append((fmt, Path(path)))
    if getattr(args, "html", None):
        targets.append(("html", Path(args.html)))
    for fmt, path in targets:
        try:
            if path.parent and not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "html":
                write_findings(report, path, args.fail_on)
            else:
                path.write_text(render(report, fmt, args.fail_on), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write report {path}: {exc.strerror or exc}") from None
    sys.stdout.write(render(report, args.format, args.fail_on))
    sys.stdout.flush()


# -- commands ------------------------------------------------------------------------------------------
def cmd_record(args: argparse.Namespace) -> int:
    """``record``: run the flow, write the cassette; 0 complete, 1 flow error (cassette kept)."""
    contract = _contract(args.provider)
    output = Path(args.output or f"{contract.id}.cassette.json")
    cassette, errors = record(contract, args, output)
    print(f"recorded {len(cassette.interactions)} interaction(s) of {contract.id} into {output}"
          + (f" (binary bodies in {output.name}.blobs)" if cassette.blobs else ""))
    for e in errors:
        print(f"{PROG} record: flow error: {e}", file=sys.stderr)
    return 1 if errors else 0


def cmd_drift(args: argparse.Namespace) -> int:
    """``drift``: check cassettes (and/or a fresh recording) against the contract; 0/1 by ``--fail-on``."""
    if not args.cassettes and not args.base_url:
        raise UsageError("give cassette files, or --base-url to record and check in one go")
    cassettes: list[Cassette] = []
    for path in args.cassettes:
        try:
            cassettes.append(Cassette.load(path))
        except CassetteError as exc:
            raise UsageError(str(exc)) from None
    provider = args.provider or next((c.provider for c in cassettes if c.provider), None)
    if not provider:
        raise UsageError("--provider is required (the cassettes name no provider)")
    for c in cassettes:
        if c.provider and c.provider != provider:
            raise UsageError(f"{c.path} was recorded for {c.provider}, not {provider}")
    contract = _contract(provider)
    if args.contract:
        contract = _edited_contract(contract, args.contract)
    flow_errors: list[str] = []
    if args.base_url:
        save = Path(args.save_cassette) if args.save_cassette else None
        live, flow_errors = record(contract, args, save)
        if save is None:
            live.path = Path(tempfile.gettempdir()) / f"{contract.id}.live.cassette.json"
        cassettes.append(live)
    report: Report | None = None
    for c in cassettes:
        report = check_cassette(c, contract, report)
    report.title = f"drift: {contract.id} traffic ({len(cassettes)} cassette(s)) vs contract"
    if flow_errors:
        report.subject["flow_errors"] = flow_errors
        for e in flow_errors:
            print(f"{PROG} drift: flow error: {e}", file=sys.stderr)
    _write_reports(report, args)
    return 1 if report.fails(args.fail_on) else 0


def _edited_contract(base: specs.Contract, ref: str) -> specs.Contract:
    try:
        doc = load_contract_doc(ref)
    except DiffError as exc:
        raise UsageError(str(exc)) from None
    provider = doc.provider or base.provider
    if doc.provider is not None:
        try:
            specs.validate_provider_metadata(doc.provider, ref)
        except specs.SpecError as exc:
            raise UsageError(str(exc)) from None
    contract = specs.Contract(id=base.id, openapi=doc.openapi, provider=provider, directory=base.directory)
    try:
        contract.operations()
    except specs.SpecError as exc:
        raise UsageError(f"--contract {ref}: {exc}") from None
    return contract


def cmd_diff(args: argparse.Namespace) -> int:
    """``diff``: compare two contracts; 0/1 by ``--fail-on``."""
    try:
        report = diff_contracts(args.old, args.new)
    except DiffError as exc:
        raise UsageError(str(exc)) from None
    _write_reports(report, args)
    return 1 if report.fails(args.fail_on) else 0


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``record``/``drift``/``diff`` command; returns the exit code (0, 1 or 2)."""
    fn = {"record": cmd_record, "drift": cmd_drift, "diff": cmd_diff}.get(getattr(args, "drift_command", None))
    if fn is None:
        print(f"{PROG}: error: unknown drift command", file=sys.stderr)
        return 2
    try:
        return fn(args)
    except UsageError as exc:
        print(f"{PROG} {args.drift_command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m conformance.drift``)."""
    parser = _Parser(prog="python -m conformance.drift", description="Drift detection: record provider "
                     "traffic into cassettes, compare it with the contract, and diff contract versions.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add_subcommands(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run(args)


__all__ = ["COMMANDS", "add_subcommands", "main", "record", "run"]
