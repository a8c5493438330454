"""Observed drift: record a flow against the mock, change the mock's behaviour, and check the report.

The changed provider is the real mock app with a test-only aiohttp middleware that rewrites its answers
(a renamed field, a new status value, a type change, a removed field, a new error status, a broken header),
installed by wrapping ``build_app`` for the EmbeddedMock under test.
"""

from __future__ import annotations

import json

import pytest
from aiohttp import web

import mockserver.embedded as embedded
import specs
from conformance.drift.findings import Report
from conformance.drift.flows import FlowOptions, resolve_hosts, run_flow
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


@pytest.mark.parametrize("provider", ["openai", "fal", "aigateway"])
def test_unchanged_mock_has_no_drift(provider):
    with EmbeddedMock(providers=[provider], speed=50) as mock:
        rec, errors = record(provider, mock)
    assert errors == []
    report = check_cassette(rec.cassette)
    assert len(rec.cassette.interactions) > 8
    assert report.operations, "no operation was matched"
    assert report.findings == [], [f.to_json() for f in report.findings]


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
