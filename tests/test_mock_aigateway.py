"""The aigateway ``job`` family of the mock, over HTTP (httpx) on 127.0.0.1 with a manual clock.

Every response a test receives is validated against the vendored contract (specs/aigateway/openapi.yaml)
by an httpx response hook, so a response outside the contract fails the test that got it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

import specs
from mockserver import media
from mockserver.embedded import EmbeddedMock
from mockserver.validation import HostValidator

KEY = "sk-aig-test-key"
REMIX = "openai/sora-2-video-to-video-remix"
T2V = "openai/sora-2"
QUEUED, IN_PROGRESS = 5.0, 10.0  # timings of this module's mock (virtual seconds)
CONTRACT = specs.load("aigateway")
PROVIDER = CONTRACT.provider


@pytest.fixture(scope="module")
def mock():
    timings = {"aigateway": {"queued_seconds": QUEUED, "in_progress_seconds": IN_PROGRESS}}
    with EmbeddedMock(providers=["aigateway"], clock="manual", api_key=KEY, timings=timings, seed=3) as m:
        yield m


class ContractChecked:
    """An httpx response hook: every response must match the contract operation it answers."""

    def __init__(self, base_url: str):
        self.validator = HostValidator(CONTRACT, "api")
        self.prefix = urlsplit(base_url).path.rstrip("/")
        self.checked = 0

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        req = response.request
        path = req.url.path.removeprefix(self.prefix)
        method = req.method
        if response.status_code == 405:  # the path declares no such operation: check the declared 405
            method = response.headers["Allow"].split(",")[0].strip()
        errors = self.validator.response_errors(method, path, dict(req.url.params), dict(req.headers),
                                                response.status_code, response.content,
                                                response.headers.get("content-type", ""), dict(response.headers))
        assert not errors, f"{req.method} {path} -> {response.status_code} is outside the contract: {errors}"
        self.checked += 1


@pytest.fixture
def client(mock):
    mock.admin("POST", "reset")
    base = mock.base_url("aigateway")
    hook = ContractChecked(base)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"},
                      event_hooks={"response": [hook]}) as c:
        c.contract_hook = hook
        yield c
    assert hook.checked > 0


def submit(client, **body):
    body.setdefault("model", T2V)
    body.setdefault("prompt", "a slow drone shot over a mountain lake")
    return client.post("/v1/videos/generations", json=body)


def submitted(client, **body) -> dict:
    r = submit(client, **body)
    assert r.status_code == 202, r.text
    return r.json()


def poll(client, mock, job_id: str) -> dict:
    """Retrieve a job after stepping past the documented 3 s minimum poll interval."""
    mock.advance(PROVIDER["mock"]["min_poll_interval_seconds"])
    r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def assert_error(r: httpx.Response, kind: str) -> dict:
    """``r`` is the provider.yaml error kind ``kind`` in aigateway's envelope; returns ``error``."""
    spec = PROVIDER["errors"]["kinds"][kind]
    assert r.status_code == spec["status"], r.text
    err = r.json()["error"]
    assert set(r.json()) == {"error"}
    assert (err["type"], err["code"]) == (spec["type"], spec["code"])
    assert isinstance(err["message"], str) and err["message"]
    return err


# -- lifecycle ------------------------------------------------------------------------------------------
def test_full_lifecycle_queued_running_completed_with_downloadable_result(client, mock):
    wall0 = mock.admin("GET", "clock")["wall"]
    job = submitted(client, duration=8, aspect_ratio="9:16")
    assert job["id"].startswith("job_") and job["object"] == "job" and job["status"] == "queued"
    assert job["model"] == T2V and job["created"] == wall0
    assert "result" not in job and "error" not in job

    seen = [job]
    while seen[-1]["status"] not in ("completed", "failed", "cancelled"):
        seen.append(poll(client, mock, job["id"]))
        assert len(seen) < 20
    statuses = [j["status"] for j in seen]
    assert statuses[0] == "queued" and "running" in statuses and statuses[-1] == "completed"
    assert "processing" not in statuses  # the mock emits the async-jobs vocabulary only
    order = {"queued": 0, "running": 1, "completed": 2}
    assert [order[s] for s in statuses] == sorted(order[s] for s in statuses)
    assert {j["id"] for j in seen} == {job["id"]} and {j["created"] for j in seen} == {wall0}
    assert all("result" not in j for j in seen[:-1])

    result = seen[-1]["result"]
    assert result["url"] == result["file_url"] and result["url"].startswith(mock.url)
    assert result["duration"] == 8 and result["resolution"] == "720x1280"
    completed_wall = wall0 + int(QUEUED + IN_PROGRESS)
    assert result["expires_at"] == completed_wall + PROVIDER["mock"]["asset_ttl_seconds"]
    mp4 = httpx.get(result["url"])
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
    info = media.probe_mp4(mp4.content)
    assert (info["width"], info["height"]) == (720, 1280) and abs(info["duration_seconds"] - 8) < 0.2

    # terminal stays terminal
    mock.advance(1000)
    assert poll(client, mock, job["id"])["status"] == "completed"


