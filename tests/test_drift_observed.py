"""Observed drift: record a flow against the mock, change the mock's behaviour, and check the report.

The changed provider is the real mock app with a test-only aiohttp middleware that rewrites its answers
(a renamed field, a new status value, a type change, a removed field, a new error status, a broken header),
installed by wrapping ``build_app`` for the EmbeddedMock under test.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from aiohttp import web

import conformance.http
import mockserver.embedded as embedded
import specs
from conformance.drift.findings import Report
from conformance.drift.flows import FlowOptions, FlowRunner, resolve_hosts, run_flow
from conformance.drift.observed import check_cassette
from conformance.drift.recorder import Recorder
from mockserver.embedded import EmbeddedMock

KEY = "sk-drift-test-0123456789"


def record(provider: str, mock: EmbeddedMock, **opts) -> tuple[Recorder, list[str]]:
    contract = specs.load(provider)
    hosts = resolve_hosts(contract, mock.base_url(provider))
    rec = Recorder(provider=provider, hosts=hosts, secrets=[KEY])
    result = run_flow(contract, hosts, KEY, rec, FlowOptions(poll_interval=0.02, poll_timeout=20, **opts))
    return rec, result.errors


def rewriting(monkeypatch, rewrite):
    """Make the next EmbeddedMock run its app behind a middleware that passes every JSON answer through
    ``rewrite(request, status, body, headers) -> (status, body)`` (headers may be edited in place)."""
    original = embedded.build_app

    @web.middleware
    async def middleware(request: web.Request, handler):
        resp = await handler(request)
        if request.path.startswith("/__mock") or not isinstance(resp, web.Response) or \
                "json" not in (resp.content_type or "") or resp.body is None:
            return resp
        headers = {k: v for k, v in resp.headers.items() if k.lower() not in ("content-length", "content-type")}
        status, body = rewrite(request, resp.status, json.loads(resp.body), headers)
        return web.json_response(body, status=status, headers=headers)

    def build(config):
        app = original(config)
        app.middlewares.append(middleware)
        return app

    monkeypatch.setattr(embedded, "build_app", build)


def kinds(report: Report) -> set[tuple[str, str, str]]:
    return {(f.kind, f.severity, f.pointer) for f in report.findings}


FLOW_STEPS = {  # the labels each provider's flow records, in order (a polling run counted once)
    "openai": ["create", "poll", "content", "remix", "poll-remix", "list", "probe-unknown-id", "probe-no-auth",
               "delete"],
    "gptge": ["create", "poll", "content", "download", "remix", "poll-remix", "probe-unknown-id", "probe-no-auth"],
    "fal": ["submit", "poll", "result", "download", "submit-remix", "poll-remix", "result-remix",
            "cancel-completed", "probe-unknown-id", "probe-no-auth", "run", "download", "run-remix",
            "download-remix", "probe-no-auth"],
    "sunra": ["submit", "poll", "result", "download", "submit-remix", "poll-remix", "result-remix",
              "cancel-completed", "probe-unknown-id", "probe-no-auth"],
    "aigateway": ["submit", "poll", "download", "submit-remix", "poll-remix", "cancel-completed",
                  "probe-unknown-id", "probe-no-auth"],
    "onerouter": ["run-remix", "download-remix", "probe-no-auth"],
}


def runs(labels: list) -> list:
    return [label for i, label in enumerate(labels) if i == 0 or labels[i - 1] != label]


@pytest.mark.parametrize("provider", sorted(FLOW_STEPS))
def test_unchanged_mock_has_no_drift(provider):
    with EmbeddedMock(providers=[provider], speed=50) as mock:
        rec, errors = record(provider, mock)
    assert errors == []
    labels = [i.label for i in rec.cassette.interactions]
    assert runs(labels) == FLOW_STEPS[provider]
    assert all(i.status == 200 for i in rec.cassette.interactions if i.label == "delete")
    probes = [i.status for i in rec.cassette.interactions if i.label in ("probe-unknown-id", "probe-no-auth")]
    assert probes and all(s >= 400 for s in probes)
    assert all(i.request["headers"].get("authorization") in (None, "[REDACTED]")
               for i in rec.cassette.interactions)
    assert KEY not in json.dumps(rec.cassette.to_json())
    report = check_cassette(rec.cassette)
    assert report.operations, "no operation was matched"
    assert report.findings == [], [f.to_json() for f in report.findings]


def test_fal_generation_keeps_its_output_remixable():
    """KEEP_REMIXABLE: fal deletes an output by default; the flow's generations ask to keep it."""
    with EmbeddedMock(providers=["fal"], speed=50) as mock:
        rec, errors = record("fal", mock)
    assert errors == []
    creates = [i for i in rec.cassette.interactions if i.label in ("submit", "run")]
    assert creates and all(i.request["body"]["delete_video"] is False for i in creates)


