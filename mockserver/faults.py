"""Fault injection: errors, latency, hangs, connection resets, rate limits and generation failures.

Faults are configured three ways, all producing the same :class:`FaultRule`:

- at start: ``--fault KIND[:key=value,...]`` flags or ``faults:`` in a profile file;
- at runtime: ``POST /__mock/faults`` on the admin API;
- per request: the ``X-Mock-Fault: KIND[; key=value ...]`` header (like Prism's ``Prefer``).

Kinds (``FAULT_KINDS``):

================== =====================================================================================
``rate_limit``     429 in the provider's envelope with ``Retry-After`` (``retry_after`` seconds, default 1)
``server_error``   500 in the provider's envelope
``bad_gateway``    502
``unavailable``    503 (``retry_after`` optional)
``latency``        delay before answering: ``ms`` fixed, or ``distribution`` ``uniform`` (``min_ms``,
                   ``max_ms``) / ``lognormal`` (``median_ms``, ``sigma``), drawn from the seeded generator
``hang``           never answer (until the client gives up, or ``ms``, default 600000)
``reset``          close the TCP connection without a response
``generation_failure`` the job is accepted, runs, then fails in the provider's own failure shape
                   (``code``, default ``content_policy_violation``; ``message``)
================== =====================================================================================

Targeting: ``provider`` (id), ``operation`` (an operationId or an ``x-role``), ``times`` (fire N times,
then the rule is spent), ``probability`` (0..1, drawn from a generator seeded by ``--seed``). A token
bucket per API key (``--rate-limit N/s``) emits real 429s.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from .http import STATE_KEY, JournalEntry, error_response, stamp_request_id

FAULT_KINDS = ("rate_limit", "server_error", "bad_gateway", "unavailable", "latency", "hang", "reset",
               "generation_failure")
_STATUS_KIND = {"rate_limit": "rate_limited", "server_error": "server_error", "bad_gateway": "bad_gateway",
                "unavailable": "unavailable"}
_NUMERIC = ("times", "probability", "retry_after", "ms", "min_ms", "max_ms", "median_ms", "sigma")
FAULT_HEADER = "X-Mock-Fault"
FAULT_KEY = web.RequestKey("mock_fault", str)  # the fault applied to a request, for the journal


class FaultError(ValueError):
    """A fault specification is invalid; ``str(err)`` is one clear line."""


@dataclass
class FaultRule:
    """One installed fault. See the module docstring for the meaning of each field."""

    id: int
    kind: str
    provider: str | None = None
    operation: str | None = None
    times: int | None = None
    probability: float | None = None
    retry_after: float | None = None
    ms: float | None = None
    distribution: str | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    median_ms: float | None = None
    sigma: float | None = None
    code: str | None = None
    message: str | None = None
    fired: int = 0

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def matches(self, provider: str | None, op) -> bool:
        if self.provider and self.provider != provider:
            return False
        if self.operation and op is not None and self.operation not in (op.operation_id, op.role):
            return False
        if self.operation and op is None:
            return False
        return self.times is None or self.fired < self.times


def parse_fault(spec: dict[str, Any] | str, rule_id: int = 0) -> FaultRule:
    """Build a :class:`FaultRule` from a dict (admin API, profile) or a string (``KIND:k=v,k=v`` from a
    flag, or ``KIND; k=v`` from the header). Raises :class:`FaultError` on any invalid field."""
    if isinstance(spec, str):
        kind, _, rest = spec.replace(";", ":", 1).partition(":")
        data: dict[str, Any] = {"kind": kind.strip()}
        for item in filter(None, (p.strip() for p in rest.replace(";", ",").split(","))):
            if "=" not in item:
                raise FaultError(f"fault option {item!r} must look like key=value")
            k, v = item.split("=", 1)
            data[k.strip()] = v.strip()
    elif isinstance(spec, dict):
        data = dict(spec)
    else:
        raise FaultError("a fault must be an object with at least a 'kind'")
    kind = data.pop("kind", None)
    if kind not in FAULT_KINDS:
        raise FaultError(f"unknown fault kind {kind!r} (kinds: {', '.join(FAULT_KINDS)})")
    data.pop("id", None)
    data.pop("fired", None)
    allowed = set(FaultRule.__dataclass_fields__) - {"id", "kind", "fired"}
    unknown = set(data) - allowed
    if unknown:
        raise FaultError(f"unknown fault option(s) {', '.join(sorted(unknown))} for {kind}")
    for k in _NUMERIC:
        if k in data and data[k] is not None:
            try:
                data[k] = float(data[k])
            except (TypeError, ValueError):
                raise FaultError(f"fault option {k} must be a number, not {data[k]!r}") from None
            if data[k] < 0 or math.isnan(data[k]):
                raise FaultError(f"fault option {k} must be >= 0")
    if data.get("times") is not None:
        if data["times"] != int(data["times"]) or data["times"] < 1:
            raise FaultError("fault option times must be a whole number >= 1")
        data["times"] = int(data["times"])
    if data.get("probability") is not None and data["probability"] > 1:
        raise FaultError("fault option probability must be between 0 and 1")
    if kind == "latency":
        dist = data.get("distribution")
        if dist not in (None, "fixed", "uniform", "lognormal"):
            raise FaultError("latency distribution must be fixed, uniform or lognormal")
        if dist == "uniform" and (data.get("min_ms") is None or data.get("max_ms") is None):
            raise FaultError("uniform latency needs min_ms and max_ms")
        if dist == "lognormal" and data.get("median_ms") is None:
            raise FaultError("lognormal latency needs median_ms (and optionally sigma)")
        if dist in (None, "fixed") and data.get("ms") is None:
            raise FaultError("latency needs ms (or a distribution)")
    for k in ("provider", "operation", "code", "message", "distribution"):
        if k in data and data[k] is not None and not isinstance(data[k], str):
            raise FaultError(f"fault option {k} must be a string")
    return FaultRule(id=rule_id, kind=kind, **data)


class FaultBook:
    """The installed faults of a server, plus the per-key token buckets of ``--rate-limit``."""

    def __init__(self, state, initial: list[dict[str, Any] | str] | None = None):
        self.state = state
        self.rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._buckets: dict[str, tuple[float, float]] = {}
        self.rate_limited = state.config.rate_limit is not None  # --rate-limit token buckets are on
        for spec in initial or []:
            self.add(spec)

    def add(self, spec: dict[str, Any] | str) -> FaultRule:
        """Install a fault (raises :class:`FaultError`); returns the rule with its id."""
        rule = parse_fault(spec, next(self._ids))
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules.clear()

    def _fires(self, rule: FaultRule) -> bool:
        if rule.probability is not None and self.state.rng.random() >= rule.probability:
            return False
        rule.fired += 1
        return True

    def pick(self, provider: str | None, op, header: str | None, kinds: tuple[str, ...]) -> FaultRule | None:
        """The fault to apply to a request, if any: the request's header first, then installed rules in
        order. Only rules of ``kinds`` are considered. Raises :class:`FaultError` for a bad header."""
        if header:
            rule = parse_fault(header, 0)
            if rule.kind in kinds and (rule.probability is None or self.state.rng.random() < rule.probability):
                return rule
        for rule in self.rules:
            if rule.kind in kinds and rule.matches(provider, op) and self._fires(rule):
                return rule
        return None

    def generation_failure(self, provider: str, op, header: str | None) -> tuple[str, str] | None:
        """``(code, message)`` when a new job of this request must fail, else None."""
        rule = self.pick(provider, op, header, ("generation_failure",))
        if rule is None:
            return None
        code = rule.code or "content_policy_violation"
        return code, rule.message or "The request was rejected by the content policy (injected fault)."

    def take_token(self, key: str) -> float | None:
        """Token bucket of ``--rate-limit``: None when the request may pass, else seconds to wait."""
        limit = self.state.config.rate_limit
        if limit is None:
            return None
        capacity, per = limit
        rate = capacity / per
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return None
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / rate

    def latency_seconds(self, rule: FaultRule) -> float:
        rng = self.state.rng
        if rule.distribution == "uniform":
            ms = rng.uniform(rule.min_ms or 0.0, rule.max_ms or 0.0)
        elif rule.distribution == "lognormal":
            ms = rng.lognormvariate(math.log(max(rule.median_ms or 1.0, 1e-3)), rule.sigma or 0.5)
        else:
            ms = rule.ms or 0.0
        return ms / 1000.0


def _meta(request: web.Request):
    handler = request.match_info.handler
    return getattr(handler, "mock_meta", (None, None))


@web.middleware
async def faults_middleware(request: web.Request, handler):
    """Apply injected faults and the rate limit before the provider handler runs."""
    mount, op = _meta(request)
    if mount is None:
        return await handler(request)
    state = request.app[STATE_KEY]
    header = request.headers.get(FAULT_HEADER)
    try:
        rule = state.faults.pick(mount.provider, op, header, FAULT_KINDS[:-1])
    except ValueError as exc:  # FaultError: a bad X-Mock-Fault header is the caller's error
        return stamp_request_id(error_response(mount.contract, "validation", f"{FAULT_HEADER}: {exc}",
                                               param=FAULT_HEADER), op)
    if rule is not None:
        request[FAULT_KEY] = rule.kind
        if rule.kind == "latency":
            await asyncio.sleep(state.faults.latency_seconds(rule))
        elif rule.kind == "hang":
            await asyncio.sleep((rule.ms or 600000.0) / 1000.0)
            raise _reset(request)
        elif rule.kind == "reset":
            raise _reset(request)
        else:
            headers = {}
            if rule.kind in ("rate_limit", "unavailable") and (rule.retry_after or rule.kind == "rate_limit"):
                headers["Retry-After"] = str(max(1, int(math.ceil(rule.retry_after or 1))))
            return stamp_request_id(error_response(mount.contract, _STATUS_KIND[rule.kind], rule.message,
                                                   headers=headers), op)
    auth = request.headers.get(mount.contract.auth["header"], "")
    wait = state.faults.take_token(auth)
    if wait is not None:
        request[FAULT_KEY] = "rate_limit"
        return stamp_request_id(error_response(mount.contract, "rate_limited", "rate limit exceeded",
                                               headers={"Retry-After": str(max(1, math.ceil(wait)))}), op)
    return await handler(request)


def _reset(request: web.Request) -> Exception:
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket
            import struct

            try:  # RST instead of FIN: the client sees "connection reset by peer"
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()
    return asyncio.CancelledError()


@web.middleware
async def journal_middleware(request: web.Request, handler):
    """Record provider requests in the admin journal (credentials redacted)."""
    if request.path.startswith("/__mock"):
        return await handler(request)
    state = request.app[STATE_KEY]
    mount, op = _meta(request)
    # Headers are kept by reference and redacted when the journal is read (keeps polls fast); they never
    # leave the process unredacted.
    entry = JournalEntry(time.time(), request.method, request.rel_url, mount.provider if mount else None,
                         op.operation_id if op else None, request.headers)
    state.journal.append(entry)
    start = time.perf_counter()
    try:
        response = await handler(request)
        entry.status = response.status
        return response
    except web.HTTPException as exc:
        entry.status = exc.status
        raise
    finally:
        entry.duration_ms = (time.perf_counter() - start) * 1000
        entry.fault = request.get(FAULT_KEY)
