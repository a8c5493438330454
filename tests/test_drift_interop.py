"""The drift recorder with the conformance suite's own pieces: its HTTP client hooks (family drivers'
traffic becomes a cassette) and its per-request spend guard on the recorder's transport."""

from __future__ import annotations

import argparse

import pytest

import specs
from conformance.bodies import build
from conformance.drift import cli as drift_cli
from conformance.drift.flows import FlowOptions
from conformance.drift.observed import check_cassette
from conformance.drift.recorder import GuardRefused, Recorder
from conformance.drivers import VideoObjectDriver
from conformance.http import Client, Credentials
from mockserver.embedded import EmbeddedMock

KEY = "sk-interop-0123456789abc"


def test_family_driver_traffic_is_recorded_through_client_hooks():
    contract = specs.load("openai")
    with EmbeddedMock(providers=["openai"], speed=50) as mock:
        base = mock.base_url("openai")
        rec = Recorder(provider="openai", hosts={"api": base}, secrets=[KEY])
        client = Client(timeout=10, trust_env=False)
        client.hooks.append(rec.record_exchange)
        driver = VideoObjectDriver(contract, "api", base, client, Credentials("Authorization", "Bearer", KEY,
                                                                              "OPENAI_API_KEY"), mock=True)
        with rec.step("create", expect="success"):
            job = driver.submit(build(contract, contract.operation("createVideo"), "generate"))
        with rec.step("poll", expect="success"):
            for _ in range(200):
                if driver.poll(job, honour=False).terminal:
                    break
        client.close()
    inters = rec.cassette.interactions
    assert inters[0].label == "create" and inters[0].status == 200 and inters[0].host == "api"
    assert {i.label for i in inters[1:]} == {"poll"} and inters[-1].response["body"]["status"] == "completed"
    assert inters[0].request["headers"]["authorization"] == "[REDACTED]"
    assert KEY not in str(rec.cassette.to_json())
    report = check_cassette(rec.cassette)
    assert report.operations == ["createVideo", "retrieveVideo"] and report.findings == []


def test_conformance_spend_guard_refuses_on_the_recorder_transport():
    """A target that is not our mock (here: the mock treated as remote) gets no billable request without
    --allow-spend: the request is not sent and not recorded."""
    contract = specs.load("openai")
    with EmbeddedMock(providers=["openai"], speed=50) as mock:
        base = mock.base_url("openai")
        options = FlowOptions(allow_spend=False)
        guard = drift_cli._spend_guard(contract, {"api": base}, set(), options)
        if guard is None:
            pytest.skip("conformance.spend is not importable")
        rec = Recorder(provider="openai", hosts={"api": base}, guard=guard)
        with rec.client() as c:
            with pytest.raises(GuardRefused, match="allow-spend"):
                c.post(f"{base}/videos", json={"prompt": "x"}, headers={"Authorization": "Bearer k-1234567"})
            free = c.get(f"{base}/videos", params={"limit": 1}, headers={"Authorization": "Bearer k-1234567"})
        journal = mock.admin("GET", "journal")["requests"]
    assert free.status_code == 200
    assert [i.method for i in rec.cassette.interactions] == ["GET"]
    assert [e["method"] for e in journal] == ["GET"]  # the refused POST never reached the server


def test_cli_wires_the_spend_guard_when_recording_a_paid_target(monkeypatch):
    seen = {}
    original = drift_cli._spend_guard

    def spy(*args):
        seen["guard"] = original(*args)
        return seen["guard"]

    monkeypatch.setattr(drift_cli, "_spend_guard", spy)
    with EmbeddedMock(providers=["openai"], speed=50) as mock:
        args = argparse.Namespace(
            base_url=mock.base_url("openai"), host_url=[], api_key_env=None, allow_spend=False, max_spend_usd=0.0,
            free_only=False, store_binary=False, ca_file=None, insecure=False, poll_interval=0.02, poll_timeout=20,
            request_timeout=10, seconds=4, source_id=None, no_remix=False, no_probes=False, no_cleanup=False)
        cassette, errors = drift_cli.record(specs.load("openai"), args, None)
    assert errors == [] and cassette.interactions
    assert seen["guard"] is not None and seen["guard"].free  # the mock is recognised as free
