"""``conformance compare FROM TO...``: a migration report computed from the contracts alone.

For a client written against provider FROM (typically OpenAI's Sora API and its SDK, which shut down on
2026-09-24), the report says, for each provider TO, what changes when the client moves there. Nothing is
sent over the network: every fact comes from ``specs.load(id)`` (``openapi.yaml`` + ``provider.yaml``).

What is compared, by operation role (``x-role``) and job kind (``x-kind``), never by provider id:

- **operations**: each operation of FROM is put in a *step* of the job lifecycle (``generate``, ``remix``,
  ``extend``, ``poll``, ``result``, ``list``, ``delete``, ``cancel``, ``stream``, ``characters``; a creating operation by its kinds, any
  other by the capabilities its role gives in its host's family, ``specs.families.TABLE``) and matched with
  the TO operations of the same step. A TO operation is *on the same route* when its host speaks the same
  protocol family and its method and path, relative to one base URL for the whole provider, are FROM's
  (path parameter names ignored). A step that a TO family serves without an operation is named too (a
  blocking call's answer carries the result; a blocking call needs no polling);
- **request fields** of every creating operation, by meaning through provider.yaml ``mock.params``
  pointers (``prompt``, ``seconds``, ``size``, ``model``, ...; ``Contract.params_rules``) and ``x-source``
  (the remix source), then by name; with each side's type and values, value maps (``size`` 1280x720 ->
  ``aspect_ratio`` 16:9), request media types, and the fields that have no counterpart on either side;
- **statuses** through the neutral lifecycle (provider.yaml ``statuses``);
- **error envelopes** (provider.yaml ``errors``, rendered with ``Contract.error_body``; the contract's error
  schemas) and the HTTP status that carries each error kind;
- **asset delivery**: ``bytes`` (the result operation's 2xx answer is the asset: a non-JSON media type, as
  ``conformance.drivers.video_object`` decides), a JSON ``link`` (an object with a ``url`` in the answer, as
  gpt.ge's content endpoint or a job's result), or a ``file`` object (``url`` with ``content_type`` /
  ``file_name`` / ``file_size``, as fal's and sunra's outputs);
- **auth** (header, schemes, key variable), **id formats** (provider.yaml ``ids``) and the documented
  **price** per second (provider.yaml ``pricing`` with its source, or "not documented").

Verdicts (one per TO):

``works with the FROM SDK unchanged``
    The FROM client's calls reach TO as they are: every FROM operation has a TO operation on the same route
    (same protocol family, method and path) under FROM's own base URL, TO accepts every request media type
    and field FROM declares with the same name, type and values and requires nothing more, and TO has the
    same status words, error envelopes and statuses, asset delivery, auth header and scheme, id format and
    key variable. In practice: TO is FROM, or a contract identical on the wire. (Response bodies are compared
    through the protocol family, the status words, the asset delivery and the error envelopes, not field by
    field; ``conformance diff`` does that for two versions of one contract.)
``needs only a base URL and key``
    The same, except that the base URL (TO's host with any path prefix: one URL for every operation) or
    the API key (its value and the variable it is read from) differ. Only the client's constructor changes.
``needs code changes``
    Anything else. The changes are listed most important first: a FROM operation with no counterpart (1);
    an operation on another route or of another protocol (a queue, a job, a blocking call) (2); the auth
    header or scheme (3); request fields and media types (4); asset delivery (5); status words (6); error
    envelopes and statuses (7); the id format (8).

With ``--runtime`` the report is followed by the runtime proof (:mod:`conformance.sdk_proof`): FROM's official
SDK runs its own flow against an embedded mock of FROM and of each TO (the only part of ``compare`` that sends
requests, all to 127.0.0.1), step by step: works, or how it fails.

Output: ``--format text`` (rich tables, the default), ``markdown`` or ``json`` (:func:`to_json`), on stdout
or into ``--output PATH``. Exit codes: 0 the report was produced; 2 usage error, one line on stderr (unknown
provider, a path that cannot be written).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import specs
from specs import NEUTRAL_STATES
from specs.families import CREATING_ROLES, TABLE
from specs.pointers import deref, tokens

UNCHANGED = "works with the FROM SDK unchanged"
BASE_URL_AND_KEY = "needs only a base URL and key"
CODE_CHANGES = "needs code changes"
VERDICT_CODES = {UNCHANGED: "unchanged", BASE_URL_AND_KEY: "base_url_and_key", CODE_CHANGES: "code_changes"}
FORMATS = ("text", "markdown", "json")
REPORT_VERSION = 1

#: Roles whose operations create a job; their step is their job kind.
CREATING = frozenset(CREATING_ROLES)
#: Lifecycle steps, in report order.
STEPS = ("generate", "remix", "extend", "poll", "result", "download", "list", "delete", "cancel", "stream", "characters")
#: Change ranks (1 = most important) and their areas.
RANKS = {"operation": 1, "protocol": 2, "auth": 3, "request": 4, "delivery": 5, "status": 6, "errors": 7, "ids": 8}
_PARAM_ORDER = ("prompt", "source", "seconds", "size", "model")
_FILE_KEYS = {"content_type", "file_name", "file_size"}


class CompareError(Exception):
    """A usage error of ``conformance compare`` (unknown provider, unwritable path): one line."""


# -- the report --------------------------------------------------------------------------------------------
@dataclass
class Change:
    """One code change a client needs: ``rank`` (1 = most important, see :data:`RANKS`), ``area``, ``text``."""

    rank: int
    area: str
    text: str


@dataclass
class FieldMap:
    """One request field mapped from FROM to TO.

    Attributes:
        meaning: the neutral parameter (``prompt``, ``seconds``, ``source``, ...) or None (matched by name).
        from_field / to_field: where the value goes (``seconds``, ``video.id``, ``path {video_id}``), or None
            when that side has no counterpart.
        from_schema / to_schema: type and values (``string 4|8|12``).
        required: ``from`` / ``to`` requiredness.
        notes: value maps and differences, one phrase each.
    """

    meaning: str | None
    from_field: str | None
    to_field: str | None
    from_schema: str = ""
    to_schema: str = ""
    from_required: bool = False
    to_required: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class OpMatch:
    """A FROM operation and what TO offers for it."""

    step: str
    from_op: dict                     # {operation, method, path}
    to_ops: list[dict]                # [{operation, method, path, host, family, same_route, how}]
    note: str = ""                    # why there is none, or how TO serves the step without an operation
    media_types: dict = field(default_factory=dict)   # {from: [...], to: [...], missing: [...]}
    fields: list[FieldMap] = field(default_factory=list)


@dataclass
class Comparison:
    """Everything about one TO provider (see the module docstring)."""

    id: str
    display_name: str
    families: list[str]
    verdict: str
    base_url: str | None
    changes: list[Change]
    operations: list[OpMatch]
    statuses: list[dict]
    errors: dict
    delivery: dict
    auth: dict
    ids: dict
    price: dict
    notes: list[str] = field(default_factory=list)


@dataclass
class CompareReport:
    """The whole report: the FROM side and one :class:`Comparison` per TO, in the order given."""

    from_side: dict
    to: list[Comparison]


# -- facts of one contract -----------------------------------------------------------------------------------
def _family(contract: specs.Contract, op: specs.Operation) -> str:
    return contract.host(op.host)["family"]


def _kinds(op: specs.Operation) -> set[str]:
    if isinstance(op.kind, dict):
        return set((op.kind.get("map") or {}).values()) | ({op.kind["default"]} if op.kind.get("default") else set())
    return {op.kind} if op.kind else {"generate"}


def _caps(contract: specs.Contract, op: specs.Operation) -> frozenset[str]:
    """The steps an operation serves: its job kinds when it creates a job, else what its role gives."""
    if op.role in CREATING:
        return frozenset(_kinds(op))
    return TABLE[_family(contract, op)].roles.get(op.role, frozenset())


def _step(caps: frozenset[str]) -> str:
    return next((s for s in STEPS if s in caps), "other")


def _full_path(contract: specs.Contract, op: specs.Operation) -> str:
    return urlsplit(contract.host(op.host)["base_url"]).path.rstrip("/") + op.path


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _call(op: specs.Operation) -> str:
    return f"{op.method} {op.path}"


def _op_ref(contract: specs.Contract, op: specs.Operation) -> dict:
    return {"operation": op.operation_id, "method": op.method, "path": op.path, "host": op.host,
            "family": _family(contract, op)}


def _merged(doc: dict, node: Any, depth: int = 0) -> dict:
    """A schema with ``$ref`` followed and ``allOf`` merged (properties, required); ``{}`` if none."""
    node = deref(doc, node, missing={})
    if not isinstance(node, dict) or depth > 12:
        return {}
    out = {k: v for k, v in node.items() if k != "allOf"}
    out["properties"] = dict(node.get("properties") or {})
    out["required"] = list(node.get("required") or [])
    for sub in node.get("allOf") or []:
        m = _merged(doc, sub, depth + 1)
        for k, v in m.get("properties", {}).items():
            out["properties"].setdefault(k, v)
        out["required"] += [r for r in m.get("required", []) if r not in out["required"]]
    return out


def _shape(doc: dict, node: Any, depth: int = 0) -> tuple[set[str] | None, list | None]:
    """``(types, enum)`` of a schema: types None when open; enum None when any value of the types is allowed.
    anyOf/oneOf branches are united (a branch without an enum opens the enum)."""
    node = deref(doc, node, missing={})
    if not isinstance(node, dict) or depth > 12:
        return None, None
    t = node.get("type")
    types = {t} if isinstance(t, str) else set(t) if isinstance(t, list) else None
    enum = list(node["enum"]) if isinstance(node.get("enum"), list) else (
        [node["const"]] if "const" in node else None)
    branches = [b for kw in ("anyOf", "oneOf") for b in (node.get(kw) or [])]
    if branches:
        shapes = [_shape(doc, b, depth + 1) for b in branches]
        if types is None and all(s[0] is not None for s in shapes):
            types = set().union(*(s[0] for s in shapes))
        if enum is None and shapes and all(s[1] is not None for s in shapes):
            enum = [v for s in shapes for v in s[1]]
    if types is None and enum is not None:
        types = {_json_type(v) for v in enum}
    return types, enum


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    return {float: "number", str: "string", type(None): "null", list: "array", dict: "object"}.get(type(v), "any")


def _shape_text(shape: tuple[set[str] | None, list | None]) -> str:
    types, enum = shape
    text = "|".join(sorted(types - {"null"})) if types else "any"
    if enum is not None:
        text += " " + "|".join(str(v) for v in enum)
    return text


def _request(contract: specs.Contract, op: specs.Operation) -> tuple[list[str], dict[str, Any], set[str]]:
    """``(media types, {field: schema}, required)`` of an operation's request body (JSON preferred)."""
    doc = contract.openapi
    body = deref(doc, op.definition.get("requestBody"), missing={}) or {}
    content = body.get("content") or {}
    types = list(content)
    if not types:
        return [], {}, set()
    ct = "application/json" if "application/json" in content else types[0]
    schema = _merged(doc, (content[ct] or {}).get("schema"))
    return types, schema.get("properties", {}), set(schema.get("required", []))


