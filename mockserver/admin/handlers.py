"""The admin API's operations, one coroutine per operationId of ``specs/mockadmin/openapi.yaml``.

Each gets ``(state, request, body)`` after routing and validation against the contract
(:mod:`mockserver.admin`): ``body`` is the parsed JSON body (``{}`` when empty) of an operation that has one.
What the contract cannot say (plain ASCII digits in a query value, a finite number, a provider this server
serves, an id already used) is checked here; errors are the admin envelope ``{"error": {"message"}}``.
"""

from __future__ import annotations

import math
import os
import random
import re
from typing import Any

from aiohttp import web

from specs.pointers import deref

from .. import __version__
from .. import engine as eng
from ..assets import VARIANTS, asset_bytes, bytes_response, file_name
from ..http import admin_error
from ..media import MAX_SIDE, parse_size
from ..middleware import FaultError
from ..middleware.faults import NUMERIC_OPTIONS

_MAX_ADVANCE = 1e9  # virtual seconds per advance (~31 years); the clock must stay finite


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def query_int(value: str | None, default: int) -> int:
    """A non-negative integer query value in plain ASCII digits (``int()`` alone would also take ``" 5"``,
    ``"+5"``, ``"0_5"`` and non-ASCII digits).

    Raises:
        ValueError: anything else.
    """
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", value):
        raise ValueError(value)
    return int(value)


