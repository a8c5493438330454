"""The admin API under ``/__mock/`` (contract: ``specs/mockadmin/openapi.yaml``).

================================================= ===============================================================
``GET /__mock/health``                            liveness, version, mounted providers and their base URLs
``GET /__mock/jobs``                              jobs (``provider``, ``status``, ``limit`` filters)
``GET /__mock/jobs/{provider}/{job_id}``          one job with its computed state
``POST /__mock/jobs/{provider}/{job_id}/advance`` ``{"to": "in_progress"|"end"}``: move that job (not the clock)
                                                  so the phase begins now; answers like ``GET`` the job
``POST /__mock/videos``                           seed a completed source video for any provider
``GET /__mock/clock``                             virtual time; ``POST /__mock/clock/advance`` ``{"seconds": s}``
``GET|POST|DELETE /__mock/faults``                list, add, clear faults; ``DELETE /__mock/faults/{id}``
``GET /__mock/journal``                           recent requests (credentials redacted)
``GET /__mock/webhooks``                          webhook deliveries and every attempt
``POST /__mock/reset``                            forget jobs, faults, journal and deliveries
``GET /__mock/files/{provider}/{job}/{name}``     asset downloads (file URLs of fal, sunra, gpt.ge, ...)
================================================= ===============================================================
"""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any

from aiohttp import web

from . import __version__
from . import engine as eng
from .assets import VARIANTS, asset_bytes, bytes_response, file_name
from .expect import expect_continue
from .faults import _NUMERIC as _FAULT_NUMERIC
from .faults import FaultError
from .media import MAX_SIDE, parse_size

PREFIX = "/__mock"
_SEED_SECONDS = (1, 60)
_MAX_ADVANCE = 1e9  # virtual seconds per advance (~31 years); the clock must stay finite
_DISTRIBUTIONS = (None, "fixed", "uniform", "lognormal")


def _err(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status, headers=headers)


def _query_int(value: str | None, default: int) -> int:
    """A non-negative integer query value in plain ASCII digits (``int()`` alone would also take
    ``" 5"``, ``"+5"``, ``"0_5"`` and non-ASCII digits). Raises ValueError."""
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", value):
        raise ValueError(value)
    return int(value)


def _is_number(value: Any) -> bool:
    """True for a finite JSON number (not a bool, NaN, infinity or an int too large for a float)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _seed_size_error(size: Any) -> str | None:
    """Why ``size`` cannot be a seeded video's size (the media encoder needs even sides up to MAX_SIDE)."""
    try:
        dims = parse_size(size)
    except ValueError:
        return "size must be a string like 1280x720"
    if any(d % 2 or d > MAX_SIDE for d in dims):
        return f"size must have even width and height of at most {MAX_SIDE} pixels"
    return None


def _fault_spec_error(spec: Any) -> str | None:
    """Type errors of one JSON fault spec that :func:`mockserver.faults.parse_fault` would coerce away
    (it also reads ``--fault`` flag strings, where every value is text)."""
    if not isinstance(spec, dict):
        return "each fault must be an object with at least a 'kind'"
    for key in _FAULT_NUMERIC:
        if spec.get(key) is not None and not _is_number(spec[key]):
            return f"fault option {key} must be a finite number"
    provider = spec.get("provider")
    if provider is not None and not isinstance(provider, str):
        return "fault option provider must be a string"
    if spec.get("distribution") not in _DISTRIBUTIONS:
        return "fault option distribution must be fixed, uniform or lognormal"
    return None


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


async def _json_body(request: web.Request) -> tuple[Any, web.Response | None]:
    raw = await request.read()
    if not raw:
        return {}, None
    try:
        return json.loads(raw, parse_constant=_reject_constant), None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, _err(400, f"request body is not valid JSON: {exc}")


def job_json(state, job: eng.Job) -> dict[str, Any]:
    """The neutral view of a job (as the admin API reports it; times in unix seconds)."""
    st = eng.state_at(job, state.clock.now())
    return {
        "provider": job.provider, "id": job.id, "kind": job.kind, "status": st.status,
        "progress": st.progress, "queue_position": st.queue_position,
        "created_at": int(state.clock.to_wall(job.created)),
        "started_at": None if st.started_at is None else int(state.clock.to_wall(st.started_at)),
        "finished_at": None if st.finished_at is None else int(state.clock.to_wall(st.finished_at)),
        "source_id": job.source_id, "failure": job.failure,
        "cancelled": job.cancelled_at is not None,
        "params": {k: v for k, v in job.params.items() if not k.startswith("_")},
    }


