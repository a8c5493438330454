"""The state of one mock server (:class:`MockState`) and the provider hosts it serves (:class:`HostMount`).

Everything a server keeps lives here, per server (two apps in one process share nothing): jobs, clock,
faults, journal, webhook deliveries, request-id sequence. Handlers reach it as ``request.app[STATE_KEY]``
(:data:`mockserver.http.STATE_KEY`). This module imports the stages the state holds (fault book, journal,
request ids, webhook dispatcher, job store) but not the application (``mockserver.app``) or the admin API,
which both import it.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass, field
from typing import Any

import specs
from specs import Contract, Operation

from . import engine as eng
from .characters import CharacterStore
from .config import ConfigError, MockConfig
from .delivery import WebhookDispatcher
from .http import secret_header_names
from .middleware import FaultBook, RequestIds
from .store import StoreError, StoreUnavailable, open_backend
from .validation import Authenticator, HostValidator


@dataclass
class HostMount:
    """One provider host as served by this mock: where it is mounted and its compiled contract.

    Attributes:
        contract: the provider's contract; ``host``: its provider.yaml ``hosts`` entry.
        prefix: URL path prefix in this server, up to the host base URL's path (``/openai/v1``).
        validator: openapi-core validation of this host's requests.
        authenticator: the provider's credentials check.
        operations: the contract operations this host serves.
        family: the family adapter (:mod:`mockserver.rendering`), set once the mount exists.
        handlers: composed route handlers by operationId (set when routes are built).
    """

    contract: Contract
    host: dict
    prefix: str
    validator: HostValidator
    authenticator: Authenticator
    operations: list[Operation]
    family: Any = None
    handlers: dict[str, Any] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return self.contract.id

    @property
    def host_id(self) -> str:
        return self.host["id"]


class MockState:
    """All state of one mock server: contracts, the job store, the characters, the clock, faults, journal and
    webhooks.

    Created by :func:`mockserver.app.build_app`; reachable from handlers as ``request.app[STATE_KEY]``.
    """

    def __init__(self, config: MockConfig):
        config.validate()
        self.config = config
        self.rng = random.Random(config.seed)
        self.contracts: dict[str, Contract] = {pid: specs.load(pid) for pid in config.providers}
        self.characters = CharacterStore(random.Random(config.seed + 2))  # not jobs: createCharacter/getCharacter
        #: header names redacted in the journal: the usual credentials plus every served provider's auth header
        self.secret_headers = secret_header_names(self.contracts.values())
        self.mounts: list[HostMount] = []
        #: the shared store's backend (``--store sqlite:...``/``redis:...``), None for memory
        self.backend = open_backend(config.store)
        try:
            if self.backend is None:
                self.clock = eng.ManualClock() if config.clock == "manual" else eng.SystemClock(speed=config.speed)
                self.store = eng.JobStore(self.clock, rng=random.Random(config.seed + 1))
                self.journal: Any = collections.deque(maxlen=config.journal_size)
                self.faults = FaultBook(self, config.faults)
            else:
                self._open_shared(config)
        except ValueError as exc:  # FaultError
            raise ConfigError(f"faults: {exc}") from None
        except StoreUnavailable as exc:
            raise StoreError(f"--store {self.backend.public_url}: {exc}") from None
        self.webhooks = WebhookDispatcher(self)
        self.request_ids = RequestIds()
        self.public_base_url: str = config.public_base_url or ""
        self.started = time.time()
        self.ca_path: str | None = None
        self.replay: Any = None  # the mockserver.middleware.Replayer when serving a cassette
        self._jobs_moved: asyncio.Event | None = None

    def _open_shared(self, config: MockConfig) -> None:
        """Clock, job store, faults and journal in the shared store (:mod:`mockserver.store`)."""
        from .store.shared import (
            SharedFaultBook,
            SharedJobStore,
            SharedJournal,
            SharedManualClock,
            SharedSystemClock,
        )

        backend = self.backend
        self.clock = SharedManualClock(backend) if config.clock == "manual" else SharedSystemClock(backend,
                                                                                                config.speed)
        boot = backend.incr("boots")  # every process draws its own ids (an id another took is drawn again)
        self.store = SharedJobStore(backend, self.clock, rng=random.Random(f"{config.seed}:{boot}"))
        self.journal = SharedJournal(backend, config.journal_size, self.secret_headers, config.worker)
        self.faults = SharedFaultBook(self, backend, None if config.worker is not None else config.faults)

    def store_info(self) -> dict[str, Any]:
        """What ``/__mock/health`` says about the store and the process that answered."""
        return {"kind": "memory" if self.backend is None else self.backend.kind,
                "url": "memory" if self.backend is None else self.backend.public_url,
                "shared": self.backend is not None}

    def close(self) -> None:
        """Close the store's connections of this process (at shutdown)."""
        if self.backend is not None:
            self.backend.close()

    # -- jobs moved out of band -------------------------------------------------------------------
    def jobs_moved_event(self) -> asyncio.Event:
        """An event that is set the next time a job is moved by the admin API (``advance``).

        Waiters that sleep until a job's next status change (the synchronous family) take it *before*
        reading the state and wait on it with their timeout, so an advanced job wakes them at once.
        """
        if self._jobs_moved is None:
            self._jobs_moved = asyncio.Event()
        return self._jobs_moved

    def jobs_moved(self) -> None:
        """Wake everything that schedules by job timing: waiters of :meth:`jobs_moved_event` and the
        webhook dispatcher (which then delivers the events of jobs that just became terminal)."""
        event, self._jobs_moved = self._jobs_moved, None
        if event is not None:
            event.set()
        self.webhooks.wake()

    # -- provider helpers -------------------------------------------------------------------------
    def timing(self, provider: str) -> eng.Timing:
        """The lifecycle timing of a provider: provider.yaml ``mock`` defaults, overridden by config."""
        base = self.contracts[provider].provider["mock"]
        over = self.config.timings.get(provider, {})
        return eng.Timing(queued=float(over.get("queued_seconds", base["queued_seconds"])),
                          in_progress=float(over.get("in_progress_seconds", base["in_progress_seconds"])))

    def asset_ttl(self, provider: str) -> float:
        base = self.contracts[provider].provider["mock"]
        return float(self.config.timings.get(provider, {}).get("asset_ttl_seconds", base["asset_ttl_seconds"]))

    def mount_for(self, provider: str, host_id: str | None = None) -> HostMount:
        for m in self.mounts:
            if m.provider == provider and (host_id is None or m.host_id == host_id):
                return m
        raise KeyError(f"{provider}/{host_id} is not mounted")

    def base_url(self, provider: str, host_id: str | None = None) -> str:
        """Absolute URL of a mounted host, like the real provider's base URL (``.../openai/v1``)."""
        return self.public_base_url.rstrip("/") + self.mount_for(provider, host_id).prefix

    def wall(self) -> float:
        """Current wall-clock time in unix seconds as the mock reports it (follows the virtual clock)."""
        return self.clock.wall()

    def to_wall(self, virtual: float | None) -> int | None:
        """Convert a virtual engine time (seconds) to integer unix seconds, or None."""
        if virtual is None:
            return None
        return int(self.clock.to_wall(virtual))


__all__ = ["HostMount", "MockState"]
