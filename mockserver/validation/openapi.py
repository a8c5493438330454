"""Request and response validation against an OpenAPI document, with openapi-core.

:class:`HostValidator` validates one host of a provider. The mock serves each provider host under a mount
prefix on 127.0.0.1; validation rewrites the request to the provider's *real* URL
(``https://queue.fal.run/fal-ai/...``) so that openapi-core matches it against the vendored contract exactly as
it would match real traffic. :class:`DocumentValidator` does the same for any single-server document (the
admin API's own contract, ``specs/mockadmin/openapi.yaml``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from specs import Contract
from specs.pointers import deref

from .bodies import form_field_names


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
        first = _specific(inner[0])
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
    try:
        msg = str(err) or err.__class__.__name__
        if err.__cause__ is not None and str(err.__cause__):
            msg = f"{msg}: {err.__cause__}"
    except Exception:  # openapi-core renders an undecodable body with .decode("utf-8") in __str__
        msg = _unreadable(err)
    return msg, param


def _specific(err: Any) -> Any:
    """The most telling cause of a ``oneOf``/``anyOf`` schema error: among its branches' errors, leaving out
    the branches whose type the value does not have at all, the best match (jsonschema's ``best_match``)."""
    from jsonschema.exceptions import best_match

    for _ in range(8):
        if getattr(err, "validator", None) not in ("oneOf", "anyOf") or not getattr(err, "context", None):
            break
        same_type = [e for e in err.context if not (e.validator == "type" and not e.relative_path)]
        if not same_type:
            break
        err = best_match(same_type)
    return err


def _unreadable(exc: BaseException) -> str:
    """Describe an error that cannot render itself (openapi-core's MediaTypeDeserializeError decodes the
    raw body as UTF-8 in ``__str__``, so a body that is not UTF-8 would turn a client error into a mock
    error)."""
    node: BaseException | None = exc
    while node is not None and getattr(node, "mimetype", None) is None:
        node = node.__cause__
    mimetype = getattr(node, "mimetype", None)
    return f"the request body cannot be read as {mimetype}" if mimetype else type(exc).__name__


def _declared_properties(doc: dict, schema: Any) -> set[str]:
    """Property names a schema declares, including those of its allOf/oneOf/anyOf branches."""
    schema = deref(doc, schema)
    if not isinstance(schema, dict):
        return set()
    names = set(schema.get("properties") or {})
    for key in ("allOf", "oneOf", "anyOf"):
        for branch in schema.get(key) or []:
            names |= _declared_properties(doc, branch)
    return names


def _text_loads(value: bytes, **parameters: str) -> str:
    from openapi_core.deserializing.media_types.util import plain_loads

    return plain_loads(value, **parameters)


#: An absolute URI (RFC 3986: scheme ":" then unreserved, reserved or percent-encoded characters).
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")


def _is_uri(value: Any) -> bool:
    """``format: uri`` (jsonschema only checks it when the optional rfc3987 package is installed)."""
    return not isinstance(value, str) or _URI.fullmatch(value) is not None


#: Text media types openapi-core has no deserializer for are decoded to str, so that a ``type: string``
#: schema (fal/sunra ``text/event-stream`` status streams) validates the text, not the raw bytes; and
#: ``format: uri`` is checked (webhook URLs such as fal's ``fal_webhook``).
_CONFIG = Config(extra_media_type_deserializers={"text/event-stream": _text_loads},
                 extra_format_validators={"uri": _is_uri})


def _with_form_text_encodings(document: dict) -> dict:
    """Spell out the OAS default ``contentType: text/plain`` of multipart properties whose schema is an
    untyped union of plain strings (openai's ``model``: ``anyOf`` of strings): openapi-core reads only a
    top-level ``type`` and would otherwise validate such a part as raw bytes. Edits ``document`` in place."""
    for item in (document.get("paths") or {}).values():
        for op in item.values():
            body = deref(document, op.get("requestBody")) if isinstance(op, dict) else None
            media = ((body or {}).get("content") or {}).get("multipart/form-data")
            if not isinstance(media, dict):
                continue
            schema = deref(document, media.get("schema") or {})
            for name, prop in (schema.get("properties") or {}).items():
                prop = deref(document, prop)
                branches = [deref(document, b) for b in (prop.get("anyOf") or prop.get("oneOf") or [])]
                if "type" in prop or not branches or name in (media.get("encoding") or {}):
                    continue
                if all(b.get("type") == "string" and b.get("format") != "binary" for b in branches):
                    media.setdefault("encoding", {})[name] = {"contentType": "text/plain"}
    return document


class DocumentValidator:
    """Validates requests and responses against one OpenAPI document served at one base URL.

    Args:
        document: an OpenAPI 3.1 document (a dict; read, never changed).
        base_url: the URL its paths are relative to (``https://api.openai.com/v1``, ``http://127.0.0.1:8000``).
        check_path_parameters: when False, errors about path parameters are dropped (the router has already
            matched the path; a route may answer a malformed id itself, e.g. 404).
    """

    def __init__(self, document: dict, base_url: str, check_path_parameters: bool = True):
        base = urlsplit(base_url)
        self.host_url = f"{base.scheme}://{base.netloc}"
        self.base_path = base.path.rstrip("/")
        self.check_path_parameters = check_path_parameters
        self.document = document
        self.openapi = OpenAPI.from_dict(_with_form_text_encodings(copy.deepcopy(document)), config=_CONFIG)

    def request_errors(self, method: str, path: str, query, headers, body: bytes | None,
                       content_type: str) -> list[tuple[str, str | None]]:
        """Validate a request; ``path`` is relative to the base URL (``/videos/abc``).

        Returns a list of ``(message, param)`` (empty when valid). Security is not checked here (the mock's
        auth step does it first), so security errors are ignored.
        """
        from openapi_core.validation.request.exceptions import (
            RequestBodyValidationError,
            SecurityValidationError,
        )

        # openapi-core's path template parser strips a control character from a path parameter ("\t" -> ""):
        # keep such characters percent-encoded, as they came on the wire.
        wire_path = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"%{ord(m.group()):02X}", path)
        req = _Request(self.host_url, self.base_path + wire_path, method, query, headers, body, content_type)
        out = []
        try:
            for err in self.openapi.iter_request_errors(req):
                if isinstance(err, SecurityValidationError):
                    continue
                if not self.check_path_parameters and getattr(err, "location", None) == "path":
                    continue
                message, param = _describe(err)
                if param is None and isinstance(err, RequestBodyValidationError):
                    param = "body"  # the whole body is at fault (missing, not JSON, not an object)
                out.append((message, param))
        except Exception:  # openapi-core asserts on some malformed bodies (multipart without parts)
            out.append((f"the request body cannot be read as {content_type.split(';')[0] or 'its type'}", "body"))
        return out or self._strict_errors(method, path, query, body, content_type)

    def _strict_errors(self, method: str, path: str, query, body: bytes | None,
                       content_type: str) -> list[tuple[str, str | None]]:
        return []

    def response_errors(self, method: str, path: str, query, req_headers, status: int, body: bytes,
                        content_type: str, headers) -> list[str]:
        """Validate a response to a request (``path`` relative to the base URL); messages or []."""
        req = _Request(self.host_url, self.base_path + path, method, query, req_headers, None, "")
        resp = _Response(status, body, content_type, headers)
        return [" ".join(str(x) for x in _describe(e) if x) for e in self.openapi.iter_response_errors(req, resp)]


