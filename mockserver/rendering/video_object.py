"""The OpenAI-style "video object" family (openai, gptge): ``POST /videos`` answers the job object itself;
clients poll ``GET /videos/{id}``, list, delete, and download from ``/videos/{id}/content``.

Whether content is streamed bytes (OpenAI) or a JSON link (gpt.ge) is read from the content operation's
declared 200 media types; which query parameter picks the variant, from its parameter whose values are
variants (``x-variants``). Source: reference/protocols.md §1 and §4, openai 3.57.0 ``resources/videos.py``.

Templates (provider.yaml ``mock``; the language: :mod:`specs.templates`, variables:
:mod:`mockserver.rendering.variables`):

``job``        the video object, by state (``{common, <state>...}``): every answer that carries a job
``list``       ``{query: {limit, after, order}, body}``: the provider's query parameter names of the neutral
               pagination parameters, and the page (``$items $first_id $last_id $has_more``)
``deleted``    the answer to a delete
``content``    the JSON link answered by a content operation whose 200 is JSON (``$asset_url``)
``poll_hint``  ``{header}``: a header giving the poll hint in milliseconds on answers about an active job
               (sent where the operation declares it)
``characters`` ``{ids: {prefix, format}, body}``: a character (roles ``character_create`` /
               ``character_retrieve``; ``$id $name $created_at``), kept in
               :class:`mockserver.characters.CharacterStore`, not a job
``webhook``    see :mod:`mockserver.rendering.base`

An extension (role ``extend``, job kind ``extend``) is a new job whose ``seconds`` is the stitched total: the
source's seconds plus the requested ones (openai 3.57.0 ``Video.seconds``: "For extensions, this is the stitched
total duration"), so its MP4 lasts that long; it names its source like a remix (``$source_id``).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from specs.media import probe_mp4
from specs.pointers import deref, get_pointer, tokens

from .. import engine as eng
from ..assets import VARIANTS, asset_bytes, bytes_response, file_name
from ..media import MAX_SECONDS
from .base import Family

#: Encoded job objects kept per family instance while the job's computed state is unchanged (a poll loop
#: mostly reads the same state). Bounded, so it adds nothing per job beyond this many entries.
RENDER_CACHE_SIZE = 4096


class VideoObjectFamily(Family):
    """Adapter of the ``video_object`` family. Roles: create, remix, edit, extend, retrieve, list, delete, content,
    character_create, character_retrieve."""

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

    async def op_extend(self, ctx) -> web.Response:
        """``POST /videos/extensions``: a new job (kind ``extend``) that continues its source for the requested
        ``seconds``; its own ``seconds`` is the stitched total. The source is a completed video of this provider
        named where ``x-source`` points (unknown: ``not_found``; not completed: ``conflict``; expired: ``expired``)
        or an uploaded video (a file part: its duration is read from the MP4, rounded to whole seconds; an upload
        that is not a readable MP4 counts as 0 s). A total over :data:`mockserver.media.MAX_SECONDS` (what the mock
        renders) is the provider's ``validation`` error."""
        body = ctx.body if isinstance(ctx.body, dict) else {}
        field = (tokens((ctx.op.source or {}).get("pointer") or "/") or [""])[0]
        upload = body.get(field)
        source: eng.Job | None = None
        if isinstance(upload, bytes | bytearray | str):
            source_seconds = _upload_seconds(upload)
        else:
            source, err = self.resolve_source(ctx, body, verb="extended")
            if err is not None:
                return err
            source_seconds = int(source.params.get("seconds", 4))
        params = self.params_from(body, source)
        added = _int_or_none(_pointer_value(body, self.params_rules.get("seconds", {}).get("pointer")))
        total = source_seconds + (added if added is not None else int(params.get("seconds", 4)))
        if total > MAX_SECONDS:
            return ctx.error("validation", f"the stitched total would be {total} s; this mock renders videos of at "
                             f"most {MAX_SECONDS:g} s", param="seconds")
        params["seconds"] = max(1, total)
        job = self.create_job(ctx, body, kind="extend", source=source, params=params)
        return self._video_response(ctx, job)

    async def op_character_create(self, ctx) -> web.Response:
        """``POST /videos/characters``: store a character named by the request's ``name`` (the uploaded video
        is accepted as it is and not kept) and answer it (provider.yaml ``mock.characters``)."""
        body = ctx.body if isinstance(ctx.body, dict) else {}
        spec = self.template("characters")
        name = body.get("name")
        character = self.state.characters.create(self.contract.id, name if isinstance(name, str) else str(name),
                                                 self.now(), id_prefix=spec["ids"]["prefix"],
                                                 id_format=spec["ids"]["format"])
        return ctx.json(self._character(character))

    async def op_character_retrieve(self, ctx) -> web.Response:
        """``GET /videos/characters/{character_id}``: the stored character, or the provider's ``not_found``."""
        cid = ctx.path_id
        try:
            character = self.state.characters.get(self.contract.id, cid)
        except KeyError:
            return ctx.error("not_found", f"Character with id '{cid}' not found.", param=ctx.path_param)
        return ctx.json(self._character(character))

    def _character(self, character) -> Any:
        return self.render("characters.body", {"id": character.id, "name": character.name,
                                               "created_at": self.wall(character.created)})

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


def _upload_seconds(data: bytes | bytearray | str) -> int:
    """Whole seconds of an uploaded video (its MP4 duration, rounded); 0 when it is not a readable MP4."""
    if isinstance(data, str):
        return 0
    try:
        return max(0, round(probe_mp4(bytes(data))["duration_seconds"]))
    except (ValueError, KeyError, TypeError):
        return 0


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _pointer_value(body: Any, pointer: str | None) -> Any:
    return get_pointer(body, pointer) if pointer and isinstance(body, dict) else None


__all__ = ["VideoObjectFamily"]
