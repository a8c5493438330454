"""Webhooks end to end: the mock delivers to a real aiohttp receiver on 127.0.0.1 in every provider style.

- OpenAI project-level events (``openai_webhook_url``), verified with the real ``openai`` SDK
  (``client.webhooks.unwrap``, openai 3.57.0 ``lib/_webhooks.py``);
- aigateway's per-request ``webhook_url``, with ``aig-signature`` recomputed here (hex HMAC-SHA256 of
  ``"{aig-timestamp}.{raw body}"``, reference/protocols.md §4);
- fal ``?fal_webhook=`` and sunra ``?webhook=`` (the queue family);
- retries with backoff, and a receiver that is down.

Every payload is validated against the schema the provider's contract declares for it (OpenAPI
``webhooks:`` or the submit operation's ``callbacks:``), and every attempt is checked at ``GET /__mock/webhooks``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass

import httpx
import openai
import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from threaded_server import serve

import specs
from mockserver.embedded import EmbeddedMock

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


# -- a webhook receiver -------------------------------------------------------------------------------
@dataclass
class Hit:
    """One request the receiver got (``at`` in monotonic seconds)."""

    at: float
    path_qs: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Receiver:
    """A small aiohttp server on 127.0.0.1 (free port) on its own thread, recording every POST.

    Args:
        statuses: HTTP statuses to answer the first requests with, in order; 200 afterwards.
    """

    def __init__(self, statuses: tuple[int, ...] = ()):
        self.statuses = list(statuses)
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.hits.append(Hit(time.monotonic(), request.path_qs, dict(request.headers), body))
            n = len(self.hits)
        status = self.statuses[n - 1] if n <= len(self.statuses) else 200
        return web.Response(status=status, text="ok" if status < 300 else "try again")

    def __enter__(self) -> Receiver:
        self._server = serve(self._handle, method="POST")
        self.url = self._server.__enter__() + "/hook"
        return self

    def __exit__(self, *exc) -> None:
        self._server.__exit__(*exc)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Hit]:
        wait_until(lambda: len(self.hits) >= n, timeout, f"receiver got {len(self.hits)} of {n} deliveries")
        with self._lock:
            return list(self.hits)


def wait_until(condition, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_client(mock, provider: str, auth: str) -> httpx.Client:
    """An httpx client for a provider's primary host on the mock; every response must match its contract."""
    from urllib.parse import urlsplit

    from mockserver.validation import HostValidator

    contract = specs.load(provider)
    base = mock.base_url(provider)
    validator = HostValidator(contract, contract.hosts[0]["id"])
    prefix = urlsplit(base).path.rstrip("/")

    def check(response: httpx.Response) -> None:
        response.read()
        req = response.request
        path = req.url.path.removeprefix(prefix)
        errors = validator.response_errors(req.method, path, dict(req.url.params), dict(req.headers),
                                           response.status_code, response.content,
                                           response.headers.get("content-type", ""), dict(response.headers))
        assert not errors, f"{provider} {req.method} {path} -> {response.status_code} outside the contract: {errors}"

    return httpx.Client(base_url=base, headers={"Authorization": auth}, event_hooks={"response": [check]})


def deliveries(mock) -> list[dict]:
    return mock.admin("GET", "webhooks")["deliveries"]


# -- contract helpers ---------------------------------------------------------------------------------
def schema_errors(contract: specs.Contract, schema: dict, value) -> list[str]:
    """JSON Schema 2020-12 errors of ``value`` against a schema of ``contract`` (local ``$ref`` resolved)."""
    root = {"$id": "urn:contract", "components": contract.openapi.get("components", {}), "allOf": [schema]}
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in Draft202012Validator(root).iter_errors(value)]


def callback_operation(contract: specs.Contract, operation_id: str) -> dict:
    """The ``post`` of the (single) callback declared on a submit operation, ``$ref`` followed."""
    callbacks = contract.operation(operation_id).definition["callbacks"]
    (callback,) = callbacks.values()
    if "$ref" in callback:
        callback = contract.openapi["components"]["callbacks"][callback["$ref"].rsplit("/", 1)[1]]
    (expression,) = callback.values()
    return expression["post"]


def request_schema(operation: dict) -> dict:
    return operation["requestBody"]["content"]["application/json"]["schema"]


