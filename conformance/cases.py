"""The contract phase: per operation, requests generated from the contract with schemathesis and hypothesis,
sent and handed to the contract checks (:mod:`conformance.checks.contract`) that apply to each.

For every operation of every host the target has a URL for, the suite generates (seeded, no shrinking,
no deadlines):

- ``positive`` cases (schemathesis positive mode): schema-valid requests. Ids must be real to be valid, so
  path ids, cursors and the ``x-source`` of remixes are pinned to fixture jobs (:mod:`conformance.fixtures`);
  cancel and delete get a fresh job each. Expected: accepted (2xx; a documented 3xx or 416 where the
  request depends on state, like aigateway's 304 or a Range past the end).
- ``negative`` cases (schemathesis negative mode): expected a 4xx in the provider's error envelope.
- ``unknown`` cases: valid requests naming ids that do not exist (shaped like the provider's ids, from
  provider.yaml ``ids``): expected 404 in the envelope.
- ``auth_missing`` / ``auth_wrong`` cases: valid requests without credentials / with a wrong key:
  expected 401 or 403.

Every answer is judged by the checks that apply to it (:func:`dispatch`): schemathesis' built-ins (status
code, content type, headers and body schema conformance, not a server error) and ours. Cases of one
operation are sent concurrently.

On a target that is not our mock, operations with ``x-billable: true`` get no request at all unless
``--allow-spend`` is given (then only ``--paid-examples`` positive cases, within the budget).
"""

from __future__ import annotations

import copy
import functools
import json
import random
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from specs import Contract, Operation
from specs.families import SOURCED_KINDS
from specs.ids import ID_FORMATS, new_id
from specs.pointers import get_pointer, set_pointer

from . import schema as sch
from .context import ProviderRun, op_label, sub_seed
from .http import RunStopped
from .spend import SpendBlocked
from .webhooks import callback_of

CURSOR_PARAMS = {"after", "before", "starting_after", "ending_before", "cursor"}
ROLES_FRESH = {"cancel", "delete"}            # consume their job: one fresh job per positive example
ROLES_COMPLETED = {"result", "content", "status_stream"}  # need a completed job
ROLES_OTHER_IDS = {"character_retrieve": "characters"}  # address a resource that is not a job (fixtures.Pool)


@functools.lru_cache(maxsize=1)
def _st_config():
    from schemathesis.config import SchemathesisConfig

    return SchemathesisConfig.from_dict({
        "generation": {"with-security-parameters": False, "allow-x00": False},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", "416"]},
            "negative_data_rejection": {"expected-statuses": ["4xx"]},
        },
    })


_SCHEMA_LOCK = threading.Lock()
_SCHEMAS: dict[tuple[str, str], Any] = {}
SAMPLES = Path(__file__).with_name("samples")


def declared_request_media_types(contract: Contract) -> set[str]:
    """Every media type the contract declares for a request body or a multipart part (``encoding``)."""
    out: set[str] = set()
    for op in contract.operations():
        rb = sch.deref(contract.openapi, op.definition.get("requestBody") or {})
        for ctype, mt in ((rb or {}).get("content") or {}).items():
            out.add(ctype)
            for enc in ((mt or {}).get("encoding") or {}).values():
                for part in str((enc or {}).get("contentType") or "").split(","):
                    if part.strip():
                        out.add(part.strip())
    return out


def ensure_media_types(contract: Contract) -> list[str]:
    """Give schemathesis a way to generate and serialize every request media type the contract declares.

    schemathesis ships serializers for JSON, forms, text, XML, ``application/octet-stream`` and sample files for
    ``image/*``; a ``video/*`` part (OpenAI's edit upload) gets a real MP4 (``conformance/samples/upload.mp4``,
    64x64, 1 s, H.264) as its generated value. Returns the media types registered here (idempotent).
    """
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis.core.media_types import MEDIA_TYPE_STRATEGIES
    from schemathesis.transport.requests import REQUESTS_TRANSPORT

    added = []
    for ctype in sorted(declared_request_media_types(contract)):
        if REQUESTS_TRANSPORT.get_first_matching_media_type(ctype) is not None or ctype in MEDIA_TYPE_STRATEGIES:
            continue
        main = ctype.split("/")[0]
        data = (SAMPLES / "upload.mp4").read_bytes() if main == "video" else b"\x00conformance-sample"
        schemathesis.openapi.media_type(ctype, st.just(data))
        added.append(ctype)
    return added


