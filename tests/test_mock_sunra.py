"""sunra-client 0.6.0, unmodified, against the mock's sunra queue (127.0.0.1 only).

SDK recipe (mockserver/sdk_recipes.py): sunra-client forces ``https://api.{SUNRA_HOST}/v1/queue/`` and
``api.localhost`` does not resolve here, so ``point_sunra_client_at(mock.base_url("sunra"))`` rewrites
``sunra_client.client.QUEUE_URL_FORMAT``. The SDK's HTTP client is given through its own
``sunra_client.config(credentials=..., http_client=...)``; that httpx client checks every response against
specs/sunra/openapi.yaml (the request-id helpers' ``/v1/queue//requests/...`` double slash included).
"""

from __future__ import annotations

import threading

import httpx
import pytest
import sunra_client
from mock_sdk_support import ProviderChecked, WebhookReceiver, event_errors, schema_errors, sse_events

import specs
from mockserver import media
from mockserver.embedded import EmbeddedMock
from mockserver.sdk_recipes import point_sunra_client_at

T2V = "openai/sora-2/text-to-video"
V2V = "openai/sora-2/video-to-video"


@pytest.fixture(scope="module")
def mock():
    with EmbeddedMock(providers=["sunra"], clock="manual", seed=5) as m:
        yield m


@pytest.fixture
def check(mock):
    """Reset the mock; point sunra-client at it with a contract-checking, wire-recording HTTP client."""
    mock.admin("POST", "reset")
    check = ProviderChecked(mock, "sunra")
    wire: list[str] = []
    client = httpx.Client(event_hooks={"request": [lambda r: wire.append(r.url.raw_path.decode())],
                                       "response": [check]}, timeout=10)
    check.wire = wire
    restore = point_sunra_client_at(mock.base_url("sunra"))
    sunra_client.config(credentials="test-sunra-key", http_client=client)
    yield check
    restore()
    sunra_client.auth._global_config.set_http_client(None)  # noqa: SLF001 - undo config() for other tests
    sunra_client.auth._global_config.set_credentials(None)  # noqa: SLF001
    client.close()


def check_client(check: ProviderChecked, headers: dict | None = None) -> httpx.Client:
    """A raw httpx client (Bearer auth) whose every response is checked against the contract."""
    return check.client(headers=headers or {"Authorization": "Bearer k"}, timeout=10)


def driver(mock, updates: list):
    """``on_queue_update``: record each update and move the manual clock (0.5 s queue, 2 s generation)."""

    def on_update(status):
        updates.append(status)
        if isinstance(status, sunra_client.Queued):
            mock.advance(0.5)
        elif isinstance(status, sunra_client.InProgress):
            mock.advance(1.0)

    return on_update


def test_subscribe_text_to_video_then_remix(check, mock):
    updates, ids = [], []
    out = sunra_client.subscribe(T2V, arguments={"prompt": "a paper boat", "duration": 8, "aspect_ratio": "9:16"},
                                 on_enqueue=ids.append, on_queue_update=driver(mock, updates))
    video = out["video"]
    assert set(video) == {"content_type", "file_name", "file_size", "url"} and video["content_type"] == "video/mp4"
    data = check_client(check).get(video["url"]).content
    assert len(data) == video["file_size"]
    info = media.probe_mp4(data)
    assert (info["width"], info["height"]) == (720, 1280) and abs(info["duration_seconds"] - 8) < 0.2
    assert [type(u).__name__ for u in updates] == ["Queued", "InProgress", "InProgress", "Completed"]
    # logs=1 on submit (with_logs=True): sunra-client types logs as a string
    assert isinstance(updates[1].logs, str) and "Starting" in updates[1].logs
    assert updates[2].logs.count("\n") > updates[1].logs.count("\n")
    assert updates[-1].success is True and updates[-1].error is None
    assert updates[-1].metrics["inference_time"] == pytest.approx(2.0)

    # the remix source is the generation's request id (the output carries no video id)
    assert ids[0].startswith("pd_")
    remixed = sunra_client.subscribe(V2V, arguments={"video_id": ids[0], "prompt": "the boat sails at night"},
                                     on_enqueue=ids.append, on_queue_update=driver(mock, []))
    job = mock.admin("GET", f"jobs/sunra/{ids[1]}")
    assert job["kind"] == "remix" and job["source_id"] == ids[0]
    assert remixed["video"]["url"] != video["url"]
    assert any("?logs=1" in p for p in check.wire)


