"""OneRouter's synchronous remix (POST /v1/videos/edits) against the mock, with plain httpx and aiohttp.

Every response is checked against specs/onerouter/openapi.yaml (status, headers, body, content type).
"""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
import httpx
import pytest
from mock_sdk_support import ProviderChecked

from mockserver import media
from mockserver.embedded import EmbeddedMock

EDITS = "/v1/videos/edits"
MODEL = "sora-2-video-to-video"


@pytest.fixture(scope="module")
def mock():
    # 0.5 s queued + 2 s generating at speed 50: a blocking call takes ~50 ms of real time.
    with EmbeddedMock(providers=["onerouter"], speed=50, seed=9) as m:
        yield m


@pytest.fixture
def http(mock):
    mock.admin("DELETE", "faults")
    with ProviderChecked(mock, "onerouter").client(base_url=mock.base_url("onerouter"), timeout=10,
                                                   headers={"Authorization": "or-test-key"}) as client:
        yield client


def test_seeded_source_is_remixed_synchronously(http, mock):
    source = mock.seed_video("onerouter", seconds=8, size="1280x720")
    started = time.monotonic()
    resp = http.post(EDITS, json={"model": MODEL, "video_id": source["id"], "prompt": "at night",
                                  "output_format": "url"})
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["data"]) == 1 and isinstance(body["created"], int)
    item = body["data"][0]
    assert item["video_id"].startswith("video_") and item["video_id"] != source["id"]
    assert item["revised_prompt"] == "at night"
    info = media.probe_mp4(http.get(item["url"]).content)  # a remix keeps its source's size and duration
    assert (info["width"], info["height"]) == (1280, 720) and abs(info["duration_seconds"] - 8) < 0.2
    job = mock.admin("GET", f"jobs/onerouter/{item['video_id']}")
    assert job["status"] == "completed" and job["kind"] == "remix" and job["source_id"] == source["id"]
    # the output is itself a Sora generation and can be remixed again (x-assumption of the contract)
    again = http.post(EDITS, json={"model": "openai/sora-2-video-to-video", "video_id": item["video_id"],
                                   "prompt": "in watercolor"})
    assert again.status_code == 200 and again.json()["data"][0]["video_id"] != item["video_id"]
    assert time.monotonic() - started < 2.0


def test_unknown_video_id_is_a_404_envelope(http):
    resp = http.post(EDITS, json={"model": MODEL, "video_id": "video_" + "0" * 48, "prompt": "x"})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == 404 and resp.json()["error"]["param"] == "video_id"


@pytest.mark.parametrize("auth", [None, "", "Key or-test-key", "Basic b3I6a2V5"])
def test_bad_auth_is_a_401_envelope(http, auth):
    headers = {"Authorization": auth} if auth is not None else {}
    if auth is None:
        http.headers.pop("Authorization")
    resp = http.post(EDITS, json={"model": MODEL, "video_id": "video_x", "prompt": "x"}, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == 401 and resp.json()["error"]["type"] == "authentication_error"


def test_bearer_is_accepted_too(http, mock):
    source = mock.seed_video("onerouter")
    resp = http.post(EDITS, json={"model": MODEL, "video_id": source["id"], "prompt": "x"},
                     headers={"Authorization": "Bearer or-test-key"})
    assert resp.status_code == 200


@pytest.mark.parametrize("body,param", [({"video_id": "video_x", "prompt": "x"}, "model"),
                                        ({"model": MODEL, "video_id": "video_x"}, "prompt"),
                                        ({"model": MODEL, "prompt": "x"}, "video_id"),
                                        ({"model": MODEL, "video_id": "video_x", "prompt": "x",
                                          "output_format": "b64_json"}, "output_format")])
def test_missing_or_bad_fields_are_the_providers_validation_error(http, body, param):
    resp = http.post(EDITS, json=body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == 400 and error["type"] == "invalid_request_error" and error["param"] == param


def test_body_that_is_not_json(http):
    resp = http.post(EDITS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "body"


@pytest.mark.parametrize("via", ["header", "add_fault"])
def test_failed_generation_is_a_422_content_policy_violation(http, mock, via):
    source = mock.seed_video("onerouter")
    body = {"model": MODEL, "video_id": source["id"], "prompt": "flagged"}
    if via == "header":
        resp = http.post(EDITS, json=body, headers={"X-Mock-Fault": "generation_failure"})
    else:
        mock.add_fault(kind="generation_failure", provider="onerouter", times=1)
        resp = http.post(EDITS, json=body)
    assert resp.status_code == 422
    assert resp.json()["error"]["type"] == "content_policy_violation" and resp.json()["error"]["code"] == 422
    failed = mock.admin("GET", "jobs?provider=onerouter&status=failed")["jobs"]
    assert failed and failed[0]["source_id"] == source["id"]


def test_concurrent_calls_with_aiohttp(mock):
    """Two blocking calls at once (the wait does not block the server's loop), every answer checked."""
    check = ProviderChecked(mock, "onerouter")
    source = mock.seed_video("onerouter")
    url = mock.base_url("onerouter") + EDITS

    async def one(session: aiohttp.ClientSession, prompt: str) -> dict:
        async with session.post(url, json={"model": MODEL, "video_id": source["id"], "prompt": prompt}) as r:
            content = await r.read()
            check(httpx.Response(r.status, headers=list(r.headers.items()), content=content,
                                 request=httpx.Request("POST", url, headers=dict(r.request_info.headers))))
            return await r.json()

    async def main():
        async with aiohttp.ClientSession(headers={"Authorization": "or-test-key"}) as session:
            return await asyncio.gather(one(session, "first"), one(session, "second"))

    started = time.monotonic()
    first, second = asyncio.run(main())
    assert time.monotonic() - started < 1.0  # concurrent, not one after the other
    assert first["data"][0]["video_id"] != second["data"][0]["video_id"]
    assert len(check.checked) == 2


def test_manual_clock_blocks_until_advanced_then_times_out():
    with EmbeddedMock(providers=["onerouter"], clock="manual", seed=4) as manual:
        check = ProviderChecked(manual, "onerouter")
        source = manual.seed_video("onerouter")
        client = check.client(base_url=manual.base_url("onerouter"), headers={"Authorization": "k"}, timeout=10)
        body = {"model": MODEL, "video_id": source["id"], "prompt": "wait for me"}
        answers: list[httpx.Response] = []
        call = threading.Thread(target=lambda: answers.append(client.post(EDITS, json=body)))
        call.start()
        deadline = time.monotonic() + 5
        while not manual.admin("GET", "jobs?provider=onerouter&status=queued")["jobs"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        pending = manual.admin("GET", "jobs?provider=onerouter&status=queued")["jobs"][0]
        # a source that is still generating cannot be remixed: 400 (conflict kind)
        busy = client.post(EDITS, json={"model": MODEL, "video_id": pending["id"], "prompt": "too early"})
        assert busy.status_code == 400 and busy.json()["error"]["param"] == "video_id"
        time.sleep(0.1)
        assert not answers  # still blocked: the clock has not moved
        manual.advance(2.5)
        call.join(5)
        assert answers and answers[0].status_code == 200
        assert answers[0].json()["data"][0]["video_id"] == pending["id"]

        family = manual.state.mount_for("onerouter").family
        family.mock = dict(family.mock, sync=dict(family.mock["sync"], max_wait_seconds=0.2))
        timed_out = client.post(EDITS, json=body)
        assert timed_out.status_code == 408 and timed_out.json()["error"]["type"] == "timeout_error"
        client.close()
