"""What every stage of the mock's pipeline shares about HTTP answers: the app key of the server state, compact
JSON, the provider's error envelope as a response, and credential redaction.

This module sits below every stage (``routing``, ``validation``, ``rendering``, ``delivery``, ``middleware``,
``admin``): it imports none of them, so each of them can import it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from specs import Contract

#: ``request.app[STATE_KEY]`` is the server's :class:`mockserver.state.MockState`.
STATE_KEY = web.AppKey("mock_state", object)

#: Request headers that carry credentials whatever the provider (each provider's own auth header is added
#: from provider.yaml ``auth.header`` by :func:`secret_header_names`).
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"})


class ServiceUnavailable(Exception):
    """Something the mock depends on while serving (its shared job store: ``--store sqlite:...`` or
    ``redis:...``) cannot be reached right now.  Raised from any stage; answered as the provider's
    ``unavailable`` error (503 with ``Retry-After``) on provider routes and as the admin envelope's 503 on the
    admin API (:class:`mockserver.middleware.StoreGuard`), never as a traceback.  ``str(exc)`` is one line."""


def secret_header_names(contracts: Iterable[Contract]) -> frozenset[str]:
    """Lower-case names of the headers to redact for a set of providers: :data:`SECRET_HEADERS` plus each
    provider's ``auth.header`` (a provider may take its key in a header of its own, e.g. ``X-Clip-Key``)."""
    return SECRET_HEADERS | {str(c.auth["header"]).lower() for c in contracts}


def redact_headers(headers, secret: frozenset[str] = SECRET_HEADERS) -> dict[str, str]:
    """Copy ``headers`` (any mapping) with the values of ``secret`` header names (lower case) replaced by
    ``[REDACTED]``: keys never reach journals or logs."""
    return {k: ("[REDACTED]" if k.lower() in secret else v) for k, v in headers.items()}


def redact_url(url: str) -> str:
    """Drop query values that look like secrets (key, token, signature, ...) from a URL or path."""
    return re.sub(r"(?i)([?&](?:[a-z_]*key|token|sig|signature|secret|x-amz-[a-z-]+)=)[^&]*", r"\1[REDACTED]", url)


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


def admin_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """The admin API's (and the mock's own) error envelope ``{"error": {"message": ...}}`` (contract:
    ``specs/mockadmin/openapi.yaml`` ``Error``)."""
    return web.json_response({"error": {"message": message}}, status=status, headers=headers, dumps=dumps)


__all__ = ["SECRET_HEADERS", "STATE_KEY", "ServiceUnavailable", "admin_error", "dumps", "error_response", "redact_headers", "redact_url",
           "secret_header_names"]
