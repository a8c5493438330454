"""The endpoint of one provider operation: the request validation stage, then the rendering stage.

    auth (provider.yaml ``auth``)  ->  read the body  ->  validate (openapi-core, only when the operation has a
    body, query or header parameters: path parameters were matched by the router)  ->  parse the body
    ->  the family adapter's ``op_<role>`` (lifecycle engine + templates)

Any request the contract rejects is answered in the provider's envelope (``unauthorized``, ``validation``),
never a 500. A body over the size limits of :mod:`mockserver.validation.bodies` (``MAX_BODY_BYTES`` for any
body, ``MAX_TEXT_BYTES`` for one that is not multipart and for each multipart text field) is 413 in the
provider's ``validation`` envelope. The middleware layers (journal, replay, request ids, faults) wrap this endpoint; see
:func:`mockserver.app.build_app`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from specs import Operation
from specs.pointers import deref

from .http import error_response
from .middleware import Handler, Route
from .rendering import Ctx
from .routing import PATH_KEY, rel_path
from .timing import TIMING_HEADER, TimingHeaderError
from .validation import MAX_BODY_BYTES, BodyTooLarge, check_size, parse_body, text_fields


def operation_endpoint(state: Any, mount: Any, op: Operation, route: Route) -> Handler:
    """Build the endpoint of ``op`` on ``mount`` (everything is looked up once, here, not per request).

    Args:
        state: the server's :class:`mockserver.state.MockState`.
        mount: the host (:class:`mockserver.state.HostMount`, its ``family`` set).
        op: the operation; ``route``: its route (given to the adapter in :class:`Ctx`).
    """
    contract = mount.contract
    has_body = "requestBody" in op.definition
    params = [deref(contract.openapi, p) for p in op.definition.get("parameters") or []]
    needs_validation = has_body or any(isinstance(p, dict) and p.get("in") in ("query", "header") for p in params)
    text = text_fields(contract, op) if has_body else frozenset()
    check_auth, validator, prefix = mount.authenticator.check, mount.validator, mount.prefix
    role_handler = mount.family.handler_for(op.role)

    async def endpoint(request: web.Request) -> web.StreamResponse:
        key, reason = check_auth(request.headers)
        if key is None:
            return error_response(contract, "unauthorized", reason)
        routed = request.get(PATH_KEY) if len(request) else None  # set by the dispatcher after normalising
        raw = b""
        if has_body or (request.method != "GET" and request.can_read_body):
            try:
                raw = await request.read()
                check_size(raw, request.content_type)
            except web.HTTPRequestEntityTooLarge:
                return error_response(contract, "validation", f"request body is too large (limit {MAX_BODY_BYTES} "
                                      "bytes)", status=413)
            except BodyTooLarge as exc:
                return error_response(contract, "validation", str(exc), status=413)
        if needs_validation:
            # The raw path: an id holding "%2F" stays one path segment for the validator, as for the router.
            rel = routed[0] if routed else rel_path(request.rel_url.raw_path, prefix)
            errs = validator.request_errors(request.method, rel, request.query, request.headers,
                                            raw if raw else None, request.headers.get("Content-Type", ""))
            if errs:
                message, param = errs[0]
                return error_response(contract, "validation", message, param)
        body: Any = None
        if raw:
            try:
                body = parse_body(raw, request.content_type, request.headers.get("Content-Type", ""), text)
            except BodyTooLarge as exc:
                return error_response(contract, "validation", str(exc), status=413)
            except ValueError as exc:
                return error_response(contract, "validation", str(exc))
        ctx = Ctx(state, mount, op, route, request, routed[1] if routed else request.match_info, body, key)
        try:
            return await role_handler(ctx)
        except TimingHeaderError as exc:  # a bad X-Mock-Timing is the caller's error, like a bad X-Mock-Fault
            return error_response(contract, "validation", f"{TIMING_HEADER}: {exc}", param=TIMING_HEADER)

    return endpoint


__all__ = ["operation_endpoint"]
