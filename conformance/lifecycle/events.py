"""The events of a lifecycle run and the :class:`Monitor` that hands them to the lifecycle checks.

Event kinds: ``snapshot`` (a new observation of a job, with the previous one), ``submit``, ``final`` (a job
at the end, after result and downloads), ``download``, ``cancel``, ``remix``, ``extend``, ``early_result``, ``delete``,
``list``, ``stream``, ``hints`` (poll hints a driver saw), ``webhook`` (the deliveries of a job's webhook) and
``timeout``. A lifecycle check (:mod:`conformance.checks.lifecycle`) declares the kinds it receives.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..context import ProviderRun
from ..drivers import MISSING, Answer, Download, Job, Snapshot


@dataclass
class Event:
    """One thing that happened during a lifecycle run (see module docstring for the kinds)."""

    kind: str
    job: Job | None = None
    snap: Snapshot | None = None
    prev: Snapshot | None = None
    answer: Answer | None = None
    download: Download | None = None
    data: dict[str, Any] = field(default_factory=dict)


def observations(job: Job) -> list[Snapshot]:
    """A job's real observations: 2xx answers with a body (not 304, not errors)."""
    return [s for s in job.snapshots if 200 <= s.http_status < 300 and not s.not_modified]


class Monitor:
    """Dispatches lifecycle events to the selected checks of one provider run."""

    def __init__(self, run: ProviderRun):
        self.run = run
        self.handlers: dict[str, list] = defaultdict(list)
        for c in run.results.checks:
            if c.category == "lifecycle" and c.fn is not None:
                for kind in c.events:
                    self.handlers[kind].append(c.fn)
        self.jobs: list[Job] = []
        self.webhook_jobs: list[Job] = []
        self.hints_seen: dict[int, int] = {}

    def emit(self, ev: Event) -> None:
        for fn in self.handlers.get(ev.kind, []):
            try:
                fn(self.run, ev)
            except Exception as exc:  # the check crashed: a suite error, never a finding about the target
                import traceback

                self.run.suite_error("check_crashed", f"{fn.__name__} on a {ev.kind} event: {type(exc).__name__}: "
                                     f"{exc}\n" + "".join(traceback.format_exception(exc))[-1500:],
                                     check=fn.__name__)

    def observe(self, job: Job, snap: Snapshot) -> None:
        """Emit a ``snapshot`` event for a new observation (ignoring errors and 304s). A 2xx observation
        without a status field (of a family that reports one) means the job cannot be followed any more."""
        if not (200 <= snap.http_status < 300) or snap.not_modified:
            return
        obs = observations(job)
        idx = next((i for i in range(len(obs) - 1, -1, -1) if obs[i] is snap), None)
        prev = obs[idx - 1] if idx else None
        seen = self.run.seen
        if isinstance(snap.body, dict):
            seen["fields"].update(snap.body)
        # the neutral names too (a provider may call progress "percent": provider.yaml fields)
        seen["fields"].update(n for n in ("progress", "queue_position", "error", "lineage")
                              if getattr(snap, n) is not MISSING)
        seen["states"].update(snap.neutral)
        if prev is None and snap.source in ("poll", "probe", "submit") and id(job) not in seen["first"]:
            seen["first"][id(job)] = snap.neutral
        self.emit(Event("snapshot", job=job, snap=snap, prev=prev))
        if snap.status is MISSING and not snap.neutral and job.driver.supports("poll") and job.lost is None:
            job.lost = f"its {snap.source} answer carries no status field"

    def adopt(self, job: Job) -> None:
        """Judge a job observed outside the state machine (a fixture job): every observation it has, in order."""
        if job in self.jobs:
            return
        self.jobs.append(job)
        if job.submit is not None:
            self.emit(Event("submit", job=job, answer=job.submit, data={"expect": "accept"}))
        for snap in list(job.snapshots):
            self.observe(job, snap)

    def flush_hints(self) -> None:
        for d in self.run.drivers:
            start = self.hints_seen.get(id(d), 0)
            new = d.hints[start:]
            self.hints_seen[id(d)] = len(d.hints)
            if new:
                self.emit(Event("hints", data={"hints": new}))


