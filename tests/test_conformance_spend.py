"""The spend guard: against a target that is not our mock, no request to a paid operation is sent unless
--allow-spend is given, and then only within --max-spend-usd.

The target is a recording server on 127.0.0.1 that is *not* the mock (``/__mock/health`` is a 404), so the
suite treats it like a real provider. It records every request it receives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from threaded_server import serve

import specs
from conformance import checks as registry
from conformance.context import RunConfig
from conformance.runner import execute
from conformance.spend import SpendBlocked, SpendGuard
from conformance.target import open_target

ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """A fake provider: records ``(method, path, body)`` and answers like a provider that knows nothing
    (404 in a generic envelope), or 202 with a job for job-creating POSTs when ``accept_jobs`` is set."""

    def __init__(self, accept_jobs: bool = False):
        self.requests: list[tuple[str, str, bytes]] = []
        self.accept_jobs = accept_jobs
        self.lock = threading.Lock()

    async def __call__(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            self.requests.append((request.method, request.path, body))
        if self.accept_jobs and request.method == "POST" and request.path.endswith("/generations"):
            return web.json_response({"id": "job_recorded", "object": "job", "status": "queued"}, status=202)
        return web.json_response({"error": {"type": "not_found", "message": "nothing here"}}, status=404)


def paid_requests(provider: str, recorded, hosts: dict[str, str]) -> list[tuple[str, str]]:
    """Recorded requests that match an operation with x-billable: true (per host base path)."""
    c = specs.load(provider)
    out = []
    for method, path, _ in recorded:
        for op in c.operations():
            if not op.billable or op.method.upper() != method:
                continue
            base = urlsplit(hosts.get(op.host, "")).path.rstrip("/")
            if base and not path.startswith(base + "/"):
                continue
            rest = path[len(base):] if base else path
            if op.path_regex.match(rest):
                out.append((method, path))
    return out


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    for pid in specs.provider_ids():
        monkeypatch.setenv(specs.load(pid).auth["env"], f"real-looking-key-{pid}")


def _run(provider: str, url: str, host_urls: dict[str, str] | None = None, **cfg) -> object:
    target = open_target([provider], base_url=url, host_urls=host_urls)
    assert target.kind == "remote" and not target.free
    config = RunConfig(providers=[provider], checks=registry.select(None), seed=11, examples=6,
                       negative_examples=4, unknown_examples=3, lifecycle_runs=1, lifecycle_steps=4,
                       job_timeout=5, **cfg)
    try:
        return execute(config, target)
    finally:
        target.close()


@pytest.mark.parametrize("provider", specs.provider_ids())
def test_no_paid_request_without_allow_spend(provider):
    rec = Recorder()
    with serve(rec) as url:
        c = specs.load(provider)
        hosts = {c.hosts[0]["id"]: url}
        host_urls = {}
        for h in c.hosts[1:]:  # secondary hosts on the same recorder, under their own path prefix
            hosts[h["id"]] = host_urls[h["id"]] = f"{url}/{h['id']}-host"
        results = _run(provider, url, host_urls)
    assert rec.requests, "the suite sent nothing at all (free checks must still run)"
    assert paid_requests(provider, rec.requests, hosts) == []
    free_ops = [op for op in specs.load(provider).operations() if not op.billable]
    if free_ops:
        assert any(m != "GET" or "__mock" not in p for m, p, _ in rec.requests)
    # the report says what was skipped and why
    skipped = results.outcome(provider, "job_accepted")
    assert skipped.status == "skipped" and "--allow-spend" in skipped.skip_reason
    assert results.spend["blocked"] == {} or all("not-allowed" in k for k in results.spend["blocked"])


def test_source_video_id_is_retrieved_without_spending():
    """Without --allow-spend the user's --source-video-id is still retrieved and downloaded (free checks)."""
    rec = Recorder()
    with serve(rec) as url:
        results = _run("openai", url, source_video_ids={"openai": "video_user_supplied_1"})
    assert paid_requests("openai", rec.requests, {"api": url}) == []
    gets = {p for m, p, _ in rec.requests if m == "GET"}
    assert "/videos/video_user_supplied_1" in gets
    assert "/videos/video_user_supplied_1/content" in gets
    assert results.outcome("openai", "positive_data_acceptance").failed > 0  # the recorder answers 404


@pytest.mark.parametrize("budget,why", [({}, "no budget given"), ({"max_spend_usd": 0.0}, "--max-spend-usd 0"),
                                        ({"max_paid_jobs": 0}, "--max-paid-jobs 0 reached"),
                                        ({"max_video_seconds": 1.0}, "would pass --max-video-seconds 1")])
def test_allow_spend_without_budget_sends_nothing_paid(budget, why):
    """--allow-spend alone (no bound), or a bound of zero, sends no paid request; the skip says which bound."""
    rec = Recorder(accept_jobs=True)
    with serve(rec) as url:
        results = _run("aigateway", url, allow_spend=True, **budget)
    assert paid_requests("aigateway", rec.requests, {"api": url}) == []
    assert why in (results.outcome("aigateway", "job_accepted").skip_reason or "")


