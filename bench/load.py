"""Load benchmark of the mock: status-poll throughput and latency versus a minimal aiohttp ceiling, and
resident memory per live job.

    .venv/bin/python bench/load.py [--seconds 10] [--connections 32] [--jobs 100000]

The load generator is ``wrk`` when installed (``apt-get install wrk``), else a Python aiohttp client (which
saturates before the servers do, so its ratio and p99 are pessimistic).

Both servers run in their own process on 127.0.0.1 (one core each is what a 2-core machine leaves once
the load generator takes the other); the same aiohttp load generator, with a bounded duration, drives
``GET /openai/v1/videos/{id}`` on the mock (auth, routing, lifecycle state computed from the clock,
rendering) and ``GET /ceiling/{id}`` on a handler that returns a fixed JSON body. Prints requests per
second, p50/p99 latency in milliseconds, the ratio, and the memory figures. Targets (issue 3): ratio >=
0.6, p99 < 10 ms at 32 connections, < 1 KB per live job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CEILING_SERVER = r"""
import sys
from aiohttp import web
BODY = b'{"id":"video_x","object":"video","status":"in_progress","progress":42}'
async def h(request):
    return web.Response(body=BODY, content_type="application/json")
app = web.Application()
app.router.add_get("/ceiling/{id}", h)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def pin(pid: int, cpu: int) -> None:
    try:
        os.sched_setaffinity(pid, {cpu % os.cpu_count()})
    except (AttributeError, OSError):
        pass


async def drive(url: str, seconds: float, connections: int, headers: dict[str, str]) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as session:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        # warm-up
        for _ in range(200):
            async with session.get(url) as resp:
                await resp.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": q[49] * 1000,
            "p99_ms": q[98] * 1000, "errors": errors}


def _wrk_ms(text: str) -> float:
    import re

    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, seconds: float, connections: int, headers: dict[str, str]) -> dict:
    """Drive ``url`` with wrk (Debian package ``wrk``): one thread, pinned to its own core."""
    import re

    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    proc = subprocess.Popen([*cmd, url], stdout=subprocess.PIPE, text=True)
    pin(proc.pid, 1)
    out, _ = proc.communicate(timeout=seconds + 60)
    dist = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": _wrk_ms(dist["50"]), "p99_ms": _wrk_ms(dist["99"]),
            "errors": int(non2xx.group(1)) if non2xx else 0}


def run_load(url: str, seconds: float, connections: int, headers: dict[str, str]) -> dict:
    """Run the load generator in its own process pinned to its own core: wrk when installed (it leaves
    the server's core alone), otherwise a bounded aiohttp client loop."""
    import shutil

    if shutil.which("wrk"):
        return run_wrk(url, seconds, connections, headers)
    code = (f"import asyncio, json, sys; sys.path.insert(0, {HERE!r}); import load; "
            f"print(json.dumps(asyncio.run(load.drive({url!r}, {seconds}, {connections}, {headers!r}))))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pin(proc.pid, 1)
    out, _ = proc.communicate(timeout=seconds + 120)
    return json.loads(out.strip().splitlines()[-1])


def memory_per_job(jobs: int) -> dict:
    """RSS growth of a process holding ``jobs`` live jobs created through the mock's own job store."""
    code = f"""
import gc, json, os, random
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
from mockserver.config import MockConfig
from mockserver.state import MockState
state = MockState(MockConfig(providers=['openai'], port=0))
timing = state.timing('openai')
gc.collect(); before = rss()
for i in range({jobs}):
    state.store.create('openai', 'generate', {{'prompt': 'a red fox running through fresh snow at dawn, cinematic',
                       'seconds': 8, 'size': '1280x720', 'model': 'sora-2'}}, timing,
                       id_prefix='video_', id_format='hex48')
gc.collect(); after = rss()
print(json.dumps({{'jobs': len(state.store), 'rss_before': before, 'rss_after': after,
                  'bytes_per_job': (after - before) / {jobs}}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="load duration per server (default 10)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    ap.add_argument("--jobs", type=int, default=100_000, help="live jobs for the memory figure")
    args = ap.parse_args()

    ceiling_port, mock_port = free_port(), free_port()
    ceiling = subprocess.Popen([sys.executable, "-c", CEILING_SERVER, str(ceiling_port)])
    mock = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", str(mock_port), "--only",
                             "openai", "--clock", "manual"], stdout=subprocess.DEVNULL, cwd=ROOT)
    try:
        for p in (ceiling, mock):
            pin(p.pid, 0)
        wait_port(ceiling_port)
        wait_port(mock_port)
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{mock_port}/openai/v1/videos", method="POST",
                                     data=json.dumps({"prompt": "bench", "seconds": "4"}).encode(),
                                     headers={"Authorization": "Bearer bench", "Content-Type": "application/json"})
        vid = json.loads(urllib.request.urlopen(req, timeout=10).read())["id"]
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{mock_port}/__mock/clock/advance", method="POST",
            data=b'{"seconds": 1.5}', headers={"Content-Type": "application/json"}), timeout=10).read()
        base = run_load(f"http://127.0.0.1:{ceiling_port}/ceiling/{vid}", args.seconds, args.connections, {})
        got = run_load(f"http://127.0.0.1:{mock_port}/openai/v1/videos/{vid}", args.seconds, args.connections,
                       {"Authorization": "Bearer bench"})
    finally:
        for p in (ceiling, mock):
            p.terminate()
            p.wait(10)
    mem = memory_per_job(args.jobs)
    ratio = got["rps"] / base["rps"]
    import shutil

    gen = "wrk" if shutil.which("wrk") else "python aiohttp client"
    print(f"status polls, {args.connections} connections, {args.seconds:.0f} s each, 127.0.0.1, generator: {gen}")
    print(f"{'server':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    print(f"{'ceiling (fixed JSON aiohttp)':<34}{base['rps']:>10.0f}{base['p50_ms']:>10.2f}{base['p99_ms']:>10.2f}"
          f"{base['errors']:>8}")
    print(f"{'mock GET /openai/v1/videos/{id}':<34}{got['rps']:>10.0f}{got['p50_ms']:>10.2f}{got['p99_ms']:>10.2f}"
          f"{got['errors']:>8}")
    print(f"throughput ratio mock/ceiling: {ratio:.2f} (target >= 0.60)")
    print(f"p99 at {args.connections} connections: {got['p99_ms']:.2f} ms (target < 10 ms)")
    print(f"memory: {mem['jobs']} live jobs, RSS +{(mem['rss_after'] - mem['rss_before']) / 2**20:.1f} MiB, "
          f"{mem['bytes_per_job']:.0f} bytes per job (target < 1024)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
