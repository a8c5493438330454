"""Target resolution, request building and the registry (fast unit tests of the conformance package)."""

from __future__ import annotations

import random

import pytest

import specs
from conformance import bodies, checks, registry
from conformance.http import Client, Credentials, to_curl
from conformance.spend import requested_seconds
from conformance.target import TargetError, open_target
from mockserver.embedded import EmbeddedMock
from specs.validate import get_pointer


def test_mock_url_maps_every_host_of_a_multi_host_provider():
    """--base-url at one provider host of a running mock: the health document maps fal's second host too."""
    with EmbeddedMock(providers=["fal", "openai"], speed=10) as mock:
        target = open_target(["fal"], base_url=mock.base_url("fal", "queue"))
        assert target.kind == "mock" and target.free
        assert target.base_url("fal", "queue") == mock.base_url("fal", "queue")
        assert target.base_url("fal", "run") == mock.base_url("fal", "run")
        root = open_target(["fal", "openai"], base_url=mock.url)
        assert root.base_url("openai", "api") == mock.base_url("openai", "api")
        with pytest.raises(TargetError, match="does not serve"):
            open_target(["sunra"], base_url=mock.url)


def test_remote_target_uses_host_urls_and_needs_one_provider(monkeypatch):
    import http.server
    import threading

    monkeypatch.setenv("FAL_KEY", "k")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # 501 to all
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        target = open_target(["fal"], base_url=url + "/queue", host_urls={"run": url + "/run"})
        assert target.kind == "remote" and not target.free
        assert target.base_url("fal", "queue") == url + "/queue"
        assert target.base_url("fal", "run") == url + "/run"
        only_primary = open_target(["fal"], base_url=url)
        assert only_primary.base_url("fal", "run") is None and "--host-url run=URL" in only_primary.notes[0]
        with pytest.raises(TargetError, match="exactly one"):
            open_target(["fal", "sunra"], base_url=url)
        with pytest.raises(TargetError, match="no such host"):
            open_target(["fal"], base_url=url, host_urls={"nope": url})
        monkeypatch.delenv("FAL_KEY")
        with pytest.raises(TargetError, match="FAL_KEY is not set"):
            open_target(["fal"], base_url=url)
    finally:
        srv.shutdown()
    with pytest.raises(TargetError, match="cannot reach"):
        open_target(["fal"], base_url="http://127.0.0.1:1")
    with pytest.raises(TargetError, match="http"):
        open_target(["fal"], base_url="ftp://example")


def test_embedded_target_enforces_its_key():
    target = open_target(["gptge"], speed=10)
    try:
        assert target.kind == "embedded" and target.enforces_key
        client = Client()
        url = target.base_url("gptge", "api") + "/v1/videos/video_x"
        creds = target.credentials["gptge"]
        assert client.request("GET", url, headers={creds.header: creds.value()}).status_code == 404
        assert client.request("GET", url, headers={creds.header: creds.value("wrong")}).status_code == 401
    finally:
        target.close()


@pytest.mark.parametrize("pid", specs.provider_ids())
def test_built_bodies_validate_for_every_creating_operation(pid):
    """bodies.build makes a valid request for every operation that creates a job, in every kind it serves."""
    from conformance import schema as sch

    contract = specs.load(pid)
    built = 0
    for op in contract.operations():
        if op.role not in ("create", "submit", "run", "remix", "edit"):
            continue
        kinds = set((op.kind.get("map") or {}).values()) if isinstance(op.kind, dict) else {op.kind}
        for kind in kinds:
            req = bodies.build(contract, op, kind, source_id="video_src_1", seconds=8, keep_output=True,
                               rng=random.Random(1))
            rs = sch.request_schema(contract, op)
            if rs:
                assert sch.errors(contract.openapi, rs[1], req.body) == [], (op.operation_id, req.body)
            assert op.kind_for(req.body or {}) == kind
            if kind == "remix":
                where = op.source["in"]
                assert (req.path_params.get(op.source.get("name")) if where == "path"
                        else get_pointer(req.body, op.source["pointer"])) == "video_src_1"
            built += 1
    assert built > 0


def test_requested_seconds_follows_mock_params():
    fal = specs.load("fal")
    assert requested_seconds(fal, {"duration": 8}) == 8
    assert requested_seconds(fal, {}) == 4
    assert requested_seconds(specs.load("openai"), {"seconds": "12"}) == 12


def test_curl_redacts_and_quotes():
    creds = Credentials(header="Authorization", scheme="Key", key="s3cr3t", env="FAL_KEY")
    client = Client(secrets={"s3cr3t": "$FAL_KEY"})
    import requests

    req = requests.Request("POST", "http://h/x?a=1", headers=creds.headers(), json={"p": "it's"}).prepare()
    ex = client.exchange_of(req, None, 0.0, 0.0)
    curl = ex.curl()
    assert "s3cr3t" not in curl and '"Authorization: Key $FAL_KEY"' in curl
    assert curl.startswith("curl -sS -X POST 'http://h/x?a=1'")
    assert to_curl("GET", "http://h", {}, b"\x00\xff") .endswith("$'\\x00\\xff'")


def test_registry_selection():
    names = {c.name for c in checks.select(["lifecycle"])}
    assert "progress_monotonic" in names and "response_schema_conformance" not in names
    assert [c.name for c in checks.select(["examples_valid"])] == ["examples_valid"]
    with pytest.raises(registry.UnknownCheckError):
        checks.select(["nope"])
    cats = {c.category for c in checks.all_checks()}
    assert cats == {"contract", "lifecycle", "document"}
    assert all(c.description for c in checks.all_checks())


def test_one_key_shared_by_providers_is_redacted_as_each_providers_variable():
    """The embedded mock serves every provider with one key: each curl names its own provider's variable."""
    import requests

    client = Client()
    client.add_secret("k1", "$OPENAI_API_KEY", scope=["http://h/openai/v1"])
    client.add_secret("k1", "$SUNRA_KEY", scope=["http://h/sunra"])
    a = client.exchange_of(requests.Request("GET", "http://h/openai/v1/videos",
                                            headers={"Authorization": "Bearer k1"}).prepare(), None, 0, 0)
    b = client.exchange_of(requests.Request("GET", "http://h/sunra/v1/queue/requests/x",
                                            headers={"Authorization": "Bearer k1"}).prepare(), None, 0, 0)
    assert a.request_headers["Authorization"] == "Bearer $OPENAI_API_KEY"
    assert b.request_headers["Authorization"] == "Bearer $SUNRA_KEY"
