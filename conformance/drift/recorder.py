"""A recorder that captures any httpx traffic into a :class:`~specs.cassette.Cassette`.

Wrap a transport and every request through it is recorded (redacted at capture time), whatever code issues
it: our flows, a conformance driver, or an SDK that accepts an httpx client::

    rec = Recorder(provider="openai", hosts={"api": base_url}, secrets=[api_key])
    client = openai.OpenAI(base_url=base_url, api_key=api_key,
                           http_client=httpx.Client(transport=rec.transport()))
    ...
    rec.cassette.save("openai.cassette.json")

``with rec.step("poll", expect="success"):`` labels the requests made inside it (the flow steps; a polling
sequence is the run of interactions that share a label and URL).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from specs.cassette import Cassette, Interaction, binary_summary, encode_body

from .redact import Redactor

MAX_BLOB_BYTES = 256 * 1024 * 1024


class Recorder:
    """Collects interactions into ``self.cassette``.

    Args:
        provider: provider id written into the cassette (``"openai"``), or None.
        hosts: host id -> base URL the flow talks to (``{"queue": "http://127.0.0.1:8000/fal"}``); used to
            tag each interaction with its host.
        secrets: literal secret values (API keys) to scrub from everything recorded.
        store_binary: keep binary response bodies (up to ``max_blob_bytes`` each) so a replay serves the
            exact bytes; otherwise only their summary (content type, length, sha256) is kept.
        max_blob_bytes: size limit of one stored binary body, in bytes.
        guard: an optional per-request spend guard with the protocol of ``conformance.spend.SpendGuard``:
            ``before(request)`` (raises to refuse), ``after(request, response)``, ``release(request)``. It is
            given a ``requests``-like view of each request (``method``, ``url``, ``headers``, ``body``). A
            refused request is not sent and not recorded; the client sees :class:`GuardRefused`.
    """

    def __init__(self, provider: str | None = None, hosts: dict[str, str] | None = None,
                 secrets: list[str | None] | tuple = (), store_binary: bool = False,
                 max_blob_bytes: int = MAX_BLOB_BYTES, guard: Any = None):
        self.guard = guard
        self.redactor = Redactor(secrets)
        self.cassette = Cassette(provider=provider)
        for host_id, url in (hosts or {}).items():
            self.cassette.hosts[host_id] = self.redactor.url(url.rstrip("/"))
        self._host_urls = {h: u.rstrip("/") for h, u in (hosts or {}).items()}
        self.store_binary = store_binary
        self.max_blob_bytes = max_blob_bytes
        self._t0 = time.monotonic()
        self._wall0 = time.time()
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- labelling ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, label: str, expect: str | None = None) -> Iterator[None]:
        """Label the requests made inside the block (``expect``: ``success``, ``error`` or None)."""
        prev = getattr(self._local, "step", None)
        self._local.step = (label, expect)
        try:
            yield
        finally:
            self._local.step = prev

    def host_of(self, url: str) -> str | None:
        """The host id whose base URL prefixes ``url`` (longest match), or None."""
        best, best_len = None, -1
        for host_id, base in self._host_urls.items():
            if (url == base or url.startswith(base + "/") or url.startswith(base + "?")) and len(base) > best_len:
                best, best_len = host_id, len(base)
        return best

    # -- transports ---------------------------------------------------------------------------------
    def transport(self, inner: httpx.BaseTransport | None = None, **transport_kwargs: Any) -> RecordingTransport:
        """A sync httpx transport recording through this recorder (``inner`` defaults to HTTPTransport)."""
        return RecordingTransport(self, inner or httpx.HTTPTransport(**transport_kwargs))

    def async_transport(self, inner: httpx.AsyncBaseTransport | None = None,
                        **transport_kwargs: Any) -> AsyncRecordingTransport:
        """An async httpx transport recording through this recorder."""
        return AsyncRecordingTransport(self, inner or httpx.AsyncHTTPTransport(**transport_kwargs))

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` whose traffic is recorded (``verify``/``cert`` go to the inner transport)."""
        tkw = {k: kwargs.pop(k) for k in ("verify", "cert", "http2", "retries") if k in kwargs}
        return httpx.Client(transport=self.transport(**tkw), **kwargs)

    # -- capture ------------------------------------------------------------------------------------
    def _request_part(self, request: httpx.Request, content: bytes) -> dict[str, Any]:
        r = self.redactor
        enc, body = encode_body(content, request.headers.get("content-type"), r)
        return {"method": request.method, "url": r.url(str(request.url)), "headers": r.headers(request.headers.multi_items()),
                "body_encoding": enc, "body": body}

    def _response_part(self, response: httpx.Response, decoded: bytes) -> dict[str, Any]:
        r = self.redactor
        ctype = response.headers.get("content-type")
        enc, body = encode_body(decoded, ctype, r)
        if enc == "binary":
            self._keep_blob(body, decoded)
        return {"status": response.status_code, "headers": r.headers(response.headers.multi_items()),
                "body_encoding": enc, "body": body}

    def _keep_blob(self, summary: dict[str, Any], data: bytes) -> None:
        """With ``store_binary``, keep a whole binary body (at most ``max_blob_bytes``) beside the cassette and
        name it in its ``summary``; a body holding a secret is withheld (the summary says so)."""
        if not self.store_binary or len(data) > self.max_blob_bytes:
            return
        if self.redactor.contains_secret(data):
            summary["blob_withheld"] = "the body contains a secret value"
            return
        summary["blob"] = summary["sha256"]
        with self._lock:
            self.cassette.blobs[summary["sha256"]] = data

    def add(self, request: httpx.Request, req_content: bytes, response: httpx.Response | None,
            decoded: bytes | None, started: float, duration: float, error: BaseException | None = None) -> Interaction:
        """Record one exchange (used by the transports; callable directly for other clients)."""
        label, expect = getattr(self._local, "step", None) or (None, None)
        req = self._request_part(request, req_content)
        resp = self._response_part(response, decoded or b"") if response is not None else None
        err = None if error is None else self.redactor.text(f"{type(error).__name__}: {error}")
        with self._lock:
            inter = Interaction(seq=len(self.cassette.interactions), request=req, response=resp,
                                started=round(started - self._t0, 4), duration_ms=round(duration * 1000, 3),
                                label=label, expect=expect, host=self.host_of(str(request.url)), error=err)
            self.cassette.interactions.append(inter)
            self.cassette.meta["redactions"] = self.redactor.count
        return inter

    def record_exchange(self, ex: Any, label: str | None = None, expect: str | None = None) -> Interaction:
        """Record an exchange of the conformance suite's HTTP client (``conformance.http.Exchange``: method,
        url, request_headers, request_body, status, response_headers, response_body, elapsed, started,
        error), so ``client.hooks.append(recorder.record_exchange)`` records what its family drivers send.

        That client keeps at most its ``BODY_KEEP_BYTES`` of a response body: a cut binary body is
        summarised with the length from ``Content-Length`` and ``"truncated": true`` (its sha256 covers the
        kept bytes only). With ``store_binary`` a whole (not cut) binary body is kept as a blob, as the
        transports keep theirs.
        """
        r = self.redactor
        req_headers = dict(ex.request_headers or {})
        enc, body = encode_body(ex.request_body or b"", req_headers.get("Content-Type") or
                                req_headers.get("content-type"), r)
        req = {"method": ex.method, "url": r.url(ex.url), "headers": r.headers(req_headers.items()),
               "body_encoding": enc, "body": body}
        resp = None
        if ex.status is not None:
            rh = dict(ex.response_headers or {})
            renc, rbody = encode_body(ex.response_body or b"", rh.get("content-type"), r)
            declared = rh.get("content-length")
            if renc == "binary" and declared and declared.isdigit() and int(declared) > len(ex.response_body):
                rbody["length"] = int(declared)
                rbody["truncated"] = True
            elif renc == "binary":
                self._keep_blob(rbody, ex.response_body)
            resp = {"status": ex.status, "headers": r.headers(rh.items()), "body_encoding": renc, "body": rbody}
        step_label, step_expect = getattr(self._local, "step", None) or (None, None)
        with self._lock:
            inter = Interaction(seq=len(self.cassette.interactions), request=req, response=resp,
                                started=round(max(0.0, float(ex.started or 0) - self._wall0), 4),
                                duration_ms=round(float(ex.elapsed or 0) * 1000, 3), label=label or step_label,
                                expect=expect or step_expect, host=self.host_of(ex.url),
                                error=None if ex.error is None else r.text(str(ex.error)))
            self.cassette.interactions.append(inter)
            self.cassette.meta["redactions"] = r.count
        return inter


    def complete_body(self, inter: Interaction, data: bytes) -> None:
        """Give a recorded binary response whose body the HTTP client cut (``"truncated": true``, see
        :meth:`record_exchange`) its whole ``data`` (bytes, as the caller read them): the summary then covers
        every byte, and with ``store_binary`` the body is kept as a blob. Other interactions are left as they are.
        """
        resp = inter.response
        if not resp or resp.get("body_encoding") != "binary" or not (resp.get("body") or {}).get("truncated"):
            return
        ctype = next((v for k, v in (resp.get("headers") or {}).items() if k.lower() == "content-type"), None)
        _, body = encode_body(data, ctype, self.redactor)
        self._keep_blob(body, data)
        with self._lock:
            resp["body"] = body


