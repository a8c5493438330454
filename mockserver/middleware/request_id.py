"""Request ids on every provider answer, and the provider's ``server_error`` envelope for a mock bug.

The contracts declare a request-id header on every response (``x-request-id``, ``x-fal-request-id`` ...).
Every answer of a provider route carries them, errors included (auth, validation, injected faults, unknown
paths, a mock bug). Ids are unique per server: ``req_<12 hex of the server><10 hex of a counter>``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Iterable

from aiohttp import web

from specs import Operation

from ..http import ServiceUnavailable, admin_error, error_response
from .compose import Handler, Route

log = logging.getLogger("mockserver")

#: The request-id header of an operation that declares none.
DEFAULT_HEADER = "x-request-id"


def request_id_header_names(ops: Iterable[Operation]) -> tuple[str, ...]:
    """The request-id header names (lower case, sorted) the operations declare on any response: declared
    headers whose name ends in ``request-id``; ``x-request-id`` when they declare none."""
    names = set()
    for op in ops:
        for resp in (op.definition.get("responses") or {}).values():
            for h in (resp.get("headers") or {}) if isinstance(resp, dict) else {}:
                if h.lower().endswith("request-id"):
                    names.add(h.lower())
    return tuple(sorted(names)) or (DEFAULT_HEADER,)


def stamp(response: web.StreamResponse, names: tuple[str, ...], rid: str) -> web.StreamResponse:
    """Set each header of ``names`` that ``response`` does not have yet to ``rid``; returns ``response``."""
    headers = response.headers
    for name in names:
        if name not in headers:
            headers[name] = rid
    return response


class RequestIds:
    """The request-id layer (``operation`` and ``not_found`` routes): stamps the route's request-id headers
    on the answer, and answers an exception from the layers below (a mock bug) with the provider's
    ``server_error`` envelope (logged), so even that answer is in the contract.

    :meth:`new` and :meth:`stamp` serve an endpoint that must send its headers before it returns (a status
    stream).
    """

    name = "request_ids"

    def __init__(self) -> None:
        self._run = uuid.uuid4().hex[:12]
        self._seq = itertools.count(1)

    def new(self) -> str:
        """A request id unique to this server (``req_<run><sequence>``)."""
        return f"req_{self._run}{next(self._seq):010x}"

    def stamp(self, response: web.StreamResponse, names: tuple[str, ...]) -> web.StreamResponse:
        """Stamp a fresh request id on ``response`` under ``names`` (headers it already has are kept)."""
        return stamp(response, names, self.new())

    def wrap(self, route: Route, nxt: Handler) -> Handler | None:
        """The stamping handler around ``nxt`` for a provider route, None for the admin API."""
        if route.kind == "admin":
            return None
        names, contract, op, new = route.request_id_headers, route.contract, route.op, self.new

        async def stamped(request: web.Request) -> web.StreamResponse:
            try:
                response = await nxt(request)
            except (web.HTTPException, asyncio.CancelledError, ConnectionResetError, ServiceUnavailable):
                raise  # a store that went away is the store guard's (a 503), not a mock bug
            except Exception as exc:  # a mock bug still answers in the provider's envelope, and is logged
                log.exception("mock error in %s %s", request.method, op.path if op else request.path)
                message = f"mock internal error: {type(exc).__name__}"
                response = (error_response(contract, "server_error", message) if contract is not None
                            else admin_error(500, message))
            rid = new()
            headers = response.headers
            for name in names:
                if name not in headers:
                    headers[name] = rid
            return response

        return stamped


__all__ = ["DEFAULT_HEADER", "RequestIds", "request_id_header_names", "stamp"]
