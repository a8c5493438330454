"""Request and response validation against a host's contract, with openapi-core.

The mock serves each provider host under a mount prefix on 127.0.0.1; validation rewrites the request to
the provider's *real* URL (``https://queue.fal.run/fal-ai/...``) so that openapi-core matches it against
the vendored contract exactly as it would match real traffic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from specs import Contract


class _Request:
    """Minimal openapi-core ``Request`` protocol implementation."""

    __slots__ = ("host_url", "path", "method", "body", "content_type", "parameters")

    def __init__(self, host_url: str, path: str, method: str, query: Mapping[str, Any] | list,
                 headers: Mapping[str, str] | list, body: bytes | None, content_type: str):
        self.host_url = host_url
        self.path = path
        self.method = method.lower()
        self.body = body
        self.content_type = content_type
        items = list(query.items()) if hasattr(query, "items") else list(query)
        hitems = list(headers.items()) if hasattr(headers, "items") else list(headers)
        self.parameters = RequestParameters(query=ImmutableMultiDict(items), header=Headers(hitems))


class _Response:
    """Minimal openapi-core ``Response`` protocol implementation."""

    __slots__ = ("status_code", "data", "content_type", "headers")

    def __init__(self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | list):
        self.status_code = status
        self.data = data
        self.content_type = content_type
        hitems = list(headers.items()) if hasattr(headers, "items") else list(headers)
        self.headers = Headers(hitems)


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _describe(err: BaseException) -> tuple[str, str | None]:
    """Flatten an openapi-core error (and its schema-error causes) into (message, param); long values
    (uploaded bytes, huge prompts) are shortened so an error never echoes a whole request."""
    msg, param = _describe_full(err)
    return _short(msg), param


def _describe_full(err: BaseException) -> tuple[str, str | None]:
    param = getattr(err, "name", None)
    inner = list(getattr(err, "schema_errors", None) or [])
    cause = err.__cause__
    while cause is not None and not inner:
        inner = list(getattr(cause, "schema_errors", None) or [])
        if param is None:
            param = getattr(cause, "name", None)
        cause = cause.__cause__
    if inner:
        first = inner[0]
        path = [str(p) for p in getattr(first, "absolute_path", [])]
        if path and param is None:
            param = path[0]
        if param is None and getattr(first, "validator", None) == "required" and isinstance(first.instance, dict):
            # a missing top-level field is reported at the root: name the field (fal's loc: ["body", field])
            param = next((k for k in first.validator_value if k not in first.instance), None)
        where = ".".join(path)
        message = first.message
        if isinstance(getattr(first, "instance", None), bytes | str) and len(first.instance) > 80:
            message = message.replace(repr(first.instance), repr(first.instance[:40]) + "...")
        return (f"{where}: {message}" if where else message), param
    msg = str(err) or err.__class__.__name__
    if err.__cause__ is not None and str(err.__cause__):
        msg = f"{msg}: {err.__cause__}"
    return msg, param


def _text_loads(value: bytes, **parameters: str) -> str:
    from openapi_core.deserializing.media_types.util import plain_loads

    return plain_loads(value, **parameters)


#: Text media types openapi-core has no deserializer for: decoded to str so that a ``type: string`` schema
#: (fal/sunra ``text/event-stream`` status streams) validates the text, not the raw bytes.
_CONFIG = Config(extra_media_type_deserializers={"text/event-stream": _text_loads})


class HostValidator:
    """Validates requests and responses for one host of one provider.

    Args:
        contract: the provider's :class:`specs.Contract`.
        host_id: a host id from ``provider.yaml`` (``"queue"``, ``"run"``, ...).
    """

    def __init__(self, contract: Contract, host_id: str):
        self.contract = contract
        self.host_id = host_id
        base = urlsplit(contract.host(host_id)["base_url"])
        self.host_url = f"{base.scheme}://{base.netloc}"
        self.base_path = base.path.rstrip("/")
        self.openapi = OpenAPI.from_dict(contract.host_document(host_id), config=_CONFIG)

    def request_errors(self, method: str, path: str, query, headers, body: bytes | None,
                       content_type: str) -> list[tuple[str, str | None]]:
        """Validate a request; ``path`` is relative to the host base URL (``/videos/abc``).

        Returns a list of ``(message, param)`` (empty when valid). Security is not checked here (the mock's
        auth layer does it first), so security errors are ignored.
        """
        from openapi_core.validation.request.exceptions import (
            RequestBodyValidationError,
            SecurityValidationError,
        )

        req = _Request(self.host_url, self.base_path + path, method, query, headers, body, content_type)
        out = []
        for err in self.openapi.iter_request_errors(req):
            if isinstance(err, SecurityValidationError):
                continue
            message, param = _describe(err)
            if param is None and isinstance(err, RequestBodyValidationError):
                param = "body"  # the whole body is at fault (missing, not JSON, not an object)
            out.append((message, param))
        return out

    def response_errors(self, method: str, path: str, query, req_headers, status: int, body: bytes,
                        content_type: str, headers) -> list[str]:
        """Validate a response to a request (``path`` relative to the host base URL); messages or []."""
        req = _Request(self.host_url, self.base_path + path, method, query, req_headers, None, "")
        resp = _Response(status, body, content_type, headers)
        return [" ".join(str(x) for x in _describe(e) if x) for e in self.openapi.iter_response_errors(req, resp)]


def parse_json_body(raw: bytes) -> Any:
    """Parse a JSON request body; raises ValueError with a short message when malformed."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None
