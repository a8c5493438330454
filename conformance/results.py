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

#: Names of suite errors: what went wrong on the suite's side (never a finding about the target).
SUITE_ERRORS = {
    "serialization": "the suite could not serialize a request it generated",
    "generation": "hypothesis could not generate data (health check or unsatisfiable strategy)",
    "check_crashed": "a check raised an exception while judging a response",
    "internal": "the suite crashed (a bug in the suite)",
    "max_time": "the run reached --max-time before every check ran",
    "interrupted": "the run was interrupted (SIGINT/SIGTERM) before every check ran",
}


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
        response_headers: the response headers (lower-case names, a few kept).
        source: where the failed expectation comes from (:meth:`conformance.registry.Source.to_json`).
        rerun: the ``conformance run`` command that repeats the check with the same seed.
    """

    check: str
    provider: str
    operation: str | None
    message: str
    curl: str | None = None
    seed: int | None = None
    status: int | None = None
    response: str | None = None
    response_headers: dict[str, str] | None = None
    source: dict[str, Any] | None = None
    rerun: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SuiteError:
    """Something the suite itself could not do (see :data:`SUITE_ERRORS`): never a conformance failure.

    Attributes:
        name: a key of :data:`SUITE_ERRORS`.
        provider, check, operation: where it happened (None when not specific).
        message: what happened (one line or a short traceback tail).
    """

    name: str
    provider: str | None
    message: str
    check: str | None = None
    operation: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "meaning": SUITE_ERRORS.get(self.name, "")}


@dataclass
class Outcome:
    """The outcome of one check for one provider.

    ``passed``/``failed`` count evaluations (one response, one observation, one example); ``noted`` counts
    deviations from expectations that no provider document backs (a convention of our mock, or an
    ``x-assumption``) seen on a target that is not our mock: they are reported, never failed. A check that
    never evaluated is skipped, with ``skip_reason``.
    """

    provider: str
    check: str
    category: str
    passed: int = 0
    failed: int = 0
    noted: int = 0
    skip_reason: str | None = None
    failures: list[Failure] = field(default_factory=list)
    notes: list[Failure] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``"failed"`` | ``"noted"`` | ``"passed"`` | ``"skipped"`` (in that precedence)."""
        if self.failed:
            return "failed"
        if self.noted:
            return "noted"
        if self.passed:
            return "passed"
        return "skipped"

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "check": self.check, "category": self.category,
                "status": self.status, "passed": self.passed, "failed": self.failed, "noted": self.noted,
                "skip_reason": self.skip_reason if self.status == "skipped" else None,
                "failures": [f.to_json() for f in self.failures],
                "notes": [f.to_json() for f in self.notes]}


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
        self.suite_errors: list[SuiteError] = []
        self.stopped: str | None = None  # why the run ended early ("max_time", "interrupted"), else None
        self.spend_ledger: Any = None  # the spend guard's live ledger (for a report written mid-run)
        self.rerun_base: str = ""  # the `conformance run` command line without --check/--seed (for reports)
        self.parallel: dict[str, Any] | None = None  # --parallel N > 1: processes, assignment, budget (reports)

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

    def failed(self, failure: Failure, *, documented: bool = True) -> None:
        """Record one failing evaluation (ignored if its check is not selected). ``documented=False`` records
        it as a note instead (an expectation no provider document backs, on a target that is not our mock)."""
        with self._lock:
            o = self._outcomes.get((failure.provider, failure.check))
            if o is None:
                return
            if failure.seed is None:
                failure.seed = self.seed
            if failure.rerun is None:
                failure.rerun = self.rerun_command(failure.provider, failure.check, failure.seed)
            if documented:
                o.failed += 1
                if len(o.failures) < MAX_FAILURES_KEPT:
                    o.failures.append(failure)
            else:
                o.noted += 1
                if len(o.notes) < MAX_FAILURES_KEPT:
                    o.notes.append(failure)
        self._notify(failure.provider, failure.check, "fail" if documented else "note")

    def rerun_command(self, provider: str, check: str, seed: int | None) -> str:
        """The command that repeats ``check`` of ``provider`` with ``seed`` against the same target."""
        base = self.rerun_base or "conformance run"
        return f"{base} --provider {provider} --check {check} --seed {seed if seed is not None else self.seed}"

    def suite_error(self, name: str, provider: str | None, message: str, *, check: str | None = None,
                    operation: str | None = None) -> None:
        """Record a suite error (see :data:`SUITE_ERRORS`); identical errors are kept once."""
        err = SuiteError(name, provider, message[:4000], check=check, operation=operation)
        with self._lock:
            if any((e.name, e.provider, e.check, e.operation, e.message) ==
                   (err.name, err.provider, err.check, err.operation, err.message) for e in self.suite_errors):
                return
            self.suite_errors.append(err)

    @property
    def internal_errors(self) -> list[str]:
        """Messages of the suite errors (kept for callers of the earlier API)."""
        return [f"{e.provider or '-'}: {e.name}: {e.message.splitlines()[0] if e.message else ''}"
                for e in self.suite_errors]

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

    def absorb(self, part: dict[str, Any]) -> None:
        """Add a partial report to this run: the :meth:`to_json` of a run over some of this run's providers
        with the same checks and seed (one process of ``conformance run --parallel N``).

        Evaluation counts, kept failures and notes, skip reasons, example counts, provider notes, suite
        errors and the request count are added; outcomes of providers or checks this run does not have are
        ignored. ``seed``, ``target``, ``spend``, ``stopped`` and the wall time are left to the caller.

        Args:
            part: the JSON dict of a :class:`Results` (``to_json()``, or the file ``--json`` wrote).

        Raises:
            KeyError, TypeError: ``part`` is not such a dict (a truncated or foreign file).
        """
        with self._lock:
            for o in part["outcomes"]:
                mine = self._outcomes.get((o["provider"], o["check"]))
                if mine is None:
                    continue
                mine.passed += int(o["passed"])
                mine.failed += int(o["failed"])
                mine.noted += int(o["noted"])
                if o.get("skip_reason") and mine.skip_reason is None:
                    mine.skip_reason = o["skip_reason"]
                for kept, items in ((mine.failures, o["failures"]), (mine.notes, o["notes"])):
                    for f in items:
                        if len(kept) < MAX_FAILURES_KEPT:
                            kept.append(Failure(**f))
            for e in part["examples"]:
                key = (e["provider"], e["operation"])
                self.examples[key] = self.examples.get(key, 0) + int(e["count"])
            for pid, texts in (part.get("notes") or {}).items():
                mine_notes = self.notes.setdefault(pid, [])
                mine_notes.extend(t for t in texts if t not in mine_notes)
            self.requests += int(part.get("requests") or 0)
        for e in part["suite_errors"]:
            self.suite_error(e["name"], e.get("provider"), e.get("message") or "", check=e.get("check"),
                             operation=e.get("operation"))

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
    def noted_count(self) -> int:
        return sum(o.noted for o in self.outcomes())

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return self.failed_count == 0

    @property
    def wall_seconds(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    def totals(self) -> dict[str, int]:
        """Counts of (provider, check) outcomes by status, failing evaluations, notes and suite errors."""
        out = {"passed": 0, "failed": 0, "noted": 0, "skipped": 0}
        for o in self.outcomes():
            out[o.status] += 1
        out["failing_evaluations"] = self.failed_count
        out["notes"] = self.noted_count
        out["suite_errors"] = len(self.suite_errors)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "ok": self.ok,
            "wall_seconds": round(self.wall_seconds, 3),
            "target": self.target,
            "spend": self.spend or (self.spend_ledger.to_json() if self.spend_ledger is not None else {}),
            "requests": self.requests,
            "suite_errors": [e.to_json() for e in self.suite_errors],
            "stopped": self.stopped,
            "parallel": self.parallel,
            "totals": self.totals(),
            "providers": self.providers,
            "checks": [{"name": c.name, "category": c.category, "description": c.description,
                        "origin": c.origin} for c in self.checks],
            "outcomes": [o.to_json() for o in self.outcomes()],
            "examples": [{"provider": p, "operation": op, "count": n}
                         for (p, op), n in sorted(self.examples.items())],
            "notes": self.notes,
        }
