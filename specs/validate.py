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
from .pointers import deref as deref  # JSON pointers and $ref live in specs/pointers.py; re-exported here
from .pointers import deref_pointer, escape, pointer, resolve_pointer, tokens
from .pointers import get_pointer as get_pointer

SOURCES_DIR = SPECS_DIR / "sources"
_DOC_URI = "urn:contract:doc"


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
                walk(v, f"{where}/{escape(k)}")
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
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        node, ref = deref_pointer(doc, node["$ref"])
        base = tuple(tokens(ref))
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


NEUTRAL_STATES = ("queued", "in_progress", "completed", "failed", "cancelled")


def _delivery_problems(spec: Any) -> list[str]:
    if not isinstance(spec, dict):
        return ["x-delivery must be an object {job_id, status, statuses}"]
    out = []
    for key in ("job_id", "status"):
        if not isinstance(spec.get(key), str) or not spec[key].startswith("/"):
            out.append(f"x-delivery.{key} must be a JSON pointer into the delivered body")
    statuses = spec.get("statuses")
    if statuses is not None and (not isinstance(statuses, dict) or
                                 not all(v in NEUTRAL_STATES for v in statuses.values())):
        out.append(f"x-delivery.statuses must map delivered values onto {', '.join(NEUTRAL_STATES)}")
    return out