# -- OpenAI: project-level webhooks ---------------------------------------------------------------------
def test_openai_video_completed_and_failed_events_verify_with_the_openai_sdk():
    contract = specs.load("openai")
    with Receiver() as rx, EmbeddedMock(providers=["openai"], clock="manual", openai_webhook_url=rx.url) as m:
        api = api_client(m, "openai", "Bearer sk-test")
        ok = api.post("/videos", json={"prompt": "a red fox in snow"}).json()
        bad = api.post("/videos", json={"prompt": "a doomed fox"},
                       headers={"X-Mock-Fault": "generation_failure"}).json()
        m.advance(600)
        hits = rx.wait_for(2)
        assert api.get(f"/videos/{ok['id']}").json()["status"] == "completed"
        assert api.get(f"/videos/{bad['id']}").json()["status"] == "failed"

        sdk = openai.OpenAI(api_key="x", webhook_secret=m.config.openai_webhook_secret)
        by_video = {}
        for hit in hits:
            assert hit.path_qs == "/hook" and hit.headers["Content-Type"] == "application/json"
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
                assert hit.headers[name], name
            event = sdk.webhooks.unwrap(hit.body, hit.headers)  # raises on a bad signature or timestamp
            by_video[event.data.id] = event
            payload = hit.json()
            schema = request_schema(contract.openapi["webhooks"][payload["type"]]["post"])
            assert schema_errors(contract, schema, payload) == []
            tampered = hit.body.replace(b'"type"', b'"typ\\u0065"', 1)
            assert tampered != hit.body
            with pytest.raises(openai.InvalidWebhookSignatureError):
                sdk.webhooks.unwrap(tampered, hit.headers)
            with pytest.raises(openai.InvalidWebhookSignatureError):
                openai.OpenAI(api_key="x", webhook_secret="whsec_" + "QUFB" * 8).webhooks.unwrap(
                    hit.body, hit.headers)
        assert by_video[ok["id"]].type == "video.completed"
        assert by_video[bad["id"]].type == "video.failed"
        assert len({h.headers["webhook-id"] for h in hits}) == 2

        seen = {d["job_id"]: d for d in deliveries(m)}
        assert set(seen) == {ok["id"], bad["id"]}
        assert seen[ok["id"]]["event"] == "video.completed" and seen[bad["id"]]["event"] == "video.failed"
        for d in seen.values():
            assert d["url"] == rx.url and d["provider"] == "openai" and d["delivered"] is True
            assert [(a["attempt"], a["status"]) for a in d["attempts"]] == [(1, 200)]


def test_openai_sends_no_webhooks_without_a_project_url():
    with Receiver() as rx, EmbeddedMock(providers=["openai"], clock="manual") as m:
        api = api_client(m, "openai", "Bearer sk-test")
        vid = api.post("/videos", json={"prompt": "quiet"}).json()["id"]
        m.advance(600)
        assert api.get(f"/videos/{vid}").json()["status"] == "completed"
        time.sleep(0.2)
        assert deliveries(m) == [] and rx.hits == []


