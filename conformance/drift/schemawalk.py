"""Walk an observed JSON value against a contract schema and name every difference.

jsonschema answers "valid or not"; drift needs *what* differs, including what a validator accepts silently
(an undocumented field in an open object). :class:`SchemaWalker` resolves ``$ref``, merges ``allOf``,
picks the best ``anyOf``/``oneOf`` branch for the value (the first valid one, else the closest by type,
property overlap and matching enum/const discriminators), applies ``if``/``then``/``else``, and reports
:class:`Issue` objects: ``type_change``, ``new_enum_value``, ``missing_required_field``,
``undocumented_field`` and ``constraint_violation`` (minLength, maximum, format, pattern ...).

Schemas are addressed by JSON pointer into one OpenAPI 3.1 document (``#/components/schemas/Video``), so
constraint checks reuse openapi-schema-validator with the document as a registry resource.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from specs.pointers import deref_pointer, resolve_pointer

from .redact import REDACTED

_DOC_URI = "urn:contract:drift"
_MISSING = object()
MISSING = _MISSING  #: marks "no const" in :class:`Flat`
CONSTRAINT_KEYWORDS = {"minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
                       "exclusiveMaximum", "multipleOf", "format", "minItems", "maxItems", "uniqueItems",
                       "minProperties", "maxProperties"}


def esc(token: Any) -> str:
    """Escape one JSON pointer token (``/`` -> ``~1``, ``~`` -> ``~0``)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def json_type(value: Any) -> str:
    """The JSON type name of a Python value (``null``, ``boolean``, ``integer``, ``number`` ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def type_ok(value: Any, types: set[str]) -> bool:
    """True when ``value`` has one of the JSON ``types`` (an integer is a number; 2.0 is an integer)."""
    vt = json_type(value)
    if vt in types:
        return True
    if vt == "integer" and "number" in types:
        return True
    return vt == "number" and "integer" in types and float(value).is_integer()


@dataclass
class Issue:
    """One difference found by :meth:`SchemaWalker.walk` (``pointer`` is into the observed value)."""

    kind: str
    pointer: str
    message: str
    value: Any = None


@dataclass
class Flat:
    """A schema with ``$ref``, ``allOf`` and the chosen ``anyOf``/``oneOf`` branches merged."""

    sources: list[str] = field(default_factory=list)
    types: set[str] | None = None
    enum: list | None = None
    const: Any = _MISSING
    properties: dict[str, str] = field(default_factory=dict)
    pattern_properties: dict[str, str] = field(default_factory=dict)
    additional: Any = None  # None (unset), True, False, or a schema pointer
    required: set[str] = field(default_factory=set)
    items: str | None = None

    def merge(self, other: Flat) -> None:
        self.sources += [s for s in other.sources if s not in self.sources]
        if other.types is not None:
            self.types = other.types if self.types is None else (self.types & other.types) or other.types
        if other.enum is not None:
            self.enum = other.enum if self.enum is None else [v for v in self.enum if v in other.enum] or other.enum
        if other.const is not _MISSING:
            self.const = other.const
        for k, v in other.properties.items():
            self.properties.setdefault(k, v)
        self.pattern_properties.update(other.pattern_properties)
        if other.additional is not None:
            self.additional = other.additional
        self.required |= other.required
        if other.items is not None and self.items is None:
            self.items = other.items

    @property
    def documents_object(self) -> bool:
        return bool(self.properties or self.pattern_properties)


class SchemaWalker:
    """Compares values with the schemas of one OpenAPI 3.1 document (see the module docstring).

    Args:
        doc: the OpenAPI document (a dict; not modified).
    """

    def __init__(self, doc: dict):
        self.doc = doc
        self._validators: dict[str, Any] = {}
        self._registry = None

    # -- basics -------------------------------------------------------------------------------------
    def node(self, ptr: str) -> Any:
        return resolve_pointer(self.doc, ptr)

    def deref(self, ptr: str) -> tuple[Any, str]:
        """Follow a chain of pure ``$ref`` nodes; returns ``(node, pointer of the node)``. A ``$ref`` with
        siblings is not followed (:meth:`flatten` merges it). Raises KeyError for a pointer naming nothing."""
        return deref_pointer(self.doc, ptr, siblings="stop")

    def _validator(self, ptr: str):
        v = self._validators.get(ptr)
        if v is None:
            from openapi_schema_validator import OAS31Validator, oas31_format_checker
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012

            if self._registry is None:
                self._registry = Registry().with_resource(
                    _DOC_URI, Resource(contents=self.doc, specification=DRAFT202012))
            v = OAS31Validator({"$ref": _DOC_URI + ptr}, registry=self._registry,
                               format_checker=oas31_format_checker)
            self._validators[ptr] = v
        return v

    def errors(self, ptr: str, value: Any) -> list:
        """jsonschema errors of ``value`` against the schema at ``ptr`` (empty when valid)."""
        try:
            return list(self._validator(ptr).iter_errors(value))
        except Exception:  # an unresolvable or broken schema is not the traffic's fault
            return []

    def valid(self, ptr: str, value: Any) -> bool:
        return not self.errors(ptr, value)

    # -- flattening ---------------------------------------------------------------------------------
    def flatten(self, ptr: str, value: Any, depth: int = 0) -> Flat:
        """Merge the schema at ``ptr`` for ``value`` (branches chosen for this value)."""
        flat = Flat()
        if depth > 24:
            return flat
        node, ptr = self.deref(ptr)
        flat.sources.append(ptr)
        if not isinstance(node, dict):
            return flat
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
            flat.merge(self.flatten(node["$ref"], value, depth + 1))
        t = node.get("type")
        if isinstance(t, str):
            flat.types = {t}
        elif isinstance(t, list):
            flat.types = set(t)
        if "const" in node:
            flat.const = node["const"]
            if flat.types is None:
                flat.types = {json_type(node["const"])} | ({"number"} if json_type(node["const"]) == "integer" else set())
        if isinstance(node.get("enum"), list):
            flat.enum = list(node["enum"])
            if flat.types is None:
                flat.types = {json_type(v) for v in node["enum"]}
        if isinstance(node.get("properties"), dict):
            flat.properties = {k: f"{ptr}/properties/{esc(k)}" for k in node["properties"]}
        if isinstance(node.get("patternProperties"), dict):
            flat.pattern_properties = {k: f"{ptr}/patternProperties/{esc(k)}" for k in node["patternProperties"]}
        ap = node.get("additionalProperties")
        if isinstance(ap, bool):
            flat.additional = ap
        elif isinstance(ap, dict):
            flat.additional = f"{ptr}/additionalProperties" if ap else True
        if isinstance(node.get("required"), list):
            flat.required = set(node["required"])
        if "items" in node and isinstance(node["items"], dict):
            flat.items = f"{ptr}/items"
        for i, _ in enumerate(node.get("allOf") or []):
            flat.merge(self.flatten(f"{ptr}/allOf/{i}", value, depth + 1))
        for kw in ("anyOf", "oneOf"):
            branches = node.get(kw)
            if isinstance(branches, list) and branches:
                chosen = self.choose([f"{ptr}/{kw}/{i}" for i in range(len(branches))], value, depth)
                flat.merge(self.flatten(chosen, value, depth + 1))
        if isinstance(node.get("if"), dict):
            branch = "then" if self.valid(f"{ptr}/if", value) else "else"
            if isinstance(node.get(branch), dict):
                flat.merge(self.flatten(f"{ptr}/{branch}", value, depth + 1))
        return flat

    def choose(self, branches: list[str], value: Any, depth: int = 0) -> str:
        """The branch pointer that fits ``value`` best: the first valid one, else the closest."""
        for b in branches:
            if self.valid(b, value):
                return b
        best, best_score = branches[0], None
        for b in branches:
            f = self.flatten(b, value, depth + 1)
            score = 0
            if f.types is None or type_ok(value, f.types):
                score += 100
            if isinstance(value, dict) and f.properties:
                score += 10 * len(set(value) & set(f.properties))
                score -= 5 * len(f.required - set(value))
                for name, pptr in f.properties.items():
                    if name in value:
                        pnode, _ = self.deref(pptr)
                        if isinstance(pnode, dict) and (pnode.get("const", _MISSING) == value[name]
                                                        or value[name] in (pnode.get("enum") or [])):
                            score += 50
            if best_score is None or score > best_score:
                best, best_score = b, score
        return best

    # -- walking ------------------------------------------------------------------------------------
    def walk(self, ptr: str, value: Any, vpath: str = "", depth: int = 0) -> list[Issue]:
        """Every difference between ``value`` and the schema at ``ptr``; ``vpath`` prefixes the pointers
        (array items are addressed as ``*`` so repeated items merge)."""
        issues: list[Issue] = []
        self._walk(ptr, value, vpath, issues, depth)
        return issues

    def _walk(self, ptr: str, value: Any, vpath: str, issues: list[Issue], depth: int) -> None:
        if depth > 48 or value == REDACTED:
            return
        flat = self.flatten(ptr, value)
        where = vpath or "/"
        if flat.types is not None and not type_ok(value, flat.types):
            expected = " or ".join(sorted(flat.types))
            issues.append(Issue("type_change", where, f"expected {expected}, observed {json_type(value)}", value))
            return
        if flat.const is not _MISSING and value != flat.const:
            issues.append(Issue("new_enum_value", where, f"value {_short(value)} is not the documented constant "
                                f"{_short(flat.const)}", value))
        elif flat.enum is not None and value not in flat.enum:
            issues.append(Issue("new_enum_value", where, f"value {_short(value)} is not among the documented "
                                f"values {', '.join(_short(v) for v in flat.enum)}", value))
        if isinstance(value, dict):
            for name in sorted(flat.required - set(value)):
                issues.append(Issue("missing_required_field", f"{vpath}/{esc(name)}",
                                    f"required field {name!r} is missing"))
            for k, v in value.items():
                sub = f"{vpath}/{esc(k)}"
                if k in flat.properties:
                    self._walk(flat.properties[k], v, sub, issues, depth + 1)
                    continue
                pat = next((p for rx, p in flat.pattern_properties.items() if _search(rx, k)), None)
                if pat is not None:
                    self._walk(pat, v, sub, issues, depth + 1)
                elif isinstance(flat.additional, str):
                    self._walk(flat.additional, v, sub, issues, depth + 1)
                elif flat.documents_object and flat.additional is not True:
                    issues.append(Issue("undocumented_field", sub, f"field {k!r} is not in the contract", v))
        elif isinstance(value, list) and flat.items is not None:
            for v in value:
                self._walk(flat.items, v, f"{vpath}/*", issues, depth + 1)
        seen = set()
        for src in flat.sources:
            for err in self.errors(src, value):
                if err.validator in CONSTRAINT_KEYWORDS and not list(err.absolute_path) and err.message not in seen:
                    seen.add(err.message)
                    issues.append(Issue("constraint_violation", where, f"{err.validator}: {err.message}", value))


def _search(rx: str, text: str) -> bool:
    try:
        return re.search(rx, text) is not None
    except re.error:
        return False


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


__all__ = ["CONSTRAINT_KEYWORDS", "MISSING", "Flat", "Issue", "SchemaWalker", "esc", "json_type", "type_ok"]
