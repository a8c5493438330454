"""Trusted verdicts (issue 8): the suite's own errors are not failures, skips do not depend on the seed,
a run stopped by a signal writes its reports, and deliberately broken servers fail the right named check
within --job-timeout plus a small margin, on every protocol family.

Broken servers are our mock behind a corrupting proxy (tests/test_conformance_broken.py's CorruptingProxy)
on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_conformance_broken import CorruptingProxy, _json

import specs
from conformance import checks as registry
from conformance.cli import main
from conformance.context import RunConfig
from conformance.runner import execute
from conformance.target import open_target
from mockserver.embedded import EmbeddedMock

ROOT = Path(__file__).resolve().parents[1]
JOB_TIMEOUT = 15.0
MARGIN = 15.0  # seconds a run may take beyond --job-timeout (the bound)


def _run(provider: str, corrupt, categories: list[str], *, seed: int = 3, **cfg):
    key = "sk-verdict-test-key-0123456789"
    with EmbeddedMock(providers=[provider], speed=10.0, api_key=key, seed=seed) as mock, \
            CorruptingProxy(mock.url, corrupt, key=key) as proxy:
        os.environ["CONFORMANCE_TEST_KEY"] = key
        try:
            target = open_target([provider], base_url=proxy.url, api_key_env={"*": "CONFORMANCE_TEST_KEY"})
        finally:
            os.environ.pop("CONFORMANCE_TEST_KEY", None)
        config = RunConfig(providers=[provider], checks=registry.select(categories), seed=seed, examples=6,
                           negative_examples=3, unknown_examples=2, lifecycle_runs=2, lifecycle_steps=6,
                           job_timeout=JOB_TIMEOUT, **cfg)
        t0 = time.monotonic()
        try:
            results = execute(config, target)
        finally:
            target.close()
        return results, time.monotonic() - t0


def _is_job_read(request) -> bool:
    return request.method == "GET" and not request.path.startswith("/__mock")


def regress_after_terminal(provider: str):
    """After a job's status was served completed once, later reads of the same URL go back to in progress."""
    c = specs.load(provider)
    done, running = c.status_value("completed"), c.status_value("in_progress")

    def corrupt(proxy, request, status, headers, data):
        doc = _json(data)
        if not _is_job_read(request) or not isinstance(doc, dict) or doc.get("status") != done:
            return status, headers, data
        seen = proxy.state.get(request.path, 0)
        proxy.state[request.path] = seen + 1
        if seen >= 1:
            doc["status"] = running
        return status, headers, json.dumps(doc).encode()

    return corrupt


def drop_status(proxy, request, status, headers, data):
    doc = _json(data)
    if _is_job_read(request) and isinstance(doc, dict) and "status" in doc:
        doc.pop("status")
        return status, headers, json.dumps(doc).encode()
    return status, headers, data


def wrong_file_size(proxy, request, status, headers, data):
    doc = _json(data)
    if not _is_job_read(request) or doc is None:
        return status, headers, data

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("file_size"), int):
                node["file_size"] += 1
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    return status, headers, json.dumps(doc).encode()


FAMILIES = [("openai", "video_object"), ("fal", "queue"), ("aigateway", "job")]


@pytest.mark.parametrize("provider,family", FAMILIES + [("sunra", "queue"), ("gptge", "video_object")])
def test_status_going_back_after_a_terminal_state_fails_terminal_is_final(provider, family):
    results, wall = _run(provider, regress_after_terminal(provider), ["lifecycle"])
    outcome = results.outcome(provider, "terminal_is_final")
    assert outcome.failed > 0, [(o.check, o.status) for o in results.outcomes()]
    assert "changed to" in outcome.failures[0].message
    assert wall < JOB_TIMEOUT + MARGIN, f"{family}: the run took {wall:.1f} s"


@pytest.mark.parametrize("provider,family", FAMILIES)
def test_a_status_field_that_disappears_fails_status_known_in_time(provider, family):
    results, wall = _run(provider, drop_status, ["lifecycle"])
    outcome = results.outcome(provider, "status_known")
    assert outcome.failed > 0 and "no status field" in outcome.failures[0].message
    assert wall < JOB_TIMEOUT + MARGIN, f"{family}: the run took {wall:.1f} s"


@pytest.mark.parametrize("provider,family", FAMILIES)
def test_a_target_that_stalls_fails_job_finishes_within_the_job_timeout(provider, family):
    """Every read of a job hangs (the server never answers): the suite gives up at --job-timeout."""
    async def hang(request):
        await asyncio.sleep(600)

    def corrupt(proxy, request, status, headers, data):  # never reached for the hung reads
        return status, headers, data

    corrupt.before = lambda request: hang(request) if _is_job_read(request) else None
    results, wall = _run(provider, corrupt, ["lifecycle"])
    outcome = results.outcome(provider, "job_finishes")
    assert outcome.failed > 0, [(o.check, o.status, o.skip_reason) for o in results.outcomes()]
    assert wall < JOB_TIMEOUT + MARGIN, f"{family}: the run took {wall:.1f} s"


