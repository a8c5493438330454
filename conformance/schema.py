"""Small helpers over a contract's JSON Schemas: resolve ``$ref``, merge properties, build a minimal valid
instance, validate a value. Everything works on the full contract document (``Contract.openapi``) with
JSON pointers, so ``$ref`` resolves the way specs/validate.py resolves it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from specs import Contract, Operation
from specs import pointers as sp
from specs.validate import pointer, resolve_pointer

_DOC_URI = "urn:contract:doc"


def deref(doc: dict, node: Any, limit: int = 20) -> Any:
    """Follow local ``$ref`` chains; returns the first node that is not a bare reference (specs.pointers.deref;
    raises KeyError for a reference that names nothing)."""
    return sp.deref(doc, node, strict=True, max_depth=limit)


def deref_ptr(doc: dict, ptr: str) -> str:
    """The pointer of the object a pointer designates after following ``$ref`` chains."""
    return sp.deref_pointer(doc, ptr, max_depth=20)[1]


def op_pointer(op: Operation) -> tuple:
    """Path tokens of an operation object in the full document."""
    return ("paths", op.spec_path, op.method.lower())


def request_schema(contract: Contract, op: Operation, prefer: str = "application/json") -> tuple[str, str] | None:
    """``(media_type, schema_pointer)`` of an operation's request body (JSON preferred), or None."""
    doc = contract.openapi
    if "requestBody" not in op.definition:
        return None
    rb_ptr = deref_ptr(doc, pointer(*op_pointer(op), "requestBody"))
    rb = resolve_pointer(doc, rb_ptr)
    content = (rb or {}).get("content") or {}
    if not content:
        return None
    ctype = prefer if prefer in content else next((c for c in content if "json" in c), next(iter(content)))
    if "schema" not in content[ctype]:
        return None
    return ctype, rb_ptr + "/content/" + ctype.replace("~", "~0").replace("/", "~1") + "/schema"


def response_entry(contract: Contract, op: Operation, status: int) -> tuple[str | None, dict | None]:
    """``(pointer, response object)`` declared for ``status`` (exact code, then ``4XX``, then ``default``)."""
    doc = contract.openapi
    responses = op.definition.get("responses") or {}
    for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
        if key in responses:
            ptr = deref_ptr(doc, pointer(*op_pointer(op), "responses", key))
            return ptr, resolve_pointer(doc, ptr)
    return None, None


def response_marks(contract: Contract, op: Operation, status: int) -> dict[str, Any] | None:
    """What the contract says about the response ``status`` of ``op``, or None when it declares none.

    Returns ``{"key": "404", "mock_only": why|None, "assumption": chosen|None}``: ``x-mock-only`` and
    ``x-assumption`` are read on the operation's response entry and on every ``$ref``'d response component
    on the way (a component marked once marks every use).
    """
    doc = contract.openapi
    responses = op.definition.get("responses") or {}
    for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
        if key not in responses:
            continue
        out: dict[str, Any] = {"key": key, "mock_only": None, "assumption": None}
        for node in sp.ref_chain(doc, responses[key], max_depth=20):
            if not isinstance(node, dict):
                break
            if node.get("x-mock-only") and out["mock_only"] is None:
                out["mock_only"] = str(node["x-mock-only"])
            assumed = node.get("x-assumption")
            if assumed and out["assumption"] is None:
                first = assumed[0] if isinstance(assumed, list) and assumed else assumed
                out["assumption"] = str(first.get("chosen") if isinstance(first, dict) else first).strip()
        return out
    return None


def response_schema(contract: Contract, op: Operation, status: int, ctype: str = "application/json") -> str | None:
    """Schema pointer of the response declared for ``status`` and a JSON media type, or None."""
    ptr, resp = response_entry(contract, op, status)
    if not resp:
        return None
    content = resp.get("content") or {}
    for c, mt in content.items():
        if (c == ctype or ("json" in c and "json" in ctype)) and isinstance(mt, dict) and "schema" in mt:
            return ptr + "/content/" + c.replace("~", "~0").replace("/", "~1") + "/schema"
    return None


def error_schemas(contract: Contract, op: Operation) -> list[str]:
    """Schema pointers of every JSON 4xx/5xx response an operation declares (the error envelopes)."""
    out = []
    for key in (op.definition.get("responses") or {}):
        if str(key)[:1] in ("4", "5"):
            code = int(str(key)[0]) * 100 if not str(key).isdigit() else int(key)
            ptr = response_schema(contract, op, code)
            if ptr and ptr not in out:
                out.append(ptr)
    return out


