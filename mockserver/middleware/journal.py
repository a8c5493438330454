"""The request journal: every provider request (not the admin API's) as the admin API's ``GET /__mock/journal``
reports it, credentials redacted."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from aiohttp import web

from ..http import SECRET_HEADERS, redact_headers, redact_url
from .compose import Handler, Route

#: ``request[FAULT_KEY]`` is the fault kind applied to a request (set by the faults layer, read here).
FAULT_KEY = web.RequestKey("mock_fault", str)


class JournalEntry:
    """One request as kept in the journal. Headers and URL are kept by reference and redacted when the
    journal is read (:meth:`to_json`), which keeps the hot path cheap; they never leave the process
    unredacted."""

    __slots__ = ("time", "method", "rel_url", "provider", "operation", "status", "duration_ms", "headers",
                 "fault")

    def __init__(self, time: float, method: str, rel_url: Any, provider: str | None, operation: str | None,
                 headers: Any):
        self.time = time
        self.method = method
        self.rel_url = rel_url
        self.provider = provider
        self.operation = operation
        self.headers = headers
        self.status: int | None = None
        self.duration_ms: float | None = None
        self.fault: str | None = None

    @property
    def path(self) -> str:
        """Path and query of the request as received."""
        return str(self.rel_url)

    def to_json(self, secret: frozenset[str] = SECRET_HEADERS) -> dict:
        """JSON view with credentials redacted: the values of ``secret`` headers (lower-case names) and
        secret-looking query values."""
        return {"time": round(self.time, 3), "method": self.method, "path": redact_url(self.path),
                "provider": self.provider, "operation": self.operation, "status": self.status,
                "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
                "headers": redact_headers(self.headers, secret), "fault": self.fault}


class Journal:
    """The journal layer: records each provider request (``operation`` and ``not_found`` routes) in
    ``entries`` (a bounded deque shared with the admin API) with its status, duration and applied fault.

    Args:
        entries: the server's journal (``MockState.journal``).
    """

    name = "journal"

    def __init__(self, entries: deque):
        self.entries = entries

    def wrap(self, route: Route, nxt: Handler) -> Handler | None:
        """The journaling handler around ``nxt`` for a provider route, None for the admin API."""
        if route.kind == "admin":
            return None
        append = self.entries.append
        finish = getattr(self.entries, "finish", None)  # a shared journal writes the answered entry
        provider = route.provider
        operation = route.op.operation_id if route.op is not None else None
        clock, perf = time.time, time.perf_counter

        async def journaled(request: web.Request) -> web.StreamResponse:
            entry = JournalEntry(clock(), request.method, request.rel_url, provider, operation, request.headers)
            append(entry)
            start = perf()
            try:
                response = await nxt(request)
                entry.status = response.status
                return response
            except web.HTTPException as exc:
                entry.status = exc.status
                raise
            finally:
                entry.duration_ms = (perf() - start) * 1000
                if len(request):  # the request's own state is empty unless a layer noted something
                    entry.fault = request.get(FAULT_KEY)
                if finish is not None:
                    finish(entry)

        return journaled


__all__ = ["FAULT_KEY", "Journal", "JournalEntry"]
