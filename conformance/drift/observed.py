"""Observed drift: compare recorded traffic (a cassette) with the provider's contract.

Each interaction is matched to an operation through the host documents of the contract
(``specs.Contract.host_document``): the cassette's ``hosts`` say which base URL each host was recorded
against, the rest of the URL is matched against the operation paths (literal paths before templated ones).
Then, per operation:

========================== ============== ============================================================
kind                        severity       meaning
========================== ============== ============================================================
``undocumented_status``     breaking (2xx/ the status code is not declared; an error status is
                            3xx), else     non-breaking (clients must handle errors anyway)
                            non-breaking
``undocumented_content_type`` breaking (2xx) the Content-Type is not declared for that status
                            else non-br.
``missing_body``            breaking       a declared body (with a schema) is absent
``type_change``             breaking       a value has another JSON type than declared (or the JSON body
                                           is not JSON)
``new_enum_value``          breaking       a value outside a declared enum or const (a new status value)
``missing_required_field``  breaking       a required field is absent
``undocumented_field``      non-breaking   a field the schema does not declare (a renamed field shows up
                                           as this plus ``missing_required_field``)
``constraint_violation``    non-breaking   same type, outside a declared constraint (maximum, pattern ...)
``missing_required_header`` breaking       a response header declared ``required: true`` is absent
``header_change``           breaking       a declared header's value breaks its schema (type, enum)
``undocumented_header``     info           a response header that is neither declared nor generic
                                           infrastructure (Date, Server, CDN and tracing headers,
                                           ``*request-id``)
``lifecycle_new_state``     breaking       a status value outside provider.yaml ``statuses`` (e.g. a new
                                           intermediate status between queued and in_progress)
``lifecycle_regression``    breaking       the status moved backwards (in_progress -> queued)
``lifecycle_terminal_changed`` breaking    a terminal status changed (completed -> in_progress/failed)
``request_rejected``        breaking       a request the flow built from the contract (``expect: success``)
                                           was answered with an error
``error_not_raised``        non-breaking   a probe that must fail (``expect: error``) succeeded
``undocumented_operation``  info           a URL under a host's base URL that matches no operation
``transport_error``         info           no response (reset, timeout)
========================== ============== ============================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import specs
from specs import Contract, Operation
from specs.cassette import Cassette, Interaction, is_json_type, media_type

from .findings import Finding, Report
from .schemawalk import SchemaWalker, esc

ISSUE_SEVERITY = {"type_change": "breaking", "new_enum_value": "breaking", "missing_required_field": "breaking",
                  "undocumented_field": "non-breaking", "constraint_violation": "non-breaking"}
LIFECYCLE_ROLES = {"create", "remix", "edit", "submit", "retrieve", "status"}
_RANK = {"queued": 0, "in_progress": 1, "completed": 2, "failed": 2, "cancelled": 2}
_TERMINAL = {"completed", "failed", "cancelled"}
INFRA_HEADERS = {
    "date", "server", "content-length", "content-type", "connection", "keep-alive", "transfer-encoding",
    "content-encoding", "vary", "etag", "last-modified", "cache-control", "expires", "pragma", "age", "via",
    "alt-svc", "strict-transport-security", "x-content-type-options", "x-frame-options", "x-xss-protection",
    "referrer-policy", "content-security-policy", "accept-ranges", "content-disposition", "content-range",
    "nel", "report-to", "set-cookie", "x-powered-by", "allow", "x-request-id", "request-id",
    "x-correlation-id", "x-trace-id", "traceparent", "tracestate", "x-cloud-trace-context", "x-cache",
    "x-served-by", "x-timer", "x-robots-tag", "permissions-policy", "cross-origin-opener-policy",
    "cross-origin-resource-policy", "cross-origin-embedder-policy", "x-dns-prefetch-control", "priority",
}
INFRA_PREFIXES = ("access-control-", "x-envoy-", "x-amz-", "x-goog-", "cf-", "x-mock-", "x-vercel-",
                  "x-azure-", "x-ms-", "x-fastly-", "x-akamai-", "x-kong-", "x-cloud-")


def infrastructure_header(name: str) -> bool:
    """True for generic HTTP, CDN and tracing headers that no provider contract needs to declare
    (request-id headers such as ``x-fal-request-id`` count as tracing headers)."""
    n = name.lower()
    return n in INFRA_HEADERS or n.startswith(INFRA_PREFIXES) or n.endswith("request-id")


@dataclass
class _Host:
    id: str
    base: str
    ops: list[Operation]
    walker: SchemaWalker
    doc: dict


def _example(inter: Interaction, value: Any = None, limit: int = 600) -> dict[str, Any]:
    ex: dict[str, Any] = {"seq": inter.seq, "request": f"{inter.method} {inter.url}"}
    if inter.status is not None:
        ex["status"] = inter.status
    if value is not None:
        text = json.dumps(value, ensure_ascii=False, default=str)
        ex["value"] = value if len(text) <= limit else text[:limit - 3] + "..."
    return ex


class ObservedChecker:
    """Checks interactions of one provider against its contract; collects findings in ``self.report``.

    Args:
        contract: the provider's :class:`specs.Contract`.
        hosts: host id -> base URL the traffic was recorded against (a cassette's ``hosts``); hosts not
            given fall back to the real base URLs from provider.yaml.
        report: the report to add to (a new one by default).
    """

    def __init__(self, contract: Contract, hosts: dict[str, str] | None = None, report: Report | None = None):
        self.contract = contract
        self.report = report or Report(kind="drift", title=f"drift: {contract.id} traffic vs contract")
        self.hosts: list[_Host] = []
        given = {k: v.rstrip("/") for k, v in (hosts or {}).items()}
        for h in contract.hosts:
            doc = contract.host_document(h["id"])
            ops = sorted((o for o in contract.operations() if o.host == h["id"]),
                         key=lambda o: (o.path.count("{"), -len(o.path)))
            base = given.get(h["id"], h["base_url"].rstrip("/"))
            self.hosts.append(_Host(h["id"], base, ops, SchemaWalker(doc), doc))
        self._lifecycle: dict[tuple[str, str], list[tuple[str, Interaction, Operation]]] = {}

    # -- matching -----------------------------------------------------------------------------------
    def match(self, inter: Interaction) -> tuple[_Host | None, Operation | None, str | None]:
        """``(host, operation, relative path)`` of an interaction; operation None when no path matches."""
        url = inter.url
        parts = urlsplit(url)
        bare = f"{parts.scheme}://{parts.netloc}{parts.path}"
        candidates = [h for h in self.hosts if bare == h.base or bare.startswith(h.base + "/")]
        if inter.host:
            candidates = [h for h in candidates if h.id == inter.host] or candidates
        for host in sorted(candidates, key=lambda h: -len(h.base)):
            rel = unquote(bare[len(host.base):]) or "/"
            for op in host.ops:
                if op.method == inter.method and op.path_regex.match(rel):
                    return host, op, rel
            return host, None, rel
        return None, None, None

    # -- the checks ---------------------------------------------------------------------------------
    def add(self, kind: str, severity: str, op: str, pointer: str, message: str, example: Any = None,
            key: tuple | None = None) -> None:
        self.report.add(Finding(kind=kind, severity=severity, operation=op, pointer=pointer, message=message,
                                example=example), key=key)

    def check(self, interactions: list[Interaction]) -> Report:
        """Check interactions (in recorded order) and the lifecycles they show. Returns ``self.report``."""
        for inter in interactions:
            self.check_one(inter)
        self.check_lifecycles()
        return self.report

    def check_one(self, inter: Interaction) -> None:
        """Check one interaction: status, headers, body and its place in a lifecycle."""
        host, op, rel = self.match(inter)
        if host is None:
            return  # a foreign URL (CDN download, webhook receiver): no contract to compare with
        if op is None:
            if rel and not rel.startswith("/__mock/"):
                self.add("undocumented_operation", "info", f"{inter.method} {rel}", "/request",
                         f"{inter.method} {rel} on host {host.id} matches no operation of the contract",
                         _example(inter))
            return
        name = op.operation_id
        if name not in self.report.operations:
            self.report.operations.append(name)
        if inter.response is None:
            self.add("transport_error", "info", name, "/response", f"no response: {inter.error or 'unknown error'}",
                     _example(inter))
            return
        status = int(inter.response["status"])
        if inter.expect == "success" and status >= 400:
            self.add("request_rejected", "breaking", name, "/response/status",
                     f"a request built from the contract was rejected with {status}",
                     _example(inter, inter.response.get("body")), key=("request_rejected", name, status))
        elif inter.expect == "error" and status < 400:
            self.add("error_not_raised", "non-breaking", name, "/response/status",
                     f"a request that must fail ({inter.label or 'probe'}) was answered with {status}",
                     _example(inter), key=("error_not_raised", name, inter.label))
        resp_ptr = self._response_pointer(host, op, status)
        if resp_ptr is None:
            sev = "non-breaking" if status >= 400 else "breaking"
            self.add("undocumented_status", sev, name, "/response/status",
                     f"status {status} is not declared for {op.method} {op.path}",
                     _example(inter, inter.response.get("body")), key=("undocumented_status", name, status))
            return
        resp, resp_ptr = host.walker.deref(resp_ptr)
        self._check_headers(host, op, inter, resp if isinstance(resp, dict) else {}, resp_ptr, status)
        self._check_body(host, op, inter, resp if isinstance(resp, dict) else {}, resp_ptr, status)
        if op.role in LIFECYCLE_ROLES and status < 300:
            self._note_lifecycle(op, inter)

    def _response_pointer(self, host: _Host, op: Operation, status: int) -> str | None:
        responses = op.definition.get("responses") or {}
        base = f"#/paths/{esc(op.path)}/{op.method.lower()}/responses"
        for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
            if key in responses:
                return f"{base}/{esc(key)}"
        return None

    def _check_body(self, host: _Host, op: Operation, inter: Interaction, resp: dict, resp_ptr: str,
                    status: int) -> None:
        name = op.operation_id
        content = resp.get("content") or {}
        enc = inter.response.get("body_encoding")
        body = inter.response.get("body")
        ctype = media_type(inter.response.get("headers", {}).get("content-type"))
        success = status < 400
        if enc == "empty" or body is None:
            has_schema = any(isinstance(m, dict) and m.get("schema") for m in content.values())
            if content and has_schema and 200 <= status < 300 and status != 204:
                self.add("missing_body", "breaking", name, f"/response/{status}/body",
                         f"status {status} declares a body ({', '.join(content)}) but none was sent", _example(inter))
            return
        if not content:
            self.add("undocumented_content_type", "breaking" if success else "non-breaking", name,
                     f"/response/{status}/content-type",
                     f"status {status} declares no body, observed {ctype or 'a body without Content-Type'}",
                     _example(inter), key=("undocumented_content_type", name, status, ctype))
            return
        declared = _match_media(ctype, list(content))
        if declared is None:
            self.add("undocumented_content_type", "breaking" if success else "non-breaking", name,
                     f"/response/{status}/content-type",
                     f"Content-Type {ctype or '(none)'} is not declared for status {status} "
                     f"(declared: {', '.join(content)})", _example(inter), key=("undocumented_content_type", name,
                                                                                status, ctype))
            return
        media = content[declared]
        media_ptr = f"{resp_ptr}/content/{esc(declared)}"
        if not isinstance(media, dict):
            return
        if "schema" in media and is_json_type(declared):
            if enc != "json":
                self.add("type_change", "breaking", name, f"/response/{status}/body",
                         f"the {declared} body of status {status} is not valid JSON",
                         _example(inter, body if enc == "text" else None))
                return
            self._issues(host, name, f"{media_ptr}/schema", body, f"/response/{status}/body", inter)
        elif isinstance(media.get("x-event-schema"), dict) and enc == "text":
            ev_ptr = f"{media_ptr}/x-event-schema"
            for event in _sse_data(body):
                self._issues(host, name, ev_ptr, event, f"/response/{status}/events/*", inter)

    def _issues(self, host: _Host, name: str, schema_ptr: str, value: Any, prefix: str, inter: Interaction) -> None:
        for issue in host.walker.walk(schema_ptr, value, prefix):
            sev = ISSUE_SEVERITY[issue.kind]
            key = (issue.kind, name, issue.pointer, issue.message if issue.kind in ("new_enum_value", "type_change")
                   else "")
            self.add(issue.kind, sev, name, issue.pointer, issue.message, _example(inter, issue.value), key=key)

    def _check_headers(self, host: _Host, op: Operation, inter: Interaction, resp: dict, resp_ptr: str,
                       status: int) -> None:
        name = op.operation_id
        observed = {k.lower(): v for k, v in (inter.response.get("headers") or {}).items()}
        declared: dict[str, tuple[dict, str]] = {}
        for hname in resp.get("headers") or {}:
            node, ptr = host.walker.deref(f"{resp_ptr}/headers/{esc(hname)}")
            declared[hname.lower()] = (node if isinstance(node, dict) else {}, ptr)
        for hname, (hdef, ptr) in declared.items():
            if hname == "content-type":
                continue
            if hname not in observed:
                if hdef.get("required"):
                    self.add("missing_required_header", "breaking", name, f"/response/{status}/headers/{hname}",
                             f"required header {hname} is missing", _example(inter))
                continue
            if "schema" in hdef:
                value = _coerce_header(host.walker, f"{ptr}/schema", observed[hname])
                for issue in host.walker.walk(f"{ptr}/schema", value, f"/response/{status}/headers/{hname}"):
                    if issue.kind in ("type_change", "new_enum_value"):
                        self.add("header_change", "breaking", name, issue.pointer,
                                 f"header {hname}: {issue.message}", _example(inter, observed[hname]))
                    elif issue.kind == "constraint_violation":
                        self.add("constraint_violation", "non-breaking", name, issue.pointer,
                                 f"header {hname}: {issue.message}", _example(inter, observed[hname]))
        for hname, value in observed.items():
            if hname not in declared and not infrastructure_header(hname):
                self.add("undocumented_header", "info", name, f"/response/{status}/headers/{hname}",
                         f"header {hname} is not declared for status {status}", _example(inter, value))

    # -- lifecycle ----------------------------------------------------------------------------------
    def _note_lifecycle(self, op: Operation, inter: Interaction) -> None:
        body = inter.response.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            return
        rid = None
        if op.role in ("retrieve", "status"):
            host, _, rel = self.match(inter)
            m = op.path_regex.match(rel or "")
            if m and m.groupdict():
                rid = next(iter(m.groupdict().values()))
        if rid is None:
            rid = next((body[k] for k in ("id", "request_id", "job_id") if isinstance(body.get(k), str)), None)
        if rid is None:
            return
        self._lifecycle.setdefault((op.host, rid), []).append((body["status"], inter, op))

    def check_lifecycles(self) -> None:
        """Report status values outside provider.yaml ``statuses``, backwards moves and changed terminals."""
        known = [e["value"] for e in self.contract.provider["statuses"]]
        vocab = ", ".join(dict.fromkeys(known))
        for (_host, rid), seq in self._lifecycle.items():
            values = [v for v, _, _ in seq]
            compact = [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]
            prev_rank, prev_value, prev_terminal = None, None, None
            for value, inter, op in seq:
                neutrals = self.contract.neutral_states(value)
                if not neutrals:
                    i = compact.index(value)
                    before = compact[i - 1] if i > 0 else None
                    after = next((v for v in compact[i + 1:] if self.contract.neutral_states(v)), None)
                    where = (f"between {before!r} and {after!r}" if before and after else
                             f"after {before!r}" if before else f"before {after!r}" if after else "alone")
                    self.add("lifecycle_new_state", "breaking", op.operation_id, "/lifecycle/status",
                             f"status value {value!r} is not in the provider's lifecycle ({vocab}); "
                             f"observed {where}", {"resource": rid, "sequence": compact, **_example(inter)},
                             key=("lifecycle_new_state", value))
                    continue
                rank = max(_RANK.get(n, 0) for n in neutrals)
                terminal = rank == 2
                if prev_terminal and value != prev_value:
                    self.add("lifecycle_terminal_changed", "breaking", op.operation_id, "/lifecycle/status",
                             f"terminal status {prev_value!r} changed to {value!r}",
                             {"resource": rid, "sequence": compact, **_example(inter)},
                             key=("lifecycle_terminal_changed", prev_value, value))
                elif prev_rank is not None and rank < prev_rank:
                    self.add("lifecycle_regression", "breaking", op.operation_id, "/lifecycle/status",
                             f"status moved backwards from {prev_value!r} to {value!r}",
                             {"resource": rid, "sequence": compact, **_example(inter)},
                             key=("lifecycle_regression", prev_value, value))
                prev_rank, prev_value, prev_terminal = rank, value, terminal


def _match_media(ctype: str, declared: list[str]) -> str | None:
    if ctype in declared:
        return ctype
    for d in declared:
        dm = d.lower()
        if dm == ctype or dm == "*/*" or (dm.endswith("/*") and ctype.startswith(dm[:-1])):
            return d
    if ctype == "" and len(declared) == 1:
        return None
    return None


def _coerce_header(walker: SchemaWalker, schema_ptr: str, raw: str) -> Any:
    try:
        flat = walker.flatten(schema_ptr, raw)
    except Exception:
        return raw
    types = flat.types or set()
    if "string" in types or not types:
        return raw
    text = raw.strip()
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            return float(text)
        except ValueError:
            pass
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return raw


def _sse_data(text: str) -> list[Any]:
    out: list[Any] = []
    for block in str(text).replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if not data:
            continue
        try:
            out.append(json.loads(data))
        except json.JSONDecodeError:
            out.append(data)
    return out


def check_cassette(cassette: Cassette, contract: Contract | None = None, report: Report | None = None) -> Report:
    """Compare a cassette with its provider's contract.

    Args:
        cassette: the recording (``cassette.provider`` names the contract unless ``contract`` is given).
        contract: the contract to compare with (for example an edited copy); default ``specs.load(provider)``.
        report: add findings to this report (several cassettes), else a new one.

    Returns:
        The :class:`Report` (kind ``drift``).

    Raises:
        specs.SpecError: no contract given and the cassette's provider is unknown.
    """
    if contract is None:
        if not cassette.provider:
            raise specs.SpecError("the cassette names no provider; pass --provider")
        contract = specs.load(cassette.provider)
    checker = ObservedChecker(contract, cassette.hosts, report)
    checker.report.subject.setdefault("provider", contract.id)
    checker.report.subject.setdefault("cassettes", [])
    checker.report.subject["cassettes"].append(
        {"path": str(cassette.path) if cassette.path else None, "recorded_at": cassette.recorded_at,
         "interactions": len(cassette.interactions), "hosts": cassette.hosts})
    return checker.check(cassette.interactions)


__all__ = ["INFRA_HEADERS", "ISSUE_SEVERITY", "ObservedChecker", "check_cassette", "infrastructure_header"]
