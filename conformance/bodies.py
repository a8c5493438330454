"""Realistic, valid request bodies for job-creating operations, built from the contract.

The lifecycle drivers need requests a real provider would accept, not fuzz: a body starts from the first
vendored request example that validates and has the wanted kind (``x-kind``), or from a minimal instance of
the request schema; then the remix source is placed where ``x-source`` says, the duration and size are set
through provider.yaml ``mock.params`` (the pointers and ``map`` the mock reads, e.g. fal
``/aspect_ratio`` ``16:9`` -> ``1280x720``) using values the schema allows, and the result is validated
against the request schema.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

from specs import Contract, Operation
from specs.families import SOURCED_KINDS
from specs.pointers import get_pointer, resolve_pointer, set_pointer, tokens

from . import schema as sch
from .spend import params_rules

PROMPT = "A red ball rolls slowly across a wooden table."


class BodyError(Exception):
    """No valid request body could be built for an operation. ``str(err)`` is one line."""


@dataclass
class Request:
    """A request ready for a driver to send.

    Attributes:
        op: the contract operation.
        media_type: request media type (None when the operation has no body).
        body: the body data (JSON-ready) or None.
        path_params: values of path parameters (the remix source when ``x-source`` is in the path).
        kind: ``generate`` | ``remix``.
        requested: what the body explicitly asks for: ``{"seconds": int|None, "size": "WxH"|None}``.
        query, headers: query parameters and extra headers of the request (a webhook URL, for example).
    """

    op: Operation
    media_type: str | None
    body: Any
    path_params: dict[str, str] = field(default_factory=dict)
    kind: str = "generate"
    requested: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def set_at(self, where: str, name: str, value: str) -> None:
        """Put ``value`` in the request: a ``query`` or ``header`` parameter, or the ``body`` at a JSON pointer."""
        if where == "query":
            self.query[name] = value
        elif where == "header":
            self.headers[name] = value
        elif where == "body" and isinstance(self.body, dict):
            set_pointer(self.body, name, value)


def _examples(contract: Contract, op: Operation, ctype: str) -> list[Any]:
    doc = contract.openapi
    rb = sch.deref(doc, op.definition.get("requestBody") or {})
    mt = ((rb or {}).get("content") or {}).get(ctype) or {}
    out = []
    for ex in (mt.get("examples") or {}).values():
        ex = sch.deref(doc, ex)
        if isinstance(ex, dict) and "value" in ex and not ex.get("x-expected-invalid"):
            out.append(copy.deepcopy(ex["value"]))
    if "example" in mt:
        out.append(copy.deepcopy(mt["example"]))
    return out


def kind_value(op: Operation, kind: str) -> tuple[str, Any] | None:
    """For a mapping ``x-kind``: ``(pointer, value)`` that selects ``kind`` (aigateway's ``/model``)."""
    if not isinstance(op.kind, dict):
        return None
    for value, k in (op.kind.get("map") or {}).items():
        if k == kind:
            return op.kind.get("pointer", "/model"), value
    return None


def _choose(doc: dict, prop_schema: Any, wanted: Any, rng: random.Random, candidates: list[Any]) -> Any:
    allowed = sch.enum_values(doc, prop_schema)
    if allowed:
        for v in allowed:
            if wanted is not None and str(v) == str(wanted):
                return v
        pool = [v for v in allowed if v is not None]
        return rng.choice(pool) if pool else None
    typ = (sch.deref(doc, prop_schema) or {}).get("type")
    types = typ if isinstance(typ, list) else [typ]
    value = wanted if wanted is not None else rng.choice(candidates)
    if "integer" in types:
        return int(float(value))
    if "number" in types:
        return float(value)
    return str(value)


def _area(value: Any) -> float:
    try:
        w, h = str(value).lower().split("x")
        return float(w) * float(h)
    except ValueError:
        return float("inf")


def _seconds(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("inf")


def _cheapest(doc: dict, prop_schema: Any, name: str, candidates: list[Any], mapping: dict | None) -> Any:
    """The cheapest value the contract allows for ``seconds`` (the shortest) or ``size`` (the fewest pixels):
    from the property's enum, else its ``minimum`` (seconds), else the candidates. With a ``mapping`` (fal's
    ``aspect_ratio`` -> size) the key whose mapped value is cheapest. None when nothing is allowed."""
    key = _area if name == "size" else _seconds
    if mapping:
        allowed = [k for k in mapping if not sch.enum_values(doc, prop_schema) or
                   str(k) in {str(v) for v in sch.enum_values(doc, prop_schema)}]
        return min(allowed, key=lambda k: key(mapping[k]), default=None)
    allowed = [v for v in sch.enum_values(doc, prop_schema) if v is not None]
    if allowed:
        return min(allowed, key=key)
    node = sch.deref(doc, prop_schema) or {}
    if name == "seconds" and isinstance(node.get("minimum"), int | float) and not isinstance(node["minimum"], bool):
        lowest = max(float(node["minimum"]), 1.0)
        typ = node.get("type")
        return int(lowest) if typ == "integer" or (isinstance(typ, list) and "integer" in typ) else lowest
    return min(candidates, key=key) if candidates else None


def build(contract: Contract, op: Operation, kind: str, *, source_id: str | None = None,
          seconds: int | None = None, size: str | None = None, keep_output: bool = False,
          rng: random.Random | None = None, cheapest: bool = False) -> Request:
    """Build a valid request for a job-creating operation.

    Args:
        contract: the provider contract.
        op: a ``create``/``remix``/``edit``/``submit``/``run`` operation.
        kind: ``generate``, ``remix`` or ``extend`` (must be a kind the operation serves).
        source_id: the source video of a remix or an extension (required for the kinds of
            :data:`specs.families.SOURCED_KINDS`).
        seconds, size: wanted duration (s) and ``WxH`` size; None picks an allowed value.
        keep_output: set the provider's "delete output" flag (``mock.params.delete_video`` pointer) to
            false, so the output can be a remix source later (fal deletes by default).
        rng: random source for value choices.
        cheapest: where ``seconds``/``size`` are None, ask for the shortest duration and the smallest size the
            contract allows (on a paid target), instead of a random allowed value.

    Raises:
        BodyError: no valid body can be built from the contract.
    """
    rng = rng or random.Random(0)
    doc = contract.openapi
    rs = sch.request_schema(contract, op)
    req = Request(op=op, media_type=rs[0] if rs else None, body=None, kind=kind)
    sourced = kind in SOURCED_KINDS
    if sourced and not source_id:
        raise BodyError(f"{op.operation_id}: a {kind} needs a source id")
    src = op.source or {}
    if sourced and src.get("in") == "path":
        req.path_params[src.get("name", "")] = source_id
    if rs is None:
        if sourced and src.get("in") == "body":
            raise BodyError(f"{op.operation_id}: x-source is in the body but the operation has no body")
        return req
    ctype, sptr = rs
    schema = resolve_pointer(doc, sptr)
    body = None
    for ex in _examples(contract, op, ctype):
        if isinstance(ex, dict) and op.kind_for(ex) == kind:
            body = ex
            break
    if body is None:
        body = sch.minimal(doc, schema)
        if not isinstance(body, dict):
            body = {}
    kv = kind_value(op, kind)
    if kv is not None:
        set_pointer(body, kv[0], kv[1])
    rules = params_rules(contract)
    prompt_rule = rules.get("prompt") or {"pointer": "/prompt"}
    if sch.schema_at(doc, schema, tokens(prompt_rule["pointer"])) is not None:
        set_pointer(body, prompt_rule["pointer"], PROMPT)
    if sourced and src.get("in") == "body":
        set_pointer(body, src.get("pointer", "/video_id"), source_id)
    overrides: list[str] = []
    for name, wanted, candidates in (("seconds", seconds, [4, 8]), ("size", size, ["1280x720", "720x1280"])):
        rule = rules.get(name)
        if not rule:
            continue
        prop = sch.schema_at(doc, schema, tokens(rule["pointer"]))
        if prop is None:
            continue
        mapping = rule.get("map")
        if wanted is None and cheapest:
            value = _cheapest(doc, prop, name, candidates, mapping)
        elif mapping:
            keys = [k for k, v in mapping.items() if wanted is None or str(v) == str(wanted)]
            if not keys:
                continue
            value = _choose(doc, prop, rng.choice(keys), rng, keys)
        else:
            value = _choose(doc, prop, wanted, rng, candidates)
        if value is None:
            continue
        set_pointer(body, rule["pointer"], value)
        overrides.append(name)
    if keep_output:
        rule = rules.get("delete_video")
        if rule and sch.schema_at(doc, schema, tokens(rule["pointer"])) is not None:
            set_pointer(body, rule["pointer"], False)
    errs = sch.errors(doc, sptr, body)
    while errs and overrides:
        name = overrides.pop()
        _drop(body, rules[name]["pointer"])
        errs = sch.errors(doc, sptr, body)
    if errs:
        raise BodyError(f"{op.operation_id}: cannot build a valid {kind} request from the contract ({errs[0]})")
    req.body = body
    req.requested = requested_of(contract, body, source=None)
    for name in ("seconds", "size"):
        if name not in overrides and get_pointer(body, rules.get(name, {}).get("pointer", "/-")) is None:
            req.requested[name] = None
    return req


def _drop(body: dict, pointer: str) -> None:
    toks = tokens(pointer)
    node = body
    for t in toks[:-1]:
        node = node.get(t) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(toks[-1], None)


def requested_of(contract: Contract, body: Any, source: dict | None = None) -> dict[str, Any]:
    """What a body explicitly asks for: ``{"seconds": int|None, "size": "WxH"|None}`` through
    ``mock.params`` (mapped sizes resolved; None where the body leaves the field out)."""
    rules = params_rules(contract)
    out: dict[str, Any] = {"seconds": None, "size": None}
    if not isinstance(body, dict):
        return out
    for name in ("seconds", "size"):
        rule = rules.get(name)
        if not rule:
            continue
        value = get_pointer(body, rule["pointer"])
        if value is None:
            continue
        if rule.get("map"):
            value = rule["map"].get(str(value))
            if value is None:
                continue
        if name == "seconds":
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
        out[name] = value
    return out
