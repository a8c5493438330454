"""The contract checks: each judges one evaluated request that :mod:`conformance.cases` generated from the
contract and sent (a :class:`~conformance.cases.CaseResult`), or one probe of an undeclared method (a
:class:`~conformance.cases.MethodProbe`). Each is registered with ``applies``: the results it judges.

schemathesis' built-in checks are registered under their schemathesis names and run through
``case.validate_response``; the others are ours.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from .. import schema as sch
from ..cases import CaseResult, MethodProbe, documented_valid
from ..context import ProviderRun
from ..drivers.queue import sse_events
from ..registry import Source, check

STANDARD_5XX = Source("standard", "RFC 9110 §15.6: a 5xx status (or no answer) means the server failed the request")
STANDARD_ALLOW = Source("standard", "RFC 9110 §15.5.6: a 405 response MUST carry an Allow header")


@functools.lru_cache(maxsize=1)
def _builtins() -> dict[str, Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks as oc

    return {"not_a_server_error": not_a_server_error,
            "status_code_conformance": oc.status_code_conformance,
            "content_type_conformance": oc.content_type_conformance,
            "response_headers_conformance": oc.response_headers_conformance,
            "response_schema_conformance": oc.response_schema_conformance,
            "positive_data_acceptance": oc.positive_data_acceptance,
            "negative_data_rejection": oc.negative_data_rejection}


def _failure_text(f: Any) -> str:
    title = getattr(f, "title", None) or type(f).__name__
    message = str(getattr(f, "message", "") or "").strip()
    return f"{title}: {message}" if message else str(title)


def _answered(res: Any) -> bool:
    return isinstance(res, CaseResult) and res.resp is not None


def _run_builtin(name: str, run: ProviderRun, res: CaseResult, source: Source) -> None:
    """Judge ``res`` with schemathesis' check ``name``; a crash of the check is a suite error."""
    from schemathesis.core.failures import FailureGroup

    try:
        res.planned.case.validate_response(res.resp, checks=[_builtins()[name]])
    except FailureGroup as group:
        run.fail(name, "; ".join(_failure_text(f) for f in group.exceptions)[:2000], exchange=res.exchange,
                 operation=res.label, source=source)
        return
    except AssertionError as exc:
        run.fail(name, str(exc)[:2000], exchange=res.exchange, operation=res.label, source=source)
        return
    except Exception as exc:  # the check itself crashed: a suite error, not a finding about the target
        run.suite_error("check_crashed", f"{name} could not evaluate a {res.resp.status_code} response: "
                        f"{type(exc).__name__}: {exc}"[:2000], check=name, operation=res.label)
        return
    run.ok(name)


def _response_source(name: str, default: Source):
    """The source of a response-shape check for one result: what the contract declares for the observed status
    (unless it marks it ``x-mock-only``/``x-assumption``)."""
    def source(run: ProviderRun, res: CaseResult) -> Source:
        return run.response_source(res.op, res.resp.status_code, fallback=default)
    return source


# -- schemathesis' built-ins -------------------------------------------------------------------------------

@check("not_a_server_error", "contract", "No response is a 5xx, and every request gets an answer (schemathesis "
       "built-in).", origin="schemathesis", source=STANDARD_5XX, applies=lambda res: isinstance(res, CaseResult))
def not_a_server_error(run: ProviderRun, res: CaseResult) -> None:
    if res.error is not None:  # no answer at all
        run.fail("not_a_server_error", res.error, exchange=res.exchange, operation=res.label, source=STANDARD_5XX)
        return
    _run_builtin("not_a_server_error", run, res, STANDARD_5XX)


_STATUS = Source("contract", "the operation's declared response statuses")


@check("status_code_conformance", "contract", "Every status code is one the operation documents (schemathesis "
       "built-in).", origin="schemathesis", source=_STATUS, applies=_answered)
def status_code_conformance(run: ProviderRun, res: CaseResult) -> None:
    _run_builtin("status_code_conformance", run, res, _STATUS)


_CTYPE = Source("contract", "the content types declared for the response status")


@check("content_type_conformance", "contract", "Every Content-Type is one documented for that status "
       "(schemathesis built-in).", origin="schemathesis", source=_CTYPE, applies=_answered)
def content_type_conformance(run: ProviderRun, res: CaseResult) -> None:
    _run_builtin("content_type_conformance", run, res, _response_source("", _CTYPE)(run, res))


_HEADERS = Source("contract", "the headers declared for the response status")


@check("response_headers_conformance", "contract", "Required response headers are present and match their "
       "schemas (schemathesis built-in).", origin="schemathesis", source=_HEADERS, applies=_answered)
