"""Request bodies: JSON, ``multipart/form-data`` and ``application/x-www-form-urlencoded`` parsed into the value
the family adapters read (the one multipart parser of the mock; the validator lists form fields with it too).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from specs import Contract, Operation
from specs.pointers import deref

#: Largest request body the mock reads, in bytes (multipart uploads: reference images, videos); more is 413.
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Largest body that is not ``multipart/form-data`` (JSON, urlencoded) and largest text field (non-file part)
#: of a multipart body, in bytes; more is 413 in the provider's envelope. A prompt is text: 1 MiB is far above
#: any provider's documented prompt length, and keeps a runaway client from filling the job store.
MAX_TEXT_BYTES = 1024 * 1024


class BodyTooLarge(ValueError):
    """A request body or text field over :data:`MAX_BODY_BYTES` / :data:`MAX_TEXT_BYTES` (answered 413)."""


def check_size(raw: bytes, media_type: str) -> None:
    """Raise :class:`BodyTooLarge` when a body that is not multipart is over :data:`MAX_TEXT_BYTES` bytes."""
    if media_type != "multipart/form-data" and len(raw) > MAX_TEXT_BYTES:
        raise BodyTooLarge(f"request body is too large: {len(raw)} bytes (a {media_type or 'non-multipart'} body "
                           f"may have at most {MAX_TEXT_BYTES} bytes)")


class Part(NamedTuple):
    """One part of a multipart body: field ``name``, ``filename`` (None for a plain field), raw ``data``."""

    name: str
    filename: str | None
    data: bytes


def multipart_parts(raw: bytes, content_type: str) -> list[Part]:
    """The named parts of a ``multipart/form-data`` body whose ``Content-Type`` header is ``content_type``.

    Raises:
        ValueError: the body cannot be parsed, or has no parts (one line, for the provider's envelope).
    """
    try:
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + raw)
        if not msg.is_multipart():
            raise ValueError("malformed multipart body: no parts found")
        out = []
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                out.append(Part(str(name), part.get_filename(), bytes(part.get_payload(decode=True) or b"")))
        return out
    except ValueError:
        raise
    except Exception as exc:  # a malformed body from a client must not become a 500
        raise ValueError(f"malformed multipart body: {exc}") from None


def form_field_names(raw: bytes, content_type: str) -> list[str]:
    """Field names of a multipart/form-data or urlencoded body (empty when it cannot be parsed)."""
    if content_type.lower().startswith("application/x-www-form-urlencoded"):
        return [k for k, _ in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)]
    try:
        return [p.name for p in multipart_parts(raw, content_type)]
    except ValueError:  # malformed bodies are the validator's to report
        return []


def parse_json_body(raw: bytes) -> Any:
    """Parse a JSON request body.

    Raises:
        ValueError: not UTF-8 or not JSON (a short message).
    """
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None


def text_fields(contract: Contract, op: Operation) -> frozenset[str]:
    """Multipart properties of ``op`` whose schema admits a plain (non-binary) string: their parts stay text
    even when they look like JSON (a ``model`` or ``prompt`` of ``{...}`` is a string). Computed once per
    operation when its route is built."""
    doc = contract.openapi
    body = deref(doc, op.definition.get("requestBody") or {})
    schema = deref(doc, ((body.get("content") or {}).get("multipart/form-data") or {}).get("schema") or {})

    def admits_text(node: Any, depth: int = 0) -> bool:
        node = deref(doc, node)
        if not isinstance(node, dict) or depth > 5:
            return False
        types = node.get("type")
        if types == "string" or (isinstance(types, list) and "string" in types):
            return node.get("format") != "binary"
        return any(admits_text(b, depth + 1) for b in (node.get("anyOf") or node.get("oneOf") or []))

    return frozenset(name for name, prop in (schema.get("properties") or {}).items() if admits_text(prop))


def parse_body(raw: bytes, media_type: str, content_type: str,
               text: frozenset[str] = frozenset()) -> Any:
    """The value of a request body: JSON -> the JSON value; multipart -> ``{field: str | bytes | JSON}``
    (files as bytes, JSON-looking text decoded unless the field is in ``text``, bracketed names such as
    ``video[id]`` nested); urlencoded -> ``{field: str}``; anything else -> the raw bytes.

    Args:
        raw: the body bytes.
        media_type: the media type without parameters (``multipart/form-data``).
        content_type: the whole ``Content-Type`` header (with the multipart boundary).
        text: multipart fields that always stay text (:func:`text_fields`).

    Raises:
        BodyTooLarge: a text field of a multipart body over :data:`MAX_TEXT_BYTES` bytes.
        ValueError: a malformed JSON or multipart body (one line).
    """
    if media_type.endswith("json"):
        return parse_json_body(raw)
    if media_type == "multipart/form-data":
        out: dict[str, Any] = {}
        for part in multipart_parts(raw, content_type):
            if part.filename:
                out[part.name] = part.data
                continue
            if len(part.data) > MAX_TEXT_BYTES:
                raise BodyTooLarge(f"form field {part.name!r} is too large: {len(part.data)} bytes (limit "
                                   f"{MAX_TEXT_BYTES} bytes for a text field)")
            value = part.data.decode("utf-8", "replace")
            if value[:1] in "{[" and part.name not in text:
                try:
                    out[part.name] = json.loads(value)
                    continue
                except json.JSONDecodeError:
                    pass
            out[part.name] = value
        return _unflatten(out)
    if media_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    return raw


def _unflatten(fields: dict[str, Any]) -> dict[str, Any]:
    """Turn bracketed form names (``video[id]``, as the openai SDK sends nested objects) into nested dicts."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        keys = (re.findall(r"[^\[\]]+", name) if "[" in name else None) or [name]
        node = out
        for k in keys[:-1]:
            nxt = node.get(k)
            if not isinstance(nxt, dict):
                nxt = node[k] = {}
            node = nxt
        node[keys[-1]] = value
    return out


__all__ = ["MAX_BODY_BYTES", "MAX_TEXT_BYTES", "BodyTooLarge", "Part", "check_size", "form_field_names", "multipart_parts", "parse_body", "parse_json_body", "text_fields"]
