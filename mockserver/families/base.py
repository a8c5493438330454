"""What every protocol family shares: creating jobs from requests, remix source rules, asset links.

A family adapter maps the neutral job (:mod:`mockserver.engine`) onto one wire dialect. Provider
differences come from the contract (roles, ``x-kind``, ``x-source``, declared content types and headers)
and from ``provider.yaml`` (statuses, ids, error kinds, the ``mock`` section), never from the provider id.

``provider.yaml`` ``mock.params`` maps request fields onto the job's neutral parameters::

    mock:
      params:
        seconds: {pointer: /duration, default: 4}                 # int seconds
        size: {pointer: /aspect_ratio, map: {"16:9": 1280x720, "9:16": 720x1280}, default: 1280x720}
        model: {pointer: /model, default: sora-2}
        delete_video: {pointer: /delete_video, default: false}   # truthy: output deleted once delivered

Without an entry, ``seconds`` comes from ``/seconds``, ``size`` from ``/size``, ``model`` from ``/model``
and ``prompt`` from ``/prompt`` (``specs.DEFAULT_PARAMS``; the merged mapping is ``Contract.params_rules()``,
which the conformance suite reads too). A remix inherits ``seconds`` and ``size`` from its source unless the
request sets them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from specs.expressions import Message, callback_url
from specs.pointers import get_pointer

from .. import engine as eng
from ..assets import VARIANTS, asset_bytes, file_name
from ..media import MAX_SECONDS
from ..timing import TIMING_HEADER, parse_timing_header


class Family:
    """Base class of the family adapters. Subclasses define ``op_<role>(ctx)`` coroutines."""

    name = "base"

    def __init__(self, state, mount):
        self.state = state
        self.mount = mount
        self.contract = mount.contract
        self.meta = mount.contract.provider
        self.mock = self.meta.get("mock", {})

    async def handle(self, ctx) -> web.StreamResponse:
        fn = getattr(self, f"op_{ctx.op.role}", None)
        if fn is None:
            return ctx.error("not_found", f"operation {ctx.op.operation_id} is not implemented by the mock")
        return await fn(ctx)

    # -- jobs ---------------------------------------------------------------------------------------
    @property
    def store(self) -> eng.JobStore:
        return self.state.store

    def now(self) -> float:
        return self.state.clock.now()

    def find(self, job_id: str | None) -> eng.Job | None:
        """The live job of this provider with ``job_id`` (any host of the provider), or None."""
        if not job_id:
            return None
        try:
            return self.store.get(self.contract.id, job_id)
        except KeyError:
            return None

    def job_state(self, job: eng.Job) -> eng.State:
        return eng.state_at(job, self.now())

    def wall(self, virtual: float | None) -> int | None:
        return None if virtual is None else int(self.state.clock.to_wall(virtual))

    def params_from(self, body: Any, source: eng.Job | None) -> dict[str, Any]:
        """Neutral job parameters from a request body (see module docstring)."""
        out: dict[str, Any] = {}
        for name, rule in self.contract.params_rules().items():
            value = get_pointer(body, rule["pointer"]) if isinstance(body, dict) else None
            if value is not None and "map" in rule:
                value = rule["map"].get(str(value), rule.get("default"))
            if value is None and source is not None and name in ("seconds", "size", "model"):
                value = source.params.get(name)
            if value is None:
                value = rule.get("default")
            if value is not None:
                out[name] = value
        try:
            out["seconds"] = int(out.get("seconds", 4))
        except (TypeError, ValueError, OverflowError):
            out["seconds"] = 4
        # Contracts with an open duration (fal, sunra) admit 0, negative or huge values; the job still
        # renders, clamped to what mockserver.media can encode (1..MAX_SECONDS).
        out["seconds"] = max(1, min(out["seconds"], int(MAX_SECONDS)))
        return out

    def source_id_of(self, ctx, body: Any) -> str | None:
        src = ctx.op.source or {}
        if src.get("in") == "path":
            return ctx.path_params.get(src.get("name", ""))
        if src.get("in") == "body":
            value = get_pointer(body, src.get("pointer", ""))
            return value if isinstance(value, str) else None
        return None

    def resolve_source(self, ctx, body: Any) -> tuple[eng.Job | None, web.Response | None]:
        """For a remix/edit request: the completed source job, or the provider's error response.

        Missing source id -> ``validation``; unknown (or deleted) source -> ``not_found``; a source that
        is not completed -> ``conflict``; a source past its asset expiry -> ``expired``;
        a source whose output was deleted after delivery (fal ``delete_video``) -> ``not_found``.
        """
        source_id = self.source_id_of(ctx, body)
        param = (ctx.op.source or {}).get("name") or (ctx.op.source or {}).get("pointer", "").strip("/")
        if source_id is None:  # absent from the request (e.g. no body where the contract leaves it optional)
            return None, ctx.error("validation", f"{param or 'source video id'} is required",
                                   param=param.split("/")[-1] if param else "body")
        job = self.find(source_id)
        if job is None:
            return None, ctx.error("not_found", f"video {source_id!r} not found", param=param or None)
        st = self.job_state(job)
        if st.status != eng.COMPLETED:
            return None, ctx.error("conflict", f"video {source_id!r} is {st.status}; only completed videos "
                                   "can be remixed", param=param or None)
        if self.expired(job, st):
            return None, ctx.error("expired", f"video {source_id!r} has expired and cannot be remixed",
                                   param=param or None)
        if job.params.get("delete_video") and job.params.get("_delivered"):
            return None, ctx.error("not_found", f"video {source_id!r} was deleted after generation "
                                   "(delete_video was true), so it cannot be remixed", param=param or None)
        return job, None

    def kind_and_source(self, ctx, body: Any) -> tuple[str, eng.Job | None, web.Response | None]:
        """The job kind of a create/submit/run request (``x-kind``, possibly chosen by the body) and, for a
        remix, its completed source: ``(kind, source, None)``, or ``(kind, None, error_response)``."""
        kind = ctx.op.kind_for(body) or "generate"
        if kind != "remix":
            return kind, None, None
        source, err = self.resolve_source(ctx, body)
        return kind, source, err

    def create_job(self, ctx, body: Any, kind: str | None = None,
                   source: eng.Job | None = None) -> eng.Job:
        """Create the job for a submit/create/remix/run request, with the request's ``X-Mock-Timing``
        (:mod:`mockserver.timing`) over the provider's timing and injected generation failures.

        Raises:
            mockserver.timing.TimingHeaderError: a malformed ``X-Mock-Timing`` header (raised before
                anything changes: no job, no fault rule spent); the pipeline answers it in the provider's
                ``validation`` envelope (``mockserver.app``).
        """
        kind = kind or ctx.op.kind_for(body) or "generate"
        timing = parse_timing_header(ctx.request.headers.get(TIMING_HEADER), self.state.timing(self.contract.id))
        failure = self.state.faults.generation_failure(self.contract.id, ctx.op,
                                                       ctx.request.headers.get("X-Mock-Fault"))
        params = self.params_from(body, source)
        if failure:
            params["_failure_message"] = failure[1]
        ids = self.meta["ids"]
        job = self.store.create(self.contract.id, "remix" if kind == "remix" else kind if kind in eng.KINDS
                                else "generate", params, timing,
                                failure=failure[0] if failure else None,
                                source_id=source.id if source else None,
                                id_prefix=ids["prefix"], id_format=ids["format"])
        self.state.webhooks.job_created(job, self, ctx)
        return job

    # -- assets -------------------------------------------------------------------------------------
    def expires_at(self, job: eng.Job, st: eng.State) -> int | None:
        if st.status != eng.COMPLETED:
            return None
        return self.wall(st.finished_at + self.state.asset_ttl(self.contract.id))

    def expired(self, job: eng.Job, st: eng.State) -> bool:
        return st.status == eng.COMPLETED and self.now() >= st.finished_at + self.state.asset_ttl(self.contract.id)

    def file_url(self, job: eng.Job, variant: str = "video") -> str:
        """Absolute URL of a downloadable asset, served by the mock (``/__mock/files/...``)."""
        return (f"{self.state.public_base_url.rstrip('/')}/__mock/files/{self.contract.id}/{job.id}/"
                f"{file_name(job.id, variant)}")

    def file_object(self, job: eng.Job, variant: str = "video", extra: bool = True) -> dict[str, Any]:
        """A fal/sunra style file object: ``url``, ``content_type``, ``file_name``, ``file_size``."""
        ctype = VARIANTS[variant][0]
        obj: dict[str, Any] = {"url": self.file_url(job, variant), "content_type": ctype,
                               "file_name": file_name(job.id, variant),
                               "file_size": len(asset_bytes(job.params, variant))}
        return obj

    # -- webhooks -----------------------------------------------------------------------------------
    def callback_url(self, ctx) -> str | None:
        """The webhook URL a request names through its operation's OpenAPI ``callbacks``: the first callback
        key (a runtime expression such as ``{$request.query.fal_webhook}``, ``{$request.body#/webhook_url}``
        or ``{$request.header.X-Hook}``, evaluated by :mod:`specs.expressions`) that gives a non-empty string
        in this request. None when the operation declares no callback or the request sets none."""
        if not ctx.op.definition.get("callbacks"):
            return None
        request = Message(query=ctx.request.query, headers=ctx.request.headers, path=ctx.path_params,
                          body=ctx.body, method=ctx.request.method)
        return callback_url(self.contract.openapi, ctx.op.definition, request)

    def failure_message(self, job: eng.Job) -> str:
        return job.params.get("_failure_message") or "generation failed"

    def mark_delivered(self, job: eng.Job) -> None:
        """Note that a job's output was delivered (fal ``delete_video`` deletes it afterwards)."""
        job.params["_delivered"] = True

    def poll_after_ms(self, st: eng.State) -> int:
        """A poll hint in real milliseconds: time to the next status change, clamped to 50..2000."""
        if st.next_change_in is None:
            return 1000
        if self.state.config.clock == "manual":
            return 1000
        real = st.next_change_in / self.state.config.speed
        return int(min(2000, max(50, real * 1000)))
