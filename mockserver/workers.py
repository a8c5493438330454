"""``mockserver serve --workers N``: N processes serving one port (``SO_REUSEPORT``), sharing the store.

The supervisor (this module, in the process the command started) checks the store once (an unusable one is one
line and exit 2), installs the ``--fault`` rules in it, forks the workers, waits until each is listening, prints
one banner, and then keeps them running: a worker that dies (``kill -9``, a crash) is started again and serves
the same jobs, since they live in the store.  SIGINT/SIGTERM stop every worker.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import specs

from .config import ConfigError, MockConfig
from .store import open_backend

#: Seconds a worker may take to start listening.
START_SECONDS = 60.0
#: Seconds between a worker's death and its restart.
RESTART_DELAY = 0.2
#: Seconds workers get to stop after SIGTERM before they are killed.
STOP_SECONDS = 10.0


def free_port(host: str) -> int:
    """A port that is free on ``host`` now (for ``--port 0``: every worker must bind the same one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _spawn(cfg: MockConfig, index: int, serve: Callable[..., Any]) -> tuple[int, int]:
    """Fork worker ``index``; returns ``(pid, fd)`` where ``fd`` becomes readable once it listens (EOF if it
    failed)."""
    r, w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(r)
        _die_with(parent)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        code = 2
        try:
            cfg.worker = index
            code = asyncio.run(serve(cfg, w))
        except (ConfigError, specs.SpecError) as exc:
            print(f"mockserver: error: worker {index}: {exc}", file=sys.stderr, flush=True)
        except OSError as exc:
            print(f"mockserver: error: worker {index}: cannot serve on {cfg.host}:{cfg.port}: "
                  f"{exc.strerror or exc}", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            code = 0
        except BaseException as exc:  # noqa: BLE001 - a worker reports and exits, never a traceback
            print(f"mockserver: error: worker {index}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(w)
    return pid, r


def _die_with(parent: int) -> None:
    """Ask Linux to SIGTERM this worker when its supervisor dies (even by ``kill -9``), so no worker is left
    serving alone; elsewhere (or if the supervisor is already gone) nothing is asked, or the worker exits."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(0)


def _await_ready(fd: int, deadline: float) -> bool:
    """True once the worker behind ``fd`` wrote its ready byte; False on EOF or at ``deadline``."""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            readable, _, _ = select.select([fd], [], [], min(left, 0.5))
            if readable:
                return os.read(fd, 1) == b"r"
    finally:
        os.close(fd)


def _banner(cfg: MockConfig, url: str, public_store: str, pids: dict[int, int], ca_path: str | None) -> None:
    print(f"mockserver {url} (clock={cfg.clock}, speed={cfg.speed}, seed={cfg.seed}, store={public_store}, "
          f"workers={cfg.workers})", flush=True)
    for pid_ in cfg.providers:
        contract = specs.load(pid_)
        for i, host in enumerate(contract.hosts):
            prefix = specs.mount_prefix(host, cfg.single_provider and i == 0)
            print(f"  {pid_:<10} {host['id']:<6} {url + prefix:<45} (real: {host['base_url']})", flush=True)
    print(f"  admin API  {url}/__mock/health", flush=True)
    if ca_path:
        print(f"  TLS CA     {ca_path}   (export SSL_CERT_FILE={ca_path})", flush=True)
    print("  workers    " + " ".join(f"{i}:{p}" for i, p in sorted(pids.items())), flush=True)


def supervise(cfg: MockConfig, serve: Callable[..., Any]) -> int:
    """Run ``cfg.workers`` worker processes (each ``serve(cfg, ready_fd)``) on one port until SIGINT/SIGTERM.

    Args:
        cfg: a validated configuration with ``workers > 1`` and a shared ``store``.
        serve: the coroutine function a worker runs (``mockserver.cli._serve``).

    Returns:
        0 after a clean stop; 2 when a worker cannot start.

    Raises:
        ConfigError: the store cannot be used, or a ``--fault`` is invalid.
    """
    from .middleware.faults import FaultError
    from .store.shared import install_faults

    ca_path = None
    if cfg.tls:  # one certificate for every worker
        import tempfile

        from .embedded import write_tls

        cfg.tls_dir = cfg.tls_dir or tempfile.mkdtemp(prefix="mock-tls-")
        ca_path = write_tls(cfg.tls_dir)
    backend = open_backend(cfg.store)
    assert backend is not None  # validate() refused memory with workers > 1
    try:
        install_faults(backend, cfg.faults, {pid: specs.load(pid) for pid in cfg.providers})
    except FaultError as exc:
        raise ConfigError(f"faults: {exc}") from None
    public_store = backend.public_url
    backend.close()
    if cfg.port == 0:
        cfg.port = free_port(cfg.host)
    host = cfg.host if ":" not in cfg.host else f"[{cfg.host}]"
    url = f"{'https' if cfg.tls else 'http'}://{host}:{cfg.port}"
    if not cfg.public_base_url:
        cfg.public_base_url = url

    stopping = False

    def on_signal(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    pids: dict[int, int] = {}
    for i in range(cfg.workers):
        pid, fd = _spawn(cfg, i, serve)
        pids[i] = pid
        if not _await_ready(fd, time.monotonic() + START_SECONDS):
            _stop(pids)
            print(f"mockserver: error: worker {i} did not start", file=sys.stderr, flush=True)
            return 2
    _banner(cfg, url, public_store, pids, ca_path)
    while not stopping:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.1)
            continue
        index = next((i for i, p in pids.items() if p == pid), None)
        if index is None or stopping:
            continue
        how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"code {os.waitstatus_to_exitcode(status)}")
        print(f"mockserver: worker {index} (pid {pid}) exited with {how}; restarting", flush=True)
        time.sleep(RESTART_DELAY)
        new_pid, fd = _spawn(cfg, index, serve)
        pids[index] = new_pid
        if _await_ready(fd, time.monotonic() + START_SECONDS):
            print(f"mockserver: worker {index} restarted (pid {new_pid})", flush=True)
    print("mockserver: shutting down", flush=True)
    _stop(pids)
    return 0


def _stop(pids: dict[int, int]) -> None:
    """SIGTERM every worker, wait up to :data:`STOP_SECONDS`, then SIGKILL those left."""
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_SECONDS
    left = set(pids.values())
    while left and time.monotonic() < deadline:
        for pid in list(left):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                left.discard(pid)
        time.sleep(0.05)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


__all__ = ["free_port", "supervise"]
