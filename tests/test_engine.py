"""Tests of mockserver.engine: the time-driven lifecycle state machine, job store and clocks."""

from __future__ import annotations

import math
import random
import re
import time

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from mockserver.engine import (
    ACTIVE,
    ADVANCE_TARGETS,
    CANCELLED,
    COMPLETED,
    FAILED,
    HOLD_SECONDS,
    IN_PROGRESS,
    QUEUED,
    STATUS_ORDER,
    TERMINAL,
    Job,
    JobStore,
    ManualClock,
    State,
    SystemClock,
    Timing,
    new_id,
    state_at,
)

PARAMS = {"prompt": "a cat", "seconds": 4, "size": "720x1280", "model": "sora-2"}

durations = st.floats(min_value=0, max_value=120, allow_nan=False, allow_infinity=False)
timings = st.builds(Timing, durations, durations)
failures = st.one_of(st.none(), st.sampled_from(["content_policy_violation", "internal_error"]))
fractions = st.floats(min_value=0, max_value=1, allow_nan=False)
positions = st.integers(min_value=0, max_value=40)


def make_store(start: float = 1000.0, seed: int = 7) -> tuple[JobStore, ManualClock]:
    clock = ManualClock(start)
    return JobStore(clock, random.Random(seed)), clock


def check_state_shape(job: Job, s: State) -> None:
    """Invariants that hold for any single state."""
    assert s.status in STATUS_ORDER
    assert isinstance(s.progress, int) and 0 <= s.progress <= 100
    assert (s.progress == 100) == (s.status == COMPLETED)
    assert isinstance(s.queue_position, int) and 0 <= s.queue_position <= job.queue_position
    if s.status == QUEUED:
        assert s.progress == 0 and s.started_at is None and s.finished_at is None
        assert s.next_change_in is not None and s.next_change_in > 0
    elif s.status == IN_PROGRESS:
        assert s.queue_position == 0 and s.started_at is not None and s.finished_at is None
        assert s.next_change_in is not None and s.next_change_in > 0
    else:
        assert s.terminal and s.queue_position == 0 and s.finished_at is not None
        assert s.next_change_in is None
    if s.started_at is not None:
        assert job.created <= s.started_at
    if s.finished_at is not None:
        assert job.created <= s.finished_at
        if s.started_at is not None:
            assert s.started_at <= s.finished_at
    assert s.completed_at == (s.finished_at if s.status == COMPLETED else None)


def check_transition(prev: State, cur: State) -> None:
    """Invariants between two states of one job read at non-decreasing times."""
    assert STATUS_ORDER[cur.status] >= STATUS_ORDER[prev.status]
    if prev.status in TERMINAL:
        assert cur == prev
    assert cur.progress >= prev.progress
    assert cur.queue_position <= prev.queue_position
    if prev.started_at is not None:
        assert cur.started_at == prev.started_at


# ----------------------------------------------------------------------------------- examples (exact)


def test_lifecycle_exact_values():
    store, clock = make_store(start=100.0)
    job = store.create("openai", "generate", dict(PARAMS), Timing(10, 100), queue_position=10)
    assert job.created == 100.0
    s = store.state(job)
    assert s == State(QUEUED, 0, 10, None, None, 10.0)
    assert state_at(job, 105.0).queue_position == 5
    assert state_at(job, 109.5).queue_position == 1
    s = state_at(job, 110.0)  # boundary belongs to the later status
    assert (s.status, s.progress, s.queue_position, s.started_at) == (IN_PROGRESS, 0, 0, 110.0)
    assert state_at(job, 160.0).progress == 50
    assert state_at(job, 160.0).next_change_in == pytest.approx(50.0)
    assert state_at(job, 209.999).progress == 99
    s = state_at(job, 210.0)
    assert s == State(COMPLETED, 100, 0, 110.0, 210.0, None)
    assert s.completed_at == 210.0
    assert state_at(job, 1e9) == s