def test_request_id_helpers_use_the_double_slash(check, mock):
    handle = sunra_client.submit(T2V, {"prompt": "fireflies"}, with_logs=False)
    assert isinstance(sunra_client.status(handle.request_id), sunra_client.Queued)
    mock.advance(1.0)
    running = sunra_client.status(handle.request_id)
    assert isinstance(running, sunra_client.InProgress) and running.logs is None  # logs=0 on submit
    mock.advance(2.0)
    done = sunra_client.status(handle.request_id)
    assert isinstance(done, sunra_client.Completed) and done.success
    output = sunra_client.result(handle.request_id)
    assert output["video"]["url"].startswith(mock.url + "/__mock/files/sunra/")
    double = [p for p in check.wire if "/v1/queue//requests/" in p]
    assert any(p.endswith("/status") for p in double) and any(p.endswith(handle.request_id) for p in double)
    with pytest.raises(sunra_client.SunraClientError) as err:  # already completed
        sunra_client.cancel(handle.request_id)
    assert err.value.code == "INVALID_REQUEST"


def test_cancel_through_the_request_id_helper(check, mock):
    queued = sunra_client.submit(T2V, {"prompt": "to be cancelled"})
    sunra_client.cancel(queued.request_id)  # PUT .../v1/queue//requests/{id}/cancel -> 200
    assert any(p.endswith(f"//requests/{queued.request_id}/cancel") for p in check.wire)
    # sunra-client 0.6.0 cannot parse CANCELLED (x-doc-defect on QueueStatus): status() raises ValueError
    with pytest.raises(ValueError, match="CANCELLED"):
        sunra_client.status(queued.request_id)
    raw = check_client(check)
    body = raw.get(queued.status_url).json()
    assert body["status"] == "CANCELLED" and body["request_id"] == queued.request_id
    assert raw.get(queued.response_url).status_code == 400
    with pytest.raises(sunra_client.SunraClientError) as err:  # cannot cancel twice
        queued.cancel()
    assert err.value.code == "INVALID_REQUEST"
    mock.advance(5.0)
    assert mock.admin("GET", f"jobs/sunra/{queued.request_id}")["status"] == "cancelled"


def test_failed_prediction_raises_the_same_error_both_ways(check, mock):
    mock.add_fault(kind="generation_failure", provider="sunra", times=1, message="Rejected by policy (test).")
    with pytest.raises(sunra_client.SunraClientError) as err:
        sunra_client.subscribe(T2V, arguments={"prompt": "flagged"}, on_queue_update=driver(mock, []))
    # status path: COMPLETED with success false -> get() raises without fetching the result
    assert err.value.code == "CONTENT_POLICY_VIOLATION" and err.value.message == "Rejected by policy (test)."
    assert err.value.type == "prediction_failed" and err.value.prediction_error["code"] == err.value.code
    job = mock.admin("GET", "jobs?provider=sunra")["jobs"][0]
    result = check_client(check).get(f"{mock.base_url('sunra')}/v1/queue/requests/{job['id']}")
    assert result.status_code == 422
    # result path: PREDICTION_FAILED with the prediction error in details, which sunra-client promotes
    with pytest.raises(sunra_client.SunraClientError) as again:
        sunra_client.client._raise_for_status(result)  # noqa: SLF001 - the SDK's own parser of that body
    assert (again.value.code, again.value.message, again.value.type) == (err.value.code, err.value.message,
                                                                          err.value.type)


