"""The store guard: a shared job store (``--store sqlite:...``/``redis:...``) that stops answering while the mock
serves becomes the provider's ``unavailable`` error (503 with ``Retry-After: 1``, request ids stamped) on
provider routes and the admin envelope's 503 on the admin API, never a traceback or a hang.  Every request
tries the store again, so the mock serves as soon as it is back.  Only in the layer list with a shared store
(the memory store has nothing that can go away)."""

from __future__ import annotations

import logging

from aiohttp import web

from ..http import ServiceUnavailable, admin_error, error_response
from .compose import Handler, Route

log = logging.getLogger("mockserver")

#: Seconds a client is told to wait before trying again.
RETRY_AFTER = "1"


class StoreGuard:
    """The outermost layer with a shared store (every route kind).

    Args:
        request_ids: the server's :class:`~mockserver.middleware.RequestIds` (stamps the 503s of provider routes).
    """

    name = "store_guard"

    def __init__(self, request_ids) -> None:
        self.request_ids = request_ids
        self._down = False

    def wrap(self, route: Route, nxt: Handler) -> Handler | None:
        """The guarding handler around ``nxt`` (every route)."""
        contract, names, ids = route.contract, route.request_id_headers, self.request_ids

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                response = await nxt(request)
            except ServiceUnavailable as exc:
                if not self._down:  # one log line per outage, not one per request
                    log.warning("store unavailable: %s", exc)
                    self._down = True
                headers = {"Retry-After": RETRY_AFTER}
                if contract is None:
                    return admin_error(503, f"the mock's store is unavailable: {exc}", headers=headers)
                response = error_response(contract, "unavailable", "the mock's job store is unavailable; "
                                          "retry shortly", headers=headers)
                return ids.stamp(response, names) if names else response
            self._down = False
            return response

        return guarded


__all__ = ["RETRY_AFTER", "StoreGuard"]