class RefusePosts:
    """A per-request spend guard (the protocol of conformance.spend.SpendGuard) that refuses every POST."""

    def __init__(self):
        self.seen: list[str] = []

    def before(self, request):
        self.seen.append(request.method)
        if request.method == "POST":
            raise RuntimeError("POST refused by the test guard")

    def after(self, request, response):
        pass

    def release(self, request):
        pass


def test_every_flow_request_passes_the_recorders_spend_guard():
    """The guard given to the Recorder sits in the drivers' HTTP client: a refused create is not sent, not
    recorded, and ends the flow with one line; the free requests after it still go through the guard."""
    contract = specs.load("openai")
    guard = RefusePosts()
    with EmbeddedMock(providers=["openai"], speed=50) as mock:
        hosts = resolve_hosts(contract, mock.base_url("openai"))
        rec = Recorder(provider="openai", hosts=hosts, secrets=[KEY], guard=guard)
        result = run_flow(contract, hosts, KEY, rec, FlowOptions(poll_interval=0.02, poll_timeout=20, remix=False),
                          free_hosts={"api"})
        journal = mock.admin("GET", "journal")["requests"]
    assert result.errors == ["create: refused by the spend guard: POST refused by the test guard"]
    assert guard.seen == ["POST"]
    assert rec.cassette.interactions == [] and journal == []
    assert rec.cassette.meta["flow_errors"] == result.errors


def test_a_body_the_client_cuts_is_recorded_whole(monkeypatch):
    """The suite's client keeps only the start of a big body; the flow gives the recorder the whole download,
    so the summary (length, sha256) covers every byte and --store-binary keeps the exact bytes."""
    monkeypatch.setattr(conformance.http, "BODY_KEEP_BYTES", 64)
    contract = specs.load("openai")
    with EmbeddedMock(providers=["openai"], speed=50) as mock:
        hosts = resolve_hosts(contract, mock.base_url("openai"))
        rec = Recorder(provider="openai", hosts=hosts, secrets=[KEY], store_binary=True)
        runner = FlowRunner(contract, hosts, KEY, rec, FlowOptions(poll_interval=0.02, poll_timeout=20,
                                                                   remix=False, probes=False))
        assert runner.run().errors == []
    content = next(i for i in rec.cassette.interactions if i.label == "content")
    body = content.response["body"]
    assert "truncated" not in body and body["length"] > 64
    blob = rec.cassette.blobs[body["blob"]]
    assert len(blob) == body["length"] and hashlib.sha256(blob).hexdigest() == body["sha256"]
    assert runs([s["label"] for s in runner.result.steps]) == ["create", "poll", "content", "list", "delete"]


