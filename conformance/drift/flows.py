"""Scripted recording flows, one per protocol family, run through the conformance family drivers.

A flow drives a provider (the mock or the real service) through a realistic remix journey with the suite's
own lifecycle drivers (:mod:`conformance.drivers`: one client per family, built from the contract's
``x-role`` operations and provider.yaml) and lets a :class:`~conformance.drift.recorder.Recorder` capture
every exchange through the hooks of the suite's HTTP client (:class:`conformance.http.Client`):

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
credentials, must fail). Request bodies come from the suite's builder (:func:`conformance.bodies.build`:
a vendored example or the schema's minimal instance, the ``x-kind`` model mapping, the ``x-source``
pointer, provider.yaml ``mock.params``), so a contract change is exercised without code changes; this
module only sets the flow's prompt and :data:`KEEP_REMIXABLE`. What stays here is the script (which step
follows which, under which label) and the polling cadence of a recording (``--poll-interval``).

Spending is guarded twice, with the rules of the conformance spend guard (conformance/spend.py):
:func:`check_spend` refuses a whole flow before anything is sent, and the guard the CLI builds
(``Recorder(guard=...)``, a ``conformance.spend.SpendGuard``) sits in the drivers' HTTP client, so it sees
every request. API keys are scrubbed by the recorder's redactor when an exchange is captured.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from specs import Contract, Operation, mount_prefix
from specs.families import SOURCED_KINDS
from specs.pointers import get_pointer, resolve_pointer, set_pointer, tokens

from .. import schema as sch
from ..bodies import BodyError, Request, build
from ..drivers import DRIVERS, Driver, DriverError, Job, Result, Snapshot
from ..http import Client, Credentials, Exchange
from ..spend import SpendBlocked
from .recorder import Recorder, origin

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
        poll_timeout: give up polling one job after this many seconds (a synchronous call may block this long).
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
        verify: TLS verification of the HTTP client (True, False, or a CA bundle path).
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
        """True when no step failed."""
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
def flow_request(contract: Contract, op: Operation, kind: str, source_id: str | None,
                 options: FlowOptions) -> Request:
    """The request a flow sends to ``op`` to create a job of ``kind`` (``generate``/``remix``).

    Built by the suite's :func:`conformance.bodies.build` (valid against the request schema; the clip length
    ``options.seconds`` where the contract allows it, else the cheapest allowed length and size; the source at
    ``x-source``; for a generation the provider's "delete output" flag off), then given ``options.prompt`` and,
    for a generation, the :data:`KEEP_REMIXABLE` fields the request schema declares.

    Raises:
        FlowError: no valid request can be built from the contract.
    """
    sourced = kind in SOURCED_KINDS
    try:
        req = build(contract, op, kind, source_id=source_id if sourced else None, seconds=options.seconds,
                    keep_output=not sourced, cheapest=True)
    except BodyError as exc:
        raise FlowError(str(exc)) from None
    if not isinstance(req.body, dict):
        return req
    prompt = (contract.params_rules().get("prompt") or {}).get("pointer", "/prompt")
    if get_pointer(req.body, prompt) is not None:
        set_pointer(req.body, prompt, options.prompt)
    rs = sch.request_schema(contract, op)
    if not sourced and rs is not None:
        schema = resolve_pointer(contract.openapi, rs[1])
        for name, value in KEEP_REMIXABLE.items():
            if name not in req.body and sch.schema_at(contract.openapi, schema, tokens("/" + name)) is not None:
                req.body[name] = value
    return req


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
class _Anonymous(Credentials):
    """No API key: requests go without a credential header."""

    def headers(self) -> dict[str, str]:
        """No header."""
        return {}


def credentials_for(contract: Contract, api_key: str | None) -> Credentials:
    """The :class:`~conformance.http.Credentials` provider.yaml ``auth`` prescribes for ``api_key`` (header,
    preferred scheme, environment variable); without a key, credentials that add no header."""
    auth = contract.auth
    creds = Credentials(header=auth["header"], scheme=auth.get("preferred") or auth["schemes"][0],
                        key=api_key or "", env=auth.get("env") or "")
    if not api_key:
        return _Anonymous(creds.header, creds.scheme, "", creds.env)
    return creds


class _RecorderGuard:
    """The recorder's per-request guard in the drivers' HTTP client. The recorder's protocol lets a guard refuse
    with any exception (``before`` raises); here every refusal becomes a
    :class:`~conformance.spend.SpendBlocked`, which the flow reports as one line."""

    def __init__(self, guard: Any):
        self.guard = guard

    def before(self, request: Any) -> None:
        """Refuse ``request`` (raise :class:`~conformance.spend.SpendBlocked`) when the guard does."""
        try:
            self.guard.before(request)
        except SpendBlocked:
            raise
        except Exception as exc:
            raise SpendBlocked(str(exc), "refused") from None

    def after(self, request: Any, response: Any) -> None:
        """Count the answered request."""
        self.guard.after(request, response)

    def release(self, request: Any) -> None:
        """Forget a request that got no answer."""
        self.guard.release(request)


class FlowRunner:
    """Runs the family flows of one provider with the conformance family drivers, through a recorder (see
    the module docstring).

    Every request goes through one :class:`conformance.http.Client` whose hook hands each exchange to
    ``recorder.record_exchange`` (labelled by the current step) and whose guard is ``recorder.guard``.

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
        self.recorder = recorder
        self.options = options or FlowOptions()
        self.result = FlowResult(provider=contract.id)
        self.credentials = credentials_for(contract, api_key)
        guard = None if recorder.guard is None else _RecorderGuard(recorder.guard)
        self.client = Client(guard=guard, timeout=self.options.request_timeout, verify=self.options.verify,
                             trust_env=not all(is_local(u) for u in self.hosts.values()))
        self.client.hooks.append(self._capture)
        self._label: str | None = None
        self._last = None

    # -- plumbing -----------------------------------------------------------------------------------
    def _capture(self, ex: Exchange) -> None:
        self._last = self.recorder.record_exchange(ex)
        if self._label is not None:
            self.result.steps.append({"label": self._label, "method": ex.method,
                                      "url": self.recorder.redactor.url(ex.url), "status": ex.status})

    @contextlib.contextmanager
    def step(self, label: str, expect: str | None) -> Iterator[None]:
        """Label the requests the drivers send inside the block; their errors become :class:`FlowError`."""
        with self.recorder.step(label, expect):
            self._label = label
            try:
                yield
            except DriverError as exc:
                raise FlowError(self.recorder.redactor.text(f"{label}: {exc}")) from None
            except SpendBlocked as exc:
                raise FlowError(self.recorder.redactor.text(f"{label}: refused by the spend guard: {exc}")) from None
            finally:
                self._label = None

    def driver(self, host: str) -> Driver:
        """The family driver of ``host`` (provider.yaml ``family``) on this runner's client.

        Raises:
            FlowError: the family has no driver.
        """
        family = next(h["family"] for h in self.contract.hosts if h["id"] == host)
        cls = DRIVERS.get(family)
        if cls is None:
            raise FlowError(f"no flow for family {family!r}")
        return cls(self.contract, host, self.hosts[host], self.client, self.credentials, mock=False,
                   timeout=self.options.request_timeout, job_timeout=self.options.poll_timeout)

    def op(self, driver: Driver, role: str, kind: str | None = None) -> Operation | None:
        """The first operation of ``role`` on the driver's host (serving ``kind``); billable ones are skipped
        with ``free_only``."""
        for o in driver.ops.get(role, []):
            if o.billable and self.options.free_only:
                continue
            if kind is None:
                return o
            kinds = set((o.kind.get("map") or {}).values()) | {o.kind.get("default")} if isinstance(o.kind, dict) \
                else {o.kind}
            if kind in kinds:
                return o
        return None

    def _expect_ok(self, label: str, status: int, exchange: Exchange | None) -> None:
        if status >= 400 or status == 0:
            what = f"{exchange.method} {self.recorder.redactor.url(exchange.url)}" if exchange else "the request"
            raise FlowError(f"{label}: {what} answered {status}")

    @staticmethod
    def _url(driver: Driver, op: Operation, value: str = "") -> str:
        """Absolute URL of ``op`` on the driver's host, every path parameter set to ``value``."""
        return driver.url_of(op, {name: value for name in op.path_regex.groupindex})

    def submit(self, driver: Driver, label: str, op: Operation, kind: str, source: str | None) -> Job:
        """Create a job through the driver (one billable call when ``op`` is ``x-billable``).

        Raises:
            FlowError: the body cannot be built, the request failed, or the answer is an error.
        """
        req = flow_request(self.contract, op, kind, source, self.options)
        self.result.billable_calls += int(op.billable)
        with self.step(label, "success"):
            job = driver.submit(req)
        self._expect_ok(label, job.submit.status, job.submit.exchange)
        return job

    def poll(self, driver: Driver, label: str, job: Job) -> Snapshot:
        """Poll ``job`` through the driver until its status is terminal, at most ``poll_interval`` apart (an
        ``openai-poll-after-ms``-like hint shortens the wait, a 429/5xx ``Retry-After`` lengthens it; a 304,
        aigateway's poll-rate answer, keeps waiting). Returns the terminal snapshot.

        Raises:
            FlowError: an error answer, a failed request, or no terminal status within ``poll_timeout``.
        """
        deadline = time.monotonic() + self.options.poll_timeout
        last: Snapshot | None = None
        while True:
            job.next_poll_at = 0.0  # the recording's cadence is decided here, not by the driver's default
            with self.step(label, "success"):
                snap = driver.poll(job)
            headers = snap.exchange.response_headers if snap.exchange else {}
            wait = self.options.poll_interval
            if snap.not_modified:
                pass
            elif snap.http_status == 429 or snap.http_status >= 500:
                wait = max(wait, _retry_after(headers) or wait)
            else:
                self._expect_ok(label, snap.http_status, snap.exchange)
                last = snap
                if snap.terminal:
                    return snap
                for name in driver.poll_hint_headers:
                    hint = headers.get(name.lower())
                    if hint and hint.isdigit():
                        wait = min(wait, int(hint) / 1000.0)
            if time.monotonic() + wait > deadline:
                status = last.status if last is not None else None
                raise FlowError(f"{label}: no terminal status after {self.options.poll_timeout:.0f} s "
                                f"(last: {status!r})")
            time.sleep(wait)

    def fetch(self, driver: Driver, label: str, job: Job) -> Result:
        """The job's output through the driver (a request only where the family has one: ``content``,
        ``result``); a cut binary body is completed in the cassette.

        Raises:
            FlowError: the request failed or answered an error.
        """
        self._last = None
        with self.step(label, "success"):
            res = driver.result(job)
        self._expect_ok(label, res.answer.status, res.answer.exchange)
        for dl in res.prefetched.values():
            if self._last is not None:
                self.recorder.complete_body(self._last, dl.data)
        return res

    def download(self, driver: Driver, label: str, res: Result) -> None:
        """Download the output's video (else its first asset) unless the driver already fetched it."""
        if not self.options.download or not res.assets:
            return
        asset = next((a for a in res.assets if a.is_video), res.assets[0])
        if asset.url in res.prefetched:
            return
        self._last = None
        with self.step(label, "success"):
            dl = driver.download(asset)
        if dl.status is None:
            raise FlowError(self.recorder.redactor.text(f"{label}: GET {asset.url}: "
                                                        f"{dl.refused or (dl.exchange.error if dl.exchange else None) or 'no answer'}"))
        if self._last is not None:
            self.recorder.complete_body(self._last, dl.data)

    def probes(self, driver: Driver, op: Operation | None) -> None:
        """The free error probes: an unknown id, and the same request without credentials."""
        if op is None or not self.options.probes:
            return
        url = self._url(driver, op, UNKNOWN_ID)
        with self.step("probe-unknown-id", "error"):
            driver.send("GET", url, retry=False)
        with self.step("probe-no-auth", "error"):
            driver.send("GET", url, auth=False, retry=False)

    def mock_source(self, host: str) -> str | None:
        """On a loopback mock, seed a completed source video through the admin API (not recorded: not a
        provider request)."""
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
                try:
                    getattr(self, f"flow_{h['family']}")(self.driver(h["id"]))
                except FlowError as exc:
                    self.result.errors.append(str(exc))
        finally:
            self.client.close()
        return self.result

    def flow_video_object(self, d: Driver) -> None:
        """create -> poll -> content -> remix/edit -> poll -> list -> probes -> delete."""
        create, retrieve = self.op(d, "create"), self.op(d, "retrieve")
        remix = self.op(d, "remix") or self.op(d, "edit")
        source = self.options.source_id
        created: list[Job] = []
        if create is not None and retrieve is not None:
            job = self.submit(d, "create", create, "generate", None)
            created.append(job)
            self.result.jobs["generate"] = job.id
            final = self.poll(d, "poll", job)
            self.result.outputs["generate"] = final.body
            if "completed" in final.neutral:
                source = source or job.id
                if d.ops.get("content"):
                    self.download(d, "download", self.fetch(d, "content", job))
        source = source or self.mock_source(d.host)
        if remix is not None and retrieve is not None and self.options.remix and source:
            job = self.submit(d, "remix", remix, "remix", source)
            created.append(job)
            self.result.jobs["remix"] = job.id
            self.result.outputs["remix"] = self.poll(d, "poll-remix", job).body
        if d.ops.get("list"):
            with self.step("list", "success"):
                d.list_page(limit=2)
        self.probes(d, retrieve)
        if d.ops.get("delete") and self.options.cleanup:
            for job in created:
                with self.step("delete", "success"):
                    d.delete(job)

    def flow_queue(self, d: Driver) -> None:
        """submit -> poll status_url -> result -> download -> remix submit -> poll -> result -> cancel -> probes."""
        gen, rem = self.op(d, "submit", "generate"), self.op(d, "submit", "remix")
        source = self.options.source_id
        done: Job | None = None
        if gen is not None:
            done = self.submit(d, "submit", gen, "generate", None)
            self.result.jobs["generate"] = done.id
            self.poll(d, "poll", done)
            res = self.fetch(d, "result", done)
            self.result.outputs["generate"] = res.answer.body
            self.download(d, "download", res)
            source = source or (done.source_id if rem is not None else None)
        source = source or self.mock_source(d.host)
        if rem is not None and self.options.remix and source:
            job = self.submit(d, "submit-remix", rem, "remix", source)
            self.result.jobs["remix"] = job.id
            self.poll(d, "poll-remix", job)
            self.result.outputs["remix"] = self.fetch(d, "result-remix", job).answer.body
        if done is not None and d.ops.get("cancel"):
            with self.step("cancel-completed", None):
                d.cancel(done)
        self.probes(d, self.op(d, "status"))

    def flow_job(self, d: Driver) -> None:
        """submit -> poll -> download -> remix submit -> poll -> cancel of a finished job -> probes."""
        gen, rem = self.op(d, "submit", "generate"), self.op(d, "submit", "remix")
        retrieve = self.op(d, "retrieve")
        if retrieve is None:
            raise FlowError("job family without a retrieve operation")
        source = self.options.source_id
        done: Job | None = None
        if gen is not None:
            done = self.submit(d, "submit", gen, "generate", None)
            self.result.jobs["generate"] = done.id
            final = self.poll(d, "poll", done)
            self.result.outputs["generate"] = final.body
            self.download(d, "download", self.fetch(d, "download", done))
            if "completed" in final.neutral:
                source = source or done.source_id or done.id
        source = source or self.mock_source(d.host)
        if rem is not None and self.options.remix and source:
            job = self.submit(d, "submit-remix", rem, "remix", source)
            self.result.jobs["remix"] = job.id
            self.result.outputs["remix"] = self.poll(d, "poll-remix", job).body
        if done is not None and d.ops.get("cancel"):
            with self.step("cancel-completed", None):
                d.cancel(done)
        self.probes(d, retrieve)

    def flow_sync(self, d: Driver) -> None:
        """run (generate) -> download -> run (remix) -> download -> no-credentials probe."""
        gen, rem = self.op(d, "run", "generate"), self.op(d, "run", "remix")
        source = self.options.source_id
        if gen is not None:
            job = self.submit(d, "run", gen, "generate", None)
            self.result.outputs["generate"] = job.submit.body
            self.download(d, "download", self.fetch(d, "download", job))
            source = source or (job.source_id if rem is not None else None)
        source = source or self.mock_source(d.host)
        if rem is not None and self.options.remix and source:
            job = self.submit(d, "run-remix", rem, "remix", source)
            self.result.outputs["remix"] = job.submit.body
            self.download(d, "download-remix", self.fetch(d, "download-remix", job))
        target = rem or gen
        if target is not None and self.options.probes:
            with self.step("probe-no-auth", "error"):
                d.send(target.method.upper(), self._url(d, target), body={"prompt": "x"},
                       media_type="application/json", auth=False, retry=False)


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
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
           "billable_plan", "check_spend", "credentials_for", "flow_request", "is_free_host", "is_local",
           "resolve_hosts", "run_flow"]