def load_schema(contract: Contract, host: str):
    """The schemathesis schema of one host's flattened contract (cached)."""
    import schemathesis

    key = (contract.id, host)
    with _SCHEMA_LOCK:
        if key not in _SCHEMAS:
            import specs

            for c in specs.load_all().values():  # the same registrations whatever ran first: same generation
                ensure_media_types(c)
            _SCHEMAS[key] = schemathesis.openapi.from_dict(contract.host_document(host), config=_st_config())
        return _SCHEMAS[key]


# -- generation -----------------------------------------------------------------------------------------


def generate(st_op, mode: str, n: int, seed: int, on_error=None) -> list:
    """Up to ``n`` schemathesis cases of ``mode`` (``positive``/``negative``); fewer when the space is
    exhausted or unsatisfiable (e.g. no invalid value exists for a plain string path parameter).

    ``on_error(message)`` is called when generation fails for another reason than an exhausted or
    unsatisfiable space (a suite error: the suite could not build its own requests). With the environment
    variable ``CONFORMANCE_DEBUG`` set, hypothesis errors during generation are printed."""
    if n <= 0:
        return []
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis.errors import HypothesisException
    from schemathesis import GenerationMode

    gm = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    cases: list = []
    try:
        strategy = st_op.as_strategy(generation_mode=gm)
    except Exception as exc:
        if on_error is not None:
            on_error(f"{mode} strategy of {st_op.label}: {type(exc).__name__}: {exc}")
        return []

    @given(strategy)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False)
    @hseed(seed)
    def collect(case):
        if len(cases) < n:
            cases.append(case)

    try:
        collect()
    except HypothesisException as exc:
        import os

        from hypothesis.errors import Unsatisfiable

        if on_error is not None and not isinstance(exc, Unsatisfiable) and not cases:
            on_error(f"{mode} generation of {st_op.label}: {type(exc).__name__}: {str(exc)[:300]}")
        if os.environ.get("CONFORMANCE_DEBUG"):
            import traceback
            subs = getattr(exc, "exceptions", [])
            print("generate:", st_op.label, mode, type(exc).__name__, str(exc)[:200], len(cases))
            for sub in subs:
                print("".join(traceback.format_exception(sub))[-1500:])
    return cases


def unknown_id(contract: Contract, rng: random.Random) -> str:
    """An id shaped like the provider's (provider.yaml ``ids``: prefix + format) that does not exist."""
    ids = contract.provider.get("ids") or {}
    fmt = ids.get("format") if ids.get("format") in ID_FORMATS else "opaque"
    return new_id(rng, ids.get("prefix") or "", fmt, wall_ms=int(rng.random() * (1 << 47)))


def _types(doc: dict, schema: Any, depth: int = 0) -> set[str]:
    schema = sch.deref(doc, schema)
    if not isinstance(schema, dict) or depth > 6:
        return set()
    t = schema.get("type")
    out = set(t) if isinstance(t, list) else ({t} if t else set())
    subs = [sub for kw in ("anyOf", "oneOf", "allOf") for sub in schema.get(kw) or []]
    if not t and not subs:
        return {"any"}  # no type constraint (e.g. a file part described by contentMediaType): text is fine
    for sub in subs:
        out |= _types(doc, sub, depth + 1)
    return out


