"""Shared helpers of the mock-vs-contract tests (test_mock_admin/contract/fuzz/bad_requests).

- :class:`AdminChecked` / :class:`HostChecked`: httpx response hooks that validate every response against
  the admin contract (``specs/mockadmin/openapi.yaml``) or a provider host's contract
  (:class:`mockserver.validation.HostValidator`, i.e. openapi-core: status code, headers, body and
  content type). A response outside the contract raises ``AssertionError`` in the test that got it.
- :func:`auth_header`: a valid ``Authorization`` value in a provider's preferred scheme (provider.yaml).
- :func:`schema_errors`: validate a value against a schema of a contract (for bodies of paths the contract
  does not declare, e.g. a 405 on an undeclared method).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

import specs
from mockserver.validation import HostValidator

KEY = "sk-contract-test-key-0123456789"


def auth_header(contract: specs.Contract, key: str = KEY) -> dict[str, str]:
    """``{header: value}`` with ``key`` in the provider's preferred scheme (provider.yaml ``auth``)."""
    auth = contract.auth
    value = key if auth["preferred"] == "raw" else f"{auth['preferred']} {key}"
    return {auth["header"]: value}


class _Req:
    """openapi-core request protocol for an httpx request (path given relative to the server root)."""

    def __init__(self, host_url: str, path: str, request: httpx.Request):
        self.host_url = host_url
        self.path = path
        self.method = request.method.lower()
        self.body = None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(query=ImmutableMultiDict(list(request.url.params.multi_items())),
                                            header=Headers(list(request.headers.items())))


class _Resp:
    def __init__(self, response: httpx.Response):
        self.status_code = response.status_code
        self.data = response.content
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(list(response.headers.items()))


def schema_errors(document: dict, pointer: str, value: Any) -> list[str]:
    """Messages of ``value`` against the schema at ``pointer`` (``#/components/schemas/Error``) of an
    OpenAPI 3.1 ``document`` (local ``$ref`` resolved); empty when valid."""
    import jsonschema
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:contract", DRAFT202012.create_resource(document))
    validator = jsonschema.Draft202012Validator({"$ref": "urn:contract" + pointer}, registry=registry)
    return [e.message for e in validator.iter_errors(value)]


class AdminChecked:
    """httpx response hook: every admin response must match ``specs/mockadmin/openapi.yaml``.

    A 405 (an undeclared method on a declared path) is checked against ``components.responses
    .MethodNotAllowed`` (Error body and an ``Allow`` header), since no operation declares it.
    """

    def __init__(self):
        self.document = specs.load_admin()
        self.openapi = OpenAPI.from_dict(self.document)
        server = urlsplit(self.document["servers"][0]["url"])
        self.host_url = f"{server.scheme}://{server.netloc}"
        self.checked: list[tuple[str, str, int]] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        req = response.request
        if response.status_code == 405:
            assert response.headers.get("Allow"), "405 without an Allow header"
            errors = schema_errors(self.document, "#/components/schemas/Error", response.json())
        else:
            errors = [str(e) for e in self.openapi.iter_response_errors(
                _Req(self.host_url, req.url.path, req), _Resp(response))]
        assert not errors, f"{req.method} {req.url.path} -> {response.status_code} is outside the admin " \
                           f"contract: {errors}\n{response.text[:500]}"
        self.checked.append((req.method, req.url.path, response.status_code))


