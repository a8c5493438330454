"""Lifecycle engine of the mock: a job's state is a pure function of time.

A job stores only what was decided when it was submitted (creation time, timing profile, an injected
failure, a queue position) plus the moment it was cancelled, if it was.  Its state (status, progress,
queue position, timestamps) is *computed* whenever it is read, by :func:`state_at`.  There is no asyncio
task, timer or thread per job, so one process can hold a very large number of jobs, and tests drive the
lifecycle with a :class:`ManualClock` instead of sleeping.  See /work/shared/DESIGN.md, "The lifecycle
engine: state is a function of time".

Times are *virtual seconds* (floats) read from a :class:`Clock`.  ``clock.to_wall(t)`` turns a virtual time
into unix seconds; timestamps reported to clients are ``int(clock.to_wall(t))`` (floor of a monotone
function, so ordering is preserved).

Neutral statuses (mapped onto each provider's vocabulary by ``statuses`` in ``specs/<id>/provider.yaml``):
``queued -> in_progress -> completed | failed | cancelled``.

Invariants guaranteed for any job and any non-decreasing sequence of read times (tested with hypothesis
in tests/test_engine.py):

- status only moves forward, and a terminal status stays terminal;
- progress is an integer in 0..100, never decreases, and is 100 exactly when the status is ``completed``
  (a failed or cancelled job keeps the progress it had reached, at most 99);
- queue position is an integer >= 0 that never increases, and is 0 once the job has left the queue;
- the id never changes; ``created <= started_at <= finished_at`` whenever they are set.

Tests and clients can also move one job on without touching the clock: a phase of :data:`HOLD_SECONDS`
(``hold`` in the ``X-Mock-Timing`` header, :mod:`mockserver.timing`) lasts until :meth:`JobStore.advance`
ends it.  ``advance`` gives the job a new :class:`Timing` that only ever *shortens* a phase still running,
so every invariant above holds across it, and ``created`` never changes.
"""

from __future__ import annotations

import heapq
import math
import random
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from specs.ids import ID_FORMATS, new_id

__all__ = [
    "ACTIVE",
    "ADVANCE_TARGETS",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "HOLD_SECONDS",
    "ID_FORMATS",
    "IN_PROGRESS",
    "KINDS",
    "QUEUED",
    "STATUS_ORDER",
    "TERMINAL",
    "Clock",
    "Engine",
    "Job",
    "JobStore",
    "JobStoreInterface",
    "ManualClock",
    "State",
    "SystemClock",
    "Timing",
    "advanced",
    "check_create",
    "end_time",
    "new_id",
    "state_at",
]

# --------------------------------------------------------------------------------------------- statuses

QUEUED = "queued"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

Status = Literal["queued", "in_progress", "completed", "failed", "cancelled"]

#: Rank of each status along the lifecycle; a job's rank never decreases over time.
STATUS_ORDER: dict[str, int] = {QUEUED: 0, IN_PROGRESS: 1, COMPLETED: 2, FAILED: 2, CANCELLED: 2}
#: Statuses a job never leaves.
TERMINAL: frozenset[str] = frozenset({COMPLETED, FAILED, CANCELLED})
#: Statuses in which a job can still be cancelled.
ACTIVE: frozenset[str] = frozenset({QUEUED, IN_PROGRESS})

#: Targets of :meth:`JobStore.advance`: ``in_progress`` (end the queue phase now) and ``end`` (end the
#: job now: completed, or failed when it carries an injected failure).
ADVANCE_TARGETS: tuple[str, ...] = (IN_PROGRESS, "end")

#: Length in virtual seconds of a *held* phase (``hold`` in ``X-Mock-Timing``): about 31,700 years, so
#: the phase lasts until :meth:`JobStore.advance` ends it.  Finite, as :class:`Timing` requires.
HOLD_SECONDS = 1e12

#: Kinds of job: a fresh generation, a remix of a finished video (OpenAI ``POST /videos/{id}/remix``,
#: fal ``sora-2/video-to-video/remix``, sunra ``openai/sora-2/video-to-video``), and OpenAI's newer
#: ``POST /videos/edits`` and ``POST /videos/extensions`` (openai 3.54.0 ``resources/videos.py``).
KINDS: frozenset[str] = frozenset({"generate", "remix", "edit", "extend"})

# ----------------------------------------------------------------------------------------------- clocks