class HostValidator(DocumentValidator):
    """Validates requests and responses for one host of one provider (against the host's own document,
    :meth:`specs.Contract.host_document`, at the provider's real base URL).

    Args:
        contract: the provider's :class:`specs.Contract`.
        host_id: a host id from ``provider.yaml`` (``"queue"``, ``"run"``, ...).

    Raises:
        specs.SpecError: no such host.
    """

    def __init__(self, contract: Contract, host_id: str):
        self.contract = contract
        self.host_id = host_id
        self._ops = [op for op in contract.operations() if op.host == host_id]
        super().__init__(contract.host_document(host_id), contract.host(host_id)["base_url"])

    def _operation(self, method: str, path: str) -> dict | None:
        """The operation definition (``$ref``-free where it matters) of ``method path``, or None."""
        concrete = [op for op in self._ops if op.method == method.upper() and op.path == path]
        matches = concrete or [op for op in self._ops if op.method == method.upper() and op.path_regex.match(path)]
        return matches[0].definition if matches else None

    def _strict_errors(self, method: str, path: str, query, body: bytes | None,
                       content_type: str) -> list[tuple[str, str | None]]:
        """What openapi-core lets through although the contract forbids it: a query parameter that is not
        an array given several times, a form field (multipart, urlencoded) whose schema is not an array given
        several times (openapi-core keeps one of the values; a form encodes an array as repeated fields, so
        repeating a string field sends an array where the contract declares a string), and form fields a
        closed schema (``additionalProperties: false``) does not declare (openapi-core drops them before
        validating)."""
        op = self._operation(method, path)
        if op is None:
            return []
        doc = self.contract.openapi
        out: list[tuple[str, str | None]] = []
        getall = getattr(query, "getall", None)
        for p in op.get("parameters") or []:
            p = deref(doc, p)
            if not isinstance(p, dict) or p.get("in") != "query" or getall is None:
                continue
            if deref(doc, p.get("schema") or {}).get("type") != "array" and len(getall(p["name"], [])) > 1:
                out.append((f"query parameter {p['name']} must be given once", p["name"]))
        media = content_type.split(";")[0].strip().lower()
        if body and media in ("multipart/form-data", "application/x-www-form-urlencoded"):
            content = (deref(doc, op.get("requestBody") or {}).get("content") or {}).get(media) or {}
            schema = deref(doc, content.get("schema") or {})
            names = form_field_names(body, content_type)
            props = schema.get("properties") or {}
            seen: set[str] = set()
            for name in names:
                if name in seen and name in props and deref(doc, props[name] or {}).get("type") != "array":
                    out.append((f"form field {name!r} must be given once", name))
                    break
                seen.add(name)
            if schema.get("additionalProperties") is False:
                declared = _declared_properties(doc, schema)
                for name in names:
                    if name not in declared:
                        out.append((f"unknown field {name!r} in the form body", name))
                        break
        return out


