"""The cassette format: recorded HTTP traffic of a provider flow, redacted, as one JSON file.

The drift recorder of the conformance suite writes cassettes (``conformance.drift``) and the mock serves them
(``mockserver serve --replay``): this module is the one reader and writer of the format, and it imports
neither tool.

Format (``cassette_version`` 1)::

    {
      "cassette_version": 1,
      "tool": "conformance.drift",
      "provider": "openai",                       # provider id of specs/, or null
      "hosts": {"api": "http://127.0.0.1:8000/openai/v1"},   # host id -> base URL recorded against
      "recorded_at": "2026-11-22T10:00:00Z",
      "meta": {"flow": "video_object", "redactions": 12, ...},
      "interactions": [
        {
          "seq": 0,                              # order of the request in the recording
          "started": 0.013,                      # seconds since the recording started
          "duration_ms": 4.2,
          "label": "create",                     # the flow step (poll steps repeat: a polling sequence)
          "expect": "success",                   # success | error | null (what the flow expected)
          "host": "api",                         # host id the URL belongs to, or null (CDN, foreign URL)
          "request":  {"method": "POST", "url": "...", "headers": {...},
                       "body_encoding": "json", "body": {...}},
          "response": {"status": 200, "headers": {...}, "body_encoding": "json", "body": {...}},
          "error": null                          # transport error text when there is no response
        }
      ]
    }

``body_encoding`` is one of ``empty`` (body null), ``json`` (parsed value), ``text`` (a string: SSE, plain
text, HTML), ``form`` (a dict of url-encoded fields), ``multipart`` (a dict of fields; file parts are binary
summaries) and ``binary``: a summary ``{"content_type", "length", "sha256"}`` (bytes, lowercase hex), plus
``"blob": "<sha256>"`` when the bytes were stored beside the cassette in ``<cassette>.blobs/<sha256>``.
Header names are lower case. Everything is redacted before it is stored: the writer passes a redactor
(:class:`Redacts`; the drift recorder's is ``conformance.drift.redact.Redactor``), and a redacted value is
:data:`REDACTED`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

CASSETTE_VERSION = 1
#: What a redacted value is replaced by (header values, query values, body fields, secrets in text).
REDACTED = "[REDACTED]"
_TEXT_TYPES = ("text/", "application/xml", "application/javascript", "application/x-ndjson",
               "application/problem+xml")


class CassetteError(Exception):
    """A cassette cannot be read or is not a valid cassette. ``str(err)`` is one clear line."""


class Redacts(Protocol):
    """What :func:`encode_body` needs from a redactor: ``data`` redacts parsed data (dicts, lists, strings),
    ``text`` redacts free text; both return the redacted copy."""

    def data(self, value: Any) -> Any: ...

    def text(self, text: str) -> str: ...


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header value (``application/json``), lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(ctype: str) -> bool:
    """True for ``application/json`` and ``+json`` / ``/json`` media types."""
    mt = media_type(ctype)
    return mt == "application/json" or mt.endswith("+json") or mt.endswith("/json")


def binary_summary(data: bytes, content_type: str | None) -> dict[str, Any]:
    """``{"content_type", "length", "sha256"}`` of a binary body (length in bytes)."""
    return {"content_type": media_type(content_type) or None, "length": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def _multipart(data: bytes, content_type: str, redactor: Redacts) -> dict[str, Any] | None:
    import email.parser
    import email.policy

    try:
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + data)
    except Exception:  # malformed: summarised as binary by the caller
        return None
    if not msg.is_multipart():
        return None
    out: dict[str, Any] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() or not _is_text(payload):
            out[name] = {"binary": binary_summary(payload, part.get_content_type())}
            continue
        text = payload.decode("utf-8")
        try:
            value: Any = json.loads(text) if text[:1] in "{[" else text
        except json.JSONDecodeError:
            value = text
        out[name] = value
    return redactor.data(out)


def _is_text(data: bytes) -> bool:
    if b"\x00" in data[:4096]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def encode_body(data: bytes | None, content_type: str | None, redactor: Redacts) -> tuple[str, Any]:
    """Turn raw body bytes into ``(body_encoding, body)`` for a cassette, redacting secrets.

    JSON media types are parsed (falling back to text when not valid JSON), text media types and SSE become
    strings, url-encoded forms and multipart bodies become dicts, anything else becomes a binary summary.
    """
    if not data:
        return "empty", None
    mt = media_type(content_type)
    if is_json_type(mt) or (not mt and data[:1] in (b"{", b"[")):
        try:
            return "json", redactor.data(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    if mt == "application/x-www-form-urlencoded" and _is_text(data):
        return "form", redactor.data(dict(parse_qsl(data.decode("utf-8"), keep_blank_values=True)))
    if mt.startswith("multipart/"):
        parts = _multipart(data, content_type or mt, redactor)
        if parts is not None:
            return "multipart", parts
    if (mt.startswith(_TEXT_TYPES) or is_json_type(mt) or (not mt and len(data) < 65536)) and _is_text(data):
        return "text", redactor.text(data.decode("utf-8"))
    return "binary", binary_summary(data, content_type)


@dataclass
class Interaction:
    """One recorded request/response pair (see the module docstring for the field meanings)."""

    seq: int
    request: dict[str, Any]
    response: dict[str, Any] | None
    started: float = 0.0
    duration_ms: float = 0.0
    label: str | None = None
    expect: str | None = None
    host: str | None = None
    error: str | None = None

    @property
    def method(self) -> str:
        return str(self.request.get("method", "GET")).upper()

    @property
    def url(self) -> str:
        return str(self.request.get("url", ""))

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.get("status")

    def response_header(self, name: str) -> str | None:
        return ((self.response or {}).get("headers") or {}).get(name.lower())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "interaction") -> Interaction:
        """Parse one interaction of a cassette file. Raises :class:`CassetteError` naming ``where``."""
        if not isinstance(data, dict):
            raise CassetteError(f"{where}: not an object")
        req = data.get("request")
        if not isinstance(req, dict) or "method" not in req or "url" not in req:
            raise CassetteError(f"{where}: request must be an object with method and url")
        resp = data.get("response")
        if resp is not None and (not isinstance(resp, dict) or not isinstance(resp.get("status"), int)):
            raise CassetteError(f"{where}: response must be null or an object with an integer status")
        try:
            return cls(seq=int(data.get("seq", 0)), request=req, response=resp,
                       started=float(data.get("started") or 0.0), duration_ms=float(data.get("duration_ms") or 0.0),
                       label=data.get("label"), expect=data.get("expect"), host=data.get("host"),
                       error=data.get("error"))
        except (TypeError, ValueError) as exc:
            raise CassetteError(f"{where}: {exc}") from None


@dataclass
class Cassette:
    """A recording: provider, the base URL of each host it was recorded against, and the interactions.

    ``blobs`` (sha256 -> bytes) holds binary response bodies kept for replay; it is written beside the
    cassette by :meth:`save` and read back lazily by :meth:`blob`.
    """

    provider: str | None = None
    hosts: dict[str, str] = field(default_factory=dict)
    interactions: list[Interaction] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    recorded_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    blobs: dict[str, bytes] = field(default_factory=dict, repr=False)
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"cassette_version": CASSETTE_VERSION, "tool": "conformance.drift", "provider": self.provider,
                "hosts": dict(self.hosts), "recorded_at": self.recorded_at, "meta": dict(self.meta),
                "interactions": [i.to_json() for i in self.interactions]}

    def save(self, path: str | Path) -> Path:
        """Write the cassette (JSON, UTF-8) and its blobs directory. Returns the path.

        Raises:
            CassetteError: the file cannot be written.
        """
        path = Path(path)
        try:
            if path.parent and not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(tmp, path)
            if self.blobs:
                bdir = blob_dir(path)
                bdir.mkdir(parents=True, exist_ok=True)
                for sha, data in self.blobs.items():
                    target = bdir / sha
                    if not target.exists():
                        target.write_bytes(data)
        except OSError as exc:
            raise CassetteError(f"cannot write cassette {path}: {exc.strerror or exc}") from None
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> Cassette:
        """Read a cassette file.

        Raises:
            CassetteError: unreadable, not JSON, or not a version-1 cassette (one clear line).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CassetteError(f"cannot read cassette {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CassetteError(f"cassette {path} is not UTF-8 text") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CassetteError(f"cassette {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(data, dict) or data.get("cassette_version") != CASSETTE_VERSION:
            raise CassetteError(f"{path} is not a cassette (expected cassette_version {CASSETTE_VERSION})")
        items = data.get("interactions")
        if not isinstance(items, list):
            raise CassetteError(f"cassette {path}: interactions must be a list")
        hosts = data.get("hosts") or {}
        if not isinstance(hosts, dict) or not all(isinstance(v, str) for v in hosts.values()):
            raise CassetteError(f"cassette {path}: hosts must map host ids to base URLs")
        inter = [Interaction.from_json(x, f"cassette {path}: interaction {i}") for i, x in enumerate(items)]
        return cls(provider=data.get("provider"), hosts=dict(hosts), interactions=inter,
                   meta=dict(data.get("meta") or {}), recorded_at=str(data.get("recorded_at") or ""), path=path)

    def blob(self, sha256: str) -> bytes | None:
        """The stored bytes of a binary body, or None when not stored (or altered on disk)."""
        if sha256 in self.blobs:
            return self.blobs[sha256]
        if self.path is None:
            return None
        target = blob_dir(self.path) / sha256
        try:
            data = target.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            return None
        self.blobs[sha256] = data
        return data


def blob_dir(path: str | Path) -> Path:
    """Directory holding the binary bodies of a cassette: ``<cassette>.blobs``."""
    path = Path(path)
    return path.with_name(path.name + ".blobs")


__all__ = ["CASSETTE_VERSION", "REDACTED", "Cassette", "CassetteError", "Interaction", "Redacts", "binary_summary",
           "blob_dir", "encode_body", "is_json_type", "media_type"]
