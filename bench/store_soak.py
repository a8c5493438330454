"""Soak of the shared store: 10,000 live jobs polled at 1,000 requests/s for 60 s through 2 workers on Redis,
with a ``kill -9`` of one worker in the middle.

    .venv/bin/python bench/store_soak.py [--jobs 10000] [--rate 1000] [--seconds 60] [--kill-at 30]

Starts ``redis-server`` (scripts/install-redis) on a free 127.0.0.1 port and ``mockserver serve --workers 2
--store redis://...``; creates the jobs (``POST /openai/v1/videos``), then polls random jobs at a fixed rate
(``GET /openai/v1/videos/{id}``, 128 kept-alive connections).  At ``--kill-at`` seconds worker 0 gets SIGKILL;
its supervisor starts it again.  A GET whose connection the killed worker dropped is sent again once (as any
HTTP client retries an idempotent request on a reset connection); those are counted apart.  Afterwards every
job is read through the restarted worker and through the other one ("lost" = not answered 200 with its id).

Prints: requests sent and their rate, HTTP errors (any answer but 200), connection drops retried, requests
that failed even after the retry, lost jobs per worker, and how long the killed worker took to serve again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import store_load  # noqa: E402 - redis and port helpers

AUTH = {"Authorization": "Bearer soak"}


class Supervisor:
    """The 2-worker mock; follows its output for worker pids and restarts."""

    def __init__(self, store: str) -> None:
        self.port = store_load.load.free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", str(self.port),
                                      "--only", "openai", "--workers", "2", "--store", store, "--timing",
                                      "openai:queued=5,in_progress=600"],
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.pids: dict[int, int] = {}
        self.restarted = threading.Event()
        self.restarted_at = 0.0
        for line in self.proc.stdout:
            m = re.match(r"\s+workers\s+(.*)", line)
            if m:
                self.pids = {int(a): int(b) for a, b in (w.split(":") for w in m.group(1).split())}
                break
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        for line in self.proc.stdout:
            m = re.match(r"mockserver: worker (\d+) restarted \(pid (\d+)\)", line)
            if m:
                self.pids[int(m.group(1))] = int(m.group(2))
                self.restarted_at = time.monotonic()
                self.restarted.set()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def create_jobs(url: str, n: int) -> list[str]:
    import aiohttp

    ids: list[str] = []
    sem = asyncio.Semaphore(64)
    async with aiohttp.ClientSession(headers=AUTH, connector=aiohttp.TCPConnector(limit=64)) as session:
        async def one(i: int) -> None:
            async with sem, session.post(f"{url}/openai/v1/videos", json={"prompt": f"soak {i}"}) as resp:
                ids.append((await resp.json())["id"])

        await asyncio.gather(*(one(i) for i in range(n)))
    return ids


async def soak(url: str, ids: list[str], rate: float, seconds: float, kill_at: float, sup: Supervisor) -> dict:
    import aiohttp

    stats = {"sent": 0, "ok": 0, "http_errors": 0, "retried": 0, "failed": 0}
    rng = random.Random(1)
    sem = asyncio.Semaphore(512)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(headers=AUTH, timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=128)) as session:
        async def one(jid: str) -> None:
            async with sem:
                for attempt in (1, 2):
                    try:
                        async with session.get(f"{url}/openai/v1/videos/{jid}") as resp:
                            body = await resp.json()
                            if resp.status == 200 and body.get("id") == jid:
                                stats["ok"] += 1
                            else:
                                stats["http_errors"] += 1
                            return
                    except (TimeoutError, aiohttp.ClientConnectionError):
                        if attempt == 1:
                            stats["retried"] += 1
                            continue
                        stats["failed"] += 1

        tasks = set()
        start = time.monotonic()
        killed = False
        i = 0
        while True:
            now = time.monotonic() - start
            if now >= seconds:
                stats["send_seconds"] = now
                break
            if not killed and now >= kill_at:
                os.kill(sup.pids[0], signal.SIGKILL)
                stats["killed_at"] = time.monotonic()
                killed = True
            due = int(now * rate)
            while i < due:
                t = asyncio.create_task(one(ids[rng.randrange(len(ids))]))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                i += 1
                stats["sent"] += 1
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)
        stats["elapsed"] = time.monotonic() - start
    return stats


async def lost_through(url: str, worker: int, ids: list[str]) -> int:
    """Jobs not answered 200 with their id on a connection held by worker ``worker``."""
    import aiohttp

    for _ in range(500):
        session = aiohttp.ClientSession(headers=AUTH, connector=aiohttp.TCPConnector(limit=1))
        async with session.get(f"{url}/__mock/health") as resp:
            if (await resp.json())["worker"]["index"] == worker:
                break
        await session.close()
    else:
        raise RuntimeError(f"no connection reached worker {worker}")
    lost = 0
    try:
        for jid in ids:
            async with session.get(f"{url}/openai/v1/videos/{jid}") as resp:
                if resp.status != 200 or (await resp.json()).get("id") != jid:
                    lost += 1
    finally:
        await session.close()
    return lost


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--kill-at", type=float, default=30.0, help="seconds into the soak to kill -9 worker 0")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="store-soak-")
    redis_proc, redis_port = store_load.start_redis(tmp)
    sup = Supervisor(f"redis://127.0.0.1:{redis_port}/0")
    url = f"http://127.0.0.1:{sup.port}"
    try:
        t0 = time.monotonic()
        ids = asyncio.run(create_jobs(url, args.jobs))
        created_s = time.monotonic() - t0
        first_pid = sup.pids[0]
        stats = asyncio.run(soak(url, ids, args.rate, args.seconds, args.kill_at, sup))
        sup.restarted.wait(30)
        lost0 = asyncio.run(lost_through(url, 0, ids))
        lost1 = asyncio.run(lost_through(url, 1, ids))
    finally:
        sup.stop()
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"soak: {len(ids)} live jobs (created in {created_s:.1f} s), 2 workers, --store redis, "
          f"{args.seconds:.0f} s at {args.rate:.0f} req/s target, {os.cpu_count()} cores")
    print(f"requests sent {stats['sent']} in {stats['send_seconds']:.1f} s "
          f"({stats['sent'] / stats['send_seconds']:.0f} req/s; the last answered at {stats['elapsed']:.1f} s); "
          f"200 with the job: {stats['ok']}")
    print(f"HTTP errors (any answer but 200): {stats['http_errors']}")
    print(f"connections dropped by the kill, GET retried once: {stats['retried']}; failed after the retry: "
          f"{stats['failed']}")
    back = sup.restarted_at - stats["killed_at"] if sup.restarted.is_set() else float("nan")
    print(f"kill -9 of worker 0 (pid {first_pid}) at {args.kill_at:.0f} s; restarted as pid {sup.pids[0]} "
          f"serving again after {back:.2f} s")
    print(f"lost jobs: {lost0} through the restarted worker 0, {lost1} through worker 1 (of {len(ids)})")
    return 0 if stats["http_errors"] == 0 and stats["failed"] == 0 and lost0 == lost1 == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