def _params(contract: specs.Contract, op: specs.Operation, fields: dict[str, Any]) -> dict[str, tuple[str, dict]]:
    """Neutral parameter -> (where, rule) for the fields this operation's body really has; ``source`` from
    ``x-source`` (``path {name}`` or a body pointer) when the operation can remix."""
    out: dict[str, tuple[str, dict]] = {}
    for name, rule in contract.params_rules().items():
        toks = tokens(str(rule.get("pointer", "")))
        if toks and toks[0] in fields:
            out[name] = (".".join(toks), rule)
    src = op.source or {}
    if src and "remix" in _kinds(op):
        if src.get("in") == "path":
            out["source"] = (f"path {{{src.get('name')}}}", {})
        elif src.get("in") == "body":
            toks = tokens(str(src.get("pointer", "")))
            if toks and toks[0] in fields:
                out["source"] = (".".join(toks), {"pointer": src.get("pointer")})
    return out


def _field_schema(contract: specs.Contract, fields: dict[str, Any], where: str) -> tuple[set[str] | None, list | None]:
    if where.startswith("path "):
        return {"string"}, None
    node: Any = {"properties": fields}
    for t in where.split("."):
        node = _merged(contract.openapi, node).get("properties", {}).get(t, {})
    return _shape(contract.openapi, node)