def test_failure_goes_through_queue_and_progress_then_fails_at_end():
    store, _ = make_store(start=0.0)
    job = store.create("fal", "remix", dict(PARAMS), Timing(2, 10), failure="content_policy_violation")
    assert state_at(job, 1).status == QUEUED
    assert state_at(job, 5).status == IN_PROGRESS
    assert state_at(job, 11.99).progress == 99
    s = state_at(job, 12)
    assert (s.status, s.progress, s.started_at, s.finished_at, s.completed_at) == (FAILED, 99, 2, 12, None)


def test_failure_at_fraction_keeps_progress_reached():
    store, _ = make_store(start=0.0)
    job = store.create("fal", "remix", dict(PARAMS), Timing(0, 10), failure="boom", fail_at=0.3)
    assert state_at(job, 2.9).status == IN_PROGRESS
    assert state_at(job, 2.9).next_change_in == pytest.approx(0.1)
    s = state_at(job, 3.0)
    assert (s.status, s.progress, s.finished_at) == (FAILED, 30, 3.0)


def test_zero_durations_complete_immediately():
    store, clock = make_store(start=5.0)
    job = store.create("p", "generate", {}, Timing(0, 0))
    assert store.state(job) == State(COMPLETED, 100, 0, 5.0, 5.0, None)
    assert store.cancel(job) is False


def test_cancel_while_queued():
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(10, 10), queue_position=4)
    clock.advance(5)
    assert store.cancel(job) is True
    s = store.state(job)
    assert (s.status, s.progress, s.started_at, s.finished_at, s.queue_position) == (CANCELLED, 0, None, 5, 0)
    clock.advance(100)
    assert store.state(job) == s
    assert store.cancel(job) is False
    assert job.cancelled_at == 5


def test_cancel_in_progress_keeps_progress():
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(1, 10))
    clock.set(4.5)
    assert store.cancel(job) is True
    s = store.state(job)
    assert (s.status, s.progress, s.started_at, s.finished_at) == (CANCELLED, 35, 1, 4.5)
    # a pure function of time: reading an earlier moment shows the job as it was then
    assert state_at(job, 3.0).status == IN_PROGRESS


@pytest.mark.parametrize("failure", [None, "content_policy_violation"])
def test_cancel_after_finish_is_refused_and_changes_nothing(failure):
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(1, 1), failure=failure)
    clock.advance(3)
    before = store.state(job)
    assert before.status == (COMPLETED if failure is None else FAILED)
    assert store.cancel(job) is False
    assert job.cancelled_at is None
    assert store.state(job) == before


def test_cancel_at_exact_end_is_refused():
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(1, 1))
    assert store.cancel(job, now=2.0) is False
    assert store.cancel(job, now=1.999) is True


def test_state_at_ignores_a_cancel_time_outside_the_active_window():
    """state_at is total over Job fields: a cancel time after the end, or before creation, is tamed."""
    store, _ = make_store(start=10.0)
    late = store.create("p", "generate", {}, Timing(1, 1))
    late.cancelled_at = 15.0  # after the natural end (12.0): never took effect
    assert state_at(late, 20.0) == State(COMPLETED, 100, 0, 11.0, 12.0, None)
    early = store.create("p", "generate", {}, Timing(1, 1))
    early.cancelled_at = 5.0  # before creation: cancelled at creation
    assert state_at(early, 20.0) == State(CANCELLED, 0, 0, None, 10.0, None)


def test_default_queue_position_counts_earlier_jobs_not_yet_started():
    store, clock = make_store(start=0.0)
    a = store.create("p", "generate", {}, Timing(10, 1))
    b = store.create("p", "generate", {}, Timing(10, 1))
    other = store.create("q", "generate", {}, Timing(10, 1))
    clock.advance(5)
    c = store.create("p", "generate", {}, Timing(10, 1))
    clock.advance(6)  # a and b have started
    d = store.create("p", "generate", {}, Timing(10, 1))
    assert [j.queue_position for j in (a, b, other, c, d)] == [0, 1, 0, 2, 1]


