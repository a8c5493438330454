"""Stage *admin*: the mock's own API under ``/__mock/``, routed and validated from its own contract,
``specs/mockadmin/openapi.yaml``, like a provider host.

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

Each operation of the contract becomes a route (its operationId names the handler in :mod:`.handlers`); a
request is validated against the contract before its handler runs: its JSON body against the operation's
request body schema (compiled once; a body is read as JSON whatever its ``Content-Type``, as ``curl -d`` sends
it) and, when it has a query string, its parameters with openapi-core. Path parameters are the handler's to
judge (an unknown fault id is 404, not 400). Every other method on a contract path answers 405 with ``Allow``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

import specs
from specs.pointers import deref

from ..expect import expect_continue
from ..http import admin_error
from ..middleware import Handler, Route
from ..routing import DocumentRoute, allowed_methods, routes_of
from ..validation import BodyValidator, DocumentValidator
from .handlers import handlers, job_json

PREFIX = "/__mock"


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def _defaults(document: dict, schema_name: str) -> dict[str, Any]:
    schema = deref(document, document["components"]["schemas"][schema_name])
    return {k: v["default"] for k, v in (schema.get("properties") or {}).items() if "default" in v}


def _endpoint(state: Any, validator: DocumentValidator, route: DocumentRoute, handler: Any) -> Handler:
    body_validator = BodyValidator(validator.document, route.operation) if "requestBody" in route.operation else None

    async def endpoint(request: web.Request) -> web.StreamResponse:
        raw = await request.read() if request.can_read_body else b""
        body: Any = None
        errs: list[tuple[str, str | None]] = []
        if body_validator is not None:
            try:
                body = json.loads(raw, parse_constant=_reject_constant) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                return admin_error(400, f"request body is not valid JSON: {exc}")
            errs = body_validator.errors(body)
        if not errs and request.query_string:  # query parameters: openapi-core (casting, styles)
            errs = validator.request_errors(route.method, request.rel_url.raw_path, request.query, request.headers,
                                            raw if body_validator is not None and raw else None, "application/json")
        if errs:
            message, param = errs[0]
            return admin_error(400, f"{param}: {message}" if param and param not in message else message)
        return await handler(state, request, {} if body is None else body)

    return endpoint


def _not_allowed(allowed: list[str]) -> Handler:
    """Handler answering 405 with an ``Allow`` header for an admin path called with another method."""

    async def handler(request: web.Request) -> web.Response:
        return admin_error(405, f"method {request.method} is not allowed on {request.path}",
                           headers={"Allow": ", ".join(allowed)})

    return handler


def setup(app: web.Application, state: Any, compose: Callable[[Route, Handler], Handler]) -> None:
    """Register the admin routes on ``app`` from ``specs/mockadmin/openapi.yaml``, each endpoint composed with
    the server's layers (``compose``).

    Raises:
        specs.SpecError: the admin contract cannot be read.
        KeyError: an operation of the contract has no handler (a mock bug).
    """
    document = specs.load_admin()
    validator = DocumentValidator(document, document["servers"][0]["url"], check_path_parameters=False)
    by_id = handlers(_defaults(document, "SeedVideo"))
    routes = routes_of(document)
    router = app.router
    for r in routes:
        handler = compose(Route("admin"), _endpoint(state, validator, r, by_id[r.operation["operationId"]]))
        if r.method == "GET":
            router.add_get(r.path, handler)  # also answers HEAD
        else:
            router.add_route(r.method, r.path, handler, expect_handler=expect_continue)
    for path in dict.fromkeys(r.path for r in routes):  # then every other method of each path: 405
        router.add_route("*", path, compose(Route("admin"), _not_allowed(allowed_methods(routes, path))),
                         expect_handler=expect_continue)


__all__ = ["PREFIX", "job_json", "setup"]