def _coerce_form_value(doc: dict, schema: Any, value: Any) -> Any:
    """A form field as a server reads it: text stays text when the schema allows a string, else it is
    parsed as the declared type (number, boolean, JSON object/array, null)."""
    if isinstance(value, bytes | bytearray):
        return value.decode("latin-1")
    types = _types(doc, schema)
    if not types or "string" in types or "any" in types:
        return value
    for t in ("integer", "number", "boolean", "null", "object", "array"):
        if t not in types:
            continue
        try:
            v = json.loads(value)
        except (TypeError, ValueError):
            continue
        if (t == "integer" and isinstance(v, int) and not isinstance(v, bool)) or \
                (t == "number" and isinstance(v, int | float) and not isinstance(v, bool)) or \
                (t == "boolean" and isinstance(v, bool)) or (t == "null" and v is None) or \
                (t == "object" and isinstance(v, dict)) or (t == "array" and isinstance(v, list)):
            return v
    return value


def _normalize_parts(case) -> None:
    """Label each multipart part of a positive case with a media type its value has: a part declared as
    ``video/mp4, application/octet-stream, application/json`` holding an object goes out as JSON, bytes as the
    first binary type (schemathesis keeps the choice it drew even when the value is of another kind)."""
    chosen = getattr(case, "multipart_content_types", None)
    if not chosen or not isinstance(case.body, dict):
        return
    fixed = dict(chosen)
    for name, ctype in chosen.items():
        value = case.body.get(name)
        if isinstance(value, dict | list) and "json" not in ctype:
            fixed[name] = "application/json"
    if fixed != chosen:
        case.multipart_content_types = fixed


_DOCUMENTED: dict[str, dict] = {}
_DOCUMENTED_LOCK = threading.Lock()


def documented_document(contract: Contract) -> dict:
    """The contract with every *assumed* constraint removed: where an ``x-assumption`` entry lists
    ``keywords`` (e.g. ``[additionalProperties]``), those keywords are dropped from the schema that carries
    it. What remains is what the provider documents. Cached per contract."""
    with _DOCUMENTED_LOCK:
        if contract.id not in _DOCUMENTED:
            doc = copy.deepcopy(contract.openapi)

            def walk(node: Any) -> None:
                if isinstance(node, dict):
                    for entry in node.get("x-assumption") or []:
                        if isinstance(entry, dict):
                            for kw in entry.get("keywords") or []:
                                node.pop(kw, None)
                    for v in node.values():
                        walk(v)
                elif isinstance(node, list):
                    for v in node:
                        walk(v)

            walk(doc)
            _DOCUMENTED[contract.id] = doc
        return _DOCUMENTED[contract.id]


def documented_valid(contract: Contract, op: Operation, case) -> bool:
    """True when a request (a schemathesis case: body, query, path and header parameters) is valid under the
    documented part of the contract (:func:`documented_document`): then a server that accepts it is right,
    whatever our assumed constraints say."""
    from specs.validate import pointer

    doc = documented_document(contract)
    if case.body is not None and not isinstance(case.body, bytes | bytearray):
        rs = sch.request_schema(contract, op, prefer=(case.media_type or "application/json"))
        if rs is not None and sch.errors(doc, rs[1], case.body):
            return False
    located = {"query": case.query or {}, "path": case.path_parameters or {},
               "header": {k.lower(): v for k, v in (case.headers or {}).items()}}
    params = list(op.definition.get("parameters") or [])
    for i, param in enumerate(params):
        param = sch.deref(doc, param)
        where = (param or {}).get("in")
        if where not in located:
            continue
        name = param.get("name", "")
        values = located[where]
        key = name.lower() if where == "header" else name
        if key not in values or (values[key] == "" and where in ("query", "header") and not param.get("required")):
            # absent; an empty value of an optional query/header parameter is read as absent by many servers,
            # and no provider document says otherwise
            if param.get("required"):
                return False
            continue
        base = sch.deref_ptr(doc, pointer(*sch.op_pointer(op), "parameters", str(i)))
        if "schema" in (sch.deref(doc, {"$ref": base}) or {}):
            value = values[key]
            errs = sch.errors(doc, base + "/schema", value)
            if errs and isinstance(value, str):  # a query/header value is text on the wire: read it as the type
                errs = sch.errors(doc, base + "/schema", _coerce_form_value(doc, param.get("schema"), value))
            if errs:
                return False
    return True


def path_params(op: Operation) -> list[str]:
    return re.findall(r"\{([^}]+)\}", op.path)