def delivery(contract: specs.Contract) -> dict:
    """How a provider hands out a finished video: ``{"kinds": [...], "where": [{operation, kind, media_types |
    pointer}]}``, from the operations that give a result (and the blocking calls of a ``sync`` host)."""
    doc = contract.openapi
    where: list[dict] = []
    for op in contract.operations():
        fam = TABLE[_family(contract, op)]
        gives = _caps(contract, op) & {"result", "download"} and op.role not in CREATING
        blocking = op.role in CREATING and "result" in fam.capabilities and not fam.roles_giving("result")
        if not (gives or blocking):
            continue
        responses = op.definition.get("responses") or {}
        ok = next((responses[k] for k in sorted(responses, key=str) if str(k).startswith("2")), None)
        content = (deref(doc, ok, missing={}) or {}).get("content") or {}
        binary = [t for t in content if "json" not in t]
        if binary:
            where.append({"operation": op.operation_id, "kind": "bytes", "media_types": binary})
            continue
        for mt in content.values():
            for ptr, kind in _url_objects(doc, (mt or {}).get("schema"), ""):
                where.append({"operation": op.operation_id, "kind": kind, "pointer": ptr or "/"})
    kinds = sorted({w["kind"] for w in where}, key=("bytes", "link", "file").index)
    return {"kinds": kinds, "where": where}


def _url_objects(doc: dict, node: Any, ptr: str, depth: int = 0) -> list[tuple[str, str]]:
    node = _merged(doc, node)
    if not node or depth > 8:
        return []
    props = node.get("properties") or {}
    out: list[tuple[str, str]] = []
    if "url" in props:
        out.append((ptr, "file" if _FILE_KEYS & set(props) else "link"))
    for k, v in props.items():
        out += _url_objects(doc, v, f"{ptr}/{k}", depth + 1)
    if isinstance(node.get("items"), dict):
        out += _url_objects(doc, node["items"], f"{ptr}/0", depth + 1)
    for kw in ("anyOf", "oneOf"):
        for b in node.get(kw) or []:
            out += [o for o in _url_objects(doc, b, ptr, depth + 1) if o not in out]
    return out


def _delivery_text(d: dict) -> str:
    if not d["where"]:
        return "none declared"
    parts = []
    for kind in d["kinds"]:
        ws = [w for w in d["where"] if w["kind"] == kind]
        ops = sorted({w["operation"] for w in ws})
        if kind == "bytes":
            types = sorted({t for w in ws for t in w["media_types"]})
            parts.append(f"streamed bytes ({', '.join(types)}) from {', '.join(ops)}")
        else:
            ptrs = sorted({w["pointer"] for w in ws})
            name = "file object" if kind == "file" else "JSON link"
            parts.append(f"{name} at {', '.join(ptrs)} of {', '.join(ops)}")
    return "; ".join(parts)


