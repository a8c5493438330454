"""The shared job store and its companions, written once over :class:`~mockserver.store.backend.Backend`.

- :class:`SharedJobStore`: the ``sqlite``/``redis`` backend of :class:`mockserver.engine.JobStoreInterface`.
  A job is one record (:func:`encode_job`); a mutation reads it, applies the same rules as the memory store
  (:func:`mockserver.engine.advanced` ...) and writes it back with a compare-and-set, retrying when another
  worker changed it meanwhile.  A worker keeps the decoded :class:`~mockserver.engine.Job` of a record it has
  seen, so a poll of an unchanged job costs one read and no decoding (and hits the renderers' caches).
- :class:`SharedSystemClock` / :class:`SharedManualClock`: every worker reads the same virtual time (the
  system clock's anchor, the manual clock's ``now``), and a restarted mock continues it.
- :class:`SharedFaultBook`: rules and their ``fired`` counters in the store (``times=N`` is atomic across
  workers); the ``--rate-limit`` bucket per API key hash.
- :class:`SharedJournal`: the journal as a bounded list in the store, redacted before it is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from .. import engine as eng
from ..middleware.faults import FaultBook, FaultRule, check_target, parse_fault
from .backend import Backend, StoreUnavailable

#: Decoded jobs a worker keeps (by record), so unchanged polls skip decoding.
CACHE_SIZE = 100_000
#: Compare-and-set attempts of one mutation before giving up (only under pathological contention).
CAS_TRIES = 64


def encode_head(job: eng.Job) -> str:
    """The record of ``job`` without its last three fields (``created``, ``seq``, ``queue_position``): a JSON
    array left open after a comma, which :meth:`Backend.job_create` completes."""
    t = job.timing
    fields = [1, job.kind, t.queued, t.in_progress, job.failure, job.fail_at, job.source_id, job.params,
              job.failure_message, job.requested, job.logs, job.cancelled_at, job.deleted, job.delivered]
    return json.dumps(fields, separators=(",", ":"))[:-1] + ","


def encode_job(job: eng.Job) -> str:
    """The stored record of ``job`` (a JSON array; every slot but ``id``, ``provider`` and ``polls``)."""
    return f"{encode_head(job)}{job.created!r},{job.seq},{job.queue_position}]"


def decode_job(provider: str, id: str, rec: str) -> eng.Job:
    """The :class:`~mockserver.engine.Job` of a stored record (see :func:`encode_job`).

    Raises:
        StoreUnavailable: the record is not one this version wrote (a store shared with something else).
    """
    try:
        (_v, kind, queued, in_progress, failure, fail_at, source_id, params, failure_message, requested, logs,
         cancelled_at, deleted, delivered, created, seq, qp) = json.loads(rec)
        job = eng.Job(id, provider, kind, created, eng.Timing(queued, in_progress), failure, fail_at, source_id,
                      params, qp, seq)
    except (ValueError, TypeError) as exc:
        raise StoreUnavailable(f"job record {provider}/{id} in the store is unreadable: {exc}") from None
    job.failure_message = failure_message
    job.requested = requested
    job.logs = logs
    job.cancelled_at = cancelled_at
    job.deleted = deleted
    job.delivered = delivered
    return job


def _copy(src: eng.Job, dst: eng.Job) -> None:
    for name in ("timing", "fail_at", "cancelled_at", "deleted", "delivered", "failure_message", "requested",
                 "logs", "queue_position", "seq"):
        setattr(dst, name, getattr(src, name))


class SharedJobStore:
    """Jobs in a shared store: the ``sqlite`` and ``redis`` backends of
    :class:`mockserver.engine.JobStoreInterface` (same methods, arguments, results and errors as
    :class:`mockserver.engine.JobStore`; see it for each method's rules).

    Args:
        backend: the :class:`Backend`.
        clock: the shared clock (:class:`SharedSystemClock` or :class:`SharedManualClock`).
        rng: id generator of this process (seed it per process: workers draw ids independently, and an id
            another worker took is drawn again).

    Every method may raise :class:`~mockserver.store.backend.StoreUnavailable` (answered as a 503).
    """

    shared = True

    def __init__(self, backend: Backend, clock: Any, rng: random.Random | None = None) -> None:
        self.backend = backend
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self._cache: dict[tuple[str, str], tuple[str, eng.Job]] = {}

    # -- records ------------------------------------------------------------------------------------------
    def _job(self, provider: str, id: str, rec: str) -> eng.Job:
        key = (provider, id)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == rec:
            return hit[1]
        job = decode_job(provider, id, rec)
        self._remember(key, rec, job)
        return job

    def _remember(self, key: tuple[str, str], rec: str, job: eng.Job) -> None:
        cache = self._cache
        cache[key] = (rec, job)
        if len(cache) > CACHE_SIZE:
            del cache[next(iter(cache))]

    def _mutate(self, job: eng.Job, change: Callable[[eng.Job], tuple[bool, bool] | None]) -> bool:
        """Apply ``change`` to the stored record of ``job`` (compare-and-set, retried); ``change`` mutates the
        decoded record and returns ``(unlist, unstart)``, or None for no change.  ``job`` is brought up to
        date with the store either way.  Returns True when the record changed."""
        provider, id = job.provider, job.id
        for _ in range(CAS_TRIES):
            rec = self.backend.job_get(provider, id)
            if rec is None:  # reset meanwhile
                return False
            cur = decode_job(provider, id, rec)
            flags = change(cur)
            if flags is None:
                _copy(cur, job)
                self._remember((provider, id), rec, job)
                return False
            new = encode_job(cur)
            if self.backend.job_cas(provider, id, rec, new, unlist=flags[0], unstart=flags[1]):
                _copy(cur, job)
                self._remember((provider, id), new, job)
                return True
        raise StoreUnavailable(f"job {provider}/{id} changed {CAS_TRIES} times while being updated")

    # -- writing ------------------------------------------------------------------------------------------
    def create(self, provider: str, kind: str, params: dict[str, Any], timing: eng.Timing,
               failure: str | None = None, source_id: str | None = None, id: str | None = None, *,
               fail_at: float = 1.0, queue_position: int | None = None, id_prefix: str = "",
               id_format: str = "uuid4", now: float | None = None, failure_message: str | None = None,
               requested: bool = False, logs: bool | None = None) -> eng.Job:
        """Submit a job (see :meth:`mockserver.engine.JobStore.create`); ids are unique across workers.

        Raises:
            ValueError: as the memory store (an explicit id taken by any worker included).
        """
        eng.check_create(kind, timing, params, failure, fail_at, queue_position, id_format)
        t = self.clock.now() if now is None else float(now)
        if id is not None and (not isinstance(id, str) or not id):
            raise ValueError(f"id must be a non-empty string, got {id!r}")
        job = eng.Job(id or "", provider, kind, t, timing, failure, float(fail_at), source_id, params, 0, 0)
        job.failure_message = failure_message
        job.requested = bool(requested)
        job.logs = logs
        head = encode_head(job)
        start = t + timing.queued if timing.queued > 0 else None
        for _ in range(CAS_TRIES):
            if id is None:
                wall_ms = int(self.clock.to_wall(t) * 1000) if id_format == "ulid" else None
                job.id = eng.new_id(self.rng, id_prefix, id_format, wall_ms)
            made = self.backend.job_create(provider, job.id, head, t, start, queue_position)
            if made is not None:
                job.seq, job.queue_position, job.created = made
                self._remember((provider, job.id), encode_job(job), job)
                return job
            if id is not None:
                raise ValueError(f"id {id!r} already exists for provider {provider!r}")
        raise StoreUnavailable("could not draw a free job id")  # pragma: no cover - 64 collisions in a row

    def cancel(self, job: eng.Job, now: float | None = None) -> bool:
        """Cancel ``job`` at ``now`` (see :meth:`mockserver.engine.JobStore.cancel`)."""
        t = self.clock.now() if now is None else float(now)

        def change(cur: eng.Job) -> tuple[bool, bool] | None:
            if cur.deleted or eng.state_at(cur, t).status not in eng.ACTIVE:
                return None
            cur.cancelled_at = max(t, cur.created)
            return False, False

        return self._mutate(job, change)

    def advance(self, job: eng.Job, to: str, now: float | None = None) -> bool:
        """Move ``job`` so that phase ``to`` begins at ``now`` (see :meth:`mockserver.engine.JobStore.advance`).

        Raises:
            ValueError: a bad ``to`` or a non-finite ``now``.
        """
        t = self.clock.now() if now is None else float(now)
        eng.advanced(job, to, t)  # argument errors before any store access

        def change(cur: eng.Job) -> tuple[bool, bool] | None:
            moved = eng.advanced(cur, to, t)
            if moved is None:
                return None
            unstart = eng.state_at(cur, max(t, cur.created)).status == eng.QUEUED and cur.timing.queued > 0
            cur.timing, cur.fail_at = moved
            return False, unstart

        return self._mutate(job, change)

    def delete(self, job: eng.Job) -> bool:
        """Mark ``job`` deleted (kept as a tombstone for list cursors); True if it was live."""
        def change(cur: eng.Job) -> tuple[bool, bool] | None:
            if cur.deleted:
                return None
            cur.deleted = True
            return True, True

        return self._mutate(job, change)

    def mark_delivered(self, job: eng.Job) -> bool:
        """Note that ``job``'s output was delivered; True if it was not before."""
        if job.delivered:
            return False

        def change(cur: eng.Job) -> tuple[bool, bool] | None:
            if cur.delivered:
                return None
            cur.delivered = True
            return False, False

        return self._mutate(job, change)

    def poll_get(self, job: eng.Job, who: str) -> tuple[float, tuple[float, float]] | None:
        """The last answered poll of ``job`` by ``who`` (see :meth:`mockserver.engine.JobStore.poll_get`)."""
        raw = self.backend.poll_get(job.provider, job.id, who)
        if raw is None:
            return None
        t, (q, p) = json.loads(raw)
        return float(t), (float(q), float(p))

    def poll_put(self, job: eng.Job, who: str, value: tuple[float, tuple[float, float]]) -> None:
        """Record an answered poll of ``job`` by ``who``."""
        self.backend.poll_put(job.provider, job.id, who, json.dumps([value[0], list(value[1])]))

    def reload(self, job: eng.Job) -> eng.Job:
        """``job`` brought up to date with its stored record (moves made by other workers included) and
        returned (the same object, so every holder sees it); unchanged if the record is gone."""
        rec = self.backend.job_get(job.provider, job.id)
        if rec is not None:
            cur = self._job(job.provider, job.id, rec)
            if cur is not job:
                _copy(cur, job)
        return job

    def reset(self, rng: random.Random | None = None) -> None:
        """Forget every job of every worker (and, if given, use ``rng`` for ids)."""
        self.backend.jobs_reset()
        self._cache.clear()
        if rng is not None:
            self.rng = rng

    # -- reading ------------------------------------------------------------------------------------------
    def get(self, provider: str, id: str) -> eng.Job:
        """The live job ``id`` of ``provider``.  Raises KeyError if absent or deleted."""
        rec = self.backend.job_get(provider, id)
        if rec is None:
            raise KeyError(id)
        job = self._job(provider, id, rec)
        if job.deleted:
            raise KeyError(id)
        return job

    def state(self, job: eng.Job, now: float | None = None) -> eng.State:
        """``state_at(job, now)`` with ``now`` defaulting to ``clock.now()``."""
        return eng.state_at(job, self.clock.now() if now is None else now)

    def list(self, provider: str, order: str = "desc", after: str | None = None,
             limit: int = 20) -> tuple[list[eng.Job], bool]:
        """One page of ``provider``'s live jobs (see :meth:`mockserver.engine.JobStore.list`).

        Raises:
            ValueError: bad ``order`` or ``limit``.  KeyError: ``after`` is not an id of this provider.
        """
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be an int >= 0, got {limit!r}")
        after_seq = None
        if after is not None:
            rec = self.backend.job_get(provider, after)
            if rec is None:
                raise KeyError(after)
            after_seq = self._job(provider, after, rec).seq
        rows, more = self.backend.job_page(provider, order == "asc", after_seq, min(limit, 10 ** 6))
        jobs = [self._job(provider, jid, rec) for jid, rec in rows]
        return [j for j in jobs if not j.deleted], more

    def count(self, provider: str) -> int:
        """Number of live jobs of ``provider``."""
        return self.backend.job_count(provider)

    def __len__(self) -> int:
        """Number of live jobs over all providers."""
        return self.backend.job_count(None)


# ------------------------------------------------------------------------------------------------ clocks


class SharedSystemClock:
    """Real time x ``speed``, anchored in the store: every worker (and a restarted mock) reads the same
    virtual time.  The store keeps ``epoch`` (unix seconds at virtual time 0: the first start), and an anchor
    ``(aw, av, speed)``: virtual time ``av`` at unix time ``aw``.  A start with another ``speed`` re-anchors at
    the current virtual time, so virtual time never goes back across restarts.

    Args:
        backend: the store; ``speed``: virtual seconds per real second (> 0, finite).

    Raises:
        ValueError: a bad ``speed``.  StoreUnavailable: the store does not answer.
    """

    def __init__(self, backend: Backend, speed: float = 1.0) -> None:
        eng.SystemClock(speed)  # the same argument check
        self.speed = float(speed)
        wall = time.time()
        fresh = json.dumps({"epoch": wall, "aw": wall, "av": 0.0, "speed": self.speed})
        record = json.loads(backend.set_default("clock_system", fresh))
        self.epoch = float(record["epoch"])
        self._aw, self._av = float(record["aw"]), float(record["av"])
        if float(record["speed"]) != self.speed:  # continue from now at the new speed
            now = time.time()
            self._av = self._av + (now - self._aw) * float(record["speed"])
            self._aw = now
            backend.put("clock_system", json.dumps({"epoch": self.epoch, "aw": self._aw, "av": self._av,
                                                     "speed": self.speed}))

    def now(self) -> float:
        """Virtual seconds (scaled by ``speed`` from the anchor)."""
        return self._av + (time.time() - self._aw) * self.speed

    def wall(self) -> float:
        """Unix seconds of the current virtual moment."""
        return self.epoch + self.now()

    def to_wall(self, t: float) -> float:
        """Unix seconds of virtual time ``t``."""
        return self.epoch + t


class SharedManualClock:
    """A manual clock whose time lives in the store: an advance through any worker is seen by all.

    Args:
        backend: the store; ``epoch``: unix seconds at virtual time 0 (default as :class:`ManualClock`).
    """

    def __init__(self, backend: Backend, epoch: float = eng.DEFAULT_EPOCH) -> None:
        self.backend = backend
        self.epoch = float(epoch)

    def now(self) -> float:
        """Current virtual time in seconds (one store read)."""
        raw = self.backend.get("clock_now")
        return 0.0 if raw is None else float(raw)

    def wall(self) -> float:
        """Unix seconds of the current virtual moment."""
        return self.epoch + self.now()

    def to_wall(self, t: float) -> float:
        """Unix seconds of virtual time ``t``."""
        return self.epoch + t

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0, finite) for every worker, atomically; returns the new time.

        Raises:
            ValueError: a negative or non-finite amount.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"can only advance by a finite amount >= 0 seconds, got {seconds!r}")
        return self.backend.add_float("clock_now", float(seconds))

    def set(self, t: float) -> float:
        """Jump to virtual time ``t`` (>= now).  Raises ValueError when ``t`` is earlier or not finite."""
        if not math.isfinite(t):
            raise ValueError(f"clock time must be finite, got {t!r}")
        now = self.now()
        if t < now:
            raise ValueError(f"clock cannot go backwards: {t!r} < {now!r}")
        return self.advance(t - now)


