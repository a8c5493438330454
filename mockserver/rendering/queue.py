"""The request-queue family (fal's queue host, sunra): submit -> request id + URLs, then poll.

Wire shape (reference/protocols.md §2-3; fal-client 1.0.3 and sunra-client 0.6.0 ``client.py``):

- ``submit`` answers the request id and the URLs of this host's ``status`` / ``result`` / ``cancel``
  operations (their contract paths with the id filled in, under the mock's base URL of the host), so fal's
  "app id without subpath" style and sunra's ``/v1/queue/requests/{id}`` style both come from the contracts.
- ``status`` answers the job in its state (queue position while queued, logs while running when they were
  asked for, metrics once completed, each provider's own failure and cancel shapes).
- ``status_stream`` is Server-Sent Events: one ``data:`` line with the status body whenever it changes,
  ending after a terminal status (or when the client goes away, or after ``mock.stream_max_seconds``).
- ``result`` answers the model output, the provider's failure error, or the "not completed yet" error.
- ``cancel`` answers per the contract (fal 202/400/404 with a ``status`` word; sunra 200 or its envelope).

Every provider difference is data in ``provider.yaml`` ``mock:`` (templates in the language of
:mod:`specs.templates`; variables: :mod:`mockserver.rendering.variables`):

``submit``      the submit answer.
``job``         the status body, by state (``{common, queued, in_progress, completed, failed, cancelled}``).
``logs``        ``{format: list, item: {...}}`` (fal: log items) or ``{format: string}`` (sunra-client 0.6.0
                types ``logs`` as ``str``: the messages joined by newlines).
``logs_query``  the query parameter of submit and status reads that asks for logs (``1``/``true``,
                ``0``/``false``).
``result``      the model output of a completed job.
``file``        a file object (``$video`` & co.).
``cancel``      answers ``accepted`` / ``finished`` / ``unknown``: ``{status, body}`` or ``{error: kind,
                message}`` (an ``errors.kinds`` entry).
``webhook``     see :mod:`mockserver.rendering.base` (fal ``fal_webhook``, sunra ``webhook``).
``output_id``   ``{prefix}``: the id a later remix names (fal's output ``video_id``) is ``prefix`` + the job id
                without dashes, so it differs from the request id as on fal (specs/fal provider.yaml
                ``ids.note``) and a remix naming a request id is answered like an unknown video; a video
                seeded through the admin API (no request id) is also accepted under its own id. Without
                ``output_id`` the remix source is the job id itself (sunra, onerouter).
``cancelled_message`` message of the error answered for the result of a cancelled job.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from aiohttp import web

from specs.templates import Vars

from .. import engine as eng
from .base import Family

_TRUE = {"1", "true"}
_FALSE = {"0", "false"}

#: Seconds of real time an SSE status stream stays open at most (a manual clock may never move).
STREAM_MAX_SECONDS = 300.0
#: Real seconds between two reads of a job's computed state while streaming.
STREAM_POLL_SECONDS = 0.05


def parse_flag(value: str | None) -> bool | None:
    """``logs`` query values: ``1``/``true`` -> True, ``0``/``false`` -> False, anything else -> None."""
    if value is None:
        return None
    v = value.strip().lower()
    return True if v in _TRUE else False if v in _FALSE else None


class QueueOutputs(Family):
    """What the queue and sync families share: output ids, result bodies, failure errors.

    Not used on its own; :class:`QueueFamily` and :class:`mockserver.rendering.sync.SyncFamily` derive from it.
    """

    # -- output ids (the remix source) -------------------------------------------------------------
    def output_id(self, job: eng.Job) -> str:
        """The id a later remix names: ``mock.output_id.prefix`` + the job id without dashes, or the job id."""
        rule = self.mock.get("output_id")
        if not rule:
            return job.id
        prefix = rule.get("prefix", "")
        return job.id if job.id.startswith(prefix) else prefix + job.id.replace("-", "")

    def job_for_output_id(self, value: str | None) -> eng.Job | None:
        """The job whose :meth:`output_id` is ``value`` (the inverse of :meth:`output_id`), or None."""
        if not value:
            return None
        rule = self.mock.get("output_id")
        if not rule:
            return self.find(value)
        prefix = rule.get("prefix", "")
        candidates = [value]
        if prefix and value.startswith(prefix):
            rest = value[len(prefix):]
            candidates.append(rest)
            if re.fullmatch(r"[0-9a-fA-F]{32}", rest):
                candidates.append(str(uuid.UUID(hex=rest)))
        for cid in candidates:
            job = self.find(cid)
            if job is not None and self.output_id(job) == value:
                return job
        job = self.find(value)
        if job is not None and not job.requested:
            return job  # seeded through the admin API: it has no request id, so its id names the video
        return None

    def source_id_of(self, ctx, body: Any) -> str | None:
        """The job id of the remix source a request names by its output id (or the raw id when none matches)."""
        raw = super().source_id_of(ctx, body)
        job = self.job_for_output_id(raw)
        return job.id if job is not None else raw

    def resolve_source(self, ctx, body: Any):
        """Like :meth:`Family.resolve_source`, but the source is named by its output id (fal ``video_id``);
        a job id that is not an output id (fal's request id) is an unknown video (404)."""
        raw = super().source_id_of(ctx, body)
        if self.mock.get("output_id") and raw and self.job_for_output_id(raw) is None:
            return None, ctx.error("not_found", f"video {raw!r} not found; remix takes the output id of an "
                                   "earlier generation", param=self.source_param(ctx) or "body")
        return super().resolve_source(ctx, body)

    # -- answers ------------------------------------------------------------------------------------
    def failure_error(self, ctx, job: eng.Job) -> web.Response:
        """The provider's error for a failed generation (``generation_failed`` kind)."""
        return ctx.error("generation_failed", self.failure_message(job), param=self.prompt_param)

    def cancelled_error(self, ctx, job: eng.Job) -> web.Response:
        """The provider's ``conflict`` error for the result of a cancelled job (``mock.cancelled_message``)."""
        return ctx.error("conflict", self.cancelled_message, param=ctx.path_param or self.id_param)


class QueueFamily(QueueOutputs):
    """Adapter of the ``queue`` family (fal queue host, sunra). See the module docstring."""

    name = "queue"

    def _missing(self, ctx, request_id: str) -> web.Response:
        return ctx.error("not_found", f"request {request_id!r} not found", param=ctx.path_param)

    def _logs_flag(self, ctx) -> bool | None:
        name = self.mock.get("logs_query")
        return parse_flag(ctx.request.query.get(name)) if name else None

    def _wants_logs(self, ctx, job: eng.Job) -> bool:
        flag = self._logs_flag(ctx)
        return bool(job.logs) if flag is None else flag

    def status_body(self, job: eng.Job, st: eng.State, logs: bool) -> Any:
        """The provider's status body for a job at state ``st`` (``mock.job`` for its state)."""
        return self.render("job", self.variables(job, st, logs=logs), st.status)

    # -- operations ---------------------------------------------------------------------------------
    async def op_submit(self, ctx) -> web.Response:
        job, err = self.submit_job(ctx, logs=self._logs_flag(ctx))
        if err is not None:
            return err
        return ctx.json(self.render("submit", self.variables(job, self.job_state(job))))

    async def op_status(self, ctx) -> web.Response:
        rid = ctx.path_id
        job = self.find(rid)
        if job is None:
            return self._missing(ctx, rid)
        return ctx.json(self.status_body(job, self.job_state(job), self._wants_logs(ctx, job)))

    async def op_status_stream(self, ctx) -> web.StreamResponse:
        rid = ctx.path_id
        job = self.find(rid)
        if job is None:
            return self._missing(ctx, rid)
        logs = self._wants_logs(ctx, job)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        self.state.request_ids.stamp(resp, ctx.route.request_id_headers)  # before the headers are sent
        await resp.prepare(ctx.request)
        deadline = time.monotonic() + float(self.mock.get("stream_max_seconds", STREAM_MAX_SECONDS))
        last = None
        try:
            while True:
                st = self.job_state(self.store.reload(job))  # a shared store: another worker may move it
                text = json.dumps(self.status_body(job, st, logs), separators=(",", ":"))
                if text != last:
                    await resp.write(f"data: {text}\n\n".encode())
                    last = text
                transport = ctx.request.transport
                if st.terminal or time.monotonic() >= deadline or transport is None or transport.is_closing():
                    break
                await asyncio.sleep(STREAM_POLL_SECONDS)
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away; nothing more to send
        return resp

    async def op_result(self, ctx) -> web.Response:
        rid = ctx.path_id
        job = self.find(rid)
        if job is None:
            return self._missing(ctx, rid)
        st = self.job_state(job)
        if st.status == eng.FAILED:
            return self.failure_error(ctx, job)
        if st.status == eng.CANCELLED:
            return self.cancelled_error(ctx, job)
        if st.status != eng.COMPLETED:
            return ctx.error("conflict", f"request {rid!r} is {self.status_word(st.status)}; its result is "
                             f"available once it is {self.status_word(eng.COMPLETED)}", param=ctx.path_param)
        if self.expired(job, st):
            return ctx.error("expired", param=ctx.path_param)
        body = self.result_body(job, st)
        self.mark_delivered(job)
        return ctx.json(body)

    async def op_cancel(self, ctx) -> web.Response:
        rid = ctx.path_id
        answers = self.template("cancel")
        job = self.find(rid)
        if job is None:
            return self.answer(ctx, answers["unknown"], Vars({"request_id": lambda: rid, "id": lambda: rid}),
                               message=f"request {rid!r} not found", param=ctx.path_param)
        st = self.job_state(job)
        if self.store.cancel(job):
            return self.answer(ctx, answers["accepted"], self.variables(job, self.job_state(job)))
        return self.answer(ctx, answers["finished"], self.variables(job, st),
                           message=f"request {rid!r} is already {self.status_word(st.status)} and can no "
                                   "longer be cancelled", param=ctx.path_param)


__all__ = ["STREAM_MAX_SECONDS", "STREAM_POLL_SECONDS", "QueueFamily", "QueueOutputs", "parse_flag"]