def test_defaults_and_duration_clamp(client, mock):
    job = submitted(client)  # no duration / aspect_ratio: provider.yaml mock.params defaults
    mock.advance(QUEUED + IN_PROGRESS)
    result = client.get(f"/v1/jobs/{job['id']}").json()["result"]
    params = PROVIDER["mock"]["params"]
    assert result["duration"] == params["seconds"]["default"] and result["resolution"] == params["size"]["default"]
    long = submitted(client, duration=100_000, aspect_ratio="4:3")  # accepted; rendered at the media limit
    mock.advance(QUEUED + IN_PROGRESS)
    result = client.get(f"/v1/jobs/{long['id']}").json()["result"]
    assert result["duration"] == int(media.MAX_SECONDS) and result["resolution"] == params["size"]["default"]


def test_polling_faster_than_every_3s_is_304_not_modified(client, mock):
    job = submitted(client)
    first = client.get(f"/v1/jobs/{job['id']}")
    assert first.status_code == 200
    again = client.get(f"/v1/jobs/{job['id']}")
    assert again.status_code == 304 and again.content == b""
    mock.advance(2.9)
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 304
    other_key = client.get(f"/v1/jobs/{job['id']}", headers={"Authorization": "Bearer sk-aig-other"})
    assert other_key.status_code == 401  # this mock pins one key; the interval is per key, checked below
    mock.advance(0.1)
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 200
    # submit and cancel are not polls
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 304


def test_min_poll_interval_is_per_api_key():
    with EmbeddedMock(providers=["aigateway"], clock="manual") as m:
        base = m.base_url("aigateway")
        hook = ContractChecked(base)
        with httpx.Client(base_url=base, event_hooks={"response": [hook]}) as c:
            a, b = {"Authorization": "Bearer sk-aig-a"}, {"Authorization": "Bearer sk-aig-b"}
            jid = c.post("/v1/videos/generations", headers=a, json={"model": T2V, "prompt": "p"}).json()["id"]
            assert c.get(f"/v1/jobs/{jid}", headers=a).status_code == 200
            assert c.get(f"/v1/jobs/{jid}", headers=b).status_code == 200
            assert c.get(f"/v1/jobs/{jid}", headers=a).status_code == 304
            assert c.get(f"/v1/jobs/{jid}", headers=b).status_code == 304


# -- remix ------------------------------------------------------------------------------------------------
def test_remix_of_a_seeded_source_inherits_length_and_size(client, mock):
    source = mock.seed_video("aigateway", seconds=8, size="720x1280")
    assert source["id"].startswith("job_")
    job = submitted(client, model=REMIX, video_id=source["id"], prompt="make it autumn")
    assert job["model"] == REMIX and job["status"] == "queued" and job["id"] != source["id"]
    mock.advance(QUEUED + IN_PROGRESS)
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "completed"
    assert done["result"]["duration"] == 8 and done["result"]["resolution"] == "720x1280"
    assert mock.admin("GET", f"jobs/aigateway/{job['id']}")["source_id"] == source["id"]


