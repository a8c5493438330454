"""The mock's admin API (``/__mock/``) against its own contract, ``specs/mockadmin/openapi.yaml``.

The contract is validated with openapi-spec-validator, checked to cover every admin route the server
registers, and every admin response a test receives is validated against it with openapi-core (an httpx
response hook, :class:`mock_contract_support.AdminChecked`).
"""

from __future__ import annotations

import http.server
import json
import threading
import time

import httpx
import pytest
from mock_contract_support import AdminChecked, auth_header

import specs
from mockserver.embedded import EmbeddedMock
from specs import validate

OPENAI = specs.load("openai")
SECRET = "sk-admin-journal-secret-5f1e2d3c"
TTL = OPENAI.provider["mock"]["asset_ttl_seconds"]
QUEUED = OPENAI.provider["mock"]["queued_seconds"]
RUNNING = OPENAI.provider["mock"]["in_progress_seconds"]


class _Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 recording every POST body."""

    def __init__(self):
        received: list[dict] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append({"headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.received = received
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture(scope="module")
def receiver():
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def mock(receiver):
    with EmbeddedMock(providers=["openai", "gptge"], clock="manual", seed=11,
                      openai_webhook_url=receiver.url, webhook_backoff=0.05) as m:
        yield m


@pytest.fixture
def admin(mock):
    """An httpx client on the mock root whose every response is checked against the admin contract."""
    hook = AdminChecked()
    with httpx.Client(base_url=mock.url, event_hooks={"response": [hook]}, timeout=30) as c:
        r = c.post("/__mock/reset")
        assert r.status_code == 200 and r.json() == {"status": "reset"}
        c.hook = hook
        yield c
    assert hook.checked


@pytest.fixture
def provider(mock):
    """An httpx client on the openai mount with a valid key (responses not checked here)."""
    with httpx.Client(base_url=mock.base_url("openai"), headers=auth_header(OPENAI, SECRET), timeout=30) as c:
        yield c


def create_video(provider, **body) -> dict:
    body.setdefault("prompt", "a lighthouse in fog")
    r = provider.post("/videos", json=body)
    assert r.status_code == 200, r.text
    return r.json()


# -- the contract itself ------------------------------------------------------------------------------
def test_admin_contract_is_valid_openapi_31():
    from openapi_spec_validator import validate as validate_spec

    doc = specs.load_admin()
    assert doc["openapi"].startswith("3.1")
    validate_spec(doc)  # raises on any error
    assert validate.spec_errors(doc) == []
    assert validate.unresolved_refs(doc) == []
    assert validate.example_problems(doc) == []
    assert doc["servers"] == [{"url": "http://127.0.0.1:8000",
                               "description": doc["servers"][0]["description"]}]


def test_admin_contract_declares_exactly_the_routes_the_server_registers(mock):
    registered = set()
    for route in mock.server.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/__mock/") and route.method not in ("*", "HEAD"):
            registered.add((route.method, path))
    declared = {(m.upper(), p) for p, item in specs.load_admin()["paths"].items()
                for m in item if m in specs.HTTP_METHODS}
    assert registered == declared
    assert len(declared) == 15


def test_every_declared_error_status_uses_the_error_envelope():
    doc = specs.load_admin()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, resp in op["responses"].items():
                if status.startswith("4") and status != "416":
                    ref = resp.get("$ref") or ""
                    target = validate.resolve_pointer(doc, ref) if ref else resp
                    schema = target["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


# -- health, seeding, jobs ----------------------------------------------------------------------------
def test_health_lists_the_mounts(admin, mock):
    h = admin.get("/__mock/health").json()
    assert h["status"] == "ok" and h["clock"] == "manual" and h["jobs"] == 0
    mounts = {(m["provider"], m["host"]): m for m in h["mounts"]}
    assert set(mounts) == {("openai", "api"), ("gptge", "api")}
    assert mounts[("openai", "api")]["base_url"] == mock.base_url("openai")
    assert mounts[("openai", "api")]["real_base_url"] == "https://api.openai.com/v1"


def test_seed_video_creates_a_completed_job_in_the_provider_id_format(admin):
    r = admin.post("/__mock/videos", json={"provider": "openai", "seconds": 8, "size": "1280x720",
                                           "prompt": "source"})
    assert r.status_code == 201
    job = r.json()
    assert job["status"] == "completed" and job["progress"] == 100 and job["kind"] == "generate"
    assert job["id"].startswith(OPENAI.provider["ids"]["prefix"])
    assert job["params"] == {"prompt": "source", "seconds": 8, "size": "1280x720", "model": "sora-2"}
    explicit = admin.post("/__mock/videos", json={"provider": "gptge", "id": "video_mine"}).json()
    assert explicit["id"] == "video_mine" and explicit["params"]["seconds"] == 4
    dup = admin.post("/__mock/videos", json={"provider": "gptge", "id": "video_mine"})
    assert dup.status_code == 409 and "already exists" in dup.json()["error"]["message"]
    assert admin.get("/__mock/health").json()["jobs"] == 2


@pytest.mark.parametrize("body", [
    {}, {"provider": ["openai"]}, {"provider": "openai", "seconds": 0},
    {"provider": "openai", "seconds": 61}, {"provider": "openai", "seconds": 4.5},
    {"provider": "openai", "seconds": "4"}, {"provider": "openai", "seconds": True},
    {"provider": "openai", "seconds": None}, {"provider": "openai", "size": "1280X720"},
    {"provider": "openai", "size": "3x3"}, {"provider": "openai", "size": "8192x720"},
    {"provider": "openai", "size": 1280}, {"provider": "openai", "prompt": 5},
    {"provider": "openai", "model": ["sora-2"]}, {"provider": "openai", "id": ""}, [], "openai",
])
def test_seed_video_rejects_bad_bodies(admin, body):
    r = admin.post("/__mock/videos", json=body)
    assert r.status_code == 400, r.text
    assert admin.get("/__mock/jobs").json()["jobs"] == []


@pytest.mark.parametrize("provider", ["nope", "", "fal"])
def test_a_provider_that_is_not_served_is_404(admin, provider):
    assert admin.post("/__mock/videos", json={"provider": provider}).status_code == 404
    assert admin.post("/__mock/faults", json={"kind": "latency", "ms": 1, "provider": provider}).status_code \
        == (404 if provider else 201)
    admin.delete("/__mock/faults")
    assert admin.get("/__mock/jobs").json()["jobs"] == []


@pytest.mark.parametrize("raw", [b"{", b"NaN", b'{"provider": "openai", "seconds": Infinity}', b"\xff"])
def test_bad_json_is_400(admin, raw):
    for path in ("/__mock/videos", "/__mock/clock/advance", "/__mock/faults"):
        r = admin.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_list_and_get_jobs_with_filters(admin, provider, mock):
    seeded = admin.post("/__mock/videos", json={"provider": "openai"}).json()
    gptge = admin.post("/__mock/videos", json={"provider": "gptge"}).json()
    queued = create_video(provider)
    jobs = admin.get("/__mock/jobs").json()
    assert jobs["total"] == 3 and {j["id"] for j in jobs["jobs"]} == {seeded["id"], gptge["id"], queued["id"]}
    openai_jobs = admin.get("/__mock/jobs", params={"provider": "openai"}).json()["jobs"]
    assert [j["id"] for j in openai_jobs] == [queued["id"], seeded["id"]]  # newest first
    only_queued = admin.get("/__mock/jobs", params={"status": "queued"}).json()["jobs"]
    assert [j["id"] for j in only_queued] == [queued["id"]]
    assert len(admin.get("/__mock/jobs", params={"limit": "1"}).json()["jobs"]) == 1
    assert admin.get("/__mock/jobs", params={"limit": "0"}).json() == {"jobs": [], "total": 3}
    one = admin.get(f"/__mock/jobs/openai/{queued['id']}").json()
    assert one["status"] == "queued" and one["params"]["prompt"] == "a lighthouse in fog"
    assert admin.get(f"/__mock/jobs/gptge/{queued['id']}").status_code == 404
    assert admin.get("/__mock/jobs/openai/video_nope").status_code == 404
    assert admin.get("/__mock/jobs", params={"provider": "fal"}).status_code == 404
    for bad in ({"limit": "-1"}, {"limit": "x"}, {"limit": "1.5"}, {"limit": " 1"}, {"limit": "٣"},
                {"status": "running"}):
        assert admin.get("/__mock/jobs", params=bad).status_code == 400, bad


# -- clock --------------------------------------------------------------------------------------------
def test_manual_clock_drives_the_lifecycle(admin, provider):
    clock = admin.get("/__mock/clock").json()
    assert clock["mode"] == "manual"
    job = create_video(provider)
    path = f"/__mock/jobs/openai/{job['id']}"
    assert admin.get(path).json()["status"] == "queued"
    after = admin.post("/__mock/clock/advance", json={"seconds": QUEUED + RUNNING / 2}).json()
    assert after["now"] == pytest.approx(clock["now"] + QUEUED + RUNNING / 2)
    assert after["wall"] - clock["wall"] == int(QUEUED + RUNNING / 2)
    running = admin.get(path).json()
    assert running["status"] == "in_progress" and 0 < running["progress"] < 100
    assert running["started_at"] is not None and running["finished_at"] is None
    assert provider.get(f"/videos/{job['id']}").json()["status"] == "in_progress"
    admin.post("/__mock/clock/advance", json={"seconds": RUNNING})
    done = admin.get(path).json()
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    assert admin.get("/__mock/jobs", params={"status": "completed"}).json()["jobs"][0]["id"] == job["id"]


@pytest.mark.parametrize("body", ['{}', '{"seconds": -1}', '{"seconds": "5"}', '{"seconds": true}',
                                  '{"seconds": null}', '{"seconds": 1e400}', '{"seconds": 1' + '0' * 400 + '}',
                                  '{"seconds": 1.6e308}', '{"seconds": 1000000001}', '[5]', '5', ''])
def test_clock_advance_rejects_bad_values(admin, body):
    before = admin.get("/__mock/clock").json()["now"]
    r = admin.post("/__mock/clock/advance", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert admin.get("/__mock/clock").json()["now"] == before


def test_system_clock_cannot_be_advanced():
    hook = AdminChecked()
    with EmbeddedMock(providers=["openai"], clock="system") as m, \
            httpx.Client(base_url=m.url, event_hooks={"response": [hook]}) as c:
        assert c.get("/__mock/clock").json()["mode"] == "system"
        r = c.post("/__mock/clock/advance", json={"seconds": 1})
        assert r.status_code == 409 and "not manual" in r.json()["error"]["message"]


# -- faults -------------------------------------------------------------------------------------------
def test_faults_add_list_fire_delete_clear(admin, provider):
    one = admin.post("/__mock/faults", json={"kind": "rate_limit", "provider": "openai", "times": 1,
                                             "retry_after": 2})
    assert one.status_code == 201
    rule = one.json()["faults"][0]
    assert rule == {"id": rule["id"], "kind": "rate_limit", "provider": "openai", "times": 1,
                    "retry_after": 2.0, "fired": 0}
    many = admin.post("/__mock/faults", json=[{"kind": "latency", "ms": 1, "operation": "listVideos"},
                                              {"kind": "server_error", "probability": 0, "message": "boom"}])
    assert many.status_code == 201 and len(many.json()["faults"]) == 2
    listed = admin.get("/__mock/faults").json()["faults"]
    assert [f["kind"] for f in listed] == ["rate_limit", "latency", "server_error"]

    limited = provider.get("/videos")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert provider.get("/videos").status_code == 200  # the rule is spent
    assert admin.get("/__mock/faults").json()["faults"][0]["fired"] == 1

    r = admin.delete(f"/__mock/faults/{rule['id']}")
    assert r.status_code == 200 and r.json() == {"removed": 1}
    assert admin.delete(f"/__mock/faults/{rule['id']}").status_code == 404
    assert admin.delete("/__mock/faults/abc").status_code == 404
    assert admin.delete("/__mock/faults").json() == {"removed": 2}
    assert admin.get("/__mock/faults").json() == {"faults": []}


@pytest.mark.parametrize("body", [
    {}, {"kind": "explode"}, {"kind": "rate_limit", "bogus": 1}, {"kind": "latency"},
    {"kind": "latency", "distribution": "uniform", "min_ms": 1}, {"kind": "rate_limit", "times": 0},
    {"kind": "rate_limit", "times": "3"}, {"kind": "rate_limit", "probability": True},
    {"kind": "rate_limit", "probability": 2}, {"kind": "rate_limit", "distribution": "AAA"},
    {"kind": "rate_limit", "provider": ["openai"]}, {"kind": "generation_failure", "code": 5},
    "rate_limit", ["rate_limit"], [{"kind": "rate_limit"}, {"kind": "nope"}],
    '{"kind": "rate_limit", "times": 1e400}', '{"kind": "latency", "ms": 1' + '0' * 400 + '}',
])
def test_a_bad_fault_is_400_and_installs_nothing(admin, body):
    raw = body if isinstance(body, str) and body.startswith("{") else json.dumps(body)
    r = admin.post("/__mock/faults", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert admin.get("/__mock/faults").json() == {"faults": []}


def test_generation_failure_fault_fails_the_next_job(admin, provider):
    admin.post("/__mock/faults", json={"kind": "generation_failure", "provider": "openai", "times": 1,
                                       "code": "moderation_blocked"})
    failing = create_video(provider)
    fine = create_video(provider)
    admin.post("/__mock/clock/advance", json={"seconds": QUEUED + RUNNING + 1})
    bad = admin.get(f"/__mock/jobs/openai/{failing['id']}").json()
    assert bad["status"] == "failed" and bad["failure"] == "moderation_blocked"
    assert admin.get(f"/__mock/jobs/openai/{fine['id']}").json()["status"] == "completed"


# -- journal, webhooks, files, reset ------------------------------------------------------------------
def test_journal_records_provider_requests_with_credentials_redacted(admin, provider):
    provider.get("/videos", params={"limit": "2"})
    provider.get("/videos/video_missing", headers={"X-Api-Key": SECRET})
    provider.get(f"/videos?api_key={SECRET}")
    entries = admin.get("/__mock/journal").json()["requests"]
    assert [(e["method"], e["status"]) for e in entries] == [("GET", 200), ("GET", 404), ("GET", 200)]
    first, second, third = entries
    assert first["provider"] == "openai" and first["operation"] == "listVideos"
    assert first["path"] == "/openai/v1/videos?limit=2"
    assert second["operation"] == "retrieveVideo" and second["duration_ms"] >= 0
    for e in entries:
        headers = {k.lower(): v for k, v in e["headers"].items()}
        assert headers["authorization"] == "[REDACTED]"
    assert {k.lower(): v for k, v in second["headers"].items()}["x-api-key"] == "[REDACTED]"
    assert "[REDACTED]" in third["path"]
    assert SECRET not in json.dumps(entries)
    assert not any(e["path"].startswith("/__mock") for e in entries)  # admin calls are not journaled
    latest = admin.get("/__mock/journal", params={"limit": "1"}).json()["requests"]
    assert latest == [third]
    assert admin.get("/__mock/journal", params={"limit": "0"}).json() == {"requests": []}
    for bad in ("-1", "x", "+1"):
        assert admin.get("/__mock/journal", params={"limit": bad}).status_code == 400


def test_journal_records_injected_faults(admin, provider):
    provider.get("/videos", headers={"X-Mock-Fault": "bad_gateway"})
    entry = admin.get("/__mock/journal").json()["requests"][-1]
    assert entry["status"] == 502 and entry["fault"] == "bad_gateway"


def test_webhooks_list_shows_deliveries_and_attempts(admin, provider, receiver):
    job = create_video(provider)
    assert admin.get("/__mock/webhooks").json() == {"deliveries": []}
    admin.post("/__mock/clock/advance", json={"seconds": QUEUED + RUNNING + 1})
    deadline = time.monotonic() + 10
    while True:
        deliveries = admin.get("/__mock/webhooks").json()["deliveries"]
        if deliveries and deliveries[0]["delivered"]:
            break
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.02)
    d = deliveries[0]
    assert d["provider"] == "openai" and d["job_id"] == job["id"] and d["url"] == receiver.url
    assert d["event"] == "video.completed" and d["payload"]["data"] == {"id": job["id"]}
    assert d["attempts"][-1]["status"] == 204
    assert any(r["body"]["data"]["id"] == job["id"] for r in receiver.received)


def test_files_serve_assets_with_ranges_and_expiry(admin, provider):
    job = admin.post("/__mock/videos", json={"provider": "openai", "seconds": 4, "size": "1280x720"}).json()
    base = f"/__mock/files/openai/{job['id']}"
    whole = admin.get(f"{base}/{job['id']}.mp4")
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.content[4:8] == b"ftyp" and whole.headers["Accept-Ranges"] == "bytes"
    part = admin.get(f"{base}/{job['id']}.mp4", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole.content[:10]
    assert part.headers["Content-Range"] == f"bytes 0-9/{len(whole.content)}"
    beyond = admin.get(f"{base}/{job['id']}.mp4", headers={"Range": f"bytes={len(whole.content)}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(whole.content)}"
    thumb = admin.get(f"{base}/{job['id']}_thumbnail.webp")
    assert thumb.status_code == 200 and thumb.content[8:12] == b"WEBP"
    sprite = admin.get(f"{base}/{job['id']}_spritesheet.jpg")
    assert sprite.status_code == 200 and sprite.content[:2] == b"\xff\xd8"
    assert admin.get(f"{base}/other.mp4").status_code == 404
    assert admin.get("/__mock/files/openai/video_nope/video_nope.mp4").status_code == 404
    queued = create_video(provider)
    assert admin.get(f"/__mock/files/openai/{queued['id']}/{queued['id']}.mp4").status_code == 404
    admin.post("/__mock/clock/advance", json={"seconds": TTL + 1})
    expired = admin.get(f"{base}/{job['id']}.mp4")
    assert expired.status_code == 410 and "expired" in expired.json()["error"]["message"]


def test_reset_forgets_jobs_faults_journal_and_deliveries(admin, provider):
    admin.post("/__mock/videos", json={"provider": "openai"})
    create_video(provider)
    admin.post("/__mock/faults", json={"kind": "latency", "ms": 1})
    r = admin.post("/__mock/reset", json={"ignored": True})
    assert r.status_code == 200 and r.json() == {"status": "reset"}
    assert admin.get("/__mock/jobs").json() == {"jobs": [], "total": 0}
    assert admin.get("/__mock/faults").json() == {"faults": []}
    assert admin.get("/__mock/journal").json() == {"requests": []}
    assert admin.get("/__mock/webhooks").json() == {"deliveries": []}
    assert admin.get("/__mock/health").json()["jobs"] == 0


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/__mock/health", "GET, HEAD"), ("POST", "/__mock/jobs", "GET, HEAD"),
    ("PATCH", "/__mock/faults", "DELETE, GET, HEAD, POST"), ("GET", "/__mock/faults/1", "DELETE"),
    ("GET", "/__mock/reset", "POST"), ("DELETE", "/__mock/videos", "POST"),
])
def test_wrong_method_on_an_admin_path_is_405_with_allow(admin, method, path, allow):
    r = admin.request(method, path)
    assert r.status_code == 405 and r.headers["Allow"] == allow
    assert method in r.json()["error"]["message"]


def test_every_admin_route_was_exercised_and_checked(mock):
    """Runs the flows above once more through one checked client and requires every declared operation
    to have been answered (and validated) at least once, with at least one error status per route
    family."""
    hook = AdminChecked()
    with httpx.Client(base_url=mock.url, event_hooks={"response": [hook]}) as c, \
            httpx.Client(base_url=mock.base_url("openai"), headers=auth_header(OPENAI, SECRET)) as p:
        c.post("/__mock/reset")
        c.get("/__mock/health")
        job = c.post("/__mock/videos", json={"provider": "openai"}).json()
        c.get("/__mock/jobs")
        c.get(f"/__mock/jobs/openai/{job['id']}")
        c.post(f"/__mock/jobs/openai/{job['id']}/advance", json={"to": "end"})
        c.get("/__mock/clock")
        c.post("/__mock/clock/advance", json={"seconds": 0})
        rule = c.post("/__mock/faults", json={"kind": "latency", "ms": 0}).json()["faults"][0]
        c.get("/__mock/faults")
        c.delete(f"/__mock/faults/{rule['id']}")
        c.delete("/__mock/faults")
        p.get("/videos")
        c.get("/__mock/journal")
        c.get("/__mock/webhooks")
        c.get(f"/__mock/files/openai/{job['id']}/{job['id']}.mp4")
    answered = {(m, _template(path)) for m, path, _ in hook.checked}
    declared = {(m.upper(), p) for p, item in specs.load_admin()["paths"].items()
                for m in item if m in specs.HTTP_METHODS}
    assert declared <= answered


def _template(path: str) -> str:
    for declared in specs.load_admin()["paths"]:
        parts, actual = declared.split("/"), path.split("/")
        if len(parts) == len(actual) and all(a == b or a.startswith("{") for a, b in zip(parts, actual,
                                                                                        strict=True)):
            return declared
    return path
