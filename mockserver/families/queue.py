"""The request-queue family (fal's queue host, sunra): submit -> request_id + URLs, then poll.

Wire shape (reference/protocols.md §2-3; fal-client 1.0.3 and sunra-client 0.6.0 ``client.py``):

- ``submit`` answers ``{request_id, response_url, status_url, cancel_url}`` plus the provider's extras. The
  URLs are built from this host's ``status`` / ``result`` / ``cancel`` operations in the contract (their
  paths with ``{request_id}`` filled in, under the mock's base URL of the host), so fal's "app id without
  subpath" style and sunra's ``/v1/queue/requests/{id}`` style both come from the contracts.
- ``status`` answers ``IN_QUEUE`` (``queue_position``, falling), ``IN_PROGRESS`` (``logs``; items only when
  logs were requested), ``COMPLETED`` (``metrics``), and each provider's own failure and cancel shapes.
- ``status_stream`` is Server-Sent Events: one ``data:`` line with the status body whenever it changes,
  ending after a terminal status (or when the client goes away, or after ``mock.stream_max_seconds``).
- ``result`` answers the model output, the provider's failure error, or the "not completed yet" error.
- ``cancel`` answers per the contract (fal 202/400/404 with a ``status`` word; sunra 200 or its envelope).

Every provider difference is data in ``provider.yaml`` ``mock:`` (templates in the language of
:mod:`specs.templates`, rendered by :meth:`QueueOutputs.fill`):

``submit``      extra fields of the submit answer.
``status``      ``common`` fields of every status body, plus one map per neutral status (``queued``,
                ``in_progress``, ``completed``, ``failed``, ``cancelled``); ``status`` itself is always
                ``contract.status_value(neutral)``.
``logs``        ``list`` (fal: log items ``{message, level, source, timestamp}``) or ``string`` (sunra-client
                0.6.0 types ``logs`` as ``str``: the messages joined by newlines).
``result``      the model output of a completed job.
``cancel``      answers ``accepted`` / ``finished`` / ``unknown``: ``{status, body}`` or ``{error: kind,
                message}`` (an ``errors.kinds`` entry).
``webhook``     the body POSTed to the per-request webhook (the query parameter named by the submit
                operation's ``callbacks`` expression, e.g. ``{$request.query.fal_webhook}``, evaluated by
                :mod:`specs.expressions`).
``output_id``   ``{prefix}``: the id a later remix names (fal's output ``video_id``) is ``prefix`` + the job
                id without dashes, so it differs from the ``request_id`` as on fal (specs/fal provider.yaml
                ``ids.note``) and a remix naming a request id is answered like an unknown video; a video
                seeded through the admin API (no request id) is also accepted under its own id. Without
                ``output_id`` the remix source is the job id itself (sunra, onerouter).
``cancelled_message`` message of the error answered for the result of a cancelled job.

Template variables (a string that is exactly ``$name`` is replaced, keeping the value's JSON type):
``$request_id $video_id $response_url $status_url $cancel_url $queue_position $logs $inference_time
$failure_message $failure_code $failure_kind_code $failure_kind_type $video $thumbnail $spritesheet
$video_url $prompt $created $webhook_status $webhook_payload $webhook_error $message``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from specs.templates import Vars, fill

from .. import engine as eng
from ..http import stamp_request_id
from .base import Family

_TRUE = {"1", "true"}
_FALSE = {"0", "false"}

#: Job param set on jobs created by a submit or a run (their request id is known to the client).
REQUEST_MARK = "_request"
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


def iso(wall: float) -> str:
    """ISO 8601 UTC date-time of unix seconds, millisecond precision (fal log item ``timestamp``)."""
    return dt.datetime.fromtimestamp(wall, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class QueueOutputs(Family):
    """What the queue and sync families share: output ids, result bodies, failure errors, log lines.

    Not used on its own; :class:`QueueFamily` and :class:`mockserver.families.sync.SyncFamily` derive from it.
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
        if job is not None and not job.params.get(REQUEST_MARK):
            return job  # seeded through the admin API: it has no request id, so its id names the video
        return None

    def create_job(self, ctx, body: Any, kind: str | None = None, source: eng.Job | None = None) -> eng.Job:
        """:meth:`Family.create_job`, marking the job as one a client knows by its request id."""
        job = super().create_job(ctx, body, kind=kind, source=source)
        job.params[REQUEST_MARK] = True
        return job

    def source_id_of(self, ctx, body: Any) -> str | None:
        raw = super().source_id_of(ctx, body)
        job = self.job_for_output_id(raw)
        return job.id if job is not None else raw

    def resolve_source(self, ctx, body: Any):
        """Like :meth:`Family.resolve_source`, but the source is named by its output id (fal ``video_id``);
        a job id that is not an output id (fal's ``request_id``) is an unknown video (404)."""
        raw = super().source_id_of(ctx, body)
        if self.mock.get("output_id") and raw and self.job_for_output_id(raw) is None:
            param = (ctx.op.source or {}).get("name") or (ctx.op.source or {}).get("pointer", "").strip("/")
            return None, ctx.error("not_found", f"video {raw!r} not found; remix takes the video_id of an "
                                   "earlier generation's output", param=param or "body")
        return super().resolve_source(ctx, body)

    # -- URLs ---------------------------------------------------------------------------------------
    def op_url(self, role: str, job_id: str) -> str | None:
        """Absolute URL of this provider's ``role`` operation (status, result, cancel) for ``job_id``,
        from the contract path under the mock's base URL of the host serving it; None if no such op."""
        for m in self.state.mounts:
            if m.provider != self.contract.id:
                continue
            for op in m.operations:
                if op.role == role:
                    path = re.sub(r"\{[^}]+\}", quote(job_id, safe=""), op.path)
                    return self.state.base_url(self.contract.id, m.host_id) + path
        return None

    # -- template variables -------------------------------------------------------------------------
    def template_vars(self, job: eng.Job, st: eng.State, logs: bool = False,
                      extra: dict[str, Callable[[], Any]] | None = None) -> Vars:
        """The variables of the ``mock:`` templates for one job at one state (see module docstring)."""
        fkind = self.contract.error_kind("generation_failed")

        def inference_time():
            if st.started_at is None or st.finished_at is None:
                return None
            return round(st.finished_at - st.started_at, 3)

        fns: dict[str, Callable[[], Any]] = {
            "request_id": lambda: job.id,
            "video_id": lambda: self.output_id(job),
            "response_url": lambda: self.op_url("result", job.id),
            "status_url": lambda: self.op_url("status", job.id),
            "cancel_url": lambda: self.op_url("cancel", job.id),
            "queue_position": lambda: st.queue_position,
            "logs": lambda: self.logs_value(job, st) if logs else None,
            "inference_time": inference_time,
            "failure_message": lambda: self.failure_message(job),
            "failure_code": lambda: job.failure or fkind.get("type"),
            "failure_kind_code": lambda: str(fkind.get("code", fkind.get("type"))),
            "failure_kind_type": lambda: fkind.get("type"),
            "video": lambda: self.file_object(job, "video"),
            "thumbnail": lambda: self.file_object(job, "thumbnail"),
            "spritesheet": lambda: self.file_object(job, "spritesheet"),
            "video_url": lambda: self.file_url(job, "video"),
            "prompt": lambda: str(job.params.get("prompt") or ""),
            "created": lambda: self.wall(job.created),
        }
        fns.update(extra or {})
        return Vars(fns)

    def fill(self, template: Any, values: Vars) -> Any:
        """Render a ``mock`` template of provider.yaml (:func:`specs.templates.fill`).

        Raises:
            specs.templates.TemplateError: the template names an unknown variable (a provider.yaml authoring
                error; the pipeline answers it as a mock error, 500).
        """
        return fill(template, values, f"{self.contract.id} provider.yaml mock")

    def template(self, name: str) -> Any:
        """The ``mock.<name>`` template of provider.yaml. Raises KeyError (a mock bug: 500) when absent."""
        if name not in self.mock:
            raise KeyError(f"{self.contract.id} provider.yaml mock has no {name!r} template")
        return self.mock[name]

    # -- bodies -------------------------------------------------------------------------------------
    def result_body(self, job: eng.Job, st: eng.State) -> Any:
        """The model output of a completed job (``mock.result``)."""
        return self.fill(self.template("result"), self.template_vars(job, st))

    def failure_error(self, ctx, job: eng.Job) -> web.Response:
        """The provider's error for a failed generation (``generation_failed`` kind)."""
        return ctx.error("generation_failed", self.failure_message(job), param="prompt")

    def cancelled_error(self, ctx, job: eng.Job) -> web.Response:
        return ctx.error("conflict", self.mock.get("cancelled_message") or f"request {job.id!r} was cancelled; "
                         "it has no result", param="request_id")

    def log_lines(self, job: eng.Job, st: eng.State) -> list[tuple[str, str, float]]:
        """``(level, message, virtual time)`` log lines of a job up to its current state."""
        if st.started_at is None:
            return [("INFO", "Request is queued.", job.created)]
        lines = [("INFO", f"Starting Sora 2 {job.kind}: {job.params.get('seconds')}s at "
                          f"{job.params.get('size')}.", st.started_at)]
        for pct in (25, 50, 75):
            if st.progress >= pct:
                lines.append(("INFO", f"Generating video: {pct}%.", st.started_at + pct / 100 * job.timing.in_progress))
        if st.status == eng.COMPLETED:
            lines.append(("INFO", "Video generated.", st.finished_at))
        elif st.status == eng.FAILED:
            lines.append(("ERROR", self.failure_message(job), st.finished_at))
        elif st.status == eng.CANCELLED:
            lines.append(("WARN", "Request was cancelled.", st.finished_at))
        return lines

    def logs_value(self, job: eng.Job, st: eng.State) -> Any:
        """The ``logs`` value in the provider's type (``mock.logs``: ``list`` of items or ``string``)."""
        lines = self.log_lines(job, st)
        if self.mock.get("logs", "list") == "string":
            return "\n".join(msg for _, msg, _ in lines)
        return [{"message": msg, "level": level, "source": "USER", "timestamp": iso(self.state.clock.to_wall(t))}
                for level, msg, t in lines]

    def answer(self, ctx, spec: dict, values: Vars, message: str | None = None,
               param: str | None = None) -> web.Response:
        """Render one ``mock`` answer: ``{status, body, headers?}`` or ``{error: kind, message?, param?}``
        (``message`` is used when the spec has none)."""
        if "error" in spec:
            return ctx.error(spec["error"], spec.get("message") or message, param=spec.get("param", param))
        body = self.fill(spec.get("body", {}), values)
        return ctx.json(body, status=int(spec.get("status", 200)), headers=spec.get("headers"))

    # -- webhooks -----------------------------------------------------------------------------------
    def webhook_target(self, ctx) -> str | None:
        """The per-request webhook URL: the query parameter (or body field) named by the submit
        operation's ``callbacks`` expression (``{$request.query.fal_webhook}``, ``{$request.query.webhook}``;
        :meth:`Family.callback_url`)."""
        return self.callback_url(ctx)

    def webhook_event(self, job: eng.Job, st: eng.State) -> tuple[str, dict[str, Any]]:
        """``(event, payload)`` for a terminal job (``mock.webhook`` template); OK delivers the output."""
        if st.status == eng.COMPLETED:
            self.mark_delivered(job)
            event, payload, error = "OK", self.result_body(job, st), None
        elif st.status == eng.FAILED:
            event, error = "ERROR", self.failure_message(job)
            payload = self.contract.error_body("generation_failed", error, param="prompt")[1]
        else:
            event, error = "ERROR", self.mock.get("cancelled_message") or "request was cancelled"
            payload = self.contract.error_body("conflict", error, param="request_id")[1]
        values = self.template_vars(job, st, extra={"webhook_status": lambda: event,
                                                    "webhook_payload": lambda: payload,
                                                    "webhook_error": lambda: error})
        return event, self.fill(self.template("webhook"), values)


