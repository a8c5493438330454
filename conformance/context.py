"""Run settings and the per-provider context every check implementation receives."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from specs import Contract

from .http import Client, Exchange, RunStopped
from .registry import Source, lookup
from .results import Failure, Results


class RunControl:
    """The stop flag and deadline every thread of a run obeys (``--max-time``, Ctrl-C, SIGTERM).

    Every wait of the suite goes through :meth:`sleep` (which returns early when the run stops) and every
    request through :class:`~conformance.http.Client`, which refuses to send once the run has stopped
    (:class:`~conformance.http.RunStopped`) and bounds each request's timeout by the time left.

    Args:
        max_time: seconds the whole run may take (None: no bound).
    """

    def __init__(self, max_time: float | None = None):
        self._event = threading.Event()
        self.reason: str | None = None
        self.deadline = time.monotonic() + max_time if max_time else None

    def stop(self, reason: str) -> None:
        """Stop the run (``"max_time"`` or ``"interrupted"``); the first reason is kept."""
        if self.reason is None:
            self.reason = reason
        self._event.set()

    @property
    def stopped(self) -> bool:
        """True once the run was stopped or its deadline passed."""
        if not self._event.is_set() and self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop("max_time")
        return self._event.is_set()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None without ``--max-time``)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def bound(self, seconds: float) -> float:
        """``seconds`` cut to the time left (at least 0.05 s, so a request can still fail quickly)."""
        left = self.remaining()
        return seconds if left is None else max(0.05, min(seconds, left))

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` (cut to the time left); False when the run stopped meanwhile."""
        if seconds > 0:
            self._event.wait(self.bound(seconds) if self.deadline is not None else seconds)
        return not self.stopped

    def check(self) -> None:
        """Raise :class:`~conformance.http.RunStopped` when the run has stopped."""
        if self.stopped:
            raise RunStopped(self.reason or "stopped")


@dataclass
class RunConfig:
    """Settings of one ``conformance run``.

    Attributes:
        providers: provider ids.
        checks: selected ``registry.Check`` objects.
        seed: hypothesis seed of the run (printed; ``--seed`` reproduces generation).
        examples: positive examples generated per operation (``--examples``, default 50).
        negative_examples: invalid-data examples per operation.
        unknown_examples: unknown-id examples per operation that addresses a resource (topped up so that
            every operation reaches ``examples`` requests in total).
        auth_examples: requests per operation without / with wrong credentials.
        paid_examples: positive examples of a paid operation on a target that is not the mock.
        lifecycle_runs, lifecycle_steps: hypothesis state-machine runs per provider and steps per run.
        workers: concurrent requests per operation (generated cases are sent in parallel).
        allow_spend, max_spend_usd: the spend guard (see :mod:`conformance.spend`).
        source_video_ids: ``{provider: id}`` of completed source videos the user supplies.
        timeout: seconds per request; job_timeout: seconds to wait for a job to finish.
        max_time: seconds the whole run may take (``--max-time``; None: no bound).
        max_paid_jobs: paid requests (jobs created) allowed on a paid target (``--max-paid-jobs``; None: no
            bound of this kind).
        max_video_seconds: total requested seconds of video allowed (``--max-video-seconds``; None: no bound).
        usd_per_second: price (USD per generated second) the user gives where provider.yaml has none.
        only_target_hosts: send nothing to a host the target does not name (``--only-target-hosts``): URLs
            in answers that point elsewhere (asset CDNs, status URLs) are not followed.
    """

    providers: list[str]
    checks: list = field(default_factory=list)
    seed: int = 0
    examples: int = 50
    negative_examples: int = 25
    unknown_examples: int = 20
    auth_examples: int = 2
    paid_examples: int = 1
    lifecycle_runs: int = 4
    lifecycle_steps: int = 14
    workers: int = 8
    allow_spend: bool = False
    max_spend_usd: float | None = None
    source_video_ids: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    job_timeout: float = 60.0
    max_time: float | None = None
    max_paid_jobs: int | None = None
    max_video_seconds: float | None = None
    usd_per_second: float | None = None
    only_target_hosts: bool = False


def op_label(contract: Contract, op) -> str:
    """How reports name an operation: ``METHOD /path``, plus ``[host]`` when the provider has several hosts
    (fal's queue and run hosts serve the same path strings)."""
    label = f"{op.method.upper()} {op.path}"
    return f"{label} [{op.host}]" if len(contract.hosts) > 1 else label


def sub_seed(seed: int, *parts: Any) -> int:
    """A stable 32-bit seed derived from the run seed and labels (provider, operation, mode)."""
    h = hashlib.sha256(("|".join([str(seed), *map(str, parts)])).encode()).digest()
    return int.from_bytes(h[:4], "big")


