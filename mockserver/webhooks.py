"""Webhook delivery: per-request webhooks (fal ``fal_webhook``, sunra ``webhook``, aigateway
``webhook_url``) and OpenAI's project-level events (``--openai-webhook-url``).

Jobs have no timers (their state is a function of time), so one background task watches the jobs that
have a webhook target and delivers an event once a job's computed state is terminal. Deliveries retry with
exponential backoff (``webhook_max_attempts``, ``webhook_backoff``); every attempt is recorded and visible at
``GET /__mock/webhooks``.

A family's ``webhook_event(job, state)`` returns ``(event_name, payload)``, or None when the terminal state
has no event (nothing is delivered). Signature timestamps are real unix seconds (see ``_headers``).

Signing:

- OpenAI (Standard Webhooks, as verified by ``openai`` 3.54.0 ``lib/_webhooks.py``): headers
  ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of
  "{id}.{timestamp}.{body}">`` with the base64 key after the ``whsec_`` prefix.
- aigateway (seed 004 / reference §4): ``aig-timestamp`` and ``aig-signature``: hex HMAC-SHA256 of
  ``"{timestamp}.{body}"`` with the configured secret.
- fal and sunra: unsigned (their signing is unconfirmed in reference/protocols.md).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from . import engine as eng

log = logging.getLogger("mockserver.webhooks")


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<sig>`` for the Standard Webhooks scheme used by OpenAI (``whsec_`` base64 secret)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign_hex(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"`` (aigateway's ``aig-signature``)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    """One webhook event and its delivery attempts."""

    id: int
    provider: str
    job_id: str
    url: str
    event: str
    payload: dict
    signing: str | None
    attempts: list[dict] = field(default_factory=list)
    delivered: bool = False
    next_at: float = 0.0  # real monotonic seconds
    in_flight: bool = False  # an attempt is under way (each attempt is its own task)

    def to_json(self) -> dict:
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
    def job_created(self, job: eng.Job, family, ctx) -> None:
        """Register a new job if its request (or the provider's project settings) names a webhook URL."""
        target = getattr(family, "webhook_target", None)
        url = target(ctx) if target else None
        if url:
            self.watch.append((job, family, url))
            if self._wake is not None:
                self._wake.set()

    def wake(self) -> None:
        """Check the watched jobs now instead of at the next poll (after the clock or a job was moved)."""
        if self._wake is not None:
            self._wake.set()

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
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
        self.watch.clear()
        self.deliveries.clear()

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
        for job, family, url in self.watch:
            st = eng.state_at(job, now)
            if st.terminal and not job.deleted:
                try:
                    event = family.webhook_event(job, st)
                except Exception:  # a family bug for one job must not stall every other delivery
                    log.exception("webhook event of %s job %s could not be built; dropped", job.provider, job.id)
                    continue
                if event is None:  # e.g. a cancelled aigateway job: the contract declares no event
                    continue
                signing = getattr(family, "webhook_signing", lambda: None)()
                self.deliveries.append(Delivery(next(self._ids), job.provider, job.id, url, event[0], event[1],
                                                signing))
            elif not job.deleted:
                still.append((job, family, url))
        self.watch = still
        due = [d for d in self.deliveries if not d.delivered and not d.in_flight and d.next_at <= time.monotonic()
               and len(d.attempts) < self.state.config.webhook_max_attempts]
        for d in due:  # each attempt on its own: a receiver that hangs (up to 15 s) delays no other delivery
            d.in_flight = True
            task = asyncio.create_task(self._attempt(d))
            self._attempts.add(task)
            task.add_done_callback(self._attempts.discard)

    def _headers(self, d: Delivery, body: bytes) -> dict[str, str]:
        # Real time, not the mock's virtual clock: receivers check the signature timestamp against their own
        # clock (openai 3.54.0 ``verify_signature`` and aigateway both allow 300 s), and a manual or sped-up
        # clock is far from it.
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "sora-remix-mock/0.1"}
        if d.signing == "standard":
            msg_id = f"wh_{d.id:08d}"
            headers.update({"webhook-id": msg_id, "webhook-timestamp": str(ts),
                            "webhook-signature": sign_standard_webhook(self.state.config.openai_webhook_secret,
                                                                       msg_id, ts, body)})
        elif d.signing == "aig":
            headers.update({"aig-timestamp": str(ts),
                            "aig-signature": sign_hex(self.state.config.aigateway_webhook_secret, ts, body)})
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
        if not d.delivered:
            d.next_at = time.monotonic() + self.state.config.webhook_backoff * (2 ** (len(d.attempts) - 1))
        d.in_flight = False
        if self._wake is not None:  # a retry may be due sooner than the next poll
            self._wake.set()
