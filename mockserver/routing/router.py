"""The aiohttp router of the provider hosts, built from the contracts.

Each operation of each mounted host is one aiohttp route (``METHOD <mount prefix><contract path>``). Literal
paths are registered before templated ones, so ``/videos/edits`` is not taken for ``/videos/{video_id}``
(OpenAPI matches concrete paths first), and within each group shorter paths come first: templates are
anchored, and the status poll (the hot path) is then the first candidate the router tries.

Whatever no operation route takes goes to the :class:`Dispatcher` (every literal path ends with a catch-all
for its other methods, and one catch-all takes every other path). It

- normalises ``//`` in a path (sunra-client's request-id helpers put ``/v1/queue//requests/{id}`` on the
  wire) and hands a path that then matches an operation to that operation's route;
- answers a known path with another method 405 (with ``Allow``) and an unknown path under a mount 404, in
  the provider's envelope (:func:`not_found_endpoint`);
- answers a path under no mount 404 in the mock's own envelope (:func:`unmounted_endpoint`).

The dispatcher only chooses; every answer comes from a composed route (:mod:`mockserver.middleware`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from specs import Operation

from ..expect import expect_continue
from ..http import dumps, error_response
from ..middleware import Handler, Route, request_id_header_names

#: ``request[PATH_KEY] = (path relative to the mount, path parameters)`` of a request the dispatcher handed
#: to an operation after normalising its path (the operation's own route reads ``match_info`` otherwise).
PATH_KEY = web.RequestKey("mock_path", tuple)

#: ``(mount, operation, route) -> endpoint``: the pipeline of one operation (validation, then rendering).
EndpointFactory = Callable[[Any, Operation, Route], Handler]


def rel_path(path: str, prefix: str) -> str:
    """``path`` relative to a mount ``prefix`` (unchanged when it is not under it)."""
    return path[len(prefix):] if prefix and path.startswith(prefix) else path


def route_order(mounts: Sequence[Any]) -> list[tuple[Any, Operation]]:
    """Every ``(mount, operation)`` in registration order: literal paths first, then shorter first."""
    routes = [(m, op) for m in mounts for op in m.operations]
    routes.sort(key=lambda r: (r[1].path.count("{"), len(r[1].path), r[0].prefix + r[1].path))
    return routes


def _normalise(request: web.Request) -> tuple[str, bool]:
    path = request.rel_url.raw_path
    if "//" not in path:
        return path, False
    return re.sub(r"/{2,}", "/", path), True


def _mount_of(mounts: Sequence[Any], path: str) -> Any:
    for mount in sorted(mounts, key=lambda m: -len(m.prefix)):
        if not mount.prefix or path == mount.prefix or path.startswith(mount.prefix + "/"):
            return mount
    return None


def not_found_endpoint(mount: Any) -> Handler:
    """The endpoint of a mount's unknown paths: 405 with ``Allow`` when the path is an operation's with
    another method, else 404; both in the provider's envelope."""

    async def not_found(request: web.Request) -> web.StreamResponse:
        path, _ = _normalise(request)
        rel = rel_path(path, mount.prefix)
        matching = [op for op in mount.operations if op.path_regex.match(rel)]
        concrete = [op for op in matching if op.path == rel]  # OpenAPI: a concrete path wins
        allowed = sorted({op.method for op in (concrete or matching)})
        if allowed:
            resp = error_response(mount.contract, "method_not_allowed",
                                  f"method {request.method} is not allowed on {unquote(rel)}")
            resp.headers["Allow"] = ", ".join(allowed)
            return resp
        return error_response(mount.contract, "not_found", f"no route for {request.method} {unquote(rel)}")

    return not_found


def unmounted_endpoint(mounts: Sequence[Any]) -> Handler:
    """The endpoint of a path under no mount: 404 naming the mounts, in the mock's own envelope."""

    prefixes = [m.prefix or "/" for m in mounts]

    async def unmounted(request: web.Request) -> web.StreamResponse:
        path, _ = _normalise(request)
        return web.json_response({"error": {"message": f"nothing is mounted at {unquote(path)}",
                                            "mounts": prefixes}}, status=404, dumps=dumps)

    return unmounted


class Dispatcher:
    """The handler of every path no operation route takes (see the module docstring).

    Args:
        mounts: the mounted hosts (their ``handlers`` already composed).
        not_found: composed :func:`not_found_endpoint` per mount (by ``id(mount)``).
        unmounted: composed :func:`unmounted_endpoint`.
    """

    def __init__(self, mounts: Sequence[Any], not_found: dict[int, Handler], unmounted: Handler):
        self.mounts = sorted(mounts, key=lambda m: -len(m.prefix))
        self.not_found = not_found
        self.unmounted = unmounted

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Answer a request no operation route took (through a composed route)."""
        path, normalised = _normalise(request)
        mount = _mount_of(self.mounts, path)
        if mount is None:
            return await self.unmounted(request)
        if normalised:
            rel = rel_path(path, mount.prefix)
            for op in mount.operations:
                m = op.path_regex.match(rel)
                if m and op.method == request.method:
                    request[PATH_KEY] = (rel, {k: unquote(v) for k, v in m.groupdict().items()})
                    return await mount.handlers[op.operation_id](request)
        return await self.not_found[id(mount)](request)


def add_provider_routes(app: web.Application, mounts: Sequence[Any], compose: Callable[[Route, Handler], Handler],
                        endpoint_for: EndpointFactory) -> Dispatcher:
    """Register the routes of every mounted host on ``app`` (see the module docstring), each endpoint
    composed with the server's layers, and the catch-all last. Returns the dispatcher.

    Args:
        app: the application (admin routes, if any, registered before: the catch-all takes the rest).
        mounts: the hosts, each with its ``family`` set.
        compose: the server's composer (:class:`mockserver.middleware.Composer`).
        endpoint_for: builds one operation's pipeline (:func:`mockserver.pipeline.operation_endpoint`).
    """
    not_found = {id(m): compose(Route("not_found", m, None, request_id_header_names(m.operations)),
                                not_found_endpoint(m)) for m in mounts}
    unmounted = compose(Route("not_found"), unmounted_endpoint(mounts))
    dispatcher = Dispatcher(mounts, not_found, unmounted)
    dispatch = dispatcher.dispatch
    routes = route_order(mounts)
    for i, (mount, op) in enumerate(routes):
        route = Route("operation", mount, op, request_id_header_names([op]))
        handler = mount.handlers[op.operation_id] = compose(route, endpoint_for(mount, op, route))
        full = mount.prefix + op.path
        app.router.add_route(op.method, full, handler, expect_handler=expect_continue)
        last_of_path = i + 1 == len(routes) or routes[i + 1][0].prefix + routes[i + 1][1].path != full
        if last_of_path and "{" not in op.path:
            app.router.add_route("*", full, dispatch, expect_handler=expect_continue)
    app.router.add_route("*", "/{__tail__:.*}", dispatch, expect_handler=expect_continue)
    return dispatcher


__all__ = ["PATH_KEY", "Dispatcher", "EndpointFactory", "add_provider_routes", "not_found_endpoint", "rel_path",
           "route_order", "unmounted_endpoint"]
