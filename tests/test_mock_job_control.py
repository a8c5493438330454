"""Deterministic job control on the mock: the ``X-Mock-Timing`` header and ``POST /__mock/jobs/.../advance``.

A test (or the conformance suite) holds a job in a phase with ``X-Mock-Timing: queued=hold, in_progress=hold``
and moves just that job on with the admin route, whatever the clock: a manual clock, or a system clock at
any speed. Checked here on every family (video object, queue, job, sync), through the providers' own
operations (every provider response validated against its contract with :class:`HostChecked`) and the admin
API (every admin response validated against ``specs/mockadmin/openapi.yaml`` with :class:`AdminChecked`).
Traffic goes only to servers these tests start on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import contextmanager

import httpx
import openai
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mock_contract_support import AdminChecked, HostChecked, auth_header, job_kinds, request_body
from threaded_server import serve

import specs
from mockserver.embedded import EmbeddedMock
from mockserver.engine import HOLD_SECONDS, STATUS_ORDER, TERMINAL, Timing
from mockserver.timing import TIMING_HEADER, TimingHeaderError, parse_timing_header

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")

CONTRACTS = specs.load_all()
HELD = {TIMING_HEADER: "queued=hold, in_progress=hold"}


def creators(blocking: bool) -> list[tuple[str, specs.Operation]]:
    """``(provider, operation)`` of every operation creating a ``generate`` job: non-blocking
    (create/submit) or blocking (run)."""
    roles = ("run",) if blocking else ("create", "submit")
    return [(pid, op) for pid, c in CONTRACTS.items() for op in c.operations()
            if op.role in roles and "generate" in job_kinds(op)]


NON_BLOCKING = creators(blocking=False)
BLOCKING = creators(blocking=True)


def reader(contract: specs.Contract) -> specs.Operation:
    """The provider's operation reading one job's status (``retrieve`` or ``status``)."""
    return next(op for op in contract.operations() if op.role in ("retrieve", "status"))


# -- servers ------------------------------------------------------------------------------------------
class Hooks:
    """Webhook bodies received by a server on 127.0.0.1 (see :func:`hooks`)."""

    def __init__(self):
        self.hits: list[dict] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(json.loads(await request.read()))
        return web.Response(text="ok")

    def wait(self, match, what: str, since: int = 0) -> dict:
        """The first body from index ``since`` on that ``match`` accepts (ids repeat after a reset: same seed)."""
        deadline = time.monotonic() + 10
        while True:
            found = [h for h in list(self.hits)[since:] if match(h)]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no webhook: {what}"
            time.sleep(0.02)


@contextmanager
def hooks():
    h = Hooks()
    with serve(h.handle, method="POST") as url:
        h.url = url + "/hook"
        yield h


@pytest.fixture(scope="module")
def receiver():
    with hooks() as h:
        yield h


@pytest.fixture(scope="module")
def manual(receiver):
    with EmbeddedMock(clock="manual", seed=21, openai_webhook_url=receiver.url,
                      webhook_backoff=0.05) as m:
        yield m


@pytest.fixture(scope="module")
def fast():
    """A system clock 1000x real time: the default 0.5 s + 2 s lifecycle takes 2.5 ms."""
    with EmbeddedMock(providers=["openai", "fal", "onerouter"], clock="system", speed=1000, seed=22,
                      webhook_backoff=0.05) as m:
        yield m


@pytest.fixture
def admin(manual):
    """An httpx client on the manual mock whose every admin response is checked against the admin contract."""
    manual.admin("POST", "reset")
    hook = AdminChecked()
    with httpx.Client(base_url=manual.url, event_hooks={"response": [hook]}, timeout=30) as c:
        yield c
    assert hook.checked


class Provider:
    """Checked clients on every host of one provider of a mock."""

    def __init__(self, mock: EmbeddedMock, pid: str):
        self.mock, self.pid, self.contract = mock, pid, CONTRACTS[pid]
        self.clients = {}
        for host in self.contract.hosts:
            base = mock.base_url(pid, host["id"])
            self.clients[host["id"]] = httpx.Client(
                base_url=base, headers=auth_header(self.contract), timeout=60,
                event_hooks={"response": [HostChecked(self.contract, host["id"], base)]})

    def close(self):
        for c in self.clients.values():
            c.close()

    def send(self, op: specs.Operation, headers: dict | None = None, body=None, params=None) -> httpx.Response:
        if body is None:
            built = request_body(self.contract, op, "generate")
            body = built[1] if built else None
        return self.clients[op.host].request(op.method, op.path, json=body, headers=headers or {},
                                             params=params or {})

    def create(self, op: specs.Operation, headers: dict | None = None, **kw) -> str:
        """Create a job through ``op``; returns its id (the admin's newest job of this provider)."""
        r = self.send(op, headers, **kw)
        assert 200 <= r.status_code < 300, r.text
        return self.mock.admin("GET", f"jobs?provider={self.pid}&limit=1")["jobs"][0]["id"]

    def read(self, job_id: str) -> httpx.Response:
        """The provider's own status answer for ``job_id`` (checked against its contract)."""
        op = reader(self.contract)
        r = self.clients[op.host].get(re.sub(r"\{[^}]+\}", job_id, op.path, count=1))
        assert r.status_code == 200, r.text
        return r


@pytest.fixture
def provider(manual):
    made = []

    def make(pid: str, mock: EmbeddedMock | None = None) -> Provider:
        p = Provider(mock or manual, pid)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def job(admin, pid: str, job_id: str) -> dict:
    r = admin.get(f"/__mock/jobs/{pid}/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def advance(admin, pid: str, job_id: str, to: str) -> dict:
    r = admin.post(f"/__mock/jobs/{pid}/{job_id}/advance", json={"to": to})
    assert r.status_code == 200, r.text
    return r.json()


def wall(admin) -> int:
    return admin.get("/__mock/clock").json()["wall"]


# -- the header ---------------------------------------------------------------------------------------
DEFAULT = Timing(0.5, 2.0)


@pytest.mark.parametrize(("value", "expected"), [
    (None, DEFAULT), ("", DEFAULT), ("   ", DEFAULT),
    ("queued=hold, in_progress=hold", Timing(HOLD_SECONDS, HOLD_SECONDS)),
    ("queued=HOLD;in_progress=0", Timing(HOLD_SECONDS, 0)),
    (" in_progress = 7.5 ", Timing(0.5, 7.5)),
    ("queued=3", Timing(3, 2.0)),
    ("queued=0, in_progress=1e3,", Timing(0, 1000)),
    ("queued=.25; in_progress=1.", Timing(0.25, 1.0)),
    ("queued=1e12", Timing(1e12, 2.0)),
])
def test_parse_timing_header(value, expected):
    assert parse_timing_header(value, DEFAULT) == expected


@pytest.mark.parametrize("value", [
    "queued", "queued=", "queued=-1", "queued=+1", "queued=nan", "queued=inf", "queued=1e400", "queued=1_0",
    "queued=1e13", "queued=hold!", "queued=1,queued=2", "started=1", "queued=1 in_progress=2", ",", ";;",
    "queued=١",
])
def test_parse_timing_header_rejects(value):
    with pytest.raises(TimingHeaderError) as err:
        parse_timing_header(value, DEFAULT)
    assert "\n" not in str(err.value)


# -- held jobs, advanced --------------------------------------------------------------------------------
@pytest.mark.parametrize(("pid", "op"), NON_BLOCKING, ids=[f"{p}-{o.operation_id}" for p, o in NON_BLOCKING])
def test_held_job_stays_put_until_advanced_on_every_family(admin, manual, provider, pid, op):
    p = provider(pid)
    jid = p.create(op, HELD)
    created = job(admin, pid, jid)
    assert created["status"] == "queued"
    admin.post("/__mock/clock/advance", json={"seconds": 1e6})  # ~11.6 days: far past any default timing
    still = job(admin, pid, jid)
    assert (still["status"], still["progress"], still["started_at"]) == ("queued", 0, None)
    p.read(jid)  # the provider's own answer for a held job is inside its contract

    now = wall(admin)
    started = advance(admin, pid, jid, "in_progress")
    assert started == job(admin, pid, jid)  # the answer is the GET view after the move
    assert (started["status"], started["progress"], started["queue_position"]) == ("in_progress", 0, 0)
    assert started["started_at"] == now and started["finished_at"] is None
    assert started["created_at"] == created["created_at"]
    p.read(jid)

    admin.post("/__mock/clock/advance", json={"seconds": 1e6})  # the in-progress phase is held too
    running = job(admin, pid, jid)
    assert (running["status"], running["progress"], running["started_at"]) == ("in_progress", 0, now)
    assert advance(admin, pid, jid, "in_progress") == running  # already there: unchanged

    later = wall(admin)
    done = advance(admin, pid, jid, "end")
    assert (done["status"], done["progress"]) == ("completed", 100)
    assert (done["created_at"], done["started_at"], done["finished_at"]) == (created["created_at"], now, later)
    p.read(jid)
    admin.post("/__mock/clock/advance", json={"seconds": 5})
    assert advance(admin, pid, jid, "end") == done == job(admin, pid, jid)  # terminal: unchanged


def test_queued_job_advanced_to_end_goes_straight_through(admin, provider):
    p = provider("fal")
    jid = p.create(next(op for pid, op in NON_BLOCKING if pid == "fal"), {TIMING_HEADER: "queued=hold"})
    admin.post("/__mock/clock/advance", json={"seconds": 30})
    now = wall(admin)
    done = advance(admin, "fal", jid, "end")
    assert (done["status"], done["progress"], done["started_at"], done["finished_at"]) == ("completed", 100, now, now)
    result = p.clients["queue"].get(f"/fal-ai/sora-2/requests/{jid}")
    assert result.status_code == 200 and result.json()["video"]["url"]


def test_numeric_timing_and_omitted_keys_keep_the_provider_default(admin, provider):
    p = provider("openai")
    create = next(op for pid, op in NON_BLOCKING if pid == "openai")
    running = CONTRACTS["openai"].provider["mock"]["in_progress_seconds"]
    jid = p.create(create, {TIMING_HEADER: "queued=3"})
    t0 = job(admin, "openai", jid)["created_at"]
    admin.post("/__mock/clock/advance", json={"seconds": 2.9})
    assert job(admin, "openai", jid)["status"] == "queued"
    admin.post("/__mock/clock/advance", json={"seconds": 0.1})
    assert job(admin, "openai", jid)["status"] == "in_progress"
    admin.post("/__mock/clock/advance", json={"seconds": running})
    done = job(admin, "openai", jid)
    assert done["status"] == "completed" and done["finished_at"] - t0 == int(3 + running)

    instant = p.create(create, {TIMING_HEADER: "queued=0; in_progress=0"})
    assert job(admin, "openai", instant)["status"] == "completed"
    assert p.read(instant).json()["status"] == "completed"


def test_remix_takes_the_header_too(admin, provider):
    p = provider("openai")
    source = admin.post("/__mock/videos", json={"provider": "openai"}).json()
    r = p.clients["api"].post(f"/videos/{source['id']}/remix", json={"prompt": "purple"}, headers=HELD)
    assert r.status_code == 200, r.text
    admin.post("/__mock/clock/advance", json={"seconds": 1e6})
    assert job(admin, "openai", r.json()["id"])["status"] == "queued"
    assert advance(admin, "openai", r.json()["id"], "end")["status"] == "completed"


@pytest.mark.parametrize("phase", ["queued", "in_progress"])
def test_injected_generation_failure_advanced_to_end_fails(admin, provider, receiver, phase):
    p = provider("openai")
    create = next(op for pid, op in NON_BLOCKING if pid == "openai")
    since = len(receiver.hits)
    jid = p.create(create, {**HELD, "X-Mock-Fault": "generation_failure; code=moderation_blocked"})
    if phase == "in_progress":
        assert advance(admin, "openai", jid, "in_progress")["status"] == "in_progress"
    admin.post("/__mock/clock/advance", json={"seconds": 1e6})
    assert job(admin, "openai", jid)["status"] == phase
    now = wall(admin)
    failed = advance(admin, "openai", jid, "end")
    assert (failed["status"], failed["failure"], failed["finished_at"]) == ("failed", "moderation_blocked", now)
    assert failed["progress"] == (99 if phase == "in_progress" else 0)
    video = p.read(jid).json()
    assert video["status"] == "failed" and video["error"]["code"] == "moderation_blocked"
    # the project-level webhook (openai_webhook_url) of the advanced job is delivered
    hit = receiver.wait(lambda h: h.get("data", {}).get("id") == jid, "video.failed of the advanced job", since)
    assert hit["type"] == "video.failed"


def test_cancelled_job_is_not_advanced(admin, provider):
    p = provider("fal")
    jid = p.create(next(op for pid, op in NON_BLOCKING if pid == "fal"), HELD)
    r = p.clients["queue"].put(f"/fal-ai/sora-2/requests/{jid}/cancel")
    assert r.status_code in (200, 202), r.text
    before = job(admin, "fal", jid)
    assert before["status"] == "cancelled"
    assert advance(admin, "fal", jid, "end") == before
    assert advance(admin, "fal", jid, "in_progress") == before


# -- errors -------------------------------------------------------------------------------------------
BAD_HEADERS = ["queued=-1", "queued=soon", "paused=1", "queued=1;queued=2", "queued", "in_progress=1e400"]


@pytest.mark.parametrize(("pid", "op"), NON_BLOCKING, ids=[f"{p}-{o.operation_id}" for p, o in NON_BLOCKING])
@pytest.mark.parametrize("value", BAD_HEADERS)
def test_bad_timing_header_is_the_providers_validation_error(admin, provider, pid, op, value):
    p = provider(pid)
    rule = admin.post("/__mock/faults", json={"kind": "generation_failure", "provider": pid}).json()["faults"][0]
    r = p.send(op, {TIMING_HEADER: value})  # validated against the contract by HostChecked
    fault = p.send(op, {"X-Mock-Fault": "explode"})  # a malformed X-Mock-Fault, answered the same way
    status = CONTRACTS[pid].error_kind("validation").get("status", 400)
    assert r.status_code == fault.status_code == status, r.text
    assert TIMING_HEADER in r.text and "\\n" not in r.text
    assert admin.get("/__mock/jobs", params={"provider": pid}).json()["jobs"] == []  # nothing was created
    assert admin.get("/__mock/faults").json()["faults"][0] == {**rule, "fired": 0}  # no rule was spent


@pytest.mark.parametrize("body", ['{}', '{"to": "completed"}', '{"to": "queued"}', '{"to": null}',
                                  '{"to": ["end"]}', '{"to": {"end": 1}}', '{"to": 1}', '["end"]', '"end"',
                                  '{"to": "END"}', '{to: end}', '', 'null'])
def test_bad_advance_body_is_400_and_changes_nothing(admin, provider, body):
    p = provider("openai")
    jid = p.create(next(op for pid, op in NON_BLOCKING if pid == "openai"), HELD)
    before = job(admin, "openai", jid)
    r = admin.post(f"/__mock/jobs/openai/{jid}/advance", content=body,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert job(admin, "openai", jid) == before


def test_unknown_provider_or_job_is_404_and_other_methods_405(admin, provider):
    p = provider("openai")
    jid = p.create(next(op for pid, op in NON_BLOCKING if pid == "openai"), HELD)
    for path in (f"/__mock/jobs/nope/{jid}/advance", "/__mock/jobs/openai/video_nope/advance",
                 f"/__mock/jobs/gptge/{jid}/advance"):
        r = admin.post(path, json={"to": "end"})
        assert r.status_code == 404 and "no job" in r.json()["error"]["message"]
    assert p.clients["api"].delete(f"/videos/{jid}").status_code == 200
    assert admin.post(f"/__mock/jobs/openai/{jid}/advance", json={"to": "end"}).status_code == 404  # deleted
    r = admin.get(f"/__mock/jobs/openai/{jid}/advance")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"


# -- system clock -------------------------------------------------------------------------------------
def test_held_job_on_a_fast_system_clock_and_its_webhook(fast, provider):
    hook = AdminChecked()
    with hooks() as rec, httpx.Client(base_url=fast.url, event_hooks={"response": [hook]}, timeout=30) as a:
        a.post("/__mock/reset")
        p = provider("fal", fast)
        submit = next(op for pid, op in NON_BLOCKING if pid == "fal")
        jid = p.create(submit, HELD, params={"fal_webhook": rec.url})
        free = p.create(submit)  # no header: the provider's 2.5 s, i.e. 2.5 ms of real time
        time.sleep(0.5)  # 500 virtual seconds
        assert job(a, "fal", free)["status"] == "completed"
        held = job(a, "fal", jid)
        assert held["status"] == "queued"
        assert not rec.hits  # nothing is delivered for a held job
        # 1000x: every millisecond of real time is a virtual second, so the advance moment is bracketed
        before = wall(a)
        started = advance(a, "fal", jid, "in_progress")
        assert started["status"] == "in_progress" and started["created_at"] == held["created_at"]
        assert before <= started["started_at"] <= wall(a)
        time.sleep(0.3)
        assert job(a, "fal", jid)["status"] == "in_progress"
        before = wall(a)
        done = advance(a, "fal", jid, "end")
        assert done["status"] == "completed" and done["started_at"] == started["started_at"]
        assert done["created_at"] == held["created_at"] and before <= done["finished_at"] <= wall(a)
        hit = rec.wait(lambda h: True, "the completion webhook of the advanced job")
        assert hit["status"] == "OK" and hit["request_id"] == jid
        deliveries = a.get("/__mock/webhooks").json()["deliveries"]
        assert [d["job_id"] for d in deliveries] == [jid] and deliveries[0]["delivered"]


# -- the synchronous family -----------------------------------------------------------------------------
def _in_thread(fn):
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # re-raised by the test
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("clock", ["manual", "fast"])
@pytest.mark.parametrize(("pid", "op"), [(p, o) for p, o in BLOCKING] + [("onerouter", None)],
                         ids=[f"{p}-{o.operation_id}" for p, o in BLOCKING] + ["onerouter-remix"])
def test_sync_call_with_hold_waits_until_the_job_is_advanced(request, provider, clock, pid, op):
    mock = request.getfixturevalue(clock)
    mock.admin("POST", "reset")
    p = provider(pid, mock)
    body = None
    if op is None:  # onerouter only runs remixes (video edits) of a completed source
        op = CONTRACTS[pid].operations_by_role("run")[0]
        source = mock.seed_video(pid)
        body = request_body(CONTRACTS[pid], op, "remix", source["id"])[1]
    thread, out = _in_thread(lambda: p.send(op, HELD, body=body))
    deadline = time.monotonic() + 10
    while not [j for j in mock.admin("GET", f"jobs?provider={pid}")["jobs"] if j["status"] == "queued"]:
        assert time.monotonic() < deadline, "the blocking call created no job"
        time.sleep(0.01)
    jid = next(j["id"] for j in mock.admin("GET", f"jobs?provider={pid}")["jobs"] if j["status"] == "queued")
    if clock == "manual":
        mock.advance(1e6)
    thread.join(0.3)
    assert thread.is_alive(), "a held blocking call must keep waiting"
    assert mock.advance_job(pid, jid, "in_progress")["status"] == "in_progress"
    thread.join(0.2)
    assert thread.is_alive()
    moved = time.monotonic()
    assert mock.advance_job(pid, jid)["status"] == "completed"
    thread.join(10)
    assert not thread.is_alive() and "error" not in out
    assert time.monotonic() - moved < 2.0, "the waiting call wakes up when its job is advanced"
    assert out["value"].status_code == 200, out["value"].text


def test_sync_call_with_numeric_timing_and_a_bad_header(manual, provider):
    p = provider("fal")
    run = next(op for pid, op in BLOCKING if pid == "fal")
    r = p.send(run, {TIMING_HEADER: "queued=0, in_progress=0"})  # no clock advance needed
    assert r.status_code == 200 and r.json()["video"]["url"]
    r = p.send(run, {TIMING_HEADER: "queued=later"})
    assert r.status_code == CONTRACTS["fal"].error_kind("validation").get("status", 400)
    assert TIMING_HEADER in r.text


# -- the helpers ----------------------------------------------------------------------------------------
def test_embedded_and_pytest_plugin_helpers(sora_mock):
    client = openai.OpenAI(base_url=sora_mock.base_url("openai"), api_key="sk-user", max_retries=0)
    video = client.videos.create(prompt="a cat", extra_headers={TIMING_HEADER: "queued=hold"})
    sora_mock.advance(1e6)
    assert client.videos.retrieve(video.id).status == "queued"
    assert sora_mock.advance_job("openai", video.id, to="in_progress")["status"] == "in_progress"
    assert client.videos.retrieve(video.id).status == "in_progress"
    done = sora_mock.advance_job("openai", video.id)
    assert done["status"] == "completed"
    assert client.videos.retrieve(video.id).completed_at == done["finished_at"]
    from mockserver.embedded import MockAdminError

    with pytest.raises(MockAdminError) as err:
        sora_mock.advance_job("openai", "video_nope")
    assert err.value.status == 404 and "video_nope" in str(err.value) and "\n" not in str(err.value)


# -- property: reads and advances in any order --------------------------------------------------------
ACTIONS = st.lists(st.one_of(st.tuples(st.just("clock"), st.sampled_from([0, 0.3, 1, 5, 1e6])),
                             st.tuples(st.just("advance"), st.sampled_from(["in_progress", "end"])),
                             st.tuples(st.just("read"), st.just(None))),
                   min_size=1, max_size=8)
TIMINGS = st.sampled_from(["queued=hold, in_progress=hold", "queued=hold", "in_progress=hold",
                           "queued=0.5, in_progress=2", "queued=0; in_progress=hold", "queued=0, in_progress=0"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(timing=TIMINGS, failing=st.booleans(), actions=ACTIONS)
def test_reads_and_advances_never_go_back(admin, provider, timing, failing, actions):
    """Over HTTP: status rank and progress never decrease, terminal stays terminal, timestamps never
    change once set, and every advance reaches its target."""
    p = provider("openai")
    headers = {TIMING_HEADER: timing, **({"X-Mock-Fault": "generation_failure"} if failing else {})}
    jid = p.create(next(op for pid, op in NON_BLOCKING if pid == "openai"), headers)
    prev = job(admin, "openai", jid)
    for action, arg in actions:
        if action == "clock":
            admin.post("/__mock/clock/advance", json={"seconds": arg})
            cur = job(admin, "openai", jid)
        elif action == "advance":
            cur = advance(admin, "openai", jid, arg)
            assert STATUS_ORDER[cur["status"]] >= (1 if arg == "in_progress" else 2)
        else:
            cur = job(admin, "openai", jid)
            assert p.read(jid).json()["status"] == cur["status"]  # openai's vocabulary is the neutral one
        assert STATUS_ORDER[cur["status"]] >= STATUS_ORDER[prev["status"]]
        assert cur["progress"] >= prev["progress"]
        assert cur["created_at"] == prev["created_at"]
        for stamp in ("started_at", "finished_at"):
            assert prev[stamp] is None or cur[stamp] == prev[stamp]
        if prev["status"] in TERMINAL:
            assert cur == prev
        if cur["status"] in TERMINAL:
            assert cur["status"] == ("failed" if failing else "completed")
        prev = cur