class GuardRefused(httpx.TransportError):
    """The spend guard refused a request; it was not sent. ``str(err)`` is the guard's one-line reason."""


class _GuardView:
    """What a ``requests``-style guard reads from a request: method, url (str), headers, body (bytes)."""

    def __init__(self, request: httpx.Request, content: bytes):
        self.method = request.method
        self.url = str(request.url)
        self.headers = request.headers
        self.body = content


def _guard_before(recorder: Recorder, request: httpx.Request, content: bytes) -> _GuardView | None:
    if recorder.guard is None:
        return None
    view = _GuardView(request, content)
    try:
        recorder.guard.before(view)
    except Exception as exc:
        raise GuardRefused(recorder.redactor.text(str(exc)), request=request) from None
    return view


def _guard_after(recorder: Recorder, view: _GuardView | None, response: httpx.Response | None) -> None:
    if view is None:
        return
    if response is None:
        recorder.guard.release(view)
    else:
        recorder.guard.after(view, response)


def _rebuild(response: httpx.Response, raw: bytes, request: httpx.Request) -> httpx.Response:
    return httpx.Response(response.status_code, headers=response.headers, content=raw, request=request,
                          extensions=response.extensions)


def _read_raw(response: httpx.Response) -> bytes:
    """The wire bytes of a transport response. A response whose body was already read (an in-memory
    transport such as httpx.MockTransport) gives its decoded content, and loses its Content-Encoding."""
    try:
        return b"".join(response.iter_raw())
    except httpx.StreamConsumed:
        if "content-encoding" in response.headers:
            del response.headers["content-encoding"]
        return response.content


