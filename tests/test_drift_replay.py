"""``mockserver serve --replay``: recorded flows replayed offline, polls advancing, URLs rewritten.

The SDK tests record the official SDKs' own traffic against the live mock (a recording httpx transport is
their HTTP client), then replay the cassette on a *fresh* mock with another seed (so a request falling
through to the live engine would produce other ids) and check the SDK reaches the same result.
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings

import fal_client
import httpx
import openai
import pytest

from conformance.drift.recorder import Recorder
from mockserver.cli import main as mockserver_main
from mockserver.embedded import EmbeddedMock
from mockserver.sdk_recipes import point_fal_client_at

KEY = "sk-replay-test-0123456789"


def bounded(fn, *args, seconds: float = 30.0):
    """Run ``fn(*args)`` on a daemon thread; fail instead of hanging if a poll loop never ends (the VCR
    pitfall: a replay serving the first poll forever would keep the SDK polling)."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # re-raised below in the test's thread
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"the SDK flow did not finish within {seconds} s against the replay")
    if "error" in box:
        raise box["error"]
    return box["value"]


def openai_flow(base_url: str, http_client: httpx.Client | None = None) -> dict:
    client = openai.OpenAI(base_url=base_url, api_key=KEY, http_client=http_client, max_retries=0, timeout=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        video = client.videos.create(prompt="a paper boat", seconds="4")
        video = client.videos.poll(video.id, poll_interval_ms=20)
        content = client.videos.download_content(video.id).read()
        remix = client.videos.remix(video.id, prompt="make it purple")
        remix = client.videos.poll(remix.id, poll_interval_ms=20)
    return {"video": video.model_dump(), "remix": remix.model_dump(), "sha256": hashlib.sha256(content).hexdigest(),
            "length": len(content)}


@pytest.mark.parametrize("store_binary", [True, False])
def test_openai_sdk_replays_to_the_same_result(tmp_path, store_binary):
    path = tmp_path / "openai.cassette.json"
    with EmbeddedMock(providers=["openai"], speed=50) as live_mock:
        base = live_mock.base_url("openai")
        rec = Recorder(provider="openai", hosts={"api": base}, secrets=[KEY], store_binary=store_binary)
        live = openai_flow(base, httpx.Client(transport=rec.transport()))
        rec.cassette.save(path)
    polls = [i for i in rec.cassette.interactions if i.method == "GET" and i.url.count("/") == 6]
    assert len(polls) >= 2 and polls[0].response["body"]["status"] != "completed"
    with EmbeddedMock(providers=["openai"], speed=50, seed=7, replay=str(path)) as replay_mock:
        replayed = bounded(openai_flow, replay_mock.base_url("openai"))
        summary = replay_mock.state.replay.summary()
        journal = replay_mock.admin("GET", "journal")
    assert summary["served"] == summary["interactions"] == len(rec.cassette.interactions)
    assert replayed["video"] == live["video"] and replayed["remix"] == live["remix"]
    assert replayed["video"]["status"] == "completed" and replayed["remix"]["status"] == "completed"
    assert replayed["length"] == live["length"]
    assert (replayed["sha256"] == live["sha256"]) is store_binary  # exact bytes only when they were kept
    replayed_paths = [e["path"] for e in journal["requests"]]  # replayed requests are journaled
    assert len(replayed_paths) == len(rec.cassette.interactions)
    assert all(e["status"] == 200 and e["provider"] == "openai" for e in journal["requests"])


def test_fal_client_replays_to_the_same_result(tmp_path):
    def flow(queue: str, run: str, transport=None) -> dict:
        restore = point_fal_client_at(queue, run)
        try:
            client = fal_client.SyncClient(key=KEY, default_timeout=20)
            if transport is not None:  # record the SDK's own traffic: only its HTTP client is swapped
                client.__dict__["_client"] = httpx.Client(transport=transport, timeout=20, follow_redirects=True,
                                                          headers={"Authorization": f"Key {KEY}"})
            download = httpx.Client(transport=transport, timeout=20)
            out = client.subscribe("fal-ai/sora-2/text-to-video", {"prompt": "a cat", "delete_video": False},
                                   interval=0.02, client_timeout=20)
            video = download.get(out["video"]["url"]).content
            remix = client.subscribe("fal-ai/sora-2/video-to-video/remix",
                                     {"prompt": "purple", "video_id": out["video_id"]}, interval=0.02,
                                     client_timeout=20)
            return {"out": out, "remix": remix, "video": hashlib.sha256(video).hexdigest()}
        finally:
            restore()

    path = tmp_path / "fal.cassette.json"
    with EmbeddedMock(providers=["fal"], speed=50) as live_mock:
        queue, run = live_mock.base_url("fal", "queue"), live_mock.base_url("fal", "run")
        rec = Recorder(provider="fal", hosts={"queue": queue, "run": run}, secrets=[KEY], store_binary=True)
        live = flow(queue, run, rec.transport())
        rec.cassette.save(path)
        live_origin = live_mock.url
    statuses = [i.response["body"]["status"] for i in rec.cassette.interactions if i.url.split("?")[0].endswith("/status")]
    assert statuses[0] != "COMPLETED" and "COMPLETED" in statuses
    with EmbeddedMock(providers=["fal"], speed=50, seed=7, replay=str(path)) as replay_mock:
        replayed = bounded(flow, replay_mock.base_url("fal", "queue"), replay_mock.base_url("fal", "run"))
        summary = replay_mock.state.replay.summary()
        replay_origin = replay_mock.url
    assert summary["served"] == summary["interactions"]
    # file URLs in the recorded output pointed at the recording mock; the replay points them at itself
    assert replayed["out"]["video"]["url"].startswith(replay_origin)
    normalise = json.loads(json.dumps(live).replace(live_origin, replay_origin))
    assert replayed == normalise


def cassette(tmp_path, interactions, hosts=None, provider="fal"):
    path = tmp_path / "hand.cassette.json"
    items = []
    for i, (method, url, status, body, headers) in enumerate(interactions):
        items.append({"seq": i, "request": {"method": method, "url": url, "headers": headers,
                                            "body_encoding": "empty", "body": None},
                      "response": {"status": status, "headers": {"content-type": "application/json"},
                                   "body_encoding": "json", "body": body}})
    path.write_text(json.dumps({"cassette_version": 1, "provider": provider,
                                "hosts": hosts or {"queue": "https://queue.fal.run", "run": "https://fal.run"},
                                "interactions": items}))
    return path


def test_polls_advance_in_order_then_repeat_the_last(tmp_path):
    status = "https://queue.fal.run/fal-ai/sora-2/requests/r1/status"
    auth = {"authorization": "[REDACTED]"}
    path = cassette(tmp_path, [
        ("POST", "https://queue.fal.run/fal-ai/sora-2/text-to-video", 200,
         {"request_id": "r1", "status_url": status, "response_url": "https://queue.fal.run/fal-ai/sora-2/requests/r1",
          "cancel_url": status[:-6] + "cancel"}, auth),
        ("GET", status, 200, {"status": "IN_QUEUE", "queue_position": 0}, auth),
        ("GET", status, 200, {"status": "IN_PROGRESS", "logs": None}, auth),
        ("GET", status, 200, {"status": "COMPLETED", "logs": None}, auth),
        ("GET", "https://queue.fal.run/fal-ai/sora-2/requests/r1", 200,
         {"video": {"url": "https://v3b.fal.media/files/b/x.mp4", "content_type": "video/mp4"}, "video_id": "v1"}, auth),
        ("GET", "https://v3b.fal.media/files/b/x.mp4", 200, {"note": "cdn"}, {}),
        ("GET", "https://queue.fal.run/fal-ai/sora-2/requests/missing/status", 404, {"detail": "not found"}, auth),
        ("GET", "https://queue.fal.run/fal-ai/sora-2/requests/missing/status", 401, {"detail": "no key"}, {}),
    ])
    with EmbeddedMock(providers=["fal"], speed=50, replay=str(path)) as mock:
        queue = mock.base_url("fal", "queue")
        h = {"Authorization": "Key anything-goes"}
        with httpx.Client(headers=h) as c:
            sub = c.post(f"{queue}/fal-ai/sora-2/text-to-video", json={"prompt": "x"}).json()
            assert sub["status_url"] == f"{queue}/fal-ai/sora-2/requests/r1/status"  # rewritten to the replay
            seen = [c.get(sub["status_url"], params={"logs": "1"}).json()["status"] for _ in range(5)]
            assert seen == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "COMPLETED", "COMPLETED"]
            out = c.get(sub["response_url"]).json()
            assert out["video"]["url"] == f"{mock.url}/__replay/v3b.fal.media/files/b/x.mp4"
            cdn = c.get(out["video"]["url"])
            assert cdn.json() == {"note": "cdn"} and cdn.headers["X-Mock-Replay"] == "5"
            # same path, told apart by credentials: with a key the 404, without one the 401, repeatedly
            missing = f"{queue}/fal-ai/sora-2/requests/missing/status"
            assert [c.get(missing).status_code for _ in range(2)] == [404, 404]
        with httpx.Client() as anon:
            assert [anon.get(missing).status_code for _ in range(2)] == [401, 401]
            # not in the cassette: the live engine answers (no replay header)
            live = anon.get(f"{queue}/fal-ai/sora-2/requests/other/status", headers=h)
            assert live.status_code == 404 and "X-Mock-Replay" not in live.headers


def test_bad_cassette_is_a_one_line_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"cassette_version": 1, "interactions": "nope"}')
    assert mockserver_main(["serve", "--port", "0", "--replay", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mockserver: error: --replay") and "\n" not in err
    other = cassette(tmp_path, [("GET", "https://api.openai.com/v1/videos", 200, {}, {})], provider="openai")
    assert mockserver_main(["serve", "--port", "0", "--provider", "fal", "--replay", str(other)]) == 2
    assert "recorded for 'openai'" in capsys.readouterr().err