class HostChecked:
    """httpx response hook: every response of a provider host must match its contract (HostValidator).

    ``base_url`` is the mock's base URL of that host; request paths are taken relative to it. A 405 (no
    operation has this method on the path) is checked as the response of the first method in ``Allow``.
    """

    def __init__(self, contract: specs.Contract, host_id: str, base_url: str):
        self.contract = contract
        self.host_id = host_id
        self.validator = HostValidator(contract, host_id)
        self.prefix = urlsplit(base_url).path.rstrip("/")
        self.checked: list[tuple[str, str, int]] = []

    def errors(self, response: httpx.Response) -> list[str]:
        response.read()
        req = response.request
        # the raw path (an id holding "%2F" is one segment); sunra-client's "//" is served as "/"
        raw = req.url.raw_path.split(b"?")[0].decode("ascii")
        path = re.sub(r"/{2,}", "/", raw).removeprefix(self.prefix)
        method = req.method
        if response.status_code == 405 and response.headers.get("Allow"):
            method = response.headers["Allow"].split(",")[0].strip()
        errors = self.validator.response_errors(method, path, dict(req.url.params), dict(req.headers),
                                                response.status_code, response.content,
                                                response.headers.get("content-type", ""), dict(response.headers))
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            errors += self.event_errors(method, path, response)
        return errors

    def event_errors(self, method: str, path: str, response: httpx.Response) -> list[str]:
        """Every ``data:`` event of a Server-Sent Events body must be JSON matching the response media
        type's ``x-event-schema`` (fal/sunra status streams); at least one event is required."""
        import json

        op = next((o for o in self.contract.operations() if o.host == self.host_id and o.method == method
                   and o.path_regex.match(path)), None)
        if op is None:
            return [f"no operation for {method} {path}"]
        document = self.contract.host_document(self.host_id)
        resp = deref(document, (op.definition.get("responses") or {}).get(str(response.status_code)) or {})
        media = (resp.get("content") or {}).get("text/event-stream") or {}
        if "x-event-schema" not in media:
            return []
        events = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        if not events:
            return ["the event stream carries no data event"]
        out = []
        for raw in events:
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                out.append(f"event is not JSON: {raw[:80]}")
                continue
            out += [f"event {raw[:80]}: {e}" for e in schema_errors_at(document, media["x-event-schema"], value)]
        return out

    def __call__(self, response: httpx.Response) -> None:
        errors = self.errors(response)
        req = response.request
        assert not errors, (f"{self.contract.id}/{self.host_id}: {req.method} {req.url.path} -> "
                            f"{response.status_code} is outside the contract: {errors}\n{response.text[:500]}")
        self.checked.append((req.method, req.url.path, response.status_code))


# -- request building from the contract -----------------------------------------------------------------
PROMPT = "a red fox running through fresh snow at dawn"


def deref(document: dict, node: Any) -> Any:
    """Follow local ``$ref`` chains (``#/components/...``) in ``document``."""
    from specs.validate import resolve_pointer

    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        node = resolve_pointer(document, node["$ref"])
        seen += 1
        assert seen < 50, "circular $ref"
    return node


def minimal_instance(document: dict, schema: Any, name: str | None = None) -> Any:
    """A small value that should satisfy ``schema``: const / examples / default / enum first, else the
    required properties of an object, a ``minLength`` string, a ``minimum`` number. The caller validates
    the result (this is a builder, not a proof)."""
    schema = deref(document, schema)
    if not isinstance(schema, dict):
        return None
    for key in ("const",):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if "example" in schema:
        return schema["example"]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if schema.get("enum"):
        return next((v for v in schema["enum"] if v is not None), None)
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in [schema, *schema["allOf"]]:
            part = deref(document, part)
            merged["properties"].update(part.get("properties") or {})
            merged["required"] += part.get("required") or []
        if any(k in merged["properties"] for k in merged["required"]) or merged["properties"]:
            return minimal_instance(document, merged, name)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            branches = [deref(document, b) for b in schema[key]]
            branches = [b for b in branches if b.get("type") != "null"] or branches
            base = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf")}
            branch = branches[0]
            if base.get("properties") or base.get("type") == "object":
                combined = {**base, **branch, "properties": {**(base.get("properties") or {}),
                                                             **(branch.get("properties") or {})},
                            "required": [*(base.get("required") or []), *(branch.get("required") or [])]}
                return minimal_instance(document, combined, name)
            return minimal_instance(document, branch, name)
    types = schema.get("type")
    if isinstance(types, list):
        types = next((t for t in types if t != "null"), "null")
    if types is None and (schema.get("properties") or schema.get("required")):
        types = "object"
    if types == "object":
        props = schema.get("properties") or {}
        return {k: minimal_instance(document, props.get(k, {}), k) for k in schema.get("required") or []}
    if types == "array":
        return [minimal_instance(document, schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if types == "string":
        if name == "prompt":
            return PROMPT[: schema.get("maxLength", len(PROMPT))]
        if schema.get("format") in ("uri", "url"):
            return "https://example.invalid/source.mp4"
        return "x" * max(1, schema.get("minLength", 1))
    if types == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1))
    if types == "number":
        return schema.get("minimum", 1)
    if types == "boolean":
        return False
    if types == "null":
        return None
    return {}


