"""Scripted recording flows, one per protocol family, built only from the contract's ``x-role`` operations.

A flow drives a provider (the mock or the real service) through a realistic remix journey and lets a
:class:`~conformance.drift.recorder.Recorder` capture every exchange:

============== =====================================================================================
family          steps (labels as recorded)
============== =====================================================================================
video_object    ``create`` -> ``poll`` ... -> ``content`` (+ ``download`` of a JSON link) -> ``remix``
                (or ``edit``) -> ``poll-remix`` ... -> ``list`` -> probes -> ``delete``
queue           ``submit`` -> ``poll`` ... (status_url) -> ``result`` -> ``download`` -> ``submit-remix`` ->
                ``poll-remix`` ... -> ``result-remix`` -> ``cancel-completed`` -> probes
job             ``submit`` -> ``poll`` ... -> ``download`` -> ``submit-remix`` -> ``poll-remix`` ... ->
                ``cancel-completed`` -> probes
sync            ``run`` (generate, when the host has one) -> ``download`` -> ``run-remix`` -> probes
============== =====================================================================================

Probes cost nothing: ``probe-unknown-id`` (an id that does not exist, must fail) and ``probe-no-auth`` (no
credentials, must fail). Request bodies are built from the request schema (required fields, the ``x-kind``
model mapping, the ``x-source`` pointer), so a contract change is exercised without code changes.

The conformance lifecycle drivers (conformance/drivers/, another module) did not exist when this was
written; these flows are the minimal per-family runners the drift recorder needs. Spending is guarded twice,
with the rules of the conformance spend guard (conformance/spend.py): :func:`check_spend` refuses a whole
flow before anything is sent, and the CLI also puts ``conformance.spend.SpendGuard`` on every request
(see ``Recorder(guard=...)``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from specs import Contract, Operation, mount_prefix
from specs.pointers import set_pointer

from .recorder import Recorder, origin
from .schemawalk import MISSING, SchemaWalker, esc

DEFAULT_PROMPT = "A paper boat drifting across a calm pond at dawn, slow pan (conformance drift recording)"
UNKNOWN_ID = "drift-probe-0000000000000000"
# Fields a flow must set so that its first output can be remixed: fal's DeleteVideo defaults to true and a
# deleted output "cannot be used for remixing" (specs/fal/openapi.yaml x-doc-defect, seed 001).
KEEP_REMIXABLE = {"delete_video": False}


class FlowError(Exception):
    """The flow cannot continue (a step failed). ``str(err)`` is one clear line."""


class SpendRefused(FlowError):
    """Billable calls against a real provider were not allowed (see :func:`check_spend`)."""


@dataclass
class FlowOptions:
    """Knobs of a recording flow.

    Attributes:
        poll_interval: longest wait between two polls, seconds (a provider hint such as
            ``openai-poll-after-ms`` or ``Retry-After`` may shorten or lengthen a wait).
        poll_timeout: give up polling one job after this many seconds.
        request_timeout: timeout of one HTTP request, seconds.
        seconds: requested clip length where the request has a ``seconds``/``duration`` field.
        prompt: the generation prompt.
        source_id: remix this existing video instead of generating one (sync remix-only providers).
        remix, download, probes, cleanup: enable the remix step, asset downloads, the free error probes and
            the deletion of created videos (where the contract has a ``delete`` role).
        allow_spend: allow billable calls against a host that is not our mock.
        max_spend_usd: budget in USD for those calls (estimated with provider.yaml ``pricing.usd_per_second``);
            a provider without a documented price cannot be bounded, so its billable calls are refused.
        free_only: skip every billable operation (record probes, lists and error shapes only).
        verify: TLS verification for httpx (True, False, or a CA bundle path).
    """

    poll_interval: float = 2.0
    poll_timeout: float = 900.0
    request_timeout: float = 120.0
    seconds: int = 4
    prompt: str = DEFAULT_PROMPT
    source_id: str | None = None
    remix: bool = True
    download: bool = True
    probes: bool = True
    cleanup: bool = True
    allow_spend: bool = False
    max_spend_usd: float = 0.0
    free_only: bool = False
    verify: bool | str = True


@dataclass
class FlowResult:
    """What a flow did: ``steps`` (label, method, url, status), created job ids, final objects, errors."""

    provider: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    billable_calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def is_local(url: str) -> bool:
    """True when a URL points at this machine (127.0.0.0/8, ::1, localhost, *.localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")


def resolve_hosts(contract: Contract, base_url: str, host_urls: dict[str, str] | None = None) -> dict[str, str]:
    """Base URL of every host of a provider, from the primary host's ``base_url``.

    ``host_urls`` (host id -> URL) wins. Otherwise: when ``base_url`` is the real primary base URL the
    other hosts get their real URLs; when it ends with the primary host's mock mount (``.../fal``), the
    others are derived from the same mock root (``.../fal-run``); else only the primary host is used.

    Raises:
        FlowError: ``host_urls`` names a host the provider does not have.
    """
    hosts = contract.hosts
    known = {h["id"] for h in hosts}
    for hid in host_urls or {}:
        if hid not in known:
            raise FlowError(f"{contract.id} has no host {hid!r} (hosts: {', '.join(sorted(known))})")
    base = base_url.rstrip("/")
    out = {hosts[0]["id"]: base}
    primary = hosts[0]
    if base == primary["base_url"].rstrip("/"):
        for h in hosts[1:]:
            out[h["id"]] = h["base_url"].rstrip("/")
    else:
        for at_root in (False, True):
            prefix = mount_prefix(primary, at_root)
            if prefix and base.endswith(prefix):
                root = base[: -len(prefix)]
                for h in hosts[1:]:
                    out[h["id"]] = root + mount_prefix(h, False)
                break
    out.update({k: v.rstrip("/") for k, v in (host_urls or {}).items()})
    return out


# -- request bodies -----------------------------------------------------------------------------------
def _sample(walker: SchemaWalker, ptr: str | None, name: str, options: FlowOptions) -> Any:
    if name == "prompt":
        return options.prompt
    if ptr is None:
        return "sample"
    node, _ = walker.deref(ptr)
    flat = walker.flatten(ptr, None)
    if isinstance(node, dict) and "default" in node:
        return node["default"]
    if flat.const is not MISSING:
        return flat.const
    if flat.enum:
        return flat.enum[0]
    types = flat.types or {"string"}
    if "string" in types:
        return "sample"
    if "integer" in types or "number" in types:
        return int((node or {}).get("minimum", 1)) if isinstance(node, dict) else 1
    if "boolean" in types:
        return False
    if "array" in types:
        return []
    if "object" in types:
        return {}
    return None


def _length_value(walker: SchemaWalker, ptr: str, seconds: int) -> Any:
    flat = walker.flatten(ptr, None)
    if flat.enum:
        for v in flat.enum:
            if str(v) == str(seconds):
                return v
        numeric = sorted((v for v in flat.enum if str(v).isdigit()), key=lambda v: int(str(v)))
        return numeric[0] if numeric else flat.enum[0]
    types = flat.types or {"integer"}
    return seconds if ("integer" in types or "number" in types) else str(seconds)


def request_body(contract: Contract, op: Operation, kind: str, source_id: str | None,
                 options: FlowOptions) -> tuple[str | None, dict | None]:
    """``(media type, body)`` for a request to ``op`` creating a job of ``kind`` (``generate``/``remix``).

    The body holds the schema's required fields (prompt, model ...), the model the ``x-kind`` mapping
    names for ``kind``, the remix source at the ``x-source`` body pointer, the clip length (``seconds`` /
    ``duration`` fields) and :data:`KEEP_REMIXABLE` fields the schema declares. JSON is preferred; a
    multipart-only operation gets its fields as multipart parts.
    """
    rb = op.definition.get("requestBody")
    if not isinstance(rb, dict):
        return None, None
    walker = SchemaWalker(contract.openapi)
    rb_ptr = f"#/paths/{esc(op.spec_path)}/{op.method.lower()}/requestBody"
    rb, rb_ptr = walker.deref(rb_ptr)
    content = rb.get("content") or {}
    ctype = "application/json" if "application/json" in content else next(iter(content), None)
    if ctype is None:
        return None, None
    schema_ptr = f"{rb_ptr}/content/{esc(ctype)}/schema"
    body: dict[str, Any] = {}
    if isinstance(op.kind, dict):
        model = next((m for m, k in (op.kind.get("map") or {}).items() if k == kind), None)
        if model is not None:
            set_pointer(body, op.kind.get("pointer", "/model"), model)
    if kind == "remix" and op.source and op.source.get("in") == "body" and source_id:
        set_pointer(body, op.source.get("pointer", "/video_id"), source_id)
    flat = walker.flatten(schema_ptr, body)
    for name, value in KEEP_REMIXABLE.items():
        if name in flat.properties and kind != "remix":
            body.setdefault(name, value)
    for name in ("seconds", "duration"):
        if name in flat.properties and name not in body and kind != "remix":
            body[name] = _length_value(walker, flat.properties[name], options.seconds)
            break
    for name in sorted(flat.required):
        if name not in body:
            body[name] = _sample(walker, flat.properties.get(name), name, options)
    return ctype, body


# -- spend guard --------------------------------------------------------------------------------------
def billable_plan(contract: Contract, hosts: dict[str, str], options: FlowOptions) -> list[Operation]:
    """The billable operations a flow will call (one per generation), in order."""
    plan: list[Operation] = []
    for h in contract.hosts:
        if h["id"] not in hosts:
            continue
        ops = [o for o in contract.operations() if o.host == h["id"]]
        creators = [o for o in ops if o.billable and o.role in ("create", "submit", "run", "remix", "edit")]
        gen = next((o for o in creators if o.kind_for({}) == "generate" or (isinstance(o.kind, dict)
                    and "generate" in (o.kind.get("map") or {}).values())), None)
        rem = next((o for o in creators if o.may_remix), None)
        if gen is not None:
            plan.append(gen)
        if rem is not None and options.remix and (gen is not None or options.source_id or is_local(hosts[h["id"]])):
            plan.append(rem)
    return plan


def is_free_host(url: str, verify: bool | str = True) -> bool:
    """True when ``url`` is on our mock: a loopback address whose ``/__mock/health`` names the mock.
    Only loopback URLs are probed (nothing is sent to a real provider)."""
    if not is_local(url):
        return False
    try:
        with httpx.Client(verify=verify, timeout=5, trust_env=False) as c:
            doc = c.get(origin(url) + "/__mock/health").json()
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("mock") == "sora-remix-mock"


def check_spend(contract: Contract, hosts: dict[str, str], options: FlowOptions,
                free_hosts: set[str] | None = None) -> float | None:
    """Refuse, before anything is sent, a flow that would spend money without permission.

    The rules are those of the conformance spend guard (conformance/spend.py): billable operations
    (``x-billable``) against a host that is not our mock need ``allow_spend``, a documented price
    (provider.yaml ``pricing.usd_per_second``) and an estimate (price x ``seconds`` per generation) within
    ``max_spend_usd``. ``free_only`` flows call no billable operation.

    Args:
        free_hosts: host ids known to be our mock (default: probed with :func:`is_free_host`).

    Returns:
        The estimated cost in USD of the billable calls against paid hosts (0.0 when there are none).

    Raises:
        SpendRefused: one clear line saying what would be spent and which flag permits it.
    """
    if options.free_only:
        return 0.0
    plan = billable_plan(contract, hosts, options)
    if free_hosts is None:
        free_hosts = {h for h in {o.host for o in plan} if is_free_host(hosts[h], options.verify)}
    paid = [o for o in plan if o.host not in free_hosts]
    if not paid:
        return 0.0
    price = contract.price_per_second_usd
    estimate = None if price is None else round(price * options.seconds * len(paid), 4)
    what = f"{len(paid)} billable generation(s) against {', '.join(sorted({hosts[o.host] for o in paid}))}"
    if not options.allow_spend:
        cost = f"~${estimate:.2f}" if estimate is not None else "cost unknown"
        raise SpendRefused(f"recording would run {what} ({cost}); pass --allow-spend with --max-spend-usd, "
                           "or --free-only")
    if estimate is None:
        raise SpendRefused(f"recording would run {what}, but {contract.id} documents no price "
                           "(pricing.usd_per_second), so the spend cannot be bounded; use --free-only")
    if estimate > options.max_spend_usd + 1e-9:
        raise SpendRefused(f"recording would run {what} costing ~${estimate:.2f}, above --max-spend-usd "
                           f"{options.max_spend_usd:g}")
    return estimate


# -- the runner ---------------------------------------------------------------------------------------
class FlowRunner:
    """Runs the family flows of one provider through a recorder (see the module docstring).

    Args:
        contract: the provider's contract.
        hosts: host id -> base URL (see :func:`resolve_hosts`); hosts without a URL are skipped.
        api_key: the credential (sent as provider.yaml ``auth`` prescribes; redacted in the cassette).
        recorder: captures the traffic.
        options: :class:`FlowOptions`.
    """

    def __init__(self, contract: Contract, hosts: dict[str, str], api_key: str | None, recorder: Recorder,
                 options: FlowOptions | None = None):
        self.contract = contract
        self.hosts = {k: v.rstrip("/") for k, v in hosts.items()}
        self.api_key = api_key
        self.recorder = recorder
        self.options = options or FlowOptions()
        self.result = FlowResult(provider=contract.id)
        self.client = recorder.client(verify=self.options.verify, timeout=self.options.request_timeout,
                                      follow_redirects=False)
        self._origins = {origin(u) for u in self.hosts.values()}

    # -- plumbing -----------------------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        auth = self.contract.auth
        if not self.api_key:
            return {}
        scheme = auth.get("preferred") or auth["schemes"][0]
        value = self.api_key if scheme == "raw" else f"{scheme} {self.api_key}"
        return {auth["header"]: value}

    def call(self, label: str, expect: str | None, method: str, url: str, *, auth: bool = True,
             json_body: Any = None, ctype: str | None = None, params: dict | None = None,
             headers: dict | None = None) -> httpx.Response:
        """One recorded request. Credentials go only to the provider's own hosts (never to a CDN URL).

        Raises:
            FlowError: the request failed at the transport level.
        """
        hdrs = dict(headers or {})
        if auth and origin(url) in self._origins:
            hdrs.update(self.auth_headers())
        kwargs: dict[str, Any] = {"headers": hdrs, "params": params}
        if json_body is not None:
            if ctype and ctype.startswith("multipart/"):
                kwargs["files"] = [(k, (None, v if isinstance(v, str) else str(v))) for k, v in json_body.items()]
            else:
                kwargs["json"] = json_body
        try:
            with self.recorder.step(label, expect):
                resp = self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            msg = self.recorder.redactor.text(f"{label}: {method} {url}: {type(exc).__name__}: {exc}")
            raise FlowError(msg) from None
        self.result.steps.append({"label": label, "method": method, "url": self.recorder.redactor.url(url),
                                  "status": resp.status_code})
        return resp

    def url_for(self, op: Operation, value: str = "") -> str:
        """Absolute URL of ``op`` on its host, every path parameter set to ``value``."""
        path = op.path
        for name in op.path_regex.groupindex:
            path = path.replace("{" + name + "}", value)
        return self.hosts[op.host] + path

    def op(self, host: str, role: str, kind: str | None = None) -> Operation | None:
        """The first operation of ``role`` on ``host`` (serving ``kind``); billable ones are skipped with ``free_only``."""
        for o in self.contract.operations_by_role(role, host):
            if o.billable and self.options.free_only:
                continue
            if kind is None:
                return o
            kinds = set((o.kind.get("map") or {}).values()) | {o.kind.get("default")} if isinstance(o.kind, dict) \
                else {o.kind}
            if kind in kinds:
                return o
        return None

    def _json(self, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            return None

    def _expect_ok(self, label: str, resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            raise FlowError(f"{label}: {resp.request.method} {self.recorder.redactor.url(str(resp.request.url))} "
                            f"answered {resp.status_code}")
        return self._json(resp)

    def terminal(self, status: Any) -> bool:
        """True when a provider status value maps onto a terminal neutral state (provider.yaml statuses)."""
        if not isinstance(status, str):
            return False
        return any(n in ("completed", "failed", "cancelled") for n in self.contract.neutral_states(status))

    def completed(self, status: Any) -> bool:
        return isinstance(status, str) and "completed" in self.contract.neutral_states(status)

    def poll(self, label: str, url: str) -> dict:
        """Poll ``url`` until its body's ``status`` is terminal; honours ``openai-poll-after-ms`` and
        ``Retry-After``; a 304 (aigateway's poll-rate answer) keeps waiting. Returns the last body."""
        deadline = time.monotonic() + self.options.poll_timeout
        last: dict = {}
        while True:
            resp = self.call(label, "success", "GET", url)
            wait = self.options.poll_interval
            if resp.status_code == 304:
                pass
            elif resp.status_code == 429 or resp.status_code >= 500:
                wait = max(wait, _retry_after(resp) or wait)
            else:
                body = self._expect_ok(label, resp)
                if isinstance(body, dict):
                    last = body
                    if self.terminal(body.get("status")):
                        return body
                hint = resp.headers.get("openai-poll-after-ms")
                if hint and hint.isdigit():
                    wait = min(wait, int(hint) / 1000.0)
            if time.monotonic() + wait > deadline:
                raise FlowError(f"{label}: no terminal status after {self.options.poll_timeout:.0f} s "
                                f"(last: {last.get('status')!r})")
            time.sleep(wait)

    def download(self, label: str, url: str | None) -> None:
        if url and self.options.download:
            self.call(label, "success", "GET", url)

    def probes(self, host: str, op: Operation | None, method: str = "GET") -> None:
        """The free error probes: an unknown id, and the same request without credentials."""
        if op is None or not self.options.probes:
            return
        self.call("probe-unknown-id", "error", method, self.url_for(op, UNKNOWN_ID))
        self.call("probe-no-auth", "error", method, self.url_for(op, UNKNOWN_ID), auth=False)

    def mock_source(self, host: str) -> str | None:
        """On a loopback mock, seed a completed source video through the admin API (not recorded)."""
        base = self.hosts[host]
        if not is_local(base):
            return None
        root = origin(base)
        try:
            with httpx.Client(verify=self.options.verify, timeout=10) as c:
                r = c.post(f"{root}/__mock/videos", json={"provider": self.contract.id, "seconds": self.options.seconds})
            return r.json().get("id") if r.status_code < 300 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None

    # -- families -----------------------------------------------------------------------------------
    def run(self) -> FlowResult:
        """Run the flow of every host that has a base URL. Errors end that host's flow and are listed in
        ``result.errors`` (the traffic recorded so far is kept)."""
        try:
            for h in self.contract.hosts:
                if h["id"] not in self.hosts:
                    continue
                fn = getattr(self, f"flow_{h['family']}", None)
                if fn is None:
                    self.result.errors.append(f"no flow for family {h['family']!r}")
                    continue
                try:
                    fn(h["id"])
                except FlowError as exc:
                    self.result.errors.append(str(exc))
        finally:
            self.client.close()
        return self.result

    def _create(self, label: str, op: Operation, kind: str, source: str | None, url: str | None = None) -> httpx.Response:
        ctype, body = request_body(self.contract, op, kind, source, self.options)
        self.result.billable_calls += int(op.billable)
        return self.call(label, "success", op.method, url or self.url_for(op, source or ""), json_body=body,
                         ctype=ctype)

    def flow_video_object(self, host: str) -> None:
        """create -> poll -> content -> remix/edit -> poll -> list -> probes -> delete."""
        create, retrieve = self.op(host, "create"), self.op(host, "retrieve")
        content, remix = self.op(host, "content"), self.op(host, "remix") or self.op(host, "edit")
        source = self.options.source_id
        created: list[str] = []
        if create is not None and retrieve is not None:
            job = self._expect_ok("create", self._create("create", create, "generate", None))
            vid = (job or {}).get("id")
            if not isinstance(vid, str):
                raise FlowError("create: the answer has no id")
            created.append(vid)
            self.result.jobs["generate"] = vid
            final = self.poll("poll", self.url_for(retrieve, vid))
            self.result.outputs["generate"] = final
            if self.completed(final.get("status")):
                source = source or vid
                if content is not None:
                    resp = self.call("content", "success", "GET", self.url_for(content, vid))
                    link = self._json(resp) if "json" in resp.headers.get("content-type", "") else None
                    if isinstance(link, dict):
                        self.download("download", link.get("url"))
        source = source or self.mock_source(host)
        if remix is not None and retrieve is not None and self.options.remix and source:
            job = self._expect_ok("remix", self._create("remix", remix, "remix", source))
            rid = (job or {}).get("id")
            if isinstance(rid, str):
                created.append(rid)
                self.result.jobs["remix"] = rid
                self.result.outputs["remix"] = self.poll("poll-remix", self.url_for(retrieve, rid))
        lst = self.op(host, "list")
        if lst is not None:
            self.call("list", "success", "GET", self.url_for(lst), params={"limit": 2})
        self.probes(host, retrieve)
        delete = self.op(host, "delete")
        if delete is not None and self.options.cleanup:
            for vid in created:
                self.call("delete", "success", "DELETE", self.url_for(delete, vid))

    def _queue_urls(self, host: str, sub: dict) -> tuple[str, str, str | None]:
        rid = sub.get("request_id")
        status, result, cancel = self.op(host, "status"), self.op(host, "result"), self.op(host, "cancel")
        s_url = sub.get("status_url") or (self.url_for(status, rid) if status else None)
        r_url = sub.get("response_url") or (self.url_for(result, rid) if result else None)
        c_url = sub.get("cancel_url") or (self.url_for(cancel, rid) if cancel else None)
        if not s_url or not r_url:
            raise FlowError("submit: no status or result URL")
        return s_url, r_url, c_url

    def _source_from(self, op: Operation | None, output: Any, fallback: str | None) -> str | None:
        if isinstance(output, dict):
            token = ((op.source or {}).get("pointer") or "/video_id").rstrip("/").rsplit("/", 1)[-1] if op else "video_id"
            for key in (token, "video_id", "id"):
                if isinstance(output.get(key), str):
                    return output[key]
        return fallback

    def _file_url(self, output: Any) -> str | None:
        """The first downloadable URL in a model output (``video.url``, ``result.url``, ``data[0].url`` ...)."""
        if isinstance(output, dict):
            for key in ("video", "result", "output"):
                if isinstance(output.get(key), dict):
                    found = self._file_url(output[key])
                    if found:
                        return found
            for key in ("url", "file_url", "video_url"):
                if isinstance(output.get(key), str) and output[key].startswith(("http://", "https://")):
                    return output[key]
            for v in output.values():
                if isinstance(v, dict | list):
                    found = self._file_url(v)
                    if found:
                        return found
        elif isinstance(output, list):
            for v in output:
                found = self._file_url(v)
                if found:
                    return found
        return None

    def flow_queue(self, host: str) -> None:
        """submit -> poll status_url -> result -> download -> remix submit -> poll -> result -> cancel -> probes."""
        gen, rem = self.op(host, "submit", "generate"), self.op(host, "submit", "remix")
        status_op = self.op(host, "status")
        source = self.options.source_id
        cancel_url = None
        if gen is not None:
            sub = self._expect_ok("submit", self._create("submit", gen, "generate", None)) or {}
            self.result.jobs["generate"] = str(sub.get("request_id"))
            s_url, r_url, cancel_url = self._queue_urls(host, sub)
            self.poll("poll", s_url)
            output = self._expect_ok("result", self.call("result", "success", "GET", r_url))
            self.result.outputs["generate"] = output
            self.download("download", self._file_url(output))
            source = source or self._source_from(rem, output, None)
        source = source or self.mock_source(host)
        if rem is not None and self.options.remix and source:
            sub = self._expect_ok("submit-remix", self._create("submit-remix", rem, "remix", source)) or {}
            self.result.jobs["remix"] = str(sub.get("request_id"))
            s_url, r_url, _ = self._queue_urls(host, sub)
            self.poll("poll-remix", s_url)
            output = self._expect_ok("result-remix", self.call("result-remix", "success", "GET", r_url))
            self.result.outputs["remix"] = output
        cancel = self.op(host, "cancel")
        if cancel_url and cancel is not None:
            self.call("cancel-completed", None, cancel.method, cancel_url)
        self.probes(host, status_op)

    def flow_job(self, host: str) -> None:
        """submit -> poll -> download -> remix submit -> poll -> cancel of a finished job -> probes."""
        gen, rem = self.op(host, "submit", "generate"), self.op(host, "submit", "remix")
        retrieve, cancel = self.op(host, "retrieve"), self.op(host, "cancel")
        if retrieve is None:
            raise FlowError("job family without a retrieve operation")
        source = self.options.source_id
        done: str | None = None
        if gen is not None:
            job = self._expect_ok("submit", self._create("submit", gen, "generate", None)) or {}
            jid = job.get("id")
            if not isinstance(jid, str):
                raise FlowError("submit: the answer has no id")
            self.result.jobs["generate"] = done = jid
            final = self.poll("poll", self.url_for(retrieve, jid))
            self.result.outputs["generate"] = final
            self.download("download", self._file_url(final.get("result")))
            if self.completed(final.get("status")):
                source = source or jid
        source = source or self.mock_source(host)
        if rem is not None and self.options.remix and source:
            job = self._expect_ok("submit-remix", self._create("submit-remix", rem, "remix", source)) or {}
            jid = job.get("id")
            if isinstance(jid, str):
                self.result.jobs["remix"] = jid
                self.result.outputs["remix"] = self.poll("poll-remix", self.url_for(retrieve, jid))
        if cancel is not None and done:
            self.call("cancel-completed", None, cancel.method, self.url_for(cancel, done))
        self.probes(host, retrieve)

    def flow_sync(self, host: str) -> None:
        """run (generate) -> download -> run (remix) -> download -> no-credentials probe."""
        gen, rem = self.op(host, "run", "generate"), self.op(host, "run", "remix")
        source = self.options.source_id
        if gen is not None:
            output = self._expect_ok("run", self._create("run", gen, "generate", None))
            self.result.outputs["generate"] = output
            self.download("download", self._file_url(output))
            source = source or self._source_from(rem, output, None)
        source = source or self.mock_source(host)
        if rem is not None and self.options.remix and source:
            output = self._expect_ok("run-remix", self._create("run-remix", rem, "remix", source))
            self.result.outputs["remix"] = output
            self.download("download-remix", self._file_url(output))
        target = rem or gen
        if target is not None and self.options.probes:
            self.call("probe-no-auth", "error", target.method, self.url_for(target), auth=False,
                      json_body={"prompt": "x"})


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return min(60.0, float(value)) if value else None
    except ValueError:
        return None


def run_flow(contract: Contract, hosts: dict[str, str], api_key: str | None, recorder: Recorder,
             options: FlowOptions | None = None, free_hosts: set[str] | None = None) -> FlowResult:
    """Check the spend guard, then run the provider's flows through ``recorder``.

    Raises:
        SpendRefused: see :func:`check_spend` (nothing is sent then).
    """
    options = options or FlowOptions()
    estimate = check_spend(contract, hosts, options, free_hosts)
    recorder.cassette.meta.update({"flow": [h["family"] for h in contract.hosts if h["id"] in hosts],
                                   "estimated_usd": estimate})
    result = FlowRunner(contract, hosts, api_key, recorder, options).run()
    recorder.cassette.meta["flow_errors"] = [recorder.redactor.text(e) for e in result.errors]
    recorder.cassette.meta["billable_calls"] = result.billable_calls
    return result


__all__ = ["DEFAULT_PROMPT", "FlowError", "FlowOptions", "FlowResult", "FlowRunner", "SpendRefused",
           "billable_plan", "check_spend", "is_free_host", "is_local", "request_body", "resolve_hosts", "run_flow"]
