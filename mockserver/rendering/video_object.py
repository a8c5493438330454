"""The OpenAI-style "video object" family (openai, gptge): ``POST /videos`` answers the job object itself;
clients poll ``GET /videos/{id}``, list, delete, and download from ``/videos/{id}/content``.

Whether content is streamed bytes (OpenAI) or a JSON link (gpt.ge) is read from the content operation's
declared 200 media types; which query parameter picks the variant, from its parameter whose values are
variants (``x-variants``). Source: reference/protocols.md §1 and §4, openai 3.54.0 ``resources/videos.py``.

Templates (provider.yaml ``mock``; the language: :mod:`specs.templates`, variables:
:mod:`mockserver.rendering.variables`):

``job``        the video object, by state (``{common, <state>...}``): every answer that carries a job
``list``       ``{query: {limit, after, order}, body}``: the provider's query parameter names of the neutral
               pagination parameters, and the page (``$items $first_id $last_id $has_more``)
``deleted``    the answer to a delete
``content``    the JSON link answered by a content operation whose 200 is JSON (``$asset_url``)
``poll_hint``  ``{header}``: a header giving the poll hint in milliseconds on answers about an active job
               (sent where the operation declares it)
``webhook``    see :mod:`mockserver.rendering.base`
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from specs.pointers import deref, tokens

from .. import engine as eng
from ..assets import VARIANTS, asset_bytes, bytes_response, file_name
from .base import Family

#: Encoded job objects kept per family instance while the job's computed state is unchanged (a poll loop
#: mostly reads the same state). Bounded, so it adds nothing per job beyond this many entries.
RENDER_CACHE_SIZE = 4096


class VideoObjectFamily(Family):
    """Adapter of the ``video_object`` family. Roles: create, remix, edit, retrieve, list, delete, content."""

    name = "video_object"

    def __init__(self, state: Any, mount: Any):
        super().__init__(state, mount)
        self._render_cache: dict[str, tuple] = {}
        hint = self.mock.get("poll_hint") or {}
        self.poll_hint_header: str | None = hint.get("header")
        self._hint_ops: dict[str, bool] = {}

    def video(self, job: eng.Job, st: eng.State | None = None) -> Any:
        """The provider's job object for a job at the current time (``mock.job`` for its state)."""
        st = st or self.job_state(job)
        return self.render("job", self.variables(job, st), st.status)

    def _video_response(self, ctx, job: eng.Job) -> web.Response:
        st = self.job_state(job)
        headers = {"Content-Type": "application/json"}
        if not st.terminal and self.poll_hint_header and self._declares_hint(ctx.op):
            headers[self.poll_hint_header] = str(self.poll_after_ms(st))
        cache = self._render_cache
        hit = cache.get(job.id)
        # The object itself (not only its id) is part of the key, so a reset that reissues ids can't alias.
        if (hit is not None and hit[0] is job and hit[1] == st.status and hit[2] == st.progress
                and hit[3] == st.queue_position and hit[4] == st.finished_at):
            body = hit[5]
        else:
            body = json.dumps(self.video(job, st), separators=(",", ":")).encode()
            cache[job.id] = (job, st.status, st.progress, st.queue_position, st.finished_at, body)
            if len(cache) > RENDER_CACHE_SIZE:
                del cache[next(iter(cache))]  # oldest insertion first
        return web.Response(body=body, headers=headers)

    def _declares_hint(self, op) -> bool:
        found = self._hint_ops.get(op.operation_id)
        if found is None:
            name = self.poll_hint_header.lower()
            found = self._hint_ops[op.operation_id] = any(
                isinstance(resp, dict) and any(h.lower() == name for h in (resp.get("headers") or {}))
                for resp in (op.definition.get("responses") or {}).values())
        return found

    def _missing(self, ctx, video_id: str) -> web.Response:
        return ctx.error("not_found", f"Video with id '{video_id}' not found.", param=ctx.path_param)

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
        # The field x-source points into (``video`` of ``/video/id``) holds either an uploaded video (a file
        # part, with or without a filename: nothing to look up) or a reference object ({"id": ...} in JSON,
        # video[id] in a form).
        field = (tokens((ctx.op.source or {}).get("pointer") or "/") or [""])[0]
        if isinstance(body.get(field), bytes | bytearray | str):
            job = self.create_job(ctx, body, kind="edit")
            return self._video_response(ctx, job)
        source, err = self.resolve_source(ctx, body)
        if err is not None:
            return err
        job = self.create_job(ctx, body, kind="remix", source=source)
        return self._video_response(ctx, job)

    async def op_retrieve(self, ctx) -> web.Response:
        vid = ctx.path_id
        job = self.find(vid)
        return self._missing(ctx, vid) if job is None else self._video_response(ctx, job)

    async def op_delete(self, ctx) -> web.Response:
        vid = ctx.path_id
        job = self.find(vid)
        if job is None:
            return self._missing(ctx, vid)
        st = self.job_state(job)
        self.store.delete(job)
        return ctx.json(self.render("deleted", self.variables(job, st)))

    async def op_list(self, ctx) -> web.Response:
        spec = self.template("list")
        names = spec.get("query") or {}
        q = ctx.request.query
        order = q.get(names.get("order", ""), "desc")
        limit_name = names.get("limit", "")
        try:
            limit = int(q.get(limit_name, "20"))
        except ValueError:
            return ctx.error("validation", f"{limit_name} must be an integer", param=limit_name)
        after_name = names.get("after", "")
        after = q.get(after_name) or None
        try:
            jobs, has_more = self.store.list(self.contract.id, order=order, after=after, limit=limit)
        except KeyError:
            return ctx.error("not_found", f"cursor {after!r} is not a video of this project", param=after_name)
        except ValueError as exc:
            return ctx.error("validation", str(exc))
        now = self.now()
        items = [self.video(j, eng.state_at(j, now)) for j in jobs]
        page = {"items": items, "first_id": jobs[0].id if jobs else None,
                "last_id": jobs[-1].id if jobs else None, "has_more": has_more}
        return ctx.json(self.render("list.body", page))

    async def op_content(self, ctx) -> web.StreamResponse:
        vid = ctx.path_id
        job = self.find(vid)
        if job is None:
            return self._missing(ctx, vid)
        variant_param = self._variant_param(ctx.op)
        variant = ctx.request.query.get(variant_param, "video") if variant_param else "video"
        if variant not in VARIANTS:
            return ctx.error("validation", f"{variant_param} must be one of {', '.join(VARIANTS)}",
                             param=variant_param)
        st = self.job_state(job)
        if st.status != eng.COMPLETED:
            return ctx.error("conflict", f"Video '{vid}' is {self.status_word(st.status)}; content is available "
                             "once it is completed.", param=ctx.path_param)
        if self.expired(job, st):
            return ctx.error("expired", f"The content of video '{vid}' has expired.", param=ctx.path_param)
        if self._content_is_json(ctx.op):
            return ctx.json(self.render("content", self.variables(job, st, asset_url=self.file_url(job, variant))))
        self.mark_delivered(job)
        return bytes_response(ctx.request, asset_bytes(job.params, variant), VARIANTS[variant][0],
                              file_name(job.id, variant))

    def _variant_param(self, op) -> str | None:
        """The query parameter of a content operation whose values are asset variants (``variant``), if any."""
        doc = self.contract.openapi
        for p in op.definition.get("parameters") or []:
            p = deref(doc, p)
            if isinstance(p, dict) and p.get("in") == "query":
                enum = (deref(doc, p.get("schema") or {}) or {}).get("enum") or []
                if "video" in enum and set(enum) <= set(VARIANTS):
                    return p.get("name")
        return None

    @staticmethod
    def _content_is_json(op) -> bool:
        ok = (op.definition.get("responses") or {}).get("200") or {}
        types = list((ok.get("content") or {}).keys()) if isinstance(ok, dict) else []
        return bool(types) and all("json" in t for t in types)


__all__ = ["VideoObjectFamily"]
