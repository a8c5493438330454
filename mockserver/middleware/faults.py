"""Fault injection: errors, latency, hangs, connection resets, rate limits and generation failures.

Faults are configured three ways, all producing the same :class:`FaultRule`:

- at start: ``--fault KIND[:key=value,...]`` flags or ``faults:`` in a profile file;
- at runtime: ``POST /__mock/faults`` on the admin API;
- per request: the ``X-Mock-Fault: KIND[; key=value ...]`` header (like Prism's ``Prefer``).

What each kind does is one row of :data:`ACTIONS` (kind -> action); :data:`FAULT_KINDS` is its keys:

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
                   (``code``, default ``content_policy_violation``; ``message``): applied where a job is
                   created (:meth:`FaultBook.generation_failure`), not to the request
================== =====================================================================================

Targeting: ``provider`` (id), ``operation`` (an operationId or an ``x-role``), ``times`` (fire N times,
then the rule is spent), ``probability`` (0..1, drawn from a generator seeded by ``--seed``). A token
bucket per API key (``--rate-limit N/s``) emits real 429s.

Adding a fault kind is adding a row to :data:`ACTIONS` (and its name to ``FaultKind`` in
``specs/mockadmin/openapi.yaml``).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from specs import Contract

from ..http import error_response
from .compose import Handler, Route, when
from .journal import FAULT_KEY

FAULT_HEADER = "X-Mock-Fault"

#: An action: ``(request, rule, book, contract) -> response``, or None to let the request through (after a
#: delay, say). It may raise to drop the connection (``reset``, ``hang``).
Action = Callable[[web.Request, "FaultRule", "FaultBook", Contract], Awaitable[web.StreamResponse | None]]


def _answer(error_kind: str, retry_after: str = "never") -> Action:
    """An action answering the provider's ``error_kind`` envelope (an ``errors.kinds`` entry). ``retry_after``:
    ``"always"`` sends ``Retry-After`` (the rule's ``retry_after`` seconds, default 1), ``"when_set"`` only
    when the rule sets it, ``"never"`` never."""

    async def act(request: web.Request, rule: FaultRule, book: FaultBook, contract: Contract) -> web.Response:
        headers = {}
        if retry_after == "always" or (retry_after == "when_set" and rule.retry_after):
            headers["Retry-After"] = str(max(1, int(math.ceil(rule.retry_after or 1))))
        return error_response(contract, error_kind, rule.message, headers=headers)

    return act


async def _delay(request: web.Request, rule: FaultRule, book: FaultBook, contract: Contract) -> None:
    await asyncio.sleep(book.latency_seconds(rule))
    return None


async def _hang(request: web.Request, rule: FaultRule, book: FaultBook, contract: Contract) -> None:
    await asyncio.sleep((rule.ms or 600000.0) / 1000.0)
    raise _reset(request)


async def _drop(request: web.Request, rule: FaultRule, book: FaultBook, contract: Contract) -> None:
    raise _reset(request)


#: What each fault kind does to a request (None: it does nothing to the request itself).
ACTIONS: dict[str, Action | None] = {
    "rate_limit": _answer("rate_limited", retry_after="always"),
    "server_error": _answer("server_error"),
    "bad_gateway": _answer("bad_gateway"),
    "unavailable": _answer("unavailable", retry_after="when_set"),
    "latency": _delay,
    "hang": _hang,
    "reset": _drop,
    "generation_failure": None,
}
FAULT_KINDS: tuple[str, ...] = tuple(ACTIONS)
#: The kinds that act on a request (the others act elsewhere, e.g. where a job is created).
REQUEST_KINDS: tuple[str, ...] = tuple(k for k, action in ACTIONS.items() if action is not None)
#: Numeric options of a fault spec.
NUMERIC_OPTIONS = ("times", "probability", "retry_after", "ms", "min_ms", "max_ms", "median_ms", "sigma")


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
        """The rule as the admin API lists it (options that are not set are left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def matches(self, provider: str | None, op) -> bool:
        """True when the rule targets ``provider`` and operation ``op`` (operationId or role) and is not spent."""
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
    for k in NUMERIC_OPTIONS:
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


def check_target(rule: FaultRule, contracts: dict[str, Contract]) -> None:
    """Check a rule's targets against the served contracts: ``provider`` must be served, ``operation`` must be
    an operationId or an ``x-role`` of that provider's contract (of any served contract when the rule names
    no provider).

    Args:
        rule: the parsed rule; contracts: the served contracts by provider id.

    Raises:
        FaultError: an unknown target (one line naming what is known).
    """
    if rule.provider and rule.provider not in contracts:
        raise FaultError(f"fault provider {rule.provider!r} is not served (served: {', '.join(contracts)})")
    if not rule.operation:  # None or "": any operation
        return
    scope = [contracts[rule.provider]] if rule.provider else list(contracts.values())
    op_ids = sorted({op.operation_id for c in scope for op in c.operations()})
    roles = sorted({op.role for c in scope for op in c.operations() if op.role})
    if rule.operation not in op_ids and rule.operation not in roles:
        where = rule.provider or "any served provider"
        raise FaultError(f"fault operation {rule.operation!r} is not an operationId or x-role of {where} "
                         f"(roles: {', '.join(roles)}; operationIds: {', '.join(op_ids)})")


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
        """Install a fault; returns the rule with its id.

        Raises:
            FaultError: an invalid spec, or a target (``provider``, ``operation``) the served contracts do
                not have (:func:`check_target`).
        """
        rule = parse_fault(spec)
        check_target(rule, self.state.contracts)
        rule.id = next(self._ids)
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        """Remove the rule ``rule_id``; True if there was one."""
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        """Remove every rule."""
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
        """Seconds of delay of a ``latency`` rule (fixed, or drawn from the seeded generator)."""
        rng = self.state.rng
        if rule.distribution == "uniform":
            ms = rng.uniform(rule.min_ms or 0.0, rule.max_ms or 0.0)
        elif rule.distribution == "lognormal":
            ms = rng.lognormvariate(math.log(max(rule.median_ms or 1.0, 1e-3)), rule.sigma or 0.5)
        else:
            ms = rule.ms or 0.0
        return ms / 1000.0


def _reset(request: web.Request) -> Exception:
    """Abort the request's connection with a TCP RST; returns the exception that ends the handler."""
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


class Faults:
    """The faults layer (``operation`` routes only): applies the first matching rule's action
    (:data:`ACTIONS`), then the ``--rate-limit`` token bucket. Its fast path skips it for a request when no
    rule is installed, no rate limit is on and the request has no ``X-Mock-Fault`` header.

    Args:
        book: the server's :class:`FaultBook`.
    """

    name = "faults"

    def __init__(self, book: FaultBook):
        self.book = book

    def wrap(self, route: Route, nxt: Handler) -> Handler | None:
        """The faults handler around ``nxt`` for an ``operation`` route (with its fast path), else None."""
        if route.kind != "operation":
            return None
        book, contract, op = self.book, route.contract, route.op
        provider, auth_header = route.provider, contract.auth["header"]

        async def faulted(request: web.Request) -> web.StreamResponse:
            try:
                rule = book.pick(provider, op, request.headers.get(FAULT_HEADER), REQUEST_KINDS)
            except ValueError as exc:  # FaultError: a bad X-Mock-Fault header is the caller's error
                return error_response(contract, "validation", f"{FAULT_HEADER}: {exc}", param=FAULT_HEADER)
            if rule is not None:
                request[FAULT_KEY] = rule.kind
                answer = await ACTIONS[rule.kind](request, rule, book, contract)
                if answer is not None:
                    return answer
            wait = book.take_token(request.headers.get(auth_header, ""))
            if wait is not None:
                request[FAULT_KEY] = "rate_limit"
                return error_response(contract, "rate_limited", "rate limit exceeded",
                                      headers={"Retry-After": str(max(1, math.ceil(wait)))})
            return await nxt(request)

        if getattr(book, "always", False):  # a shared book: another worker may add a rule at any moment
            return faulted

        def active(request: web.Request) -> bool:
            return bool(book.rules) or book.rate_limited or FAULT_HEADER in request.headers

        return when(active, faulted, nxt)


__all__ = ["ACTIONS", "FAULT_HEADER", "FAULT_KINDS", "NUMERIC_OPTIONS", "REQUEST_KINDS", "FaultBook", "FaultError",
           "FaultRule", "Faults", "check_target", "parse_fault"]
