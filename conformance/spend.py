"""The spend guard: no paid request reaches a paid target unless the user allowed it and the budget holds.

A target is free when it is our mock, or when the user declares it free (``--free-target``; see
:attr:`conformance.target.Target.free`). Otherwise every request passes :meth:`SpendGuard.before` (called
by the transport adapter in :mod:`conformance.http`, so no code path bypasses it):

- without ``--allow-spend`` only requests that match a *non-billable* operation of the contract, or plain
  ``GET``/``HEAD`` requests (downloads), are sent. Everything else — any request to an operation with
  ``x-billable: true``, valid or not, and any other non-GET request — raises :class:`SpendBlocked`.
- with ``--allow-spend`` a request to a billable operation (a *paid request*: it creates a job) is sent only
  within the budget the user gives, and at least one bound is needed (the defaults send no paid request):

  * ``--max-paid-jobs N``: at most N paid requests accepted;
  * ``--max-video-seconds S``: at most S seconds of video requested in total (read from the body through
    provider.yaml ``mock.params.seconds``, the same mapping the mock uses; its default when absent);
  * ``--max-spend-usd X``: requested seconds x the price (provider.yaml ``pricing.usd_per_second``, or
    ``--usd-per-second`` where the provider documents none) stays within X. Without a price a USD bound
    cannot be checked, so the request is refused.

  Each bound is checked before the request is sent (its worst case is reserved) and the request counts
  against every bound once sent, whatever the answer: the budget bounds what is sent. The ledger
  (:class:`SpendLedger`) reports what was used and what is left.
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
    ``"no-budget"``, ``"no-price"`` or ``"budget"``."""

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
class Budget:
    """The user's spending bounds; None means "no bound of this kind". With none given, nothing is spent.

    Attributes:
        jobs: paid requests (``--max-paid-jobs``).
        video_seconds: total requested seconds of video (``--max-video-seconds``).
        usd: estimated USD (``--max-spend-usd``).
    """

    jobs: int | None = None
    video_seconds: float | None = None
    usd: float | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.jobs, self.video_seconds, self.usd))


@dataclass
class SpendLedger:
    """What the guard let through and refused, and what is left of the budget (for the report)."""

    committed_usd: float = 0.0
    reserved_usd: float = 0.0
    paid_requests: int = 0       # paid requests sent (each counts against --max-paid-jobs)
    accepted: int = 0            # of those, answered 2xx (jobs created)
    reserved_jobs: int = 0
    video_seconds: float = 0.0
    reserved_seconds: float = 0.0
    usd_known: bool = True  # False once a paid request had no price (its cost is not in committed_usd)
    blocked: dict[str, int] = field(default_factory=dict)  # "provider operationId (reason)" -> count
    budget: Budget = field(default_factory=Budget)

    def remaining(self) -> dict[str, Any]:
        """What is left of each bound (None where there is no bound of that kind)."""
        b = self.budget
        return {"paid_jobs": None if b.jobs is None else max(0, b.jobs - self.paid_requests),
                "video_seconds": None if b.video_seconds is None else max(0.0, b.video_seconds - self.video_seconds),
                "usd": None if b.usd is None else round(max(0.0, b.usd - self.committed_usd), 4)}

    def to_json(self) -> dict[str, Any]:
        return {"committed_usd": round(self.committed_usd, 4) if self.usd_known else None,
                "paid_requests": self.paid_requests, "accepted": self.accepted,
                "video_seconds": round(self.video_seconds, 3),
                "budget": {"paid_jobs": self.budget.jobs, "video_seconds": self.budget.video_seconds,
                           "usd": self.budget.usd},
                "remaining": self.remaining(), "blocked": dict(sorted(self.blocked.items()))}


