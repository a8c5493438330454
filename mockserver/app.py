"""The mock server application: routes built from the contracts, and the request pipeline.

Pipeline of one provider request (see ``../shared/DESIGN.md``; faults and latency are middleware):

    route (aiohttp router built from each host's contract)
      -> faults middleware (injected errors, latency, hangs, resets, rate limit)
      -> auth (the provider's scheme, from provider.yaml)
      -> validate (openapi-core against the contract; errors in the provider's envelope)
      -> family adapter (lifecycle engine; renders the provider's wire format)

Everything provider-specific comes from ``specs/<id>/``; the family adapters hold the dialects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from specs import Contract, Operation, mount_prefix
from specs.pointers import deref

from . import admin
from .config import MockConfig
from .expect import expect_continue
from .families import family_for
from .faults import FAULT_HEADER, FAULT_KEY, faults_middleware, journal_middleware
from .http import (
    STATE_KEY,
    JournalEntry,
    dumps,
    error_response,
    new_request_id,
    redact_headers,
    redact_url,
    request_id_header_names,
    stamp_request_id,
)
from .replay import install as install_replay
from .state import HostMount, MockState
from .timing import TIMING_HEADER, TimingHeaderError
from .validation import HostValidator, parse_json_body

log = logging.getLogger("mockserver")
MAX_BODY_BYTES = 64 * 1024 * 1024


class Ctx:
    """Everything a family adapter needs for one request.

    Attributes:
        state: the server's :class:`MockState`.
        mount: the provider host being called.
        op: the contract operation (role, kind, source, model ...).
        request: the aiohttp request.
        path_params: path parameters from the contract's path template.
        body: parsed request body (JSON value, dict of multipart fields, or None).
        api_key: the caller's key (never logged).
    """

    __slots__ = ("state", "mount", "op", "request", "path_params", "body", "api_key")

    def __init__(self, state: MockState, mount: HostMount, op: Operation, request: web.Request,
                 path_params: dict[str, str], body: Any, api_key: str | None):
        self.state = state
        self.mount = mount
        self.op = op
        self.request = request
        self.path_params = path_params
        self.body = body
        self.api_key = api_key

    @property
    def contract(self) -> Contract:
        return self.mount.contract

    @property
    def provider(self) -> str:
        return self.mount.provider

    def base_url(self, host_id: str | None = None) -> str:
        return self.state.base_url(self.provider, host_id or self.mount.host_id)

    def json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(data, status=status, headers=headers, dumps=dumps)

    def error(self, kind: str, message: str | None = None, param: str | None = None,
              status: int | None = None, headers: dict[str, str] | None = None) -> web.Response:
        """The provider's error envelope for a neutral error kind (``not_found``, ``validation`` ...)."""
        return error_response(self.contract, kind, message, param, status, headers)


# -- auth ---------------------------------------------------------------------------------------------
_AUTH_MEMO: dict[tuple, tuple[str | None, str | None]] = {}


def check_auth(contract: Contract, headers, required_key: str | None) -> tuple[str | None, str | None]:
    """Check credentials against the provider's scheme(s) (provider.yaml ``auth``).

    Returns ``(api_key, None)`` when accepted, or ``(None, reason)`` when rejected. Verdicts are memoised
    per (provider, header value, required key) in a small bounded table: clients repeat one header.
    """
    value = headers.get(contract.auth["header"])
    memo_key = (contract.id, value, required_key)
    verdict = _AUTH_MEMO.get(memo_key)
    if verdict is None:
        verdict = _check_auth(contract, value, required_key)
        if len(_AUTH_MEMO) >= 1024:
            _AUTH_MEMO.clear()
        _AUTH_MEMO[memo_key] = verdict
    return verdict


def _check_auth(contract: Contract, value: str | None, required_key: str | None) -> tuple[str | None, str | None]:
    auth = contract.auth
    if value is None or not value.strip():
        return None, f"missing credentials: send the {auth['header']} header ({_scheme_hint(auth)})"
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme in ("Bearer", "Key") and rest.strip():
        if scheme not in auth["schemes"]:
            return None, f"{scheme} credentials are not accepted here ({_scheme_hint(auth)})"
        key = rest.strip()
    elif "raw" in auth["schemes"] and " " not in value:
        key = value
    else:
        return None, f"malformed {auth['header']} header ({_scheme_hint(auth)})"
    if required_key is not None and key != required_key:
        return None, "invalid API key"
    return key, None


