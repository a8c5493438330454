"""Stoplight Prism (a third-party OpenAPI mock, "a server we did not write") serving one of OUR contracts.

Prism is pinned in ``tools/prism/package-lock.json`` and installed with ``scripts/install-prism`` (CI runs
it; tests that use Prism require it and never skip). :func:`prism_server` writes one host's flattened
document (``specs.load(provider).host_document(host)``) to a temporary JSON file, starts::

    tools/prism/node_modules/.bin/prism mock <file> --host 127.0.0.1 --port <free port>
        --dynamic=false --errors=false --cors=false --multiprocess=false --verboseLevel=warn

(with ``node --require tools/prism/ascii-violations-header.js``, a one-header crash workaround, see
``header_shim``) in its own process group, waits until it accepts connections, yields
``http://127.0.0.1:PORT`` and stops the whole group (SIGTERM, then SIGKILL; bounded waits) when the block
ends.

Flags, chosen so Prism behaves like a plain example-answering mock of the contract:

- ``--dynamic=false`` (static mode): a 2xx body is the operation's first declared example, else one Prism
  builds from the schema deterministically (defaults/enums/first types, ``"string"`` for strings); no
  json-schema-faker randomness, so runs are reproducible.
- ``--errors=false``: Prism still validates every request (security, parameters, body) and answers an
  invalid one with the contract's own error response (401 for a missing credential or a wrong scheme --
  the key itself is never checked --, else 422, else 400, whichever the operation declares, with that
  response's example or a schema-built body); the
  violations are listed in an ``sl-violations`` header. ``--errors`` would in addition replace any answer
  whose *response* breaks the contract (e.g. an example marked ``x-expected-invalid``) by a 500
  ``application/problem+json`` the contract does not declare.
- ``--cors=false``: no ``Access-Control-*`` headers and no automatic answers to CORS preflights, so every
  answer comes from the contract (Prism's default is ``--cors=true``).
- ``--multiprocess=false`` (the default): one node process, so stopping it is one process group.
- ``--verboseLevel=warn``: keep the log (written to a file, shown when startup fails) small.

Prism ignores the path of ``servers`` in mock mode: requests go to the contract's paths on the root of the
yielded URL (``/videos``, ``/fal-ai/sora-2/text-to-video``), as the suite's ``--base-url`` expects.

Beware: schema-built ``format: uri`` values are ``http://example.com`` (fal's submit answers
``status_url``/``response_url``/``cancel_url`` with it) and examples carry real asset URLs; a client that
follows them (the conformance queue driver does) leaves 127.0.0.1. Run such clients without a route out
(e.g. ``unshare -rn``) or keep them on the yielded URL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import specs

ROOT = Path(__file__).resolve().parent.parent
PRISM_DIR = ROOT / "tools" / "prism"
PRISM_BIN = PRISM_DIR / "node_modules" / ".bin" / "prism"
HEADER_SHIM = PRISM_DIR / "ascii-violations-header.js"
PRISM_FLAGS = ("--dynamic=false", "--errors=false", "--cors=false", "--multiprocess=false",
               "--verboseLevel=warn")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class PrismError(RuntimeError):
    """Prism exited early, did not listen in time, or died while serving; the message has its log's tail."""


class PrismNotInstalledError(PrismError):
    """Prism (or node) is missing; the message tells the user to run scripts/install-prism."""


def prism_command(header_shim: bool = True) -> list[str]:
    """``[node, (--require shim,) prism entry point]``; raises :class:`PrismNotInstalledError` when node or
    Prism is missing. ``header_shim`` preloads ``tools/prism/ascii-violations-header.js`` (see there)."""
    if not PRISM_BIN.exists():
        raise PrismNotInstalledError(
            f"Stoplight Prism is not installed ({PRISM_BIN.relative_to(ROOT)} is missing); "
            "run scripts/install-prism (needs Node 20+ and npm)")
    node = shutil.which("node")
    if node is None:
        raise PrismNotInstalledError("node is not on PATH; Prism needs Node 20+ (then run scripts/install-prism)")
    shim = ["--require", str(HEADER_SHIM)] if header_shim else []
    return [node, *shim, str(PRISM_BIN.resolve())]