def setup(app: web.Application, state) -> None:
    """Register the admin routes on ``app``."""
    r = app.router

    async def health(request):
        mounts = [{"provider": m.provider, "host": m.host_id, "family": m.host["family"],
                   "base_url": state.base_url(m.provider, m.host_id), "real_base_url": m.host["base_url"]}
                  for m in state.mounts]
        return web.json_response({"status": "ok", "mock": "sora-remix-mock", "version": __version__,
                                  "clock": state.config.clock, "speed": state.config.speed,
                                  "jobs": len(state.store), "mounts": mounts})

    async def list_jobs(request):
        q = request.query
        provider = q.get("provider")
        status = q.get("status")
        try:
            limit = _query_int(q.get("limit"), 100)
        except ValueError:
            return _err(400, "limit must be an integer >= 0")
        if status is not None and status not in eng.STATUS_ORDER:
            return _err(400, f"status must be one of {', '.join(eng.STATUS_ORDER)}")
        if provider is not None and provider not in state.contracts:
            return _err(404, f"unknown provider {provider!r}")
        out = []
        for pid in ([provider] if provider else list(state.contracts)):
            jobs, _ = state.store.list(pid, order="desc", limit=10 ** 9)
            for job in jobs:
                j = job_json(state, job)
                if status and j["status"] != status:
                    continue
                out.append(j)
                if len(out) >= limit:
                    break
        return web.json_response({"jobs": out[:limit], "total": len(state.store)})

    async def get_job(request):
        pid, jid = request.match_info["provider"], request.match_info["job_id"]
        try:
            job = state.store.get(pid, jid)
        except KeyError:
            return _err(404, f"no job {jid!r} for provider {pid!r}")
        return web.json_response(job_json(state, job))

    async def seed_video(request):
        body, err = await _json_body(request)
        if err:
            return err
        if not isinstance(body, dict):
            return _err(400, "body must be an object")
        pid = body.get("provider")
        if not isinstance(pid, str):
            return _err(400, f"provider must be one of {', '.join(state.contracts)}")
        seconds = body.get("seconds", 4)
        size = body.get("size", "720x1280")
        if (not _is_number(seconds) or seconds != int(seconds)
                or not _SEED_SECONDS[0] <= seconds <= _SEED_SECONDS[1]):
            return _err(400, "seconds must be an integer 1..60")
        size_error = _seed_size_error(size)
        if size_error:
            return _err(400, size_error)
        for name in ("prompt", "model"):
            if body.get(name) is not None and not isinstance(body[name], str):
                return _err(400, f"{name} must be a string")
        if pid not in state.contracts:
            return _err(404, f"provider {pid!r} is not served (served: {', '.join(state.contracts)})")
        meta = state.contracts[pid].provider
        vid = body.get("id")
        if vid is not None and (not isinstance(vid, str) or not vid):
            return _err(400, "id must be a non-empty string")
        params = {"prompt": body.get("prompt") or "seeded source video", "seconds": int(seconds),
                  "size": size, "model": body.get("model") or "sora-2"}
        try:
            job = state.store.create(pid, "generate", params, eng.Timing(0.0, 0.0), id=vid,
                                     id_prefix=meta["ids"]["prefix"], id_format=meta["ids"]["format"],
                                     now=state.clock.now())
        except ValueError as exc:
            return _err(409, str(exc))
        return web.json_response(job_json(state, job), status=201)

    async def clock_get(request):
        return web.json_response({"mode": state.config.clock, "now": state.clock.now(),
                                  "wall": int(state.clock.wall()), "speed": state.config.speed})

    async def clock_advance(request):
        body, err = await _json_body(request)
        if err:
            return err
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if not _is_number(seconds) or not 0 <= seconds <= _MAX_ADVANCE:
            return _err(400, f"seconds must be a number in 0..{_MAX_ADVANCE:g}")
        if not hasattr(state.clock, "advance"):
            return _err(409, "the clock is not manual (start with --clock manual)")
        try:
            state.clock.advance(float(seconds))
        except ValueError as exc:  # the virtual time would no longer be finite
            return _err(400, str(exc))
        state.webhooks.wake()
        return await clock_get(request)

    async def advance_job(request):
        body, err = await _json_body(request)
        if err:
            return err
        to = body.get("to") if isinstance(body, dict) else None
        if not isinstance(to, str) or to not in eng.ADVANCE_TARGETS:
            return _err(400, f"body must be an object with to: {' or '.join(eng.ADVANCE_TARGETS)}")
        pid, jid = request.match_info["provider"], request.match_info["job_id"]
        try:
            job = state.store.get(pid, jid)
        except KeyError:
            return _err(404, f"no job {jid!r} for provider {pid!r}")
        if state.store.advance(job, to, state.clock.now()):
            state.jobs_moved()
        return web.json_response(job_json(state, job))

    async def faults_list(request):
        return web.json_response({"faults": [f.to_json() for f in state.faults.rules]})

    async def faults_add(request):
        body, err = await _json_body(request)
        if err:
            return err
        specs_in = body if isinstance(body, list) else [body]
        for spec in specs_in:
            problem = _fault_spec_error(spec)
            if problem:
                return _err(400, problem)
        for spec in specs_in:
            if spec.get("provider") and spec["provider"] not in state.contracts:
                return _err(404, f"provider {spec['provider']!r} is not served "
                                 f"(served: {', '.join(state.contracts)})")
        added = []
        try:
            for spec in specs_in:
                added.append(state.faults.add(spec))
        except FaultError as exc:
            for rule in added:
                state.faults.remove(rule.id)
            return _err(400, str(exc))
        return web.json_response({"faults": [f.to_json() for f in added]}, status=201)

    async def faults_clear(request):
        n = len(state.faults.rules)
        state.faults.clear()
        return web.json_response({"removed": n})

    async def fault_delete(request):
        try:
            fid = _query_int(request.match_info["fault_id"], 0)
        except ValueError:
            return _err(404, "no such fault")
        if not state.faults.remove(fid):
            return _err(404, "no such fault")
        return web.json_response({"removed": 1})

    async def journal(request):
        try:
            limit = _query_int(request.query.get("limit"), 100)
        except ValueError:
            return _err(400, "limit must be an integer >= 0")
        entries = list(state.journal)[-max(0, limit):] if limit else []
        return web.json_response({"requests": [e.to_json() for e in entries]})

    async def webhooks(request):
        return web.json_response({"deliveries": [d.to_json() for d in state.webhooks.deliveries]})

    async def reset(request):
        state.store.reset(random.Random(state.config.seed + 1))
        state.faults.clear()
        state.journal.clear()
        state.webhooks.reset()
        return web.json_response({"status": "reset"})

    async def files(request):
        pid, jid, name = (request.match_info[k] for k in ("provider", "job_id", "name"))
        try:
            job = state.store.get(pid, jid)
        except KeyError:
            return _err(404, "file not found")
        variant = next((v for v in VARIANTS if file_name(jid, v) == name), None)
        st = eng.state_at(job, state.clock.now())
        if variant is None or st.status != eng.COMPLETED:
            return _err(404, "file not found")
        ttl = state.asset_ttl(pid)
        if state.clock.now() >= st.finished_at + ttl:
            return _err(410, "file has expired")
        job.params["_delivered"] = True
        return bytes_response(request, asset_bytes(job.params, variant), VARIANTS[variant][0], name)

    routes = [
        ("GET", "/health", health),
        ("GET", "/jobs", list_jobs),
        ("GET", "/jobs/{provider}/{job_id}", get_job),
        ("POST", "/jobs/{provider}/{job_id}/advance", advance_job),
        ("POST", "/videos", seed_video),
        ("GET", "/clock", clock_get),
        ("POST", "/clock/advance", clock_advance),
        ("GET", "/faults", faults_list),
        ("POST", "/faults", faults_add),
        ("DELETE", "/faults", faults_clear),
        ("DELETE", "/faults/{fault_id}", fault_delete),
        ("GET", "/journal", journal),
        ("GET", "/webhooks", webhooks),
        ("POST", "/reset", reset),
        ("GET", "/files/{provider}/{job_id}/{name}", files),
    ]
    by_path: dict[str, list[tuple[str, Any]]] = {}
    for method, path, handler in routes:
        by_path.setdefault(path, []).append((method, handler))
    for path, handlers in by_path.items():  # one resource per path: its methods, then 405 for the rest
        for method, handler in handlers:
            if method == "GET":
                r.add_get(PREFIX + path, handler)  # also answers HEAD
            else:
                r.add_route(method, PREFIX + path, handler, expect_handler=expect_continue)
        allowed = sorted({m for m, _ in handlers} | ({"HEAD"} if any(m == "GET" for m, _ in handlers) else set()))
        r.add_route("*", PREFIX + path, _not_allowed(allowed), expect_handler=expect_continue)


def _not_allowed(allowed: list[str]):
    """Handler answering 405 with an ``Allow`` header for an admin path called with another method."""

    async def handler(request: web.Request) -> web.Response:
        return _err(405, f"method {request.method} is not allowed on {request.path}",
                    headers={"Allow": ", ".join(allowed)})

    return handler