def test_changed_openai_mock_is_reported_with_the_right_classes(monkeypatch):
    def rewrite(request, status, body, headers):
        def video(v):
            v["progress_pct"] = v.pop("progress")          # renamed field
            v["created_at"] = str(v["created_at"])          # type change
            del v["expires_at"]                             # removed field
            if v["status"] == "in_progress":
                v["status"] = "processing"                  # new status value (intermediate)
            return v

        if status == 404:
            return 410, body                                # a new error status
        if isinstance(body, dict) and body.get("object") == "video":
            if "openai-poll-after-ms" in headers:
                headers["openai-poll-after-ms"] = "soon"    # a header that breaks its schema
            return status, video(body)
        if isinstance(body, dict) and body.get("object") == "list":
            body["data"] = [video(v) for v in body["data"]]
        return status, body

    rewriting(monkeypatch, rewrite)
    with EmbeddedMock(providers=["openai"], speed=50, timings={"openai": {"in_progress_seconds": 5}}) as mock:
        rec, errors = record("openai", mock)
    assert errors == []
    report = check_cassette(rec.cassette)
    found = kinds(report)
    expected = {
        ("undocumented_field", "non-breaking", "/response/200/body/progress_pct"),
        ("missing_required_field", "breaking", "/response/200/body/progress"),
        ("type_change", "breaking", "/response/200/body/created_at"),
        ("missing_required_field", "breaking", "/response/200/body/expires_at"),
        ("new_enum_value", "breaking", "/response/200/body/status"),
        ("lifecycle_new_state", "breaking", "/lifecycle/status"),
        ("undocumented_status", "non-breaking", "/response/status"),
        ("header_change", "breaking", "/response/200/headers/openai-poll-after-ms"),
        # the list page carries the same videos
        ("undocumented_field", "non-breaking", "/response/200/body/data/*/progress_pct"),
        ("missing_required_field", "breaking", "/response/200/body/data/*/progress"),
        ("type_change", "breaking", "/response/200/body/data/*/created_at"),
        ("missing_required_field", "breaking", "/response/200/body/data/*/expires_at"),
    }
    assert found == expected, sorted(found ^ expected)
    by_kind = {f.kind: f for f in report.findings}
    new_state = by_kind["lifecycle_new_state"]
    assert "'processing'" in new_state.message and "between 'queued' and 'completed'" in new_state.message
    assert new_state.example["sequence"][:2] == ["queued", "processing"]
    status = by_kind["undocumented_status"]
    assert status.operation == "retrieveVideo" and status.example["status"] == 410
    enum = by_kind["new_enum_value"]
    assert enum.operation == "retrieveVideo" and enum.example["value"] == "processing"
    typed = next(f for f in report.findings if f.kind == "type_change" and f.operation == "createVideo")
    assert "expected integer, observed string" in typed.message and isinstance(typed.example["value"], str)
    assert report.fails("breaking") and not Report(kind="drift", title="x").fails("any")


def test_new_intermediate_queue_status_is_a_lifecycle_difference(monkeypatch):
    seen: set[str] = set()

    def rewrite(request, status, body, headers):
        if request.path.endswith("/status") and isinstance(body, dict) and body.get("status") == "IN_PROGRESS":
            rid = request.path.rsplit("/", 2)[-2]
            if rid not in seen:                             # the first in-progress answer becomes PREPARING
                seen.add(rid)
                body["status"] = "PREPARING"
        return status, body

    rewriting(monkeypatch, rewrite)
    with EmbeddedMock(providers=["fal"], speed=50, timings={"fal": {"in_progress_seconds": 5}}) as mock:
        rec, errors = record("fal", mock, remix=False)
    assert errors == []
    report = check_cassette(rec.cassette)
    lifecycle = [f for f in report.findings if f.kind == "lifecycle_new_state"]
    assert len(lifecycle) == 1 and lifecycle[0].severity == "breaking"
    assert lifecycle[0].operation == "getRequestStatus"
    assert "'PREPARING'" in lifecycle[0].message and "between 'IN_QUEUE' and" in lifecycle[0].message
    enum = [f for f in report.findings if f.kind == "new_enum_value"]
    assert [(f.pointer, f.example["value"]) for f in enum] == [("/response/200/body/status", "PREPARING")]
    assert {f.kind for f in report.findings} == {"lifecycle_new_state", "new_enum_value"}


def test_rejected_request_and_wrong_content_type_are_breaking(monkeypatch):
    def rewrite(request, status, body, headers):
        if request.method == "POST" and request.path.endswith("/remix"):
            return 422, {"error": {"message": "video_id now required", "type": "invalid_request_error",
                                   "param": None, "code": None}}
        return status, body

    rewriting(monkeypatch, rewrite)
    with EmbeddedMock(providers=["openai"], speed=50) as mock:
        rec, errors = record("openai", mock)
    assert errors and "remix" in errors[0]  # the flow could not remix and said so
    report = check_cassette(rec.cassette)
    got = {(f.kind, f.severity, f.operation) for f in report.findings}
    assert ("request_rejected", "breaking", "remixVideo") in got
    assert ("undocumented_status", "non-breaking", "remixVideo") in got