# ------------------------------------------------------------------------- advance (one job, not the clock)


def test_advance_held_job_through_its_phases_at_the_advance_moments():
    store, clock = make_store(start=100.0)
    job = store.create("p", "generate", {}, Timing(HOLD_SECONDS, HOLD_SECONDS), queue_position=3)
    clock.advance(1e6)
    assert store.state(job) == state_at(job, 100.0 + 1e6)
    assert store.state(job).status == QUEUED and store.state(job).queue_position == 3
    assert store.advance(job, IN_PROGRESS) is True
    s = store.state(job)
    assert (s.status, s.progress, s.queue_position, s.started_at) == (IN_PROGRESS, 0, 0, 100.0 + 1e6)
    assert job.created == 100.0 and job.timing.in_progress == HOLD_SECONDS  # the run stays held
    clock.advance(1e6)
    assert store.state(job).status == IN_PROGRESS and store.state(job).progress == 0
    assert store.advance(job, IN_PROGRESS) is False  # already there
    assert store.advance(job, "end") is True
    s = store.state(job)
    assert s == State(COMPLETED, 100, 0, 100.0 + 1e6, 100.0 + 2e6, None)
    assert job.created == 100.0


def test_advance_queued_job_to_end_goes_straight_through():
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(10, 10))
    clock.set(4.0)
    assert store.advance(job, "end") is True
    assert store.state(job) == State(COMPLETED, 100, 0, 4.0, 4.0, None)
    assert state_at(job, 1e9) == store.state(job)


def test_advance_in_progress_shortens_the_run_only():
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(2, 100))
    clock.set(52.0)
    before = store.state(job)
    assert (before.status, before.progress) == (IN_PROGRESS, 50)
    assert store.advance(job, "end", now=52.0) is True
    assert job.timing == Timing(2, 50)
    assert store.state(job) == State(COMPLETED, 100, 0, 2.0, 52.0, None)
    assert state_at(job, 30.0) == state_at(store.create("p", "generate", {}, Timing(2, 50), now=0.0), 30.0)


@pytest.mark.parametrize("fail_at", [1.0, 0.5])
def test_advance_failing_job_to_end_fails_now(fail_at):
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(HOLD_SECONDS, HOLD_SECONDS), failure="moderation_blocked",
                       fail_at=fail_at)
    clock.set(3.0)
    store.advance(job, IN_PROGRESS)
    clock.set(5.0)
    assert store.advance(job, "end") is True
    s = store.state(job)
    assert (s.status, s.started_at, s.finished_at) == (FAILED, 3.0, 5.0)
    assert s.progress == (99 if fail_at == 1.0 else 50)
    assert job.failure == "moderation_blocked"


def test_advance_queued_failing_job_to_end_fails_at_once_with_no_progress():
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(HOLD_SECONDS, 1), failure="x")
    clock.set(7.0)
    assert store.advance(job, "end") is True
    assert store.state(job) == State(FAILED, 0, 0, 7.0, 7.0, None)


@pytest.mark.parametrize("to", ADVANCE_TARGETS)
@pytest.mark.parametrize("how", ["completed", "failed", "cancelled", "deleted"])
def test_advance_of_a_finished_or_deleted_job_changes_nothing(to, how):
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(1, 1), failure="x" if how == "failed" else None)
    if how == "cancelled":
        store.cancel(job, 0.5)
    if how == "deleted":
        store.delete(job)
    else:
        clock.set(3.0)
    snapshot = {name: getattr(job, name) for name in Job.__slots__}
    before = store.state(job)
    assert store.advance(job, to) is False
    assert {name: getattr(job, name) for name in Job.__slots__} == snapshot
    assert store.state(job) == before


def test_advance_to_in_progress_leaves_a_running_job_alone():
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(1, 10))
    clock.set(2.0)
    timing = job.timing
    assert store.advance(job, IN_PROGRESS) is False
    assert job.timing is timing