def response_headers_conformance(run: ProviderRun, res: CaseResult) -> None:
    _run_builtin("response_headers_conformance", run, res, _response_source("", _HEADERS)(run, res))


_SCHEMA = Source("contract", "the schema declared for the response status")


@check("response_schema_conformance", "contract", "Every response body validates against its documented schema "
       "(schemathesis built-in).", origin="schemathesis", source=_SCHEMA, applies=_answered)
def response_schema_conformance(run: ProviderRun, res: CaseResult) -> None:
    _run_builtin("response_schema_conformance", run, res, _response_source("", _SCHEMA)(run, res))


_POSITIVE = Source("contract", "the operation's request schema and its 2xx response")


@check("positive_data_acceptance", "contract", "Schema-valid requests with real ids are accepted: 2xx, or a "
       "documented 3xx/416 (schemathesis built-in, expected statuses narrowed).", origin="schemathesis",
       source=_POSITIVE, applies=lambda res: _answered(res) and res.planned.mode == "positive"
       and "positive_data_acceptance" not in res.skip)
def positive_data_acceptance(run: ProviderRun, res: CaseResult) -> None:
    _run_builtin("positive_data_acceptance", run, res, _POSITIVE)


_NEGATIVE = Source("contract", "the operation's request schema (what is not valid)")


@check("negative_data_rejection", "contract", "Schema-invalid requests are rejected with a 4xx (schemathesis "
       "built-in, expected statuses narrowed to 4xx).", origin="schemathesis", source=_NEGATIVE,
       applies=lambda res: _answered(res) and res.planned.mode == "negative"
       and "negative_data_rejection" not in res.skip)
def negative_data_rejection(run: ProviderRun, res: CaseResult) -> None:
    source = _NEGATIVE
    if 200 <= res.resp.status_code < 300 and documented_valid(run.contract, res.op, res.planned.case):
        source = Source("assumption", f"{run.id} {res.op.operation_id}: the request is invalid only under "
                        "constraints no provider document states (x-assumption keywords; an empty optional "
                        "header or query value read as a value)")
    _run_builtin("negative_data_rejection", run, res, source)


# -- ours ----------------------------------------------------------------------------------------------------

@check("error_envelope", "contract", "Every 4xx/5xx body is in the provider's error envelope (the schema declared "
       "for that status, or one of the operation's error schemas).",
       source=Source("contract", "the error schema declared for the status"),
       applies=lambda res: _answered(res) and res.resp.status_code >= 400)
def error_envelope(run: ProviderRun, res: CaseResult) -> None:
    resp, op = res.resp, res.op
    doc = run.contract.openapi
    fallback = Source("contract", f"{run.id} {op.operation_id}: the error schemas the operation declares")
    _ptr, entry = sch.response_entry(run.contract, op, resp.status_code)
    if entry is not None and not entry.get("content"):
        run.ok("error_envelope")  # documented without a body (416, 304)
        return
    raw = resp.content if hasattr(resp, "content") else b""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if body is None:
        run.fail("error_envelope", f"a {resp.status_code} answer has no JSON error body", exchange=res.exchange,
                 operation=res.label, source=run.response_source(op, resp.status_code, fallback=fallback))
        return
    declared = sch.response_schema(run.contract, op, resp.status_code)
    candidates = [declared] if declared else sch.error_schemas(run.contract, op)
    if not candidates:
        run.ok("error_envelope")
        return
    first = None
    for ptr in candidates:
        errs = sch.errors(doc, ptr, body)
        if not errs:
            run.ok("error_envelope")
            return
        first = first or errs[0]
    where = "declared for this status" if declared else "declared by the operation"
    run.fail("error_envelope", f"a {resp.status_code} body is not in the error envelope {where}: {first}",
             exchange=res.exchange, operation=res.label,
             source=run.response_source(op, resp.status_code, fallback=fallback))


_AUTH = Source("contract", "the operation's security requirement (RFC 9110 §15.5.2, §15.5.4)")


@check("auth_required", "contract", "Requests without credentials are rejected with 401 or 403.", source=_AUTH,
       applies=lambda res: _answered(res) and res.planned.mode == "auth_missing")
def auth_required(run: ProviderRun, res: CaseResult) -> None:
    status = res.resp.status_code
    run.expect("auth_required", status in (401, 403), f"a request without credentials got {status}, expected 401 "
               "or 403", exchange=res.exchange, operation=res.label)


@check("auth_invalid_rejected", "contract", "Requests with a wrong key in the right scheme are rejected with 401 "
       "or 403.", source=_AUTH, applies=lambda res: _answered(res) and res.planned.mode == "auth_wrong")
