"""The "job" family (aigateway): ``POST`` a generation request, get HTTP 202 and a ``job``; poll it.

Wire shape (specs/aigateway/openapi.yaml, from seeds/004_94f7a976846d8512.txt and reference/protocols.md §4,
documentation only, low confidence):

- submit (``x-role: submit``): 202 (the contract's success status) with ``{"id": "job_...", "object": "job",
  "status", "model", "created"}``. The model decides the kind (``x-kind`` mapping, ``ctx.op.kind_for``); a
  remix needs a completed source named by ``x-source`` (``/video_id``): unknown -> 404 ``not_found``, not
  completed -> 409 ``conflict``, result expired -> 404 ``expired``.
- retrieve (``x-role: retrieve``): the job; ``result`` once completed, ``error {code, message}`` once failed.
  Statuses come from provider.yaml (the first entry per neutral state: ``running``, never ``processing``).
  ``result`` carries both ``url`` and ``file_url`` (the two docs pages disagree, the contract accepts
  either), ``duration`` (seconds), ``resolution`` ("WxH") and ``expires_at`` (completion + asset TTL).
  A poll less than ``mock.min_poll_interval_seconds`` (virtual seconds, per API key and job) after the
  previous answered poll gets **304 Not Modified** with no body, as reference/protocols.md §4 documents
  ("Polling faster than every 3 s -> 304"); 0 or absent disables it.
- cancel (``x-role: cancel``): 200 with the job in status ``cancelled`` while queued or in progress; a job
  already in a terminal state answers 409 ``conflict`` and stays unchanged (the contract's x-assumption).
- A completed job whose result has expired (``mock.asset_ttl_seconds``, 24 h) is answered like an unknown
  one: 404 with the ``expired`` error kind.

Webhooks: the submit operation's OpenAPI ``callbacks`` name where the URL is (``{$request.body#/webhook_url}``);
events ``job.completed`` / ``job.failed`` are signed with ``aig-signature`` (see :mod:`mockserver.webhooks`).
A cancelled job sends no event (the contract declares only those two event types).
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .. import engine as eng
from .. import media
from .base import Family


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class JobFamily(Family):
    """Adapter of the ``job`` dialect (aigateway). Roles: ``submit``, ``retrieve``, ``cancel``."""

    name = "job"

    # -- rendering ----------------------------------------------------------------------------------
    def status_of(self, st: eng.State) -> str:
        """The provider's status value for a state (provider.yaml ``statuses``, first entry per state)."""
        return self.contract.status_value(st.status)

    def result_of(self, job: eng.Job, st: eng.State) -> dict[str, Any]:
        """``result`` of a completed job: ``url`` and ``file_url`` (same link), ``duration`` (seconds),
        ``resolution`` ("WxH") and ``expires_at`` (unix seconds)."""
        url = self.file_url(job, "video")
        return {"url": url, "file_url": url, "duration": int(job.params.get("seconds", 4)),
                "resolution": str(job.params.get("size", "720x1280")), "expires_at": self.expires_at(job, st)}

    def job_object(self, job: eng.Job, st: eng.State | None = None) -> dict[str, Any]:
        """The provider's job object at the current time (``result`` / ``error`` only where the contract
        requires them: completed / failed)."""
        st = st or self.job_state(job)
        out: dict[str, Any] = {"id": job.id, "object": "job", "status": self.status_of(st),
                               "model": job.params.get("model"), "created": self.wall(job.created)}
        if out["model"] is None:
            del out["model"]
        if st.status == eng.COMPLETED:
            out["result"] = self.result_of(job, st)
        elif st.status == eng.FAILED:
            out["error"] = {"code": job.failure or "generation_failed", "message": self.failure_message(job)}
        return out

    def params_from(self, body: Any, source: eng.Job | None) -> dict[str, Any]:
        """Neutral parameters (provider.yaml ``mock.params``), with ``seconds`` clamped to the mock's media
        limit (:data:`mockserver.media.MAX_SECONDS`): the contract accepts any positive ``duration``, and
        ``result.duration`` reports the length actually rendered."""
        params = super().params_from(body, source)
        params["seconds"] = max(1, min(int(params.get("seconds", 4)), int(media.MAX_SECONDS)))
        return params

    @staticmethod
    def _success_status(op) -> int:
        codes = [int(c) for c in (op.definition.get("responses") or {}) if str(c).isdigit() and str(c)[0] == "2"]
        return min(codes) if codes else 200

    def _job_id(self, ctx) -> str:
        return next(iter(ctx.path_params.values()), "")

    def _id_param(self, ctx) -> str | None:
        return next(iter(ctx.path_params), None)

    def _missing(self, ctx, job_id: str) -> web.Response:
        return ctx.error("not_found", f"Job '{job_id}' not found.", param=self._id_param(ctx))

    def _live(self, ctx) -> tuple[eng.Job | None, eng.State | None, web.Response | None]:
        """The job named in the path with its state, or the 404 (unknown, or result expired)."""
        job_id = self._job_id(ctx)
        job = self.find(job_id)
        if job is None:
            return None, None, self._missing(ctx, job_id)
        st = self.job_state(job)
        if self.expired(job, st):
            return None, None, ctx.error("expired", f"Job '{job_id}' and its result have expired.",
                                         param=self._id_param(ctx))
        return job, st, None

    # -- polling rate (304) -------------------------------------------------------------------------
    def _min_poll_interval(self) -> float:
        try:
            return max(0.0, float(self.mock.get("min_poll_interval_seconds") or 0.0))
        except (TypeError, ValueError):
            return 0.0

    def _too_soon(self, ctx, job: eng.Job) -> bool:
        """True when this API key polled ``job`` less than the minimum interval ago (virtual seconds).

        Only answered (200) polls start a new interval, so a client polling every second still gets a
        fresh job every 3 s. The key is stored hashed in the job's private params, with the job's timing:
        a job moved by the admin API (``POST /__mock/jobs/.../advance`` gives it a new timing) has changed,
        so its next poll is answered even within the interval (on a manual clock the interval would
        otherwise never pass).
        """
        interval = self._min_poll_interval()
        if interval <= 0:
            return False
        who = hashlib.blake2s((ctx.api_key or "").encode(), digest_size=8).hexdigest()
        polls: dict[str, tuple[float, list[float]]] = job.params.setdefault("_polls", {})
        now = self.now()
        timing = [job.timing.queued, job.timing.in_progress]
        last = polls.get(who)
        if last is not None and now - last[0] < interval and last[1] == timing:
            return True
        polls[who] = (now, timing)
        return False

    # -- operations ---------------------------------------------------------------------------------
    async def op_submit(self, ctx) -> web.Response:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        hook = self.callback_url(ctx)
        if hook is not None and not _is_http_url(hook):
            return ctx.error("validation", f"webhook URL {hook!r} must be an absolute http(s) URL",
                             param="webhook_url")
        kind, source, err = self.kind_and_source(ctx, body)
        if err is not None:
            return err
        job = self.create_job(ctx, body, kind=kind, source=source)
        return ctx.json(self.job_object(job), status=self._success_status(ctx.op))

    async def op_retrieve(self, ctx) -> web.Response:
        job, st, err = self._live(ctx)
        if err is not None:
            return err
        if self._too_soon(ctx, job):
            return web.Response(status=304)
        return ctx.json(self.job_object(job, st))

    async def op_cancel(self, ctx) -> web.Response:
        job, st, err = self._live(ctx)
        if err is not None:
            return err
        if not self.store.cancel(job, self.now()):
            return ctx.error("conflict", f"Job {job.id} is already {self.status_of(st)}.",
                             param=self._id_param(ctx))
        return ctx.json(self.job_object(job))

    # -- webhooks -----------------------------------------------------------------------------------
    def webhook_target(self, ctx) -> str | None:
        """The request's ``webhook_url`` (found through the contract's ``callbacks``), or None."""
        url = self.callback_url(ctx)
        return url if url and _is_http_url(url) else None

    def webhook_signing(self) -> str | None:
        """The signing scheme of :mod:`mockserver.webhooks`: provider.yaml ``mock.webhook_signing``, by default
        ``"aig"`` (``aig-timestamp`` / ``aig-signature``, reference/protocols.md §4)."""
        return self.mock.get("webhook_signing", "aig")

    def webhook_event(self, job: eng.Job, st: eng.State) -> tuple[str, dict[str, Any]] | None:
        """``("job.completed" | "job.failed", event)`` for a finished job, None for a cancelled one.

        Event (contract ``WebhookEvent``): ``{"id": "evt_...", "type", "created": unix s, "data": {"job_id",
        "model", "result_url", "usage": {"seconds", "cost_usd"}}}``; a failed job has ``result_url`` null
        and no usage (it is not billed). ``cost_usd`` = seconds x provider.yaml ``pricing.usd_per_second``.
        """
        if st.status not in (eng.COMPLETED, eng.FAILED):
            return None
        etype = "job.completed" if st.status == eng.COMPLETED else "job.failed"
        data: dict[str, Any] = {"job_id": job.id, "model": job.params.get("model"),
                                "result_url": self.file_url(job, "video") if st.status == eng.COMPLETED else None}
        if data["model"] is None:
            del data["model"]
        if st.status == eng.COMPLETED:
            seconds = int(job.params.get("seconds", 4))
            price = self.contract.price_per_second_usd
            data["usage"] = {"seconds": seconds,
                             "cost_usd": None if price is None else round(seconds * price, 6)}
        event_id = "evt_" + job.id.removeprefix(self.meta["ids"]["prefix"])
        return etype, {"id": event_id, "type": etype, "created": self.wall(st.finished_at), "data": data}
