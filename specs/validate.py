"""Checks on the vendored contracts themselves, shared by the tests and ``conformance`` document checks.

- :func:`spec_errors` -- OpenAPI 3.1 validation with openapi-spec-validator.
- :func:`unresolved_refs` -- every ``$ref`` that does not resolve inside the document.
- :func:`iter_examples` -- every example in a contract with the schema it must satisfy.
- :func:`schema_errors` -- validate one value against a schema located by JSON pointer in a document.
- :func:`example_problems` -- the full example check (validity, ``x-expected-invalid``, ``x-source``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import HTTP_METHODS, SPECS_DIR

SOURCES_DIR = SPECS_DIR / "sources"
_DOC_URI = "urn:contract:doc"


def _escape(token: str) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*tokens: Any) -> str:
    """Build a JSON pointer (``#/a/b~1c``) from raw tokens."""
    return "#/" + "/".join(_escape(t) for t in tokens)


def resolve_pointer(doc: Any, ptr: str) -> Any:
    """Resolve a local JSON pointer (``#/components/schemas/Video``). Raises KeyError if absent."""
    node = doc
    if ptr in ("#", "#/"):
        return node
    for raw in ptr.lstrip("#").lstrip("/").split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(ptr)
    return node


def get_pointer(body: Any, pointer: str) -> Any:
    """The value at a JSON pointer (``/video/id``) in a parsed request or response body, or None when
    absent. Form bodies whose nested fields arrive flattened (``video[id]``, as the openai SDK sends them)
    are understood too. Unlike :func:`resolve_pointer` it never raises."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.lstrip("/").split("/") if t]
    if isinstance(body, dict) and len(tokens) > 1:
        flat = tokens[0] + "".join(f"[{t}]" for t in tokens[1:])
        if flat in body:
            return body[flat]
    node = body
    for token in tokens:
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def deref(doc: Any, node: Any, max_depth: int = 20) -> Any:
    """Follow local ``$ref`` chains (``{"$ref": "#/components/parameters/VideoId"}``) to the object they
    name; returns ``node`` unchanged when it is not a reference, ``{}`` for a reference that does not resolve."""
    for _ in range(max_depth):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/")):
            return node
        target: Any = doc
        for token in node["$ref"][2:].split("/"):
            target = target.get(token.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        node = target
    return node


def spec_errors(doc: dict) -> list[str]:
    """OpenAPI 3.1 validation errors of a document (empty when valid), one line each."""
    from openapi_spec_validator import OpenAPIV31SpecValidator

    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in OpenAPIV31SpecValidator(doc).iter_errors()]


def unresolved_refs(doc: Any) -> list[str]:
    """Every local ``$ref`` in the document that does not resolve, as ``'<where>: <ref>'`` strings.

    Only local references (``#/...``) are allowed in vendored contracts; a remote one is reported too.
    """
    bad: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if not ref.startswith("#"):
                    bad.append(f"{where}: remote $ref {ref}")
                else:
                    try:
                        resolve_pointer(doc, ref)
                    except (KeyError, IndexError, ValueError):
                        bad.append(f"{where}: {ref}")
            for k, v in node.items():
                walk(v, f"{where}/{_escape(k)}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(doc, "#")
    return bad


@dataclass(frozen=True)
class Example:
    """One example found in a contract.

    ``schema_pointer`` locates the schema the value must satisfy (None if the location has no schema);
    ``where`` is a human-readable location (``POST /videos request application/json: seed-example``).
    """

    where: str
    name: str
    value: Any
    schema_pointer: str | None
    expected_invalid: str | None
    source: dict | None


def _examples_of(node: dict, base: tuple, where: str, schema_ptr: str | None, doc: dict) -> Iterator[Example]:
    if "example" in node:
        yield Example(where, "example", node["example"], schema_ptr, None, None)
    for name, ex in (node.get("examples") or {}).items():
        if isinstance(ex, dict) and "$ref" in ex:
            ex = resolve_pointer(doc, ex["$ref"])
        if not isinstance(ex, dict) or "value" not in ex:
            continue
        yield Example(f"{where}: {name}", name, ex["value"], schema_ptr, ex.get("x-expected-invalid"),
                      ex.get("x-source"))


def _resolve_obj(doc: dict, node: Any, base: tuple) -> tuple[Any, tuple]:
    """Follow a ``$ref`` on a parameter/response/requestBody object; returns (object, its path tokens)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 10:
        ref = node["$ref"]
        base = tuple(t.replace("~1", "/").replace("~0", "~") for t in ref.lstrip("#/").split("/"))
        node = resolve_pointer(doc, ref)
        seen += 1
    return node, base


def iter_examples(doc: dict) -> Iterator[Example]:
    """Yield every example in an OpenAPI document: media types of request bodies, responses,
    parameters, headers and schemas (``examples`` keyword of a schema: each item must satisfy it).
    Webhook and callback operations are included.
    """

    def media(content: dict, base: tuple, where: str) -> Iterator[Example]:
        for ctype, mt in (content or {}).items():
            sp = pointer(*base, ctype, "schema") if isinstance(mt, dict) and "schema" in mt else None
            if isinstance(mt, dict):
                yield from _examples_of(mt, (*base, ctype), f"{where} {ctype}", sp, doc)

    def operation(op: dict, base: tuple, where: str) -> Iterator[Example]:
        for i, param in enumerate(op.get("parameters") or []):
            p, pbase = _resolve_obj(doc, param, (*base, "parameters", i))
            if isinstance(p, dict):
                sp = pointer(*pbase, "schema") if "schema" in p else None
                yield from _examples_of(p, pbase, f"{where} parameter {p.get('name')}", sp, doc)
        if "requestBody" in op:
            rb, rbase = _resolve_obj(doc, op["requestBody"], (*base, "requestBody"))
            yield from media(rb.get("content"), (*rbase, "content"), f"{where} request")
        for status, resp in (op.get("responses") or {}).items():
            r, rbase = _resolve_obj(doc, resp, (*base, "responses", status))
            yield from media(r.get("content"), (*rbase, "content"), f"{where} {status}")
            for hname, header in (r.get("headers") or {}).items():
                h, hbase = _resolve_obj(doc, header, (*rbase, "headers", hname))
                if isinstance(h, dict):
                    sp = pointer(*hbase, "schema") if "schema" in h else None
                    yield from _examples_of(h, hbase, f"{where} {status} header {hname}", sp, doc)
        for cname, cb in (op.get("callbacks") or {}).items():
            for expr, item in (cb or {}).items():
                for m in HTTP_METHODS:
                    if isinstance(item, dict) and isinstance(item.get(m), dict):
                        yield from operation(item[m], (*base, "callbacks", cname, expr, m),
                                             f"{where} callback {cname} {m.upper()}")

    for path, item in (doc.get("paths") or {}).items():
        for m in HTTP_METHODS:
            if isinstance(item, dict) and isinstance(item.get(m), dict):
                yield from operation(item[m], ("paths", path, m), f"{m.upper()} {path}")
    for name, item in (doc.get("webhooks") or {}).items():
        for m in HTTP_METHODS:
            if isinstance(item, dict) and isinstance(item.get(m), dict):
                yield from operation(item[m], ("webhooks", name, m), f"webhook {name}")
    comps = doc.get("components") or {}
    for kind in ("examples",):
        for name, ex in (comps.get(kind) or {}).items():
            if isinstance(ex, dict) and "x-schema" in ex:  # standalone example naming its schema
                yield Example(f"components/examples/{name}", name, ex.get("value"), ex["x-schema"],
                              ex.get("x-expected-invalid"), ex.get("x-source"))
    for sname, schema in (comps.get("schemas") or {}).items():
        if isinstance(schema, dict):
            for i, value in enumerate(schema.get("examples") or []):
                yield Example(f"components/schemas/{sname} examples[{i}]", f"{sname}[{i}]", value,
                              pointer("components", "schemas", sname), None, None)


def schema_errors(doc: dict, schema_pointer: str, value: Any) -> list[str]:
    """Validate ``value`` against the schema at ``schema_pointer`` in ``doc`` (OpenAPI 3.1 dialect,
    local ``$ref`` resolved against the document). Returns error messages (empty when valid)."""
    from openapi_schema_validator import OAS31Validator, oas31_format_checker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource(_DOC_URI, Resource(contents=doc, specification=DRAFT202012))
    validator = OAS31Validator({"$ref": _DOC_URI + schema_pointer}, registry=registry,
                               format_checker=oas31_format_checker)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in validator.iter_errors(value)]


def source_problem(source: dict | None) -> str | None:
    """Check an ``x-source`` object: the file exists under ``specs/sources/`` and contains ``quote``."""
    if source is None:
        return None
    if not isinstance(source, dict) or "file" not in source or "quote" not in source:
        return f"x-source must be {{file, quote}}, got {source!r}"
    path = SOURCES_DIR / source["file"]
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return f"x-source file {source['file']} not found under specs/sources/"
    if str(source["quote"]) not in text:
        return f"x-source quote {source['quote']!r} not found in {source['file']}"
    return None


def example_problems(doc: dict) -> list[str]:
    """All example problems of a contract: invalid examples not marked ``x-expected-invalid``,
    examples marked ``x-expected-invalid`` that validate anyway, and bad ``x-source`` references."""
    problems: list[str] = []
    for ex in iter_examples(doc):
        sp = source_problem(ex.source)
        if sp:
            problems.append(f"{ex.where}: {sp}")
        if ex.schema_pointer is None:
            continue
        errs = schema_errors(doc, ex.schema_pointer, ex.value)
        if ex.expected_invalid and not errs:
            problems.append(f"{ex.where}: marked x-expected-invalid ({ex.expected_invalid}) but validates")
        elif not ex.expected_invalid and errs:
            problems.append(f"{ex.where}: {errs[0]}")
    return problems


def annotation_problems(doc: dict) -> list[str]:
    """Problems of the contract's expectation annotations (see docs/contracts.md "Expectation sources"):

    - ``x-mock-only: <why>`` marks a response that exists only so our mock's answer has a contract (no
      provider document backs it); it must be a non-empty string on a response object (an entry of an
      operation's ``responses`` or of ``components/responses``);
    - ``x-assumption`` is a list of objects with string ``source`` and ``chosen`` (and ``why``); its optional
      ``keywords`` lists schema keywords of the same object that are assumed, not documented (each must be a
      key of that object), so the conformance suite can tell a documented constraint from an assumed one.

    Returns one line per problem (empty when the annotations are well formed)."""
    problems: list[str] = []

    def walk(node: Any, path: tuple, in_responses: bool) -> None:
        where = "/".join(str(p) for p in path) or "(root)"
        if isinstance(node, dict):
            if "x-mock-only" in node:
                why = node["x-mock-only"]
                if not isinstance(why, str) or not why.strip():
                    problems.append(f"{where}: x-mock-only must say why (a non-empty string)")
                if not in_responses:
                    problems.append(f"{where}: x-mock-only belongs on a response object")
            if "x-assumption" in node:
                entries = node["x-assumption"]
                if not isinstance(entries, list) or not entries:
                    problems.append(f"{where}: x-assumption must be a non-empty list")
                    entries = []
                for i, entry in enumerate(entries):
                    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) and entry.get(k)
                                                              for k in ("source", "chosen")):
                        problems.append(f"{where}: x-assumption[{i}] needs string source and chosen")
                        continue
                    keywords = entry.get("keywords")
                    if keywords is None:
                        continue
                    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
                        problems.append(f"{where}: x-assumption[{i}].keywords must be a list of keyword names")
                        continue
                    for k in keywords:
                        if k not in node:
                            problems.append(f"{where}: x-assumption[{i}].keywords names {k!r}, which this object "
                                            "does not have")
            for key, value in node.items():
                if key in ("x-assumption", "x-doc-defect", "examples", "example"):
                    continue
                parent_is_responses = key == "responses" or (len(path) >= 1 and path[-1] == "responses")
                walk(value, path + (key,), in_responses=parent_is_responses and key != "responses")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, path + (i,), False)

    walk(doc, (), False)
    return problems
