"""Servers the store tests start themselves on 127.0.0.1: a real ``redis-server`` on a free port, and
``mockserver serve`` processes (one or a group of ``--workers``) on a shared store.

``redis-server`` comes from Debian's package (``scripts/install-redis``; ``REDIS_SERVER_BIN`` names another
binary).  No fake: the acceptance tests talk to a real Redis.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_binary() -> str | None:
    """The ``redis-server`` to run (``REDIS_SERVER_BIN`` or the one on PATH), or None."""
    return os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")


class RedisServer:
    """A ``redis-server`` on a free 127.0.0.1 port with no persistence, in its own temp directory.

    Args:
        port: the port (default: a free one); ``extra``: more ``redis-server`` arguments
            (``"--requirepass", "pw"``).
    """

    def __init__(self, port: int | None = None, *extra: str) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is missing: run scripts/install-redis")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="mock-redis-")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--protected-mode", "yes", "--loglevel", "warning", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}")

    def url(self, db: int = 0) -> str:
        """``redis://127.0.0.1:PORT/DB``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        """Stop it (SIGKILL if it does not stop in 5 s) and remove its directory."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class MockProcess:
    """``python -m mockserver serve ARGS`` as a child process, up once its banner names its URL.

    Attributes:
        url: ``http(s)://127.0.0.1:PORT``; ``ca_path``: the CA of ``--tls``; ``workers``: ``{index: pid}`` from the banner (``--workers`` > 1).
    """

    def __init__(self, *args: str, timeout: float = 60) -> None:
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.lines: list[str] = []
        self.url = ""
        self.workers: dict[int, int] = {}
        self.ca_path: str | None = None
        deadline = time.monotonic() + timeout
        group = False
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read()
                raise RuntimeError(f"mockserver exited with {self.proc.wait(5)}: {err}")
            self.lines.append(line)
            m = re.match(r"mockserver (https?://\S+)", line)
            if m:
                self.url = m.group(1)
                group = "workers=" in line  # a group's banner ends with the workers line
            m = re.match(r"\s+TLS CA\s+(\S+)", line)
            if m:
                self.ca_path = m.group(1)
            m = re.match(r"\s+workers\s+(.*)", line)
            if m:
                self.workers = {int(a): int(b) for a, b in (w.split(":") for w in m.group(1).split())}
                return
            if "admin API" in line and not group:
                return
        self.stop()
        raise RuntimeError("mockserver did not print its banner")

    def admin(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        """Call ``/__mock/...`` and return the decoded JSON (raises urllib errors)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/__mock/{path.lstrip('/')}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")

    def kill9(self) -> None:
        """``kill -9`` the whole mock (the supervisor and every worker)."""
        for pid in self.workers.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 15 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def health_of(url: str, timeout: float = 5) -> dict:
    """``GET <url>/__mock/health`` on a fresh connection (so SO_REUSEPORT may hand it to any worker)."""
    req = urllib.request.Request(f"{url}/__mock/health", headers={"Connection": "close"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def worker_urls(mock: MockProcess, want: int = 2, tries: int = 400) -> dict[int, None]:
    """Wait until fresh connections reached ``want`` distinct workers; returns the indexes seen.

    Raises:
        AssertionError: fewer workers answered in ``tries`` connections.
    """
    seen: dict[int, None] = {}
    for _ in range(tries):
        try:
            seen[health_of(mock.url)["worker"]["index"]] = None
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
        if len(seen) >= want:
            return seen
    raise AssertionError(f"only workers {sorted(seen)} answered")