class QueueFamily(QueueOutputs):
    """Adapter of the ``queue`` family (fal queue host, sunra). See the module docstring."""

    name = "queue"

    def _request_id(self, ctx) -> str:
        return ctx.path_params.get("request_id") or next(iter(ctx.path_params.values()), "")

    def _missing(self, ctx, request_id: str) -> web.Response:
        return ctx.error("not_found", f"request {request_id!r} not found", param="request_id")

    def _wants_logs(self, ctx, job: eng.Job) -> bool:
        flag = parse_flag(ctx.request.query.get("logs"))
        return bool(job.params.get("_logs")) if flag is None else flag

    def status_body(self, job: eng.Job, st: eng.State, logs: bool) -> dict[str, Any]:
        """The provider's status body for a job at state ``st`` (``mock.status`` templates)."""
        spec = self.template("status")
        values = self.template_vars(job, st, logs=logs)
        body: dict[str, Any] = {"status": self.contract.status_value(st.status)}
        body.update(self.fill(spec.get("common") or {}, values))
        body.update(self.fill(spec.get(st.status) or {}, values))
        return body

    # -- operations ---------------------------------------------------------------------------------
    async def op_submit(self, ctx) -> web.Response:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        kind, source, err = self.kind_and_source(ctx, body)
        if err is not None:
            return err
        job = self.create_job(ctx, body, kind=kind, source=source)
        flag = parse_flag(ctx.request.query.get("logs"))
        if flag is not None:
            job.params["_logs"] = flag
        st = self.job_state(job)
        values = self.template_vars(job, st)
        out = {"request_id": job.id, "response_url": values.get("response_url"),
               "status_url": values.get("status_url"), "cancel_url": values.get("cancel_url")}
        out.update(self.fill(self.mock.get("submit") or {}, values))
        return ctx.json(out)

    async def op_status(self, ctx) -> web.Response:
        rid = self._request_id(ctx)
        job = self.find(rid)
        if job is None:
            return self._missing(ctx, rid)
        return ctx.json(self.status_body(job, self.job_state(job), self._wants_logs(ctx, job)))

    async def op_status_stream(self, ctx) -> web.StreamResponse:
        rid = self._request_id(ctx)
        job = self.find(rid)
        if job is None:
            return self._missing(ctx, rid)
        logs = self._wants_logs(ctx, job)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        stamp_request_id(resp, ctx.op)  # before the headers are sent
        await resp.prepare(ctx.request)
        deadline = time.monotonic() + float(self.mock.get("stream_max_seconds", STREAM_MAX_SECONDS))
        last = None
        try:
            while True:
                st = self.job_state(job)
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
        rid = self._request_id(ctx)
        job = self.find(rid)
        if job is None:
            return self._missing(ctx, rid)
        st = self.job_state(job)
        if st.status == eng.FAILED:
            return self.failure_error(ctx, job)
        if st.status == eng.CANCELLED:
            return self.cancelled_error(ctx, job)
        if st.status != eng.COMPLETED:
            return ctx.error("conflict", f"request {rid!r} is {self.contract.status_value(st.status)}; its result "
                             "is available once it is COMPLETED", param="request_id")
        if self.expired(job, st):
            return ctx.error("expired", param="request_id")
        body = self.result_body(job, st)
        self.mark_delivered(job)
        return ctx.json(body)

    async def op_cancel(self, ctx) -> web.Response:
        rid = self._request_id(ctx)
        answers = self.template("cancel")
        job = self.find(rid)
        if job is None:
            return self.answer(ctx, answers["unknown"], Vars({"request_id": lambda: rid}),
                               message=f"request {rid!r} not found", param="request_id")
        st = self.job_state(job)
        if self.store.cancel(job):
            return self.answer(ctx, answers["accepted"], self.template_vars(job, self.job_state(job)))
        return self.answer(ctx, answers["finished"], self.template_vars(job, st),
                           message=f"request {rid!r} is already {self.contract.status_value(st.status)} and "
                                   "can no longer be cancelled", param="request_id")

