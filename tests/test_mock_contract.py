"""The mock never answers outside its contracts: every operation of every provider host, in every state.

One mock serves every vendored provider (``EmbeddedMock(clock="manual")``, a required API key, timings of
10 s queued + 10 s in progress). For EVERY operation of EVERY host of ``specs.load_all()`` the test drives:

- the job the operation addresses (path id) in each lifecycle state: ``queued``, ``in_progress``,
  ``completed``, ``failed`` (a ``generation_failure`` fault), ``cancelled`` (where the provider has a
  ``cancel`` operation), ``deleted`` (where it has ``delete``), and an ``unknown`` id;
- for job-creating operations: a valid request, and for remixes the source in each of those states;
- error answers: 401 (no credentials, a wrong scheme, a wrong key), 404 (unknown id), the provider's
  validation error (an empty body, a bad query value), and 429/500/502/503 injected with ``X-Mock-Fault``.

Every response (status code, headers, body and content type) is validated against the provider's contract
with openapi-core (:class:`mockserver.validation.HostValidator`, through :class:`HostChecked`), and the
status is checked against the provider's error kinds (provider.yaml ``errors.kinds``). Requests are built
from the contract (a request example that validates, else a minimal instance of the schema), not per
provider. Blocking operations (``run``, ``status_stream``) are called on a thread while the test advances
the manual clock.

If a provider's family adapter cannot be imported (another helper is still writing it), the mock serves
the other providers and that provider's tests FAIL with the import error; nothing is skipped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import pytest
from mock_contract_support import (
    KEY,
    HostChecked,
    auth_header,
    deref,
    family_problems,
    job_kinds,
    multipart_files,
    request_body,
)

import specs
from mockserver.embedded import EmbeddedMock

CONTRACTS = specs.load_all()
QUEUED, RUNNING = 10.0, 10.0
TIMINGS = {pid: {"queued_seconds": QUEUED, "in_progress_seconds": RUNNING} for pid in CONTRACTS}
READ_ROLES = {"retrieve", "status", "status_stream", "result", "content", "cancel", "delete", "list"}
CREATE_ROLES = {"create", "submit", "run", "remix", "edit", "extend"}
#: Roles of resources that are not jobs (openai's characters): checked by the error matrix only.
RESOURCE_ROLES = {"character_create", "character_retrieve"}
BLOCKING_ROLES = {"run", "status_stream"}
FAULTS = {"rate_limit": "rate_limited", "server_error": "server_error", "bad_gateway": "bad_gateway",
          "unavailable": "unavailable"}


def states_for(contract: specs.Contract) -> list[str]:
    """Lifecycle states a job of this provider can be brought into through its own operations."""
    states = ["queued", "in_progress", "completed", "failed"]
    roles = {op.role for op in contract.operations()}
    if "cancel" in roles:
        states.append("cancelled")
    if "delete" in roles:
        states.append("deleted")
    return states


@pytest.fixture(scope="module")
def served():
    problems = family_problems()
    working = [pid for pid in CONTRACTS if pid not in problems]
    with EmbeddedMock(providers=working, clock="manual", api_key=KEY, timings=TIMINGS, seed=5) as m:
        yield m, problems


@dataclass
class Driver:
    """Drives one provider of the shared mock: checked clients per host, jobs in a given state."""

    mock: EmbeddedMock
    contract: specs.Contract

    def __post_init__(self):
        self.clients: dict[str, httpx.Client] = {}
        self.hooks: dict[str, HostChecked] = {}
        for host in self.contract.hosts:
            base = self.mock.base_url(self.contract.id, host["id"])
            hook = HostChecked(self.contract, host["id"], base)
            self.hooks[host["id"]] = hook
            self.clients[host["id"]] = httpx.Client(base_url=base, event_hooks={"response": [hook]}, timeout=60)

    def close(self):
        for c in self.clients.values():
            c.close()

    @property
    def pid(self) -> str:
        return self.contract.id

    # -- requests -----------------------------------------------------------------------------------
    def call(self, op: specs.Operation, *, ids: dict[str, str] | None = None, body=None, media=None,
             headers: dict[str, str] | None = None, params: dict[str, str] | None = None, auth: bool = True,
             raw: bytes | None = None) -> httpx.Response:
        """Send ``op`` (path parameters from ``ids``); blocking roles are sent while the clock advances."""
        path = op.path
        for name, value in (ids or {}).items():
            path = path.replace("{" + name + "}", value)
        hdrs = dict(auth_header(self.contract) if auth else {})
        hdrs.update(headers or {})
        kwargs: dict = {"headers": hdrs, "params": params or {}}
        if raw is not None:
            kwargs["content"] = raw
            hdrs.setdefault("Content-Type", media or "application/json")
        elif body is not None and media == "multipart/form-data":
            kwargs["files"] = multipart_files(body)
        elif body is not None:
            kwargs["json"] = body
        client = self.clients[op.host]
        if op.role not in BLOCKING_ROLES:
            return client.request(op.method, path, **kwargs)
        return self.while_advancing(lambda: client.request(op.method, path, **kwargs))

    def while_advancing(self, fn):
        """Run ``fn`` on a thread and advance the manual clock 1 s at a time until it returns."""
        out: dict = {}

        def target():
            try:
                out["value"] = fn()
            except BaseException as exc:  # re-raised in the test's thread
                out["error"] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(0.05)
        deadline = time.monotonic() + 60
        while thread.is_alive():
            assert time.monotonic() < deadline, "a blocking operation did not answer"
            self.mock.advance(1.0)
            thread.join(0.01)
        if "error" in out:
            raise out["error"]
        return out["value"]

    # -- contract lookups ---------------------------------------------------------------------------
    def ops(self, role: str) -> list[specs.Operation]:
        return self.contract.operations_by_role(role)

    def creator(self) -> specs.Operation | None:
        """A non-blocking operation creating a ``generate`` job (the primary host's first), or None."""
        for op in self.contract.operations():
            if op.role in ("create", "submit") and "generate" in job_kinds(op):
                return op
        return None

    def source_ref(self, job_id: str) -> str:
        """How a remix names a source job: provider.yaml ``mock.output_id.prefix`` + the id without
        dashes (fal's output ``video_id``), else the job id itself."""
        rule = self.contract.provider["mock"].get("output_id")
        return rule["prefix"] + job_id.replace("-", "") if rule else job_id

    def unknown_id(self) -> str:
        return self.contract.provider["ids"]["example"]

    def error_status(self, kind: str) -> int:
        return self.contract.error_kind(kind).get("status", 400)

    # -- jobs in a state ----------------------------------------------------------------------------
    def admin_job(self, job_id: str) -> dict | None:
        try:
            return self.mock.admin("GET", f"jobs/{self.pid}/{job_id}")
        except Exception:
            return None

    def newest_job(self) -> str:
        return self.mock.admin("GET", f"jobs?provider={self.pid}&limit=1")["jobs"][0]["id"]

    def create(self, failing: bool = False) -> str:
        """Create a fresh ``generate`` job through the provider's own operation; returns its job id."""
        op = self.creator()
        if op is None:  # a provider with only blocking creators (onerouter): create it in the engine
            return self._engine_job(failing)
        media, body = request_body(self.contract, op, "generate")
        r = self.call(op, body=body, headers={"X-Mock-Fault": "generation_failure"} if failing else None)
        assert 200 <= r.status_code < 300, r.text
        return self.newest_job()

    def _engine_job(self, failing: bool) -> str:
        pid = self.pid

        def make():
            state = self.mock.state
            ids = state.contracts[pid].provider["ids"]
            job = state.store.create(pid, "generate", {"prompt": "source", "seconds": 4, "size": "1280x720",
                                                       "model": "sora-2"}, state.timing(pid),
                                     failure="content_policy_violation" if failing else None,
                                     id_prefix=ids["prefix"], id_format=ids["format"])
            return job.id

        return self.mock.call(make)

    def job_in(self, state: str) -> str:
        """A new job of this provider brought into ``state`` (checked in the admin's neutral view)."""
        if state == "unknown":
            return self.unknown_id()
        job = self.create(failing=state == "failed")
        if state == "in_progress":
            self.mock.advance(QUEUED + RUNNING / 2)
        elif state in ("completed", "failed", "deleted"):
            self.mock.advance(QUEUED + RUNNING + 1)
        elif state == "cancelled":
            if self.ops("cancel"):
                r = self.call(self.ops("cancel")[0], ids={self._id_param(self.ops("cancel")[0]): job})
                assert 200 <= r.status_code < 300, r.text
            else:
                self.mock.call(lambda: self.mock.state.store.cancel(self.mock.state.store.get(self.pid, job)))
        if state == "deleted":
            r = self.call(self.ops("delete")[0], ids={self._id_param(self.ops("delete")[0]): job})
            assert 200 <= r.status_code < 300, r.text
            assert self.admin_job(job) is None
        else:
            assert self.admin_job(job)["status"] == state
        return job

    @staticmethod
    def _id_param(op: specs.Operation) -> str:
        names = [p for p in _path_params(op)]
        assert len(names) == 1, (op.operation_id, names)
        return names[0]


def _path_params(op: specs.Operation) -> list[str]:
    import re

    return re.findall(r"\{([^}]+)\}", op.path)


@pytest.fixture
def driver(served, request):
    mock, problems = served
    pid = request.node.callspec.params["pid"]
    if pid in problems:
        pytest.fail(problems[pid])
    d = Driver(mock, CONTRACTS[pid])
    mock.admin("DELETE", "faults")
    yield d
    d.close()


# -- parametrization ----------------------------------------------------------------------------------
def _cases(kind: str) -> list:
    out = []
    for pid, contract in CONTRACTS.items():
        for op in contract.operations():
            label = f"{pid}-{op.host}-{op.operation_id}"
            if kind == "state" and op.role in READ_ROLES:
                for state in [*states_for(contract), "unknown"]:
                    out.append(pytest.param(pid, op.operation_id, state, id=f"{label}-{state}"))
            elif kind == "source" and op.role in CREATE_ROLES and op.sourced:
                for state in [*states_for(contract), "unknown"]:
                    out.append(pytest.param(pid, op.operation_id, state, id=f"{label}-source-{state}"))
            elif kind == "generate" and op.role in CREATE_ROLES and "generate" in job_kinds(op):
                for failing in (False, True):
                    out.append(pytest.param(pid, op.operation_id, failing,
                                            id=f"{label}-{'failing' if failing else 'ok'}"))
            elif kind == "errors":
                cases = ["no_credentials", "wrong_scheme", "wrong_key", *FAULTS]
                if _path_params(op) and op.role in READ_ROLES | {"character_retrieve"}:
                    cases.append("unknown_id")
                if "requestBody" in op.definition:
                    cases.append("empty_body")
                if _bad_query(contract, op):
                    cases.append("bad_query")
                for case in cases:
                    out.append(pytest.param(pid, op.operation_id, case, id=f"{label}-{case}"))
    return out


def _bad_query(contract: specs.Contract, op: specs.Operation) -> dict[str, str] | None:
    """A query value the contract forbids (an enum or integer parameter), or None."""
    doc = contract.host_document(op.host)
    for p in op.definition.get("parameters") or []:
        p = deref(doc, p)
        schema = deref(doc, p.get("schema") or {})
        if p.get("in") != "query":
            continue
        if schema.get("enum") or schema.get("type") in ("integer", "boolean"):
            return {p["name"]: "not-a-valid-value"}
    return None


def _ids_for(d: Driver, op: specs.Operation, job: str | None = None, source: str | None = None) -> dict:
    ids = {}
    src = op.source or {}
    for name in _path_params(op):
        if src.get("in") == "path" and src.get("name") == name:
            ids[name] = source if source is not None else d.unknown_id()
        else:
            ids[name] = job if job is not None else d.unknown_id()
    return ids


def _valid_request(d: Driver, op: specs.Operation, kind: str | None, source_ref: str | None):
    built = request_body(d.contract, op, kind, source_ref)
    return (None, None) if built is None else built


# -- the matrix ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("pid", "operation", "state"), _cases("state"))
def test_operation_on_a_job_in_each_state(driver, pid, operation, state):
    op = driver.contract.operation(operation)
    job = driver.job_in(state)
    ids = _ids_for(driver, op, job=job)
    media, body = _valid_request(driver, op, None, None)
    r = driver.call(op, ids=ids, body=body, media=media)  # validated against the contract by the hook
    missing = state in ("unknown", "deleted")
    if op.role == "list":
        assert r.status_code == 200, r.text
        if state != "unknown":
            assert (job in r.text) == (state != "deleted")
    elif missing:
        assert r.status_code == driver.error_status("not_found"), r.text
    elif op.role in ("retrieve", "status", "status_stream"):
        assert r.status_code == 200, r.text
    elif op.role in ("content", "result"):
        assert (200 <= r.status_code < 300) == (state == "completed"), r.text
        assert r.status_code < 500
    elif op.role == "cancel":
        active = state in ("queued", "in_progress")
        assert (200 <= r.status_code < 300) == active and r.status_code < 500, r.text
        assert driver.admin_job(job)["status"] == ("cancelled" if active else state)
    elif op.role == "delete":
        assert r.status_code == 200, r.text
        assert driver.admin_job(job) is None


@pytest.mark.parametrize(("pid", "operation", "state"), _cases("source"))
def test_remix_with_its_source_in_each_state(driver, pid, operation, state):
    op = driver.contract.operation(operation)
    source = driver.job_in(state)
    ref = driver.source_ref(source) if state != "unknown" else driver.source_ref(driver.unknown_id())
    media, body = _valid_request(driver, op, "remix" if op.may_remix else "extend", ref)
    r = driver.call(op, ids=_ids_for(driver, op, source=ref), body=body, media=media)
    if state == "completed":
        assert 200 <= r.status_code < 300, r.text
        assert driver.admin_job(driver.newest_job())["source_id"] == source
    elif state in ("unknown", "deleted"):
        assert r.status_code == driver.error_status("not_found"), r.text
    else:
        assert r.status_code == driver.error_status("conflict"), r.text


@pytest.mark.parametrize(("pid", "operation", "failing"), _cases("generate"))
def test_creating_a_job(driver, pid, operation, failing):
    op = driver.contract.operation(operation)
    media, body = _valid_request(driver, op, "generate", None)
    r = driver.call(op, body=body, media=media,
                    headers={"X-Mock-Fault": "generation_failure"} if failing else None)
    job = driver.admin_job(driver.newest_job())
    if op.role == "run":  # blocking: the answer is the outcome
        assert (200 <= r.status_code < 300) != failing and r.status_code < 500, r.text
        assert job["status"] == ("failed" if failing else "completed")
    else:
        assert 200 <= r.status_code < 300, r.text
        assert job["status"] == "queued" and (job["failure"] is not None) == failing


@pytest.mark.parametrize(("pid", "operation", "case"), _cases("errors"))
def test_error_answers_are_in_the_contract(driver, pid, operation, case):
    op = driver.contract.operation(operation)
    kind = "remix" if op.may_remix and "generate" not in job_kinds(op) else (job_kinds(op) or [None])[0]
    media, body = _valid_request(driver, op, kind, driver.source_ref(driver.unknown_id()))
    ids = _ids_for(driver, op)  # unknown ids
    headers, auth, params, raw = {}, True, None, None
    auth_name = driver.contract.auth["header"]
    if case == "no_credentials":
        auth = False
    elif case == "wrong_scheme":
        headers[auth_name] = "Basic dXNlcjpwYXNz"
    elif case == "wrong_key":
        headers.update(auth_header(driver.contract, "sk-wrong-key"))
    elif case in FAULTS:
        headers["X-Mock-Fault"] = case + ("; retry_after=2" if case in ("rate_limit", "unavailable") else "")
    elif case == "empty_body":
        raw = b"{}"
    elif case == "bad_query":
        params = _bad_query(driver.contract, op)
    if _path_params(op) and case != "unknown_id" and op.role not in RESOURCE_ROLES:  # a real, completed job
        job = driver.job_in("completed")
        ids = _ids_for(driver, op, job=job, source=driver.source_ref(job))
    r = driver.call(op, ids=ids, body=body, media=media, headers=headers, auth=auth, params=params, raw=raw)
    expected = {"no_credentials": "unauthorized", "wrong_scheme": "unauthorized", "wrong_key": "unauthorized",
                "unknown_id": "not_found", "empty_body": "validation", "bad_query": "validation",
                **FAULTS}[case]
    assert r.status_code == driver.error_status(expected), r.text
    if case in ("rate_limit", "unavailable"):
        assert r.headers["Retry-After"] == "2"


def test_every_operation_of_every_contract_is_in_the_matrix():
    covered = set()
    for kind in ("state", "source", "generate", "errors"):
        for p in _cases(kind):
            covered.add((p.values[0], p.values[1]))
    every = {(pid, op.operation_id) for pid, c in CONTRACTS.items() for op in c.operations()}
    assert covered == every
    roles = {op.role for c in CONTRACTS.values() for op in c.operations()}
    assert roles <= READ_ROLES | CREATE_ROLES | RESOURCE_ROLES, roles - READ_ROLES - CREATE_ROLES - RESOURCE_ROLES
