"""Bad requests get the provider's error envelope and the right 4xx, never a 500 or a traceback.

Every provider host of the one all-providers mock (manual clock, a required API key) is sent: malformed
JSON, a body that is not an object, an empty body, the wrong content type, each required field missing, a
prompt over the contract's ``maxLength``, unknown ids (odd ones too), a method the path does not declare
(405 with ``Allow``), an unknown path under the mount (404), and sunra-client's double-slash paths
(``/v1/queue//requests/{id}/status``, reference/protocols.md §3), which are served.

Expected statuses come from provider.yaml ``errors.kinds`` (``validation``, ``not_found``,
``method_not_allowed``). Answers of an operation are validated against the contract with openapi-core
(:class:`HostChecked`); answers that belong to no operation (404 unknown path, 405) against the contract's
``components.responses.NotFound`` / ``MethodNotAllowed``.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from mock_contract_support import (
    KEY,
    HostChecked,
    auth_header,
    component_response_errors,
    deref,
    family_problems,
    job_kinds,
    request_body,
)

import specs
from mockserver.embedded import EmbeddedMock

CONTRACTS = specs.load_all()
HOSTS = [(pid, h["id"]) for pid, c in CONTRACTS.items() for h in c.hosts]
ODD_IDS = ["does-not-exist", "vidéo-ünïcode", "x" * 300, "with space", "a%2Fb"]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def served():
    problems = family_problems()
    working = [pid for pid in CONTRACTS if pid not in problems]
    with EmbeddedMock(providers=working, clock="manual", api_key=KEY, seed=9) as m:
        yield m, problems


class Client:
    """httpx on one provider host: operation answers checked against the contract; every answer checked
    for the basics (no 5xx, JSON, no traceback)."""

    def __init__(self, mock: EmbeddedMock, pid: str, host: str):
        self.mock, self.contract, self.host = mock, CONTRACTS[pid], host
        self.base = mock.base_url(pid, host)
        self.hook = HostChecked(self.contract, host, self.base)
        self.http = httpx.Client(base_url=self.base, headers=auth_header(self.contract), timeout=30)

    def send(self, method: str, path: str, *, checked: bool = True, **kwargs) -> httpx.Response:
        r = self.http.request(method, path, **kwargs)
        assert r.status_code < 500, r.text
        assert r.headers.get("content-type", "").startswith("application/json"), r.headers
        assert "Traceback" not in r.text and 'File "' not in r.text, r.text
        if checked:
            self.hook(r)
        return r

    def status(self, kind: str) -> int:
        return self.contract.error_kind(kind).get("status", 400)


@pytest.fixture
def client(served, request):
    mock, problems = served
    pid = request.node.callspec.params["pid"]
    if pid in problems:
        pytest.fail(problems[pid])
    c = Client(mock, pid, request.node.callspec.params["host"])
    yield c
    c.http.close()


def _ops(pid: str, host: str) -> list[specs.Operation]:
    return [op for op in CONTRACTS[pid].operations() if op.host == host]


def _fill(op: specs.Operation, value: str = "does-not-exist") -> str:
    return re.sub(r"\{[^}]+\}", value, op.path)


def _json_body_ops() -> list:
    out = []
    for pid, c in CONTRACTS.items():
        for op in c.operations():
            rb = op.definition.get("requestBody")
            if rb and "application/json" in deref(c.host_document(op.host), rb)["content"]:
                out.append(pytest.param(pid, op.host, op.operation_id, id=f"{pid}-{op.operation_id}"))
    return out


def _valid(c: Client, op: specs.Operation) -> dict:
    kind = "remix" if op.may_remix and "generate" not in job_kinds(op) else (job_kinds(op) or [None])[0]
    return request_body(c.contract, op, kind, "does-not-exist")[1]


def _schema(c: Client, op: specs.Operation) -> dict:
    doc = c.contract.host_document(op.host)
    return deref(doc, deref(doc, op.definition["requestBody"])["content"]["application/json"]["schema"])


# -- bodies -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("pid", "host", "operation"), _json_body_ops())
@pytest.mark.parametrize("raw", [b'{"prompt": "a fox",', b"\xff\xfe{}", b"[]", b'"prompt"', b"null", b"42", b""],
                         ids=["truncated", "not-utf8", "array", "string", "null", "number", "empty"])
def test_malformed_or_non_object_json_is_a_validation_error(client, pid, host, operation, raw):
    op = client.contract.operation(operation)
    r = client.send(op.method, _fill(op), content=raw, headers={"Content-Type": "application/json"})
    body_required = deref(client.contract.host_document(host), op.definition["requestBody"]).get("required")
    if raw or body_required:
        assert r.status_code == client.status("validation"), r.text
    else:  # the contract makes the body optional (onerouter, verbatim from its docs): any 4xx it declares
        assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize(("pid", "host", "operation"), _json_body_ops())
@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_a_validation_error(client, pid, host, operation, ctype):
    op = client.contract.operation(operation)
    declared = deref(client.contract.host_document(op.host), op.definition["requestBody"])["content"]
    if ctype in declared:
        pytest.fail(f"{operation} declares {ctype}; choose another wrong type")
    r = client.send(op.method, _fill(op), content=json.dumps(_valid(client, op)).encode(),
                    headers={"Content-Type": ctype})
    assert r.status_code == client.status("validation"), r.text


@pytest.mark.parametrize(("pid", "host", "operation"), _json_body_ops())
def test_each_missing_required_field_is_a_validation_error_naming_it(client, pid, host, operation):
    op = client.contract.operation(operation)
    required = _schema(client, op).get("required") or []
    assert required, f"{operation}: the JSON body declares no required field"
    for field in required:
        body = _valid(client, op)
        body.pop(field)
        r = client.send(op.method, _fill(op), json=body)
        assert r.status_code == client.status("validation"), (field, r.text)
        assert field in r.text, (field, r.text)


def _limited_ops() -> list:
    out = []
    for p in _json_body_ops():
        pid, host, operation = p.values
        c = CONTRACTS[pid]
        op = c.operation(operation)
        doc = c.host_document(host)
        props = deref(doc, deref(doc, op.definition["requestBody"])["content"]["application/json"]["schema"])
        for name, prop in (props.get("properties") or {}).items():
            limit = deref(doc, prop).get("maxLength")
            if limit is not None and limit <= 100_000:
                out.append(pytest.param(pid, host, operation, name, limit, id=f"{pid}-{operation}-{name}"))
    return out


@pytest.mark.parametrize(("pid", "host", "operation", "field", "limit"), _limited_ops())
def test_a_field_over_its_max_length_is_a_validation_error(client, pid, host, operation, field, limit):
    op = client.contract.operation(operation)
    body = _valid(client, op)
    body[field] = "x" * limit
    ok = client.send(op.method, _fill(op), json=body)
    assert ok.status_code != client.status("validation") or field not in ok.text, ok.text  # at the limit: fine
    body[field] = "x" * (limit + 1)
    r = client.send(op.method, _fill(op), json=body)
    assert r.status_code == client.status("validation"), r.text
    assert len(r.content) < 2000, "the error echoes the oversize value"


def test_the_prompt_limits_that_are_tested_come_from_the_contracts():
    limited = {(p.values[0], p.values[3]) for p in _limited_ops()}
    assert ("openai", "prompt") in limited and ("sunra", "prompt") in limited and ("gptge", "prompt") in limited
    # fal, onerouter and aigateway declare no prompt maxLength, so no oversize case exists for them
    assert not {pid for pid, _ in limited} & {"fal", "onerouter", "aigateway"}


# -- ids, methods, paths ------------------------------------------------------------------------------
def _id_ops() -> list:
    return [pytest.param(pid, op.host, op.operation_id, id=f"{pid}-{op.operation_id}")
            for pid, c in CONTRACTS.items() for op in c.operations() if "{" in op.path]


@pytest.mark.parametrize(("pid", "host", "operation"), _id_ops())
def test_unknown_and_odd_ids_are_not_found(client, pid, host, operation):
    op = client.contract.operation(operation)
    body = _valid(client, op) if "requestBody" in op.definition else None
    for raw in ODD_IDS:
        r = client.send(op.method, _fill(op, raw), json=body)
        assert r.status_code == client.status("not_found"), (raw, r.text)


@pytest.mark.parametrize(("pid", "host"), [pytest.param(p, h, id=f"{p}-{h}") for p, h in HOSTS])
def test_an_undeclared_method_is_405_with_allow_in_the_envelope(client, pid, host):
    paths: dict[str, set[str]] = {}
    for op in _ops(pid, host):
        paths.setdefault(op.path, set()).add(op.method)
    for path, declared in paths.items():
        for method in METHODS:
            if method in declared:
                continue
            r = client.send(method, _fill_path(path), checked=False, json={})
            assert r.status_code == client.status("method_not_allowed"), (method, path, r.text)
            assert r.headers["Allow"] == ", ".join(sorted(declared)), (method, path)
            errors = component_response_errors(client.contract, host, "MethodNotAllowed", r)
            assert not errors, (method, path, errors)


def _fill_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "some-id", path)


@pytest.mark.parametrize(("pid", "host"), [pytest.param(p, h, id=f"{p}-{h}") for p, h in HOSTS])
def test_an_unknown_path_under_the_mount_is_404_in_the_envelope(client, pid, host):
    tails = ["/does/not/exist", _fill_path(_ops(pid, host)[0].path) + "/zz-extra/zz-more", "/" + "x" * 200]
    for tail in tails:
        assert not any(op.path_regex.match(tail) for op in _ops(pid, host)), tail
        for method in ("GET", "POST"):
            r = client.send(method, tail, checked=False)
            assert r.status_code == client.status("not_found"), (tail, r.text)
            errors = component_response_errors(client.contract, host, "NotFound", r)
            assert not errors, (tail, errors)


# -- sunra-client's double slash ----------------------------------------------------------------------
@pytest.mark.parametrize(("pid", "host"), [pytest.param("sunra", "api", id="sunra-api")])
def test_sunra_double_slash_paths_are_served_and_errors_enveloped(client, pid, host, served):
    mock, _ = served
    submit = next(op for op in _ops(pid, host) if op.role == "submit" and "generate" in job_kinds(op))
    r = client.send("POST", submit.path, json=request_body(client.contract, submit, "generate")[1])
    assert r.status_code == 200, r.text
    job = r.json()["request_id"]
    mock.advance(60)
    by_id = [op for op in _ops(pid, host) if "{request_id}" in op.path and op.role != "status_stream"]
    assert {op.role for op in by_id} == {"status", "result", "cancel"}
    for op in by_id:
        doubled = op.path.replace("/requests/", "//requests/")
        assert "//" in doubled
        known = client.send(op.method, doubled.replace("{request_id}", job))
        if op.role == "cancel":  # the job is completed: cancel answers the provider's "finished" error
            assert 400 <= known.status_code < 500, known.text
        else:
            assert known.status_code == 200, known.text
        unknown = client.send(op.method, doubled.replace("{request_id}", "pd_does_not_exist"))
        assert unknown.status_code == client.status("not_found"), unknown.text
    wrong = client.send("DELETE", "/v1/queue//requests/" + job + "/status", checked=False)
    assert wrong.status_code == client.status("method_not_allowed") and wrong.headers["Allow"] == "GET"
    assert not component_response_errors(client.contract, host, "MethodNotAllowed", wrong)


@pytest.mark.parametrize(("pid", "host", "operation"), _json_body_ops())
def test_an_unknown_expectation_is_ignored_not_a_plain_417(client, pid, host, operation):
    """``Expect: <anything but 100-continue>`` is ignored (RFC 9110 §10.1.1 allows it): the request is answered
    as without the header, in the contract (aiohttp's default was a plain-text 417 outside every contract)."""
    op = CONTRACTS[pid].operation(operation)
    r = client.send(op.method.upper(), _fill(op), json={}, headers={"Expect": "Jn"})
    assert r.status_code != 417 and 400 <= r.status_code < 500
    plain = client.send(op.method.upper(), _fill(op), json={})
    assert r.status_code == plain.status_code


@pytest.mark.parametrize(("path", "fields"), [
    ("/videos", [("prompt", (None, "a cat")), ("prompt", (None, "a dog"))]),
    ("/videos/characters", [("name", (None, "a")), ("name", (None, "b")),
                            ("video", ("v.mp4", b"\x00" * 64, "video/mp4"))]),
])
def test_a_repeated_string_form_field_is_a_validation_error(served, path, fields):
    """A form sends an array as repeated fields: repeating a field the contract declares a string sends an
    array where a string is due (seed 7 of the main job found the mock keeping the last value)."""
    mock, _ = served
    contract = CONTRACTS["openai"]
    resp = httpx.post(mock.base_url("openai") + path, files=fields, headers=auth_header(contract), timeout=30)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == fields[0][0] and "given once" in error["message"]