def test_remix_of_a_generated_job_and_request_overrides(client, mock):
    gen = submitted(client, duration=4, aspect_ratio="9:16")
    mock.advance(QUEUED + IN_PROGRESS)
    remix = submitted(client, model=REMIX, video_id=gen["id"], duration=12, aspect_ratio="16:9")
    mock.advance(QUEUED + IN_PROGRESS)
    result = client.get(f"/v1/jobs/{remix['id']}").json()["result"]
    assert result["duration"] == 12 and result["resolution"] == "1280x720"
    # a remix of a remix is a remix of a completed job too
    again = submitted(client, model=REMIX, video_id=remix["id"])
    mock.advance(QUEUED + IN_PROGRESS)
    assert client.get(f"/v1/jobs/{again['id']}").json()["result"]["resolution"] == "1280x720"


def test_remix_source_rules_unknown_unfinished_failed_cancelled_expired(client, mock):
    assert "job_doesnotexist" in assert_error(submit(client, model=REMIX, video_id="job_doesnotexist"),
                                              "not_found")["message"]
    pending = submitted(client)
    assert_error(submit(client, model=REMIX, video_id=pending["id"]), "conflict")
    mock.advance(QUEUED)  # now running
    assert_error(submit(client, model=REMIX, video_id=pending["id"]), "conflict")
    cancelled = submitted(client)
    client.post(f"/v1/jobs/{cancelled['id']}/cancel")
    failed = client.post("/v1/videos/generations", json={"model": T2V, "prompt": "p"},
                         headers={"X-Mock-Fault": "generation_failure"}).json()
    mock.advance(QUEUED + IN_PROGRESS)
    assert_error(submit(client, model=REMIX, video_id=cancelled["id"]), "conflict")
    assert_error(submit(client, model=REMIX, video_id=failed["id"]), "conflict")
    # the text-to-video model ignores video_id (x-kind picks generate): no source lookup
    assert submit(client, model=T2V, video_id="job_doesnotexist").status_code == 202
    # a completed source whose result expired is gone
    mock.advance(PROVIDER["mock"]["asset_ttl_seconds"])
    assert_error(submit(client, model=REMIX, video_id=pending["id"]), "expired")


# -- errors ---------------------------------------------------------------------------------------------
def test_unknown_job_is_404_in_the_provider_envelope(client):
    for r in (client.get("/v1/jobs/job_doesnotexist"), client.post("/v1/jobs/job_doesnotexist/cancel")):
        err = assert_error(r, "not_found")
        assert "job_doesnotexist" in err["message"]


def test_expired_job_is_404_job_expired(client, mock):
    job = submitted(client)
    mock.advance(QUEUED + IN_PROGRESS)
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "completed"
    mock.advance(PROVIDER["mock"]["asset_ttl_seconds"])
    assert_error(client.get(f"/v1/jobs/{job['id']}"), "expired")
    assert_error(client.post(f"/v1/jobs/{job['id']}/cancel"), "expired")


def test_auth_missing_wrong_scheme_and_wrong_key_are_401(client):
    body = {"model": T2V, "prompt": "p"}
    for headers in ({"Authorization": ""}, {"Authorization": f"Key {KEY}"}, {"Authorization": KEY},
                    {"Authorization": "Bearer sk-aig-wrong"}):
        for r in (client.post("/v1/videos/generations", json=body, headers=headers),
                  client.get("/v1/jobs/job_x", headers=headers),
                  client.post("/v1/jobs/job_x/cancel", headers=headers)):
            assert_error(r, "unauthorized")


@pytest.mark.parametrize("body", [
    {"prompt": "no model"},
    {"model": T2V},
    {"model": T2V, "prompt": ""},
    {"model": REMIX, "prompt": "remix without a source video"},
    {"model": REMIX, "prompt": "p", "video_id": ""},
    {"model": T2V, "prompt": "p", "duration": 0},
    {"model": T2V, "prompt": "p", "duration": "five"},
    {"model": T2V, "prompt": "p", "webhook_url": "not a url"},
    {"model": T2V, "prompt": "p", "webhook_url": "ftp://example.com/hook"},
    ["not", "an", "object"],
], ids=["no-model", "no-prompt", "empty-prompt", "remix-no-video-id", "empty-video-id", "duration-0",
        "duration-string", "webhook-not-url", "webhook-ftp", "array-body"])
