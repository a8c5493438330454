"""The one HTTP path of the suite: every request of every check goes through :class:`Client`.

``Client`` wraps a ``requests.Session`` whose transport adapter is the single choke point:

1. the spend guard (:mod:`conformance.spend`) sees each prepared request first and may refuse it
   (:class:`~conformance.spend.SpendBlocked`), so no code path can reach a paid operation unguarded;
2. the request is sent and its body read;
3. an :class:`Exchange` (request + response, credentials redacted) is built and passed to every hook in
   ``Client.hooks`` — the place where drift detection records cassettes — and attached to the response as
   ``response.exchange``.

schemathesis' ``case.call(session=client.session)`` uses the same session, so generated contract cases
pass through the same guard and hooks as the lifecycle drivers.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter


class RunStopped(Exception):
    """The run was stopped (``--max-time``, Ctrl-C, SIGTERM): no further request is sent. ``str(err)`` is the
    reason. Not a transport error: nothing is judged on it."""


REDACTED_HEADERS = {"authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"}
BODY_KEEP_BYTES = 1 << 20  # bytes of a body kept on an Exchange (downloads are cut)
MIN_SECRET_IN_TEXT = 8  # shorter secrets are redacted in credential headers only (see Client.redact)


class OutsideTarget(requests.ConnectionError):
    """Not sent: the URL is on a host the target does not name and the run keeps to the target's hosts
    (``--only-target-hosts``). A refusal of the suite, never a finding about the target."""


@dataclass
class Credentials:
    """How to authenticate to one provider (from provider.yaml ``auth``).

    Attributes:
        header: header name (``Authorization``).
        scheme: ``Bearer`` | ``Key`` | ``raw`` (the bare key).
        key: the secret; never printed.
        env: the environment variable the key came from (shown instead of the key in curl commands).
    """

    header: str
    scheme: str
    key: str
    env: str

    def value(self, key: str | None = None) -> str:
        """The header value for ``key`` (default: the real key) in this scheme."""
        k = self.key if key is None else key
        return k if self.scheme == "raw" else f"{self.scheme} {k}"

    def headers(self) -> dict[str, str]:
        return {self.header: self.value()}


@dataclass
class Exchange:
    """One HTTP request and its response (or transport error), with credentials redacted.

    Attributes:
        method, url: the request line (secret query values redacted).
        request_headers: request headers; credential headers hold ``$ENV`` placeholders.
        request_body: the raw request body (bytes) or None.
        status: response status, or None when no response arrived.
        response_headers: response headers (lower-case names).
        response_body: the first :data:`BODY_KEEP_BYTES` bytes of the response body.
        elapsed: seconds from send to the body being read.
        error: transport error text when no response arrived.
        started: ``time.time()`` when the request was sent.
    """

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes | None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    elapsed: float = 0.0
    error: str | None = None
    started: float = 0.0

    def curl(self) -> str:
        """A curl command that repeats the request (credentials as ``$ENV`` references)."""
        return to_curl(self.method, self.url, self.request_headers, self.request_body)

    def excerpt(self, limit: int = 300) -> str:
        """The start of the response body as text (or the transport error)."""
        if self.error:
            return self.error
        text = self.response_body[:limit].decode("utf-8", "replace")
        return text + ("..." if len(self.response_body) > limit else "")

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "request_headers": self.request_headers,
                "request_body": _text_or_none(self.request_body), "status": self.status,
                "response_headers": self.response_headers,
                "response_body": _text_or_none(self.response_body), "elapsed": round(self.elapsed, 4),
                "error": self.error, "started": self.started}


def _text_or_none(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes, binary>"


def to_curl(method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
    """Render a request as a curl command line. Header values holding ``$ENV`` are double-quoted so the
    shell expands the variable; everything else is single-quoted."""
    parts = ["curl", "-sS", "-X", method.upper(), shlex.quote(url)]
    for k, v in headers.items():
        if k.lower() in ("content-length", "accept-encoding", "connection", "user-agent", "accept",
                         "x-schemathesis-testcaseid"):
            continue
        if "$" in v and k.lower() in REDACTED_HEADERS:
            parts += ["-H", f'"{k}: {v}"']
        else:
            parts += ["-H", shlex.quote(f"{k}: {v}")]
    if body:
        try:
            text = body.decode("utf-8")
            parts += ["--data-raw", shlex.quote(text)]
        except UnicodeDecodeError:
            escaped = "".join(chr(b) if 32 <= b < 127 and b not in (39, 92) else f"\\x{b:02x}" for b in body)
            parts += ["--data-binary", f"$'{escaped}'"]
    return " ".join(parts)


class _Adapter(HTTPAdapter):
    def __init__(self, client: Client, **kw: Any):
        super().__init__(**kw)
        self.client = client

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # noqa: D401
        client = self.client
        if client.control is not None:
            client.control.check()
        if client.allowed_netlocs is not None and urlsplit(request.url or "").netloc.lower() not in \
                client.allowed_netlocs:
            raise OutsideTarget(f"not sent: {urlsplit(request.url or '').netloc} is not a host of the target "
                                "(--only-target-hosts)")
        if client.guard is not None:
            client.guard.before(request)
        started = time.time()
        t0 = time.monotonic()
        if timeout is None:
            timeout = client.timeout
        if client.control is not None and client.control.deadline is not None:
            timeout = _bounded_timeout(timeout, client.control)
        try:
            resp = super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                                proxies=proxies)
            # read the body now (even for a stream: status streams end, and a read timeout bounds them) so the
            # exchange holds it; requests serves later iter_content() calls from the read bytes
            resp.content  # noqa: B018
        except requests.RequestException as exc:
            if client.guard is not None:
                client.guard.release(request)
            ex = client.exchange_of(request, None, time.monotonic() - t0, started, error=str(exc))
            client.emit(ex)
            if client.control is not None and (client.control.stopped or (
                    isinstance(exc, requests.Timeout) and client.control.remaining() is not None
                    and client.control.remaining() < 0.1)):
                # the run's deadline (or a signal) cut this request short: not an answer of the target's
                raise RunStopped(client.control.reason or "max_time") from None
            raise
        ex = client.exchange_of(request, resp, time.monotonic() - t0, started)
        resp.exchange = ex
        if client.guard is not None:
            client.guard.after(request, resp)
        client.emit(ex)
        return resp


def _bounded_timeout(timeout: Any, control: Any) -> Any:
    """A requests timeout (a number or a ``(connect, read)`` pair) cut to the run's time left."""
    if isinstance(timeout, tuple):
        return tuple(control.bound(t) if t is not None else control.bound(3600.0) for t in timeout)
    return control.bound(timeout if timeout is not None else 3600.0)


