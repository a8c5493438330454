"""What every stage of the mock's pipeline shares about HTTP answers: the app key of the server state, the
provider's error envelope as a response, request-id stamping, the journal entry and credential redaction.

This module sits below the pipeline (``app``, ``faults``, ``admin``, ``replay``, the family adapters): it
imports none of them, so each of them can import it at the top.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from typing import Any

from aiohttp import web

from specs import Contract, Operation

#: ``request.app[STATE_KEY]`` is the server's :class:`mockserver.state.MockState`.
STATE_KEY = web.AppKey("mock_state", object)

_RUN_ID = uuid.uuid4().hex[:12]
_REQUEST_SEQ = itertools.count(1)
_REDACT_HEADERS = {"authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"}


def redact_headers(headers) -> dict[str, str]:
    """Copy headers with credentials replaced by ``[REDACTED]`` (keys never reach journals or logs)."""
    return {k: ("[REDACTED]" if k.lower() in _REDACT_HEADERS else v) for k, v in headers.items()}


def redact_url(url: str) -> str:
    """Drop query values that look like secrets (key, token, signature, ...) from a URL or path."""
    return re.sub(r"(?i)([?&](?:[a-z_]*key|token|sig|signature|secret|x-amz-[a-z-]+)=)[^&]*", r"\1[REDACTED]", url)


class JournalEntry:
    """One request as kept in the admin journal. Headers and URL are kept by reference and redacted when
    the journal is read (:meth:`to_json`), which keeps the hot path cheap; they never leave the process
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
        return str(self.rel_url)

    def to_json(self) -> dict:
        """JSON view with credentials redacted (headers and secret-looking query values)."""
        return {"time": round(self.time, 3), "method": self.method, "path": redact_url(self.path),
                "provider": self.provider, "operation": self.operation, "status": self.status,
                "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
                "headers": redact_headers(self.headers), "fault": self.fault}


def dumps(data: Any) -> str:
    """Compact JSON text of a response body."""
    return json.dumps(data, separators=(",", ":"))


def error_response(contract: Contract, kind: str, message: str | None = None, param: str | None = None,
                   status: int | None = None, headers: dict[str, str] | None = None) -> web.Response:
    """Render ``kind`` (an ``errors.kinds`` entry of provider.yaml) in ``contract``'s error envelope as an
    aiohttp response; a 429 gets ``Retry-After: 1`` unless ``headers`` set it.

    Raises:
        specs.SpecError: the provider declares no such error kind.
    """
    code, body = contract.error_body(kind, message=message, param=param, status=status)
    hdrs = dict(headers or {})
    if code == 429 and "Retry-After" not in hdrs:
        hdrs["Retry-After"] = "1"
    return web.json_response(body, status=code, headers=hdrs, dumps=dumps)


# -- request ids -----------------------------------------------------------------------------------------
_ID_HEADERS: dict[tuple[str, str], tuple[str, ...]] = {}
_ID_NAMES: dict[tuple, tuple[str, ...]] = {}


def new_request_id() -> str:
    """A request id unique to this process (``req_<run><sequence>``)."""
    return f"req_{_RUN_ID}{next(_REQUEST_SEQ):010x}"


def _request_id_headers(op: Operation) -> tuple[str, ...]:
    key = (op.provider, op.operation_id)
    if key not in _ID_HEADERS:
        names = set()
        for resp in (op.definition.get("responses") or {}).values():
            for h in (resp.get("headers") or {}) if isinstance(resp, dict) else {}:
                if h.lower().endswith("request-id"):
                    names.add(h.lower())
        _ID_HEADERS[key] = tuple(sorted(names)) or ("x-request-id",)
    return _ID_HEADERS[key]


def request_id_header_names(ops: tuple[Operation, ...]) -> tuple[str, ...]:
    """The request-id header names the operations declare (``x-request-id``, ``x-fal-request-id`` ...;
    ``x-request-id`` when an operation declares none). Memoised by operation: read on every answer."""
    key = tuple((o.provider, o.operation_id) for o in ops)
    names = _ID_NAMES.get(key)
    if names is None:
        names = _ID_NAMES[key] = tuple(sorted({n for o in ops for n in _request_id_headers(o)}))
    return names


def stamp_request_id(response: web.StreamResponse, op: Operation | list[Operation]) -> web.StreamResponse:
    """Give ``response`` the request-id headers (``x-request-id``, ``x-fal-request-id`` ...) of an operation
    (or of several: a 404/405 of a mount) unless it has them: every answer carries them, errors included
    (auth, validation, injected faults, unknown paths), as the contracts declare them on every status."""
    rid = new_request_id()
    headers = response.headers
    for name in request_id_header_names(tuple(op) if isinstance(op, list) else (op,)):
        if name not in headers:
            headers[name] = rid
    return response


__all__ = ["STATE_KEY", "JournalEntry", "dumps", "error_response", "new_request_id", "redact_headers", "redact_url",
           "request_id_header_names", "stamp_request_id"]