def test_advance_before_creation_counts_as_creation_and_bad_arguments_raise():
    store, clock = make_store(start=10.0)
    job = store.create("p", "generate", {}, Timing(5, 5))
    assert store.advance(job, IN_PROGRESS, now=3.0) is True
    assert store.state(job).started_at == 10.0 and job.created == 10.0
    for bad in ("completed", "queued", None, 1):
        with pytest.raises(ValueError):
            store.advance(job, bad)
    with pytest.raises(ValueError):
        store.advance(job, "end", now=float("nan"))


def test_advanced_job_no_longer_counts_in_the_queue_of_later_jobs():
    store, clock = make_store(start=0.0)
    held = store.create("p", "generate", {}, Timing(HOLD_SECONDS, 1))
    assert store.create("p", "generate", {}, Timing(HOLD_SECONDS, 1)).queue_position == 1
    clock.advance(1)
    store.advance(held, IN_PROGRESS)
    assert store.create("p", "generate", {}, Timing(1, 1)).queue_position == 1  # only the other held one


# ------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "3"])
def test_timing_rejects_bad_durations(bad):
    with pytest.raises(ValueError):
        Timing(bad, 1)
    with pytest.raises(ValueError):
        Timing(1, bad)


def test_timing_total():
    assert Timing(1.5, 2).total == 3.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "upscale"},
        {"timing": (1, 2)},
        {"params": "prompt"},
        {"failure": ""},
        {"fail_at": 1.5},
        {"fail_at": -0.1},
        {"queue_position": -1},
        {"queue_position": 1.5},
        {"id_format": "snowflake"},
        {"id": ""},
    ],
)
def test_create_rejects_bad_arguments(kwargs):
    store, _ = make_store()
    args = {"provider": "p", "kind": "generate", "params": {}, "timing": Timing(1, 1)} | kwargs
    with pytest.raises(ValueError):
        store.create(**args)
    assert len(store) == 0


def test_clock_rejects_going_backwards_and_bad_speed():
    clock = ManualClock(10.0, epoch=1_000_000.0)
    assert clock.wall() == 1_000_010.0
    assert clock.to_wall(2.5) == 1_000_002.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(9.0)
    with pytest.raises(ValueError):
        clock.advance(float("nan"))
    assert clock.advance(2) == 12.0 and clock.set(20) == 20.0
    for speed in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            SystemClock(speed)


def test_system_clock_is_scaled_virtual_time():
    clock = SystemClock(speed=1000.0)
    t0, w0 = clock.now(), clock.wall()
    assert abs(w0 - time.time()) < 5  # epoch is "now" at construction, virtual time starts near 0
    time.sleep(0.02)
    t1 = clock.now()
    assert t1 - t0 >= 20.0  # >= 0.02 real seconds * 1000
    assert clock.to_wall(t1) == clock.epoch + t1


# ---------------------------------------------------------------------------------------- ids, store

ID_PATTERNS = {
    "uuid4": r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    "hex32": r"[0-9a-f]{32}",
    "hex48": r"[0-9a-f]{48}",
    "ulid": r"[0-7][0-9A-HJKMNP-TV-Z]{25}",
    "opaque": r"[0-9A-Za-z]{32}",
}


@pytest.mark.parametrize("fmt", sorted(ID_PATTERNS))
def test_id_formats_and_reproducibility(fmt):
    ids = [new_id(random.Random(42), "video_", fmt, wall_ms=1_793_491_200_000) for _ in range(2)]
    assert ids[0] == ids[1]  # same seed, same id
    assert re.fullmatch("video_" + ID_PATTERNS[fmt], ids[0]), ids[0]
    rng = random.Random(1)
    many = {new_id(rng, "", fmt, wall_ms=5) for _ in range(500)}
    assert len(many) == 500


