"""The shared job store (sqlite and redis backends) behaves like the memory store, operation for operation, and
its companions keep their promises (atomic fault counters, shared clock, redacted journal, store URL parsing)."""

from __future__ import annotations

import random

import pytest
from store_support import RedisServer, redis_binary

from mockserver import engine as eng
from mockserver.config import MockConfig
from mockserver.state import MockState
from mockserver.store import StoreError, open_backend, parse_store_url
from mockserver.store.shared import SharedJobStore, SharedManualClock, decode_job, encode_job


@pytest.fixture(scope="module")
def redis_url():
    if redis_binary() is None:
        pytest.skip("redis-server is missing: run scripts/install-redis")
    server = RedisServer()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        b = open_backend(f"sqlite:///{tmp_path}/s.db")
    else:
        b = open_backend(request.getfixturevalue("redis_url"))
        b.r.flushall()
    try:
        yield b
    finally:
        b.close()


def _view(store, job, now):
    st = eng.state_at(job, now)
    return (job.kind, job.created, st, job.queue_position, job.source_id, job.deleted, job.delivered, job.params)


def test_shared_store_matches_the_memory_store_operation_for_operation(backend):
    mem_clock = eng.ManualClock()
    memory = eng.JobStore(mem_clock, rng=random.Random(1))
    shared_clock = SharedManualClock(backend)
    shared = SharedJobStore(backend, shared_clock, rng=random.Random(1))
    rng = random.Random(7)
    ids: list[tuple[str, str]] = []
    for step in range(120):
        op = rng.choice(["create", "create", "advance_clock", "cancel", "advance", "delete", "deliver"])
        if op == "create" or not ids:
            timing = eng.Timing(rng.choice([0, 1.5, 4]), rng.choice([0, 2, eng.HOLD_SECONDS]))
            failure = rng.choice([None, None, "content_policy_violation"])
            kw = dict(failure=failure, fail_at=rng.choice([0.5, 1.0]), id_prefix="video_", id_format="hex48",
                      params={"prompt": f"p{step}", "seconds": 4})
            a = memory.create("openai", "generate", timing=timing, **kw)
            b = shared.create("openai", "generate", timing=timing, **kw)
            assert a.id == b.id  # same generator, same ids
            ids.append((a.id, b.id))
        elif op == "advance_clock":
            dt = rng.choice([0.5, 1, 3])
            mem_clock.advance(dt)
            assert shared_clock.advance(dt) == mem_clock.now()
        else:
            jid = rng.choice(ids)[0]
            try:
                a = memory.get("openai", jid)
            except KeyError:
                with pytest.raises(KeyError):
                    shared.get("openai", jid)
                continue
            b = shared.get("openai", jid)
            if op == "cancel":
                assert memory.cancel(a) == shared.cancel(b)
            elif op == "advance":
                to = rng.choice(eng.ADVANCE_TARGETS)
                assert memory.advance(a, to) == shared.advance(b, to)
            elif op == "delete":
                assert memory.delete(a) == shared.delete(b)
            else:
                assert memory.mark_delivered(a) == shared.mark_delivered(b)
        now = mem_clock.now()
        for jid, _ in ids:
            try:
                a = memory.get("openai", jid)
            except KeyError:
                with pytest.raises(KeyError):
                    shared.get("openai", jid)
                continue
            assert _view(shared, shared.get("openai", jid), now) == _view(memory, a, now)
    assert len(memory) == len(shared) and memory.count("openai") == shared.count("openai")
    for order in ("asc", "desc"):
        page_a, more_a = memory.list("openai", order=order, limit=7)
        page_b, more_b = shared.list("openai", order=order, limit=7)
        assert [j.id for j in page_a] == [j.id for j in page_b] and more_a == more_b
        after = page_a[-1].id
        assert ([j.id for j in memory.list("openai", order=order, after=after, limit=500)[0]]
                == [j.id for j in shared.list("openai", order=order, after=after, limit=500)[0]])
    with pytest.raises(KeyError):
        shared.list("openai", after="video_nope")
    with pytest.raises(ValueError):
        shared.create("openai", "generate", {}, eng.Timing(1, 1), id=ids[0][0])
    shared.reset()
    assert len(shared) == 0 and shared.list("openai")[0] == []


def test_a_record_round_trips_and_a_foreign_one_is_unavailable_not_a_crash():
    store = eng.JobStore(eng.ManualClock())
    job = store.create("fal", "remix", {"prompt": "p", "seconds": 8}, eng.Timing(1, 2), failure="x", source_id="s",
                       failure_message="m", requested=True, logs=True)
    store.cancel(job, 0.5)
    back = decode_job("fal", job.id, encode_job(job))
    assert [getattr(back, s) for s in eng.Job.__slots__ if s != "polls"] == [
        getattr(job, s) for s in eng.Job.__slots__ if s != "polls"]
    from mockserver.store import StoreUnavailable

    with pytest.raises(StoreUnavailable):
        decode_job("fal", "x", "[1, 2")


def test_fault_counter_is_atomic_and_key_is_never_stored(backend):
    fid = backend.fault_add('{"kind":"server_error","times":3}')
    fired = sum(backend.fault_fire(fid, 3) for _ in range(10))
    assert fired == 3 and backend.faults_load() == [(fid, '{"kind":"server_error","times":3}', 3)]
    assert backend.fault_fire(fid + 100, None) is False
    assert [backend.take_token("k", 2, 1.0) is None for _ in range(3)] == [True, True, False]


def test_journal_in_the_store_is_redacted(tmp_path):
    state = MockState(MockConfig(providers=["openai"], port=0, store=f"sqlite:///{tmp_path}/j.db"))
    from mockserver.middleware.journal import JournalEntry

    entry = JournalEntry(1.0, "GET", "/openai/v1/videos?api_key=sk-secret", "openai", "listVideos",
                         {"Authorization": "Bearer sk-secret", "X-Other": "v"})
    entry.status = 200
    state.journal.finish(entry)
    raw = state.backend.list_read("journal", 10)
    assert len(raw) == 1 and "sk-secret" not in raw[0]
    assert [e.to_json()["headers"]["X-Other"] for e in state.journal] == ["v"]
    state.close()


@pytest.mark.parametrize("url,needle", [
    ("", "--store must be"), ("mysql://x", "--store must be"), ("sqlite:", "needs a file path"),
    ("redis://127.0.0.1:99999/0", "port"), ("redis://127.0.0.1:6379/x", "database must be a number"),
    ("redis:///0", "needs a host"),
])
def test_bad_store_urls_are_one_line(url, needle):
    with pytest.raises(StoreError) as err:
        parse_store_url(url)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_store_url_hides_the_password():
    assert parse_store_url("redis://:hunter2@127.0.0.1:6379/0").public == "redis://:***@127.0.0.1:6379/0"
    assert parse_store_url("memory").kind == "memory"


def test_system_clock_is_shared_and_a_new_speed_never_goes_back(backend):
    from mockserver.store.shared import SharedSystemClock

    first = SharedSystemClock(backend, speed=1000)
    other = SharedSystemClock(backend, speed=1000)  # another worker: same anchor, same time
    assert abs(first.now() - other.now()) < 1.0 and first.epoch == other.epoch
    import time

    time.sleep(0.05)
    before = first.now()
    assert before >= 40
    slower = SharedSystemClock(backend, speed=1)  # a restart at another speed continues from now
    assert slower.now() >= before and slower.epoch == first.epoch
    assert slower.to_wall(10.0) == first.epoch + 10.0