def _scheme_hint(auth: dict) -> str:
    forms = {"Bearer": "Bearer <key>", "Key": "Key <key>", "raw": "<key>"}
    return "expected " + " or ".join(forms[s] for s in auth["schemes"])


# -- request pipeline ---------------------------------------------------------------------------------
def make_handler(mount: HostMount, op: Operation):
    """Build the aiohttp handler for one contract operation."""
    has_body = "requestBody" in op.definition
    # Path parameters are already matched by the router; only bodies, query and header parameters need
    # openapi-core (this keeps status polls fast: see bench/load.py).
    params = [deref(mount.contract.openapi, p) for p in op.definition.get("parameters") or []]
    needs_validation = has_body or any(isinstance(p, dict) and p.get("in") in ("query", "header")
                                       for p in params)

    role_handler = None  # the family's op_<role>, bound on first use (families are attached after routes)

    async def core(request: web.Request, rel_path: str | None, path_params: dict[str, str]) -> web.StreamResponse:
        nonlocal role_handler
        state: MockState = mount.family.state
        contract = mount.contract
        key, reason = check_auth(contract, request.headers, state.config.api_key)
        if key is None:
            return error_response(contract, "unauthorized", reason)
        body: Any = None
        raw = b""
        if has_body or (request.method != "GET" and request.can_read_body):
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return error_response(contract, "validation", "request body is too large", status=413
                                      if _declares(op, 413) else None)
        if needs_validation:
            if rel_path is None:
                # The raw path: an id holding "%2F" stays one path segment for the validator, as for the router.
                rel_path = _rel_path(request.rel_url.raw_path, mount.prefix)
            ctype = request.headers.get("Content-Type", "")
            errs = mount.validator.request_errors(request.method, rel_path, request.query, request.headers,
                                                  raw if raw else None, ctype)
            if errs:
                message, param = errs[0]
                return error_response(contract, "validation", message, param)
        if raw:
            body = await _parse_body(request, raw, _text_fields(mount.contract, op))
            if isinstance(body, ValueError):
                return error_response(contract, "validation", str(body))
        ctx = Ctx(state, mount, op, request, path_params, body, key)
        if role_handler is None:
            role_handler = getattr(mount.family, f"op_{op.role}", None) or mount.family.handle
        try:
            return await role_handler(ctx)
        except TimingHeaderError as exc:  # a bad X-Mock-Timing is the caller's error, like a bad X-Mock-Fault
            return error_response(contract, "validation", f"{TIMING_HEADER}: {exc}", param=TIMING_HEADER)

    async def handler(request: web.Request) -> web.StreamResponse:
        return await guarded(request, None, request.match_info)

    async def guarded(request: web.Request, rel_path: str | None,
                      path_params: dict[str, str]) -> web.StreamResponse:
        try:
            response = await core(request, rel_path, path_params)
        except (web.HTTPException, asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # a mock bug still answers in the provider's envelope, and is logged
            log.exception("mock error in %s %s", op.method, op.path)
            response = error_response(mount.contract, "server_error", f"mock internal error: {type(exc).__name__}")
        rid = new_request_id()
        headers = response.headers
        for name in id_names:
            if name not in headers:
                headers[name] = rid
        return response

    id_names = request_id_header_names((op,))
    handler.core = guarded
    handler.guarded = guarded
    handler.mock_meta = (mount, op)  # read by the faults middleware and the journal
    return handler


def _declares(op: Operation, status: int) -> bool:
    return str(status) in (op.definition.get("responses") or {})


def _text_fields(contract: Contract, op: Operation) -> frozenset[str]:
    """Multipart properties of ``op`` whose schema admits a plain (non-binary) string: their parts stay
    text even when they look like JSON (a ``model`` or ``prompt`` of ``{...}`` is a string)."""
    key = (op.provider, op.operation_id)
    if key not in _TEXT_FIELDS:
        doc = contract.openapi
        body = deref(doc, op.definition.get("requestBody") or {})
        schema = deref(doc, ((body.get("content") or {}).get("multipart/form-data") or {}).get("schema") or {})

        def admits_text(node: Any, depth: int = 0) -> bool:
            node = deref(doc, node)
            if not isinstance(node, dict) or depth > 5:
                return False
            types = node.get("type")
            if types == "string" or (isinstance(types, list) and "string" in types):
                return node.get("format") != "binary"
            return any(admits_text(b, depth + 1) for b in (node.get("anyOf") or node.get("oneOf") or []))

        _TEXT_FIELDS[key] = frozenset(name for name, prop in (schema.get("properties") or {}).items()
                                      if admits_text(prop))
    return _TEXT_FIELDS[key]


_TEXT_FIELDS: dict[tuple[str, str], frozenset[str]] = {}


async def _parse_body(request: web.Request, raw: bytes, text_fields: frozenset[str] = frozenset()) -> Any:
    ctype = request.content_type
    if ctype.endswith("json"):
        try:
            return parse_json_body(raw)
        except ValueError as exc:
            return exc
    if ctype == "multipart/form-data":
        return await _parse_multipart(request, raw, text_fields)
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    return raw


async def _parse_multipart(request: web.Request, raw: bytes,
                           text_fields: frozenset[str] = frozenset()) -> dict[str, Any] | ValueError:
    """Parse a multipart body into ``{field: str | bytes}`` (files as bytes; JSON-looking text decoded)."""
    import email.parser
    import email.policy

    header = request.headers.get("Content-Type", "")
    try:
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + header.encode("latin-1") + b"\r\n\r\n" + raw)
    except Exception as exc:  # a malformed body from a client must not become a 500
        return ValueError(f"malformed multipart body: {exc}")
    if not msg.is_multipart():
        return ValueError("malformed multipart body: no parts found")
    out: dict[str, Any] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True) or b""
        if part.get_filename():
            out[name] = bytes(data)
            continue
        text = data.decode("utf-8", "replace")
        if text[:1] in "{[" and name not in text_fields:
            try:
                out[name] = json.loads(text)
                continue
            except json.JSONDecodeError:
                pass
        out[name] = text
    return _unflatten(out)