def set_pointer(body: Any, pointer: str, value: Any) -> None:
    """Set ``value`` at a JSON pointer (``/video/id``) in ``body``, creating objects on the way."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.lstrip("/").split("/") if t]
    node = body
    for t in tokens[:-1]:
        node = node.setdefault(t, {})
    node[tokens[-1]] = value


def remove_pointer(body: Any, pointer: str) -> None:
    """Remove the value at a JSON pointer from ``body`` (nothing happens when it is absent)."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.lstrip("/").split("/") if t]
    node = body
    for t in tokens[:-1]:
        node = node.get(t) if isinstance(node, dict) else None
    if isinstance(node, dict) and tokens:
        node.pop(tokens[-1], None)


def job_kinds(op: specs.Operation) -> list[str]:
    """The job kinds an operation can create (``x-kind`` string or mapping), sorted."""
    if isinstance(op.kind, dict):
        return sorted(set(op.kind.get("map", {}).values()) | {op.kind.get("default") or "generate"})
    return [op.kind] if op.kind else []


def callback_body_pointers(document: dict, op: specs.Operation) -> list[str]:
    """JSON pointers of request-body fields that name a webhook URL (``{$request.body#/webhook_url}``
    keys of the operation's OpenAPI ``callbacks``)."""
    import re

    out = []
    for callback in (op.definition.get("callbacks") or {}).values():
        for expression in deref(document, callback) or {}:
            m = re.match(r"^\{\$request\.body#(/[^}]*)\}$", str(expression))
            if m:
                out.append(m.group(1))
    return out


def request_body(contract: specs.Contract, op: specs.Operation, kind: str | None = None,
                 source_ref: str | None = None) -> tuple[str, Any] | None:
    """A valid request body for ``op`` (creating a job of ``kind``, remixing ``source_ref``), or None
    when the operation takes no body: JSON when the operation accepts it, else ``multipart/form-data`` (a dict
    whose file parts are :data:`UPLOAD_MP4` bytes; send it with :func:`multipart_files`). Taken from the first
    request example that validates (as vendored, minus webhook URL fields), else built from the schema with
    :func:`minimal_instance`; the result is checked against the schema, so a contract no valid body can be
    built for fails loudly.

    Returns ``(media_type, body)``.
    """
    import copy

    from specs.validate import iter_examples

    document = contract.host_document(op.host)
    rb = op.definition.get("requestBody")
    if rb is None:
        return None
    rb = deref(document, rb)
    media = "application/json" if "application/json" in rb["content"] else next(iter(rb["content"]))
    multipart = media == "multipart/form-data"
    assert media.endswith("json") or multipart, f"{op.operation_id}: only JSON and form bodies are built here"
    schema = rb["content"][media]["schema"]
    files = _file_properties(document, schema) if multipart else set()
    candidates = []
    for ex in iter_examples(contract.openapi):
        if ex.where.startswith(f"{op.method} {op.spec_path} request {media}:") and not ex.expected_invalid:
            candidates.append(copy.deepcopy(ex.value))
    candidates.append(minimal_instance(document, schema))
    problems = []
    for body in candidates:
        if not isinstance(body, dict):
            continue
        for ptr in callback_body_pointers(contract.openapi, op):
            remove_pointer(body, ptr)
        if isinstance(op.kind, dict) and kind is not None:
            value = next(k for k, v in op.kind["map"].items() if v == kind) if kind in op.kind["map"].values() \
                else None
            if value is not None:
                set_pointer(body, op.kind["pointer"], value)
        source = op.source or {}
        if source.get("in") == "body":
            if kind == "remix" or not isinstance(op.kind, dict):
                set_pointer(body, source["pointer"], source_ref or "missing-source")
            else:
                remove_pointer(body, source["pointer"])
        for name in files & set(body):
            body[name] = "upload"  # a file part validates as any non-structured value (BinaryFile)
        errors = schema_errors_at(document, schema, body)
        if not errors:
            assert kind is None or op.kind_for(body) == kind, (op.operation_id, kind, body)
            return media, {k: (UPLOAD_MP4 if k in files else v) for k, v in body.items()}
        problems.append((body, errors))
    raise AssertionError(f"{contract.id} {op.operation_id}: no valid request body could be built: {problems}")


