"""Helpers of the queue/sync SDK tests (test_mock_fal, test_mock_sunra, test_mock_onerouter).

- :class:`ProviderChecked`: an httpx response hook that checks every response of any host of a provider
  against its contract (one :class:`mock_contract_support.HostChecked` per host, chosen by the mock's mount
  prefix; sunra-client's ``/v1/queue//requests`` double slash is normalised the way the mock routes it).
  Asset downloads (``/__mock/files``) are checked for a non-empty body of the declared type; event streams
  are left to :func:`sse_events` + :func:`event_errors`.
- :func:`replay_records`: the same check for responses recorded in a child process (fal-client must be
  imported after its environment is set, so its flows run in a subprocess: tests/fal_sdk_flows.py).
- :func:`sse_events`, :func:`event_errors`: parse a ``text/event-stream`` body and check each event against
  the status operation's ``x-event-schema``.
- :class:`WebhookReceiver`: a 127.0.0.1 HTTP server that records POSTed webhook bodies.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from mock_contract_support import HostChecked, schema_errors

import specs

_ASSET_TYPES = {".mp4": "video/mp4", ".webp": "image/webp", ".jpg": "image/jpeg"}


class ProviderChecked:
    """httpx response hook: every response of ``provider`` (any host) must match its contract.

    Args:
        mock: an ``EmbeddedMock`` (or anything with ``state`` and ``base_url(provider, host)``).
        provider: provider id.
    """

    def __init__(self, mock, provider: str):
        self.contract = specs.load(provider)
        self.hosts = []
        for host in self.contract.hosts:
            base = mock.base_url(provider, host["id"])
            self.hosts.append((urlsplit(base).path.rstrip("/"), HostChecked(self.contract, host["id"], base)))
        self.hosts.sort(key=lambda h: -len(h[0]))
        self.checked: list[tuple[str, str, int]] = []

    def __call__(self, response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return  # a stream: read by the test itself (see sse_events / event_errors)
        response.read()
        path = re.sub(r"/{2,}", "/", response.request.url.path)
        if path.startswith("/__mock/files/"):
            ext = path[path.rfind("."):]
            assert response.status_code in (200, 206) and response.content, f"asset {path}: {response.status_code}"
            assert response.headers["content-type"].startswith(_ASSET_TYPES[ext]), response.headers["content-type"]
            self.checked.append((response.request.method, path, response.status_code))
            return
        for prefix, checker in self.hosts:
            if path == prefix or path.startswith(prefix + "/"):
                if path != response.request.url.path:  # the double slash the mock normalises
                    response.request.url = response.request.url.copy_with(path=path)
                checker(response)
                self.checked.append((response.request.method, path, response.status_code))
                return
        raise AssertionError(f"{response.request.url} is not under a {self.contract.id} host of the mock")

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client whose every response goes through this check."""
        return httpx.Client(event_hooks={"response": [self]}, **kwargs)


# -- responses recorded in a child process ----------------------------------------------------------------
def replay_records(check: ProviderChecked, records: list[dict]) -> None:
    """Run ``check`` on responses recorded in a child process (tests/fal_sdk_flows.py ``record_hook``):
    dicts with ``method``, ``url``, ``request_headers``, ``status``, ``headers`` (pairs), ``body`` (base64).
    Raises AssertionError on the first response outside the contract."""
    for r in records:
        request = httpx.Request(r["method"], r["url"], headers=r["request_headers"])
        check(httpx.Response(r["status"], headers=r["headers"], content=base64.b64decode(r["body"]),
                             request=request))


# -- event streams ------------------------------------------------------------------------------------------
def sse_events(text: str) -> list[Any]:
    """The JSON ``data`` of each event of a ``text/event-stream`` body."""
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        data = "\n".join(line[5:].lstrip() for line in block.splitlines() if line.startswith("data:"))
        if data:
            events.append(json.loads(data))
    return events


def event_errors(contract: specs.Contract, role: str, events: list[Any]) -> list[str]:
    """Schema errors of stream events against the ``x-event-schema`` of the operation with ``role``."""
    op = contract.operations_by_role(role)[0]
    media = op.definition["responses"]["200"]["content"]["text/event-stream"]
    pointer = media["x-event-schema"]["$ref"]
    return [f"event {i}: {m}" for i, ev in enumerate(events) for m in schema_errors(contract.openapi, pointer, ev)]


# -- webhooks ------------------------------------------------------------------------------------------------
class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 recording POSTed JSON bodies: ``with WebhookReceiver() as hook:``,
    ``hook.url``, ``hook.wait(n, timeout)`` -> list of ``(path, headers, body)``."""

    def __init__(self):
        received: list[tuple[str, dict, Any]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((self.path, dict(self.headers), json.loads(raw)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, n: int = 1, timeout: float = 5.0) -> list[tuple[str, dict, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)
