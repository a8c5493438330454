"""OpenAPI runtime expressions, as used by the keys of ``callbacks`` (``{$request.query.fal_webhook}``).

OpenAPI 3.1 §4.8.20 defines the grammar; the forms evaluated here are

=================================== ==================================================================
``$url`` ``$method`` ``$statusCode`` the request URL, its method, the response status
``$request.query.NAME``             a query parameter of the request
``$request.header.NAME``            a request header (names compare case-insensitively)
``$request.path.NAME``              a path parameter
``$request.body#/POINTER``          a field of the request body (a JSON pointer, :mod:`specs.pointers`)
``$response.header.NAME``           a response header
``$response.body#/POINTER``         a field of the response body
=================================== ==================================================================

An expression may be written bare (``$request.query.x``) or in braces (``{$request.query.x}``), and a
callback key may embed several in a URL template (``{$request.body#/base}/hooks``, see :func:`expand`).
Nothing here imports the rest of the project.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .pointers import deref, get_pointer

_EMBEDDED = re.compile(r"\{(\$[^{}]+)\}")
_SOURCES = ("query", "header", "path", "body")


class ExpressionError(ValueError):
    """Text that is not a runtime expression of a supported form. ``str(err)`` names it."""


@dataclass(frozen=True)
class Expression:
    """A parsed runtime expression.

    Attributes:
        side: ``request``, ``response`` or ``""`` for ``$url`` / ``$method`` / ``$statusCode``.
        source: ``query``, ``header``, ``path`` or ``body`` (or ``url``, ``method``, ``statusCode``).
        name: a parameter or header name, or the JSON pointer of a ``body`` source (``/webhook_url``).
    """

    side: str
    source: str
    name: str = ""


@dataclass
class Message:
    """What an expression is evaluated against: one request (or response) as plain data.

    ``query``, ``headers`` and ``path`` are mappings (an aiohttp ``request.query`` / ``request.headers``
    does), ``body`` the parsed body (JSON value or form dict), ``url``/``method``/``status`` as sent.
    """

    query: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, Any] = field(default_factory=dict)
    path: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    url: str | None = None
    method: str | None = None
    status: int | None = None


def parse(expr: str) -> Expression:
    """Parse one runtime expression, with or without its braces.

    Raises:
        ExpressionError: not a runtime expression of a form listed in the module docstring.
    """
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text in ("$url", "$method", "$statusCode"):
        return Expression("", text[1:])
    for side in ("request", "response"):
        head = f"${side}."
        if not text.startswith(head):
            continue
        rest = text[len(head):]
        if rest.startswith("body"):
            tail = rest[len("body"):]
            if tail == "":
                return Expression(side, "body", "")
            if tail.startswith("#"):
                return Expression(side, "body", tail[1:])
        else:
            source, dot, name = rest.partition(".")
            if source in _SOURCES and dot and name and not (side == "response" and source in ("query", "path")):
                return Expression(side, source, name)
    raise ExpressionError(f"not a supported runtime expression: {expr!r}")


def parse_request_expression(expr: str) -> tuple[str, str] | None:
    """``{$request.query.NAME}`` / ``{$request.header.NAME}`` / ``{$request.body#/POINTER}`` ->
    ``(in, name)`` (``("body", "/webhook_url")``; a bare ``$request.body`` gives ``("body", "/")``): where a
    callback's URL comes from in the request. None for any other expression or text."""
    try:
        e = parse(expr)
    except ExpressionError:
        return None
    if e.side != "request" or e.source == "path":
        return None
    return e.source, (e.name or "/") if e.source == "body" else e.name


def _lookup(mapping: Mapping[str, Any] | None, name: str, fold: bool) -> Any:
    if not mapping:
        return None
    value = mapping.get(name)
    if value is None and fold:
        low = name.lower()
        value = next((v for k, v in mapping.items() if str(k).lower() == low), None)
    return value


def evaluate(expr: str | Expression, request: Message | None = None, response: Message | None = None) -> Any:
    """The value an expression names in a request (and response), or None when absent.

    Raises:
        ExpressionError: ``expr`` is text that is not a supported runtime expression.
    """
    e = parse(expr) if isinstance(expr, str) else expr
    if e.side == "":
        msg = request if e.source in ("url", "method") else response
        if msg is None:
            return None
        return {"url": msg.url, "method": msg.method, "statusCode": msg.status}[e.source]
    msg = request if e.side == "request" else response
    if msg is None:
        return None
    if e.source == "body":
        return get_pointer(msg.body, e.name) if e.name not in ("", "/") else msg.body
    if e.source == "query":
        return _lookup(msg.query, e.name, False)
    if e.source == "path":
        return _lookup(msg.path, e.name, False)
    return _lookup(msg.headers, e.name, True)


def expand(template: str, request: Message | None = None, response: Message | None = None) -> str | None:
    """A callback key with its embedded expressions replaced (``{$request.body#/base}/hooks``): each
    ``{$...}`` becomes the text of its value. None when some expression has no value (the URL cannot be
    built); text without expressions is returned unchanged.

    Raises:
        ExpressionError: an embedded ``{$...}`` is not a supported runtime expression.
    """
    missing = False

    def sub(m: re.Match) -> str:
        nonlocal missing
        value = evaluate(m.group(1), request, response)
        if value is None or value == "":
            missing = True
            return ""
        return value if isinstance(value, str) else str(value)

    out = _EMBEDDED.sub(sub, template)
    return None if missing else out


def callback_expressions(doc: dict, operation: dict) -> list[str]:
    """The callback keys (runtime expressions or URL templates) an operation object declares, in order;
    ``$ref``'d callback objects are followed in ``doc``."""
    out: list[str] = []
    for cb in (operation.get("callbacks") or {}).values():
        cb = deref(doc, cb)
        out.extend(k for k in (cb or {}) if isinstance(k, str))
    return out


def callback_url(doc: dict, operation: dict, request: Message) -> str | None:
    """The URL a request asks its callbacks to be sent to: the first callback key of ``operation`` that,
    evaluated against ``request``, gives a non-empty string (``{$request.query.fal_webhook}``,
    ``{$request.body#/webhook_url}``, ``{$request.header.X-Hook}``). None when the operation declares no
    callback or the request sets none. Keys that are not supported expressions are skipped."""
    for key in callback_expressions(doc, operation):
        text = key.strip()
        try:
            whole = text.startswith("$") or _EMBEDDED.fullmatch(text) is not None
            value = evaluate(text, request) if whole else expand(text, request)
        except ExpressionError:
            continue
        if isinstance(value, str) and value:
            return value
    return None


__all__ = ["Expression", "ExpressionError", "Message", "callback_expressions", "callback_url", "evaluate", "expand",
           "parse", "parse_request_expression"]