async def _aread_raw(response: httpx.Response) -> bytes:
    try:
        return b"".join([chunk async for chunk in response.aiter_raw()])
    except httpx.StreamConsumed:
        if "content-encoding" in response.headers:
            del response.headers["content-encoding"]
        return response.content


def _decoded(response: httpx.Response, raw: bytes) -> bytes:
    """The body after Content-Encoding decoding (what the client sees), from the raw wire bytes."""
    if not response.headers.get("content-encoding"):
        return raw
    tmp = httpx.Response(response.status_code, headers=response.headers, content=raw)
    try:
        return tmp.read()
    except httpx.DecodingError:
        return raw


class RecordingTransport(httpx.BaseTransport):
    """Sync transport: forwards to ``inner`` and records the exchange (body read fully, then re-served)."""

    def __init__(self, recorder: Recorder, inner: httpx.BaseTransport):
        self.recorder = recorder
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()
        view = _guard_before(self.recorder, request, content)
        started = time.monotonic()
        try:
            response = self.inner.handle_request(request)
            raw = _read_raw(response)
            response.close()
        except Exception as exc:
            _guard_after(self.recorder, view, None)
            self.recorder.add(request, content, None, None, started, time.monotonic() - started, exc)
            raise
        _guard_after(self.recorder, view, response)
        self.recorder.add(request, content, response, _decoded(response, raw), started, time.monotonic() - started)
        return _rebuild(response, raw, request)

    def close(self) -> None:
        self.inner.close()


class AsyncRecordingTransport(httpx.AsyncBaseTransport):
    """Async transport: forwards to ``inner`` and records the exchange."""

    def __init__(self, recorder: Recorder, inner: httpx.AsyncBaseTransport):
        self.recorder = recorder
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        view = _guard_before(self.recorder, request, content)
        started = time.monotonic()
        try:
            response = await self.inner.handle_async_request(request)
            raw = await _aread_raw(response)
            await response.aclose()
        except Exception as exc:
            _guard_after(self.recorder, view, None)
            self.recorder.add(request, content, None, None, started, time.monotonic() - started, exc)
            raise
        _guard_after(self.recorder, view, response)
        self.recorder.add(request, content, response, _decoded(response, raw), started, time.monotonic() - started)
        return _rebuild(response, raw, request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def origin(url: str) -> str:
    """``scheme://netloc`` of a URL (lower case)."""
    p = urlsplit(url)
    return f"{p.scheme.lower()}://{p.netloc.lower()}"


__all__ = ["AsyncRecordingTransport", "GuardRefused", "Recorder", "RecordingTransport", "binary_summary", "origin"]