def auth_invalid_rejected(run: ProviderRun, res: CaseResult) -> None:
    status = res.resp.status_code
    run.expect("auth_invalid_rejected", status in (401, 403), f"a request with a wrong key got {status}, expected "
               "401 or 403", exchange=res.exchange, operation=res.label)


@check("unknown_id_is_404", "contract", "Requests naming an id that does not exist (path id or remix source) get "
       "404.", source=Source("contract", "the operation's 404 response"),
       applies=lambda res: _answered(res) and res.planned.mode == "unknown")
def unknown_id_is_404(run: ProviderRun, res: CaseResult) -> None:
    status = res.resp.status_code
    run.expect("unknown_id_is_404", status == 404, f"an id that does not exist got {status}, expected 404",
               exchange=res.exchange, operation=res.label, source=run.response_source(res.op, 404))


@check("method_not_allowed", "contract", "A method a path does not declare is answered 405 with an Allow header "
       "naming the declared methods, in the provider's error envelope.",
       source=Source("mock", "our mock answers an undeclared method with 405 in the provider's envelope"),
       applies=lambda res: isinstance(res, MethodProbe))
def method_not_allowed(run: ProviderRun, res: MethodProbe) -> None:
    label = f"{res.method} {res.path}"
    if res.resp is None:
        run.fail("method_not_allowed", f"{label}: no response: {res.error}", exchange=res.exchange, operation=label,
                 source=STANDARD_5XX)
        return
    ex = getattr(res.resp, "exchange", None)
    # 405 is documented only where the contract declares it (unmarked) for an operation of this path
    declared_405 = next((s for s in (run.response_source(o, 405) for o in res.ops) if s.kind == "contract"), None)
    source_405 = declared_405 or run.response_source(res.ops[0], 405)
    if res.resp.status_code != 405:
        run.fail("method_not_allowed", f"{res.method} on a path that declares only {sorted(res.declared)} got "
                 f"{res.resp.status_code}, expected 405", exchange=ex, operation=label, source=source_405)
        return
    allow = {m.strip().upper() for m in (res.resp.headers.get("Allow") or "").split(",") if m.strip()}
    if not res.declared <= allow:
        run.fail("method_not_allowed", f"405 without an Allow header naming {sorted(res.declared)} "
                 f"(Allow: {res.resp.headers.get('Allow')!r})", exchange=ex, operation=label, source=STANDARD_ALLOW)
        return
    try:
        body = res.resp.json()
    except ValueError:
        body = None
    envelopes = [p for o in res.ops for p in sch.error_schemas(run.contract, o)]
    if envelopes and (body is None or all(sch.errors(run.contract.openapi, p, body) for p in envelopes)):
        run.fail("method_not_allowed", "the 405 body is not in the provider's error envelope", exchange=ex,
                 operation=label, source=source_405)
        return
    run.ok("method_not_allowed")


@check("sse_event_conformance", "contract", "Every event of a status stream validates against the contract's "
       "x-event-schema, and the stream ends with a terminal status.",
       source=Source("contract", "the status stream's x-event-schema and provider.yaml statuses"),
       applies=lambda res: _answered(res) and res.resp.status_code == 200 and res.op.role == "status_stream",
       requires={"role": "status_stream"})
def sse_event_conformance(run: ProviderRun, res: CaseResult) -> None:
    raw = res.exchange.response_body if res.exchange is not None else (getattr(res.resp, "content", b"") or b"")
    ptr, entry = sch.response_entry(run.contract, res.op, 200)
    mt = ((entry or {}).get("content") or {}).get("text/event-stream") or {}
    events = sse_events(raw)
    if not events:
        run.fail("sse_event_conformance", "the status stream sent no event", exchange=res.exchange,
                 operation=res.label)
        return
    last_status = None
    for data in events:
        try:
            body = json.loads(data)
        except ValueError:
            run.fail("sse_event_conformance", f"an event is not JSON: {data[:100]!r}", exchange=res.exchange,
                     operation=res.label)
            return
        if mt.get("x-event-schema"):
            evptr = sch.deref_ptr(run.contract.openapi, ptr + "/content/text~1event-stream/x-event-schema")
            errs = sch.errors(run.contract.openapi, evptr, body)
            if errs:
                run.fail("sse_event_conformance", f"an event does not match x-event-schema: {errs[0]}",
                         exchange=res.exchange, operation=res.label)
                return
        last_status = body.get("status") if isinstance(body, dict) else None
    neutral = run.contract.neutral_states(last_status) if isinstance(last_status, str) else []
    run.expect("sse_event_conformance", bool(neutral) and all(n in ("completed", "failed", "cancelled")
                                                              for n in neutral),
               f"the stream ended with status {last_status!r}, not a terminal status", exchange=res.exchange,
               operation=res.label)