def test_budget_bounds_the_paid_requests():
    """With --allow-spend --max-spend-usd 1.5 (aigateway: $0.10/s), accepted paid requests stay within $1.50."""
    rec = Recorder(accept_jobs=True)
    with serve(rec) as url:
        results = _run("aigateway", url, allow_spend=True, max_spend_usd=1.5)
    paid = [b for m, p, b in rec.requests if m == "POST" and p.endswith("/generations")]
    assert paid, "with a budget some paid requests are sent"
    cost = 0.0
    for body in paid:
        data = json.loads(body)
        cost += float(data.get("duration", 4)) * 0.1
    assert cost <= 1.5 + 1e-9, f"estimated cost of the requests sent: ${cost:.2f}"
    assert results.spend["committed_usd"] <= 1.5


def test_guard_refuses_paid_requests_directly():
    """The guard sits in the transport: a paid request built by hand is refused too."""
    import requests

    with serve(Recorder()) as url:
        target = open_target(["openai"], base_url=url)
        guard = SpendGuard(target, {"openai": specs.load("openai")})
        req = requests.Request("POST", f"{url}/videos", json={"prompt": "x"}).prepare()
        with pytest.raises(SpendBlocked) as err:
            guard.before(req)
        assert err.value.reason == "not-allowed"
        guard.before(requests.Request("GET", f"{url}/videos/video_1").prepare())  # free: no error
        with pytest.raises(SpendBlocked):  # a POST that matches no free operation is refused as well
            guard.before(requests.Request("POST", f"{url}/somewhere-else").prepare())


def test_cli_dry_run_prints_the_plan_and_sends_nothing_paid():
    rec = Recorder()
    with serve(rec) as url:
        env = {**os.environ, "AIGATEWAY_API_KEY": "k"}
        proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--provider", "aigateway",
                               "--base-url", url, "--allow-spend", "--max-spend-usd", "2", "--dry-run"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "estimated cost: $" in proc.stdout and "lifecycle" in proc.stdout
    assert [r for r in rec.requests if r[1] != "/__mock/health"] == []


# -- a paid target that is really our mock in disguise: a proxy that hides /__mock and counts paid creates ---


def _disguised(provider: str, *, allow_spend: bool, budget: dict, seed: int = 5):
    """Run the whole suite for ``provider`` against our mock behind a proxy that hides ``/__mock`` (so the
    target is a paid one) and return ``(results, paid creates sent)``."""
    from test_conformance_broken import CorruptingProxy

    from mockserver.embedded import EmbeddedMock

    key = "sk-disguised-mock-key-0123456789"
    c = specs.load(provider)
    with EmbeddedMock(providers=[provider], speed=10.0, api_key=key, seed=seed) as mock, \
            CorruptingProxy(mock.url, None, hide_mock=True) as proxy:
        os.environ[c.auth["env"]] = key
        bases = {h["id"]: mock.base_url(provider, h["id"]).replace(mock.url, proxy.url) for h in c.hosts}
        primary = c.hosts[0]["id"]
        sources = {}
        if not any(op.kind_for({}) == "generate" or isinstance(op.kind, dict) for op in c.operations()):
            sources[provider] = mock.admin("POST", "videos", {"provider": provider, "seconds": 4})["id"]
        target = open_target([provider], base_url=bases[primary], host_urls={h: u for h, u in bases.items()
                                                                          if h != primary})
        assert target.kind == "remote" and not target.free
        config = RunConfig(providers=[provider], checks=registry.select(None), seed=seed, examples=4,
                           negative_examples=2, unknown_examples=2, lifecycle_runs=2, lifecycle_steps=6,
                           job_timeout=20, allow_spend=allow_spend, source_video_ids=sources, **budget)
        try:
            results = execute(config, target)
        finally:
            target.close()
        paid = paid_requests(provider, [(m, p, b"") for m, p in proxy.seen],
                             {h: u for h, u in bases.items()})
    return results, paid


@pytest.mark.parametrize("provider", specs.provider_ids())
def test_max_paid_jobs_bounds_paid_creates_and_the_lifecycle_runs_on_them(provider):
    results, paid = _disguised(provider, allow_spend=True, budget={"max_paid_jobs": 2})
    assert 1 <= len(paid) <= 2, paid
    assert results.spend["paid_requests"] == len(paid) and results.spend["remaining"]["paid_jobs"] == 2 - len(paid)
    for check in ("job_accepted", "job_finishes", "completed_has_assets"):
        o = results.outcome(provider, check)
        assert o.passed > 0 and o.failed == 0, (check, o.skip_reason, o.failures[:1])
    assert results.ok, results.failures[:2]


@pytest.mark.parametrize("provider", ["openai", "fal", "onerouter"])
def test_without_allow_spend_no_paid_create_reaches_the_disguised_mock(provider):
    results, paid = _disguised(provider, allow_spend=False, budget={})
    assert paid == []
    assert "--allow-spend" in (results.outcome(provider, "job_accepted").skip_reason or "")
