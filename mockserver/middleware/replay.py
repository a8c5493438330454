"""Replay a recorded cassette: ``mockserver serve --replay CASSETTE`` serves a recorded flow offline.

The cassette format is the one the drift recorder of the conformance suite writes (:mod:`specs.cassette`, in
the contract kernel both tools share): a JSON file with ``provider``, ``hosts`` (host id -> the base URL
recorded against) and ordered ``interactions``.

How requests are answered (:class:`Replayer`, run by the :class:`Replay` layer of the middleware composer in
front of the live pipeline of every route when ``config.replay`` is set):

- **Where.** A recorded URL under a recorded host base URL is served under that host's mount on this server
  (``https://queue.fal.run/fal-ai/...`` -> ``/fal/fal-ai/...``); a URL on the same origin as a recorded
  host keeps its path (the mock's ``/__mock/files/...``); a URL on any other origin (a CDN download) is
  served under ``/__replay/<host>/<path>``.
- **Matching.** Method and path select the recorded interactions; the query string and whether credentials
  were sent (the provider's auth header) refine the choice (query values recorded as ``[REDACTED]`` match
  anything).
- **Order.** Repeated requests get the recorded answers in recorded order, then the last one forever. A
  polling loop therefore walks ``queued -> in_progress -> completed`` as recorded and stops, instead of
  being served the first poll forever (the VCR.py pitfall, vcrpy #878).
- **URLs in bodies.** Absolute URLs in recorded bodies and ``Location`` headers that point at a recorded
  origin are rewritten to this server (so ``status_url``/``response_url`` and file URLs lead back here).
- **Binary bodies** are served from ``<cassette>.blobs/<sha256>`` when the recording kept them
  (``--store-binary``); otherwise bytes of the recorded length are synthesised (``X-Mock-Replay:
  synthesized``), since a cassette only keeps a summary (content type, length, sha256).
- Anything the cassette does not hold falls through to the live engine.

Every replayed answer carries ``X-Mock-Replay: <seq>`` (the interaction's index in the cassette).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web

from specs.cassette import REDACTED, Cassette, CassetteError

from ..assets import bytes_response
from ..config import ConfigError
from ..http import STATE_KEY
from .compose import Handler, Route

REPLAY_HEADER = "X-Mock-Replay"
_DROP_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive", "date",
                 "server", "content-type"}
_URL_RE = re.compile(r"https?://[^\s\"'<>\\]+")


@dataclass
class _Entry:
    seq: int
    method: str
    path: str
    query: list[tuple[str, str]]
    authed: bool
    response: dict[str, Any]
    served: bool = False


@dataclass
class Replayer:
    """Serves the interactions of one cassette (see the module docstring).

    Attributes:
        path: the cassette file.
        provider: provider id the cassette was recorded for.
        hosts: host id -> recorded base URL.
        table: ``(METHOD, local path)`` -> recorded entries in order.
    """

    path: Path
    provider: str | None
    hosts: dict[str, str]
    table: dict[tuple[str, str], list[_Entry]] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)  # host id -> mount prefix on this server
    origins: set[str] = field(default_factory=set)
    auth_header: str = "authorization"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    cassette: Cassette | None = field(default=None, repr=False)

    # -- loading ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, state) -> Replayer:
        """Read a cassette for a mock whose ``state`` already has its mounts.

        Raises:
            ConfigError: unreadable or invalid cassette, or its provider is not served by this mock.
        """
        try:
            cassette = Cassette.load(path)
        except CassetteError as exc:
            raise ConfigError(f"--replay: {exc}") from None
        provider, hosts = cassette.provider, cassette.hosts
        if provider is not None and provider not in state.contracts:
            raise ConfigError(f"--replay: {path} was recorded for {provider!r}, which this mock does not serve "
                              f"(serving: {', '.join(state.contracts) or 'nothing'})")
        rep = cls(path=Path(path), provider=provider, hosts={k: str(v).rstrip("/") for k, v in hosts.items()},
                  cassette=cassette)
        if provider is not None:
            rep.auth_header = state.contracts[provider].auth["header"].lower()
            for m in state.mounts:
                if m.provider == provider:
                    rep.prefixes[m.host_id] = m.prefix
        rep.origins = {_origin(u) for u in rep.hosts.values()}
        for item in cassette.interactions:
            rep.origins.add(_origin(str(item.request["url"])))
        for item in cassette.interactions:
            resp = item.response
            if resp is None:
                continue  # a transport error was recorded: nothing to serve
            req = item.request
            local, query = rep.local_path(str(req["url"]))
            headers = {str(k).lower(): v for k, v in (req.get("headers") or {}).items()}
            entry = _Entry(seq=item.seq, method=str(req["method"]).upper(), path=local,
                           query=query, authed=rep.auth_header in headers, response=resp)
            rep.table.setdefault((entry.method, local), []).append(entry)
        return rep

    # -- URL mapping --------------------------------------------------------------------------------
    def local_path(self, url: str) -> tuple[str, list[tuple[str, str]]]:
        """Where a recorded URL is served on this server: ``(path, query pairs)``."""
        parts = urlsplit(url)
        bare = f"{parts.scheme}://{parts.netloc}{parts.path}"
        query = parse_qsl(parts.query, keep_blank_values=True)
        for host_id, base in sorted(self.hosts.items(), key=lambda kv: -len(kv[1])):
            if (bare == base or bare.startswith(base + "/")) and host_id in self.prefixes:
                return (self.prefixes[host_id] + bare[len(base):]) or "/", query
        if _origin(url) in {_origin(b) for b in self.hosts.values()}:
            return parts.path or "/", query
        return f"/__replay/{parts.netloc}{parts.path}", query

    def rewrite(self, text: str, local_origin: str) -> str:
        """Rewrite absolute URLs pointing at recorded origins to this server (``local_origin``)."""
        if "://" not in text:
            return text

        def sub(m: re.Match) -> str:
            url = m.group(0)
            if _origin(url) not in self.origins:
                return url
            path, query = self.local_path(url)
            return local_origin + path + (("?" + urlencode(query, safe="[]")) if query else "")

        return _URL_RE.sub(sub, text)

    def _rewrite_data(self, value: Any, local_origin: str) -> Any:
        if isinstance(value, str):
            return self.rewrite(value, local_origin)
        if isinstance(value, list):
            return [self._rewrite_data(v, local_origin) for v in value]
        if isinstance(value, dict):
            return {k: self._rewrite_data(v, local_origin) for k, v in value.items()}
        return value

    # -- serving ------------------------------------------------------------------------------------
    def pick(self, method: str, path: str, query: list[tuple[str, str]], authed: bool) -> _Entry | None:
        """The recorded entry answering a request (see "Order" in the module docstring), marked served."""
        entries = self.table.get((method.upper(), path))
        if not entries:
            return None

        def score(e: _Entry) -> int:
            return 2 * (e.authed == authed) + _query_match(e.query, query)

        with self._lock:
            best = max(score(e) for e in entries)
            fresh = [e for e in entries if not e.served and score(e) == best]
            if fresh:
                fresh[0].served = True
                return fresh[0]
            return [e for e in entries if score(e) == best][-1]

    def blob(self, sha256: str) -> bytes | None:
        """Stored bytes of a recorded binary body (``<cassette>.blobs/<sha256>``), or None."""
        return self.cassette.blob(sha256) if self.cassette is not None else None

    def respond(self, request: web.Request, entry: _Entry, local_origin: str) -> web.StreamResponse:
        """Build the aiohttp response of a recorded entry (URLs rewritten, binary bodies restored)."""
        resp = entry.response
        headers: dict[str, str] = {}
        rec_headers = {str(k).lower(): str(v) for k, v in (resp.get("headers") or {}).items()}
        for k, v in rec_headers.items():
            if k in _DROP_HEADERS or v == REDACTED:
                continue
            headers[k] = self.rewrite(v, local_origin) if k in ("location", "content-location", "link") else v
        headers[REPLAY_HEADER] = str(entry.seq)
        ctype = rec_headers.get("content-type")
        enc = resp.get("body_encoding")
        body = resp.get("body")
        status = int(resp["status"])
        if enc == "json":
            data = json.dumps(self._rewrite_data(body, local_origin), separators=(",", ":")).encode()
            return web.Response(status=status, body=data, headers=headers,
                                content_type=(ctype or "application/json").split(";")[0].strip())
        if enc == "text":
            text = self.rewrite(str(body), local_origin)
            return web.Response(status=status, body=text.encode("utf-8"), headers=headers,
                                content_type=(ctype or "text/plain").split(";")[0].strip(), charset="utf-8")
        if enc == "form" and isinstance(body, dict):
            return web.Response(status=status, body=urlencode(body).encode(), headers=headers,
                                content_type="application/x-www-form-urlencoded")
        if enc == "binary" and isinstance(body, dict):
            data = self.blob(str(body.get("sha256"))) if body.get("blob") else None
            if data is None:
                data = _filler(int(body.get("length") or 0))
                headers[REPLAY_HEADER] = f"{entry.seq}; synthesized"
            ctype_b = body.get("content_type") or (ctype or "application/octet-stream").split(";")[0]
            if status == 200 and request.headers.get("Range"):
                out = bytes_response(request, data, ctype_b)
                out.headers.update(headers)
                return out
            return web.Response(status=status, body=data, headers=headers, content_type=ctype_b)
        if ctype:
            headers["Content-Type"] = ctype
        return web.Response(status=status, headers=headers)

    async def handle(self, request: web.Request) -> web.StreamResponse | None:
        """The replayed response for a request, or None when the cassette holds nothing for it."""
        query = list(request.query.items())
        path = urlsplit(request.raw_path).path or request.path
        entry = self.pick(request.method, path, query, self.auth_header in
                          {k.lower() for k in request.headers})
        if entry is None:
            return None
        if request.can_read_body:
            await request.read()
        return self.respond(request, entry, _local_origin(request))

    def summary(self) -> dict[str, Any]:
        """For the admin API / logs: counts of recorded and served entries."""
        entries = [e for v in self.table.values() for e in v]
        return {"cassette": str(self.path), "provider": self.provider, "routes": len(self.table),
                "interactions": len(entries), "served": sum(e.served for e in entries)}


def _query_match(recorded: list[tuple[str, str]], actual: list[tuple[str, str]]) -> int:
    rec = {(k, v) for k, v in recorded if v != REDACTED}
    rec_keys = {k for k, _ in recorded}
    act = set(actual)
    act_keys = {k for k, _ in actual}
    return int(rec <= act and rec_keys == act_keys)


def _origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme.lower()}://{p.netloc.lower()}"


def _local_origin(request: web.Request) -> str:
    configured = request.app[STATE_KEY].config.public_base_url
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"


def _filler(length: int) -> bytes:
    pattern = b"replayed-body-summary-only;"
    return (pattern * (length // len(pattern) + 1))[:length]


class Replay:
    """The replay layer (every route, admin included): the recorded answer when the cassette holds one for
    the request, else the live pipeline. Outside the layers that answer for the live engine (request ids,
    faults) and inside the journal, so replayed provider requests are journaled like live ones.

    Args:
        replayer: the loaded cassette (:meth:`Replayer.load`).
    """

    name = "replay"

    def __init__(self, replayer: Replayer):
        self.replayer = replayer

    def wrap(self, route: Route, nxt: Handler) -> Handler | None:
        """The replaying handler around ``nxt`` (every route)."""
        handle = self.replayer.handle

        async def replayed(request: web.Request) -> web.StreamResponse:
            response = await handle(request)
            return response if response is not None else await nxt(request)

        return replayed


__all__ = ["REPLAY_HEADER", "Replay", "Replayer"]