def test_ulid_encodes_time_and_sorts_by_time():
    rng = random.Random(3)
    a = new_id(rng, "", "ulid", wall_ms=1000)
    b = new_id(rng, "", "ulid", wall_ms=2000)
    assert a < b
    decoded = 0
    for c in a[:10]:
        decoded = decoded * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(c)
    assert decoded == 1000
    with pytest.raises(ValueError):
        new_id(rng, "", "ulid")
    with pytest.raises(ValueError):
        new_id(rng, "", "nope")


def test_store_ids_are_reproducible_with_seed():
    def run() -> list[str]:
        store, _ = make_store(seed=123)
        return [store.create("openai", "generate", {}, Timing(1, 1), id_prefix="video_",
                             id_format="hex48").id for _ in range(5)]

    first = run()
    assert first == run()
    assert all(re.fullmatch(r"video_[0-9a-f]{48}", i) for i in first)
    store, clock = make_store(start=0.0)
    job = store.create("aig", "generate", {}, Timing(1, 1), id_prefix="job_", id_format="ulid")
    assert job.id.startswith("job_")


def test_get_delete_len_reset():
    store, _ = make_store()
    a = store.create("openai", "generate", dict(PARAMS), Timing(1, 1))
    b = store.create("openai", "remix", {"prompt": "x"}, Timing(1, 1), source_id=a.id)
    c = store.create("fal", "remix", {}, Timing(1, 1), id="req-1")
    assert store.get("openai", a.id) is a and store.get("fal", "req-1") is c
    assert b.source_id == a.id and b.kind == "remix"
    assert len(store) == 3 and store.count("openai") == 2
    with pytest.raises(KeyError):
        store.get("openai", "req-1")  # other provider
    with pytest.raises(KeyError):
        store.get("openai", "missing")
    with pytest.raises(ValueError):
        store.create("fal", "generate", {}, Timing(1, 1), id="req-1")
    assert store.delete(a) is True and store.delete(a) is False
    with pytest.raises(KeyError):
        store.get("openai", a.id)
    assert store.cancel(a) is False  # deleted jobs cannot be cancelled
    assert len(store) == 2 and store.count("openai") == 1
    store.reset()
    assert len(store) == 0
    with pytest.raises(KeyError):
        store.get("fal", "req-1")
    assert store.list("openai") == ([], False)


def test_list_orders_and_pages():
    store, clock = make_store(start=0.0)
    jobs = []
    for i in range(7):
        jobs.append(store.create("p", "generate", {"i": i}, Timing(1, 1)))
        if i % 3 == 0:
            clock.advance(1)  # some jobs share a creation time: insertion order breaks ties
    store.create("other", "generate", {}, Timing(1, 1))
    store.delete(jobs[2])
    live = [j for j in jobs if not j.deleted]
    assert store.list("p", "asc", limit=100) == (live, False)
    assert store.list("p", "desc", limit=100) == (live[::-1], False)
    assert store.list("p", "asc", limit=2) == (live[:2], True)
    assert store.list("p", "asc", limit=len(live)) == (live, False)
    assert store.list("p", "asc", after=jobs[1].id, limit=2) == ([jobs[3], jobs[4]], True)
    # a deleted job still works as a cursor
    assert store.list("p", "asc", after=jobs[2].id, limit=10) == (jobs[3:], False)
    assert store.list("p", "desc", after=jobs[2].id, limit=10) == ([jobs[1], jobs[0]], False)
    assert store.list("p", "desc", after=jobs[0].id) == ([], False)
    assert store.list("p", "asc", limit=0) == ([], True)
    with pytest.raises(KeyError):
        store.list("other", after=jobs[0].id)
    with pytest.raises(ValueError):
        store.list("p", order="newest")
    with pytest.raises(ValueError):
        store.list("p", limit=-1)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=25),
    limit=st.integers(min_value=1, max_value=6),
    order=st.sampled_from(["asc", "desc"]),
    deleted=st.sets(st.integers(min_value=0, max_value=24)),
    gaps=st.lists(st.sampled_from([0.0, 0.0, 0.5, 3.0]), min_size=25, max_size=25),
)
def test_pagination_walk_visits_every_live_job_once_in_order(n, limit, order, deleted, gaps):
    store, clock = make_store(start=0.0)
    jobs = []
    for i in range(n):
        jobs.append(store.create("p", "generate", {}, Timing(1, 1)))
        clock.advance(gaps[i])
    for i in deleted:
        if i < n:
            store.delete(jobs[i])
    expected = [j for j in jobs if not j.deleted]
    expected.sort(key=lambda j: (j.created, j.seq), reverse=(order == "desc"))
    seen, after = [], None
    while True:
        page, has_more = store.list("p", order, after, limit)
        assert len(page) <= limit
        seen.extend(page)
        if not has_more:
            break
        assert page
        after = page[-1].id
    assert [j.id for j in seen] == [j.id for j in expected]