def is_number(value: Any) -> bool:
    """True for a finite JSON number (not a bool, NaN, infinity or an int too large for a float)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def job_json(state: Any, job: eng.Job) -> dict[str, Any]:
    """The neutral view of a job (as the admin API reports it; times in integer unix seconds)."""
    st = eng.state_at(job, state.clock.now())
    return {
        "provider": job.provider, "id": job.id, "kind": job.kind, "status": st.status,
        "progress": st.progress, "queue_position": st.queue_position,
        "created_at": int(state.clock.to_wall(job.created)),
        "started_at": None if st.started_at is None else int(state.clock.to_wall(st.started_at)),
        "finished_at": None if st.finished_at is None else int(state.clock.to_wall(st.finished_at)),
        "source_id": job.source_id, "failure": job.failure, "failure_message": job.failure_message,
        "cancelled": job.cancelled_at is not None, "delivered": job.delivered,
        "params": dict(job.params),
    }


def _job(state: Any, request: web.Request) -> tuple[eng.Job | None, web.Response | None]:
    pid, jid = request.match_info["provider"], request.match_info["job_id"]
    try:
        return state.store.get(pid, jid), None
    except KeyError:
        return None, admin_error(404, f"no job {jid!r} for provider {pid!r}")


async def health(state: Any, request: web.Request, body: Any) -> web.Response:
    """``health``: liveness, version, clock and the mounted hosts with their base URLs."""
    mounts = [{"provider": m.provider, "host": m.host_id, "family": m.host["family"],
               "base_url": state.base_url(m.provider, m.host_id), "real_base_url": m.host["base_url"]}
              for m in state.mounts]
    return _json({"status": "ok", "mock": "sora-remix-mock", "version": __version__, "clock": state.config.clock,
                  "speed": state.config.speed, "jobs": len(state.store), "mounts": mounts,
                  "store": state.store_info(),
                  "worker": {"index": state.config.worker or 0, "pid": os.getpid(),
                             "workers": state.config.workers}})


async def list_jobs(state: Any, request: web.Request, body: Any) -> web.Response:
    """``listJobs``: jobs newest first per provider (``provider``, ``status``, ``limit`` filters); ``total`` counts
    the jobs matching ``provider`` and ``status`` (not cut by ``limit``)."""
    q = request.query
    provider, status = q.get("provider"), q.get("status")
    try:
        limit = query_int(q.get("limit"), 100)
    except ValueError:
        return admin_error(400, "limit must be an integer >= 0")
    if provider is not None and provider not in state.contracts:
        return admin_error(404, f"unknown provider {provider!r}")
    out: list[dict[str, Any]] = []
    total = 0  # jobs matching the filters (provider, status), whatever the limit
    now = state.clock.now()
    for pid in ([provider] if provider else list(state.contracts)):
        jobs, _ = state.store.list(pid, order="desc", limit=10 ** 9)
        for job in jobs:
            if status and eng.state_at(job, now).status != status:
                continue
            total += 1
            if len(out) < limit:
                out.append(job_json(state, job))
    return _json({"jobs": out, "total": total})


async def get_job(state: Any, request: web.Request, body: Any) -> web.Response:
    """``getJob``: one job with its computed state, or 404."""
    job, err = _job(state, request)
    return err or _json(job_json(state, job))


async def advance_job(state: Any, request: web.Request, body: Any) -> web.Response:
    """``advanceJob``: move one job (not the clock) so phase ``to`` begins now; wakes its waiters and webhooks."""
    job, err = _job(state, request)
    if err:
        return err
    if state.store.advance(job, body["to"], state.clock.now()):
        state.jobs_moved()
    return _json(job_json(state, job))


def _enum_of(doc: dict, node: Any, depth: int = 0) -> set[str] | None:
    """The values a schema admits, as strings, when it is an ``enum``/``const`` (or any/oneOf of them); else None."""
    node = deref(doc, node)
    if not isinstance(node, dict) or depth > 5:
        return None
    if "enum" in node:
        return {str(v) for v in node["enum"] if v is not None}
    if "const" in node:
        return {str(node["const"])}
    branches = node.get("anyOf") or node.get("oneOf")
    if branches:
        out: set[str] = set()
        for b in branches:
            sub = deref(doc, b)
            if isinstance(sub, dict) and sub.get("type") == "null":
                continue
            vals = _enum_of(doc, sub, depth + 1)
            if vals is None:
                return None
            out |= vals
        return out
    return None


def _makes_generation(op: Any) -> bool:
    kind = op.kind
    if isinstance(kind, dict):
        return "generate" in (kind.get("map") or {}).values() or kind.get("default") == "generate"
    return kind == "generate"


def seed_choices(contract: Any) -> dict[str, set[str] | None]:
    """The ``seconds`` and ``size`` values the provider's contract allows for a generated video, as strings
    (None: the contract does not enumerate them).

    Read from provider.yaml ``mock.params`` (a ``map`` lists the sizes an ``aspect_ratio`` stands for) or else
    from the ``enum`` of the request field (``/seconds``, ``/size`` or the entry's ``pointer``) in every
    operation that creates a ``generate`` job.
    """
    doc = contract.openapi
    params = (contract.provider.get("mock") or {}).get("params") or {}
    ops = [op for op in contract.operations() if _makes_generation(op)]
    out: dict[str, set[str] | None] = {}
    for name in ("seconds", "size"):
        entry = params.get(name) if isinstance(params.get(name), dict) else {}
        if entry.get("map"):
            out[name] = {str(v) for v in entry["map"].values()}
            continue
        field_name = str(entry.get("pointer", f"/{name}")).strip("/")
        allowed: set[str] | None = set() if ops else None
        for op in ops:
            body = deref(doc, op.definition.get("requestBody") or {})
            content = body.get("content") or {}
            media = content.get("application/json") or content.get("multipart/form-data") or {}
            schema = deref(doc, media.get("schema") or {})
            prop = (schema.get("properties") or {}).get(field_name) if isinstance(schema, dict) else None
            vals = _enum_of(doc, prop) if prop is not None else None
            if vals is None:
                allowed = None
                break
            allowed |= vals
        out[name] = allowed or None
    return out


def seed_video_handler(defaults: dict[str, Any]):
    """``seedVideo`` with the ``SeedVideo`` schema's defaults (``seconds``, ``size``, ``prompt``, ``model``)."""

    async def seed_video(state: Any, request: web.Request, body: Any) -> web.Response:
        fields = {**defaults, **{k: v for k, v in body.items() if v is not None}}
        seconds, size = fields.get("seconds"), fields.get("size")
        if not is_number(seconds) or seconds != int(seconds):
            return admin_error(400, "seconds must be an integer")
        try:
            width, height = parse_size(size)
        except ValueError:
            return admin_error(400, "size must be a string like 1280x720")
        if width % 2 or height % 2 or max(width, height) > MAX_SIDE:
            return admin_error(400, f"size must have even width and height of at most {MAX_SIDE} pixels")
        pid = body["provider"]
        if pid not in state.contracts:
            return admin_error(404, f"provider {pid!r} is not served (served: {', '.join(state.contracts)})")
        choices = seed_choices(state.contracts[pid])
        for name, value in (("seconds", str(int(seconds))), ("size", size)):
            allowed = choices[name]
            if allowed is not None and value not in allowed:
                listed = ", ".join(sorted(allowed, key=lambda v: (len(v), v)))
                return admin_error(400, f"{name} {value} is not allowed by the {pid} contract (allowed: {listed})")
        ids = state.contracts[pid].provider["ids"]
        params = {"prompt": fields.get("prompt"), "seconds": int(seconds), "size": size, "model": fields.get("model")}
        try:
            job = state.store.create(pid, "generate", {k: v for k, v in params.items() if v is not None},
                                     eng.Timing(0.0, 0.0), id=body.get("id"), id_prefix=ids["prefix"],
                                     id_format=ids["format"], now=state.clock.now())
        except ValueError as exc:
            return admin_error(409, str(exc))
        return _json(job_json(state, job), status=201)

    return seed_video


async def clock_get(state: Any, request: web.Request, body: Any) -> web.Response:
    """``getClock``: mode, virtual now (seconds), wall (unix seconds) and speed."""
    return _json({"mode": state.config.clock, "now": state.clock.now(), "wall": int(state.clock.wall()),
                  "speed": state.config.speed})


async def clock_advance(state: Any, request: web.Request, body: Any) -> web.Response:
    """``advanceClock``: advance a manual clock by ``seconds`` (409 on a system clock)."""
    seconds = body.get("seconds")
    if not is_number(seconds) or not 0 <= seconds <= _MAX_ADVANCE:
        return admin_error(400, f"seconds must be a number in 0..{_MAX_ADVANCE:g}")
    if not hasattr(state.clock, "advance"):
        return admin_error(409, "the clock is not manual (start with --clock manual)")
    try:
        state.clock.advance(float(seconds))
    except ValueError as exc:  # the virtual time would no longer be finite
        return admin_error(400, str(exc))
    state.webhooks.wake()
    return await clock_get(state, request, body)


async def faults_list(state: Any, request: web.Request, body: Any) -> web.Response:
    """``listFaults``: the installed rules in the order they are tried."""
    return _json({"faults": [f.to_json() for f in state.faults.rules]})


async def faults_add(state: Any, request: web.Request, body: Any) -> web.Response:
    """``addFaults``: install one rule or several, all or none (400 on the first bad one)."""
    specs_in = body if isinstance(body, list) else [body]
    for spec in specs_in:
        for key in NUMERIC_OPTIONS:  # a JSON number the schema takes but a rule cannot hold (1e400, 10**400)
            if spec.get(key) is not None and not is_number(spec[key]):
                return admin_error(400, f"fault option {key} must be a finite number")
    for spec in specs_in:
        if isinstance(spec.get("provider"), str) and spec["provider"] and spec["provider"] not in state.contracts:
            return admin_error(404, f"provider {spec['provider']!r} is not served (served: {', '.join(state.contracts)})")
    added = []
    try:
        for spec in specs_in:
            added.append(state.faults.add(spec))
    except FaultError as exc:
        for rule in added:
            state.faults.remove(rule.id)
        return admin_error(400, str(exc))
    return _json({"faults": [f.to_json() for f in added]}, status=201)


async def faults_clear(state: Any, request: web.Request, body: Any) -> web.Response:
    """``clearFaults``: remove every rule; answers how many were removed."""
    n = len(state.faults.rules)
    state.faults.clear()
    return _json({"removed": n})


async def fault_delete(state: Any, request: web.Request, body: Any) -> web.Response:
    """``deleteFault``: remove one rule by id (anything else is 404)."""
    try:
        fid = query_int(request.match_info["fault_id"], 0)
    except ValueError:
        return admin_error(404, "no such fault")
    if not state.faults.remove(fid):
        return admin_error(404, "no such fault")
    return _json({"removed": 1})


async def journal(state: Any, request: web.Request, body: Any) -> web.Response:
    """``getJournal``: the last ``limit`` provider requests, credentials redacted."""
    try:
        limit = query_int(request.query.get("limit"), 100)
    except ValueError:
        return admin_error(400, "limit must be an integer >= 0")
    entries = list(state.journal)[-max(0, limit):] if limit else []
    return _json({"requests": [e.to_json(state.secret_headers) for e in entries]})


async def webhooks(state: Any, request: web.Request, body: Any) -> web.Response:
    """``listWebhookDeliveries``: every delivery with its attempts."""
    return _json({"deliveries": state.webhooks.listing()})


async def reset(state: Any, request: web.Request, body: Any) -> web.Response:
    """``reset``: forget jobs, characters, faults, journal and deliveries (not the clock)."""
    state.store.reset(random.Random(state.config.seed + 1))
    state.characters.reset(random.Random(state.config.seed + 2))
    state.faults.clear()
    state.journal.clear()
    state.webhooks.reset()
    return _json({"status": "reset"})


async def download_file(state: Any, request: web.Request, body: Any) -> web.StreamResponse:
    """``downloadFile``: an asset of a completed job (404 unknown or unfinished, 410 expired; Range honoured)."""
    pid, jid, name = (request.match_info[k] for k in ("provider", "job_id", "name"))
    try:
        job = state.store.get(pid, jid)
    except KeyError:
        return admin_error(404, "file not found")
    variant = next((v for v in VARIANTS if file_name(jid, v) == name), None)
    st = eng.state_at(job, state.clock.now())
    if variant is None or st.status != eng.COMPLETED:
        return admin_error(404, "file not found")
    if state.clock.now() >= st.finished_at + state.asset_ttl(pid):
        return admin_error(410, "file has expired")
    state.store.mark_delivered(job)
    return bytes_response(request, asset_bytes(job.params, variant), VARIANTS[variant][0], name)


def handlers(seed_defaults: dict[str, Any]) -> dict[str, Any]:
    """The admin operations by operationId (every operation of the admin contract has one)."""
    return {
        "health": health, "listJobs": list_jobs, "getJob": get_job, "advanceJob": advance_job,
        "seedVideo": seed_video_handler(seed_defaults), "getClock": clock_get, "advanceClock": clock_advance,
        "listFaults": faults_list, "addFaults": faults_add, "clearFaults": faults_clear, "deleteFault": fault_delete,
        "getJournal": journal, "listWebhookDeliveries": webhooks, "reset": reset, "downloadFile": download_file,
    }


__all__ = ["handlers", "is_number", "job_json", "query_int", "seed_choices"]