class Client:
    """A requests session with the suite's guard and hooks (see module docstring).

    Args:
        guard: a :class:`conformance.spend.SpendGuard` (or None for no guard, e.g. unit tests).
        secrets: ``{secret: "$ENV_NAME"}`` replacements applied to every recorded header, URL and body.
        timeout: seconds per request (connect and read) unless a call passes its own.
        verify: TLS verification (True, False or a CA bundle path).
        trust_env: honour proxy environment variables (False for loopback targets).
        control: the run's :class:`~conformance.context.RunControl` (stop flag and deadline), or None.
    """

    def __init__(self, *, guard: Any = None, secrets: dict[str, str] | None = None, timeout: float = 30.0,
                 verify: bool | str = True, trust_env: bool = True, pool: int = 32, control: Any = None):
        self.guard = guard
        self.control = control
        self.allowed_netlocs: set[str] | None = None  # --only-target-hosts: the target's hosts (host:port)
        self.secrets = dict(secrets or {})
        self.timeout = timeout
        self.hooks: list[Callable[[Exchange], None]] = []
        self.session = requests.Session()
        self.session.trust_env = trust_env
        self.session.verify = verify
        adapter = _Adapter(self, pool_connections=8, pool_maxsize=pool)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._scoped: list[tuple[str, str, list[str]]] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self.count = 0

    def add_secret(self, secret: str, placeholder: str, scope: list[str] | None = None) -> None:
        """Replace ``secret`` by ``placeholder`` in everything recorded. With ``scope`` (base URLs), the
        placeholder applies to requests under those URLs only (one key may serve several providers, as on
        the embedded mock, and each curl should name its provider's variable)."""
        if not secret:
            return
        if scope:
            self._scoped.append((secret, placeholder, [u.rstrip("/") for u in scope]))
        else:
            self.secrets[secret] = placeholder

    def _placeholders(self, url: str) -> list[tuple[str, str]]:
        out = [(sec, ph) for sec, ph, prefixes in self._scoped
               if any(url == p or url.startswith(p + "/") or url.startswith(p + "?") for p in prefixes)]
        out += [(sec, ph) for sec, ph, _ in self._scoped] + list(self.secrets.items())
        return out

    def redact(self, text: str, url: str = "", min_len: int = MIN_SECRET_IN_TEXT) -> str:
        """``text`` with every known secret replaced by its ``$ENV`` placeholder. Secrets shorter than
        ``min_len`` are replaced only where a secret is expected (header values, ``min_len=1``): a test key
        such as ``x`` would otherwise turn every ``x`` of a URL into ``$FAL_KEY``."""
        for secret, placeholder in self._placeholders(url):
            if secret and len(secret) >= min_len and secret in text:
                text = text.replace(secret, placeholder)
        return text

    def exchange_of(self, request, resp, elapsed: float, started: float, error: str | None = None) -> Exchange:
        url = request.url or ""
        headers = {k: self.redact(str(v), url, min_len=1) for k, v in request.headers.items()}
        for k in list(headers):
            if k.lower() in REDACTED_HEADERS and "$" not in headers[k]:
                headers[k] = "[REDACTED]"
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        if body is not None and not isinstance(body, bytes):
            body = None  # a streamed body (generator / file): not kept
        if body is not None:
            for secret, placeholder in self._placeholders(url):
                if len(secret) >= MIN_SECRET_IN_TEXT:
                    body = body.replace(secret.encode(), placeholder.encode())
        ex = Exchange(method=request.method, url=self.redact(url, url), request_headers=headers,
                      request_body=body, elapsed=elapsed, error=error, started=started)
        if resp is not None:
            ex.status = resp.status_code
            ex.response_headers = {k.lower(): v for k, v in resp.headers.items()}
            if not getattr(resp, "_content_consumed", False):
                ex.response_body = b""
            else:
                ex.response_body = (resp.content or b"")[:BODY_KEEP_BYTES]
        return ex

    def emit(self, ex: Exchange) -> None:
        self._local.last = ex
        with self._lock:
            self.count += 1
        for hook in list(self.hooks):
            hook(ex)

    def allows(self, url: str) -> bool:
        """Whether a request to ``url`` may be sent (``--only-target-hosts`` keeps to the target's hosts)."""
        return self.allowed_netlocs is None or urlsplit(url).netloc.lower() in self.allowed_netlocs

    def last_exchange(self) -> Exchange | None:
        """The last exchange sent from the calling thread (for requests made by schemathesis)."""
        return getattr(self._local, "last", None)

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        """Send one request through the guard and hooks; returns the response (``.exchange`` set).

        Raises:
            conformance.spend.SpendBlocked: the spend guard refused the request.
            RunStopped: the run has stopped.
            requests.RequestException: transport errors.
        """
        return self.session.request(method, url, **kw)

    def close(self) -> None:
        self.session.close()