class ProviderRun:
    """Everything the checks of one provider need.

    Attributes:
        contract: the provider's contract; target: the resolved target; client: the HTTP client;
        guard: the spend guard; results: the run's :class:`Results`; config: :class:`RunConfig`;
        drivers: one family driver per host with a URL; pool: fixture jobs (:mod:`conformance.fixtures`).
    """

    def __init__(self, contract: Contract, target, client: Client, guard, results: Results, config: RunConfig,
                 drivers: list, control: RunControl | None = None):
        self.contract = contract
        self.target = target
        self.client = client
        self.guard = guard
        self.results = results
        self.config = config
        self.drivers = drivers
        self.pool = None
        self.progress = lambda text: None  # set by the runner: live phase text for this provider
        self.rng = random.Random(sub_seed(config.seed, contract.id))
        self.control = control or getattr(client, "control", None) or RunControl()
        self.halted: str | None = None  # why no more jobs are created (the target did not end one in time)
        # what the lifecycle observed (for true skip reasons and id_unique): fields of job bodies, neutral
        # states, each job's first observed state, ids of created jobs
        self.seen: dict[str, Any] = {"fields": set(), "states": set(), "first": {}, "ids": {}}

    @property
    def id(self) -> str:
        return self.contract.id

    def selected(self, check: str) -> bool:
        return self.results.selected(check)

    def ok(self, check: str, n: int = 1) -> None:
        self.results.passed(self.id, check, n)

    def source(self, check: str, expectation: str | None = None, default: Source | None = None) -> Source:
        """Where an expectation of ``check`` comes from for this provider: the provider.yaml ``expectations``
        entry named ``expectation`` (else the check's name) names a provider document; otherwise ``default``,
        else the check's registered source."""
        table = self.contract.provider.get("expectations") or {}
        entry = table.get(expectation) if expectation else table.get(check)
        if isinstance(entry, dict) and entry.get("source"):
            return Source("doc", str(entry["source"]), entry.get("quote"))
        if default is not None:
            return default
        registered = lookup(check)
        return registered.source if registered is not None else Source("contract", check)

    def response_source(self, op, status: int, fallback: Source | None = None) -> Source:
        """Source of "``op`` answers ``status``": the contract's response entry, unless it is marked
        ``x-mock-only`` (our mock's convention) or ``x-assumption`` (chosen where the docs are silent); when
        the contract declares no such response, ``fallback`` (default: a convention of our mock)."""
        from . import schema as sch

        marks = sch.response_marks(self.contract, op, status)
        where = f"{self.id} {op.operation_id} responses.{status}"
        if marks is None:
            return fallback or Source("mock", f"{where} (not declared by the contract)")
        if marks["mock_only"]:
            return Source("mock", f"{where} (x-mock-only)", marks["mock_only"])
        if marks["assumption"]:
            return Source("assumption", f"{where} (x-assumption)", marks["assumption"])
        return Source("contract", where)

    def fail(self, check: str, message: str, *, exchange: Exchange | None = None, operation: str | None = None,
             curl: str | None = None, source: Source | None = None) -> None:
        """Record a failure of ``check``; the exchange gives the curl command and the response excerpt.

        ``source`` is where the failed expectation comes from (default :meth:`source`). Against a target
        that is not our mock, a failure of an expectation no provider document backs is recorded as a note.
        """
        src = source or self.source(check)
        headers = None
        if exchange is not None and exchange.response_headers:
            headers = dict(list(exchange.response_headers.items())[:20])
        self.results.failed(Failure(
            check=check, provider=self.id, operation=operation, message=message,
            curl=curl or (exchange.curl() if exchange is not None else None), seed=self.config.seed,
            status=exchange.status if exchange is not None else None,
            response=exchange.excerpt() if exchange is not None else None, response_headers=headers,
            source=src.to_json()), documented=src.documented or bool(getattr(self.target, "ours", True)))

    def expect(self, check: str, cond: bool, message: str, **kw: Any) -> bool:
        """Record a pass when ``cond`` holds, else a failure; returns ``cond``."""
        if cond:
            self.ok(check)
        else:
            self.fail(check, message, **kw)
        return cond

    def skip(self, check: str, reason: str) -> None:
        self.results.skip(self.id, check, reason)

    def can_spend(self, seconds: float = 4.0) -> tuple[bool, str]:
        return self.guard.can_spend(self.id, seconds)

    def suite_error(self, name: str, message: str, *, check: str | None = None, operation: str | None = None) -> None:
        """Record a suite error of this provider (see :data:`conformance.results.SUITE_ERRORS`)."""
        self.results.suite_error(name, self.id, message, check=check, operation=operation)

    @property
    def stopped(self) -> bool:
        return self.control.stopped
