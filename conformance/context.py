"""Run settings and the per-provider context every check implementation receives."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from specs import Contract

from .http import Client, Exchange
from .results import Failure, Results


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
    max_spend_usd: float = 0.0
    source_video_ids: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    job_timeout: float = 60.0


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
                 drivers: list):
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

    @property
    def id(self) -> str:
        return self.contract.id

    def selected(self, check: str) -> bool:
        return self.results.selected(check)

    def ok(self, check: str, n: int = 1) -> None:
        self.results.passed(self.id, check, n)

    def fail(self, check: str, message: str, *, exchange: Exchange | None = None, operation: str | None = None,
             curl: str | None = None) -> None:
        """Record a failure of ``check``; the exchange gives the curl command and the response excerpt."""
        self.results.failed(Failure(
            check=check, provider=self.id, operation=operation, message=message,
            curl=curl or (exchange.curl() if exchange is not None else None), seed=self.config.seed,
            status=exchange.status if exchange is not None else None,
            response=exchange.excerpt() if exchange is not None else None))

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
