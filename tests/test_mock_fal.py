"""fal-client 1.0.3, unmodified, against the mock's fal queue and fal.run hosts over TLS (127.0.0.1 only).

SDK recipe (mockserver/sdk_recipes.py, recipe A): fal-client reads FAL_QUEUE_RUN_HOST / FAL_RUN_HOST at
import and always uses https, so each SDK flow runs in a child process (tests/fal_sdk_flows.py) whose
environment is set before it imports fal_client: ``fal_env(queue_url, run_url, ca_path)`` ->
FAL_QUEUE_RUN_HOST=127.0.0.1:PORT/fal, FAL_RUN_HOST=127.0.0.1:PORT/fal-run, SSL_CERT_FILE=<mock CA>, FAL_KEY.
Recipe B (in-process, :func:`mockserver.sdk_recipes.point_fal_client_at`) is tested at the end.

Every response a test receives (including the child's, recorded by an httpx hook) is checked against
specs/fal/openapi.yaml.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from mock_sdk_support import (
    ProviderChecked,
    WebhookReceiver,
    event_errors,
    replay_records,
    schema_errors,
    sse_events,
)

import specs
from mockserver import media
from mockserver.embedded import EmbeddedMock
from mockserver.sdk_recipes import fal_env, point_fal_client_at

FLOWS = Path(__file__).with_name("fal_sdk_flows.py")
T2V = "fal-ai/sora-2/text-to-video"
REMIX = "fal-ai/sora-2/video-to-video/remix"
CONTENT_POLICY = "content_policy_violation"


@pytest.fixture(scope="module")
def mock():
    with EmbeddedMock(providers=["fal"], clock="manual", tls=True, seed=11) as m:
        yield m


@pytest.fixture
def fresh(mock):
    mock.admin("POST", "reset")
    return mock


@pytest.fixture
def http(fresh):
    """An httpx client (fal Key auth, the mock's CA) whose every response is checked against the contract."""
    with ProviderChecked(fresh, "fal").client(verify=_ssl(fresh), headers={"Authorization": "Key test-key"},
                                              timeout=10) as client:
        yield client


def _ssl(mock):
    import ssl

    return ssl.create_default_context(cafile=mock.ca_path)


def run_flow(mock, flow: str, **args) -> dict:
    """Run one flow of tests/fal_sdk_flows.py in a child process set up with recipe A; check every response
    the SDK received against the contract; return the flow's result."""
    env = dict(os.environ)
    env.update(fal_env(mock.base_url("fal", "queue"), mock.base_url("fal", "run"), mock.ca_path, key="test-key"))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    args["admin"] = mock.url + "/__mock"
    proc = subprocess.run([sys.executable, str(FLOWS), flow, json.dumps(args)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, f"flow {flow} failed:\n{proc.stderr[-3000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["records"], "the child recorded no responses"
    assert out["seconds"] < 2.0, f"flow {flow} took {out['seconds']:.2f} s"
    replay_records(ProviderChecked(mock, "fal"), out["records"])
    return out["result"]


def _probe(mock, url: str) -> dict:
    """Download an asset (its type checked by ProviderChecked) and probe the MP4."""
    with ProviderChecked(mock, "fal").client(verify=_ssl(mock), timeout=10) as client:
        return media.probe_mp4(client.get(url).content)


# -- SDK flows (child process, recipe A) --------------------------------------------------------------------
def test_subscribe_text_to_video_then_remix_its_video_id(fresh):
    out = run_flow(fresh, "subscribe_remix")
    t2v, remix = out["t2v"], out["remix"]
    # Output shape of seed 001: video file, video_id, thumbnail, spritesheet.
    assert t2v["video"]["content_type"] == "video/mp4" and t2v["thumbnail"]["content_type"] == "image/webp"
    assert t2v["spritesheet"]["content_type"] == "image/jpeg"
    info = _probe(fresh, t2v["video"]["url"])
    assert (info["width"], info["height"]) == (1280, 720) and abs(info["duration_seconds"] - 8) < 0.2
    # The remix source is the output's video_id, a different id from the queue request_id.
    t2v_request, remix_request = out["request_ids"]
    assert t2v["video_id"].startswith("video_") and t2v["video_id"] != t2v_request
    assert remix["video_id"] != t2v["video_id"]
    job = fresh.admin("GET", f"jobs/fal/{remix_request}")
    assert job["kind"] == "remix" and job["source_id"] == t2v_request
    remix_info = _probe(fresh, remix["video"]["url"])  # a remix keeps its source's duration and size
    assert (remix_info["width"], remix_info["height"]) == (1280, 720)
    assert abs(remix_info["duration_seconds"] - 8) < 0.2
    # on_queue_update saw the whole lifecycle, with logs while in progress (with_logs=True).
    kinds = [u["type"] for u in out["updates"]]
    assert kinds == ["Queued", "InProgress", "InProgress", "Completed"]
    assert out["updates"][0]["position"] == 0
    progress_logs = [u["logs"] for u in out["updates"] if u["type"] == "InProgress"]
    assert all(isinstance(logs, list) and logs for logs in progress_logs)
    assert len(progress_logs[1]) > len(progress_logs[0])  # more lines as the generation goes on
    assert {"message", "level", "source", "timestamp"} <= set(progress_logs[1][-1])
    assert out["updates"][-1]["metrics"]["inference_time"] == pytest.approx(2.0)
    assert [u["type"] for u in out["remix_updates"]][-1] == "Completed"


def test_submit_status_result_cancel(fresh):
    out = run_flow(fresh, "submit_status_result_cancel")
    # queue positions: 0, 1, 2 at submit, falling while the queue moves
    assert [s["position"] for s in out["queued"]] == [0, 1, 2]
    assert out["last_after_quarter"] == {"type": "Queued", "position": 1}
    # cancelling a queued request: 202 CANCELLATION_REQUESTED; fal then reports COMPLETED with an error
    assert out["cancel_queued"] == {"ok": None}
    cancelled = out["cancelled_status"]
    assert cancelled["type"] == "Completed" and cancelled["error_type"] == "request_cancelled" and cancelled["error"]
    assert out["cancelled_result"]["error"]["status"] == 400
    # logs only when asked for (the logs key is always there: fal-client needs it)
    running = out["running_with_logs"]
    assert running["type"] == "InProgress" and running["logs"][0]["message"].startswith("Starting")
    assert out["running_without_logs"] == {"type": "InProgress", "logs": None}
    assert out["completed"]["type"] == "Completed" and out["completed"]["error"] is None
    assert out["result"]["ok"]["video"]["url"].startswith(fresh.url + "/__mock/files/fal/")
    assert out["handle_get"]["video_id"].startswith("video_")
    # cancelling a finished request: 400 ALREADY_COMPLETED (fal-client raises FalClientHTTPError)
    err = out["cancel_completed"]["error"]
    assert err["status"] == 400 and "ALREADY_COMPLETED" in err["message"]


def test_run_against_fal_run_blocks_until_the_output(fresh):
    out = run_flow(fresh, "run")
    t2v, remix = out["t2v"], out["remix"]
    assert t2v["video_id"].startswith("video_") and remix["video_id"] != t2v["video_id"]
    info = _probe(fresh, remix["video"]["url"])
    assert (info["width"], info["height"]) == (720, 1280) and abs(info["duration_seconds"] - 4) < 0.2
    jobs = fresh.admin("GET", "jobs?provider=fal")["jobs"]
    assert sorted(j["kind"] for j in jobs) == ["generate", "remix"]
    assert all(j["status"] == "completed" for j in jobs)


def test_remix_of_a_delete_video_output_fails(fresh):
    out = run_flow(fresh, "delete_video")
    # delete_video defaults to true (seed 001): once delivered, the video is gone and cannot be remixed
    assert out["remix_deleted"]["error"]["status"] == 404
    assert "delete_video" in out["remix_deleted"]["error"]["message"]
    # the remix source is a video_id, not a request_id
    assert out["remix_by_request_id"]["error"]["status"] == 404
    assert "ok" in out["remix_kept"]


def test_unknown_request_id(fresh):
    out = run_flow(fresh, "unknown")
    assert out["status"]["error"]["status"] == 404
    assert out["status"]["error"]["error_type"] == "request_not_found"
    assert out["result"]["error"]["status"] == 404
    assert out["cancel"]["error"]["status"] == 404 and "NOT_FOUND" in out["cancel"]["error"]["message"]
    assert out["remix"]["error"]["status"] == 404


@pytest.mark.parametrize("via", ["header", "add_fault"])
def test_failed_generation_is_completed_with_an_error(fresh, via):
    message = "Flagged by the content checker (test)."
    if via == "header":
        out = run_flow(fresh, "failure", header=f"generation_failure; message={message}")
    else:
        fresh.add_fault(kind="generation_failure", provider="fal", operation="submitTextToVideo", times=1,
                        message=message)
        out = run_flow(fresh, "failure")
    final = out["updates"][-1]
    # fal reports a failed request as COMPLETED with error and error_type (fal-client 1.0.3 Completed)
    assert final["type"] == "Completed" and final["error"] == message and final["error_type"] == CONTENT_POLICY
    assert final["logs"][-1]["level"] == "ERROR"
    # ... and subscribe() then fetches the result: 422 with the detail list
    err = out["subscribe"]["error"]
    assert err["status"] == 422
    assert err["message"][0]["type"] == CONTENT_POLICY and err["message"][0]["msg"] == message
    assert err["message"][0]["loc"] == ["body", "prompt"]


def test_fal_webhook_gets_the_output(fresh):
    contract = specs.load("fal")
    with WebhookReceiver() as hook:
        out = run_flow(fresh, "webhook", hook=hook.url)
        received = hook.wait(1)
    assert len(received) == 1
    _, headers, body = received[0]
    assert not schema_errors(contract.openapi, "#/components/schemas/WebhookPayload", body)
    assert body["request_id"] == out["request_id"] and body["status"] == "OK" and body["error"] is None
    assert body["payload"] == out["result"]


# -- plain HTTP checks ---------------------------------------------------------------------------------------
def test_submit_answer_and_status_logs_parameter(http, fresh):
    base = fresh.base_url("fal", "queue")
    sub = http.post(f"{base}/{T2V}", json={"prompt": "a dune at dusk"}).json()
    # URLs come from the contract's status/result/cancel paths (app id without the subpath)
    assert sub["status_url"] == f"{base}/fal-ai/sora-2/requests/{sub['request_id']}/status"
    assert sub["response_url"] == f"{base}/fal-ai/sora-2/requests/{sub['request_id']}"
    assert sub["cancel_url"] == sub["response_url"] + "/cancel"
    assert sub["status"] == "IN_QUEUE" and sub["queue_position"] == 0
    fresh.advance(1.0)
    for value, has_logs in (("1", True), ("true", True), ("0", False), ("false", False)):
        body = http.get(sub["status_url"], params={"logs": value}).json()
        assert body["status"] == "IN_PROGRESS" and (body["logs"] is not None) == has_logs
    assert http.get(sub["status_url"], params={"logs": "maybe"}).status_code == 422
    early = http.get(sub["response_url"])
    assert early.status_code == 400 and "IN_PROGRESS" in early.json()["detail"]
    missing = http.post(f"{base}/{T2V}", json={"duration": 4})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "prompt"]


def test_status_stream_sends_each_change_until_completed(http, fresh):
    contract = specs.load("fal")
    base = fresh.base_url("fal", "queue")
    client = http
    sub = client.post(f"{base}/{T2V}", json={"prompt": "waves"}).json()
    stop = threading.Event()

    def tick():
        while not stop.wait(0.06):
            fresh.advance(0.5)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        with client.stream("GET", sub["status_url"] + "/stream", params={"logs": "1"}) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            assert any(h.endswith("request-id") for h in resp.headers)  # stamped before the stream starts
            text = resp.read().decode()
    finally:
        stop.set()
        ticker.join(5)
    events = sse_events(text)
    assert not event_errors(contract, "status_stream", events)
    statuses = [e["status"] for e in events]
    assert statuses[0] == "IN_QUEUE" and statuses[-1] == "COMPLETED" and "IN_PROGRESS" in statuses
    assert len(events) == len({json.dumps(e, sort_keys=True) for e in events})  # only changes are sent
    assert client.get(f"{base}/fal-ai/sora-2/requests/nope/status/stream").status_code == 404


def test_fal_run_gives_up_with_a_504_when_the_clock_does_not_move(http, fresh):
    family = fresh.state.mount_for("fal", "run").family
    saved = family.mock
    family.mock = dict(saved, sync=dict(saved["sync"], max_wait_seconds=0.2))
    try:
        resp = http.post(fresh.base_url("fal", "run") + "/fal-ai/sora-2/text-to-video", json={"prompt": "slow"})
    finally:
        family.mock = saved
    assert resp.status_code == 504 and resp.json()["error_type"] == "request_timeout"


def test_fal_env_recipe_values(mock):
    env = fal_env("https://127.0.0.1:8443/fal", "https://127.0.0.1:8443/fal-run", "/tmp/ca.pem")
    assert env["FAL_QUEUE_RUN_HOST"] == "127.0.0.1:8443/fal" and env["FAL_RUN_HOST"] == "127.0.0.1:8443/fal-run"
    assert env["SSL_CERT_FILE"] == "/tmp/ca.pem" and env["FAL_KEY"]
    with pytest.raises(ValueError, match="https"):
        fal_env("http://127.0.0.1:8000/fal", "http://127.0.0.1:8000/fal-run")


def test_in_process_recipe_point_fal_client_at():
    """Recipe B: fal_client already imported, a plain-HTTP mock, the URL formats rewritten."""
    import fal_client

    before = fal_client.client.QUEUE_URL_FORMAT
    with EmbeddedMock(providers=["fal"], speed=100, seed=3) as plain:
        check = ProviderChecked(plain, "fal")
        restore = point_fal_client_at(plain.base_url("fal", "queue"), plain.base_url("fal", "run"))
        try:
            client = fal_client.SyncClient(key="test-key")
            client._client.event_hooks["response"].append(check)  # noqa: SLF001 - checking only
            handle = client.submit(T2V, {"prompt": "in-process", "delete_video": False})
            assert handle.status_url.startswith(plain.base_url("fal", "queue"))
            output = client.result(T2V, handle.request_id)
            ran = client.run(REMIX, {"video_id": output["video_id"], "prompt": "again"})
        finally:
            restore()
        assert fal_client.client.QUEUE_URL_FORMAT == before
    assert ran["video_id"] != output["video_id"]
    assert len(check.checked) >= 4


def _open_handlers(mock) -> int:
    """Request handlers still running on the mock's loop."""
    import asyncio

    return mock.call(lambda: sum("_handle_request" in repr(t.get_coro()) for t in asyncio.all_tasks()))


def test_status_stream_stops_when_the_client_goes_away(http, fresh):
    sub = http.post(fresh.base_url("fal", "queue") + f"/{T2V}", json={"prompt": "nobody watches"}).json()
    with http.stream("GET", sub["status_url"] + "/stream") as resp:
        first = next(resp.iter_lines())
        assert first.startswith("data: ") and _open_handlers(fresh) == 1  # the clock is frozen: no end
    http.close()
    deadline = time.monotonic() + 2
    while _open_handlers(fresh) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _open_handlers(fresh) == 0


def test_fal_run_stops_waiting_when_the_client_goes_away(fresh):
    with httpx.Client(verify=_ssl(fresh), headers={"Authorization": "Key k"}, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(fresh.base_url("fal", "run") + "/fal-ai/sora-2/text-to-video", json={"prompt": "gone"})
    deadline = time.monotonic() + 2
    while _open_handlers(fresh) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _open_handlers(fresh) == 0


def test_seeded_source_is_remixable_by_its_id(http, fresh):
    """A video seeded through the admin API has no request id, so its id (or video_<hex>) names it."""
    seeded = fresh.seed_video("fal", seconds=4, size="720x1280")
    url = fresh.base_url("fal", "queue") + f"/{REMIX}"
    by_id = http.post(url, json={"video_id": seeded["id"], "prompt": "a"})
    by_video_id = http.post(url, json={"video_id": "video_" + seeded["id"].replace("-", ""), "prompt": "b"})
    assert by_id.status_code == 200 and by_video_id.status_code == 200
    jobs = [fresh.admin("GET", f"jobs/fal/{r.json()['request_id']}") for r in (by_id, by_video_id)]
    assert [j["source_id"] for j in jobs] == [seeded["id"], seeded["id"]]