# -- aigateway: per-request webhook_url --------------------------------------------------------------------
def test_aigateway_webhook_url_events_are_signed_with_aig_signature():
    contract = specs.load("aigateway")
    callback = callback_operation(contract, "aigatewayCreateVideoGeneration")
    header_schemas = {p["name"]: p["schema"] for p in callback["parameters"]}
    with Receiver() as rx, EmbeddedMock(providers=["aigateway"], clock="manual") as m:
        api = api_client(m, "aigateway", "Bearer sk-aig-test")
        gen = "/v1/videos/generations"
        body = {"model": "openai/sora-2", "prompt": "a lake", "duration": 8, "webhook_url": f"{rx.url}?job=ok"}
        ok = api.post(gen, json=body).json()
        failed = api.post(gen, json={**body, "webhook_url": f"{rx.url}?job=failed"},
                          headers={"X-Mock-Fault": "generation_failure"}).json()
        cancelled = api.post(gen, json={**body, "webhook_url": f"{rx.url}?job=cancelled"}).json()
        assert api.post(f"/v1/jobs/{cancelled['id']}/cancel").json()["status"] == "cancelled"
        silent = api.post(gen, json={"model": "openai/sora-2", "prompt": "no hook"}).json()
        m.advance(60)
        hits = rx.wait_for(2)
        time.sleep(0.2)  # a cancelled job and a job without webhook_url send nothing
        assert len(rx.hits) == 2 and {h.path_qs for h in hits} == {"/hook?job=ok", "/hook?job=failed"}
        done = api.get(f"/v1/jobs/{ok['id']}").json()

        secret = m.config.aigateway_webhook_secret.encode()
        events = {}
        for hit in hits:
            ts, sig = hit.headers["aig-timestamp"], hit.headers["aig-signature"]
            for name, value in (("aig-timestamp", ts), ("aig-signature", sig)):
                assert schema_errors(contract, header_schemas[name], value) == [], name
            assert abs(int(ts) - time.time()) < 300  # inside the documented 300 s tolerance
            expected = hmac.new(secret, ts.encode() + b"." + hit.body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(sig, expected)
            tampered = hit.body.replace(b"openai/sora-2", b"openai/sora-3")
            assert hmac.new(secret, ts.encode() + b"." + tampered, hashlib.sha256).hexdigest() != sig
            payload = hit.json()
            assert schema_errors(contract, request_schema(callback), payload) == []
            events[payload["data"]["job_id"]] = payload

        assert set(events) == {ok["id"], failed["id"]}
        completed, fail = events[ok["id"]], events[failed["id"]]
        assert completed["type"] == "job.completed" and completed["id"].startswith("evt_")
        assert completed["data"]["model"] == "openai/sora-2"
        assert completed["data"]["result_url"] == done["result"]["url"]
        assert completed["data"]["usage"] == {"seconds": 8, "cost_usd": pytest.approx(8 * 0.1)}
        assert fail["type"] == "job.failed" and fail["data"]["result_url"] is None
        assert completed["id"] != fail["id"]
        assert httpx.get(completed["data"]["result_url"]).headers["content-type"] == "video/mp4"

        log = deliveries(m)
        assert {d["job_id"] for d in log} == {ok["id"], failed["id"]}
        assert cancelled["id"] not in {d["job_id"] for d in log} and silent["id"] not in {d["job_id"] for d in log}
        for d in log:
            assert d["provider"] == "aigateway" and d["delivered"] is True and len(d["attempts"]) == 1
            assert d["attempts"][0]["status"] == 200 and d["payload"] == events[d["job_id"]]


# -- fal and sunra: query-parameter webhooks (queue family) ---------------------------------------------
def require_queue_family() -> None:
    """Skip only while mockserver/rendering/queue.py does not exist (it is written concurrently)."""
    try:
        import mockserver.rendering.queue  # noqa: F401
    except ImportError as exc:
        if exc.name != "mockserver.rendering.queue":
            raise
        pytest.skip("mockserver.rendering.queue is not there yet (queue family written by another helper)")


QUEUE_CASES = {
    # provider: (submit operationId, webhook query parameter, auth header, submit path relative to the host)
    "fal": ("submitTextToVideo", "fal_webhook", "Key fal-test-key", "/fal-ai/sora-2/text-to-video"),
    "sunra": ("submitTextToVideo", "webhook", "Bearer sunra-test-key", "/v1/queue/openai/sora-2/text-to-video"),
}


@pytest.mark.parametrize("provider", list(QUEUE_CASES))
def test_queue_webhook_query_parameter_delivers_ok_and_error(provider):
    require_queue_family()
    contract = specs.load(provider)
    op_id, param, auth, path = QUEUE_CASES[provider]
    declared = [contract.openapi["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p
                for p in contract.operation(op_id).definition["parameters"]]
    assert param in {p["name"] for p in declared if p["in"] == "query"}
    schema = request_schema(callback_operation(contract, op_id))
    with Receiver() as rx, EmbeddedMock(providers=[provider], clock="manual") as m:
        api = api_client(m, provider, auth)
        ok = api.post(path, params={param: f"{rx.url}?r=ok"}, json={"prompt": "a lighthouse at dusk"})
        assert ok.status_code == 200, ok.text
        bad = api.post(path, params={param: f"{rx.url}?r=bad"}, json={"prompt": "doomed"},
                       headers={"X-Mock-Fault": "generation_failure"})
        assert bad.status_code == 200, bad.text
        ok, bad = ok.json(), bad.json()
        m.advance(600)
        hits = rx.wait_for(2)
        by_query = {h.path_qs: h for h in hits}
        assert set(by_query) == {"/hook?r=ok", "/hook?r=bad"}
        for hit in hits:
            assert hit.headers["Content-Type"] == "application/json"
            assert schema_errors(contract, schema, hit.json()) == []
        good, err = by_query["/hook?r=ok"].json(), by_query["/hook?r=bad"].json()
        assert good["request_id"] == ok["request_id"] and good["status"] == "OK"
        assert not good.get("error")
        result = api.get(ok["response_url"])
        assert result.status_code == 200 and good["payload"] == result.json()
        assert err["request_id"] == bad["request_id"] and err["status"] == "ERROR"
        assert isinstance(err["error"], str) and err["error"]

        log = {d["job_id"]: d for d in deliveries(m)}
        assert set(log) == {ok["request_id"], bad["request_id"]}
        for d in log.values():
            assert d["provider"] == provider and d["delivered"] is True
            assert [a["status"] for a in d["attempts"]] == [200]


# -- retries --------------------------------------------------------------------------------------------
def _aigateway_job_with_hook(m, url: str) -> str:
    api = api_client(m, "aigateway", "Bearer sk-aig-test")
    r = api.post("/v1/videos/generations", json={"model": "openai/sora-2", "prompt": "p", "webhook_url": url})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_failed_deliveries_are_retried_with_backoff_until_accepted():
    backoff = 0.05
    with Receiver(statuses=(500, 500)) as rx, EmbeddedMock(providers=["aigateway"], clock="manual",
                                                           webhook_backoff=backoff, webhook_max_attempts=4) as m:
        job_id = _aigateway_job_with_hook(m, rx.url)
        m.advance(60)
        hits = rx.wait_for(3)
        (d,) = wait_until(lambda: [x for x in deliveries(m) if x["delivered"]], what="delivered")
        time.sleep(backoff * 8)  # nothing more once accepted
        assert len(rx.hits) == 3
        assert d["job_id"] == job_id and d["event"] == "job.completed"
        assert [(a["attempt"], a["status"]) for a in d["attempts"]] == [(1, 500), (2, 500), (3, 200)]
        assert len({h.body for h in hits}) == 1  # the same event each time
        gaps = [b.at - a.at for a, b in zip(hits, hits[1:], strict=False)]
        assert gaps[0] >= backoff * 0.9 and gaps[1] >= 2 * backoff * 0.9  # exponential: 0.05 s, then 0.1 s
        secret = m.config.aigateway_webhook_secret.encode()
        for hit in hits:  # every retry is signed afresh
            ts = hit.headers["aig-timestamp"].encode()
            assert hit.headers["aig-signature"] == hmac.new(secret, ts + b"." + hit.body, hashlib.sha256).hexdigest()


def test_receiver_down_is_retried_up_to_max_attempts_without_crashing():
    down = f"http://127.0.0.1:{free_port()}/hook"
    with Receiver() as rx, EmbeddedMock(providers=["aigateway"], clock="manual", webhook_backoff=0.02,
                                        webhook_max_attempts=3) as m:
        lost = _aigateway_job_with_hook(m, down)
        m.advance(60)
        (d,) = wait_until(lambda: [x for x in deliveries(m) if len(x["attempts"]) >= 3], what="3 attempts")
        time.sleep(0.3)  # no fourth attempt
        (d,) = deliveries(m)
        assert d["job_id"] == lost and d["url"] == down and d["delivered"] is False
        assert [a["attempt"] for a in d["attempts"]] == [1, 2, 3]
        assert all("status" not in a and a["error"] for a in d["attempts"])
        # the mock keeps serving, and other receivers still get their events
        assert m.admin("GET", "health")["status"] == "ok"
        fine = _aigateway_job_with_hook(m, rx.url)
        m.advance(60)
        (hit,) = rx.wait_for(1)
        assert hit.json()["data"]["job_id"] == fine
        assert len(deliveries(m)[0]["attempts"]) == 3


def test_a_failing_event_builder_does_not_block_other_deliveries(monkeypatch):
    """A family bug while building one job's event must not stall the dispatcher for every other job."""
    from mockserver.rendering.job import JobFamily

    broken: set[str] = set()
    original = JobFamily.webhook_event

    def flaky(self, job, st):
        if job.id in broken:
            raise RuntimeError("family bug")
        return original(self, job, st)

    monkeypatch.setattr(JobFamily, "webhook_event", flaky)
    with Receiver() as rx, EmbeddedMock(providers=["aigateway"], clock="manual") as m:
        broken.add(_aigateway_job_with_hook(m, rx.url))
        fine = _aigateway_job_with_hook(m, rx.url)
        m.advance(60)
        (hit,) = rx.wait_for(1)
        assert hit.json()["data"]["job_id"] == fine
        assert [d["job_id"] for d in deliveries(m)] == [fine]


def test_a_receiver_that_hangs_delays_no_other_delivery():
    """Each delivery attempt runs on its own: a receiver that never answers (the attempt waits up to its 15 s
    timeout) does not hold back the delivery of another job to a receiver that answers."""
    import asyncio

    from threaded_server import serve

    async def hang(request):
        await asyncio.sleep(60)

    with serve(hang, method="POST") as slow_url, Receiver() as rx, \
            EmbeddedMock(providers=["aigateway"], clock="manual") as m:
        _aigateway_job_with_hook(m, slow_url + "/hook")
        m.advance(60)
        time.sleep(0.2)  # the slow attempt is under way
        fine = _aigateway_job_with_hook(m, rx.url)
        t0 = time.monotonic()
        m.advance(60)
        (hit,) = rx.wait_for(1, timeout=5)
        assert hit.json()["data"]["job_id"] == fine
        assert time.monotonic() - t0 < 3, "the second delivery waited for the hanging one"