# ------------------------------------------------------------------------------- properties (single job)


@settings(max_examples=1500, deadline=None)
@given(
    timing=timings,
    failure=failures,
    fail_at=fractions,
    position=positions,
    offsets=st.lists(st.floats(min_value=-5, max_value=300, allow_nan=False), min_size=1, max_size=30),
    cancel_offset=st.one_of(st.none(), st.floats(min_value=0, max_value=300, allow_nan=False)),
    start=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_invariants_over_any_read_sequence(timing, failure, fail_at, position, offsets, cancel_offset, start):
    store, clock = make_store(start=start)
    job = store.create("p", "generate", dict(PARAMS), timing, failure=failure, fail_at=fail_at,
                       queue_position=position)
    job_id = job.id
    reads = sorted(start + o for o in offsets)
    prev = None
    cancelled = False
    for t in reads:
        if cancel_offset is not None and not cancelled and t >= start + cancel_offset:
            was = state_at(job, start + cancel_offset)
            ok = store.cancel(job, start + cancel_offset)
            assert ok == (was.status in ACTIVE)
            cancelled = True
            if ok:
                now_state = state_at(job, start + cancel_offset)
                assert now_state.status == CANCELLED and now_state.progress == was.progress
            else:
                assert job.cancelled_at is None
        s = state_at(job, t)
        assert state_at(job, t) == s  # pure
        check_state_shape(job, s)
        if prev is not None:
            check_transition(prev, s)
        # integer wall timestamps stay ordered too
        stamps = [job.created, s.started_at, s.finished_at]
        ints = [int(clock.to_wall(x)) for x in stamps if x is not None]
        assert ints == sorted(ints)
        prev = s
    assert job.id == job_id
    final = state_at(job, start + 10_000)
    if job.cancelled_at is not None:
        assert final.status == CANCELLED
    else:
        assert final.status == (COMPLETED if failure is None else FAILED)


@settings(max_examples=600, deadline=None)
@given(timing=timings, failure=failures, fail_at=fractions, position=positions,
       offset=st.floats(min_value=-5, max_value=300, allow_nan=False))
@example(timing=Timing(0.0, 7.428941441937406e-08), failure="x", fail_at=0.03125, position=0, offset=0.0)
@example(timing=Timing(0.1, 1e-300), failure=None, fail_at=1.0, position=3, offset=-5.0)
def test_next_change_in_points_at_the_next_status_change(timing, failure, fail_at, position, offset):
    store, _ = make_store(start=50.0)
    job = store.create("p", "generate", {}, timing, failure=failure, fail_at=fail_at, queue_position=position)
    now = 50.0 + offset
    s = state_at(job, now)
    if s.terminal:
        assert s.next_change_in is None
        return
    nxt = state_at(job, now + s.next_change_in)
    assert STATUS_ORDER[nxt.status] > STATUS_ORDER[s.status]
    before = now + s.next_change_in * (1 - 1e-6)
    assume(now < before < now + s.next_change_in)
    assert state_at(job, before).status == s.status


@settings(max_examples=200, deadline=None)
@given(q=st.floats(min_value=0.1, max_value=100), p=st.floats(min_value=0.1, max_value=100),
       frac=st.floats(min_value=0, max_value=0.999))
def test_progress_is_linear_in_progress_phase(q, p, frac):
    store, _ = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(q, p))
    t = q + frac * p
    s = state_at(job, t)
    assume(s.status == IN_PROGRESS)
    assert abs(s.progress - 100 * frac) <= 1.0 + 1e-6
    assert s.progress < 100