#: The bytes of a file part of a built form body: a real MP4 (64x64, 1 s, H.264), the suite's upload sample.
UPLOAD_MP4 = (Path(__file__).resolve().parent.parent / "conformance" / "samples" / "upload.mp4").read_bytes()


def _file_properties(document: dict, schema: Any) -> set[str]:
    """Properties of a form schema that are file parts (``contentMediaType`` or ``format: binary``)."""
    schema = deref(document, schema)
    out = set()
    for name, prop in ((schema or {}).get("properties") or {}).items():
        prop = deref(document, prop)
        if isinstance(prop, dict) and ("contentMediaType" in prop or prop.get("format") == "binary"):
            out.add(name)
    return out


def multipart_files(body: dict[str, Any]) -> list[tuple[str, tuple]]:
    """httpx ``files=`` for a form body built by :func:`request_body`: bytes as an ``upload.mp4`` file part,
    text as a plain field, anything else as its JSON text."""
    import json

    return [(k, ("upload.mp4", v, "video/mp4") if isinstance(v, bytes) else
             (None, v if isinstance(v, str) else json.dumps(v))) for k, v in body.items()]


def schema_errors_at(document: dict, schema: Any, value: Any) -> list[str]:
    """Messages of ``value`` against ``schema`` (a node of ``document``, ``$ref`` allowed)."""
    import jsonschema
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:contract", DRAFT202012.create_resource(document))
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#"):
        schema = {"$ref": "urn:contract" + schema["$ref"]}
    else:
        schema = _rebase_refs(schema)
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)]


def _rebase_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: ("urn:contract" + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else
                    _rebase_refs(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase_refs(v) for v in node]
    return node


# -- the all-providers mock -----------------------------------------------------------------------------
def family_problems() -> dict[str, str]:
    """``{provider: reason}`` for providers whose family adapter cannot be imported (yet)."""
    from mockserver.families import family_for

    out = {}
    for pid, contract in specs.load_all().items():
        for host in contract.hosts:
            try:
                family_for(host["family"])
            except Exception as exc:  # reported by every test of that provider, never skipped
                out[pid] = (f"{pid}: the {host['family']!r} family adapter cannot be loaded "
                            f"({type(exc).__name__}: {exc})")
                break
    return out


def component_response_errors(contract: specs.Contract, host_id: str, name: str,
                              response: httpx.Response) -> list[str]:
    """Check an answer that belongs to no operation (a 404 for an unknown path, a 405 for an undeclared
    method) against ``components.responses[name]`` of the host's contract: JSON body schema, required
    headers and their schemas."""
    import json

    document = contract.host_document(host_id)
    declared = deref(document, (document.get("components") or {}).get("responses", {}).get(name))
    if declared is None:
        return [f"{contract.id}: no components.responses.{name}"]
    out = []
    ctype = response.headers.get("content-type", "").split(";")[0].strip()
    content = declared.get("content") or {}
    if ctype not in content:
        out.append(f"content type {ctype!r} is not one of {sorted(content)}")
    else:
        try:
            body = json.loads(response.content)
        except ValueError:
            return [f"body is not JSON: {response.text[:200]}"]
        out += schema_errors_at(document, content[ctype].get("schema") or {}, body)
    for hname, header in (declared.get("headers") or {}).items():
        header = deref(document, header)
        value = response.headers.get(hname)
        if value is None:
            if header.get("required"):
                out.append(f"missing required header {hname}")
            continue
        schema = deref(document, header.get("schema") or {})
        if schema.get("type") == "integer" and value.isdigit():
            value = int(value)
        out += [f"header {hname}: {e}" for e in schema_errors_at(document, schema, value)]
    return out
