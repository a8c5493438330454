"""Secret redaction for cassettes and drift reports.

Secrets never reach a cassette, a report or a log: the recorder redacts every request and response at the
boundary where it is captured (before it is held in memory as an interaction), so a cassette can be committed
or uploaded as a CI artifact.

What is redacted (:data:`REDACTED` replaces the value, the name stays so the shape remains visible):

- **headers** whose name is a credential (``Authorization``, ``Proxy-Authorization``, ``Cookie``,
  ``Set-Cookie``, ``X-API-Key``, ``api-key``, and any name containing ``auth``, ``token``, ``secret``,
  ``password``, ``signature``, ``cookie``, ``session`` or a ``key`` word);
- **URL query parameters** named like a credential (``key``, ``api_key``, ``token``, ``access_token``,
  ``sig``, ``signature``, ``secret``, ``password``, ``credential``, ``policy``, ``x-amz-*``, ``x-goog-*``);
  when a URL is *signed* (it carries a signature-like parameter: S3/GCS/CloudFront/Azure SAS style) every
  query value is redacted;
- **body fields** (JSON, form and multipart) whose name has a credential word (``api_key``, ``token``,
  ``secret``, ``password``, ``authorization``, ``signature``, ``credential(s)``, ``key``);
- **known secret values** (the API key the recorder was given, plus any value registered with
  :meth:`Redactor.add_secret`) wherever they occur, also URL-encoded. Every value redacted by one of the
  name rules above is learnt as a secret too, so a provider echoing it later (in an error message, say)
  is scrubbed as well;
- **key-shaped strings** anywhere in text: ``Bearer <token>``, ``Key <token>``, ``sk-...``, ``whsec_...``,
  and URLs inside text get the query rule above.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from specs.cassette import REDACTED  # the cassette format's placeholder (re-exported)

_SECRET_WORDS = {"key", "apikey", "token", "secret", "password", "passwd", "authorization", "auth",
                 "signature", "sig", "credential", "credentials", "cookie", "session", "bearer"}
_SECRET_HEADER_RE = re.compile(r"(auth|token|secret|passw|signature|cookie|session|(^|[-_])(api)?[-_]?key($|[-_]))",
                               re.I)
_SECRET_QUERY_RE = re.compile(
    r"^(key|api[-_]?key|apikey|token|access[-_]token|id[-_]token|auth|sig|signature|secret|client[-_]secret|"
    r"password|credential|policy|key-pair-id|security[-_]token|x-amz-.*|x-goog-.*|googleaccessid|"
    r"fal[-_]key|.*[-_](key|token|secret|signature))$", re.I)
_SIGNED_QUERY_RE = re.compile(r"^(sig|signature|x-amz-signature|x-goog-signature|token|policy)$", re.I)
_KEY_SHAPES = [
    re.compile(r"\b(Bearer|bearer|BEARER|Key|Basic)(\s+)(?=[A-Za-z0-9._~+/=:\-]*\d)[A-Za-z0-9._~+/=:\-]{12,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9+/=_\-]{8,}"),
]
_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>\\]+")


def secret_field_name(name: str) -> bool:
    """True when a body field or query name denotes a credential (``api_key``, ``token``, ``fal_key`` ...)."""
    parts = [p for p in re.split(r"[-_.\s\[\]]+", str(name).lower()) if p]
    return any(p in _SECRET_WORDS for p in parts) or str(name).lower() in ("apikey", "accesstoken")


def secret_header_name(name: str) -> bool:
    """True when an HTTP header carries credentials (``Authorization``, ``X-API-Key``, ``Set-Cookie`` ...)."""
    return bool(_SECRET_HEADER_RE.search(str(name)))


class Redactor:
    """Removes secrets from URLs, headers and bodies (see the module docstring for the rules).

    Args:
        secrets: literal secret values (API keys) to scrub wherever they occur. Values shorter than
            6 characters are ignored (they would match ordinary text).
    """

    def __init__(self, secrets: Iterable[str | None] = ()):
        self._secrets: list[str] = []
        for s in secrets:
            self.add_secret(s)
        self.count = 0  # how many values were redacted (reported in the cassette, never the values)

    def add_secret(self, value: str | None) -> None:
        """Register a literal secret value; it (and its URL-encoded forms) is scrubbed from everything."""
        if not value or len(value) < 6:
            return
        for form in {value, quote(value, safe=""), quote_plus(value)}:
            if form not in self._secrets:
                self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)

    def learn(self, value: str) -> None:
        """Register a value found under a credential name (and, for ``Scheme token``, the token alone)."""
        value = value.strip()
        scheme, _, token = value.partition(" ")
        for v in (value, token.strip() if scheme.lower() in ("bearer", "key", "basic", "token") else ""):
            # only values that look like credentials: long, not a plain number, with a digit in them
            if v and v != REDACTED and len(v) >= 8 and not v.isdigit() and any(c.isdigit() for c in v):
                self.add_secret(v)

    # -- primitives ---------------------------------------------------------------------------------
    def text(self, text: str) -> str:
        """Scrub a free text: known secrets, key-shaped tokens and the query strings of URLs in it."""
        if not isinstance(text, str) or not text:
            return text
        out = text
        for s in self._secrets:
            if s in out:
                self.count += out.count(s)
                out = out.replace(s, REDACTED)
        for rx in _KEY_SHAPES:
            out = rx.sub(self._shape_sub, out)
        if "://" in out:
            out = _URL_IN_TEXT.sub(lambda m: self._url_only(m.group(0)), out)
        return out

    def _shape_sub(self, m: re.Match) -> str:
        self.count += 1
        if m.lastindex and m.lastindex >= 2:
            return f"{m.group(1)}{m.group(2)}{REDACTED}"
        return REDACTED

    def _url_only(self, url: str) -> str:
        try:
            parts = urlsplit(url)
        except ValueError:
            return url
        if not parts.query:
            return url
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if not pairs:
            return url
        signed = any(_SIGNED_QUERY_RE.match(k) for k, _ in pairs)
        new = []
        changed = False
        for k, v in pairs:
            if v and v != REDACTED and (signed or _SECRET_QUERY_RE.match(k)):
                self.learn(v)
                new.append((k, REDACTED))
                changed = True
                self.count += 1
            else:
                new.append((k, v))
        if not changed:
            return url
        query = urlencode(new, safe="[]")
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))

    def url(self, url: str) -> str:
        """Redact a URL: credential query values (all values of a signed URL), userinfo, known secrets."""
        if not isinstance(url, str):
            return url
        out = url
        for s in self._secrets:
            if s in out:
                self.count += 1
                out = out.replace(s, REDACTED)
        try:
            parts = urlsplit(out)
            if parts.password or (parts.username and "@" in parts.netloc):
                host = parts.netloc.rsplit("@", 1)[1]
                out = urlunsplit((parts.scheme, f"{REDACTED}@{host}", parts.path, parts.query, parts.fragment))
                self.count += 1
        except ValueError:
            pass
        return self._url_only(out) if "?" in out else out

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        """Copy headers as ``{lower-case name: value}``: credential headers redacted, other values scrubbed.
        Repeated headers are joined with ``", "``."""
        items = headers.items() if hasattr(headers, "items") else headers
        out: dict[str, str] = {}
        for name, value in items:
            lname = str(name).lower()
            if secret_header_name(lname):
                self.learn(str(value))
                val = REDACTED
                self.count += 1
            elif lname in ("location", "content-location", "link", "referer"):
                val = self.url(str(value)) if lname != "link" else self.text(str(value))
            else:
                val = self.text(str(value))
            out[lname] = f"{out[lname]}, {val}" if lname in out else val
        return out

    def data(self, value: Any, _depth: int = 0) -> Any:
        """Redact a parsed JSON value (or form/multipart dict): credential-named fields become
        :data:`REDACTED`, every string is scrubbed with :meth:`text`."""
        if _depth > 64:
            return REDACTED
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if secret_field_name(k) and isinstance(v, str) and v not in ("", REDACTED):
                    self.learn(v)
                    out[k] = REDACTED
                    self.count += 1
                else:
                    out[k] = self.data(v, _depth + 1)
            return out
        if isinstance(value, list):
            return [self.data(v, _depth + 1) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def contains_secret(self, blob: bytes) -> bool:
        """True when raw bytes contain a registered secret value (used before storing binary bodies)."""
        return any(s.encode("utf-8", "ignore") in blob for s in self._secrets)


__all__ = ["REDACTED", "Redactor", "secret_field_name", "secret_header_name"]
