"""Webhook delivery: per-request webhooks (fal ``fal_webhook``, sunra ``webhook``, aigateway ``webhook_url``: the
URL a request names through its operation's OpenAPI ``callbacks``) and project-level events (a contract with
top-level ``webhooks``, e.g. OpenAI's, sent to ``--openai-webhook-url``).

Jobs have no timers (their state is a function of time), so one background task watches the jobs that
have a webhook target and delivers an event once a job's computed state is terminal. Deliveries retry with
exponential backoff (``webhook_max_attempts``, ``webhook_backoff``); every attempt is recorded and visible at
``GET /__mock/webhooks``; each attempt is its own task, so a receiver that hangs delays no other delivery.

What is sent is the family's business: ``family.webhook_event(job, state)`` returns ``(event name, payload)``,
or None when the terminal state has no event (nothing is delivered); ``family.webhook_signing`` is the
provider.yaml signing spec (:mod:`.signing`). Signature timestamps are real unix seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .. import engine as eng
from .signing import signature_headers

log = logging.getLogger("mockserver.webhooks")

#: Delivery snapshots kept in a shared store (``GET /__mock/webhooks`` of any worker lists them).
KEEP_SHARED = 2000


@dataclass
class Delivery:
    """One webhook event and its delivery attempts."""

    id: int
    provider: str
    job_id: str
    url: str
    event: str
    payload: dict
    signing: dict | None
    attempts: list[dict] = field(default_factory=list)
    delivered: bool = False
    next_at: float = 0.0  # real monotonic seconds
    in_flight: bool = False  # an attempt is under way (each attempt is its own task)

    def to_json(self) -> dict:
        """The delivery as the admin API lists it."""
        return {"id": self.id, "provider": self.provider, "job_id": self.job_id, "url": self.url,
                "event": self.event, "payload": self.payload, "delivered": self.delivered,
                "attempts": self.attempts}


class WebhookDispatcher:
    """Watches jobs with a webhook target and delivers their terminal event (one background task)."""

    POLL_SECONDS = 0.02

    def __init__(self, state):
        self.state = state
        self.watch: list[tuple[eng.Job, Any, str]] = []  # (job, family, url)
        self.deliveries: list[Delivery] = []
        self._ids = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._session = None
        self._wake = None
        self._attempts: set[asyncio.Task] = set()  # attempts under way (a slow receiver delays no other one)

    # -- registration (called by the family adapters) -----------------------------------------------
    def watch_job(self, job: eng.Job, family: Any, url: str) -> None:
        """Deliver ``job``'s terminal event to ``url`` (an absolute http(s) URL) once it ends; ``family`` is
        the adapter that renders the event (``webhook_event``, ``webhook_signing``)."""
        self.watch.append((job, family, url))
        if self._wake is not None:
            self._wake.set()

    def wake(self) -> None:
        """Check the watched jobs now instead of at the next poll (after the clock or a job was moved)."""
        if self._wake is not None:
            self._wake.set()

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the background task (on the server's loop, at startup)."""
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Cancel attempts under way and the background task; close the HTTP session."""
        for t in list(self._attempts):
            t.cancel()
        if self._attempts:
            await asyncio.gather(*self._attempts, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._session is not None:
            await self._session.close()

    def reset(self) -> None:
        """Forget watched jobs and deliveries (admin reset; every worker's deliveries with a shared store)."""
        self.watch.clear()
        self.deliveries.clear()
        if self.state.backend is not None:
            self.state.backend.list_clear("deliveries")

    def listing(self) -> list[dict]:
        """Every delivery with its attempts, as the admin API lists them.  With a shared store: the deliveries
        of every worker (the last :data:`KEEP_SHARED` records), each as of its latest attempt."""
        backend = self.state.backend
        if backend is None:
            return [d.to_json() for d in self.deliveries]
        latest: dict[int, dict] = {}
        for raw in backend.list_read("deliveries", KEEP_SHARED):
            record = json.loads(raw)
            latest[record["id"]] = record  # a later snapshot of the same delivery replaces the earlier one
        return list(latest.values())

    def _publish(self, d: Delivery) -> None:
        """Write a snapshot of ``d`` to the shared store (no-op with the memory store)."""
        backend = self.state.backend
        if backend is not None:
            backend.list_push("deliveries", json.dumps(d.to_json(), separators=(",", ":")), KEEP_SHARED)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad receiver must never stop deliveries for others
                pass
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.POLL_SECONDS)
            except TimeoutError:
                pass
            self._wake.clear()

    async def tick(self) -> None:
        """Queue events for jobs that became terminal, then send every delivery that is due."""
        now = self.state.clock.now()
        still = []
        shared = self.state.backend is not None
        for job, family, url in self.watch:
            if shared:  # another worker may have cancelled, advanced or deleted it
                job = self.state.store.reload(job)
            st = eng.state_at(job, now)
            if st.terminal and not job.deleted:
                try:
                    event = family.webhook_event(job, st)
                except Exception:  # a family bug for one job must not stall every other delivery
                    log.exception("webhook event of %s job %s could not be built; dropped", job.provider, job.id)
                    continue
                if event is None:  # e.g. a cancelled aigateway job: the contract declares no event
                    continue
                signing = family.webhook_signing
                did = self.state.backend.incr("delivery_ids") if shared else next(self._ids)
                delivery = Delivery(did, job.provider, job.id, url, event[0], event[1], signing)
                self.deliveries.append(delivery)
                self._publish(delivery)
            elif not job.deleted:
                still.append((job, family, url))
        self.watch = still
        if shared:  # the store keeps the record of finished deliveries (bounded); this process forgets them
            limit = self.state.config.webhook_max_attempts
            self.deliveries = [d for d in self.deliveries if not d.delivered and len(d.attempts) < limit]
        due = [d for d in self.deliveries if not d.delivered and not d.in_flight and d.next_at <= time.monotonic()
               and len(d.attempts) < self.state.config.webhook_max_attempts]
        for d in due:  # each attempt on its own: a receiver that hangs (up to 15 s) delays no other delivery
            d.in_flight = True
            task = asyncio.create_task(self._attempt(d))
            self._attempts.add(task)
            task.add_done_callback(self._attempts.discard)

    def _headers(self, d: Delivery, body: bytes) -> dict[str, str]:
        # Real time, not the mock's virtual clock: receivers check the signature timestamp against their own
        # clock (openai 3.57.0 ``verify_signature`` and aigateway both allow 300 s), and a manual or sped-up
        # clock is far from it.
        headers = {"Content-Type": "application/json", "User-Agent": "sora-remix-mock/0.1"}
        headers.update(signature_headers(d.signing, self.state.config, d.id, int(time.time()), body))
        return headers

    async def _attempt(self, d: Delivery) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        body = json.dumps(d.payload, separators=(",", ":")).encode()
        record: dict[str, Any] = {"attempt": len(d.attempts) + 1, "at": round(time.time(), 3)}
        try:
            async with self._session.post(d.url, data=body, headers=self._headers(d, body)) as resp:
                record["status"] = resp.status
                d.delivered = 200 <= resp.status < 300
        except Exception as exc:  # connection refused, timeout ...
            record["error"] = f"{type(exc).__name__}: {exc}"[:200]
        d.attempts.append(record)
        try:
            self._publish(d)
        except Exception:  # the store went away: the delivery itself happened
            log.warning("webhook delivery %s could not be recorded in the store", d.id)
        if not d.delivered:
            d.next_at = time.monotonic() + self.state.config.webhook_backoff * (2 ** (len(d.attempts) - 1))
        d.in_flight = False
        if self._wake is not None:  # a retry may be due sooner than the next poll
            self._wake.set()
