"""The driver interface: one class per protocol family speaks that family's dialect for any provider.

A driver is built for one provider host from the contract alone — operations by ``x-role``, job kinds by
``x-kind``, the remix source by ``x-source``, field names from the response schemas, statuses and auth
from provider.yaml — never from the provider id. It turns wire answers into neutral observations
(:class:`Snapshot`) that the lifecycle checks judge.

Every request goes through :class:`conformance.http.Client` (spend guard, recording hooks). A driver:

- ``submit(request)`` creates a job (generate or remix) -> :class:`Job`;
- ``poll(job)`` observes it -> :class:`Snapshot`, honouring the server's poll hints (``openai-poll-after-ms``,
  ``Retry-After``): it never polls a job again before the hinted time;
- ``result(job)`` fetches the output -> :class:`Result` with downloadable :class:`Asset` s;
- ``download(asset)`` -> :class:`Download`; ``cancel(job)`` -> :class:`Answer`;
- ``list_page(...)`` / ``delete(job)`` where the family has them.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from specs import Contract, Operation
from specs.families import CREATING_ROLES, SOURCED_KINDS
from specs.pointers import get_pointer, tokens

from .. import schema as sch
from ..bodies import Request
from ..http import Client, Credentials, Exchange, OutsideTarget

MISSING: Any = type("MissingType", (), {"__repr__": lambda self: "<missing>", "__bool__": lambda self: False})()
TERMINAL = ("completed", "failed", "cancelled")
RANK = {"queued": 0, "in_progress": 1, "completed": 2, "failed": 2, "cancelled": 2}
MAX_HINT_WAIT = 5.0  # seconds: longest the driver sleeps for one hint (longer hints are reported, then capped)
MAX_RETRIES = 4      # 429/503 answers retried per call (honouring Retry-After)
MIN_POLL_INTERVAL = 0.02  # seconds between two polls of one job when the server gives no hint


class DriverError(Exception):
    """A 2xx answer the driver cannot interpret (e.g. a submit answer without an id), or a transport
    error. ``exchange`` is the offending exchange, when there is one."""

    def __init__(self, message: str, exchange: Exchange | None = None, timed_out: bool = False,
                 refused: bool = False):
        super().__init__(message)
        self.exchange = exchange
        self.timed_out = timed_out  # the target did not answer within the request's timeout
        self.refused = refused      # the suite did not send it (--only-target-hosts): not a finding


@dataclass
class Hint:
    """A poll hint seen on a response: header name, raw value, and the wait it asks for in seconds."""

    header: str
    value: str
    seconds: float | None
    status: int
    exchange: Exchange | None = None


@dataclass
class Snapshot:
    """One observation of a job.

    ``status`` is the provider's raw status value (None when absent); ``neutral`` the neutral states it
    can mean (provider.yaml ``statuses``), resolved to one where the body disambiguates (fal's
    ``COMPLETED`` with ``error`` set is a failure). Fields the body does not carry are :data:`MISSING`.
    """

    at: float
    http_status: int
    id: Any = MISSING
    status: Any = MISSING
    neutral: tuple[str, ...] = ()
    progress: Any = MISSING
    queue_position: Any = MISSING
    timestamps: dict[str, Any] = field(default_factory=dict)
    error: Any = MISSING
    lineage: Any = MISSING
    body: Any = None
    exchange: Exchange | None = None
    not_modified: bool = False
    source: str = "poll"  # poll | submit | cancel | stream

    @property
    def rank(self) -> int | None:
        ranks = {RANK[n] for n in self.neutral if n in RANK}
        return min(ranks) if ranks else None

    @property
    def terminal(self) -> bool:
        return bool(self.neutral) and all(n in TERMINAL for n in self.neutral)


@dataclass
class Asset:
    """A downloadable output: absolute ``url``, ``name`` (``video``, ``thumbnail``...), the content type the
    provider declared for it (None when undeclared), and whether to send credentials."""

    url: str
    name: str
    declared_type: str | None
    auth: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        """The output's video: named so by the contract's output field (``video``), else declared
        ``video/*``, else an ``.mp4`` URL."""
        if "video" in self.name.lower():
            return True
        if self.declared_type:
            return self.declared_type.startswith("video/")
        return self.url.split("?")[0].endswith(".mp4")


@dataclass
class Download:
    """A downloaded asset: HTTP status (None without an answer), content type, bytes; ``refused`` says why the
    suite did not send the request (``--only-target-hosts``), in which case nothing is judged."""

    asset: Asset
    status: int | None
    content_type: str | None
    data: bytes
    exchange: Exchange | None
    refused: str | None = None


@dataclass
class Answer:
    """A plain answer: HTTP status, parsed JSON body (or None) and the exchange."""

    status: int
    body: Any
    exchange: Exchange | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Result:
    """The output of a job (``ok`` when 2xx) with its assets and declared media metadata."""

    answer: Answer
    assets: list[Asset] = field(default_factory=list)
    declared: dict[str, Any] = field(default_factory=dict)  # {"width","height","seconds"} claimed by the provider
    prefetched: dict[str, Download] = field(default_factory=dict)  # url -> download already made


@dataclass
class Job:
    """A job created through a driver, with everything observed about it."""

    driver: Driver
    kind: str
    id: str
    request: Request
    submit: Answer
    webhook: str | None = None                # receiver path a per-request or project webhook goes to
    callback: Any = None                      # its conformance.webhooks.Callback, or (schema ptr, x-delivery)
    webhook_judged: bool = False
    finished: bool = False                    # Lifecycle.finish ran on it
    polled_after_end: bool = False
    source: Job | None = None
    source_ref: str | None = None
    expect_failure: bool = False
    urls: dict[str, str] = field(default_factory=dict)         # URLs the driver uses (role -> URL)
    answer_urls: dict[str, str] = field(default_factory=dict)  # URLs the creating answer named
    snapshots: list[Snapshot] = field(default_factory=list)
    result: Result | None = None
    downloads: list[Download] = field(default_factory=list)
    cancels: list[tuple[Answer, Snapshot | None]] = field(default_factory=list)
    deleted: bool = False
    next_poll_at: float = 0.0
    source_id: str | None = None
    media: dict[str, Any] | None = None       # probed MP4: width, height, seconds
    remix_expect: str | None = None           # "accept" | "reject" | None (undetermined)
    remix_source_state: str | None = None
    created_mono: float = field(default_factory=time.monotonic)
    key: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    deadline: float = 0.0                     # time.monotonic() by which the job must have ended (--job-timeout)
    lost: str | None = None                   # why the job cannot be followed any more (None: it can)
    lost_reported: bool = False               # a check already failed on what made it lost
    delivered: bool = False                   # its output was delivered to us (result fetched, sync answer)
    held: bool = False                        # created held on our mock (X-Mock-Timing: hold)
    advanced: list[float] = field(default_factory=list)  # time.monotonic() of each admin advance of the job

    @property
    def provider(self) -> str:
        return self.driver.contract.id

    @property
    def last(self) -> Snapshot | None:
        return next((s for s in reversed(self.snapshots) if not s.not_modified), None)

    @property
    def end(self) -> Snapshot | None:
        """The first observation of a terminal status (the job ended there, whatever came after)."""
        return next((s for s in self.snapshots if not s.not_modified and s.terminal and
                     (200 <= s.http_status < 300 or s.status is MISSING)), None)  # MISSING: a sync call's answer

    @property
    def ended(self) -> bool:
        """True once any observation showed a terminal status (a later regression does not undo it)."""
        return self.end is not None

    @property
    def terminal(self) -> bool:
        return self.ended

    @property
    def final(self) -> str | None:
        """The neutral terminal state the job was first observed in (one of TERMINAL), or None while
        active/unknown."""
        end = self.end
        if end is None:
            return None
        return end.neutral[0] if len(end.neutral) == 1 else None

    def label(self) -> str:
        return f"{self.kind} job {self.id}"


def header_hints(resp: requests.Response, declared: list[str]) -> list[Hint]:
    """Poll hints on a response: declared ``*poll*`` headers (milliseconds) and ``Retry-After`` (seconds or
    an HTTP date). A value that does not parse gives ``seconds=None`` (reported by the ``poll_hints`` check)."""
    out: list[Hint] = []
    ex = getattr(resp, "exchange", None)
    for name in declared:
        value = resp.headers.get(name)
        if value is not None:
            secs = None
            if re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
                secs = float(value) / 1000.0
            out.append(Hint(name, value, secs, resp.status_code, ex))
    ra = resp.headers.get("Retry-After")
    if ra is not None:
        secs = None
        if re.fullmatch(r"\s*\d+\s*", ra):
            secs = float(ra)
        else:
            from email.utils import parsedate_to_datetime

            try:
                secs = max(0.0, parsedate_to_datetime(ra).timestamp() - time.time())
            except (TypeError, ValueError):
                secs = None
        out.append(Hint("Retry-After", ra, secs, resp.status_code, ex))
    return out


class Driver:
    """Base class of the family drivers (see module docstring).

    Args:
        contract: the provider's contract.
        host: provider.yaml host id this driver talks to.
        base_url: the target's base URL of that host.
        client: the run's :class:`~conformance.http.Client`.
        credentials: the provider's :class:`~conformance.http.Credentials`.
        mock: the target is our mock: mock controls (``X-Mock-Fault``, ``X-Mock-Timing``) may be sent.
        timeout: seconds per request; job_timeout: seconds a job may take to end (``--job-timeout``).
    """

    family = "base"
    capabilities: frozenset[str] = frozenset()

    def __init__(self, contract: Contract, host: str, base_url: str, client: Client, credentials: Credentials,
                 *, mock: bool = False, timeout: float = 60.0, job_timeout: float = 60.0):
        self.contract = contract
        self.host = host
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.credentials = credentials
        self.mock = mock
        self.timeout = timeout
        self.job_timeout = job_timeout
        self.control = getattr(client, "control", None)
        self.ops: dict[str, list[Operation]] = {}
        for op in contract.operations():
            if op.host == host:
                self.ops.setdefault(op.role, []).append(op)
        self.hints: list[Hint] = []
        self._lock = threading.Lock()
        statuses = [s["value"] for s in contract.provider["statuses"]]
        self.status_values = statuses
        self.poll_hint_headers: list[str] = []
        for op in contract.operations():
            if op.host != host:
                continue
            for resp in (op.definition.get("responses") or {}).values():
                resp = sch.deref(contract.openapi, resp)
                for name in (resp or {}).get("headers") or {}:
                    if "poll" in name.lower() and name not in self.poll_hint_headers:
                        self.poll_hint_headers.append(name)

    # -- capabilities -------------------------------------------------------------------------------
    def supports(self, what: str) -> bool:
        return what in self.capabilities and self._has_ops_for(what)

    def _has_ops_for(self, what: str) -> bool:
        return True

    def creators(self, kind: str) -> list[Operation]:
        """Operations that create a job of ``kind`` on this host."""
        out = []
        for role in CREATING_ROLES:
            for op in self.ops.get(role, []):
                if op.kind_for({}) == kind or (kind == "remix" and op.may_remix) or \
                        (isinstance(op.kind, dict) and kind in (op.kind.get("map") or {}).values()):
                    out.append(op)
        return out

    # -- HTTP ---------------------------------------------------------------------------------------
    def url_of(self, op: Operation, path_params: dict[str, str] | None = None) -> str:
        path = op.path
        for k, v in (path_params or {}).items():
            path = path.replace("{" + k + "}", quote(str(v), safe=""))
        return self.base_url + path

    def send(self, method: str, url: str, *, body: Any = None, media_type: str | None = None,
             params: dict | None = None, headers: dict | None = None, auth: bool = True,
             timeout: float | None = None, retry: bool = True) -> requests.Response:
        """Send one request (credentials added), retrying 429/503 after their ``Retry-After``.

        Raises:
            DriverError: transport error.
            conformance.spend.SpendBlocked: refused by the spend guard.
        """
        hdrs = dict(headers or {})
        if auth:
            hdrs.update(self.credentials.headers())
        kw: dict[str, Any] = {"params": params, "headers": hdrs, "timeout": timeout or self.timeout}
        if body is not None:
            if media_type and media_type.startswith("multipart/"):
                kw["files"] = {k: v if isinstance(v, tuple) else (None, v if isinstance(v, str | bytes) else
                                                                     json.dumps(v))
                               for k, v in body.items()}  # a tuple is a file part: (file name, bytes, type)
            elif media_type and "x-www-form-urlencoded" in media_type:
                kw["data"] = body
            else:
                kw["data"] = json.dumps(body).encode()
                hdrs["Content-Type"] = media_type or "application/json"
        attempts = 0
        while True:
            try:
                resp = self.client.request(method, url, **kw)
            except requests.RequestException as exc:
                raise DriverError(f"{method} {url}: no answer: {exc}", self.client.last_exchange(),
                                  timed_out=isinstance(exc, requests.Timeout),
                                  refused=isinstance(exc, OutsideTarget)) from None
            hints = header_hints(resp, self.poll_hint_headers)
            if hints:
                with self._lock:
                    self.hints.extend(hints)
            if retry and resp.status_code in (429, 503) and attempts < MAX_RETRIES:
                attempts += 1
                wait = next((h.seconds for h in hints if h.header == "Retry-After" and h.seconds is not None),
                            0.5 * attempts)
                self.sleep(min(wait, MAX_HINT_WAIT))
                continue
            return resp

    def sleep(self, seconds: float) -> None:
        """Wait (returns early when the run stops)."""
        if self.control is not None:
            self.control.sleep(seconds)
        elif seconds > 0:
            time.sleep(seconds)

    def job_timeout_for(self, job: Job) -> float:
        """Seconds a request about ``job`` may wait: ``--timeout``, cut to what is left of the job's
        ``--job-timeout`` (plus one second), so a stalling target ends the job's wait in time."""
        if not job.deadline:
            return self.timeout
        return max(1.0, min(self.timeout, job.deadline - time.monotonic() + 1.0))

    def call(self, op: Operation, path_params: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        return self.send(op.method.upper(), self.url_of(op, path_params), **kw)

    @staticmethod
    def answer(resp: requests.Response) -> Answer:
        body: Any = None
        if resp.content:
            try:
                body = resp.json()
            except ValueError:
                body = None
        return Answer(resp.status_code, body, getattr(resp, "exchange", None))

    def mock_headers(self, *, fail: bool = False, hold: bool = False) -> dict[str, str]:
        """Mock controls for a creating request, only when the target is our mock: ``X-Mock-Fault:
        generation_failure`` (the job fails), ``X-Mock-Timing: queued=hold, in_progress=hold`` (the job stays
        queued until the suite advances it through the admin API; a synchronous call cannot be held)."""
        if not self.mock:
            return {}
        out = {}
        if fail:
            out["X-Mock-Fault"] = "generation_failure"
        if hold and "poll" in self.capabilities:
            out["X-Mock-Timing"] = "queued=hold, in_progress=hold"
        return out

    # -- interpretation -----------------------------------------------------------------------------
    def neutral_of(self, raw: Any, body: Any, job: Job | None = None) -> tuple[str, ...]:
        """Neutral states a raw status means; ambiguous values are resolved with the body's error fields."""
        if not isinstance(raw, str):
            return ()
        cands = tuple(dict.fromkeys(self.contract.neutral_states(raw)))
        if len(cands) <= 1:
            return cands
        errorish = isinstance(body, dict) and (body.get("error") not in (None, MISSING, "", {})
                                               or body.get("success") is False
                                               or body.get("error_type") not in (None, ""))
        if not errorish and "completed" in cands:
            return ("completed",)
        rest = tuple(c for c in cands if c != "completed")
        cancelled = job is not None and any(a.ok for a, _ in job.cancels)
        if cancelled and "cancelled" in rest:
            return ("cancelled",)
        if "failed" in rest:
            return ("failed",) if not cancelled else rest
        return rest

    def snapshot(self, body: Any, resp: requests.Response | None, job: Job | None, source: str = "poll",
                 status_code: int | None = None) -> Snapshot:
        """Build a :class:`Snapshot` from a job body (field names from the contract's job schema)."""
        snap = Snapshot(at=time.monotonic(), http_status=status_code or (resp.status_code if resp else 0),
                        body=body, exchange=getattr(resp, "exchange", None), source=source)
        if not isinstance(body, dict):
            return snap
        fields = self.contract.job_fields()  # provider.yaml `fields`: where this provider puts each field

        def read(name: str, *usual: str) -> Any:
            if name in fields:
                value = get_pointer(body, fields[name])
                return MISSING if value is None and not _has_pointer(body, fields[name]) else value
            return next((body[k] for k in usual if k in body), MISSING)

        snap.id = read("id", "id", "request_id")
        snap.status = read("status", "status")
        snap.neutral = self.neutral_of(snap.status, body, job)
        snap.progress = read("progress", "progress")
        snap.queue_position = read("queue_position", "queue_position")
        snap.error = read("error", "error")
        mapped = {tokens(p)[0] for p in fields.values()}
        for name in ("created", "started", "completed", "expires"):
            if name in fields:
                value = read(name)
                if value is not MISSING:
                    snap.timestamps[name] = value
        for k, v in body.items():
            if k in mapped:
                continue
            if k.endswith("_at") or k in ("created", "updated"):
                snap.timestamps[k] = v
            if k.startswith("remixed_from") and "lineage" not in fields:
                snap.lineage = v
        if "lineage" in fields:
            snap.lineage = read("lineage")
        return snap

    def source_id_from(self, job: Job, output: Any) -> str:
        """The id a later remix names: the output field named like the last ``x-source`` token of a remix
        operation (fal's ``video_id``), else the job id."""
        tokens = set()
        for op in self.contract.operations():
            src = op.source or {}
            if src.get("in") == "body":
                tokens.add(src.get("pointer", "").rstrip("/").split("/")[-1])
        found = _find_key(output, tokens - {"id"}) if tokens - {"id"} else None
        return found if isinstance(found, str) and found else job.id

    # -- operations (overridden per family) ----------------------------------------------------------
    def begin(self, req: Request, *, fail: bool = False, source: Job | None = None, hold: bool = False,
              **call_kw: Any) -> tuple[Job, Answer, requests.Response]:
        """Send a creating request and start its :class:`Job` record (shared by every family's ``submit``).

        The remix source reference is read where the contract's ``x-source`` says: a path parameter or a
        JSON pointer into the body. Returns ``(job, answer, response)``; the family fills in the id.
        ``fail`` and ``hold`` are mock controls (sent only to our mock, see :meth:`mock_headers`).
        """
        headers = {**req.headers, **self.mock_headers(fail=fail, hold=hold)}
        resp = self.call(req.op, req.path_params, body=req.body, media_type=req.media_type, headers=headers,
                         params=req.query or None, **call_kw)
        ans = self.answer(resp)
        job = Job(driver=self, kind=req.kind, id="", request=req, submit=ans, source=source, expect_failure=fail,
                  deadline=time.monotonic() + self.job_timeout, held="X-Mock-Timing" in headers)
        if req.kind in SOURCED_KINDS:
            src = req.op.source or {}
            if src.get("in") == "path":
                job.source_ref = req.path_params.get(src.get("name", "")) or next(iter(req.path_params.values()),
                                                                                  None)
            else:
                from specs.validate import get_pointer

                job.source_ref = get_pointer(req.body, src.get("pointer", "/video_id"))
        return job, ans, resp

    #: Field of a creating answer that names the job (families whose answer is the job object itself).
    id_field = "id"

    def submit(self, req: Request, *, fail: bool = False, source: Job | None = None, hold: bool = False) -> Job:
        """Create a job whose answer is the job object (video_object, job families); the queue family
        overrides this (its answer is a request_id plus URLs). ``fail``/``hold``: see :meth:`mock_headers`."""
        job, ans, resp = self.begin(req, fail=fail, source=source, hold=hold)
        if not ans.ok:
            return job
        if not isinstance(ans.body, dict) or not isinstance(ans.body.get(self.id_field), str):
            raise DriverError(f"{req.op.operation_id}: a {ans.status} answer without a job {self.id_field}",
                              ans.exchange)
        job.id = ans.body[self.id_field]
        job.snapshots.append(self.snapshot(ans.body, resp, job, source="submit"))
        self.note_hint(job, resp)
        return job

    def poll(self, job: Job, honour: bool = True) -> Snapshot:
        """Observe a job. ``honour=False`` sends at once (a confirmation read right after another request,
        marked ``source='probe'``); normal polls first wait for the last poll hint."""
        raise NotImplementedError

    def wait_hint(self, job: Job) -> None:
        """Sleep until the job may be polled again (honours the last poll hint)."""
        delay = job.next_poll_at - time.monotonic()
        if job.deadline:
            delay = min(delay, job.deadline - time.monotonic())
        if delay > 0:
            self.sleep(min(delay, MAX_HINT_WAIT))

    def note_hint(self, job: Job, resp: requests.Response) -> None:
        """Set when the job may be polled next: the server's hint, else :data:`MIN_POLL_INTERVAL` from now."""
        hints = header_hints(resp, self.poll_hint_headers)
        secs = [h.seconds for h in hints if h.seconds is not None]
        wait = min(max(secs), MAX_HINT_WAIT) if secs else MIN_POLL_INTERVAL
        job.next_poll_at = max(job.next_poll_at, time.monotonic() + wait)

    def result(self, job: Job) -> Result:
        raise NotImplementedError

    def output_url(self, job: Job) -> str | None:
        """The URL of a job's output when the output has a request of its own (so it can be asked for before
        the job ends); None when the output comes with the job's own answer (job and sync families)."""
        return None

    def cancel(self, job: Job) -> Answer:
        raise NotImplementedError

    def download(self, asset: Asset) -> Download:
        """GET an asset (credentials only for URLs on this provider's hosts)."""
        try:
            resp = self.send("GET", asset.url, auth=asset.auth or self._own_host(asset.url),
                             timeout=self.timeout)
        except DriverError as exc:
            return Download(asset, None, None, b"", exc.exchange, refused=str(exc) if exc.refused else None)
        ctype = resp.headers.get("Content-Type")
        return Download(asset, resp.status_code, ctype, resp.content or b"", getattr(resp, "exchange", None))

    def _own_host(self, url: str) -> bool:
        return urlsplit(url).netloc == urlsplit(self.base_url).netloc

    def declared_media(self, *bodies: Any) -> dict[str, Any]:
        """Width, height and seconds a provider claims for its output (``size``/``resolution`` ``"WxH"``,
        ``width``/``height``, ``seconds``/``duration``) found in job or result bodies."""
        out: dict[str, Any] = {}
        for body in bodies:
            _collect_media(body, out, 0)
        return out

    def assets_of(self, output: Any) -> list[Asset]:
        """Every downloadable file object in an output body: a dict with a ``url``/``*_url`` http(s) string;
        its declared type is the object's ``content_type`` when present. Duplicate URLs are dropped."""
        found: list[Asset] = []
        seen: set[str] = set()

        def walk(node: Any, path: str) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    if isinstance(v, str) and (k == "url" or k.endswith("_url")) and \
                            v.startswith(("http://", "https://")) and k not in _NOT_ASSET_URLS:
                        if v not in seen:
                            seen.add(v)
                            ctype = node.get("content_type") if isinstance(node.get("content_type"), str) else None
                            found.append(Asset(url=v, name=path or k, declared_type=ctype,
                                               meta={kk: vv for kk, vv in node.items() if kk != k}))
                    else:
                        walk(v, f"{path}/{k}" if path else k)
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, f"{path}/{i}" if path else str(i))

        walk(output, "")
        return found


_NOT_ASSET_URLS = {"status_url", "response_url", "cancel_url", "webhook_url"}


def _has_pointer(body: Any, ptr: str) -> bool:
    """True when ``ptr`` names a present key of ``body`` (its value may be null)."""
    node = body
    for t in tokens(ptr):
        if not isinstance(node, dict) or t not in node:
            return False
        node = node[t]
    return True


def _find_key(node: Any, names: set[str], depth: int = 0) -> Any:
    if depth > 6:
        return None
    if isinstance(node, dict):
        for k in names:
            if k in node and node[k] is not None:
                return node[k]
        for v in node.values():
            r = _find_key(v, names, depth + 1)
            if r is not None:
                return r
    elif isinstance(node, list):
        for v in node:
            r = _find_key(v, names, depth + 1)
            if r is not None:
                return r
    return None


def _collect_media(node: Any, out: dict[str, Any], depth: int) -> None:
    if depth > 5:
        return
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("size", "resolution") and isinstance(v, str) and re.fullmatch(r"\d+x\d+", v):
                w, h = v.split("x")
                out.setdefault("width", int(w))
                out.setdefault("height", int(h))
            elif k in ("width", "height") and isinstance(v, int) and not isinstance(v, bool):
                out.setdefault(k, v)
            elif k in ("seconds", "duration") and v is not None and not isinstance(v, bool | dict | list):
                try:
                    out.setdefault("seconds", float(v))
                except (TypeError, ValueError):
                    pass
            elif isinstance(v, dict | list):
                _collect_media(v, out, depth + 1)
    elif isinstance(node, list):
        for v in node:
            _collect_media(v, out, depth + 1)
