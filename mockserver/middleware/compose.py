"""The one composer: every endpoint of the mock is wrapped, once, when routes are built, in the layers that
can apply to it.

A *route* (:class:`Route`) says what the layers need to know about an endpoint: its kind (a provider
operation, a provider's "no such route" answer, or the admin API), the provider host and operation, and the
request-id headers its answers carry. A *layer* (:class:`Layer`) looks at the route once, at build time, and
either declines it (``wrap`` returns None: the layer can never apply there, so the request never passes
through it) or returns the handler that runs it around the next one. A layer that applies to a route only
for some requests (faults: only when a rule is installed, a rate limit is on or the request carries
``X-Mock-Fault``) wraps itself with :func:`when`, a plain function that hands the request straight to the next
handler when its test fails: that is the fast path, with no extra coroutine frame.

Composing here, instead of registering aiohttp application middlewares, means aiohttp does not rebuild a
middleware chain on every request, and a status poll (the hot path, ``bench/load.py``) pays only for the
layers that can apply to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from specs import Operation

#: An aiohttp handler: ``request -> awaitable response``.
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Route kinds: a provider operation, a provider's 404/405 (or a path under no mount), the admin API.
ROUTE_KINDS = ("operation", "not_found", "admin")


@dataclass(frozen=True, slots=True)
class Route:
    """What the layers know about one endpoint.

    Attributes:
        kind: one of :data:`ROUTE_KINDS`.
        mount: the provider host (:class:`mockserver.state.HostMount`) for ``operation`` and a mount's
            ``not_found``; None for the admin API and for paths under no mount.
        op: the contract operation (``operation`` routes), else None.
        request_id_headers: header names every answer of this route carries a request id in (lower case).
    """

    kind: str
    mount: Any = None
    op: Operation | None = None
    request_id_headers: tuple[str, ...] = ()

    @property
    def provider(self) -> str | None:
        """The provider id of an ``operation`` route (None otherwise: the journal's ``provider``)."""
        return self.op.provider if self.op is not None else None

    @property
    def contract(self):
        """The provider's contract when the route belongs to a mount, else None."""
        return self.mount.contract if self.mount is not None else None


class Layer(Protocol):
    """One middleware layer (journal, replay, request ids, faults)."""

    name: str

    def wrap(self, route: Route, nxt: Handler) -> Handler | None:
        """The handler running this layer around ``nxt`` for ``route``, or None when the layer never applies
        to that route."""


def when(active: Callable[[web.Request], bool], run: Handler, nxt: Handler) -> Handler:
    """The fast path of a layer that applies to some requests only: ``run(request)`` when ``active(request)``
    is true, else ``nxt(request)`` directly (a plain function returning the chosen coroutine, so a request the
    layer does not apply to pays one function call, not a coroutine frame)."""

    def choose(request: web.Request) -> Awaitable[web.StreamResponse]:
        return run(request) if active(request) else nxt(request)

    return choose


def compose(route: Route, endpoint: Handler, layers: Sequence[Layer]) -> Handler:
    """Wrap ``endpoint`` in ``layers`` (outermost first), keeping only the layers that apply to ``route``.

    Returns an ``async`` function (what aiohttp expects of a route handler).
    """
    handler = endpoint
    for layer in reversed(layers):
        wrapped = layer.wrap(route, handler)
        if wrapped is not None:
            handler = wrapped
    if not _is_async(handler):
        inner = handler

        async def handler(request: web.Request) -> web.StreamResponse:
            return await inner(request)

    return handler


def _is_async(fn: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)


class Composer:
    """The layers of one server, in order (outermost first); ``composer(route, endpoint)`` composes a route.

    Args:
        layers: the layers, e.g. ``[journal, replay, request_ids, faults]``.
    """

    def __init__(self, layers: Sequence[Layer]):
        self.layers = tuple(layers)

    def __call__(self, route: Route, endpoint: Handler) -> Handler:
        return compose(route, endpoint, self.layers)


__all__ = ["ROUTE_KINDS", "Composer", "Handler", "Layer", "Route", "compose", "when"]
