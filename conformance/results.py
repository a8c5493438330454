"""The result model of a conformance run: outcomes per (provider, check), failures, example counts.

Everything here is thread-safe: providers and operations run concurrently and record into one
:class:`Results`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_FAILURES_KEPT = 5  # per (provider, check); the count of failures is always exact


@dataclass
class Failure:
    """One conformance failure, with what is needed to reproduce it.

    Attributes:
        check: registry name of the check that failed.
        provider: provider id.
        operation: ``"METHOD /path"`` (contract path) or a lifecycle step, or None.
        message: what was expected and what was seen (one or a few lines).
        curl: a curl command reproducing the request, credentials replaced by ``$ENV_VAR``.
        seed: the hypothesis seed of the run (``--seed``) that produced the example.
        status: HTTP status of the response, if any.
        response: a short excerpt of the response body.
    """

    check: str
    provider: str
    operation: str | None
    message: str
    curl: str | None = None
    seed: int | None = None
    status: int | None = None
    response: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Outcome:
    """The outcome of one check for one provider.

    ``passed``/``failed`` count evaluations (one response, one observation, one example); a check that
    never evaluated is skipped, with ``skip_reason``.
    """

    provider: str
    check: str
    category: str
    passed: int = 0
    failed: int = 0
    skip_reason: str | None = None
    failures: list[Failure] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``"failed"`` | ``"passed"`` | ``"skipped"``."""
        if self.failed:
            return "failed"
        if self.passed:
            return "passed"
        return "skipped"

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "check": self.check, "category": self.category,
                "status": self.status, "passed": self.passed, "failed": self.failed,
                "skip_reason": self.skip_reason if self.status == "skipped" else None,
                "failures": [f.to_json() for f in self.failures]}


class Results:
    """All outcomes of a run. Create once per run; record from any thread.

    Args:
        checks: the selected checks (``registry.Check``), which decide the rows of the report.
        providers: the provider ids of the run.
        seed: the run's hypothesis seed.
    """

    def __init__(self, checks: list, providers: list[str], seed: int):
        self.checks = list(checks)
        self.providers = list(providers)
        self.seed = seed
        self._lock = threading.Lock()
        self._outcomes: dict[tuple[str, str], Outcome] = {}
        for pid in providers:
            for c in self.checks:
                self._outcomes[(pid, c.name)] = Outcome(pid, c.name, c.category)
        self.examples: dict[tuple[str, str], int] = {}
        self.notes: dict[str, list[str]] = {pid: [] for pid in providers}
        self.started = time.monotonic()
        self.finished: float | None = None
        self.target: dict[str, Any] = {}
        self.spend: dict[str, Any] = {}
        self.listeners: list[Callable[[str, str, str], None]] = []
        self.requests = 0
        self.internal_errors: list[str] = []

    # -- recording ----------------------------------------------------------------------------------
    def selected(self, check: str) -> bool:
        """True when ``check`` is part of this run."""
        return any(c.name == check for c in self.checks)

    def outcome(self, provider: str, check: str) -> Outcome | None:
        return self._outcomes.get((provider, check))

    def passed(self, provider: str, check: str, n: int = 1) -> None:
        """Record ``n`` passing evaluations of ``check`` (ignored if the check is not selected)."""
        with self._lock:
            o = self._outcomes.get((provider, check))
            if o is not None:
                o.passed += n
        self._notify(provider, check, "pass")

    def failed(self, failure: Failure) -> None:
        """Record one failing evaluation (ignored if its check is not selected)."""
        with self._lock:
            o = self._outcomes.get((failure.provider, failure.check))
            if o is None:
                return
            o.failed += 1
            if len(o.failures) < MAX_FAILURES_KEPT:
                if failure.seed is None:
                    failure.seed = self.seed
                o.failures.append(failure)
        self._notify(failure.provider, failure.check, "fail")

    def skip(self, provider: str, check: str, reason: str) -> None:
        """Give the reason why ``check`` did not run for ``provider`` (kept only if it never evaluates)."""
        with self._lock:
            o = self._outcomes.get((provider, check))
            if o is not None and o.skip_reason is None:
                o.skip_reason = reason

    def skip_all(self, provider: str, reason: str, category: str | None = None) -> None:
        """Skip every (or every ``category``) check of ``provider`` with ``reason``."""
        for c in self.checks:
            if category is None or c.category == category:
                self.skip(provider, c.name, reason)

    def count_examples(self, provider: str, operation: str, n: int) -> None:
        """Add ``n`` generated examples (requests) to ``operation``'s count."""
        with self._lock:
            key = (provider, operation)
            self.examples[key] = self.examples.get(key, 0) + n

    def note(self, provider: str, text: str) -> None:
        with self._lock:
            self.notes.setdefault(provider, []).append(text)

    def _notify(self, provider: str, check: str, what: str) -> None:
        for fn in self.listeners:
            try:
                fn(provider, check, what)
            except Exception:  # a progress display must never break a run
                pass

    # -- reading ------------------------------------------------------------------------------------
    def outcomes(self) -> list[Outcome]:
        """Every outcome, provider-major, checks in registry order."""
        return [self._outcomes[(p, c.name)] for p in self.providers for c in self.checks]

    @property
    def failures(self) -> list[Failure]:
        return [f for o in self.outcomes() for f in o.failures]

    @property
    def failed_count(self) -> int:
        return sum(o.failed for o in self.outcomes())

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return self.failed_count == 0

    @property
    def wall_seconds(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "ok": self.ok,
            "wall_seconds": round(self.wall_seconds, 3),
            "target": self.target,
            "spend": self.spend,
            "requests": self.requests,
            "internal_errors": self.internal_errors,
            "providers": self.providers,
            "checks": [{"name": c.name, "category": c.category, "description": c.description,
                        "origin": c.origin} for c in self.checks],
            "outcomes": [o.to_json() for o in self.outcomes()],
            "examples": [{"provider": p, "operation": op, "count": n}
                         for (p, op), n in sorted(self.examples.items())],
            "notes": self.notes,
        }