def test_validation_errors_are_400_invalid_request(client, body):
    assert_error(client.post("/v1/videos/generations", json=body), "validation")


def test_malformed_json_and_wrong_method(client):
    r = client.post("/v1/videos/generations", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, "validation")
    r = client.get("/v1/videos/generations")
    assert_error(r, "method_not_allowed")
    assert "POST" in r.headers["Allow"]


def test_injected_http_faults_use_the_envelope(client):
    r = client.get("/v1/jobs/job_x", headers={"X-Mock-Fault": "rate_limit; retry_after=7"})
    assert_error(r, "rate_limited")
    assert r.headers["Retry-After"] == "7"
    r = client.post("/v1/videos/generations", json={"model": T2V, "prompt": "p"},
                    headers={"X-Mock-Fault": "server_error"})
    assert_error(r, "server_error")
    r = client.post("/v1/videos/generations", json={"model": T2V, "prompt": "p"},
                    headers={"X-Mock-Fault": "unavailable"})
    assert_error(r, "unavailable")


# -- cancel ---------------------------------------------------------------------------------------------
def test_cancel_while_queued(client, mock):
    job = submitted(client)
    r = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "cancelled" and body["id"] == job["id"] and body["created"] == job["created"]
    assert "result" not in body and "error" not in body
    mock.advance(QUEUED + IN_PROGRESS + 10)
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    err = assert_error(client.post(f"/v1/jobs/{job['id']}/cancel"), "conflict")
    assert "cancelled" in err["message"]


def test_cancel_while_running(client, mock):
    job = submitted(client)
    assert poll(client, mock, job["id"])["status"] == "queued"
    mock.advance(QUEUED)
    assert poll(client, mock, job["id"])["status"] == "running"
    assert client.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
    mock.advance(IN_PROGRESS)
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    assert mock.admin("GET", f"jobs/aigateway/{job['id']}")["cancelled"] is True


def test_cancel_after_completion_or_failure_is_409_and_changes_nothing(client, mock):
    job = submitted(client)
    failing = client.post("/v1/videos/generations", json={"model": T2V, "prompt": "p"},
                          headers={"X-Mock-Fault": "generation_failure"}).json()
    mock.advance(QUEUED + IN_PROGRESS)
    err = assert_error(client.post(f"/v1/jobs/{job['id']}/cancel"), "conflict")
    assert err["message"] == f"Job {job['id']} is already completed."
    after = client.get(f"/v1/jobs/{job['id']}").json()
    assert after["status"] == "completed" and "result" in after
    assert "failed" in assert_error(client.post(f"/v1/jobs/{failing['id']}/cancel"), "conflict")["message"]
    assert client.get(f"/v1/jobs/{failing['id']}").json()["status"] == "failed"


# -- generation failure -----------------------------------------------------------------------------------
def test_generation_failure_fault_fails_the_job_with_error(client, mock):
    mock.add_fault(kind="generation_failure", provider="aigateway", times=1, code="moderation_blocked",
                   message="blocked by the upstream safety system")
    doomed = submitted(client)  # accepted like any job: the failure happens during generation
    fine = submitted(client)
    assert doomed["status"] == "queued" and "error" not in doomed
    mock.advance(QUEUED)
    assert poll(client, mock, doomed["id"])["status"] in ("running", "failed")
    mock.advance(IN_PROGRESS)
    failed = client.get(f"/v1/jobs/{doomed['id']}").json()
    assert failed["status"] == "failed" and "result" not in failed
    assert failed["error"] == {"code": "moderation_blocked", "message": "blocked by the upstream safety system"}
    assert client.get(f"/v1/jobs/{fine['id']}").json()["status"] == "completed"  # times=1: rule spent


def test_generation_failure_header_default_code(client, mock):
    r = client.post("/v1/videos/generations", json={"model": REMIX, "prompt": "p",
                                                    "video_id": mock.seed_video("aigateway")["id"]},
                    headers={"X-Mock-Fault": "generation_failure"})
    assert r.status_code == 202
    mock.advance(QUEUED + IN_PROGRESS)
    failed = client.get(f"/v1/jobs/{r.json()['id']}").json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "content_policy_violation"