def resolve_host(provider: str, host: str | None) -> str:
    """The host id to serve: ``host``, or the provider's only host when ``host`` is None."""
    contract = specs.load(provider)
    ids = [h["id"] for h in contract.hosts]
    if host is None:
        if len(ids) != 1:
            raise ValueError(f"{provider} has several hosts ({', '.join(ids)}); pass host=")
        return ids[0]
    if host not in ids:
        raise ValueError(f"{provider} has no host {host!r} (hosts: {', '.join(ids)})")
    return host


def write_host_document(provider: str, host: str | None, path: Path) -> Path:
    """Write ``specs.load(provider).host_document(host)`` to ``path`` as JSON; returns ``path``."""
    document = specs.load(provider).host_document(resolve_host(provider, host))
    path.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _log_tail(log: Path, lines: int = 30) -> str:
    """Prism's ``fatal`` lines (the reason it exited) and the last ``lines`` lines of its log."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    all_lines = text.strip().splitlines()
    fatal = [line for line in all_lines if "fatal" in line][:3]
    tail = [line for line in all_lines[-lines:] if line not in fatal]
    return "\n".join(fatal + tail) or "(empty log)"


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL it; waits at most 2 * STOP_TIMEOUT."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            continue
    try:  # reap any child left in the group (none with --multiprocess=false)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def prism_server(provider: str, host: str | None = None, *, extra_args: tuple[str, ...] = (),
                 start_timeout: float = START_TIMEOUT, log: Path | None = None,
                 header_shim: bool = True) -> Iterator[str]:
    """Serve one host of a provider's contract with Prism; yields ``http://127.0.0.1:PORT``.

    Args:
        provider: a provider id (``"openai"``, ``"fal"``, ...).
        host: a host id of the provider (``"queue"``/``"run"`` for fal); None for a provider's only host.
        extra_args: more ``prism mock`` arguments; one naming an option of :data:`PRISM_FLAGS` replaces
            that default (``("--errors",)``, ``("--verboseLevel=info",)``).
        start_timeout: seconds to wait for Prism to listen.
        log: keep Prism's output (stdout and stderr) in this file; by default it goes to a temporary
            file that is deleted when the block ends (its tail is in the error if Prism fails to start).
        header_shim: preload ``tools/prism/ascii-violations-header.js``, which keeps Prism alive when a
            validation message quotes a non-Latin-1 character (unpatched, Prism 5.14.2 exits on such a
            request: stoplightio/prism#1934). It only escapes the ``sl-violations`` debug header.

    Raises:
        PrismNotInstalledError: Prism or node is missing (run scripts/install-prism).
        PrismError: Prism exited early or did not listen within ``start_timeout``, or (raised when the
            block ends) it died while serving.
        ValueError / specs.SpecError: unknown provider or host.
    """
    command = prism_command(header_shim)
    host_id = resolve_host(provider, host)
    with tempfile.TemporaryDirectory(prefix=f"prism-{provider}-{host_id}-") as tmp:
        document = write_host_document(provider, host_id, Path(tmp) / f"{provider}-{host_id}.json")
        log = Path(log) if log is not None else Path(tmp) / "prism.log"
        port = free_port()
        overridden = {arg.split("=", 1)[0] for arg in extra_args if arg.startswith("--")}
        defaults = [flag for flag in PRISM_FLAGS if flag.split("=", 1)[0] not in overridden]
        argv = [*command, "mock", str(document), "--host", "127.0.0.1", "--port", str(port),
                *defaults, *extra_args]
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(argv, cwd=PRISM_DIR, stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + start_timeout
            while not _listening(port):
                if proc.poll() is not None:
                    raise PrismError(f"prism exited with code {proc.returncode} serving {provider}/"
                                     f"{host_id}:\n{_log_tail(log)}")
                if time.monotonic() > deadline:
                    raise PrismError(f"prism did not listen on 127.0.0.1:{port} within {start_timeout:g} s "
                                     f"serving {provider}/{host_id}:\n{_log_tail(log)}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
            if proc.poll() is not None:
                raise PrismError(f"prism exited with code {proc.returncode} while serving {provider}/"
                                 f"{host_id} (requests after that got no answer):\n{_log_tail(log)}")
        finally:
            _stop(proc)
