"""Contract-against-contract diff: what changed between two versions of a contract, classed for clients.

``diff_contracts(old, new)`` compares two OpenAPI 3.1 documents (and, when both are given, their
``provider.yaml``) and returns a :class:`~conformance.drift.findings.Report` in the same finding format as
observed drift. Operations are matched by method and path (path parameter names ignored); schemas are
compared with ``$ref`` resolved and ``allOf`` merged, in the direction that matters (a client *sends*
requests and *reads* responses):

=================================== ================ ==========================================================
kind                                 severity         meaning
=================================== ================ ==========================================================
``operation_removed``                breaking         an operation is gone
``operation_added``                  non-breaking     a new operation
``server_changed``                   breaking         the base URL (document or path-level server) changed
``security_changed``                 breaking         the security requirement or a scheme changed
``new_required_parameter``           breaking         a new required parameter, or an optional one became required
``parameter_added``                  non-breaking     a new optional parameter
``parameter_removed``                non-breaking     a parameter is gone (servers ignore unknown ones)
``request_body_required``            breaking         a request body became required (or was added as required)
``request_content_type_removed``     breaking         the server no longer accepts a media type
``request_content_type_added``       non-breaking
``new_required_request_field``       breaking         a new required request field (or optional -> required)
``request_field_added``              non-breaking     a new optional request field
``request_field_removed``            breaking/non-br. breaking when the new request schema is closed
                                                      (``additionalProperties: false``)
``request_closed``                   breaking         a request schema now rejects unknown fields
``enum_narrowed``                    breaking         a request enum lost values (or an open field got an enum)
``enum_widened``                     non-breaking     a request enum gained values
``new_enum_value``                   breaking         a response enum gained values (clients meet unknown values)
``enum_value_removed``               non-breaking     a response enum lost values
``type_change``                      breaking         a type changed in the breaking direction (request
                                                      narrowed, response widened, e.g. a field may now be null)
``type_relaxed``                     non-breaking     a type changed in the safe direction
``response_status_removed``          breaking (2xx)   a declared status is gone (non-breaking for errors)
``response_status_added``            non-breaking     a new declared status
``response_content_type_removed``    breaking (2xx)   non-breaking for error statuses
``response_content_type_added``      non-breaking
``field_removed``                    breaking/non-br. a response field is gone (breaking when it was required)
``field_now_optional``               breaking         a required response field became optional
``field_added``                      non-breaking     a new response field
``field_now_required``               non-breaking     an optional response field became required
``constraint_tightened``             breaking (req.)  a request limit became stricter (info for responses)
``constraint_relaxed``               non-breaking     a limit became looser
``alternatives_changed``             breaking/non-br. anyOf/oneOf branches were added or removed
``header_removed``                   breaking/non-br. a response header is gone (breaking when it was required)
``header_now_optional``              breaking         a required response header became optional
``header_added``                     info
``operation_id_changed``             info
``deprecated``                       info             an operation became deprecated
``status_value_added``               breaking         provider.yaml gained a lifecycle status value
``status_value_removed``             non-breaking
``auth_changed``                     breaking         provider.yaml auth header or accepted schemes shrank
=================================== ================ ==========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import specs
from specs import HTTP_METHODS, SPECS_DIR
from specs.pointers import deref

from .findings import Finding, Report
from .schemawalk import esc, json_type

_MISSING = object()
_TIGHTER_IF_SMALLER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
_TIGHTER_IF_LARGER = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_OTHER_CONSTRAINTS = ("pattern", "format", "multipleOf", "uniqueItems")


class DiffError(Exception):
    """A contract to diff cannot be loaded. ``str(err)`` is one clear line."""


@dataclass
class ContractDoc:
    """One side of a diff: the OpenAPI document, the optional provider.yaml, and where they came from."""

    openapi: dict
    provider: dict | None
    label: str


def _read(path: Path) -> Any:
    """A contract or provider.yaml file, parsed with the specs reader; its errors become DiffError."""
    try:
        return specs.read_yaml(path)
    except specs.SpecError as exc:
        raise DiffError(str(exc)) from None


def load_contract_doc(ref: str) -> ContractDoc:
    """Load one side of a diff from a file (``openapi.yaml``/``.json``), a folder holding ``openapi.yaml``
    (and optionally ``provider.yaml``), or a vendored provider id (``openai``).

    Raises:
        DiffError: nothing found, unreadable, or not an OpenAPI document.
    """
    path = Path(ref)
    provider = None
    if not path.exists() and (SPECS_DIR / ref / "openapi.yaml").exists() and "/" not in ref:
        path = SPECS_DIR / ref
    if path.is_dir():
        oas = path / "openapi.yaml"
        if not oas.exists():
            oas = path / "openapi.json"
        if not oas.exists():
            raise DiffError(f"{path} holds no openapi.yaml")
        if (path / "provider.yaml").exists():
            provider = _read(path / "provider.yaml")
        doc = _read(oas)
    elif path.exists():
        doc = _read(path)
        sibling = path.with_name("provider.yaml")
        if path.name.startswith("openapi") and sibling.exists():
            provider = _read(sibling)
    else:
        raise DiffError(f"{ref}: no such file, folder or vendored provider")
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3"):
        raise DiffError(f"{ref} is not an OpenAPI 3 document")
    if not isinstance(doc.get("paths"), dict):
        raise DiffError(f"{ref} has no paths")
    return ContractDoc(doc, provider if isinstance(provider, dict) else None, str(ref))


# -- schema flattening (static, no value) ----------------------------------------------------------------
@dataclass
class _S:
    types: set[str] | None = None
    enum: list | None = None
    const: Any = _MISSING
    properties: dict[str, Any] = field(default_factory=dict)  # name -> raw schema node
    required: set[str] = field(default_factory=set)
    additional: Any = None
    items: Any = None
    alternatives: list[Any] = field(default_factory=list)
    constraints: dict[str, Any] = field(default_factory=dict)


class _Side:
    def __init__(self, doc: dict):
        self.doc = doc

    def deref(self, node: Any) -> Any:
        """Follow ``$ref`` chains, siblings laid over their target; ``{}`` for a reference naming nothing."""
        return deref(self.doc, node, siblings="merge")

    def flat(self, node: Any, depth: int = 0) -> _S:
        s = _S()
        node = self.deref(node)
        if not isinstance(node, dict) or depth > 24:
            return s
        t = node.get("type")
        if isinstance(t, str):
            s.types = {t}
        elif isinstance(t, list):
            s.types = set(t)
        if "const" in node:
            s.const = node["const"]
        if isinstance(node.get("enum"), list):
            s.enum = list(node["enum"])
        if isinstance(node.get("properties"), dict):
            s.properties = dict(node["properties"])
        if isinstance(node.get("required"), list):
            s.required = set(node["required"])
        if "additionalProperties" in node:
            s.additional = node["additionalProperties"]
        if isinstance(node.get("items"), dict):
            s.items = node["items"]
        for k in (*_TIGHTER_IF_SMALLER, *_TIGHTER_IF_LARGER, *_OTHER_CONSTRAINTS):
            if k in node:
                s.constraints[k] = node[k]
        for sub in node.get("allOf") or []:
            o = self.flat(sub, depth + 1)
            if o.types is not None:
                s.types = o.types if s.types is None else (s.types & o.types) or o.types
            if o.enum is not None and s.enum is None:
                s.enum = o.enum
            if o.const is not _MISSING:
                s.const = o.const
            for k, v in o.properties.items():
                s.properties.setdefault(k, v)
            s.required |= o.required
            if o.additional is not None:
                s.additional = o.additional
            if o.items is not None and s.items is None:
                s.items = o.items
            for k, v in o.constraints.items():
                s.constraints.setdefault(k, v)
            s.alternatives += o.alternatives
        for kw in ("anyOf", "oneOf"):
            branches = node.get(kw)
            if not isinstance(branches, list):
                continue
            non_null = [b for b in branches if self.deref(b) != {"type": "null"}]
            has_null = len(non_null) != len(branches)
            if len(non_null) == 1:  # the nullable idiom: anyOf [X, {type: null}]
                inner = self.flat(non_null[0], depth + 1)
                if inner.types is not None and has_null:
                    inner.types = inner.types | {"null"}
                if s.types is None:
                    s.types = inner.types
                s.enum = s.enum if s.enum is not None else inner.enum
                s.const = inner.const if s.const is _MISSING else s.const
                for k, v in inner.properties.items():
                    s.properties.setdefault(k, v)
                s.required |= inner.required
                s.additional = s.additional if s.additional is not None else inner.additional
                s.items = s.items if s.items is not None else inner.items
                for k, v in inner.constraints.items():
                    s.constraints.setdefault(k, v)
                s.alternatives += inner.alternatives
            else:
                s.alternatives.append((kw, branches, has_null))
        if s.types is None:
            if s.const is not _MISSING:
                s.types = {_jtype(s.const)}
            elif s.enum is not None:
                s.types = {_jtype(v) for v in s.enum}
        return s


def _jtype(v: Any) -> str:
    t = json_type(v)
    return "number" if t == "integer" else t


def _norm_types(types: set[str] | None) -> set[str] | None:
    if types is None:
        return None
    out = set(types)
    if "number" in out:
        out.add("integer")
    return out


def _closed(s: _S) -> bool:
    return s.additional is False


# -- the differ -----------------------------------------------------------------------------------------
class ContractDiffer:
    """Compares two contract documents; findings go to ``self.report`` (see the module docstring)."""

    def __init__(self, old: ContractDoc, new: ContractDoc):
        self.old, self.new = old, new
        self.o, self.n = _Side(old.openapi), _Side(new.openapi)
        self.report = Report(kind="diff", title=f"diff: {old.label} -> {new.label}",
                             subject={"old": old.label, "new": new.label})
        self._seen: set = set()

    def add(self, kind: str, severity: str, op: str, pointer: str, message: str, old: Any = _MISSING,
            new: Any = _MISSING) -> None:
        example = {}
        if old is not _MISSING:
            example["old"] = old
        if new is not _MISSING:
            example["new"] = new
        self.report.add(Finding(kind, severity, op, pointer, message, example or None))

    # -- operations ---------------------------------------------------------------------------------
    @staticmethod
    def _ops(doc: dict) -> dict[tuple[str, str], tuple[str, str, dict, dict]]:
        out = {}
        for path, item in (doc.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            for m in HTTP_METHODS:
                op = item.get(m)
                if isinstance(op, dict):
                    key = (m.upper(), re.sub(r"\{[^}]*\}", "{}", path))
                    out[key] = (path, m, op, item)
        return out

    def run(self) -> Report:
        """Compare everything; returns the report."""
        self.document_level()
        old_ops, new_ops = self._ops(self.old.openapi), self._ops(self.new.openapi)
        for key in sorted(set(old_ops) | set(new_ops)):
            if key in old_ops and key not in new_ops:
                path, m, op, _ = old_ops[key]
                name = op.get("operationId") or f"{key[0]} {path}"
                self.report.operations.append(name)
                self.add("operation_removed", "breaking", name, f"#/paths/{esc(path)}/{m}",
                         f"operation {key[0]} {path} was removed")
            elif key in new_ops and key not in old_ops:
                path, m, op, _ = new_ops[key]
                name = op.get("operationId") or f"{key[0]} {path}"
                self.report.operations.append(name)
                self.add("operation_added", "non-breaking", name, f"#/paths/{esc(path)}/{m}",
                         f"new operation {key[0]} {path}")
            else:
                self.operation(old_ops[key], new_ops[key])
        self.provider_level()
        return self.report

    def document_level(self) -> None:
        """Servers, the top-level security requirement and the security schemes."""
        o_srv = [s.get("url") for s in self.old.openapi.get("servers") or [] if isinstance(s, dict)]
        n_srv = [s.get("url") for s in self.new.openapi.get("servers") or [] if isinstance(s, dict)]
        if o_srv[:1] != n_srv[:1]:
            self.add("server_changed", "breaking", "(contract)", "#/servers/0/url", "the base URL changed",
                     o_srv[:1] or None, n_srv[:1] or None)
        if self.old.openapi.get("security") != self.new.openapi.get("security"):
            self.add("security_changed", "breaking", "(contract)", "#/security",
                     "the top-level security requirement changed", self.old.openapi.get("security"),
                     self.new.openapi.get("security"))
        o_sch = ((self.old.openapi.get("components") or {}).get("securitySchemes") or {})
        n_sch = ((self.new.openapi.get("components") or {}).get("securitySchemes") or {})
        strip = ("description",)
        for name in sorted(set(o_sch) | set(n_sch)):
            a = {k: v for k, v in (o_sch.get(name) or {}).items() if k not in strip}
            b = {k: v for k, v in (n_sch.get(name) or {}).items() if k not in strip}
            if name not in n_sch:
                self.add("security_changed", "breaking", "(contract)", f"#/components/securitySchemes/{esc(name)}",
                         f"security scheme {name} was removed", a, None)
            elif name not in o_sch:
                self.add("security_changed", "info", "(contract)", f"#/components/securitySchemes/{esc(name)}",
                         f"new security scheme {name}", None, b)
            elif a != b:
                self.add("security_changed", "breaking", "(contract)", f"#/components/securitySchemes/{esc(name)}",
                         f"security scheme {name} changed", a, b)

    def provider_level(self) -> None:
        """provider.yaml: the status vocabulary and the auth header/schemes (when both sides have one)."""
        if not (self.old.provider and self.new.provider):
            return
        o_vals = {e.get("value") for e in self.old.provider.get("statuses") or [] if isinstance(e, dict)}
        n_vals = {e.get("value") for e in self.new.provider.get("statuses") or [] if isinstance(e, dict)}
        for v in sorted(n_vals - o_vals, key=str):
            self.add("status_value_added", "breaking", "(provider.yaml)", "provider.yaml#/statuses",
                     f"new lifecycle status value {v!r}", None, v)
        for v in sorted(o_vals - n_vals, key=str):
            self.add("status_value_removed", "non-breaking", "(provider.yaml)", "provider.yaml#/statuses",
                     f"lifecycle status value {v!r} was removed", v, None)
        oa, na = self.old.provider.get("auth") or {}, self.new.provider.get("auth") or {}
        if oa.get("header") != na.get("header") or not set(oa.get("schemes") or []) <= set(na.get("schemes") or []):
            self.add("auth_changed", "breaking", "(provider.yaml)", "provider.yaml#/auth",
                     "the auth header or the accepted schemes changed",
                     {"header": oa.get("header"), "schemes": oa.get("schemes")},
                     {"header": na.get("header"), "schemes": na.get("schemes")})

    def operation(self, old: tuple, new: tuple) -> None:
        """Compare one operation present in both contracts (ids, servers, security, params, bodies)."""
        o_path, m, o_op, o_item = old
        n_path, _, n_op, n_item = new
        name = n_op.get("operationId") or f"{m.upper()} {n_path}"
        self.report.operations.append(name)
        base = f"#/paths/{esc(n_path)}/{m}"
        if o_op.get("operationId") != n_op.get("operationId"):
            self.add("operation_id_changed", "info", name, f"{base}/operationId", "the operationId changed",
                     o_op.get("operationId"), n_op.get("operationId"))
        if n_op.get("deprecated") and not o_op.get("deprecated"):
            self.add("deprecated", "info", name, f"{base}/deprecated", "the operation is now deprecated")
        o_srv = (o_op.get("servers") or o_item.get("servers") or [{}])[0].get("url")
        n_srv = (n_op.get("servers") or n_item.get("servers") or [{}])[0].get("url")
        if o_srv != n_srv:
            self.add("server_changed", "breaking", name, f"{base}/servers", "the operation's server changed",
                     o_srv, n_srv)
        if "security" in o_op or "security" in n_op:
            if o_op.get("security") != n_op.get("security"):
                self.add("security_changed", "breaking", name, f"{base}/security",
                         "the operation's security requirement changed", o_op.get("security"), n_op.get("security"))
        self.parameters(name, base, o_op, o_item, n_op, n_item)
        self.request_body(name, base, o_op, n_op)
        self.responses(name, base, o_op, n_op)

    def _params(self, side: _Side, op: dict, item: dict) -> dict[tuple[str, str], dict]:
        out = {}
        for p in list(item.get("parameters") or []) + list(op.get("parameters") or []):
            p = side.deref(p)
            if isinstance(p, dict) and "name" in p:
                name = p["name"].lower() if p.get("in") == "header" else p["name"]
                if p.get("in") == "path":
                    name = "{path}" + str(len([k for k in out if k[0] == "path"]))
                out[(p.get("in"), name)] = p
        return out

    def parameters(self, name: str, base: str, o_op: dict, o_item: dict, n_op: dict, n_item: dict) -> None:
        """Parameters matched by location and name (path parameters by position)."""
        op_, np_ = self._params(self.o, o_op, o_item), self._params(self.n, n_op, n_item)
        for key in sorted(set(op_) | set(np_), key=str):
            where, pname = key
            label = np_.get(key, op_.get(key, {})).get("name", pname)
            ptr = f"{base}/parameters/{esc(where)}:{esc(label)}"
            if key not in np_:
                self.add("parameter_removed", "non-breaking", name, ptr, f"{where} parameter {label} was removed")
            elif key not in op_:
                if np_[key].get("required"):
                    self.add("new_required_parameter", "breaking", name, ptr, f"new required {where} parameter {label}")
                else:
                    self.add("parameter_added", "non-breaking", name, ptr, f"new optional {where} parameter {label}")
            else:
                if np_[key].get("required") and not op_[key].get("required"):
                    self.add("new_required_parameter", "breaking", name, ptr,
                             f"{where} parameter {label} became required")
                if "schema" in op_[key] or "schema" in np_[key]:
                    self.schema(name, f"{ptr}/schema", op_[key].get("schema", {}), np_[key].get("schema", {}),
                                "request", f"{where} parameter {label}")

    def request_body(self, name: str, base: str, o_op: dict, n_op: dict) -> None:
        """Request body: required flag, media types and schemas (request direction)."""
        ob, nb = self.o.deref(o_op.get("requestBody")), self.n.deref(n_op.get("requestBody"))
        ptr = f"{base}/requestBody"
        if not isinstance(nb, dict):
            return
        if not isinstance(ob, dict):
            if nb.get("required"):
                self.add("request_body_required", "breaking", name, ptr, "a required request body was added")
            return
        if nb.get("required") and not ob.get("required"):
            self.add("request_body_required", "breaking", name, ptr, "the request body became required")
        oc, nc = ob.get("content") or {}, nb.get("content") or {}
        for ct in sorted(set(oc) - set(nc)):
            self.add("request_content_type_removed", "breaking", name, f"{ptr}/content/{esc(ct)}",
                     f"request media type {ct} is no longer accepted")
        for ct in sorted(set(nc) - set(oc)):
            self.add("request_content_type_added", "non-breaking", name, f"{ptr}/content/{esc(ct)}",
                     f"request media type {ct} is now accepted")
        for ct in sorted(set(oc) & set(nc)):
            om, nm = oc[ct] or {}, nc[ct] or {}
            if "schema" in om or "schema" in nm:
                self.schema(name, f"{ptr}/content/{esc(ct)}/schema", om.get("schema", {}), nm.get("schema", {}),
                            "request", "request body")

    def responses(self, name: str, base: str, o_op: dict, n_op: dict) -> None:
        """Responses: statuses, media types, schemas (response direction) and headers."""
        ors, nrs = o_op.get("responses") or {}, n_op.get("responses") or {}
        for st in sorted(set(ors) | set(nrs), key=str):
            ptr = f"{base}/responses/{esc(st)}"
            success = str(st).startswith("2")
            if st not in nrs:
                self.add("response_status_removed", "breaking" if success else "non-breaking", name, ptr,
                         f"response status {st} was removed")
                continue
            if st not in ors:
                self.add("response_status_added", "non-breaking", name, ptr, f"new response status {st}")
                continue
            orr, nrr = self.o.deref(ors[st]), self.n.deref(nrs[st])
            if not isinstance(orr, dict) or not isinstance(nrr, dict):
                continue
            oc, nc = orr.get("content") or {}, nrr.get("content") or {}
            for ct in sorted(set(oc) - set(nc)):
                self.add("response_content_type_removed", "breaking" if success else "non-breaking", name,
                         f"{ptr}/content/{esc(ct)}", f"status {st} no longer returns {ct}")
            for ct in sorted(set(nc) - set(oc)):
                self.add("response_content_type_added", "non-breaking", name, f"{ptr}/content/{esc(ct)}",
                         f"status {st} may now return {ct}")
            for ct in sorted(set(oc) & set(nc)):
                om, nm = oc[ct] or {}, nc[ct] or {}
                if "schema" in om or "schema" in nm:
                    self.schema(name, f"{ptr}/content/{esc(ct)}/schema", om.get("schema", {}), nm.get("schema", {}),
                                "response", f"status {st} body")
            self.headers(name, ptr, orr.get("headers") or {}, nrr.get("headers") or {})

    def headers(self, name: str, ptr: str, oh: dict, nh: dict) -> None:
        """Response headers: removed, added, required flag and schema."""
        o = {k.lower(): self.o.deref(v) for k, v in oh.items()}
        n = {k.lower(): self.n.deref(v) for k, v in nh.items()}
        for h in sorted(set(o) | set(n)):
            hp = f"{ptr}/headers/{esc(h)}"
            oreq = isinstance(o.get(h), dict) and bool(o[h].get("required"))
            nreq = isinstance(n.get(h), dict) and bool(n[h].get("required"))
            if h not in n:
                self.add("header_removed", "breaking" if oreq else "non-breaking", name, hp,
                         f"response header {h} was removed")
            elif h not in o:
                self.add("header_added", "info", name, hp, f"new response header {h}")
            else:
                if oreq and not nreq:
                    self.add("header_now_optional", "breaking", name, hp, f"response header {h} is no longer required")
                if isinstance(o[h], dict) and isinstance(n[h], dict) and ("schema" in o[h] or "schema" in n[h]):
                    self.schema(name, f"{hp}/schema", o[h].get("schema", {}), n[h].get("schema", {}), "response",
                                f"header {h}")

    # -- schemas ------------------------------------------------------------------------------------
    def schema(self, name: str, ptr: str, old: Any, new: Any, direction: str, what: str, depth: int = 0) -> None:
        """Compare two schemas; ``direction`` is ``request`` (client sends) or ``response`` (client reads)."""
        if depth > 40:
            return
        key = (name, ptr, id(old), id(new))
        if key in self._seen:
            return
        self._seen.add(key)
        so, sn = self.o.flat(old), self.n.flat(new)
        req = direction == "request"
        # types
        to, tn = _norm_types(so.types), _norm_types(sn.types)
        if to != tn:
            widened = tn is None or (to is not None and bool(tn - to))
            narrowed = to is None or (tn is not None and bool(to - tn))
            breaking = narrowed if req else widened
            desc = f"{what}: type {_tstr(so.types)} -> {_tstr(sn.types)}"
            if "null" in (sn.types or set()) and "null" not in (so.types or set()) and not req:
                desc += " (the value may now be null)"
            self.add("type_change" if breaking else "type_relaxed", "breaking" if breaking else "non-breaking",
                     name, ptr, desc, sorted(so.types) if so.types else None, sorted(sn.types) if sn.types else None)
        # enum / const
        oe = so.enum if so.enum is not None else ([so.const] if so.const is not _MISSING else None)
        ne = sn.enum if sn.enum is not None else ([sn.const] if sn.const is not _MISSING else None)
        if oe != ne and not (oe is not None and ne is not None and _same_set(oe, ne)):
            added = None if ne is None else [v for v in ne if oe is None or v not in oe]
            removed = None if oe is None else [v for v in oe if ne is None or v not in ne]
            if req:
                if (ne is not None and oe is None) or removed:
                    self.add("enum_narrowed", "breaking", name, ptr, f"{what}: accepted values narrowed"
                             + (f" (removed {', '.join(map(repr, removed))})" if removed else " (now an enum)"), oe, ne)
                if oe is not None and (ne is None or added):
                    self.add("enum_widened", "non-breaking", name, ptr, f"{what}: accepted values widened", oe, ne)
            else:
                if oe is not None and (ne is None or added):
                    self.add("new_enum_value", "breaking", name, ptr, f"{what}: new value(s) "
                             + (", ".join(map(repr, added)) if added else "(the enum was removed)"), oe, ne)
                if removed:
                    self.add("enum_value_removed", "non-breaking", name, ptr,
                             f"{what}: value(s) {', '.join(map(repr, removed))} no longer returned", oe, ne)
        # constraints
        self._constraints(name, ptr, so.constraints, sn.constraints, req, what)
        # objects
        oprops, nprops = so.properties, sn.properties
        for p in sorted(set(oprops) | set(nprops)):
            pp = f"{ptr}/properties/{esc(p)}"
            if p not in nprops:
                if req:
                    self.add("request_field_removed", "breaking" if _closed(sn) else "non-breaking", name, pp,
                             f"{what}: request field {p!r} was removed"
                             + (" and the schema rejects unknown fields" if _closed(sn) else ""))
                else:
                    self.add("field_removed", "breaking" if p in so.required else "non-breaking", name, pp,
                             f"{what}: response field {p!r} was removed"
                             + (" (it was required)" if p in so.required else ""))
                continue
            if p not in oprops:
                if req:
                    if p in sn.required:
                        self.add("new_required_request_field", "breaking", name, pp,
                                 f"{what}: new required request field {p!r}")
                    else:
                        self.add("request_field_added", "non-breaking", name, pp, f"{what}: new optional field {p!r}")
                else:
                    self.add("field_added", "non-breaking", name, pp, f"{what}: new response field {p!r}")
                continue
            if req and p in sn.required and p not in so.required:
                self.add("new_required_request_field", "breaking", name, pp, f"{what}: field {p!r} became required")
            if not req and p in so.required and p not in sn.required:
                self.add("field_now_optional", "breaking", name, pp,
                         f"{what}: response field {p!r} is no longer required (clients may not get it)")
            if not req and p in sn.required and p not in so.required:
                self.add("field_now_required", "non-breaking", name, pp, f"{what}: response field {p!r} is now required")
            self.schema(name, pp, oprops[p], nprops[p], direction, f"{what}.{p}", depth + 1)
        if req and _closed(sn) and not _closed(so) and (so.properties or sn.properties):
            self.add("request_closed", "breaking", name, f"{ptr}/additionalProperties",
                     f"{what}: unknown request fields are now rejected")
        if isinstance(so.additional, dict) and isinstance(sn.additional, dict):
            self.schema(name, f"{ptr}/additionalProperties", so.additional, sn.additional, direction,
                        f"{what}.*", depth + 1)
        # arrays
        if so.items is not None and sn.items is not None:
            self.schema(name, f"{ptr}/items", so.items, sn.items, direction, f"{what}[]", depth + 1)
        # alternatives
        oa, na = so.alternatives, sn.alternatives
        if oa or na:
            on = sum(len(a[1]) for a in oa)
            nn = sum(len(a[1]) for a in na)
            if on == nn and len(oa) == len(na):
                for i, (a, b) in enumerate(zip(oa, na, strict=True)):
                    for j, (x, y) in enumerate(zip(a[1], b[1], strict=True)):
                        self.schema(name, f"{ptr}/{b[0]}/{j}", x, y, direction, f"{what}<{i}.{j}>", depth + 1)
            else:
                grew = nn > on
                breaking = (not grew) if req else grew
                self.add("alternatives_changed", "breaking" if breaking else "non-breaking", name, ptr,
                         f"{what}: anyOf/oneOf alternatives {'added' if grew else 'removed'} ({on} -> {nn})")

    def _constraints(self, name: str, ptr: str, oc: dict, nc: dict, req: bool, what: str) -> None:
        for k in sorted(set(oc) | set(nc)):
            a, b = oc.get(k, _MISSING), nc.get(k, _MISSING)
            if a == b:
                continue
            if k in _TIGHTER_IF_SMALLER:
                tighter = a is _MISSING or (b is not _MISSING and _num(b) < _num(a))
            elif k in _TIGHTER_IF_LARGER:
                tighter = a is _MISSING or (b is not _MISSING and _num(b) > _num(a))
            else:
                tighter = b is not _MISSING
            old_v, new_v = (None if a is _MISSING else a), (None if b is _MISSING else b)
            if tighter:
                self.add("constraint_tightened", "breaking" if req else "info", name, ptr,
                         f"{what}: {k} {old_v!r} -> {new_v!r}", old_v, new_v)
            else:
                self.add("constraint_relaxed", "non-breaking", name, ptr, f"{what}: {k} {old_v!r} -> {new_v!r}",
                         old_v, new_v)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _same_set(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x in b for x in a) and all(y in a for y in b)


def _tstr(types: set[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types))


def diff_contracts(old: ContractDoc | str, new: ContractDoc | str) -> Report:
    """Diff two contracts (documents or references accepted by :func:`load_contract_doc`).

    Returns a :class:`Report` of kind ``diff``; identical contracts give no findings.

    Raises:
        DiffError: a side cannot be loaded.
    """
    o = old if isinstance(old, ContractDoc) else load_contract_doc(old)
    n = new if isinstance(new, ContractDoc) else load_contract_doc(new)
    return ContractDiffer(o, n).run()


__all__ = ["ContractDiffer", "ContractDoc", "DiffError", "diff_contracts", "load_contract_doc"]