def _skeleton(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _skeleton(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_skeleton(value[0])] if value else []
    return None


def _skeleton_text(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(k if v is None else f"{k}: {_skeleton_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + (_skeleton_text(value[0]) if value else "") + "]"
    return "?"


def errors(contract: specs.Contract) -> dict:
    """Error kinds (provider.yaml ``errors.kinds``) with their status and envelope skeleton, the default
    envelope, and the component schemas the contract's 4xx/5xx answers use."""
    kinds = {}
    for kind, spec in (contract.provider.get("errors") or {}).get("kinds", {}).items():
        try:
            _, body = contract.error_body(kind)
        except specs.SpecError:
            continue
        kinds[kind] = {"status": spec.get("status"), "envelope": _skeleton_text(_skeleton(body)),
                       "skeleton": _skeleton(body)}
    doc = contract.openapi
    schemas: set[str] = set()
    for op in contract.operations():
        for status, resp in (op.definition.get("responses") or {}).items():
            if str(status)[:1] not in ("4", "5"):
                continue
            for mt in ((deref(doc, resp, missing={}) or {}).get("content") or {}).values():
                ref = ((mt or {}).get("schema") or {}).get("$ref", "")
                if ref.startswith("#/components/schemas/"):
                    schemas.add(ref.rsplit("/", 1)[-1])
    template = (contract.provider.get("errors") or {}).get("template")
    return {"envelope": _skeleton_text(_skeleton(template)), "kinds": kinds, "schemas": sorted(schemas)}


def _ids_text(ids: dict) -> str:
    prefix = ids.get("prefix") or ""
    return f"{prefix + ' + ' if prefix else ''}{ids.get('format', '?')}"


def _price(contract: specs.Contract) -> dict:
    p = contract.provider.get("pricing") or {}
    usd = p.get("usd_per_second")
    return {"usd_per_second": usd, "source": p.get("source"),
            "text": f"${usd:.3f}/s ({p.get('source')})" if usd is not None else "not documented"}


def _side(contract: specs.Contract) -> dict:
    auth = contract.auth
    return {"id": contract.id, "display_name": contract.provider.get("display_name", contract.id),
            "family": contract.family, "base_url": contract.hosts[0]["base_url"],
            "sdk": contract.provider.get("sdk"),
            "auth": {"header": auth.get("header"), "schemes": auth.get("schemes"), "preferred": auth.get("preferred"),
                     "env": auth.get("env")},
            "ids": {k: v for k, v in (contract.provider.get("ids") or {}).items() if k != "note"},
            "statuses": [{"value": s["value"], "neutral": s["neutral"]} for s in contract.provider["statuses"]],
            "delivery": delivery(contract), "errors": errors(contract), "price": _price(contract)}


# -- comparing --------------------------------------------------------------------------------------------
def _candidates(to: specs.Contract, caps: frozenset[str]) -> tuple[list[tuple[specs.Operation, str]], str]:
    """TO operations serving any of ``caps``, or how TO serves the step without one (note)."""
    found = [(op, "") for op in to.operations() if _caps(to, op) & caps]
    if found:
        return found, ""
    families = {h["family"] for h in to.hosts}
    if caps & {"result", "download"}:
        blocking = [(op, "read the result from the blocking answer") for op in to.operations()
                    if op.role in CREATING and not TABLE[_family(to, op)].roles_giving("result")
                    and "result" in TABLE[_family(to, op)].capabilities]
        if blocking:
            return blocking, ""
    if "poll" in caps and not any("poll" in TABLE[f].capabilities for f in families):
        return [], "none needed: TO's call blocks until the video is ready (sync)"
    return [], "no counterpart"


def _map_fields(frm: specs.Contract, fop: specs.Operation, to: specs.Contract, top: specs.Operation) -> list[FieldMap]:
    """The request fields of a FROM creating operation mapped onto a TO one: by meaning first (neutral
    parameters, :func:`_params`), then by name; then what is left on either side."""
    _, ffields, freq = _request(frm, fop)
    _, tfields, treq = _request(to, top)
    fp, tp = _params(frm, fop, ffields), _params(to, top, tfields)
    used_f: set[str] = set()
    used_t: set[str] = set()
    rows: list[FieldMap] = []
    order = [p for p in _PARAM_ORDER if p in fp] + sorted(p for p in fp if p not in _PARAM_ORDER)
    for meaning in order:
        fwhere, frule = fp[meaning]
        row = FieldMap(meaning, fwhere, None, _shape_text(_field_schema(frm, ffields, fwhere)),
                       from_required=fwhere.startswith("path ") or fwhere.split(".")[0] in freq)
        used_f.add(fwhere.split(".")[0])
        if meaning in tp:
            twhere, trule = tp[meaning]
            used_t.add(twhere.split(".")[0])
            row.to_field = twhere
            row.to_schema = _shape_text(_field_schema(to, tfields, twhere))
            row.to_required = twhere.startswith("path ") or twhere.split(".")[0] in treq
            row.notes = _value_notes(_field_schema(frm, ffields, fwhere), _field_schema(to, tfields, twhere),
                                     frule, trule, top, twhere)
        rows.append(row)
    for name in ffields:
        if name in used_f:
            continue
        row = FieldMap(None, name, None, _shape_text(_shape(frm.openapi, ffields[name])), from_required=name in freq)
        if name in tfields and name not in used_t:
            used_t.add(name)
            row.to_field, row.to_schema = name, _shape_text(_shape(to.openapi, tfields[name]))
            row.to_required = name in treq
            row.notes = _value_notes(_shape(frm.openapi, ffields[name]), _shape(to.openapi, tfields[name]), {}, {},
                                     top, name)
        rows.append(row)
    for name in tfields:
        if name not in used_t:
            rows.append(FieldMap(None, None, name, "", _shape_text(_shape(to.openapi, tfields[name])),
                                 to_required=name in treq, notes=_kind_note(top, name)))
    if "source" in tp and "source" not in fp:  # TO takes a source FROM's operation has no place for
        for r in rows:
            if r.to_field == tp["source"][0] and r.meaning is None:
                r.meaning = "source"
    return rows


def _kind_note(top: specs.Operation, field_name: str) -> list[str]:
    k = top.kind
    if isinstance(k, dict) and tokens(str(k.get("pointer", "")))[:1] == [field_name]:
        return ["decides the job kind: " + ", ".join(f"{v} -> {kind}" for v, kind in (k.get("map") or {}).items())]
    return []


def _value_notes(fs: tuple, ts: tuple, frule: dict, trule: dict, top: specs.Operation, twhere: str) -> list[str]:
    """Differences in the values of one mapped field: value maps of provider.yaml ``mock.params`` (a wire value
    -> the neutral value, e.g. ``16:9`` -> ``1280x720``) translated from FROM's wire values to TO's, then the
    types and enums."""
    notes: list[str] = []
    (ftypes, fenum), (ttypes, tenum) = fs, ts
    fmap = frule.get("map") if isinstance(frule.get("map"), dict) else None
    tmap = trule.get("map") if isinstance(trule.get("map"), dict) else None
    if fmap or tmap:
        pairs, lost = [], []
        for fv in (list(fmap) if fmap else list(fenum or [])):
            neutral = str(fmap[fv]) if fmap else str(fv)
            tvs = [str(tv) for tv, tn in tmap.items() if str(tn) == neutral] if tmap else [neutral]
            if not tvs or (tenum is not None and not tmap and neutral not in map(str, tenum)):
                lost.append(str(fv))
            elif tvs != [str(fv)]:
                pairs.append(f"{fv} -> {'|'.join(tvs)}")
        if pairs:
            notes.append("values map " + ", ".join(pairs))
        if lost:
            notes.append("no counterpart for " + "|".join(lost))
        return notes + _kind_note(top, twhere)
    if ftypes and ttypes and not (ftypes - {"null"}) <= ttypes:
        notes.append(f"type {'|'.join(sorted(ftypes - {'null'}))} -> {'|'.join(sorted(ttypes - {'null'}))}")
    if tenum is not None and fenum is not None:
        lost = [v for v in fenum if v not in tenum]
        if lost:
            notes.append("values not accepted: " + "|".join(map(str, lost)))
    elif tenum is not None and fenum is None:
        notes.append("TO accepts only " + "|".join(map(str, tenum)))
    return notes + _kind_note(top, twhere)


def _choose(frm: specs.Contract, fop: specs.Operation, to: specs.Contract,
            cands: list[tuple[specs.Operation, str]]) -> tuple[specs.Operation, str, bool, str | None] | None:
    """The TO operation a FROM operation moves to: ``(op, how, same_route, base_url)``; one on the same route
    (same family, method and relative path) first, then one of the same family, then the first."""
    if not cands:
        return None
    ffam = _family(frm, fop)
    rel = _norm(fop.path)
    best = None
    for op, how in cands:
        full = _norm(_full_path(to, op))
        same = _family(to, op) == ffam and op.method == fop.method and full.endswith(rel)
        base = None
        if same:
            b = urlsplit(to.host(op.host)["base_url"])
            base = f"{b.scheme}://{b.netloc}{full[: len(full) - len(rel)]}"
        score = (2 if same else 1 if _family(to, op) == ffam else 0)
        if best is None or score > best[0]:
            best = (score, op, how, same, base)
    return best[1], best[2], best[3], best[4]


def compare_one(frm: specs.Contract, to: specs.Contract) -> Comparison:
    """Compare one TO contract with FROM (see the module docstring for what and how)."""
    changes: list[Change] = []
    ops: list[OpMatch] = []
    bases: dict[str, set[str]] = {}  # FROM host -> the TO base URLs its same-route operations need
    all_same = True

    def change(area: str, text: str) -> None:
        changes.append(Change(RANKS[area], area, text))

    for fop in frm.operations():
        caps = _caps(frm, fop)
        step = _step(caps)
        cands, note = _candidates(to, caps)
        fref = {"operation": fop.operation_id, "method": fop.method, "path": fop.path}
        chosen = _choose(frm, fop, to, cands)
        match = OpMatch(step, fref, [], note)
        for op, how in cands:
            if chosen is not None and chosen[2] and op is not chosen[0]:
                continue  # on the same route: the alternatives are not needed
            ref = _op_ref(to, op)
            ref["how"] = how
            ref["same_route"] = chosen is not None and op is chosen[0] and chosen[2]
            match.to_ops.append(ref)
        ops.append(match)
        label = f"{_call(fop)} ({fop.operation_id})"
        if chosen is None:
            all_same = False
            if note.startswith("none needed"):
                change("protocol", f"{label}: {note}; drop the polling")
            else:
                change("operation", f"{label}: no {step} operation")
            continue
        top, how, same, base = chosen
        if same:
            bases.setdefault(fop.host, set()).add(base)
        all_same = all_same and same
        target = f"{top.method} {top.path} ({top.operation_id}, {_family(to, top)})"
        if not same:
            change("protocol", f"{label}: {how} of {target}" if how else f"{label} -> {target}")
        if fop.definition.get("requestBody") is not None and (fop.role in CREATING or top.role not in CREATING):
            ftypes, _, _ = _request(frm, fop)
            ttypes, _, _ = _request(to, top)
            missing = [t for t in ftypes if t not in ttypes]
            match.media_types = {"from": ftypes, "to": ttypes, "missing": missing}
            parts = [f"accepts only {', '.join(ttypes)} (not {', '.join(missing)})"] if missing and ttypes else []
            if fop.role in CREATING and top.role in CREATING:
                match.fields = _map_fields(frm, fop, to, top)
                parts += _field_changes(match.fields)
            if parts:
                change("request", f"{label} -> {top.operation_id}: {'; '.join(parts)}")

    # auth
    fa, ta = frm.auth, to.auth
    auth = {"from": dict(fa), "to": dict(ta)}
    if fa.get("header") != ta.get("header") or fa.get("preferred") not in (ta.get("schemes") or []):
        change("auth", f"send {ta.get('header')}: {ta.get('preferred')} <key> (FROM sends {fa.get('header')}: "
                       f"{fa.get('preferred')} <key>)")
    # delivery
    fd, td = delivery(frm), delivery(to)
    if fd["kinds"] != td["kinds"]:
        change("delivery", f"assets come as {_delivery_text(td)}, not {_delivery_text(fd)}")
    # statuses
    statuses = []
    polled = any("poll" in _caps(to, op) for op in to.operations())
    st_diff: list[str] = []
    for neutral in NEUTRAL_STATES:
        fv = [s["value"] for s in frm.provider["statuses"] if s["neutral"] == neutral]
        tv = [s["value"] for s in to.provider["statuses"] if s["neutral"] == neutral]
        same = sorted(fv) == sorted(tv)
        statuses.append({"neutral": neutral, "from": fv, "to": tv, "same": same})
        if same or not polled or not tv:
            continue
        if fv:
            st_diff.append(f"{'|'.join(fv)} -> {'|'.join(tv)}")
        else:
            st_diff.append(f"{neutral} jobs are {'|'.join(tv)} (FROM never reports {neutral})")
    if st_diff:
        change("status", "status words differ: " + "; ".join(st_diff))
    # errors
    fe, te = errors(frm), errors(to)
    err_rows = []
    env_diff, status_diff = [], []
    for kind in sorted(set(fe["kinds"]) | set(te["kinds"])):
        f_k, t_k = fe["kinds"].get(kind), te["kinds"].get(kind)
        err_rows.append({"kind": kind, "from_status": f_k and f_k["status"], "to_status": t_k and t_k["status"],
                         "from_envelope": f_k and f_k["envelope"], "to_envelope": t_k and t_k["envelope"]})
        if f_k and t_k and f_k["status"] is not None:
            if f_k["skeleton"] != t_k["skeleton"]:  # the keys, in any order
                env_diff.append(kind)
            if f_k["status"] != t_k["status"]:
                status_diff.append(f"{kind} {t_k['status']} (FROM {f_k['status']})")
    if env_diff:
        common = [k for k in fe["kinds"] if k in te["kinds"] and fe["kinds"][k]["status"] is not None]
        which = "every error" if set(env_diff) == set(common) else ", ".join(env_diff)
        change("errors", f"error envelope {te['envelope']}, not {fe['envelope']} ({which})")
    if status_diff:
        change("errors", "error statuses differ: " + ", ".join(status_diff))
    errs = {"from": fe, "to": te, "kinds": err_rows}
    # ids
    fi, ti = frm.provider.get("ids") or {}, to.provider.get("ids") or {}
    if (fi.get("prefix"), fi.get("format")) != (ti.get("prefix"), ti.get("format")):
        change("ids", f"ids are {_ids_text(ti)}, not {_ids_text(fi)}")
    # verdict
    primary = bases.get(frm.hosts[0]["id"], set())
    base_url = next(iter(primary)) if len(primary) == 1 else None
    for host_id, urls in bases.items():
        if len(urls) > 1:
            change("protocol", f"the operations of FROM's {host_id} host need several base URLs: {', '.join(sorted(urls))}")
    changes.sort(key=lambda c: c.rank)
    if changes:
        verdict = CODE_CHANGES
    elif all(urls == {frm.host(h)["base_url"]} for h, urls in bases.items()) and fa.get("env") == ta.get("env"):
        verdict = UNCHANGED
    else:
        verdict = BASE_URL_AND_KEY
    notes = []
    fams = sorted({h["family"] for h in to.hosts}, key=list(TABLE).index)
    if "sync" in fams:
        notes.append("synchronous: one call blocks until the video is ready" + (
            f" ({', '.join(h['base_url'] for h in to.hosts if h['family'] == 'sync')})" if len(fams) > 1 else ""))
    kinds = set().union(*(_kinds(op) for op in to.operations() if op.role in CREATING)) if to.operations() else set()
    if kinds == {"remix"}:
        notes.append("remix only: no text-to-video operation")
    return Comparison(
        id=to.id, display_name=to.provider.get("display_name", to.id), families=fams, verdict=verdict,
        base_url=base_url, changes=changes, operations=ops, statuses=statuses, errors=errs, delivery={
            "from": fd, "to": td, "from_text": _delivery_text(fd), "to_text": _delivery_text(td)},
        auth=auth, ids={"from": fi, "to": ti, "same": (fi.get("prefix"), fi.get("format")) == (
            ti.get("prefix"), ti.get("format"))}, price=_price(to), notes=notes)


def _field_changes(rows: list[FieldMap]) -> list[str]:
    """The request-field differences that need code, one phrase each (see :data:`CODE_CHANGES`)."""
    out, lost = [], []
    for r in rows:
        if r.from_field and not r.to_field:
            lost.append(r.from_field)
        elif r.to_field and not r.from_field:
            if r.to_required:
                out.append(f"requires {r.to_field}" + (f" ({r.notes[0]})" if r.notes else ""))
        else:
            notes = [n for n in r.notes if not n.startswith("decides")]
            moved = r.from_field != r.to_field and not (r.from_field.startswith("path ")
                                                        and r.to_field.startswith("path "))
            if moved or notes:
                out.append((f"{r.from_field} -> {r.to_field}" if moved else r.to_field)
                           + (f" ({'; '.join(notes)})" if notes else ""))
            if r.to_required and not r.from_required:
                out.append(f"{r.to_field} is required" + "".join(
                    f" ({n})" for n in r.notes if n.startswith("decides")))
    if lost:
        out.append(f"no counterpart for {', '.join(lost)}")
    return out


def compare(from_id: str, to_ids: list[str]) -> CompareReport:
    """The migration report from provider ``from_id`` to each of ``to_ids`` (in that order).

    Raises:
        CompareError: an unknown provider id (one line naming the known ones).
    """
    try:
        frm = specs.load(from_id)
        tos = [specs.load(t) for t in to_ids]
    except specs.SpecError as exc:
        raise CompareError(str(exc)) from None
    return CompareReport(_side(frm), [compare_one(frm, to) for to in tos])


# -- rendering ---------------------------------------------------------------------------------------------
def to_json(report: CompareReport) -> dict:
    """The report as JSON-ready data: ``{"report": "compare", "version", "from": {...}, "to": [{id, verdict,
    verdict_code, base_url, changes: [{rank, area, text}], operations: [...], statuses, errors, delivery, auth,
    ids, price, notes}]}``."""
    out = {"report": "compare", "version": REPORT_VERSION, "verdicts": list(VERDICT_CODES), "from": report.from_side,
           "to": []}
    for c in report.to:
        d = asdict(c)
        d["verdict_code"] = VERDICT_CODES[c.verdict]
        out["to"].append(d)
    return out


def _statuses_text(c: Comparison | None, side: dict | None) -> str:
    if c is None:
        by: dict[str, list[str]] = {}
        for s in side["statuses"]:
            by.setdefault(s["neutral"], []).append(s["value"])
        return ", ".join(f"{n}: {'|'.join(v)}" for n, v in by.items())
    return ", ".join(f"{s['neutral']}: {'|'.join(s['to']) or '-'}" for s in c.statuses if s["to"])


def _fields_text(m: OpMatch) -> str:
    parts = []
    for r in m.fields:
        if r.from_field and r.to_field:
            arrow = r.from_field if r.from_field == r.to_field else f"{r.from_field} -> {r.to_field}"
            parts.append(arrow + (f" ({'; '.join(r.notes)})" if r.notes else ""))
        elif r.from_field:
            parts.append(f"{r.from_field}: no counterpart")
        else:
            parts.append(f"+{r.to_field}{' (required)' if r.to_required else ''}"
                         + (f" ({'; '.join(r.notes)})" if r.notes else ""))
    if m.media_types.get("missing") and m.media_types.get("to"):
        parts.append("not accepted: " + ", ".join(m.media_types["missing"]))
    return "; ".join(parts)


def _to_text(m: OpMatch) -> str:
    if not m.to_ops:
        return m.note or "none"
    out = []
    for t in m.to_ops:
        s = f"{t['method']} {t['path']} ({t['operation']}"
        s += f", {t['family']}" if not t["same_route"] else ", same route"
        s += f"; {t['how']})" if t["how"] else ")"
        out.append(s)
    return "; ".join(out)


def _facts(report: CompareReport) -> list[tuple[str, list[str]]]:
    f = report.from_side
    rows: list[tuple[str, list[str]]] = []
    cs = report.to

    def auth_text(a: dict) -> str:
        return f"{a.get('header')}: {a.get('preferred')} (accepts {'|'.join(a.get('schemes') or [])}); ${a.get('env')}"

    rows.append(("family", [f["family"]] + [", ".join(c.families) for c in cs]))
    rows.append(("auth, key", [auth_text(f["auth"])] + [auth_text(c.auth["to"]) for c in cs]))
    rows.append(("ids", [_ids_text(f["ids"])] + [_ids_text(c.ids["to"]) for c in cs]))
    rows.append(("statuses", [_statuses_text(None, f)] + [_statuses_text(c, None) for c in cs]))
    def envelope(e: dict) -> str:
        return e["envelope"] + (f" ({', '.join(e['schemas'])})" if e["schemas"] else "")

    rows.append(("error envelope", [envelope(f["errors"])] + [envelope(c.errors["to"]) for c in cs]))

    def err_statuses(e: dict) -> str:
        return ", ".join(f"{k} {v['status']}" for k, v in e["kinds"].items() if v["status"] is not None)

    rows.append(("error statuses", [err_statuses(f["errors"])] + [err_statuses(c.errors["to"]) for c in cs]))
    rows.append(("assets", [_delivery_text(f["delivery"])] + [c.delivery["to_text"] for c in cs]))
    rows.append(("price per second", [f["price"]["text"]] + [c.price["text"] for c in cs]))
    return rows


def render_markdown(report: CompareReport) -> str:
    """The report as GitHub Markdown: the verdicts, the FROM operations against each TO, the facts side by side,
    then each TO's changes, most important first (one ``###`` section per TO, so that the report can sit inside
    a document's ``##`` section). Request-field mappings are in the changes (and in full in ``--format json``)."""
    f = report.from_side
    esc = _md
    sdk = f.get("sdk")
    lines = [f"**Migration report from {f['display_name']} (`{f['id']}`)**, computed from the contracts only "
             f"(`specs/`). FROM SDK: {sdk['name'] + ' ' + str(sdk['version']) if sdk else 'none (raw HTTP)'}, base "
             f"URL `{f['base_url']}`. Verdicts are defined in `conformance/compare.py`.", ""]
    lines += ["| TO | verdict | base URL for the FROM SDK | changes by area (most important first) |",
              "|---|---|---|---|"]
    for c in report.to:
        lines.append(f"| `{c.id}` | **{c.verdict}** | {_base_text(c)} | {esc(_areas(c)) or '-'} |")
    cols = [f"`{c.id}`" for c in report.to]
    lines += ["", f"| `{f['id']}` operation (step) | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for i, m in enumerate(report.to[0].operations if report.to else []):
        cells = [esc(_to_cell(c.operations[i])) for c in report.to]
        lines.append(f"| {m.from_op['method']} {esc(m.from_op['path'])} ({m.step}) | " + " | ".join(cells) + " |")
    lines += ["", "`=`: on the same route (same protocol family, method and path under the TO base URL); otherwise "
              "the TO operation's protocol family is named."]
    lines += ["", "| | " + " | ".join([f"`{f['id']}` (FROM)"] + cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for name, values in _facts(report):
        lines.append(f"| {name} | " + " | ".join(esc(v) for v in values) + " |")
    for c in report.to:
        lines += ["", f"### `{c.id}`: {c.verdict}", ""]
        if c.notes:
            lines += [f"{'; '.join(c.notes).capitalize()}.", ""]
        if c.changes:
            lines += [f"{i}. [{ch.area}] {esc(ch.text)}" for i, ch in enumerate(c.changes, 1)]
        else:
            lines.append("No change: " + ("none at all." if c.verdict == UNCHANGED else
                                          f"point the client at `{c.base_url}` with a {c.id} key."))
    return "\n".join(lines) + "\n"


def _to_cell(m: OpMatch) -> str:
    """One matrix cell: the TO operation(s) for a FROM operation, ``=`` when on the same route."""
    if not m.to_ops:
        return m.note or "none"
    out = []
    for t in m.to_ops:
        mark = "= " if t["same_route"] else ""
        out.append(f"{mark}{t['method']} {t['path']} ({t['family']}{'; ' + t['how'] if t['how'] else ''})")
    return "; ".join(out)


def _areas(c: Comparison) -> str:
    """``operation 2 (list, delete), protocol 5, request 3, ...``: the changes counted per area."""
    parts = []
    for area in RANKS:
        got = [ch for ch in c.changes if ch.area == area]
        if not got:
            continue
        text = f"{area} {len(got)}"
        if area == "operation":
            text += " (" + ", ".join(ch.text.split(": no ")[-1].removesuffix(" operation") for ch in got) + ")"
        parts.append(text)
    return ", ".join(parts)


def _base_text(c: Comparison) -> str:
    if not c.base_url:
        return "-"
    same = sum(1 for m in c.operations if any(t["same_route"] for t in m.to_ops))
    return f"`{c.base_url}`" + ("" if same == len(c.operations) else f" ({same} of {len(c.operations)} operations)")


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_text(report: CompareReport, width: int | None = None) -> str:
    """The report as rich tables (what ``--format text`` prints): verdicts, facts side by side, then per TO its
    changes and its operations."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=width or 160, force_terminal=False, color_system=None)
    f = report.from_side
    sdk = f.get("sdk")
    t = Table(title=f"Migration from {f['id']} ({f['display_name']}; SDK "
                    f"{sdk['name'] + ' ' + str(sdk['version']) if sdk else 'none'})", title_justify="left")
    for col in ("TO", "verdict", "base URL for the FROM SDK", "changes by area (most important first)"):
        t.add_column(col, no_wrap=col == "TO")
    for c in report.to:
        t.add_row(c.id, c.verdict, escape(_base_text(c).replace("`", "")), escape(_areas(c)) or "-")
    console.print(t)
    facts = Table(title="Facts from the contracts", title_justify="left")
    facts.add_column("")
    facts.add_column(f"{f['id']} (FROM)")
    for c in report.to:
        facts.add_column(c.id)
    for name, values in _facts(report):
        facts.add_row(name, *(escape(v) for v in values))
    console.print(facts)
    for c in report.to:
        head = f"{f['id']} -> {c.id}: {c.verdict}" + (f" ({'; '.join(c.notes)})" if c.notes else "")
        if c.changes:
            ct = Table(title=escape(head), title_justify="left")
            ct.add_column("#", justify="right")
            ct.add_column("area")
            ct.add_column("change")
            for i, ch in enumerate(c.changes, 1):
                ct.add_row(str(i), ch.area, escape(ch.text))
            console.print(ct)
        else:
            console.print(escape(head))
        ot = Table(title=f"{f['id']} operations on {c.id}", title_justify="left")
        ot.add_column(f"{f['id']} operation", no_wrap=True)
        ot.add_column("step")
        ot.add_column(c.id)
        ot.add_column("request fields")
        for m in c.operations:
            ot.add_row(escape(f"{m.from_op['method']} {m.from_op['path']}"), m.step, escape(_to_text(m)),
                       escape(_fields_text(m)) or "-")
        console.print(ot)
    return buf.getvalue()


def render(report: CompareReport, fmt: str) -> str:
    """``text``, ``markdown`` or ``json`` (indented)."""
    if fmt == "json":
        return json.dumps(to_json(report), indent=2, default=str) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report, width=None if not sys.stdout.isatty() else os.get_terminal_size().columns)


# -- command line ------------------------------------------------------------------------------------------
def add_subcommand(subparsers: Any) -> None:
    """Register ``compare`` on the ``conformance`` subparsers (sets ``args.command = "compare"``)."""
    p = subparsers.add_parser(
        "compare", help="migration report from one provider's contract to others (no network)",
        description="For a client of provider FROM, compare each TO provider's contract: operations by role and "
        "job kind, request fields, statuses, error envelopes, asset delivery, auth, ids and price, with a verdict "
        f"per TO ({UNCHANGED!r}, {BASE_URL_AND_KEY!r} or {CODE_CHANGES!r}).")
    p.add_argument("from_provider", metavar="FROM", help="provider id the client is written for (e.g. openai)")
    p.add_argument("to_providers", metavar="TO", nargs="+", help="provider ids to compare with")
    p.add_argument("--format", choices=FORMATS, default="text", help="report format (default text)")
    p.add_argument("--output", metavar="PATH", help="write the report here instead of stdout")
    p.add_argument("--runtime", action="store_true",
                   help="also run FROM's official SDK flow (create, poll, remix, download, extend, character) against "
                   "an embedded mock of FROM and each TO and report which steps work and how each failing one fails "
                   "(conformance/sdk_proof.py; 127.0.0.1 only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the embedded mock of --runtime (default 0)")


def run(args: argparse.Namespace) -> int:
    """Run ``conformance compare`` from parsed arguments; returns the exit code (0, or 2 with one line on
    stderr for a usage error)."""
    try:
        if args.output:
            _check_writable(args.output)
        report = compare(args.from_provider, list(args.to_providers))
        text = render(report, args.format)
        if getattr(args, "runtime", False):
            text = _with_runtime(report, text, args)
        if args.output:
            try:
                with open(args.output, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                raise CompareError(f"--output {args.output}: cannot write: {exc.strerror or exc}") from None
            sys.stderr.write(f"conformance compare: wrote {args.output}\n")
        else:
            sys.stdout.write(text)
    except CompareError as exc:
        sys.stderr.write(f"conformance compare: {exc}\n")
        return 2
    return 0


def _with_runtime(report: CompareReport, text: str, args: argparse.Namespace) -> str:
    """``text`` followed by the runtime proof (:mod:`conformance.sdk_proof`) in the same format (JSON: the
    report's ``runtime`` key). Raises CompareError when the proof cannot run."""
    from . import sdk_proof

    try:
        proof = sdk_proof.prove(args.from_provider, list(args.to_providers), seed=args.seed)
    except sdk_proof.ProofError as exc:
        raise CompareError(f"--runtime: {exc}") from None
    if args.format == "json":
        doc = to_json(report)
        doc["runtime"] = sdk_proof.to_json(proof)
        return json.dumps(doc, indent=2, default=str) + "\n"
    if args.format == "markdown":
        return text + "\n" + sdk_proof.render_markdown(proof)
    return text + "\n" + sdk_proof.render_text(proof)


def _check_writable(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CompareError(f"--output {path}: is a directory")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise CompareError(f"--output {path}: cannot create directory {parent}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK):
        raise CompareError(f"--output {path}: directory {parent} is not writable")


__all__ = ["BASE_URL_AND_KEY", "CODE_CHANGES", "UNCHANGED", "Change", "CompareError", "CompareReport",
           "Comparison", "FieldMap", "OpMatch", "add_subcommand", "compare", "compare_one", "delivery", "errors",
           "render", "render_markdown", "render_text", "run", "to_json"]
