"""Family drivers: one per protocol family, chosen by the host's ``family`` in provider.yaml.

``drivers_for(contract, target, client)`` returns one driver per provider host the target has a URL for.
The drift recorder (:mod:`conformance.drift.flows`) drives providers through these same drivers: every
request they send passes through ``client.hooks`` (see :mod:`conformance.http`), where it is recorded.
"""

from __future__ import annotations

from specs import Contract

from ..http import Client
from .base import MISSING, Answer, Asset, Download, Driver, DriverError, Job, Result, Snapshot
from .job import JobDriver
from .queue import QueueDriver, sse_events
from .sync import SyncDriver
from .video_object import VideoObjectDriver

DRIVERS: dict[str, type[Driver]] = {
    "video_object": VideoObjectDriver,
    "queue": QueueDriver,
    "job": JobDriver,
    "sync": SyncDriver,
}


def drivers_for(contract: Contract, target, client: Client, *, timeout: float = 60.0,
                job_timeout: float = 60.0) -> list[Driver]:
    """One driver per host of ``contract`` that ``target`` has a base URL for (provider.yaml host order).
    ``timeout``: seconds per request; ``job_timeout``: seconds a job may take to end.

    Raises:
        KeyError: a host's family has no driver (a new family needs a driver class here).
    """
    out = []
    for h in contract.hosts:
        base = target.base_url(contract.id, h["id"])
        if base is None:
            continue
        cls = DRIVERS[h["family"]]
        out.append(cls(contract, h["id"], base, client, target.credentials[contract.id], mock=target.ours,
                       timeout=timeout, job_timeout=job_timeout))
    return out


__all__ = ["DRIVERS", "MISSING", "Answer", "Asset", "Download", "Driver", "DriverError", "Job", "JobDriver",
           "QueueDriver", "Result", "Snapshot", "SyncDriver", "VideoObjectDriver", "drivers_for", "sse_events"]