@settings(max_examples=1500, deadline=None)
@given(
    timing=st.builds(Timing, st.one_of(durations, st.just(HOLD_SECONDS)), st.one_of(durations, st.just(HOLD_SECONDS))),
    failure=failures,
    fail_at=fractions,
    position=positions,
    steps=st.lists(st.tuples(st.floats(min_value=0, max_value=150, allow_nan=False),
                             st.sampled_from(["read", "read", IN_PROGRESS, "end", "cancel"])),
                   min_size=1, max_size=30),
    start=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
@example(timing=Timing(0.0, 100.0), failure="x", fail_at=0.29, position=0,
         steps=[(28.999999999999996, "read"), (0.0, "end")], start=0.0)
@example(timing=Timing(0.0, 3e-10), failure="x", fail_at=0.5, position=0,
         steps=[(1.2e-10, "read"), (0.0, "end")], start=1e6)
def test_invariants_over_any_sequence_of_reads_and_advances(timing, failure, fail_at, position, steps, start):
    """Whatever is advanced, and when: status rank, progress and started_at never go back, queue position
    never goes up, terminal stays final, created never changes, and an advance reaches its target."""
    store, clock = make_store(start=start)
    job = store.create("p", "generate", dict(PARAMS), timing, failure=failure, fail_at=fail_at,
                       queue_position=position)
    created, prev = job.created, store.state(job)
    for dt, action in steps:
        clock.advance(dt)
        now = clock.now()
        before = store.state(job)
        check_transition(prev, before)
        if action in ADVANCE_TARGETS:
            moved = store.advance(job, action)
            target = 1 if action == IN_PROGRESS else 2
            assert moved == (STATUS_ORDER[before.status] < target)
            after = store.state(job)
            assert STATUS_ORDER[after.status] >= target
            if moved:  # phases end at the advance moment (the float at or just below it: now - start
                # may have no float x with start + x == now exactly)
                assert after.started_at is not None and after.started_at <= now
                if before.started_at is None:
                    assert now - after.started_at <= math.ulp(now)  # the queue phase ended now
                if after.terminal:
                    assert now - after.finished_at <= math.ulp(now)
            else:
                assert after == before
        elif action == "cancel":
            store.cancel(job)
        s = store.state(job)
        check_state_shape(job, s)
        check_transition(before, s)
        assert job.created == created
        prev = s
    final = state_at(job, clock.now() + 3 * HOLD_SECONDS)  # past any end, held phases included
    assert final.terminal and (prev.status not in TERMINAL or final == prev)


# ---------------------------------------------------------------------------------- stateful machine


class EngineMachine(RuleBasedStateMachine):
    """Creates jobs, advances a ManualClock, cancels, advances single jobs and deletes at random moments,
    checks invariants."""

    jobs = Bundle("jobs")

    @initialize(seed=st.integers(min_value=0, max_value=2**32 - 1),
                start=st.floats(min_value=0, max_value=1e6, allow_nan=False))
    def setup(self, seed, start):
        self.clock = ManualClock(start)
        self.store = JobStore(self.clock, random.Random(seed))
        self.last: dict[str, State] = {}
        self.ids: dict[str, str] = {}  # id -> provider
        self.objs: dict[str, Job] = {}
        self.deleted: set[str] = set()

    @rule(target=jobs, provider=st.sampled_from(["openai", "fal"]), timing=timings, failure=failures,
          fail_at=fractions, kind=st.sampled_from(["generate", "remix"]),
          fmt=st.sampled_from(["uuid4", "hex48", "ulid"]))
    def create(self, provider, timing, failure, fail_at, kind, fmt):
        job = self.store.create(provider, kind, dict(PARAMS), timing, failure=failure, fail_at=fail_at,
                                id_format=fmt)
        assert job.id not in self.ids
        assert job.created == self.clock.now()
        s = self.store.state(job)
        check_state_shape(job, s)
        self.ids[job.id] = provider
        self.objs[job.id] = job
        self.last[job.id] = s
        return job

    @rule(dt=st.one_of(st.floats(min_value=0, max_value=5), st.floats(min_value=0, max_value=200)))
    def advance(self, dt):
        self.clock.advance(dt)

    @rule(job=jobs)
    def cancel(self, job):
        before = self.store.state(job)
        ok = self.store.cancel(job)
        after = self.store.state(job)
        if job.id in self.deleted:
            assert ok is False and after == before
        elif before.status in ACTIVE:
            assert ok is True
            assert after.status == CANCELLED and after.progress == before.progress
            assert after.finished_at == self.clock.now()
        else:
            assert ok is False and after == before

    @rule(job=jobs, to=st.sampled_from(ADVANCE_TARGETS))
    def advance_job(self, job, to):
        before = self.store.state(job)
        created = job.created
        moved = self.store.advance(job, to)
        after = self.store.state(job)
        target = 1 if to == IN_PROGRESS else 2
        if job.id in self.deleted or STATUS_ORDER[before.status] >= target:
            assert moved is False and after == before
        else:
            assert moved is True and STATUS_ORDER[after.status] >= target
        assert job.created == created
        check_transition(before, after)

    @rule(job=consumes(jobs))
    def delete(self, job):
        assert self.store.delete(job) is True
        self.deleted.add(job.id)
        with pytest.raises(KeyError):
            self.store.get(job.provider, job.id)

    @precondition(lambda self: len(self.ids) > 0)
    @rule(provider=st.sampled_from(["openai", "fal"]), order=st.sampled_from(["asc", "desc"]),
          limit=st.integers(min_value=1, max_value=5))
    def walk_list(self, provider, order, limit):
        seen, after = [], None
        while True:
            page, more = self.store.list(provider, order, after, limit)
            seen.extend(page)
            if not more:
                break
            after = page[-1].id
        expected = [i for i, p in self.ids.items() if p == provider and i not in self.deleted]
        if order == "desc":
            expected.reverse()
        assert [j.id for j in seen] == expected
        created = [j.created for j in seen]
        assert created == sorted(created, reverse=(order == "desc"))

    @invariant()
    def states_move_forward(self):
        if not hasattr(self, "store"):
            return
        now = self.clock.now()
        assert len(self.store) == len(self.ids) - len(self.deleted)
        for job_id, provider in self.ids.items():
            job = self.objs[job_id]
            assert job.id == job_id and job.provider == provider
            if job_id not in self.deleted:
                assert self.store.get(provider, job_id) is job
            s = state_at(job, now)
            check_state_shape(job, s)
            check_transition(self.last[job_id], s)
            self.last[job_id] = s


EngineMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEngineMachine = EngineMachine.TestCase


def test_state_is_not_stored_on_the_job():
    """No per-job timer or cached state: reading never mutates the job."""
    store, clock = make_store(start=0.0)
    job = store.create("p", "generate", {}, Timing(1, 1), failure="x", fail_at=0.5)
    snapshot = {name: getattr(job, name) for name in Job.__slots__}
    for t in (0, 0.5, 1, 1.4, 1.5, 2, 100):
        state_at(job, t)
        store.state(job, t)
    assert {name: getattr(job, name) for name in Job.__slots__} == snapshot
    assert not hasattr(job, "__dict__")
    assert math.isclose(state_at(job, 1.5).finished_at, 1.5)