def test_unknown_request_and_bad_remix_sources(check, mock):
    with pytest.raises(sunra_client.SunraClientError) as err:
        sunra_client.status("pd_doesnotexist")
    assert err.value.code == "REQUEST_NOT_FOUND"
    with pytest.raises(sunra_client.SunraClientError):
        sunra_client.cancel("pd_doesnotexist")
    with pytest.raises(sunra_client.SunraClientError) as err:
        sunra_client.submit(V2V, {"video_id": "pd_doesnotexist", "prompt": "x"})
    assert err.value.code == "REQUEST_NOT_FOUND"
    running = sunra_client.submit(T2V, {"prompt": "not done yet"})
    with pytest.raises(sunra_client.SunraClientError) as err:
        sunra_client.submit(V2V, {"video_id": running.request_id, "prompt": "x"})
    assert err.value.code == "INVALID_REQUEST"
    with pytest.raises(sunra_client.SunraClientError) as err:  # the docs' own empty example (x-expected-invalid)
        sunra_client.submit(V2V, {"video_id": "", "prompt": ""})
    assert err.value.code == "VALIDATION_ERROR"


def test_webhook_receives_the_output(check, mock):
    contract = specs.load("sunra")
    with WebhookReceiver() as hook:
        handle = sunra_client.submit(T2V, {"prompt": "webhook"}, webhook_url=hook.url + "?job=1")
        mock.advance(3.0)
        received = hook.wait(1)
    assert len(received) == 1
    path, _, body = received[0]
    assert path == "/hook?job=1"
    assert not schema_errors(contract.openapi, "#/components/schemas/WebhookPayload", body)
    assert body["request_id"] == handle.request_id and body["status"] == "OK"
    assert body["payload"]["video"]["content_type"] == "video/mp4"


def test_status_stream_until_terminal(check, mock):
    contract = specs.load("sunra")
    headers = {"Authorization": "Bearer k"}
    raw = check_client(check, headers)
    sub = raw.post(mock.base_url("sunra") + f"/v1/queue/{T2V}?logs=1", json={"prompt": "stream"}).json()
    stop = threading.Event()

    def tick():
        while not stop.wait(0.06):
            mock.advance(0.5)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        with raw.stream("GET", sub["status_url"] + "/stream") as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            events = sse_events(resp.read().decode())
    finally:
        stop.set()
        ticker.join(5)
    assert not event_errors(contract, "status_stream", events)
    assert events[0]["status"] == "IN_QUEUE" and events[-1]["status"] == "COMPLETED"
    assert events[-1]["success"] is True and "IN_PROGRESS" in [e["status"] for e in events]


def test_cancelled_stream_ends_with_cancelled(check, mock):
    raw = check_client(check, {"Authorization": "Key k"})  # the docs' curl scheme is accepted too
    base = mock.base_url("sunra")
    sub = raw.post(f"{base}/v1/queue/{T2V}", json={"prompt": "stop"}).json()
    assert raw.put(sub["cancel_url"]).json() == {"status": "CANCELLED", "request_id": sub["request_id"]}
    with raw.stream("GET", f"{base}/v1/queue//requests/{sub['request_id']}/status/stream") as resp:
        events = sse_events(resp.read().decode())
    assert [e["status"] for e in events] == ["CANCELLED"]
    assert not event_errors(specs.load("sunra"), "status_stream", events)


def test_point_sunra_client_at_restores():
    before = sunra_client.client.QUEUE_URL_FORMAT
    restore = point_sunra_client_at("http://127.0.0.1:1/sunra/")
    assert sunra_client.client.QUEUE_URL_FORMAT == "http://127.0.0.1:1/sunra/v1/queue/"
    restore()
    assert sunra_client.client.QUEUE_URL_FORMAT == before


def test_everything_checked_against_the_contract(check, mock):
    """A short flow through every operation with raw httpx, every answer checked (incl. 401 and 404)."""
    raw = check_client(check)
    base = mock.base_url("sunra")
    assert raw.post(f"{base}/v1/queue/{T2V}", json={"prompt": "x"}, headers={"Authorization": ""}).status_code == 401
    sub = raw.post(f"{base}/v1/queue/{T2V}?logs=1", json={"prompt": "x"}).json()
    assert raw.get(sub["status_url"], params={"logs": "yes"}).status_code == 422
    assert raw.get(sub["response_url"]).status_code == 400
    assert raw.get(f"{base}/v1/queue/requests/pd_nope").status_code == 404
    mock.advance(3)
    assert raw.get(sub["response_url"]).status_code == 200
    assert len(check.checked) == 6
