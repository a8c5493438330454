"""Status-poll throughput per ``--store`` and ``--workers``, each as a ratio of the aiohttp ceiling measured in the
same run, and the bytes one job takes in Redis.

    .venv/bin/python bench/store_load.py [--seconds 10] [--connections 32] [--jobs 20000]

Same method as bench/load.py (wrk when installed, one thread pinned to core 1; the ceiling and single-process
mocks pinned to core 0): ``GET /openai/v1/videos/{id}`` of one in-progress job on a manual clock, against
``memory`` (1 worker), ``sqlite`` and ``redis`` (1 and 2 workers).  A 2-worker mock is not pinned (its two
processes may use both cores, which the load generator shares).  ``redis-server`` (scripts/install-redis) is
started on a free 127.0.0.1 port with no persistence; the SQLite file is in a temporary directory.  The
memory store's ratio should stay >= 0.6 (issue 10).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import load  # noqa: E402 - bench/load.py: ceiling server, load generator, pinning

AUTH = {"Authorization": "Bearer bench"}


def start_redis(directory: str) -> tuple[subprocess.Popen, int]:
    """A redis-server on a free 127.0.0.1 port, no persistence; returns ``(process, port)``."""
    binary = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")
    if not binary:
        raise SystemExit("store_load: redis-server is missing (scripts/install-redis)")
    port = load.free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", directory, "--loglevel", "warning"], stdout=subprocess.DEVNULL)
    load.wait_port(port)
    return proc, port


def start_mock(store: str, workers: int) -> tuple[subprocess.Popen, int]:
    """``mockserver serve --only openai --clock manual`` on a free port; returns once it printed its banner."""
    port = load.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--only", "openai",
                             "--clock", "manual", "--store", store, "--workers", str(workers)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"mock on {store} exited")
        if (workers > 1 and re.match(r"\s+workers ", line)) or (workers == 1 and "admin API" in line):
            break
    if workers == 1:
        load.pin(proc.pid, 0)
    return proc, port


def one_job(port: int) -> str:
    """Create one job and move the clock so that it is in progress; returns its id."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/openai/v1/videos", method="POST",
                                 data=json.dumps({"prompt": "bench", "seconds": "4"}).encode(),
                                 headers={**AUTH, "Content-Type": "application/json"})
    vid = json.loads(urllib.request.urlopen(req, timeout=10).read())["id"]
    urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{port}/__mock/clock/advance", method="POST", data=b'{"seconds": 1.5}',
        headers={"Content-Type": "application/json"}), timeout=10).read()
    return vid


def redis_bytes_per_job(port: int, jobs: int) -> dict:
    """Redis ``used_memory`` growth for ``jobs`` jobs created through the shared job store (a fresh db)."""
    code = f"""
import json, redis
from mockserver.config import MockConfig
from mockserver.state import MockState
r = redis.Redis(port={port}); r.flushall()
state = MockState(MockConfig(providers=['openai'], port=0, store='redis://127.0.0.1:{port}/1'))
timing = state.timing('openai')
before = state.backend.bytes_used()
for i in range({jobs}):
    state.store.create('openai', 'generate', {{'prompt': 'a red fox running through fresh snow at dawn, cinematic',
                       'seconds': 8, 'size': '1280x720', 'model': 'sora-2'}}, timing,
                       id_prefix='video_', id_format='hex48')
after = state.backend.bytes_used()
print(json.dumps({{'jobs': len(state.store), 'bytes_per_job': (after - before) / {jobs}}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=900,
                         env={**os.environ, "PYTHONPATH": ROOT})
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="load duration per server (default 10)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    ap.add_argument("--jobs", type=int, default=20_000, help="jobs for the Redis bytes-per-job figure")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="store-load-")
    redis_proc, redis_port = start_redis(tmp)
    ceiling_port = load.free_port()
    ceiling = subprocess.Popen([sys.executable, "-c", load.CEILING_SERVER, str(ceiling_port)])
    rows = []
    try:
        load.pin(ceiling.pid, 0)
        load.wait_port(ceiling_port)
        base = load.run_load(f"http://127.0.0.1:{ceiling_port}/ceiling/video_x", args.seconds, args.connections, {})
        ceiling.terminate()
        ceiling.wait(10)
        cases = [("memory", "memory", 1), ("sqlite", f"sqlite:///{tmp}/bench.db", 1),
                 ("sqlite", f"sqlite:///{tmp}/bench.db", 2), ("redis", f"redis://127.0.0.1:{redis_port}/0", 1),
                 ("redis", f"redis://127.0.0.1:{redis_port}/0", 2)]
        for name, store, workers in cases:
            mock, port = start_mock(store, workers)
            try:
                vid = one_job(port)
                got = load.run_load(f"http://127.0.0.1:{port}/openai/v1/videos/{vid}", args.seconds,
                                    args.connections, AUTH)
            finally:
                mock.terminate()
                mock.wait(20)
            rows.append((name, workers, got))
        mem = redis_bytes_per_job(redis_port, args.jobs)
    finally:
        if ceiling.poll() is None:
            ceiling.terminate()
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    gen = "wrk" if shutil.which("wrk") else "python aiohttp client"
    print(f"status polls, {args.connections} connections, {args.seconds:.0f} s each, 127.0.0.1, generator: {gen}, "
          f"{os.cpu_count()} cores")
    print(f"{'server':<30}{'req/s':>10}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    print(f"{'ceiling (fixed JSON aiohttp)':<30}{base['rps']:>10.0f}{1:>8.2f}{base['p50_ms']:>9.2f}"
          f"{base['p99_ms']:>9.2f}{base['errors']:>8}")
    for name, workers, got in rows:
        label = f"mock --store {name} --workers {workers}"
        print(f"{label:<30}{got['rps']:>10.0f}{got['rps'] / base['rps']:>8.2f}{got['p50_ms']:>9.2f}"
              f"{got['p99_ms']:>9.2f}{got['errors']:>8}")
    memory_ratio = rows[0][2]["rps"] / base["rps"]
    print(f"memory store ratio: {memory_ratio:.2f} (target >= 0.60)")
    print(f"redis: {mem['jobs']} jobs, {mem['bytes_per_job']:.0f} bytes per job (used_memory growth)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