class BodyValidator:
    """JSON Schema validation of one operation's JSON request body, compiled once (no openapi-core request
    processing): what a control API that is called often (the admin API) needs.

    Args:
        document: the OpenAPI 3.1 document (its ``components`` resolve ``$ref``).
        operation: the operation object (its ``requestBody``'s ``application/json`` schema is used).

    Raises:
        KeyError: the operation has no JSON request body.
    """

    def __init__(self, document: dict, operation: dict):
        from jsonschema import Draft202012Validator

        body = deref(document, operation["requestBody"])
        self.required = bool(body.get("required"))
        schema = body["content"]["application/json"]["schema"]
        self._validator = Draft202012Validator({"allOf": [schema],
                                                "components": copy.deepcopy(document.get("components") or {})})

    def errors(self, value: Any) -> list[tuple[str, str | None]]:
        """``[(message, param)]`` for a parsed body (None: no body), empty when valid; ``param`` is the
        offending top-level field, or ``"body"``."""
        if value is None:
            return [("the request body is required", "body")] if self.required else []
        first = next(iter(sorted(self._validator.iter_errors(value), key=lambda e: list(e.absolute_path))), None)
        if first is None:
            return []
        err = _specific(first)
        path = [str(p) for p in err.absolute_path]
        where = ".".join(path)
        return [(_short(f"{where}: {err.message}" if where else err.message), path[0] if path else "body")]
