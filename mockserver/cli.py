"""The ``mockserver`` command: ``serve`` the stateful mock, list ``providers``.

Exit codes: 0 success, 2 usage or configuration error (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

import specs

from .config import ConfigError, MockConfig, load_profile, parse_rate


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as argparse does, but with our prefix
        self.exit(2, f"mockserver: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mockserver", description="Stateful mock server for the Sora 2 video-to-video provider "
                "APIs (openai, fal, sunra, onerouter, gptge, aigateway), driven by the vendored contracts.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("serve", help="serve the mock (all providers, each host under its own path prefix)",
                       description="Serve the mock. Every provider host is mounted under its own prefix "
                       "(/openai/v1, /fal, /fal-run, /sunra, ...) unless --provider puts one at the root.")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free port)")
    s.add_argument("--provider", metavar="ID", help="serve only this provider, its primary host at the root")
    s.add_argument("--only", metavar="ID", action="append", help="serve only these providers (repeatable)")
    s.add_argument("--clock", choices=["system", "manual"], default=None,
                   help="system: jobs advance in real time x --speed; manual: time is frozen until "
                   "POST /__mock/clock/advance")
    s.add_argument("--speed", type=float, default=None, help="time scale (10 = ten times faster)")
    s.add_argument("--seed", type=int, default=None, help="seed for ids, probabilistic faults and latency")
    s.add_argument("--api-key", metavar="KEY", help="accept only this API key (others get 401)")
    s.add_argument("--profile", metavar="FILE", help="YAML profile: timings, faults, speed, seed, clock, ...")
    s.add_argument("--timing", metavar="ID:queued=S,in_progress=S", action="append", default=[],
                   help="lifecycle timing of a provider in seconds (repeatable)")
    s.add_argument("--fault", metavar="KIND[:k=v,...]", action="append", default=[],
                   help="install a fault at start, e.g. rate_limit:provider=openai,times=1 (repeatable)")
    s.add_argument("--rate-limit", metavar="N/s", help="token bucket per API key emitting real 429s")
    s.add_argument("--tls", action="store_true", help="serve HTTPS with a locally generated CA")
    s.add_argument("--tls-dir", metavar="DIR", help="where to write the CA file (default: a temp dir)")
    s.add_argument("--openai-webhook-url", metavar="URL", help="deliver video.completed/video.failed here")
    s.add_argument("--openai-webhook-secret", metavar="whsec_...", help="signing secret for those webhooks")
    s.add_argument("--replay", metavar="CASSETTE", help="serve a recorded cassette (drift recordings)")
    s.add_argument("--store", metavar="URL", default=None,
                   help="where jobs, faults, clock and journal live: memory (default), sqlite:///PATH (durable "
                   "on one host) or redis://HOST:PORT/DB (shared by processes and hosts)")
    s.add_argument("--workers", metavar="N", type=int, default=None,
                   help="serve with N processes on one port (SO_REUSEPORT); N > 1 needs a sqlite or redis --store")
    lp = sub.add_parser("providers", help="list the vendored providers (family, hosts, auth)")
    lp.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _timing(text: str) -> tuple[str, dict[str, float]]:
    pid, _, rest = text.partition(":")
    out: dict[str, float] = {}
    try:
        for item in filter(None, rest.split(",")):
            k, v = item.split("=")
            key = {"queued": "queued_seconds", "in_progress": "in_progress_seconds",
                   "ttl": "asset_ttl_seconds"}.get(k.strip(), k.strip())
            out[key] = float(v)
    except ValueError:
        raise ConfigError(f"--timing must look like fal:queued=0.5,in_progress=2, not {text!r}") from None
    if not pid or not out:
        raise ConfigError(f"--timing must look like fal:queued=0.5,in_progress=2, not {text!r}")
    return pid, out


def config_from_args(args: argparse.Namespace) -> MockConfig:
    """Build a :class:`MockConfig` from ``serve`` arguments (profile first, flags override).

    Raises ConfigError (one line) for any bad value.
    """
    profile = load_profile(args.profile) if args.profile else {}
    cfg = MockConfig(host=args.host, port=args.port)
    if "providers" in profile:
        cfg.providers = list(profile["providers"])
    if args.only:
        cfg.providers = list(dict.fromkeys(args.only))
    if args.provider:
        cfg.providers = [args.provider]
        cfg.single_provider = True
    for key in ("speed", "seed", "clock", "api_key", "openai_webhook_url", "openai_webhook_secret",
                "webhook_max_attempts", "webhook_backoff", "store", "workers"):
        if key in profile:
            setattr(cfg, key, profile[key])
        val = getattr(args, key, None)
        if val is not None:
            setattr(cfg, key, val)
    timings = dict(profile.get("timings") or {})
    for text in args.timing:
        pid, t = _timing(text)
        timings.setdefault(pid, {}).update(t)
    cfg.timings = timings
    rate = args.rate_limit or profile.get("rate_limit")
    if rate:
        cfg.rate_limit = parse_rate(str(rate))
    cfg.tls = args.tls
    cfg.tls_dir = args.tls_dir
    cfg.replay = args.replay
    cfg.validate()
    labelled = [(f"profile {args.profile}: faults.{i}", spec) for i, spec in enumerate(profile.get("faults") or [])]
    labelled += [(f"--fault {text!r}", text) for text in args.fault]
    _check_faults(cfg, labelled)
    cfg.faults = [spec for _, spec in labelled]
    return cfg


def _check_faults(cfg: MockConfig, labelled: list[tuple[str, object]]) -> None:
    """Parse each fault spec and check its targets against the contracts of the served providers.

    Raises ConfigError naming where the spec came from (``--fault 'x'`` or ``profile p.yaml: faults.0``).
    """
    from .middleware.faults import FaultError, check_target, parse_fault

    contracts = {pid: specs.load(pid) for pid in cfg.providers}
    for label, spec in labelled:
        try:
            check_target(parse_fault(spec), contracts)  # type: ignore[arg-type]
        except FaultError as exc:
            raise ConfigError(f"{label}: {exc}") from None


def _providers(as_json: bool) -> int:
    rows = []
    for pid in specs.provider_ids():
        meta = specs.load(pid).provider
        rows.append({"id": pid, "display_name": meta["display_name"], "family": meta["family"],
                     "hosts": [{"id": h["id"], "base_url": h["base_url"], "family": h["family"],
                                "mount": h["mount"]} for h in meta["hosts"]],
                     "auth": {"header": meta["auth"]["header"], "schemes": meta["auth"]["schemes"],
                              "env": meta["auth"]["env"]},
                     "usd_per_second": (meta.get("pricing") or {}).get("usd_per_second")})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Vendored providers")
    for col in ("id", "name", "family", "hosts (mock mount)", "auth", "key env", "USD/s"):
        table.add_column(col, no_wrap=col in ("id", "hosts (mock mount)"))
    for r in rows:
        hosts = "\n".join(f"{h['base_url']} ({h['family']}, {h['mount']})" for h in r["hosts"])
        auth = f"{r['auth']['header']}: " + " | ".join(
            "<key>" if s == "raw" else f"{s} <key>" for s in r["auth"]["schemes"])  # provider.schema.yaml authScheme
        price = "-" if r["usd_per_second"] is None else f"{r['usd_per_second']:.3f}"
        table.add_row(r["id"], r["display_name"], r["family"], hosts, auth, r["auth"]["env"], price)
    console = Console()
    Console(width=max(170, console.width) if not console.is_terminal else None).print(table)
    return 0


async def _serve(cfg: MockConfig, ready_fd: int | None = None) -> int:
    from .embedded import start

    server = await start(cfg)
    state = server.state
    if ready_fd is not None:  # a worker of a group: tell the supervisor, which prints the banner
        import os

        os.write(ready_fd, b"r")
        os.close(ready_fd)
        return await _wait_for_signal(server)
    store = state.store_info()["url"]
    print(f"mockserver {server.url} (clock={cfg.clock}, speed={cfg.speed}, seed={cfg.seed}"
          + (f", store={store}" if store != "memory" else "") + ")", flush=True)
    for m in state.mounts:
        print(f"  {m.provider:<10} {m.host_id:<6} {state.base_url(m.provider, m.host_id):<45} "
              f"(real: {m.host['base_url']})", flush=True)
    print(f"  admin API  {server.url}/__mock/health", flush=True)
    if server.ca_path:
        print(f"  TLS CA     {server.ca_path}   (export SSL_CERT_FILE={server.ca_path})", flush=True)
    await _wait_for_signal(server)
    print("mockserver: shutting down", flush=True)
    return 0


async def _wait_for_signal(server) -> int:
    """Serve until SIGINT or SIGTERM, then stop the server."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "providers":
            return _providers(args.json)
        cfg = config_from_args(args)
        if cfg.workers > 1:
            from .workers import supervise

            return supervise(cfg, _serve)
        return asyncio.run(_serve(cfg))
    except (ConfigError, specs.SpecError) as exc:
        print(f"mockserver: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # e.g. address already in use
        where = f" on {args.host}:{args.port}" if args.command == "serve" else ""
        print(f"mockserver: error: cannot serve{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