def merge_ledgers(parts: list[dict[str, Any]], budget: Budget) -> dict[str, Any]:
    """The spend section of a run made of several processes (``--parallel``): the sum of each process's
    ledger (``SpendLedger.to_json()``: paid requests, accepted, requested video seconds, estimated USD,
    refusals), with ``budget`` (the user's, for the whole run) and what is left of it.

    Args:
        parts: the ``spend`` dicts of the processes' reports (empty dicts are skipped).
        budget: the run's budget as the user gave it.

    Returns:
        A dict shaped like :meth:`SpendLedger.to_json`; ``committed_usd`` is None when any part's is.
    """
    led = SpendLedger(budget=budget)
    for part in parts:
        if not part:
            continue
        led.paid_requests += int(part.get("paid_requests") or 0)
        led.accepted += int(part.get("accepted") or 0)
        led.video_seconds += float(part.get("video_seconds") or 0.0)
        if part.get("committed_usd") is None:
            led.usd_known = False
        else:
            led.committed_usd += float(part.get("committed_usd") or 0.0)
        for key, n in (part.get("blocked") or {}).items():
            led.blocked[key] = led.blocked.get(key, 0) + int(n)
    return led.to_json()


def params_rules(contract: specs.Contract) -> dict[str, dict]:
    """The request-field mapping of a provider: specs.DEFAULT_PARAMS updated with provider.yaml
    ``mock.params`` (``{"seconds": {"pointer": "/duration", "default": 4}, "size": {...}, ...}``)."""
    return contract.params_rules()



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
        max_spend_usd: ``--max-spend-usd`` (USD; None: no USD bound).
        max_paid_jobs: ``--max-paid-jobs`` (None: no bound on the number of paid requests).
        max_video_seconds: ``--max-video-seconds`` (None: no bound on requested seconds).
        usd_per_second: ``--usd-per-second``: the price where provider.yaml documents none (USD).
    """

    def __init__(self, target, contracts: dict[str, specs.Contract], allow_spend: bool = False,
                 max_spend_usd: float | None = None, *, max_paid_jobs: int | None = None,
                 max_video_seconds: float | None = None, usd_per_second: float | None = None):
        self.target = target
        self.contracts = contracts
        self.allow_spend = allow_spend
        self.usd_per_second = usd_per_second
        self.ledger = SpendLedger(budget=Budget(jobs=max_paid_jobs, video_seconds=max_video_seconds,
                                                usd=None if max_spend_usd is None else float(max_spend_usd)))
        self._lock = threading.Lock()
        self._routes: list[_Route] = []
        for pid, contract in contracts.items():
            for op in contract.operations():
                base = target.base_url(pid, op.host)
                if base is None:
                    continue
                parts = urlsplit(base)
                self._routes.append(_Route(pid, op.host, parts.netloc.lower(), parts.path.rstrip("/"), op))
        self._pending: dict[int, tuple[float | None, float]] = {}

    @classmethod
    def for_config(cls, target, contracts: dict[str, specs.Contract], config) -> SpendGuard:
        """The guard of a run (:class:`~conformance.context.RunConfig`)."""
        return cls(target, contracts, allow_spend=config.allow_spend, max_spend_usd=config.max_spend_usd,
                   max_paid_jobs=config.max_paid_jobs, max_video_seconds=config.max_video_seconds,
                   usd_per_second=config.usd_per_second)

    @property
    def budget(self) -> Budget:
        return self.ledger.budget

    @property
    def max_spend_usd(self) -> float | None:
        return self.budget.usd

    @property
    def free(self) -> bool:
        return bool(self.target.free)

    def price(self, provider: str) -> float | None:
        """USD per generated second of ``provider``: provider.yaml, else ``--usd-per-second``, else None."""
        price = self.contracts[provider].price_per_second_usd
        return float(price) if price is not None else self.usd_per_second

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
        """Worst-case USD of one accepted request (None when no price is known)."""
        price = self.price(provider)
        if price is None:
            return None
        return requested_seconds(self.contracts[provider], body) * price

    def _block(self, message: str, reason: str, provider: str | None, op: specs.Operation | None) -> None:
        key = f"{provider or '?'} {op.operation_id if op else '?'} ({reason})"
        with self._lock:
            self.ledger.blocked[key] = self.ledger.blocked.get(key, 0) + 1
        raise SpendBlocked(message, reason, provider, op.operation_id if op else None)

    def _refusal(self, provider: str, seconds: float) -> tuple[str, str] | None:
        """``(reason, message)`` why a paid request of ``seconds`` would be refused now, or None. Call with
        the lock held."""
        if not self.allow_spend:
            return "not-allowed", "costs money (x-billable); not sent without --allow-spend"
        b, led = self.budget, self.ledger
        if not b.given:
            return "no-budget", ("no budget given: add --max-paid-jobs N, --max-video-seconds S or "
                                 "--max-spend-usd X to --allow-spend")
        if b.jobs is not None and led.paid_requests + led.reserved_jobs + 1 > b.jobs:
            return "budget", f"--max-paid-jobs {b.jobs} reached ({led.paid_requests} paid request(s) sent)"
        if b.video_seconds is not None and led.video_seconds + led.reserved_seconds + seconds > b.video_seconds + 1e-9:
            return "budget", (f"{seconds:g} s more would pass --max-video-seconds {b.video_seconds:g} "
                              f"({led.video_seconds:g} s requested so far)")
        if b.usd is not None:
            price = self.price(provider)
            if price is None:
                return "no-price", (f"{provider} documents no price (pricing.usd_per_second), so --max-spend-usd "
                                    "cannot be checked; give --usd-per-second X, or bound the run with "
                                    "--max-paid-jobs / --max-video-seconds")
            cost = seconds * price
            if led.committed_usd + led.reserved_usd + cost > b.usd + 1e-9:
                return "budget", (f"estimated ${cost:.2f} more would pass --max-spend-usd {b.usd:g} "
                                  f"(spent ${led.committed_usd:.2f})")
        return None

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
                        "paid target", "not-allowed", None, None)
        provider, op = hit
        if not op.billable:
            return
        body = parse_body(request.headers.get("Content-Type"), request.body)
        seconds = requested_seconds(self.contracts[provider], body)
        with self._lock:
            refusal = self._refusal(provider, seconds)
            if refusal is None:
                cost = self.estimate(provider, body)
                self.ledger.reserved_jobs += 1
                self.ledger.reserved_seconds += seconds
                self.ledger.reserved_usd += cost or 0.0
                self._pending[id(request)] = (cost, seconds)
        if refusal is not None:
            self._block(f"{provider} {op.operation_id}: {refusal[1]}", refusal[0], provider, op)

    def _unreserve(self, entry: tuple[float | None, float]) -> None:
        cost, seconds = entry
        self.ledger.reserved_jobs -= 1
        self.ledger.reserved_seconds -= seconds
        self.ledger.reserved_usd -= cost or 0.0

    def _commit(self, request, accepted: bool | None) -> None:
        with self._lock:
            entry = self._pending.pop(id(request), None)
            if entry is None:
                return
            self._unreserve(entry)
            cost, seconds = entry
            self.ledger.paid_requests += 1
            self.ledger.video_seconds += seconds
            if accepted:
                self.ledger.accepted += 1
            if cost is None:
                self.ledger.usd_known = False
            else:
                self.ledger.committed_usd += cost

    def after(self, request, response) -> None:
        """Called with each response of a paid request: it counts against every bound, whatever the answer
        (the budget bounds what is *sent*; a rejected request is not billed, but the count stays safe)."""
        self._commit(request, 200 <= response.status_code < 300)

    def release(self, request) -> None:
        """A paid request that got no answer (transport error) still counts: it may have reached the target."""
        self._commit(request, None)

    def can_spend(self, provider: str, seconds: float = 4.0) -> tuple[bool, str]:
        """Whether a paid request of ``seconds`` could be sent now, with the reason when not."""
        if self.free:
            return True, ""
        with self._lock:
            refusal = self._refusal(provider, seconds)
        if refusal is None:
            return True, ""
        if refusal[0] == "not-allowed":
            return False, "needs paid operations (x-billable); run with --allow-spend and a budget to include it"
        return False, refusal[1]