#: Default epoch of a ManualClock: 2026-11-01T00:00:00Z, so manual runs report plausible, stable times.
DEFAULT_EPOCH = 1_793_491_200.0


class Clock(Protocol):
    """What the engine needs from a clock.

    ``now()`` returns virtual seconds (float, never decreasing); ``wall()`` returns unix seconds (float)
    for the current moment; ``to_wall(t)`` converts a virtual time ``t`` to unix seconds.
    """

    def now(self) -> float: ...

    def wall(self) -> float: ...

    def to_wall(self, t: float) -> float: ...


class SystemClock:
    """Real time, optionally sped up.

    Args:
        speed: virtual seconds per real second (> 0, finite).  ``speed=10`` makes a 2 s job finish in
            0.2 s of real time.  Reported wall times then run ``speed`` times faster than real time too,
            so ``completed_at - created_at`` stays equal to the job's timing.
        epoch: unix seconds at virtual time 0; defaults to ``time.time()`` at construction.

    Raises:
        ValueError: if ``speed`` is not a positive finite number.
    """

    __slots__ = ("speed", "epoch", "_t0")

    def __init__(self, speed: float = 1.0, epoch: float | None = None) -> None:
        if not isinstance(speed, int | float) or not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"clock speed must be a positive finite number, got {speed!r}")
        self.speed = float(speed)
        self._t0 = time.monotonic()
        self.epoch = float(time.time() if epoch is None else epoch)

    def now(self) -> float:
        """Virtual seconds since construction (monotonic, scaled by ``speed``)."""
        return (time.monotonic() - self._t0) * self.speed

    def wall(self) -> float:
        """Unix seconds of the current virtual moment (``epoch + now()``)."""
        return self.epoch + self.now()

    def to_wall(self, t: float) -> float:
        """Unix seconds of virtual time ``t`` (seconds)."""
        return self.epoch + t