@pytest.mark.parametrize("provider", ["fal", "sunra"])
def test_a_file_size_that_does_not_match_the_bytes_fails_asset_matches_metadata(provider):
    results, wall = _run(provider, wrong_file_size, ["lifecycle"])
    outcome = results.outcome(provider, "asset_matches_metadata")
    assert outcome.failed > 0 and "file_size says" in outcome.failures[0].message
    assert results.outcome(provider, "download_content_type").failed == 0
    assert wall < JOB_TIMEOUT + MARGIN


def test_every_create_answered_with_the_same_id_fails_id_unique():
    def same_id(proxy, request, status, headers, data):
        doc = _json(data)
        if request.method == "POST" and request.path.endswith("/videos") and isinstance(doc, dict) and "id" in doc:
            first = proxy.state.setdefault("first", doc["id"])
            doc["id"] = first
            return status, headers, json.dumps(doc).encode()
        return status, headers, data

    results, _ = _run("openai", same_id, ["lifecycle"])
    outcome = results.outcome("openai", "id_unique")
    assert outcome.failed > 0 and "same id" in outcome.failures[0].message


def test_the_clean_mock_passes_the_new_checks():
    results, _ = _run("fal", None, ["lifecycle"])
    for name in ("terminal_is_final", "status_known", "job_finishes", "asset_matches_metadata", "id_unique"):
        o = results.outcome("fal", name)
        assert o.failed == 0 and o.passed > 0, (name, o.failures[:1], o.skip_reason)


def test_two_runs_with_different_seeds_skip_the_same_checks():
    """On our mock the suite drives the states it needs (held jobs, admin advance): which checks run and
    which are skipped does not depend on the seed or on timing."""
    skipped = []
    for seed in (101, 202):
        target = open_target(specs.provider_ids(), speed=10.0, seed=seed)
        config = RunConfig(providers=specs.provider_ids(), checks=registry.select(None), seed=seed, examples=4,
                           negative_examples=2, unknown_examples=2, lifecycle_runs=1, lifecycle_steps=4)
        try:
            results = execute(config, target)
        finally:
            target.close()
        assert results.ok and not results.suite_errors, (results.failures[:2], results.internal_errors)
        skipped.append({(o.provider, o.check): o.skip_reason for o in results.outcomes() if o.status == "skipped"})
    assert skipped[0] == skipped[1]
    assert not any("not reached" in r for r in skipped[0].values()), skipped[0]


def test_a_check_that_raises_is_a_suite_error_with_exit_code_3(monkeypatch, tmp_path, capsys):
    """A crash inside a check is reported as a suite error (exit 3), never as a failure of that check."""
    import dataclasses

    def broken(run, ev):
        raise RuntimeError("deliberate crash inside a check")

    crashing = dataclasses.replace(registry.get("progress_valid"), fn=broken)
    from conformance import registry as reg

    monkeypatch.setitem(reg._REGISTRY, "progress_valid", crashing)
    report = tmp_path / "reports" / "run.json"
    code = main(["run", "--provider", "openai", "--check", "lifecycle", "--lifecycle-runs", "1",
                 "--lifecycle-steps", "3", "--no-progress", "--json", str(report)])
    assert code == 3
    data = json.loads(report.read_text())
    assert any(e["name"] == "check_crashed" and "deliberate crash" in e["message"] for e in data["suite_errors"])
    outcome = next(o for o in data["outcomes"] if o["check"] == "progress_valid")
    assert outcome["failed"] == 0
    assert "suite error" in capsys.readouterr().out


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_within_2_s_and_writes_every_report(tmp_path, sig, code):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "conformance", "run", "--all", "--junit", str(out / "j.xml"),
                             "--json", str(out / "r.json"), "--markdown", str(out / "r.md")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        seen = ""
        while time.monotonic() < deadline and "contract" not in seen:
            seen += proc.stderr.readline()
        assert "contract" in seen, seen
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code
    assert took < 2.0 + 0.5, f"stopped {took:.2f} s after the signal"
    data = json.loads((out / "r.json").read_text())
    assert data["stopped"] == "interrupted" and any(e["name"] == "interrupted" for e in data["suite_errors"])
    assert "<testsuites" in (out / "j.xml").read_text()
    assert "# Conformance report" in (out / "r.md").read_text()


def test_max_time_ends_the_run_with_exit_3_and_reports_what_ran(tmp_path):
    report = tmp_path / "r.json"
    t0 = time.monotonic()
    code = main(["run", "--all", "--max-time", "4", "--no-progress", "--json", str(report)])
    took = time.monotonic() - t0
    assert code in (1, 3) and code == 3, code  # nothing fails on our mock: an incomplete verdict is 3
    assert took < 4 + 10, f"a --max-time 4 run took {took:.1f} s"
    data = json.loads(report.read_text())
    assert data["stopped"] == "max_time" and any(e["name"] == "max_time" for e in data["suite_errors"])
    assert any("stopped early" in (o["skip_reason"] or "") for o in data["outcomes"])


def test_checks_lists_every_check_with_its_expectation_source(capsys):
    assert main(["checks"]) == 0
    out = capsys.readouterr().out
    for needle in ("method_not_allowed", "mock:", "RFC 9110", "--job-timeout"):
        assert needle in out, needle
