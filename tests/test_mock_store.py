"""Shared, durable job state (``--store sqlite:///PATH`` / ``redis://HOST:PORT/DB``, ``--workers N``).

Every test starts its own servers on 127.0.0.1: a real ``redis-server`` (scripts/install-redis) on a free port,
and ``mockserver serve`` processes.  A request reaches a chosen worker over a kept-alive connection that the
worker accepted (SO_REUSEPORT hands each new connection to one of them; :func:`pinned` opens connections until
the wanted worker answers its ``/__mock/health``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
from store_support import MockProcess, RedisServer, free_port, health_of, redis_binary, worker_urls

from mockserver.sdk_recipes import fal_env

pytestmark = pytest.mark.skipif(redis_binary() is None, reason="redis-server is missing: run scripts/install-redis")

PY = sys.executable
FLOWS = Path(__file__).with_name("fal_sdk_flows.py")
KEY = {"Authorization": "Bearer sk-test"}


@pytest.fixture(scope="module")
def redis():
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


def _flush(redis: RedisServer) -> None:
    import redis as redis_py

    client = redis_py.Redis(host="127.0.0.1", port=redis.port)
    client.flushall()
    client.close()


@pytest.fixture
def group(redis):
    """Two workers on one port over the module's Redis (emptied first), manual clock."""
    _flush(redis)
    mock = MockProcess("--port", "0", "--workers", "2", "--store", redis.url(), "--clock", "manual", "--seed", "3")
    try:
        worker_urls(mock, 2)
        yield mock
    finally:
        mock.stop()


def pinned(url: str, worker: int, tries: int = 200, **kwargs) -> httpx.Client:
    """An httpx client with one kept-alive connection, accepted by worker ``worker``.

    Raises:
        AssertionError: no connection reached that worker in ``tries`` attempts.
    """
    for _ in range(tries):
        client = httpx.Client(base_url=url, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                              timeout=10, **kwargs)
        if client.get("/__mock/health").json()["worker"]["index"] == worker:
            return client
        client.close()
    raise AssertionError(f"no connection reached worker {worker}")


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "mockserver", "serve", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})