# -- evaluation -----------------------------------------------------------------------------------------


@dataclass
class Planned:
    """One request to send: the case, its mode, the headers to send, and the id parameters to fill with a
    fresh job just before sending (cancel/delete consume their job)."""

    case: Any
    mode: str
    headers: dict[str, str]
    fresh_params: tuple[str, ...] = ()
    job: Any = None  # the fresh job a cancel/delete case consumed


@dataclass
class CaseResult:
    """One case sent and answered (or not): what the contract checks judge.

    Attributes:
        op, label: the contract operation and its report label; planned: the case and its mode (``positive``,
        ``negative``, ``unknown``, ``auth_missing``, ``auth_wrong``); resp: the response (None when no answer
        came); exchange: the recorded exchange; error: why no answer came; skip: checks the phase decided not
        to apply to this case (with the reason in the code that sets it).
    """

    op: Operation
    label: str
    planned: Planned
    resp: Any
    exchange: Any
    error: str | None = None
    skip: set[str] = field(default_factory=set)


@dataclass
class MethodProbe:
    """A request with a method that a path of the contract does not declare, and its answer (or error)."""

    method: str
    path: str
    ops: list[Operation]
    declared: set[str]
    resp: Any
    exchange: Any
    error: str | None = None


def dispatch(run: ProviderRun, result: CaseResult | MethodProbe) -> None:
    """Call every selected contract check whose ``applies(result)`` holds (the registry's functions)."""
    for c in run.results.checks:
        if c.category == "contract" and c.fn is not None and c.applies is not None and c.applies(result):
            c.fn(run, result)


