"""Webhook deliveries as observations: a receiver on 127.0.0.1 and the contract's callback declarations.

A job can ask the provider to POST its outcome to a URL: per request (an OpenAPI ``callbacks`` entry of the
creating operation whose key is a runtime expression such as ``{$request.query.fal_webhook}`` or
``{$request.body#/webhook_url}``), or per project (OpenAI's top-level ``webhooks``, configured where the
server starts). Each delivery operation carries ``x-delivery: {job_id, status, statuses}``: where the
delivered body names its job and its status, and how status values map onto the neutral lifecycle.

The suite runs a :class:`WebhookReceiver` when every host of the target is on this machine (a provider on
the internet cannot reach 127.0.0.1). A job that asked for a webhook gets a URL of its own on the receiver;
what arrives is judged by the ``webhook_consistent`` check and is one more observation of the job.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from specs import Contract, Operation
from specs.expressions import parse_request_expression
from specs.pointers import get_pointer, pointer, tokens

from . import schema as sch


@dataclass
class Delivery:
    """One POST the receiver got: path, headers (lower-case names), raw body, decoded JSON (or None)."""

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    at: float = field(default_factory=time.monotonic)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (free port, daemon thread) that records every POST and answers 200.

    ``url(token)`` is a URL of its own for one job (``http://127.0.0.1:PORT/hook/<token>``); ``for_token``
    returns what arrived there; ``wait(tokens, seconds)`` waits until each token got a delivery (bounded).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._got = threading.Condition(self._lock)
        self.deliveries: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1 << 20)) if length else b""
                try:
                    data = json.loads(body) if body else None
                except ValueError:
                    data = None
                d = Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body, data)
                with receiver._got:
                    receiver.deliveries.append(d)
                    receiver._got.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def url(self, token: str) -> str:
        return f"{self.base}/hook/{token}"

    def project_url(self, provider: str) -> str:
        """The URL a provider's project-level webhooks go to (given to a server where it starts)."""
        return f"{self.base}/project/{provider}"

    def for_path(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.path.split("?")[0] == path]

    def wait(self, paths: list[str], seconds: float, stop=None) -> None:
        """Wait until each path got a delivery, at most ``seconds`` (returns early when ``stop()`` is true)."""
        deadline = time.monotonic() + seconds
        with self._got:
            while time.monotonic() < deadline:
                if all(any(d.path.split("?")[0] == p for d in self.deliveries) for p in paths):
                    return
                if stop is not None and stop():
                    return
                self._got.wait(min(0.1, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Callback:
    """A per-request webhook an operation declares: where the URL goes in the request (``in_`` is ``query``,
    ``header`` or ``body``; ``name`` a parameter name or a JSON pointer), the delivery's body schema pointer
    and its ``x-delivery`` mapping."""

    in_: str
    name: str
    schema_ptr: str | None
    delivery: dict[str, Any]


def callback_of(contract: Contract, op: Operation) -> Callback | None:
    """The first per-request webhook ``op`` declares with an ``x-delivery`` mapping, or None."""
    doc = contract.openapi
    for name, cb in (op.definition.get("callbacks") or {}).items():
        cb_ptr = sch.deref_ptr(doc, pointer(*sch.op_pointer(op), "callbacks", name))
        cb = sch.deref(doc, cb) or {}
        for expr, item in cb.items():
            target = parse_request_expression(expr)
            post = (item or {}).get("post") if isinstance(item, dict) else None
            if target is None or not isinstance(post, dict) or not isinstance(post.get("x-delivery"), dict):
                continue
            schema_ptr = None
            content = (sch.deref(doc, post.get("requestBody") or {}) or {}).get("content") or {}
            if "application/json" in content and "schema" in content["application/json"]:
                schema_ptr = pointer(*tokens(cb_ptr.lstrip("#")), expr, "post", "requestBody", "content", "application/json",
                                     "schema")
            return Callback(target[0], target[1], schema_ptr, post["x-delivery"])
    return None


def project_webhooks(contract: Contract) -> list[tuple[str, dict[str, Any]]]:
    """``[(schema pointer or None, x-delivery)]`` of the contract's project-level ``webhooks`` (OpenAI)."""
    out = []
    for name, item in (contract.openapi.get("webhooks") or {}).items():
        post = (item or {}).get("post") or {}
        if not isinstance(post.get("x-delivery"), dict):
            continue
        content = (post.get("requestBody") or {}).get("content") or {}
        ptr = pointer("webhooks", name, "post", "requestBody", "content", "application/json", "schema") \
            if "schema" in (content.get("application/json") or {}) else None
        out.append((ptr, post["x-delivery"]))
    return out


def delivered_state(contract: Contract, delivery: dict[str, Any], body: Any) -> tuple[Any, tuple[str, ...]]:
    """``(job id, neutral states)`` a delivered body names, through its ``x-delivery`` mapping."""
    job_id = get_pointer(body, delivery["job_id"]) if isinstance(body, dict) else None
    value = get_pointer(body, delivery["status"]) if isinstance(body, dict) else None
    statuses = delivery.get("statuses")
    if isinstance(value, str) and isinstance(statuses, dict):
        neutral = (statuses[value],) if value in statuses else ()
    elif isinstance(value, str):
        neutral = tuple(dict.fromkeys(contract.neutral_states(value)))
    else:
        neutral = ()
    return job_id, neutral


def new_token() -> str:
    return secrets.token_hex(8)