@functools.lru_cache(maxsize=64)
def _validator_cached(doc_json: str):
    from openapi_schema_validator import OAS31Validator, oas31_format_checker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    doc = json.loads(doc_json)
    registry = Registry().with_resource(_DOC_URI, Resource(contents=doc, specification=DRAFT202012))
    return OAS31Validator, oas31_format_checker, registry


_DOC_KEYS: dict[int, str] = {}


def errors(doc: dict, schema_ptr: str, value: Any, limit: int = 5) -> list[str]:
    """Validation errors of ``value`` against the schema at ``schema_ptr`` (OpenAPI 3.1 dialect)."""
    key = _DOC_KEYS.get(id(doc))
    if key is None:
        key = _DOC_KEYS[id(doc)] = json.dumps(doc, sort_keys=True, default=str)
    validator_cls, fmt, registry = _validator_cached(key)
    validator = validator_cls({"$ref": _DOC_URI + schema_ptr}, registry=registry, format_checker=fmt)
    out = []
    for e in validator.iter_errors(value):
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        out.append(f"{where}: {e.message}")
        if len(out) >= limit:
            break
    return out


def properties(doc: dict, schema: Any, depth: int = 0) -> dict[str, Any]:
    """Every property a schema may declare (merged over allOf/anyOf/oneOf/if/then/else), name -> schema."""
    schema = deref(doc, schema)
    if not isinstance(schema, dict) or depth > 8:
        return {}
    out: dict[str, Any] = {}
    for k, v in (schema.get("properties") or {}).items():
        out.setdefault(k, v)
    for kw in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(kw) or []:
            for k, v in properties(doc, sub, depth + 1).items():
                out.setdefault(k, v)
    for kw in ("then", "else"):
        if isinstance(schema.get(kw), dict):
            for k, v in properties(doc, schema[kw], depth + 1).items():
                out.setdefault(k, v)
    return out


def enum_values(doc: dict, schema: Any, depth: int = 0) -> list[Any]:
    """Values a schema enumerates (``enum``/``const``, merged over anyOf/oneOf/allOf), or []."""
    schema = deref(doc, schema)
    if not isinstance(schema, dict) or depth > 8:
        return []
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    out: list[Any] = []
    for kw in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(kw) or []:
            for v in enum_values(doc, sub, depth + 1):
                if v not in out:
                    out.append(v)
    return out


def schema_at(doc: dict, schema: Any, path: list[str]) -> Any:
    """The sub-schema for a property path (``["video", "id"]``) of an object schema, or None."""
    node = schema
    for token in path:
        props = properties(doc, node)
        if token not in props:
            return None
        node = props[token]
    return deref(doc, node)


def minimal(doc: dict, schema: Any, depth: int = 0) -> Any:
    """A small instance of ``schema``: required properties only, first enum/const/default/example values,
    shortest strings. Good enough to start a request body that is then adjusted and validated."""
    schema = deref(doc, schema)
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("examples"):
        return schema["examples"][0]
    for kw in ("allOf",):
        if schema.get(kw):
            merged: dict[str, Any] = {}
            for sub in schema[kw]:
                v = minimal(doc, sub, depth + 1)
                if isinstance(v, dict):
                    merged.update(v)
            base = {k: v for k, v in schema.items() if k != kw}
            if base.get("type") == "object" or base.get("properties"):
                v = minimal(doc, base, depth + 1)
                if isinstance(v, dict):
                    merged.update(v)
            return merged
    for kw in ("oneOf", "anyOf"):
        if schema.get(kw):
            for sub in schema[kw]:
                sub_d = deref(doc, sub)
                if isinstance(sub_d, dict) and sub_d.get("type") != "null":
                    return minimal(doc, sub_d, depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), typ[0] if typ else None)
    if typ == "object" or (typ is None and ("properties" in schema or "required" in schema)):
        props = schema.get("properties") or {}
        out = {}
        for name in schema.get("required") or []:
            out[name] = minimal(doc, props.get(name, {}), depth + 1)
        return out
    if typ == "array":
        n = int(schema.get("minItems") or 0)
        return [minimal(doc, schema.get("items") or {}, depth + 1) for _ in range(n)]
    if typ == "string":
        if schema.get("format") in ("uri", "url"):
            return "https://example.com/conformance"
        n = max(int(schema.get("minLength") or 1), 1)
        return ("conformance" * (n // 11 + 1))[:max(n, 11)] if schema.get("maxLength") is None \
            else "c" * n
    if typ == "integer":
        return int(schema.get("minimum", 1))
    if typ == "number":
        return schema.get("minimum", 1)
    if typ == "boolean":
        return False
    if typ == "null":
        return None
    return None