class OperationRunner:
    """Generates, sends and judges the cases of one operation (see module docstring)."""

    def __init__(self, run: ProviderRun, st_op, op: Operation, base_url: str):
        self.run = run
        self.st_op = st_op
        self.op = op
        self.base_url = base_url
        self.label = op_label(run.contract, op)
        self.creds = run.target.credentials[run.id]
        self.rng = random.Random(sub_seed(run.config.seed, run.id, op.operation_id, "ids"))
        self.driver = next((d for d in run.drivers if d.host == op.host), None)
        self.params = path_params(op)
        src = op.source or {}
        self.source_param = src.get("name") if src.get("in") == "path" else None
        self.source_pointer = src.get("pointer") if src.get("in") == "body" else None

    def _pin_callback(self, case) -> None:
        """A generated webhook URL (the operation's callback parameter) would have the target POST to any host
        hypothesis drew: point it at the suite's own receiver instead (or drop it when there is none)."""
        cb = callback_of(self.run.contract, self.op)
        if cb is None:
            return
        receiver = self.run.target.receiver
        url = receiver.url("contract-case") if receiver is not None else None
        if cb.in_ in ("query", "header"):
            values = case.query if cb.in_ == "query" else case.headers
            if values and cb.name in values and isinstance(values[cb.name], str) and \
                    values[cb.name].startswith(("http://", "https://")):
                if url is None:
                    del values[cb.name]
                else:
                    values[cb.name] = url
        elif cb.in_ == "body" and isinstance(case.body, dict):
            value = get_pointer(case.body, cb.name)
            if isinstance(value, str) and value.startswith(("http://", "https://")):
                body = copy.deepcopy(case.body)
                set_pointer(body, cb.name, url or "http://127.0.0.1:9/discard")
                case.body = body

    def _gen_error(self, message: str) -> None:
        self.run.suite_error("generation", message, operation=self.label)

    # -- case shaping -------------------------------------------------------------------------------
    def _auth_header(self) -> str:
        return self.creds.header

    def _derive(self, case, *, headers: dict[str, str] | None = None):
        d = case.derive()
        if isinstance(case.body, dict | list):
            d.body = copy.deepcopy(case.body)
        d.path_parameters = dict(case.path_parameters or {})
        if headers is not None:
            for k in list(d.headers or {}):
                if k.lower() == self._auth_header().lower():
                    del d.headers[k]
        return d

    def _set_source(self, case, value: str) -> bool:
        """Pin the source video (remix, extension) of a case; False when the case carries no source (an upload, another kind)."""
        if self.source_param:
            case.path_parameters[self.source_param] = value
            return True
        if self.source_pointer and isinstance(case.body, dict):
            if self.op.kind_for(case.body) not in SOURCED_KINDS:
                return False
            tokens = [t for t in self.source_pointer.strip("/").split("/") if t]
            parent = case.body
            for t in tokens[:-1]:
                parent = parent.get(t) if isinstance(parent, dict) else None
            if isinstance(parent, bytes | bytearray):
                return False
            body = copy.deepcopy(case.body)
            set_pointer(body, self.source_pointer, value)
            case.body = body
            return True
        return False

    def _id_choices(self) -> tuple[list[str], str | None]:
        """Real ids for this operation's id parameter, and the reason when there are none."""
        pool = self.run.pool
        if self.op.role in ROLES_OTHER_IDS:
            which = ROLES_OTHER_IDS[self.op.role]
            ids = pool.ids(self.op.host, which)
            return ids, (None if ids else pool.reasons.get(which) or f"no {which} of this provider to address")
        if self.op.role in ROLES_COMPLETED:
            ids = pool.ids(self.op.host, "completed")
        else:
            ids = pool.ids(self.op.host, "any") + pool.ids(self.op.host, "completed")
        if not ids:
            return [], pool.reasons.get("jobs") or "no job of this provider to address"
        return ids, None

    def positive(self, n: int, seed: int) -> tuple[list[Planned], str | None]:
        pool = self.run.pool
        fresh = self.op.role in ROLES_FRESH
        if fresh:
            n = min(n, 4)
        cases = generate(self.st_op, "positive", n, seed, self._gen_error)
        if not cases:
            return [], "schemathesis generated no valid case"
        if self.op.billable and not self.run.target.free:
            # a paid example on a real provider is a real generation: send a realistic request (vendored
            # example or minimal body, bodies.build) rather than fuzz that a provider may refuse on content
            self._realistic(cases)
        id_params = [p for p in self.params if p != self.source_param]
        needs_source = self.source_param is not None or self.source_pointer is not None
        ids: list[str] = []
        if id_params and not fresh:
            ids, why = self._id_choices()
            if not ids:
                return [], why
        if needs_source and not pool.sources:
            return [], pool.reasons.get("sources") or "no completed source video"
        out: list[Planned] = []
        i = 0
        # finite spaces (an id-only GET) give few distinct cases: vary them over the real ids
        target = n if (ids or fresh or needs_source) else len(cases)
        while len(out) < target:
            base = cases[i % len(cases)]
            case = self._derive(base) if i >= len(cases) else base
            i += 1
            if not fresh:
                for p in id_params:
                    case.path_parameters[p] = ids[(i - 1) % len(ids)]
            for name in list(case.query or {}):
                if name in CURSOR_PARAMS:
                    all_ids = pool.ids(self.op.host, "any") + pool.ids(self.op.host, "completed")
                    if all_ids:
                        case.query[name] = all_ids[(i - 1) % len(all_ids)]
            if needs_source:
                self._set_source(case, pool.sources[(i - 1) % len(pool.sources)])
            out.append(Planned(case, "positive", self.creds.headers(),
                               fresh_params=tuple(id_params) if fresh else ()))
        if fresh and not self._can_make_jobs():
            return [], self.run.pool.reasons.get("jobs") or "cannot create jobs to consume"
        return out, None

    def _realistic(self, cases: list) -> None:
        from .bodies import BodyError, build

        kinds = set((self.op.kind.get("map") or {}).values()) if isinstance(self.op.kind, dict) else {self.op.kind}
        kind = "generate" if "generate" in kinds else next((k for k in sorted(kinds) if k in SOURCED_KINDS), "remix")
        source = (self.run.pool.sources or ["placeholder"])[0] if self.run.pool else "placeholder"
        try:
            req = build(self.run.contract, self.op, kind, source_id=source, rng=self.rng)
        except BodyError:
            return
        for case in cases:
            if req.body is not None:
                case.body = copy.deepcopy(req.body)
                case.media_type = req.media_type
            for k, v in req.path_params.items():
                case.path_parameters[k] = v

    def _can_make_jobs(self) -> bool:
        from .fixtures import generate_ops

        ok, _ = self.run.can_spend()
        return ok and any(generate_ops(d) for d in self.run.drivers if d.host == self.op.host)

    def _fresh_job(self):
        from .fixtures import submit_generate

        drivers = [self.driver] + [d for d in self.run.drivers if d is not self.driver]
        for d in drivers:
            if d is None or d.host != self.op.host:
                continue
            try:
                job = submit_generate(self.run, d, keep=False, rng=self.rng)
            except Exception as exc:  # reported as the reason the positive cases are missing
                self.run.pool.reasons.setdefault("fresh", f"cannot create a job to {self.op.role}: {exc}")
                return None
            if job is not None and job.submit.ok and job.id:
                return job
        self.run.pool.reasons.setdefault("fresh", f"no operation creates a job on host {self.op.host}")
        return None

    def negative(self, n: int, seed: int) -> list[Planned]:
        return [Planned(c, "negative", self.creds.headers()) for c in generate(self.st_op, "negative", n, seed, self._gen_error)]

    def unknown(self, n: int, seed: int, bases: list) -> list[Planned]:
        """Valid requests whose id (path id, or remix source) does not exist."""
        if not (self.params or self.source_pointer) or n <= 0:
            return []
        if not bases:
            bases = generate(self.st_op, "positive", min(n, 10), seed, self._gen_error)
        out: list[Planned] = []
        i = 0
        while bases and len(out) < n and i < n * 3:
            case = self._derive(bases[i % len(bases)])
            i += 1
            ident = unknown_id(self.run.contract, self.rng)
            changed = False
            for p in self.params:
                case.path_parameters[p] = ident
                changed = True
            if not self.params and self.source_pointer:
                changed = self._set_source(case, ident)
            if changed:
                out.append(Planned(case, "unknown", self.creds.headers()))
        return out

    def auth(self, n: int, bases: list) -> list[Planned]:
        out: list[Planned] = []
        if not bases or n <= 0:
            return out
        wrong_key = "sk-conformance-wrong-" + uuid.UUID(int=self.rng.getrandbits(128)).hex[:16]
        for i in range(n):
            missing = self._derive(bases[i % len(bases)], headers={})
            out.append(Planned(missing, "auth_missing", {}))
        if self.run.target.enforces_key or self.run.target.kind == "remote":
            for i in range(n):
                wrong = self._derive(bases[i % len(bases)], headers={})
                out.append(Planned(wrong, "auth_wrong", {self.creds.header: self.creds.value(wrong_key)}))
        else:
            self.run.skip("auth_invalid_rejected", "the mock at this URL accepts any key unless started with "
                          "--api-key; wrong keys are checked against the embedded mock and real providers")
        return out

    # -- execution ----------------------------------------------------------------------------------
    def send(self, planned: Planned) -> tuple[Any, Any, str | None]:
        headers = dict(planned.headers)
        case = planned.case
        if planned.fresh_params:
            job = self._fresh_job()
            if job is None:
                return None, None, "skip: " + (self.run.pool.reasons.get("fresh") or "no fresh job")
            planned.job = job
            for p in planned.fresh_params:
                case.path_parameters[p] = job.id
        if headers:
            for k in list(case.headers or {}):
                if k.lower() == self.creds.header.lower():
                    case.headers[k] = headers[self.creds.header]
        if self.run.stopped:
            return None, None, "skip: the run stopped"
        if planned.mode == "positive":
            _normalize_parts(case)
        self._pin_callback(case)
        try:
            resp = case.call(base_url=self.base_url, session=self.run.client.session, headers=headers,
                             timeout=self.run.config.timeout)
        except SpendBlocked as exc:
            return None, None, f"blocked by the spend guard: {exc}"
        except RunStopped:
            return None, None, "skip: the run stopped"
        except requests.RequestException as exc:  # transport error: the target gave no answer
            return None, self.run.client.last_exchange(), f"no response: {type(exc).__name__}: {exc}"
        except Exception as exc:  # the suite could not build or send its own request: a suite error
            name = "serialization" if "Serializ" in type(exc).__name__ else "internal"
            self.run.suite_error(name, f"{type(exc).__name__}: {exc}".splitlines()[0][:500], operation=self.label)
            return None, None, "skip: the suite could not send this case (suite error)"
        return resp, self.run.client.last_exchange(), None

    def judge(self, planned: Planned, resp, exchange, error: str | None) -> None:
        """Hand one sent case to every selected contract check that applies to it (:mod:`conformance.checks`)."""
        run = self.run
        if error is not None:
            if error.startswith("skip: "):
                run.skip("positive_data_acceptance", f"{self.label}: {error[6:]}")
                return
            if error.startswith("blocked by the spend guard"):
                run.skip("positive_data_acceptance", error)
                return
        skip: set[str] = set()
        if resp is not None:
            if planned.mode == "negative" and 200 <= resp.status_code < 300 and exchange is not None and \
                    self._valid_on_the_wire(exchange):
                # multipart sends every field as text: a "negative" null/number/object part arrives as a valid
                # string (schemathesis judges the value before serialization), so acceptance is correct here
                skip.add("negative_data_rejection")
            if planned.mode == "positive" and planned.job is not None and 400 <= resp.status_code < 500 and \
                    self._finished_meanwhile(planned.job):
                # the fresh job finished before the request arrived (a loaded target is slow): the request was
                # not valid in that state, so acceptance is not judged; the answer is still checked
                skip.add("positive_data_acceptance")
        dispatch(run, CaseResult(op=self.op, label=self.label, planned=planned, resp=resp, exchange=exchange,
                                 error=error, skip=skip))

    def _valid_on_the_wire(self, exchange) -> bool:
        """For a form body (multipart or urlencoded): does the body the server received validate, with each
        text field read the way a form is read (as a string, or coerced to the declared type)?"""
        from .spend import parse_body

        ctype = next((v for k, v in exchange.request_headers.items() if k.lower() == "content-type"), "")
        if not ctype.startswith(("multipart/", "application/x-www-form-urlencoded")):
            return False
        form = parse_body(ctype, exchange.request_body)
        if not isinstance(form, dict):
            return False
        rs = sch.request_schema(self.run.contract, self.op, prefer=ctype.split(";")[0].strip())
        if rs is None:
            return False
        from specs.validate import resolve_pointer

        doc = self.run.contract.openapi
        props = sch.properties(doc, resolve_pointer(doc, rs[1]))
        data = {k: _coerce_form_value(doc, props.get(k), v) for k, v in form.items()}
        return not sch.errors(doc, rs[1], data)

    @staticmethod
    def _finished_meanwhile(job) -> bool:
        d = job.driver
        if not d.supports("poll"):
            return False
        try:
            d.poll(job, honour=False)
        except Exception:
            return False
        return job.terminal and job.final != "cancelled"

    # -- driver -------------------------------------------------------------------------------------
    def execute(self) -> int:
        run = self.run
        cfg = run.config
        free = run.target.free
        if self.op.billable and not free and not cfg.allow_spend:
            reason = f"{self.op.operation_id} costs money (x-billable): not sent without --allow-spend"
            for name in ("positive_data_acceptance", "negative_data_rejection", "unknown_id_is_404",
                         "auth_required", "auth_invalid_rejected"):
                run.skip(name, reason)
            run.results.note(run.id, f"{self.label}: skipped (paid operation, no --allow-spend)")
            return 0
        if run.stopped:  # generating cases costs CPU seconds: none once the run has stopped
            return 0
        paid = self.op.billable and not free
        n_pos = cfg.paid_examples if paid else cfg.examples
        seed = sub_seed(cfg.seed, run.id, self.op.operation_id)
        planned: list[Planned] = []
        pos, why = self.positive(n_pos, seed)
        if why and not pos:
            run.skip("positive_data_acceptance", f"{self.label}: {why}")
        planned += pos
        if not paid and not run.stopped:
            planned += self.negative(cfg.negative_examples, seed + 1)
        if run.stopped:
            return 0
        bases = [p.case for p in pos] or generate(self.st_op, "positive", 5, seed + 2, self._gen_error)
        if not paid and not run.stopped:
            missing = max(cfg.unknown_examples, cfg.examples - len(planned) - 2 * cfg.auth_examples)
            planned += self.unknown(missing, seed + 3, bases)
        planned += self.auth(cfg.auth_examples, bases)
        if not planned:
            return 0
        workers = max(1, min(cfg.workers, len(planned)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"cc-{run.id}") as pool:
            sent = list(pool.map(self.send, planned))
        n = 0
        for p, (resp, ex, err) in zip(planned, sent, strict=True):
            if err is not None and err.startswith(("blocked by the spend guard", "skip: ")):
                self.judge(p, resp, ex, err)
                continue
            n += 1
            self.judge(p, resp, ex, err)
        run.results.count_examples(run.id, self.label, n)
        return n


PROBE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def run_method_checks(run: ProviderRun, host: str, base: str) -> None:
    """Probe every undeclared method of every path of ``host``; ``method_not_allowed`` judges each answer."""
    if not run.selected("method_not_allowed"):
        return
    rng = random.Random(sub_seed(run.config.seed, run.id, host, "methods"))
    by_path: dict[str, list[Operation]] = {}
    for op in run.contract.operations():
        if op.host == host:
            by_path.setdefault(op.path, []).append(op)
    creds = run.target.credentials[run.id]
    for path, ops in sorted(by_path.items()):
        declared = {o.method.upper() for o in ops}
        params = {}
        for name in path_params(ops[0]):
            ids = run.pool.ids(host, "completed") + run.pool.ids(host, "any") if run.pool else []
            params[name] = ids[0] if ids else unknown_id(run.contract, rng)
        url = base + path
        for k, v in params.items():
            url = url.replace("{" + k + "}", v)
        for method in PROBE_METHODS:
            if method in declared:
                continue
            try:
                resp = run.client.request(method, url, headers=creds.headers(), timeout=run.config.timeout)
            except SpendBlocked:
                run.skip("method_not_allowed", "undeclared methods other than GET are not sent to a target that "
                         "is not the mock")
                continue
            except RunStopped:
                return
            except Exception as exc:  # transport error: judged as an answer that never came
                dispatch(run, MethodProbe(method=method, path=path, ops=ops, declared=declared, resp=None,
                                          exchange=run.client.last_exchange(), error=str(exc)))
                continue
            dispatch(run, MethodProbe(method=method, path=path, ops=ops, declared=declared, resp=resp,
                                      exchange=getattr(resp, "exchange", None)))


def run_contract(run: ProviderRun) -> None:
    """Run the contract checks of one provider (every host the target has a URL for)."""
    wanted = {c.name for c in run.results.checks if c.category == "contract"}
    if not wanted:
        return
    per_case = wanted - {"method_not_allowed"}
    for host in run.contract.hosts:
        base = run.target.base_url(run.id, host["id"])
        if base is None:
            run.results.note(run.id, f"host {host['id']}: no URL, operations not checked")
            continue
        schema = load_schema(run.contract, host["id"])
        ops = {(o.method.upper(), o.path): o for o in run.contract.operations() if o.host == host["id"]}
        total = len(ops)
        for i, res in enumerate(schema.get_all_operations(), 1):
            try:
                st_op = res.ok()
            except Exception as exc:
                run.results.note(run.id, f"schemathesis could not load an operation: {exc}")
                continue
            op = ops.get((st_op.method.upper(), st_op.path))
            if op is None:
                continue
            if run.stopped:
                return
            if wanted & per_case:
                run.progress(f"contract {i}/{total} {op.operation_id}")
                OperationRunner(run, st_op, op, base).execute()
        if run.stopped:
            return
        run_method_checks(run, host["id"], base)
    if not any(o.role == "status_stream" for o in run.contract.operations()):
        run.skip("sse_event_conformance", "the contract has no status_stream operation")
    else:
        run.skip("sse_event_conformance", "no status stream answered 200 (no completed job to stream)")