def annotation_problems(doc: dict) -> list[str]:
    """Problems of the contract's expectation annotations (see docs/contracts.md "Expectation sources"):

    - ``x-mock-only: <why>`` marks a response that exists only so our mock's answer has a contract (no
      provider document backs it); it must be a non-empty string on a response object (an entry of an
      operation's ``responses`` or of ``components/responses``);
    - ``x-delivery: {job_id, status, statuses}`` on a callback or webhook operation says where a delivered body
      names its job and its status (JSON pointers) and how status values map onto the neutral lifecycle
      (without ``statuses``, the provider's own status values apply);
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
            if "x-delivery" in node:
                problems.extend(f"{where}: {p}" for p in _delivery_problems(node["x-delivery"]))
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


def upstream_problems(doc: dict, findings: Any = None) -> list[str]:
    """Problems of a contract's differences from its upstream spec (docs/contracts.md, "Differences from an
    upstream spec"); empty when every difference is explained.

    A contract that copies a published spec names it in ``x-upstream: {file, repository, commit, date,
    differences}`` (``file`` under ``specs/sources/``). A difference is a finding of ``conformance diff
    <upstream> <contract>`` (``conformance.drift.specdiff.diff_contracts``): a ``kind`` and a ``pointer`` as
    the diff reports it. It is *explained* when an entry of an ``x-doc-defect`` or ``x-assumption`` list, or of
    ``x-upstream.differences``, satisfies all of:

    1. the entry has a non-empty ``why`` (and ``chosen``): it says why the contract differs;
    2. its ``upstream`` list holds a matcher ``{kind, at}`` whose ``kind`` (a string or a list) names the
       finding's kind and whose ``at`` matches the finding's pointer: both are split on ``/`` (tokens stay
       escaped, ``~1videos``); a pattern token ``**`` matches any number of tokens (none too), ``*`` inside a
       token matches any run of characters of that token, every other character matches itself;
    3. the entry sits on a node the finding concerns: the document root (top-level ``x-doc-defect`` /
       ``x-assumption``, and ``x-upstream.differences``), or a node that the finding's pointer passes
       through in the contract when it is followed with every ``$ref`` resolved (an operation, a parameter,
       a request body, a response, a header, a schema or one of its properties; a ``$ref``'d component
       counts wherever it is used; a property found in an ``allOf``/``anyOf``/``oneOf`` branch counts too).

    Args:
        doc: the contract (an OpenAPI dict).
        findings: the diff's findings (objects or dicts with ``kind``, ``pointer`` and optionally
            ``severity``/``message``), or None to check the annotations' shape only.

    Returns one line per problem: a malformed ``x-upstream`` or ``upstream`` matcher, a finding no entry
    explains, and (when findings are given) a matcher that matches no finding (a stale explanation).
    """
    import re

    problems: list[str] = []
    meta = doc.get("x-upstream")
    entries: list[tuple[str, str, dict]] = []  # (node pointer, entry location, entry)
    if meta is not None:
        if not isinstance(meta, dict):
            problems.append("x-upstream must be an object {file, repository, commit, date, differences}")
            meta = {}
        for key in ("file", "repository", "commit", "date"):
            if not isinstance(meta.get(key), str) or not meta.get(key):
                problems.append(f"x-upstream.{key} must be a non-empty string")
        if isinstance(meta.get("file"), str) and meta.get("file"):
            import yaml

            try:
                up = yaml.safe_load((SOURCES_DIR / meta["file"]).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                up = None
                problems.append(f"x-upstream.file {meta['file']} is not a readable YAML file under "
                                f"specs/sources/ ({type(exc).__name__})")
            if up is not None and not (isinstance(up, dict) and str(up.get("openapi", "")).startswith("3")):
                problems.append(f"x-upstream.file {meta['file']} is not an OpenAPI 3 document")
            vendored = ((up or {}).get("info") or {}).get("x-vendored") if isinstance(up, dict) else None
            if isinstance(vendored, dict):
                for key, theirs in (("commit", "commit"), ("date", "commit_date")):
                    if theirs in vendored and str(vendored[theirs]) != str(meta.get(key)):
                        problems.append(f"x-upstream.{key} {meta.get(key)!r} differs from the file's "
                                        f"info.x-vendored.{theirs} {vendored[theirs]!r}")
        diffs = meta.get("differences", [])
        if not isinstance(diffs, list):
            problems.append("x-upstream.differences must be a list")
            diffs = []
        for i, entry in enumerate(diffs):
            entries.append(("#", f"#/x-upstream/differences/{i}", entry))
            if not isinstance(entry, dict) or not isinstance(entry.get("upstream"), list):
                problems.append(f"#/x-upstream/differences/{i}: needs an upstream list of {{kind, at}}")

    def collect(node: Any, path: tuple) -> None:
        if isinstance(node, dict):
            for key in ("x-doc-defect", "x-assumption"):
                if isinstance(node.get(key), list):
                    for i, entry in enumerate(node[key]):
                        if isinstance(entry, dict) and "upstream" in entry:
                            entries.append((pointer(*path) if path else "#", pointer(*path, key, i), entry))
            for key, value in node.items():
                if key not in ("x-doc-defect", "x-assumption", "x-upstream", "examples", "example"):
                    collect(value, path + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                collect(value, path + (i,))

    collect(doc, ())

    def token_re(tok: str) -> re.Pattern:
        return re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", tok)))

    def matches(pattern: list[str], toks: list[str]) -> bool:
        if not pattern:
            return not toks
        if pattern[0] == "**":
            return any(matches(pattern[1:], toks[i:]) for i in range(len(toks) + 1))
        return bool(toks) and bool(token_re(pattern[0]).fullmatch(toks[0])) and matches(pattern[1:], toks[1:])

    def split(ptr: str) -> list[str]:
        return ptr[2:].split("/") if ptr.startswith("#/") else []

    matchers: list[tuple[str, str, dict, list[str], set[str], list[str]]] = []
    for node_ptr, where, entry in entries:
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        if not (isinstance(entry.get("why"), str) and entry["why"].strip()
                and isinstance(entry.get("chosen"), str) and entry["chosen"].strip()):
            problems.append(f"{where}: an entry that explains upstream differences needs chosen and why")
        ups = entry.get("upstream")
        if not isinstance(ups, list) or not ups:
            problems.append(f"{where}: upstream must be a non-empty list of {{kind, at}}")
            continue
        for j, m in enumerate(ups):
            kinds = m.get("kind") if isinstance(m, dict) else None
            kinds = [kinds] if isinstance(kinds, str) else kinds
            at = m.get("at") if isinstance(m, dict) else None
            if (not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) and k for k in kinds)
                    or not isinstance(at, str) or not at.startswith("#/") or set(m) - {"kind", "at"}):
                problems.append(f"{where}/upstream/{j}: must be {{kind: <finding kind or list>, at: "
                                f"<pointer pattern starting #/>}}, got {m!r}")
                continue
            matchers.append((node_ptr, f"{where}/upstream/{j}", m, split(at), set(kinds), []))
    if findings is None:
        return problems

    def step(node: Any, where: str, tok: str, out: list[str], depth: int = 0) -> tuple[Any, str] | None:
        if isinstance(node, dict):
            if tok in node:
                return node[tok], f"{where}/{escape(tok)}"
            for key in node:  # header names are compared case-insensitively by the diff
                if isinstance(key, str) and key.lower() == tok.lower() and where.endswith("/headers"):
                    return node[key], f"{where}/{escape(key)}"
            if depth < 8:
                for kw in ("allOf", "anyOf", "oneOf"):
                    for i, branch in enumerate(node.get(kw) or []):
                        b, bw = follow(branch, f"{where}/{kw}/{i}", out)
                        got = step(b, bw, tok, out, depth + 1)
                        if got is not None:
                            out.extend([f"{where}/{kw}/{i}", bw])
                            return got
        elif isinstance(node, list):
            if tok.isdigit() and int(tok) < len(node):
                return node[int(tok)], f"{where}/{tok}"
            loc, _, name = tok.partition(":")
            for i, p in enumerate(node):
                pd, _ = follow(p, f"{where}/{i}", [])
                if isinstance(pd, dict) and pd.get("in") == loc and (
                        pd.get("name") == name
                        or (loc == "header" and str(pd.get("name", "")).lower() == name.lower())):
                    return p, f"{where}/{i}"
        return None

    def follow(node: Any, where: str, out: list[str]) -> tuple[Any, str]:
        for _ in range(32):
            ref = node.get("$ref") if isinstance(node, dict) else None
            if not (isinstance(ref, str) and ref.startswith("#/")):
                break
            try:
                node, where = resolve_pointer(doc, ref), ref
            except KeyError:
                return None, where
            out.append(where)
        return node, where

    def concerned(ptr: str) -> set[str]:
        out = ["#"]
        node, where = doc, "#"
        for raw in split(ptr):
            node, where = follow(node, where, out)
            tok = raw.replace("~1", "/").replace("~0", "~")
            got = step(node, where, tok, out)
            item = re.fullmatch(r"(#/paths/[^/]+)/[a-z]+(/parameters)?", where)
            if got is None and item:  # a parameter the path item declares for all its operations
                params = resolve_pointer(doc, item.group(1)).get("parameters") or []
                got = (params, f"{item.group(1)}/parameters") if tok == "parameters" else step(
                    params, f"{item.group(1)}/parameters", tok, out)
            if got is None:
                break
            node, where = got
            out.append(where)
        else:
            follow(node, where, out)
        return set(out)

    for f in findings:
        get = (lambda k, f=f: f.get(k)) if isinstance(f, dict) else (lambda k, f=f: getattr(f, k, None))
        kind, ptr = get("kind"), str(get("pointer") or "")
        on_path = concerned(ptr)
        toks = split(ptr)
        hit = False
        for node_ptr, _, _, pattern, kinds, used in matchers:
            if kind in kinds and matches(pattern, toks) and node_ptr in on_path:
                used.append(ptr)
                hit = True
        if not hit:
            problems.append(f"unexplained [{get('severity') or '?'}] {kind} at {ptr}"
                            + (f": {get('message')}" if get("message") else ""))
    for _, where, m, _, _, used in matchers:
        if not used:
            problems.append(f"{where}: {m!r} explains no finding (stale; remove it or fix its pointer)")
    return problems
