"""Fault detection: the conformance suite run against deliberately broken servers reports each fault under
the right named check.

Each broken server is the mock behind a small corrupting proxy (aiohttp, 127.0.0.1) that rewrites one
aspect of the answers: a required field dropped, progress going backwards, a status that regresses, an
unknown status value, a wrong download content type, auth not enforced, a 500 on bad input. The suite runs
a whole category (not a hand-picked check), so the assertion is that the general checks catch the fault —
and a clean proxy in front of the same mock does not trip those checks.
"""

from __future__ import annotations

import json

import pytest
from aiohttp import ClientSession, web
from threaded_server import serve

from conformance import checks as registry
from conformance.context import RunConfig
from conformance.runner import execute
from conformance.target import open_target
from mockserver.embedded import EmbeddedMock

SPEED = 10.0


class CorruptingProxy:
    """An aiohttp reverse proxy on 127.0.0.1 in front of ``upstream`` that passes every answer through
    ``corrupt(request, status, headers, body) -> (status, headers, body)`` (body as bytes). Absolute URLs of
    the upstream inside answers are rewritten to the proxy, so downloads go through it too."""

    def __init__(self, upstream: str, corrupt=None, key: str | None = None, hide_mock: bool = False):
        self.upstream = upstream.rstrip("/")
        self.corrupt = corrupt
        self.key = key
        self.hide_mock = hide_mock  # the admin API (/__mock/*, not asset files) is a 404: not our mock
        self.url = ""
        self.state: dict = {}
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request forwarded

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.hide_mock and request.path.startswith("/__mock") and not request.path.startswith("/__mock/files/"):
            return web.json_response({"detail": "Not Found"}, status=404)
        self.seen.append((request.method, request.path))
        before = getattr(self.corrupt, "before", None)
        if before is not None:  # e.g. a stall: the request never gets an answer
            waiting = before(request)
            if waiting is not None:
                await waiting
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        if self.key and self.corrupt is _no_auth:
            headers["Authorization"] = f"Bearer {self.key}"  # auth "not enforced": any request gets through
        body = await request.read()
        async with ClientSession(auto_decompress=False) as s, s.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body or None,
                allow_redirects=False) as r:
            data = await r.read()
            status = r.status
            out_headers = {k: v for k, v in r.headers.items()
                           if k.lower() not in ("content-length", "transfer-encoding", "content-encoding",
                                                "connection", "date", "server")}
        data = data.replace(self.upstream.encode(), self.url.encode())
        if self.corrupt is not None and self.corrupt is not _no_auth:
            status, out_headers, data = self.corrupt(self, request, status, out_headers, data)
        return web.Response(status=status, headers=out_headers, body=data)

    def __enter__(self) -> CorruptingProxy:
        self._server = serve(self._handle, method="*")
        self.url = self._server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._server.__exit__(*exc)


def _json(data: bytes):
    try:
        return json.loads(data)
    except ValueError:
        return None


def _video_objects(doc):
    """Yield every OpenAI-style video object in a decoded body (single object or list page)."""
    if isinstance(doc, dict) and doc.get("object") == "video":
        yield doc
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        for d in doc["data"]:
            if isinstance(d, dict) and d.get("object") == "video":
                yield d


def _rewrite(fn):
    """Corruption helper: apply ``fn(proxy, request, obj)`` to each video object of a JSON answer."""

    def corrupt(proxy, request, status, headers, data):
        doc = _json(data)
        if doc is None or request.path.startswith("/__mock"):
            return status, headers, data
        for obj in _video_objects(doc):
            fn(proxy, request, obj)
        return status, headers, json.dumps(doc).encode()

    return corrupt


def _drop_progress(proxy, request, obj):
    obj.pop("progress", None)


def _progress_backwards(proxy, request, obj):
    if obj.get("status") == "in_progress":
        obj["progress"] = max(0, 98 - obj["progress"])  # falls while the real progress rises


def _status_regresses(proxy, request, obj):
    if obj.get("status") == "completed" and request.method == "GET":
        seen = proxy.state.setdefault(obj["id"], 0)
        proxy.state[obj["id"]] = seen + 1
        if seen % 2 == 1:
            obj["status"] = "in_progress"
            obj["progress"] = 50


