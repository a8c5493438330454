"""The spend guard: no paid request reaches a real provider unless the user allowed it and the budget holds.

A target is free when it is our mock (:attr:`conformance.target.Target.free`). Otherwise every request
passes :meth:`SpendGuard.before` (called by the transport adapter in :mod:`conformance.http`, so no code
path bypasses it):

- without ``--allow-spend`` only requests that match a *non-billable* operation of the contract, or plain
  ``GET``/``HEAD`` requests (downloads), are sent. Everything else — any request to an operation with
  ``x-billable: true``, valid or not, and any other non-GET request — raises :class:`SpendBlocked`.
- with ``--allow-spend`` a request to a billable operation is priced first: requested seconds (read from
  the body through provider.yaml ``mock.params.seconds``, the same mapping the mock uses) times
  ``pricing.usd_per_second``. It is sent only if the spend so far plus this worst case stays within
  ``--max-spend-usd`` (default 0). The cost is committed when the answer is 2xx and released otherwise.
  A provider without a documented price cannot be bounded, so its paid operations stay blocked.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import specs
from specs.validate import get_pointer

FREE_METHODS = ("GET", "HEAD")


class SpendBlocked(Exception):
    """A request was refused by the spend guard. ``str(err)`` says why; ``reason`` is ``"not-allowed"``,
    ``"no-price"`` or ``"budget"``."""

    def __init__(self, message: str, reason: str, provider: str | None = None, operation: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.provider = provider
        self.operation = operation


@dataclass
class _Route:
    provider: str
    host: str
    netloc: str
    base_path: str
    op: specs.Operation


@dataclass
class SpendLedger:
    """What the guard let through and refused (for the report)."""

    committed_usd: float = 0.0
    reserved_usd: float = 0.0
    paid_requests: int = 0
    blocked: dict[str, int] = field(default_factory=dict)  # "provider operationId (reason)" -> count

    def to_json(self) -> dict[str, Any]:
        return {"committed_usd": round(self.committed_usd, 4), "paid_requests": self.paid_requests,
                "blocked": dict(sorted(self.blocked.items()))}


def params_rules(contract: specs.Contract) -> dict[str, dict]:
    """The request-field mapping of a provider: mockserver's DEFAULT_PARAMS updated with provider.yaml
    ``mock.params`` (``{"seconds": {"pointer": "/duration", "default": 4}, "size": {...}, ...}``)."""
    from mockserver.families.base import DEFAULT_PARAMS

    rules = {k: dict(v) for k, v in DEFAULT_PARAMS.items()}
    for k, v in ((contract.provider.get("mock") or {}).get("params") or {}).items():
        if isinstance(v, dict) and "pointer" in v:
            rules[k] = dict(v)
    return rules



def parse_body(content_type: str | None, body: bytes | str | None) -> Any:
    """Parse a request body (JSON, multipart/form-data, urlencoded) into data; None when not parseable."""
    if body is None:
        return None
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    ctype = (content_type or "").lower()
    try:
        if "json" in ctype:
            return json.loads(body)
        if ctype.startswith("multipart/"):
            import email.parser
            import email.policy

            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
            out: dict[str, Any] = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name:
                    data = part.get_payload(decode=True) or b""
                    out[name] = data if part.get_filename() else data.decode("utf-8", "replace")
            return out
        if "x-www-form-urlencoded" in ctype:
            from urllib.parse import parse_qsl

            return dict(parse_qsl(body.decode("utf-8", "replace")))
    except Exception:
        return None
    return None


def requested_seconds(contract: specs.Contract, body: Any) -> float:
    """Seconds of video a request asks for, via ``mock.params.seconds`` (pointer and default; 4 when
    unset or unreadable). Used for cost estimates: seconds x ``pricing.usd_per_second``."""
    rule = params_rules(contract).get("seconds") or {"pointer": "/seconds", "default": 4}
    value = get_pointer(body, rule.get("pointer", "/seconds")) if isinstance(body, dict) else None
    try:
        seconds = float(value) if value is not None else float(rule.get("default", 4))
    except (TypeError, ValueError):
        seconds = float(rule.get("default", 4) or 4)
    return max(0.0, seconds)


class SpendGuard:
    """Refuses paid requests on targets that are not free (see module docstring).

    Args:
        target: the resolved :class:`~conformance.target.Target`.
        contracts: ``{provider: Contract}`` under test.
        allow_spend: ``--allow-spend``.
        max_spend_usd: ``--max-spend-usd`` (USD, default 0).
    """

    def __init__(self, target, contracts: dict[str, specs.Contract], allow_spend: bool = False,
                 max_spend_usd: float = 0.0):
        self.target = target
        self.contracts = contracts
        self.allow_spend = allow_spend
        self.max_spend_usd = float(max_spend_usd)
        self.ledger = SpendLedger()
        self._lock = threading.Lock()
        self._routes: list[_Route] = []
        for pid, contract in contracts.items():
            for op in contract.operations():
                base = target.base_url(pid, op.host)
                if base is None:
                    continue
                parts = urlsplit(base)
                self._routes.append(_Route(pid, op.host, parts.netloc.lower(), parts.path.rstrip("/"), op))
        self._pending: dict[int, float] = {}

    @property
    def free(self) -> bool:
        return bool(self.target.free)

    def route(self, method: str, url: str) -> tuple[str, specs.Operation] | None:
        """``(provider, operation)`` a request goes to, or None when it matches no contract operation."""
        parts = urlsplit(url)
        netloc = parts.netloc.lower()
        for r in self._routes:
            if r.netloc != netloc or r.op.method.upper() != method.upper():
                continue
            path = parts.path
            if r.base_path:
                if not (path == r.base_path or path.startswith(r.base_path + "/")):
                    continue
                path = path[len(r.base_path):] or "/"
            if r.op.path_regex.match(path.rstrip("/") or "/") or r.op.path_regex.match(path):
                return r.provider, r.op
        return None

    def is_paid(self, method: str, url: str) -> bool:
        """True when the request would be refused without ``--allow-spend`` on a target that is not free."""
        hit = self.route(method, url)
        if hit is not None:
            return hit[1].billable
        return method.upper() not in FREE_METHODS

    def estimate(self, provider: str, body: Any) -> float | None:
        """Worst-case USD of one accepted request (None when the provider documents no price)."""
        price = self.contracts[provider].price_per_second_usd
        if price is None:
            return None
        return requested_seconds(self.contracts[provider], body) * float(price)

    def _block(self, message: str, reason: str, provider: str | None, op: specs.Operation | None) -> None:
        key = f"{provider or '?'} {op.operation_id if op else '?'} ({reason})"
        with self._lock:
            self.ledger.blocked[key] = self.ledger.blocked.get(key, 0) + 1
        raise SpendBlocked(message, reason, provider, op.operation_id if op else None)

    def before(self, request) -> None:
        """Called with each ``requests.PreparedRequest`` before it is sent. Raises :class:`SpendBlocked`."""
        if self.free:
            return
        method = (request.method or "GET").upper()
        hit = self.route(method, request.url)
        if hit is None:
            if method in FREE_METHODS:
                return
            self._block(f"{method} {request.url} matches no free operation of the contract; not sent to a "
                        "target that is not the mock", "not-allowed", None, None)
        provider, op = hit
        if not op.billable:
            return
        if not self.allow_spend:
            self._block(f"{provider} {op.operation_id} costs money (x-billable); not sent without "
                        "--allow-spend", "not-allowed", provider, op)
        body = parse_body(request.headers.get("Content-Type"), request.body)
        cost = self.estimate(provider, body)
        if cost is None:
            self._block(f"{provider} {op.operation_id}: provider.yaml has no pricing.usd_per_second, so the "
                        "cost cannot be bounded; not sent", "no-price", provider, op)
        with self._lock:
            if self.ledger.committed_usd + self.ledger.reserved_usd + cost > self.max_spend_usd + 1e-9:
                over = True
            else:
                over = False
                self.ledger.reserved_usd += cost
                self._pending[id(request)] = cost
        if over:
            self._block(f"{provider} {op.operation_id}: estimated ${cost:.2f} would pass --max-spend-usd "
                        f"{self.max_spend_usd:g} (spent ${self.ledger.committed_usd:.2f})", "budget",
                        provider, op)

    def after(self, request, response) -> None:
        """Called with each response: commit the reserved cost of an accepted (2xx) paid request."""
        with self._lock:
            cost = self._pending.pop(id(request), None)
            if cost is None:
                return
            self.ledger.reserved_usd -= cost
            if 200 <= response.status_code < 300:
                self.ledger.committed_usd += cost
                self.ledger.paid_requests += 1

    def release(self, request) -> None:
        """Drop the reservation of a request that got no response (transport error)."""
        with self._lock:
            cost = self._pending.pop(id(request), None)
            if cost is not None:
                self.ledger.reserved_usd -= cost

    def can_spend(self, provider: str, seconds: float = 4.0) -> tuple[bool, str]:
        """Whether a paid request of ``seconds`` could be sent now, with the reason when not."""
        if self.free:
            return True, ""
        if not self.allow_spend:
            return False, "needs paid operations (x-billable); run with --allow-spend to include it"
        price = self.contracts[provider].price_per_second_usd
        if price is None:
            return False, f"{provider} documents no price (pricing.usd_per_second), so spend cannot be bounded"
        cost = seconds * float(price)
        with self._lock:
            spent = self.ledger.committed_usd + self.ledger.reserved_usd
        if spent + cost > self.max_spend_usd + 1e-9:
            return False, (f"spend budget: ${cost:.2f} more would pass --max-spend-usd {self.max_spend_usd:g} "
                           f"(spent ${spent:.2f})")
        return True, ""