def _one_line(out: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


# -- start errors: one line, exit 2 ---------------------------------------------------------------------------
def test_bad_store_and_workers_are_one_line_and_exit_2(tmp_path):
    assert "--store must be" in _one_line(_run("--port", "0", "--store", "postgres://x"))
    assert "needs a shared --store" in _one_line(_run("--port", "0", "--workers", "2"))
    assert "--workers must be" in _one_line(_run("--port", "0", "--workers", "0", "--store",
                                                 f"sqlite:///{tmp_path}/m.db"))
    assert "does not exist" in _one_line(_run("--port", "0", "--store", "sqlite:///nonexistent/dir/m.db"))
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    assert "cannot use" in _one_line(_run("--port", "0", "--store", f"sqlite:///{tmp_path}/junk.db"))
    start = time.monotonic()
    line = _one_line(_run("--port", "0", "--store", f"redis://127.0.0.1:{free_port()}/0", "--workers", "2"))
    assert "cannot use Redis" in line and time.monotonic() - start < 30
    locked = RedisServer(None, "--requirepass", "right")
    try:
        line = _one_line(_run("--port", "0", "--store", f"redis://:wrong@127.0.0.1:{locked.port}/0"))
        assert "cannot use Redis" in line and "wrong" not in line and ":***@" in line  # the password is hidden
        assert "cannot use Redis" in _one_line(_run("--port", "0", "--store", f"redis://127.0.0.1:{locked.port}/99"))
    finally:
        locked.stop()


# -- one job through two workers ------------------------------------------------------------------------------
def test_job_created_on_worker_a_is_the_same_on_worker_b(group):
    import openai

    a, b = pinned(group.url, 0, headers=KEY), pinned(group.url, 1, headers=KEY)
    try:
        sdk_a = openai.OpenAI(base_url=group.url + "/openai/v1", api_key="sk-test", http_client=a)
        sdk_b = openai.OpenAI(base_url=group.url + "/openai/v1", api_key="sk-test", http_client=b)
        with pytest.warns(DeprecationWarning):
            video = sdk_a.videos.create(prompt="a lighthouse", seconds="4", size="1280x720")
            seen = sdk_b.videos.retrieve(video.id)
        assert (seen.id, seen.status, seen.created_at, seen.size) == (video.id, "queued", video.created_at,
                                                                      "1280x720")
        assert a.post("/__mock/clock/advance", json={"seconds": 100}).status_code == 200
        with pytest.warns(DeprecationWarning):
            done_b = sdk_b.videos.retrieve(video.id)
            done_a = sdk_a.videos.retrieve(video.id)
            listed = [v.id for v in sdk_b.videos.list()]
            remix = sdk_b.videos.remix(video.id, prompt="at night")
            content = sdk_b.videos.download_content(video.id).read()
            remix_on_a = sdk_a.videos.retrieve(remix.id)
        assert done_b.status == done_a.status == "completed" and done_b.completed_at == done_a.completed_at
        assert video.id in listed
        assert remix.remixed_from_video_id == video.id and remix_on_a.status == "queued"
        assert content[4:8] == b"ftyp"
        # delete on A: gone on B
        assert a.delete(f"/openai/v1/videos/{remix.id}").status_code == 200
        assert b.get(f"/openai/v1/videos/{remix.id}").status_code == 404
        # fal: submit on A, cancel on B, status on A
        fal = {"Authorization": "Key k"}
        sub = a.post("/fal/fal-ai/sora-2/text-to-video", json={"prompt": "p"}, headers=fal).json()
        rid = sub["request_id"]
        assert b.put(f"/fal/fal-ai/sora-2/requests/{rid}/cancel", headers=fal).status_code == 202
        status = a.get(f"/fal/fal-ai/sora-2/requests/{rid}/status", headers=fal).json()
        assert status["status"] == "COMPLETED"  # a cancelled fal request reports COMPLETED with an error
        assert b.get(f"/__mock/jobs/fal/{rid}").json()["status"] == "cancelled"
        # ids drawn by both workers never collide; the journal holds both workers' requests, redacted
        ids = {a.post("/openai/v1/videos", json={"prompt": str(i)}).json()["id"] for i in range(10)}
        ids |= {b.post("/openai/v1/videos", json={"prompt": str(i)}).json()["id"] for i in range(10)}
        assert len(ids) == 20
        journal = a.get("/__mock/journal?limit=500").json()["requests"]
        assert {e.get("worker") for e in journal} == {0, 1}
        assert "sk-test" not in json.dumps(journal)
    finally:
        a.close()
        b.close()


def test_health_reports_the_store_and_the_worker(group, redis):
    seen = {}
    for _ in range(200):
        h = health_of(group.url)
        seen[h["worker"]["index"]] = h
        if len(seen) == 2:
            break
    assert set(seen) == {0, 1}
    assert seen[0]["worker"]["pid"] != seen[1]["worker"]["pid"]
    assert {tuple(h["worker"].items()) for h in seen.values()} == {
        (("index", i), ("pid", group.workers[i]), ("workers", 2)) for i in (0, 1)}
    assert seen[0]["store"] == {"kind": "redis", "url": redis.url(), "shared": True}


# -- faults, rate limit and clock across workers --------------------------------------------------------------
def _burst(url: str, n: int, headers: dict, body: dict | None = None) -> list[int]:
    """``n`` concurrent GETs of ``url`` (POSTs of ``body`` when given), each on a fresh connection (so both
    workers get some)."""
    codes: list[int] = []
    lock = threading.Lock()
    data = None if body is None else json.dumps(body).encode()

    def one() -> None:
        req = urllib.request.Request(url, data=data, headers={**headers, "Connection": "close",
                                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                code = resp.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return codes


def test_times_3_fault_fires_exactly_3_times_across_two_workers(group):
    group.admin("POST", "faults", {"kind": "server_error", "provider": "openai", "times": 3})
    codes = _burst(f"{group.url}/openai/v1/videos", 60, KEY)
    assert len(codes) == 60 and codes.count(500) == 3 and codes.count(200) == 57
    journal = group.admin("GET", "journal?limit=500")["requests"]
    assert {e["worker"] for e in journal} == {0, 1}  # both workers answered
    assert [f["fired"] for f in group.admin("GET", "faults")["faults"]] == [3]


def test_rate_limit_10_per_second_holds_across_two_workers(redis):
    _flush(redis)
    mock = MockProcess("--port", "0", "--workers", "2", "--store", redis.url(), "--rate-limit", "10/s")
    try:
        worker_urls(mock, 2)
        start = time.monotonic()
        codes = _burst(f"{mock.url}/openai/v1/videos", 40, KEY)
        elapsed = time.monotonic() - start
        ok = codes.count(200)
        assert codes.count(429) == 40 - ok
        assert 10 <= ok <= 10 + int(elapsed * 10) + 1, (ok, elapsed)
        journal = mock.admin("GET", "journal?limit=500")["requests"]
        assert {e["worker"] for e in journal} == {0, 1}
        assert {e["status"] for e in journal if e["worker"] == 0} | {e["status"] for e in journal
                                                                   if e["worker"] == 1} == {200, 429}
    finally:
        mock.stop()


def test_manual_clock_advance_is_seen_by_every_worker(group):
    a, b = pinned(group.url, 0), pinned(group.url, 1)
    try:
        before = b.get("/__mock/clock").json()["now"]
        assert a.post("/__mock/clock/advance", json={"seconds": 42.5}).json()["now"] == before + 42.5
        assert b.get("/__mock/clock").json()["now"] == before + 42.5
        assert b.post("/__mock/clock/advance", json={"seconds": 1}).status_code == 200
        assert a.get("/__mock/clock").json()["now"] == before + 43.5
    finally:
        a.close()
        b.close()


# -- durability: kill -9 and restart --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_jobs_cancels_and_deletes_survive_kill_9(kind, redis, tmp_path):
    if kind == "redis":
        _flush(redis)
        store = redis.url()
    else:
        store = f"sqlite:///{tmp_path}/mock.db"
    args = ("--store", store, "--clock", "manual")
    mock = MockProcess("--port", "0", *args)
    port = mock.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=mock.url, headers=KEY, timeout=10) as c:
        ids = [c.post("/openai/v1/videos", json={"prompt": f"v{i}"}).json()["id"] for i in range(3)]
        assert c.delete(f"/openai/v1/videos/{ids[1]}").status_code == 200
        fal = {"Authorization": "Key k"}
        rid = c.post("/fal/fal-ai/sora-2/text-to-video", json={"prompt": "p"}, headers=fal).json()["request_id"]
        assert c.put(f"/fal/fal-ai/sora-2/requests/{rid}/cancel", headers=fal).status_code == 202
        c.post("/__mock/clock/advance", json={"seconds": 3})
        seed = c.post("/__mock/videos", json={"provider": "openai"}).json()["id"]
        before = [c.get(f"/openai/v1/videos/{i}").json() for i in (ids[0], ids[2], seed)]
    mock.kill9()
    mock = MockProcess("--port", port, *args)
    try:
        with httpx.Client(base_url=mock.url, headers=KEY, timeout=10) as c:
            after = [c.get(f"/openai/v1/videos/{i}").json() for i in (ids[0], ids[2], seed)]
            assert after == before
            assert c.get(f"/openai/v1/videos/{ids[1]}").status_code == 404
            assert c.get(f"/__mock/jobs/fal/{rid}").json()["status"] == "cancelled"
            listed = [v["id"] for v in c.get("/openai/v1/videos", params={"limit": 10}).json()["data"]]
            assert listed == [seed, ids[2], ids[0]]
            assert c.get("/__mock/clock").json()["now"] == 3.0
    finally:
        mock.stop()


# -- the store goes away while serving ------------------------------------------------------------------------
def test_redis_going_away_is_a_503_and_serving_resumes_when_it_is_back():
    server = RedisServer()
    port = server.port
    mock = MockProcess("--port", "0", "--store", server.url())
    try:
        with httpx.Client(base_url=mock.url, headers=KEY, timeout=15) as c:
            vid = c.post("/openai/v1/videos", json={"prompt": "p"}).json()["id"]
            server.stop()
            start = time.monotonic()
            down = c.get(f"/openai/v1/videos/{vid}")
            assert down.status_code == 503 and time.monotonic() - start < 10
            assert down.headers["Retry-After"] == "1" and "error" in down.json()
            assert down.headers.get("x-request-id")
            assert c.get("/__mock/health").status_code == 503
            server = RedisServer(port)  # back, empty: the mock serves again
            for _ in range(100):
                r = c.get(f"/openai/v1/videos/{vid}")
                if r.status_code != 503:
                    break
                time.sleep(0.05)
            assert r.status_code == 404
            assert c.post("/openai/v1/videos", json={"prompt": "p"}).status_code == 200
    finally:
        mock.stop()
        server.stop()
    assert "Traceback" not in mock.proc.stderr.read() if not mock.proc.stderr.closed else True


# -- SDK flows against a 2-worker redis mock ------------------------------------------------------------------
def test_fal_client_flows_against_two_workers_on_redis(redis):
    _flush(redis)
    tls = tempfile.mkdtemp(prefix="mock-tls-")
    mock = MockProcess("--port", "0", "--workers", "2", "--store", redis.url(), "--clock", "manual", "--seed", "11",
                       "--only", "fal", "--tls", "--tls-dir", tls)
    try:
        assert mock.url.startswith("https://") and mock.ca_path
        env = dict(os.environ)
        env.update(fal_env(mock.url + "/fal", mock.url + "/fal-run", mock.ca_path, key="test-key"))
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
        results = {}
        for flow in ("subscribe_remix", "submit_status_result_cancel"):
            proc = subprocess.run([PY, str(FLOWS), flow, json.dumps({"admin": mock.url + "/__mock"})], env=env,
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr[-3000:]
            results[flow] = json.loads(proc.stdout.strip().splitlines()[-1])["result"]
        out = results["subscribe_remix"]
        assert [u["type"] for u in out["updates"]] == ["Queued", "InProgress", "InProgress", "Completed"]
        assert out["remix"]["video_id"] != out["t2v"]["video_id"]
        out = results["submit_status_result_cancel"]
        assert [s["position"] for s in out["queued"]] == [0, 1, 2]
        assert out["completed"]["type"] == "Completed"
    finally:
        mock.stop()


def test_webhook_of_a_job_moved_by_another_worker_is_delivered_once_and_listed_everywhere(group):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    got: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    a, b = pinned(group.url, 0), pinned(group.url, 1)
    try:
        hook = f"http://127.0.0.1:{server.server_port}/hook"
        fal = {"Authorization": "Key k"}
        rid = a.post("/fal/fal-ai/sora-2/text-to-video", params={"fal_webhook": hook}, json={"prompt": "p"},
                     headers=fal).json()["request_id"]
        b.post("/__mock/clock/advance", json={"seconds": 60})
        deadline = time.monotonic() + 15
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a second delivery (by the other worker) would arrive now
        assert len(got) == 1 and got[0]["request_id"] == rid and got[0]["status"] == "OK"
        for client in (a, b):
            deliveries = client.get("/__mock/webhooks").json()["deliveries"]
            assert [(d["job_id"], d["delivered"]) for d in deliveries] == [(rid, True)]
    finally:
        a.close()
        b.close()
        server.shutdown()
        server.server_close()


def test_store_and_workers_from_a_profile_file(redis, tmp_path):
    _flush(redis)
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"store: {redis.url()}\nworkers: 2\nclock: manual\n")
    mock = MockProcess("--port", "0", "--profile", str(profile))
    try:
        seen = worker_urls(mock, 2)
        assert set(seen) == {0, 1}
        assert health_of(mock.url)["store"]["kind"] == "redis"
    finally:
        mock.stop()


def test_two_workers_on_one_sqlite_file_agree(tmp_path):
    mock = MockProcess("--port", "0", "--workers", "2", "--store", f"sqlite:///{tmp_path}/group.db", "--clock",
                       "manual")
    try:
        worker_urls(mock, 2)
        a, b = pinned(mock.url, 0, headers=KEY), pinned(mock.url, 1, headers=KEY)
        try:
            vid = a.post("/openai/v1/videos", json={"prompt": "p"}).json()["id"]
            assert b.get(f"/openai/v1/videos/{vid}").json()["status"] == "queued"
            assert b.post("/__mock/clock/advance", json={"seconds": 100}).status_code == 200
            assert a.get(f"/openai/v1/videos/{vid}").json()["status"] == "completed"
            assert b.delete(f"/openai/v1/videos/{vid}").status_code == 200
            assert a.get(f"/openai/v1/videos/{vid}").status_code == 404
        finally:
            a.close()
            b.close()
        codes = _burst(f"{mock.url}/openai/v1/videos", 40, KEY, {"prompt": "q"})  # concurrent writes, both workers
        assert codes == [200] * 40
        jobs = mock.admin("GET", "jobs?provider=openai")
        assert len({j["id"] for j in jobs["jobs"]}) == jobs["total"] == 40
        assert {e["worker"] for e in mock.admin("GET", "journal?limit=100")["requests"]} == {0, 1}
    finally:
        mock.stop()