# ------------------------------------------------------------------------------------------------ faults


def key_hash(key: str) -> str:
    """The name under which an API key's bucket is stored (never the key itself): 16 hex of its SHA-256."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _install(backend: Backend, rule: FaultRule) -> FaultRule:
    spec = {k: v for k, v in rule.to_json().items() if k not in ("id", "fired")}
    rule.id = backend.fault_add(json.dumps(spec, separators=(",", ":")))
    return rule


def install_faults(backend: Backend, initial: list[dict[str, Any] | str],
                   contracts: dict[str, Any] | None = None) -> None:
    """Replace the store's fault rules with ``initial`` (``--fault`` flags, a profile's ``faults``): every
    rule is checked before any is installed, its target against ``contracts`` (provider id -> served
    :class:`specs.Contract`) when given.

    Raises:
        FaultError: an invalid rule, or a target the served contracts do not have (nothing changed).
    """
    rules = [parse_fault(spec) for spec in initial]
    if contracts is not None:
        for rule in rules:
            check_target(rule, contracts)
    backend.faults_clear()
    for rule in rules:
        _install(backend, rule)


class SharedFaultBook(FaultBook):
    """The fault book of a shared store: rules and ``fired`` counters live in the store, so a rule added
    through any worker applies on all, and ``times=N`` fires exactly N times across them (the count is
    taken atomically before the rule acts).  The ``--rate-limit`` buckets are shared too.

    Args:
        state: the :class:`mockserver.state.MockState`; ``backend``: the store.
        initial: rules to install now (``--fault``), replacing the store's; None keeps the store's rules
            (a worker of a group: its supervisor installed them).

    Raises:
        FaultError: an invalid initial rule.
    """

    #: The faults layer has no fast path here: rules may be added by another worker at any moment.
    always = True

    def __init__(self, state: Any, backend: Backend, initial: list[dict[str, Any] | str] | None = None):
        self.backend = backend
        self._parsed: dict[tuple[int, str], FaultRule] = {}
        self._turn: list[FaultRule] | None = None
        super().__init__(state, None)
        if initial is not None:
            install_faults(backend, initial, state.contracts)

    @property
    def rules(self) -> list[FaultRule]:
        """The installed rules, read from the store (with their ``fired`` counts) once per turn of the event
        loop: requests handled in the same turn share one read (a rule fires only after its count was taken
        atomically in the store, so ``times=N`` holds however stale the list is)."""
        if self._turn is not None:
            return self._turn
        rules = self._load()
        try:
            asyncio.get_running_loop().call_soon(self._forget_turn)
            self._turn = rules
        except RuntimeError:  # no loop: no caching
            pass
        return rules

    def _forget_turn(self) -> None:
        self._turn = None

    def _load(self) -> list[FaultRule]:
        out = []
        for fid, spec, fired in self.backend.faults_load():
            rule = self._parsed.get((fid, spec))
            if rule is None:
                rule = parse_fault(json.loads(spec), fid)
                self._parsed[(fid, spec)] = rule
            rule.fired = fired
            out.append(rule)
        return out

    @rules.setter
    def rules(self, value: list[FaultRule]) -> None:  # FaultBook.__init__ starts with an empty list
        if value:
            raise ValueError("rules of a shared fault book are changed with add/remove/clear")

    def add(self, spec: dict[str, Any] | str) -> FaultRule:
        """Install a fault for every worker; returns the rule with its id.

        Raises:
            FaultError: an invalid spec, or a target (``provider``, ``operation``) the served contracts do
                not have (:func:`mockserver.middleware.faults.check_target`).
        """
        self._turn = None
        rule = parse_fault(spec)
        check_target(rule, self.state.contracts)
        return _install(self.backend, rule)

    def remove(self, rule_id: int) -> bool:
        """Remove the rule ``rule_id`` for every worker; True if there was one."""
        self._turn = None
        return self.backend.fault_remove(rule_id)

    def clear(self) -> None:
        """Remove every rule."""
        self._turn = None
        self.backend.faults_clear()

    def _fires(self, rule: FaultRule) -> bool:
        if rule.probability is not None and self.state.rng.random() >= rule.probability:
            return False
        if not self.backend.fault_fire(rule.id, rule.times):
            return False
        rule.fired += 1
        return True

    def take_token(self, key: str) -> float | None:
        """The shared token bucket of ``--rate-limit`` for ``key`` (stored by :func:`key_hash`)."""
        limit = self.state.config.rate_limit
        if limit is None:
            return None
        return self.backend.take_token(key_hash(key), limit[0], limit[1])


# ----------------------------------------------------------------------------------------------- journal


class _Stored:
    """A journal entry read back from the store (already redacted)."""

    __slots__ = ("data",)

    def __init__(self, data: dict) -> None:
        self.data = data

    def to_json(self, secret: Any = None) -> dict:
        """The entry as the admin API reports it (redacted when it was written)."""
        return self.data


class SharedJournal:
    """The journal in the store: a bounded list (``size`` entries) every worker appends to.  An entry is
    redacted (:meth:`mockserver.middleware.JournalEntry.to_json`) before it is written, so keys never reach
    the store.  The journal layer calls :meth:`finish` once the answer is known; the entries answered in one
    turn of the event loop are written together just after it (one round trip), and reading the journal
    writes this worker's pending entries first.

    Args:
        backend: the store; ``size``: entries kept; ``secret``: header names to redact (lower case);
        ``worker``: this process's worker index, recorded with each entry.
    """

    def __init__(self, backend: Backend, size: int, secret: frozenset[str], worker: int | None = None) -> None:
        self.backend = backend
        self.size = max(1, int(size))
        self.secret = secret
        self.worker = worker
        self._pending: list[str] = []

    def append(self, entry: Any) -> None:
        """Nothing to do until the answer is known (:meth:`finish`)."""

    def finish(self, entry: Any) -> None:
        """Queue one answered request, redacted, for the write after this turn of the event loop."""
        data = entry.to_json(self.secret)
        if self.worker is not None:
            data["worker"] = self.worker
        self._pending.append(json.dumps(data, separators=(",", ":")))
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self._flush_quietly)
            except RuntimeError:  # no loop (a direct call): write now
                self.flush()

    def flush(self) -> None:
        """Write the pending entries (raises :class:`StoreUnavailable`; they are then dropped)."""
        pending, self._pending = self._pending, []
        self.backend.list_push_many("journal", pending, self.size)

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except StoreUnavailable:  # the requests were answered (with a 503 or not); only their record is lost
            pass

    def __iter__(self) -> Iterator[_Stored]:
        self.flush()
        return iter([_Stored(json.loads(raw)) for raw in self.backend.list_read("journal", self.size)])

    def __len__(self) -> int:
        return len(self.backend.list_read("journal", self.size))

    def clear(self) -> None:
        """Forget the journal (every worker's)."""
        self._pending = []
        self.backend.list_clear("journal")


__all__ = ["CACHE_SIZE", "SharedFaultBook", "SharedJobStore", "SharedJournal", "SharedManualClock",
           "SharedSystemClock", "decode_job", "encode_head", "encode_job", "install_faults", "key_hash"]
