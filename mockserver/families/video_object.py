"""The OpenAI-style "video object" family (openai, gptge).

``POST /videos`` returns a ``video`` object; clients poll ``GET /videos/{id}`` and download from
``/videos/{id}/content``. Whether content is streamed bytes (OpenAI) or a JSON link (gpt.ge) is read from the
content operation's declared 200 media types, not from the provider id. Source: reference/protocols.md §1
and §4, openai 3.54.0 ``resources/videos.py``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .. import engine as eng
from ..assets import VARIANTS, asset_bytes, bytes_response, file_name
from .base import Family


class VideoObjectFamily(Family):
    name = "video_object"

    def status_of(self, st: eng.State) -> str:
        neutral = st.status
        try:
            return self.contract.status_value(neutral)
        except Exception:  # e.g. no "cancelled" in OpenAI's vocabulary
            return self.contract.status_value("failed")

    def video(self, job: eng.Job, st: eng.State | None = None) -> dict[str, Any]:
        """The provider's video object for a job at the current time (every field, null where unset)."""
        st = st or self.job_state(job)
        error = None
        if st.status == eng.FAILED:
            error = {"code": job.failure or "generation_failed", "message": self.failure_message(job)}
        elif st.status == eng.CANCELLED:
            error = {"code": "cancelled", "message": "the video generation was cancelled"}
        return {
            "id": job.id,
            "object": "video",
            "model": job.params.get("model") or "sora-2",
            "status": self.status_of(st),
            "progress": st.progress,
            "created_at": self.wall(job.created),
            "completed_at": self.wall(st.completed_at),
            "expires_at": self.expires_at(job, st),
            "prompt": job.params.get("prompt"),
            "size": str(job.params.get("size")),
            "seconds": str(job.params.get("seconds")),
            "remixed_from_video_id": job.source_id,
            "error": error,
        }

    #: Encoded video objects by job id, reused while the job's computed state is unchanged (a poll loop
    #: mostly reads the same state). Bounded, so it adds nothing per job beyond RENDER_CACHE_SIZE.
    RENDER_CACHE_SIZE = 4096

    def _video_response(self, ctx, job: eng.Job) -> web.Response:
        st = self.job_state(job)
        headers = {"Content-Type": "application/json"}
        if not st.terminal and self._declares_header(ctx.op, "openai-poll-after-ms"):
            headers["openai-poll-after-ms"] = str(self.poll_after_ms(st))
        cache = self._render_cache
        hit = cache.get(job.id)
        # The object itself (not only its id) is part of the key, so a reset that reissues ids can't alias.
        if hit is not None and hit[0] is job and hit[1] == st.status and hit[2] == st.progress:
            body = hit[3]
        else:
            body = json.dumps(self.video(job, st), separators=(",", ":")).encode()
            cache[job.id] = (job, st.status, st.progress, body)
            if len(cache) > self.RENDER_CACHE_SIZE:
                del cache[next(iter(cache))]  # oldest insertion first
        return web.Response(body=body, headers=headers)

    _header_cache: dict[tuple, bool] = {}

    def __init__(self, state, mount):
        super().__init__(state, mount)
        self._render_cache: dict[str, tuple] = {}

    @classmethod
    def _declares_header(cls, op, name: str) -> bool:
        key = (op.provider, op.operation_id, name)
        found = cls._header_cache.get(key)
        if found is None:
            found = cls._header_cache[key] = any(
                isinstance(resp, dict) and any(h.lower() == name for h in (resp.get("headers") or {}))
                for resp in (op.definition.get("responses") or {}).values())
        return found

    def _missing(self, ctx, video_id: str) -> web.Response:
        return ctx.error("not_found", f"Video with id '{video_id}' not found.", param="video_id")

    def _path_id(self, ctx) -> str:
        return next(iter(ctx.path_params.values()), "")

    # -- operations ---------------------------------------------------------------------------------
    async def op_create(self, ctx) -> web.Response:
        job = self.create_job(ctx, ctx.body if isinstance(ctx.body, dict) else {}, kind="generate")
        return self._video_response(ctx, job)

    async def op_remix(self, ctx) -> web.Response:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        source, err = self.resolve_source(ctx, body)
        if err is not None:
            return err
        job = self.create_job(ctx, body, kind="remix", source=source)
        return self._video_response(ctx, job)

    async def op_edit(self, ctx) -> web.Response:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        # An uploaded video (a file part, with or without a filename) has nothing to look up; a reference
        # arrives as an object ({"id": ...} in JSON, video[id] in a form).
        if isinstance(body.get("video"), bytes | bytearray | str):
            job = self.create_job(ctx, body, kind="edit")
            return self._video_response(ctx, job)
        source, err = self.resolve_source(ctx, body)
        if err is not None:
            return err
        job = self.create_job(ctx, body, kind="remix", source=source)
        return self._video_response(ctx, job)

    async def op_retrieve(self, ctx) -> web.Response:
        vid = self._path_id(ctx)
        job = self.find(vid)
        return self._missing(ctx, vid) if job is None else self._video_response(ctx, job)

    async def op_delete(self, ctx) -> web.Response:
        vid = self._path_id(ctx)
        job = self.find(vid)
        if job is None:
            return self._missing(ctx, vid)
        self.store.delete(job)
        return ctx.json({"id": job.id, "object": "video.deleted", "deleted": True})

    async def op_list(self, ctx) -> web.Response:
        q = ctx.request.query
        order = q.get("order", "desc")
        try:
            limit = int(q.get("limit", "20"))
        except ValueError:
            return ctx.error("validation", "limit must be an integer", param="limit")
        after = q.get("after") or None
        try:
            jobs, has_more = self.store.list(self.contract.id, order=order, after=after, limit=limit)
        except KeyError:
            return ctx.error("not_found", f"cursor {after!r} is not a video of this project", param="after")
        except ValueError as exc:
            return ctx.error("validation", str(exc))
        now = self.now()
        data = [self.video(j, eng.state_at(j, now)) for j in jobs]
        return ctx.json({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                         "last_id": data[-1]["id"] if data else None, "has_more": has_more})

    async def op_content(self, ctx) -> web.StreamResponse:
        vid = self._path_id(ctx)
        job = self.find(vid)
        if job is None:
            return self._missing(ctx, vid)
        variant = ctx.request.query.get("variant", "video")
        if variant not in VARIANTS:
            return ctx.error("validation", f"variant must be one of {', '.join(VARIANTS)}", param="variant")
        st = self.job_state(job)
        if st.status != eng.COMPLETED:
            return ctx.error("conflict", f"Video '{vid}' is {self.status_of(st)}; content is available once "
                             "it is completed.", param="video_id")
        if self.expired(job, st):
            return ctx.error("expired", f"The content of video '{vid}' has expired.", param="video_id")
        if self._content_is_json(ctx.op):
            return ctx.json({"id": job.id, "url": self.file_url(job, variant),
                             "expires_at": self.expires_at(job, st), "status": "ready"})
        self.mark_delivered(job)
        return bytes_response(ctx.request, asset_bytes(job.params, variant), VARIANTS[variant][0],
                              file_name(job.id, variant))

    @staticmethod
    def _content_is_json(op) -> bool:
        ok = (op.definition.get("responses") or {}).get("200") or {}
        types = list((ok.get("content") or {}).keys()) if isinstance(ok, dict) else []
        return bool(types) and all("json" in t for t in types)

    # -- webhooks (project level, OpenAI) -----------------------------------------------------------
    def webhook_target(self, ctx) -> str | None:
        """Project-level webhooks: contracts with top-level ``webhooks:`` (OpenAI) use --openai-webhook-url."""
        if self.contract.openapi.get("webhooks"):
            return self.state.config.openai_webhook_url
        return None

    def webhook_signing(self) -> str:
        return "standard"

    def webhook_event(self, job: eng.Job, st: eng.State) -> tuple[str, dict[str, Any]]:
        etype = "video.completed" if st.status == eng.COMPLETED else "video.failed"
        return etype, {"id": f"evt_{job.id.split('_', 1)[-1][:24]}{int(st.finished_at * 1000) % 100000:05d}",
                       "object": "event", "created_at": self.wall(st.finished_at), "type": etype,
                       "data": {"id": job.id}}