class ManualClock:
    """A clock that moves only when told to (tests, reproducible runs).

    Args:
        start: initial virtual time in seconds (finite).
        epoch: unix seconds at virtual time 0 (default 2026-11-01T00:00:00Z).

    Time never goes backwards: :meth:`advance` with a negative amount and :meth:`set` to an earlier time
    raise ``ValueError``; the engine's monotonicity invariants depend on it.
    """

    __slots__ = ("_now", "epoch", "_lock")

    def __init__(self, start: float = 0.0, epoch: float = DEFAULT_EPOCH) -> None:
        if not math.isfinite(start):
            raise ValueError(f"clock start must be finite, got {start!r}")
        self._now = float(start)
        self.epoch = float(epoch)
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current virtual time in seconds."""
        return self._now

    def wall(self) -> float:
        """Unix seconds of the current virtual moment (``epoch + now()``)."""
        return self.epoch + self._now

    def to_wall(self, t: float) -> float:
        """Unix seconds of virtual time ``t`` (seconds)."""
        return self.epoch + t

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0, finite); returns the new virtual time."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"can only advance by a finite amount >= 0 seconds, got {seconds!r}")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, t: float) -> float:
        """Jump to virtual time ``t`` seconds (>= the current time, finite); returns it."""
        if not math.isfinite(t):
            raise ValueError(f"clock time must be finite, got {t!r}")
        with self._lock:
            if t < self._now:
                raise ValueError(f"clock cannot go backwards: {t!r} < {self._now!r}")
            self._now = float(t)
            return self._now


# ------------------------------------------------------------------------------------------ jobs, state


@dataclass(frozen=True, slots=True)
class Timing:
    """How long a job spends in each active status, in seconds (finite, >= 0).

    Defaults per provider come from ``mock.queued_seconds`` / ``mock.in_progress_seconds`` in
    ``specs/<id>/provider.yaml``, per request from the ``X-Mock-Timing`` header (:mod:`mockserver.timing`;
    ``hold`` is :data:`HOLD_SECONDS`).  One Timing instance can (and should) be shared by many jobs;
    :meth:`JobStore.advance` gives the job it moves a new instance of its own.

    Raises:
        ValueError: on a negative, infinite or NaN duration.
    """

    queued: float
    in_progress: float

    def __post_init__(self) -> None:
        for name in ("queued", "in_progress"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"Timing.{name} must be a finite number of seconds >= 0, got {v!r}")

    @property
    def total(self) -> float:
        """Seconds from submission to the natural end of the job (queued + in_progress)."""
        return self.queued + self.in_progress


class Job:
    """One submitted job.  Holds only decisions made at submit time, plus cancel time and deleted flag.

    Attributes:
        id: provider-formatted id (never changes).
        provider: provider id (``specs/<id>``).
        kind: one of :data:`KINDS`.
        created: virtual seconds at submission.
        timing: a :class:`Timing` (replaced, never mutated, by :meth:`JobStore.advance`).
        failure: ``None``, or a failure code string (e.g. ``"content_policy_violation"``); the job then goes
            through queued and in progress and fails at fraction ``fail_at`` of its in-progress phase.
        fail_at: fraction in [0, 1] of the in-progress phase at which an injected failure happens
            (1.0 = at the very end).  Ignored when ``failure`` is None.
        cancelled_at: virtual seconds of a successful cancel, or None.
        deleted: True once deleted (the job is then invisible to get/list).
        source_id: id of the source video for remix/edit/extend, else None.
        params: small dict of the neutral request parameters, e.g. ``{"prompt": str, "seconds": int,
            "size": "WxH", "model": str}`` plus provider extras from provider.yaml ``mock.params``.  The
            engine never reads it, and nothing else is kept in it.
        queue_position: position in the provider's queue at submission (int >= 0).
        seq: insertion index within the provider (stable ordering; internal).

    What the mock learns about a job after submission is kept in explicit fields (never in ``params``),
    so the admin API can show it and :meth:`JobStore.reset` forgets it with the job:

        failure_message: message of the injected failure (``None``: the family's default message).
        requested: True when the job was created by a provider request whose answer named it (a queue
            submit or a blocking run), False for a job seeded through the admin API.
        logs: the ``logs`` flag its submit asked for (queue family), or None when it asked nothing.
        delivered: True once its output was delivered (result read, bytes downloaded, webhook sent): a
            provider that deletes delivered outputs (fal ``delete_video``) then refuses it as a source.
        polls: ``{caller: (virtual seconds of the last answered poll, (queued, in_progress) timing then)}``
            for providers that answer polls closer than ``mock.min_poll_interval_seconds`` with 304, else
            None (no dict is allocated for jobs nobody polls that way).

    Do not construct directly; use :meth:`JobStore.create`.  State is read with :func:`state_at`.
    """

    __slots__ = (
        "id",
        "provider",
        "kind",
        "created",
        "timing",
        "failure",
        "fail_at",
        "cancelled_at",
        "deleted",
        "source_id",
        "params",
        "queue_position",
        "seq",
        "failure_message",
        "requested",
        "logs",
        "delivered",
        "polls",
    )

    def __init__(
        self,
        id: str,
        provider: str,
        kind: str,
        created: float,
        timing: Timing,
        failure: str | None,
        fail_at: float,
        source_id: str | None,
        params: dict[str, Any],
        queue_position: int,
        seq: int,
    ) -> None:
        self.id = id
        self.provider = provider
        self.kind = kind
        self.created = created
        self.timing = timing
        self.failure = failure
        self.fail_at = fail_at
        self.cancelled_at: float | None = None
        self.deleted = False
        self.source_id = source_id
        self.params = params
        self.queue_position = queue_position
        self.seq = seq
        self.failure_message: str | None = None
        self.requested = False
        self.logs: bool | None = None
        self.delivered = False
        self.polls: dict[str, tuple[float, tuple[float, float]]] | None = None

    def __repr__(self) -> str:
        return (
            f"Job(id={self.id!r}, provider={self.provider!r}, kind={self.kind!r}, created={self.created!r}, "
            f"timing={self.timing!r}, failure={self.failure!r}, cancelled_at={self.cancelled_at!r}, "
            f"deleted={self.deleted!r})"
        )


class State(NamedTuple):
    """A job's state at one moment (immutable).

    Fields:
        status: ``queued | in_progress | completed | failed | cancelled``.
        progress: int 0..100; 0 while queued, rising linearly while in progress, never 100 before
            completion, exactly 100 iff completed; failed/cancelled keep the progress reached (<= 99).
        queue_position: int >= 0; ceil(remaining queued fraction * initial position) while queued, 0 after.
        started_at: virtual seconds the job entered in_progress, or None (not yet / never started).
        finished_at: virtual seconds the job reached its terminal status, or None while active.
        next_change_in: seconds until the next status change (a poll hint), or None when terminal;
            ``state_at(job, now + next_change_in)`` has a later status (exact in floating point).
    """

    status: str
    progress: int
    queue_position: int
    started_at: float | None
    finished_at: float | None
    next_change_in: float | None

    @property
    def completed_at(self) -> float | None:
        """``finished_at`` if the job completed successfully, else None."""
        return self.finished_at if self.status == COMPLETED else None

    @property
    def terminal(self) -> bool:
        """True for completed, failed and cancelled."""
        return self.status in TERMINAL


def _progress(started: float, in_progress: float, t: float) -> int:
    """Progress (0..99) at virtual time ``t`` of a job that started at ``started``; capped below 100."""
    if t <= started or in_progress <= 0:
        return 0
    fraction = (t - started) / in_progress  # may be inf for a subnormal duration
    return 99 if fraction >= 0.99 else min(99, math.floor(100.0 * fraction))


def _until(boundary: float, now: float) -> float:
    """Seconds from ``now`` to ``boundary`` such that ``now + result >= boundary`` holds in floats."""
    d = boundary - now
    while now + d < boundary:
        d = math.nextafter(d, math.inf)
    return d


def _span(start: float, target: float, hi: float, scale: float = 1.0) -> float:
    """A duration ``x >= 0`` such that a phase from ``start`` lasting ``scale * x`` ends at ``target``:
    ``start + scale * x <= target`` in floating point (as :func:`state_at` computes it), equal to it
    whenever a float ``x`` near ``hi`` gives that, with ``x`` as small as possible then.

    Args:
        start, target: virtual seconds, ``start <= target``.
        hi: the estimate ``(target - start) / scale``, a finite float >= 0 (rounding may put it an ulp or
            two off).
        scale: the fraction of the phase that counts (an injected failure's ``fail_at``), in (0, 1].

    When the estimate overshoots, bisects the bit patterns of ``[0, hi]`` (ordered like their values for
    non-negative floats: at most 64 steps); when it ends short of ``target``, climbs up to 4 floats.
    """
    def end(x: float) -> float:
        return start + scale * x

    x = hi
    if end(x) > target:
        lo_bits, hi_bits = 0, struct.unpack("<q", struct.pack("<d", hi))[0]
        while hi_bits - lo_bits > 1:
            mid = (lo_bits + hi_bits) // 2
            if end(struct.unpack("<d", struct.pack("<q", mid))[0]) <= target:
                lo_bits = mid
            else:
                hi_bits = mid
        x = struct.unpack("<d", struct.pack("<q", lo_bits))[0]
    for _ in range(4):
        if end(x) >= target:
            break
        up = math.nextafter(x, math.inf)
        if not end(up) <= target:
            break
        x = up
    return x


def state_at(job: Job, now: float) -> State:
    """Compute ``job``'s state at virtual time ``now`` (seconds).  Pure: depends only on its arguments.

    Boundaries belong to the later status: at ``now == created + queued`` the job is in progress; at the
    end of the in-progress phase it is completed (or failed).  A cancel recorded at time ``c`` takes effect
    at ``c`` (so reading a time earlier than ``c`` shows the job as it was then).
    """
    timing = job.timing
    created = job.created
    started = created + timing.queued
    if job.failure is None:
        end = started + timing.in_progress
        end_status = COMPLETED
    else:
        end = started + job.fail_at * timing.in_progress
        end_status = FAILED
    cancelled = job.cancelled_at
    if cancelled is not None and cancelled < end:
        end = max(cancelled, created)
        end_status = CANCELLED

    if now >= end:  # terminal
        if end_status == COMPLETED:
            return State(COMPLETED, 100, 0, started, end, None)
        ever_started = end >= started
        return State(
            end_status,
            _progress(started, timing.in_progress, end),
            0,
            started if ever_started else None,
            end,
            None,
        )
    if now < started:  # queued
        pos = job.queue_position
        if pos and timing.queued > 0:
            remaining = (started - now) / timing.queued  # fraction of the queue wait left; may be inf
            if remaining < 1:
                pos = min(pos, math.ceil(pos * remaining))
        return State(QUEUED, 0, pos, None, None, _until(min(started, end), now))
    return State(IN_PROGRESS, _progress(started, timing.in_progress, now), 0, started, None, _until(end, now))


# ------------------------------------------------------------------------------------------------- ids

# ID_FORMATS and new_id live in the kernel (specs/ids.py): the conformance suite draws unknown ids with them.


# ------------------------------------------------------------------------------- shared by every store


def check_create(kind: str, timing: Any, params: Any, failure: Any, fail_at: Any, queue_position: Any,
                 id_format: str) -> None:
    """Check the arguments of a job store's ``create`` (every backend applies the same rules).

    Raises:
        ValueError: an unknown kind or id format, a bad failure/fail_at/queue_position, non-dict params or a
            non-Timing timing (one line naming the argument).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {sorted(KINDS)}")
    if not isinstance(timing, Timing):
        raise ValueError(f"timing must be a Timing, got {type(timing).__name__}")
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict, got {type(params).__name__}")
    if failure is not None and (not isinstance(failure, str) or not failure):
        raise ValueError(f"failure must be None or a non-empty code string, got {failure!r}")
    if isinstance(fail_at, bool) or not isinstance(fail_at, int | float) or not 0.0 <= fail_at <= 1.0:
        raise ValueError(f"fail_at must be a fraction in [0, 1], got {fail_at!r}")
    if queue_position is not None and (
        isinstance(queue_position, bool) or not isinstance(queue_position, int) or queue_position < 0
    ):
        raise ValueError(f"queue_position must be an int >= 0, got {queue_position!r}")
    if id_format not in ID_FORMATS:
        raise ValueError(f"unknown id format {id_format!r}; expected one of {sorted(ID_FORMATS)}")


def end_time(job: Job) -> float:
    """Virtual seconds at which ``job`` reaches its terminal status (completed, failed or cancelled), as
    :func:`state_at` computes it: ``state_at(job, t).terminal`` iff ``t >= end_time(job)``.  A held job ends
    about :data:`HOLD_SECONDS` from now.  Used to schedule webhook deliveries without a timer per job."""
    timing = job.timing
    started = job.created + timing.queued
    end = started + (timing.in_progress if job.failure is None else job.fail_at * timing.in_progress)
    cancelled = job.cancelled_at
    if cancelled is not None and cancelled < end:
        end = max(cancelled, job.created)
    return end


def advanced(job: Job, to: str, t: float) -> tuple[Timing, float] | None:
    """The new ``(timing, fail_at)`` that moves ``job`` so that phase ``to`` begins at virtual time ``t``, or
    None when the job is deleted or already at or past ``to`` at ``t``.  Pure: the job is not changed (see
    :meth:`JobStore.advance` for the rules; every store applies them through this function).

    Args:
        job: the job; ``to``: one of :data:`ADVANCE_TARGETS`; ``t``: virtual seconds (finite).

    Raises:
        ValueError: ``to`` is not one of :data:`ADVANCE_TARGETS`, or ``t`` is not finite.
    """
    if not isinstance(to, str) or to not in ADVANCE_TARGETS:
        raise ValueError(f"advance target must be one of {', '.join(ADVANCE_TARGETS)}, got {to!r}")
    if not math.isfinite(t):
        raise ValueError(f"advance time must be finite, got {t!r}")
    if job.deleted:
        return None
    t = max(t, job.created)
    before = state_at(job, t)
    if STATUS_ORDER[before.status] >= (1 if to == IN_PROGRESS else 2):
        return None
    created, timing = job.created, job.timing
    if before.status == QUEUED:
        queued = _span(created, t, t - created)  # starts at t (or the float just below)
        candidates = [(Timing(queued, timing.in_progress if to == IN_PROGRESS else 0.0), job.fail_at)]
    else:  # in progress, to "end": shorten the run so that it ends at t
        started = created + timing.queued
        whole = _span(started, t, t - started)
        candidates = [(Timing(timing.queued, whole), job.fail_at)]
        frac = job.fail_at
        if job.failure is not None and frac != 1.0:  # 0 < fail_at < 1 while in progress
            hi = min((t - started) / frac, timing.in_progress)
            scaled = _span(started, t, hi, frac)
            candidates = [(Timing(timing.queued, scaled), frac), (Timing(timing.queued, whole), 1.0)]
    for new_timing, fail_at in candidates:
        trial = Job(job.id, job.provider, job.kind, created, new_timing, job.failure, fail_at,
                    job.source_id, job.params, job.queue_position, job.seq)
        trial.cancelled_at = job.cancelled_at
        after = state_at(trial, t)
        if (STATUS_ORDER[after.status] >= (1 if to == IN_PROGRESS else 2)
                and after.progress >= before.progress and after.queue_position <= before.queue_position
                and (before.started_at is None or after.started_at == before.started_at)):
            return new_timing, fail_at
    raise RuntimeError(f"cannot advance job {job.id!r} to {to!r} without going backwards")  # pragma: no cover


class JobStoreInterface(Protocol):
    """What the mock needs from a job store; three backends implement it (``--store``):

    - :class:`JobStore`: memory, one process (the default);
    - ``mockserver.store.SharedJobStore`` over a SQLite file or a Redis server (many processes).

    A job's state is a function of time, so a job is written once (``create``) and rarely again
    (``cancel``, ``advance``, ``delete``, ``mark_delivered``); polls only read (``get``).  Every mutation
    goes through a method here (never by setting a :class:`Job` attribute), so a shared store sees it.

    Attributes:
        clock: the :class:`Clock` the store reads.  ``shared``: True when other processes see the same jobs.
    """

    clock: Clock
    shared: bool

    def create(self, provider: str, kind: str, params: dict[str, Any], timing: Timing,
               failure: str | None = None, source_id: str | None = None, id: str | None = None, *,
               fail_at: float = 1.0, queue_position: int | None = None, id_prefix: str = "",
               id_format: str = "uuid4", now: float | None = None, failure_message: str | None = None,
               requested: bool = False, logs: bool | None = None) -> Job: ...

    def get(self, provider: str, id: str) -> Job: ...

    def reload(self, job: Job) -> Job: ...

    def cancel(self, job: Job, now: float | None = None) -> bool: ...

    def advance(self, job: Job, to: str, now: float | None = None) -> bool: ...

    def delete(self, job: Job) -> bool: ...

    def mark_delivered(self, job: Job) -> bool: ...

    def poll_get(self, job: Job, who: str) -> tuple[float, tuple[float, float]] | None: ...

    def poll_put(self, job: Job, who: str, value: tuple[float, tuple[float, float]]) -> None: ...

    def reset(self, rng: random.Random | None = None) -> None: ...

    def state(self, job: Job, now: float | None = None) -> State: ...

    def list(self, provider: str, order: str = "desc", after: str | None = None,
             limit: int = 20) -> tuple[list[Job], bool]: ...

    def count(self, provider: str) -> int: ...

    def __len__(self) -> int: ...


# ----------------------------------------------------------------------------------------------- store


class JobStore:
    """All jobs of the mock, per provider, in submission order.  Not thread-safe (one event loop).

    Args:
        clock: a :class:`Clock`; ``create``/``cancel``/``state`` read ``clock.now()`` when not given a time.
        rng: ``random.Random`` used for ids (and nothing else); pass ``random.Random(seed)`` for
            reproducible ids.  Defaults to an unseeded generator.

    Memory: one :class:`Job` (18 slots) + its id string + its params dict + one dict entry and one list
    slot; bench/engine_memory.py measures the total per job.

    This is the ``memory`` backend of :class:`JobStoreInterface` (``--store memory``, the default).
    """

    #: Jobs live in this process only (``mockserver.store.SharedJobStore`` is the shared one).
    shared = False

    def __init__(self, clock: Clock, rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self._by_id: dict[str, dict[str, Job]] = {}
        self._ordered: dict[str, list[Job]] = {}
        # per provider: min-heap of start times of jobs submitted earlier and (maybe) still queued.
        self._starts: dict[str, list[float]] = {}
        self._live = 0

    # -- writing

    def create(
        self,
        provider: str,
        kind: str,
        params: dict[str, Any],
        timing: Timing,
        failure: str | None = None,
        source_id: str | None = None,
        id: str | None = None,
        *,
        fail_at: float = 1.0,
        queue_position: int | None = None,
        id_prefix: str = "",
        id_format: str = "uuid4",
        now: float | None = None,
        failure_message: str | None = None,
        requested: bool = False,
        logs: bool | None = None,
    ) -> Job:
        """Submit a job at virtual time ``now`` (default ``clock.now()``) and return it.

        Args:
            provider: provider id; jobs of different providers never see each other.
            kind: one of :data:`KINDS` (``generate``, ``remix``, ``edit``, ``extend``).
            params: small dict (prompt, seconds (int), size ``"WxH"``, model, extras); stored as given.
            timing: a :class:`Timing`.
            failure: None, or a failure code string injected into this job (non-empty).
            source_id: id of the source video (remix/edit/extend).
            id: explicit id (e.g. replaying a cassette); otherwise one is generated with :func:`new_id`
                from ``id_prefix``/``id_format`` (``ids`` in provider.yaml) and ``self.rng``.
            fail_at: fraction in [0, 1] of the in-progress phase at which ``failure`` happens.
            queue_position: initial queue position (int >= 0).  Default: the number of this provider's
                earlier jobs that have not started yet (cancelled ones are still counted).
            failure_message: message of ``failure`` (kept in :attr:`Job.failure_message`).
            requested: kept in :attr:`Job.requested` (created by a provider request that named it).
            logs: kept in :attr:`Job.logs` (the ``logs`` flag of a queue submit, or None).

        Raises:
            ValueError: on an unknown kind or id format, a bad failure/fail_at/queue_position, non-dict
                params, a non-Timing timing, or an explicit id already used by this provider.
        """
        check_create(kind, timing, params, failure, fail_at, queue_position, id_format)

        t = self.clock.now() if now is None else float(now)
        by_id = self._by_id.setdefault(provider, {})
        ordered = self._ordered.setdefault(provider, [])
        if id is None:
            wall_ms = int(self.clock.to_wall(t) * 1000) if id_format == "ulid" else None
            id = new_id(self.rng, id_prefix, id_format, wall_ms)
            while id in by_id:  # practically never; keeps ids unique per provider
                id = new_id(self.rng, id_prefix, id_format, wall_ms)
        elif not isinstance(id, str) or not id:
            raise ValueError(f"id must be a non-empty string, got {id!r}")
        elif id in by_id:
            raise ValueError(f"id {id!r} already exists for provider {provider!r}")

        starts = self._starts.setdefault(provider, [])
        while starts and starts[0] <= t:
            heapq.heappop(starts)
        if queue_position is None:
            queue_position = len(starts)
        if timing.queued > 0:
            heapq.heappush(starts, t + timing.queued)

        job = Job(id, provider, kind, t, timing, failure, float(fail_at), source_id, params,
                  queue_position, len(ordered))
        job.failure_message = failure_message
        job.requested = bool(requested)
        job.logs = logs
        by_id[id] = job
        ordered.append(job)
        self._live += 1
        return job

    def cancel(self, job: Job, now: float | None = None) -> bool:
        """Cancel ``job`` at virtual time ``now`` (default ``clock.now()``).

        Returns True if the job was queued or in progress (it is then ``cancelled`` from ``now`` on,
        keeping the progress reached); False, with the job unchanged, if it had already finished or was
        deleted.
        """
        t = self.clock.now() if now is None else float(now)
        if job.deleted or state_at(job, t).status not in ACTIVE:
            return False
        job.cancelled_at = max(t, job.created)
        return True

    def advance(self, job: Job, to: str, now: float | None = None) -> bool:
        """Move ``job`` (only it; not the clock) so that phase ``to`` begins at virtual time ``now``.

        Args:
            job: a job of this store.
            to: ``"in_progress"``: end its queue phase now (its in-progress phase keeps its length, so a
                held one stays held); ``"end"``: end the job now: ``completed``, or ``failed`` when it
                carries an injected failure (a queued job goes straight through: ``started_at`` and
                ``finished_at`` are both ``now``).
            now: virtual seconds (default ``clock.now()``); should be the current time, i.e. no earlier
                than any read of the job so far.  A time before ``job.created`` counts as ``job.created``.

        Returns:
            True if the job moved; False, with the job unchanged, if it was deleted or already at or past
            ``to`` at ``now`` (in progress or terminal for ``in_progress``; terminal for ``end``).

        The job gets a new :class:`Timing` (``created`` and the failure code never change) that only
        shortens the phase running at ``now`` (queued, or in progress) so that it ends at ``now`` (or at
        the float just below it, in the rare case no duration lands on ``now`` exactly in floating
        point), so the status, progress, queue position and ``started_at`` read at ``now`` and later never
        go back from what could be read before, and a terminal state stays final.  A failing job keeps
        its ``fail_at`` fraction (with the default 1.0 it fails at progress 99); in the rare
        floating-point case where the shortened run would report a lower progress than already reached,
        it fails at ``fail_at=1.0`` instead.  The job also stops counting in the provider's queue (the
        default ``queue_position`` of jobs submitted later).

        Raises:
            ValueError: ``to`` is not one of :data:`ADVANCE_TARGETS`, or ``now`` is not finite.
        """
        t = self.clock.now() if now is None else float(now)
        moved = advanced(job, to, t)
        if moved is None:
            return False
        new_timing, fail_at = moved
        created, timing = job.created, job.timing
        if state_at(job, max(t, created)).status == QUEUED and timing.queued > 0:  # no longer in the queue
            starts = self._starts.get(job.provider)
            old_start = created + timing.queued
            if starts and old_start in starts:
                starts.remove(old_start)
                heapq.heapify(starts)
        job.timing = new_timing
        job.fail_at = fail_at
        return True

    def delete(self, job: Job) -> bool:
        """Mark ``job`` deleted; :meth:`get` then raises KeyError and :meth:`list` skips it.

        Returns True if it was live, False if it was already deleted.  The job stays in memory as a
        tombstone so that a list cursor (``after``) pointing at it keeps working.
        """
        if job.deleted:
            return False
        job.deleted = True
        self._live -= 1
        return True

    def mark_delivered(self, job: Job) -> bool:
        """Note that ``job``'s output was delivered (result read, bytes downloaded, webhook sent): a provider
        that deletes delivered outputs (fal ``delete_video``) then refuses it as a source.  Returns True if
        it was not delivered before."""
        if job.delivered:
            return False
        job.delivered = True
        return True

    def poll_get(self, job: Job, who: str) -> tuple[float, tuple[float, float]] | None:
        """The last answered poll of ``job`` by caller ``who`` (a hash of its key): ``(virtual seconds,
        (queued, in_progress) timing then)``, or None (the job family's minimum poll interval)."""
        return None if job.polls is None else job.polls.get(who)

    def poll_put(self, job: Job, who: str, value: tuple[float, tuple[float, float]]) -> None:
        """Record an answered poll of ``job`` by ``who`` (see :meth:`poll_get`)."""
        if job.polls is None:
            job.polls = {}
        job.polls[who] = value

    def reload(self, job: Job) -> Job:
        """The current record of ``job`` (here the same object: nothing else writes it).  A waiter that
        holds a job across awaits (a blocking ``run``) reads it again through this, so a shared store shows
        it moves made by other processes."""
        return job

    def reset(self, rng: random.Random | None = None) -> None:
        """Forget every job (and, if given, switch to a new id generator ``rng``)."""
        self._by_id.clear()
        self._ordered.clear()
        self._starts.clear()
        self._live = 0
        if rng is not None:
            self.rng = rng

    # -- reading

    def get(self, provider: str, id: str) -> Job:
        """The live job ``id`` of ``provider``.  Raises KeyError if absent, of another provider, or deleted."""
        job = self._by_id.get(provider, {}).get(id)
        if job is None or job.deleted:
            raise KeyError(id)
        return job

    def state(self, job: Job, now: float | None = None) -> State:
        """``state_at(job, now)`` with ``now`` defaulting to ``clock.now()``."""
        return state_at(job, self.clock.now() if now is None else now)

    def list(
        self,
        provider: str,
        order: str = "desc",
        after: str | None = None,
        limit: int = 20,
    ) -> tuple[list[Job], bool]:
        """One page of ``provider``'s live jobs, ordered by creation (ties: submission order).

        Args:
            order: ``"asc"`` (oldest first) or ``"desc"`` (newest first, the default).
            after: cursor: an id of this provider (live or deleted); the page starts just after it in
                ``order``.
            limit: page size, int >= 0 (the contract bounds it, e.g. OpenAI 0..100).

        Returns:
            ``(jobs, has_more)``; ``has_more`` is True when live jobs remain beyond the page.

        Raises:
            ValueError: bad ``order`` or ``limit``.
            KeyError: ``after`` is not an id of this provider.
        """
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be an int >= 0, got {limit!r}")
        ordered = self._ordered.get(provider, [])
        if after is not None:
            cursor = self._by_id.get(provider, {}).get(after)
            if cursor is None:
                raise KeyError(after)
            start = cursor.seq + 1 if order == "asc" else cursor.seq - 1
        else:
            start = 0 if order == "asc" else len(ordered) - 1
        step = 1 if order == "asc" else -1
        page: list[Job] = []
        i = start
        while 0 <= i < len(ordered):
            job = ordered[i]
            i += step
            if job.deleted:
                continue
            if len(page) == limit:
                return page, True
            page.append(job)
        return page, False

    def __len__(self) -> int:
        """Number of live (not deleted) jobs over all providers."""
        return self._live

    def count(self, provider: str) -> int:
        """Number of live jobs of ``provider`` (O(n) in that provider's jobs)."""
        return sum(1 for j in self._ordered.get(provider, ()) if not j.deleted)


#: Alias: the engine is the job store plus :func:`state_at`.
Engine = JobStore