def _unflatten(fields: dict[str, Any]) -> dict[str, Any]:
    """Turn bracketed form names (``video[id]``, as the openai SDK sends nested objects) into nested dicts."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        keys = re.findall(r"[^\[\]]+", name) if "[" in name else [name]
        node = out
        for k in keys[:-1]:
            nxt = node.get(k)
            if not isinstance(nxt, dict):
                nxt = node[k] = {}
            node = nxt
        node[keys[-1]] = value
    return out


def _rel_path(path: str, prefix: str) -> str:
    return path[len(prefix):] if prefix and path.startswith(prefix) else path


def _fallback_handler(mounts: list[HostMount]):
    """Catch-all for paths under a mount: normalises ``//`` (sunra's SDK quirk), then answers 405 for a
    known path with the wrong method and 404 otherwise, in the provider's envelope."""

    async def fallback(request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        normalised = "//" in path
        if normalised:
            path = re.sub(r"/{2,}", "/", path)
        for mount in sorted(mounts, key=lambda m: -len(m.prefix)):
            if mount.prefix and not (path == mount.prefix or path.startswith(mount.prefix + "/")):
                continue
            rel = _rel_path(path, mount.prefix)
            if normalised:
                for op in mount.operations:
                    m = op.path_regex.match(rel)
                    if m and op.method == request.method:
                        params = {k: unquote(v) for k, v in m.groupdict().items()}
                        return await mount.handlers[op.operation_id].core(request, rel, params)
            matching = [op for op in mount.operations if op.path_regex.match(rel)]
            concrete = [op for op in matching if op.path == rel]  # OpenAPI: a concrete path wins
            allowed = sorted({op.method for op in (concrete or matching)})
            if allowed:
                resp = error_response(mount.contract, "method_not_allowed",
                                      f"method {request.method} is not allowed on {unquote(rel)}")
                resp.headers["Allow"] = ", ".join(allowed)
                return stamp_request_id(resp, concrete or matching)
            return stamp_request_id(error_response(mount.contract, "not_found",
                                                   f"no route for {request.method} {unquote(rel)}"),
                                    mount.operations)
        return web.json_response({"error": {"message": f"nothing is mounted at {unquote(path)}",
                                            "mounts": [m.prefix or "/" for m in mounts]}}, status=404)

    return fallback


# -- application --------------------------------------------------------------------------------------
def _layered(handler, *layers):
    """Wrap a handler in middleware layers (outermost first), composed once when routes are built.

    The layers are ordinary aiohttp-style middlewares ``(request, handler)``; composing them here instead of
    registering them with the application avoids aiohttp rebuilding the chain on every request.
    """
    inner = handler
    for layer in reversed(layers):
        inner = _bind(layer, inner)
    inner.mock_meta = getattr(handler, "mock_meta", (None, None))
    if hasattr(handler, "core"):
        inner.core = handler.core
    return inner


def _bind(layer, nxt):
    async def bound(request: web.Request) -> web.StreamResponse:
        return await layer(request, nxt)

    bound.mock_meta = getattr(nxt, "mock_meta", (None, None))
    return bound


def _operation_route(state: MockState, handler):
    """The route handler of one operation: journal entry, then faults (only when one can apply: installed
    rules, a rate limit or an ``X-Mock-Fault`` header), then the pipeline. This is the faults and journal
    middleware of DESIGN.md fused into one frame, because status polls are the hot path (bench/load.py)."""
    mount, op = handler.mock_meta
    guarded = handler.guarded
    journal, book = state.journal, state.faults
    provider, operation = mount.provider, op.operation_id
    clock, perf = time.time, time.perf_counter

    async def routed(request: web.Request) -> web.StreamResponse:
        entry = JournalEntry(clock(), request.method, request.rel_url, provider, operation, request.headers)
        journal.append(entry)
        start = perf()
        faulted = bool(book.rules) or book.rate_limited or FAULT_HEADER in request.headers
        try:
            response = await (faults_middleware(request, handler) if faulted
                              else guarded(request, None, request.match_info))
            entry.status = response.status
            return response
        except web.HTTPException as exc:
            entry.status = exc.status
            raise
        finally:
            entry.duration_ms = (perf() - start) * 1000
            if faulted:
                entry.fault = request.get(FAULT_KEY)

    routed.mock_meta = handler.mock_meta
    routed.core = handler.core
    return routed


def build_app(config: MockConfig | None = None) -> web.Application:
    """Build the aiohttp application for a configuration (see :class:`MockConfig`).

    Raises:
        mockserver.config.ConfigError: invalid configuration (one clear line).
        specs.SpecError: a contract cannot be loaded.
    """
    config = config or MockConfig()
    state = MockState(config)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[STATE_KEY] = state
    admin.setup(app, state)
    for pid in config.providers:
        contract = state.contracts[pid]
        for i, host in enumerate(contract.hosts):
            at_root = config.single_provider and i == 0
            prefix = mount_prefix(host, at_root)
            ops = [op for op in contract.operations() if op.host == host["id"]]
            mount = HostMount(contract=contract, host=host, prefix=prefix,
                              validator=HostValidator(contract, host["id"]), operations=ops)
            mount.family = family_for(host["family"])(state, mount)
            state.mounts.append(mount)
    # Register literal paths before templated ones so /videos/edits is not taken for /videos/{video_id},
    # and end each literal path with a catch-all: another method on it is 405 (OpenAPI matches concrete
    # paths before templated ones), not an operation of the templated path.
    fallback = _layered(_fallback_handler(state.mounts), journal_middleware)
    routes = [(m, op) for m in state.mounts for op in m.operations]
    # Within each group shorter paths first: templates are anchored, and the status poll (the hot path) is
    # then the first candidate the router tries.
    routes.sort(key=lambda r: (r[1].path.count("{"), len(r[1].path), r[0].prefix + r[1].path))
    for i, (mount, op) in enumerate(routes):
        handler = mount.handlers[op.operation_id] = make_handler(mount, op)
        full = mount.prefix + op.path
        app.router.add_route(op.method, full, _operation_route(state, handler), expect_handler=expect_continue)
        last_of_path = i + 1 == len(routes) or routes[i + 1][0].prefix + routes[i + 1][1].path != full
        if last_of_path and "{" not in op.path:
            app.router.add_route("*", full, fallback, expect_handler=expect_continue)
    for mount in state.mounts:
        extra = getattr(mount.family, "extra_routes", None)
        if extra:
            for method, path, handler in extra():
                app.router.add_route(method, mount.prefix + path, handler, expect_handler=expect_continue)
    app.router.add_route("*", "/{__tail__:.*}", fallback, expect_handler=expect_continue)
    if config.replay:  # serve a recorded cassette before the live engine (mockserver/replay.py)
        install_replay(app, state)
    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app


async def _on_startup(app: web.Application) -> None:
    state: MockState = app[STATE_KEY]
    await state.webhooks.start()


async def _on_cleanup(app: web.Application) -> None:
    state: MockState = app[STATE_KEY]
    await state.webhooks.stop()


# Names other modules and tools import from here (they live in mockserver.http and mockserver.state).
__all__ = ["MAX_BODY_BYTES", "STATE_KEY", "Ctx", "HostMount", "JournalEntry", "MockState", "build_app", "check_auth",
           "error_response", "make_handler", "redact_headers", "redact_url", "stamp_request_id"]