def _unknown_status(proxy, request, obj):
    if obj.get("status") == "in_progress":
        obj["status"] = "rendering"


def _wrong_download_type(proxy, request, status, headers, data):
    if request.path.endswith("/content") and status == 200:
        headers = {**headers, "Content-Type": "application/octet-stream"}
    return status, headers, data


def _no_auth(proxy, request, status, headers, data):  # marker: the proxy adds a valid key to every request
    return status, headers, data


def _server_error_on_bad_input(proxy, request, status, headers, data):
    if status in (400, 422) and request.method == "POST":
        return 500, {**headers, "Content-Type": "application/json"}, json.dumps(
            {"error": {"message": "internal error", "type": "server_error", "param": None, "code": None}}).encode()
    return status, headers, data


def run_against(provider: str, corrupt, categories: list[str], *, seed: int = 7) -> object:
    """Start the mock and a corrupting proxy in front of it; run the suite's ``categories`` for ``provider``."""
    key = "sk-broken-server-test"
    with EmbeddedMock(providers=[provider], speed=SPEED, api_key=key, seed=seed) as mock, \
            CorruptingProxy(mock.url, corrupt, key=key) as proxy:
        import os

        os.environ["CONFORMANCE_TEST_KEY"] = key
        try:
            target = open_target([provider], base_url=proxy.url, api_key_env={"*": "CONFORMANCE_TEST_KEY"})
        finally:
            os.environ.pop("CONFORMANCE_TEST_KEY", None)
        assert target.kind == "mock", "the proxy forwards /__mock/health, so the target counts as the mock"
        checks = registry.select(categories)
        config = RunConfig(providers=[provider], checks=checks, seed=seed, examples=12, negative_examples=8,
                           unknown_examples=4, lifecycle_runs=2, lifecycle_steps=8, job_timeout=20)
        try:
            return execute(config, target)
        finally:
            target.close()


CASES = [
    # (name, provider, corruption, category to run, check that must fail)
    ("required field dropped", "openai", _rewrite(_drop_progress), "contract", "response_schema_conformance"),
    ("progress going backwards", "gptge", _rewrite(_progress_backwards), "lifecycle", "progress_monotonic"),
    ("status regresses", "gptge", _rewrite(_status_regresses), "lifecycle", "status_monotonic"),
    ("unknown status value", "gptge", _rewrite(_unknown_status), "lifecycle", "status_known"),
    ("wrong download content type", "openai", _wrong_download_type, "lifecycle", "download_content_type"),
    ("auth not enforced", "gptge", _no_auth, "contract", "auth_required"),
    ("500 on bad input", "gptge", _server_error_on_bad_input, "contract", "not_a_server_error"),
]


@pytest.mark.parametrize("name,provider,corrupt,category,check", CASES, ids=[c[0] for c in CASES])
def test_broken_server_is_reported_by_the_right_check(name, provider, corrupt, category, check):
    results = run_against(provider, corrupt, [category])
    outcome = results.outcome(provider, check)
    assert outcome is not None and outcome.failed > 0, (
        f"{name}: {check} did not fail; outcomes: "
        + ", ".join(f"{o.check}={o.status}" for o in results.outcomes()))
    failure = outcome.failures[0]
    assert failure.seed == 7 and failure.message
    assert failure.curl is None or "sk-broken-server-test" not in failure.curl, "the key leaked into a report"


def test_clean_proxy_does_not_trip_the_fault_checks():
    """The same proxy without a corruption: none of the checks the broken servers trip fails."""
    results = run_against("gptge", None, ["lifecycle", "contract"])
    for check in ("progress_monotonic", "status_monotonic", "status_known", "download_content_type",
                  "terminal_is_final", "response_schema_conformance", "auth_required", "not_a_server_error"):
        o = results.outcome("gptge", check)
        assert o.failed == 0, f"{check}: {o.failures[:1]}"
    assert results.outcome("gptge", "progress_monotonic").passed > 0
