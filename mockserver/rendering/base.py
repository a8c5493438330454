"""What every protocol family shares: jobs from requests, remix source rules, assets, templates, webhooks.

A family adapter maps the neutral job (:mod:`mockserver.engine`) onto one wire dialect. Provider
differences come from the contract (roles, ``x-kind``, ``x-source``, callbacks, declared media types) and
from ``provider.yaml`` (statuses, ids, error kinds, and the ``mock`` section's templates), never from the
provider id: a provider of a known family is a spec folder, with no Python.

``provider.yaml`` ``mock.params`` maps request fields onto the job's neutral parameters::

    mock:
      params:
        prompt: {pointer: /text}                                 # the prompt field
        seconds: {pointer: /duration, default: 4}                 # int seconds
        size: {pointer: /aspect_ratio, map: {"16:9": 1280x720, "9:16": 720x1280}, default: 1280x720}
        model: {pointer: /model, default: sora-2}
        delete_video: {pointer: /delete_video, default: false}   # truthy: output deleted once delivered

Without an entry, ``seconds`` comes from ``/seconds``, ``size`` from ``/size``, ``model`` from ``/model``
and ``prompt`` from ``/prompt`` (``specs.DEFAULT_PARAMS``; the merged mapping is ``Contract.params_rules()``,
which the conformance suite reads too). A remix inherits ``seconds``, ``size`` and ``model`` from its source
unless the request sets them.

Templates every family may use (the language: :mod:`specs.templates`; variables:
:mod:`mockserver.rendering.variables`):

``file``      a file object (``$url $content_type $file_name $file_size``) for ``$video`` & co.
``webhook``   ``{events: {<terminal state>: <event name>}, body: <template by state>, event_id_prefix?,
              signing?: {scheme, ...}, url_schemes?: [http, https]}``: the terminal event of a job that names a
              webhook URL (per request through its operation's ``callbacks``, or per project when the contract
              has top-level ``webhooks``: ``--openai-webhook-url``). A state without an event sends nothing; a
              body that names ``$result`` delivers the output (fal ``delete_video``). ``url_schemes`` lists the
              URL schemes a request's webhook URL may use (another one is the provider's ``validation`` error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from specs import SpecError
from specs.expressions import Message, callback_expressions, callback_url, parse_request_expression
from specs.pointers import get_pointer, tokens
from specs.templates import Vars, by_state, fill, variables

from .. import engine as eng
from ..assets import VARIANTS, asset_bytes, file_name
from ..delivery import check_signing
from ..media import MAX_SECONDS
from ..timing import TIMING_HEADER, parse_timing_header
from .variables import JobVars, allowed, iso, log_lines


class Family:
    """Base class of the family adapters: one instance per mounted provider host.

    Subclasses define ``op_<role>(ctx)`` coroutines, one per ``x-role`` of the family
    (:data:`specs.families.TABLE`); :meth:`handler_for` finds them.

    Args:
        state: the server's :class:`mockserver.state.MockState`.
        mount: the host (:class:`mockserver.state.HostMount`).

    Raises:
        specs.SpecError: a provider.yaml ``mock`` section this family cannot use: a template naming an unknown
            variable, an unknown signing scheme (one line).
    """

    name = "base"

    #: The ``mock`` templates an adapter may render (dotted names); :meth:`check_templates` checks them.
    TEMPLATES = ("job", "submit", "result", "deleted", "content", "file", "list.body", "logs.item", "webhook.body",
                 "cancel.accepted", "cancel.finished", "cancel.unknown", "sync.timeout")

    def __init__(self, state: Any, mount: Any):
        self.state = state
        self.mount = mount
        self.contract = mount.contract
        self.meta = mount.contract.provider
        self.mock: dict = self.meta.get("mock") or {}
        self.where = f"{self.contract.id} provider.yaml mock"
        self.params_rules = self.contract.params_rules()
        self.prompt_param = _last_token(self.params_rules.get("prompt", {}).get("pointer")) or "prompt"
        self.id_param = next((n for op in mount.operations for n in _path_params(op.path)), None)
        self.cancelled_message = self.mock.get("cancelled_message") or "the job was cancelled; it has no result"
        self.webhook: dict = self.mock.get("webhook") or {}
        try:
            check_signing(self.webhook.get("signing"), f"{self.where}.webhook.signing")
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        self.check_templates()
        self._by_state: dict[tuple[str, str], Any] = {}
        self._delivers: dict[str, bool] = {}

    def check_templates(self) -> None:
        """Check that every ``mock`` template names only variables it will get
        (:func:`mockserver.rendering.variables.allowed`), so an authoring error stops the server at start.

        Raises:
            specs.SpecError: a template names an unknown variable (one line naming it).
        """
        for name in self.TEMPLATES:
            try:
                tpl = self.template(name)
            except KeyError:
                continue
            if name.startswith(("cancel.", "sync.")):  # an answer: {status, body} or {error: kind}
                tpl = tpl.get("body") if isinstance(tpl, dict) else None
            unknown = variables(tpl) - allowed(name)
            if unknown:
                raise SpecError(f"{self.where}.{name}: unknown template variable(s) "
                                + ", ".join("$" + v for v in sorted(unknown)))

    # -- operations ---------------------------------------------------------------------------------
    def handler_for(self, role: str):
        """The coroutine answering operations of ``role`` (``op_<role>``), or one answering the provider's
        ``not_found`` when this family has no such role."""
        return getattr(self, f"op_{role}", None) or self.op_unknown

    async def op_unknown(self, ctx) -> web.StreamResponse:
        return ctx.error("not_found", f"operation {ctx.op.operation_id} is not implemented by the mock")

    # -- jobs ---------------------------------------------------------------------------------------
    @property
    def store(self) -> eng.JobStore:
        """The server's job store."""
        return self.state.store

    def now(self) -> float:
        """The current virtual time (seconds)."""
        return self.state.clock.now()

    def find(self, job_id: str | None) -> eng.Job | None:
        """The live job of this provider with ``job_id`` (any host of the provider), or None."""
        if not job_id:
            return None
        try:
            return self.store.get(self.contract.id, job_id)
        except KeyError:
            return None

    def job_state(self, job: eng.Job) -> eng.State:
        """``job``'s state now (:func:`mockserver.engine.state_at`)."""
        return eng.state_at(job, self.now())

    def wall(self, virtual: float | None) -> int | None:
        """Unix seconds (integer) of a virtual time, or None."""
        return None if virtual is None else int(self.state.clock.to_wall(virtual))

    def status_word(self, neutral: str) -> str:
        """The provider's status word for a neutral state; a state it has no word for (OpenAI has no
        ``cancelled``) reads as its ``failed`` word."""
        try:
            return self.contract.status_value(neutral)
        except SpecError:
            return self.contract.status_value(eng.FAILED)

    def params_from(self, body: Any, source: eng.Job | None) -> dict[str, Any]:
        """Neutral job parameters from a request body (see module docstring); ``seconds`` is clamped to
        1..:data:`mockserver.media.MAX_SECONDS` (what the mock can render; some contracts admit any value)."""
        out: dict[str, Any] = {}
        for name, rule in self.params_rules.items():
            value = get_pointer(body, rule["pointer"]) if isinstance(body, dict) else None
            if value is not None and "map" in rule:
                value = rule["map"].get(str(value), rule.get("default"))
            if value is None and source is not None and name in ("seconds", "size", "model"):
                value = source.params.get(name)
            if value is None:
                value = rule.get("default")
            if value is not None:
                out[name] = value
        try:
            out["seconds"] = int(out.get("seconds", 4))
        except (TypeError, ValueError, OverflowError):
            out["seconds"] = 4
        out["seconds"] = max(1, min(out["seconds"], int(MAX_SECONDS)))
        return out

    def source_param(self, ctx) -> str | None:
        """The name of the field or path parameter that names a remix source (``x-source``), or None."""
        src = ctx.op.source or {}
        return src.get("name") or _last_token(src.get("pointer")) or None

    def source_id_of(self, ctx, body: Any) -> str | None:
        """The remix source id a request names (``x-source``: a path parameter or a body pointer), or None."""
        src = ctx.op.source or {}
        if src.get("in") == "path":
            return ctx.path_params.get(src.get("name", ""))
        if src.get("in") == "body":
            value = get_pointer(body, src.get("pointer", ""))
            return value if isinstance(value, str) else None
        return None

    def resolve_source(self, ctx, body: Any, verb: str = "remixed") -> tuple[eng.Job | None, web.Response | None]:
        """For a remix/edit/extension request: the completed source job, or the provider's error response.

        Missing source id -> ``validation``; unknown (or deleted) source -> ``not_found``; a source that
        is not completed -> ``conflict``; a source past its asset expiry -> ``expired``;
        a source whose output was deleted after delivery (fal ``delete_video``) -> ``not_found``.
        ``verb`` words the messages (``remixed``, ``extended``).
        """
        source_id = self.source_id_of(ctx, body)
        param = self.source_param(ctx)
        if source_id is None:  # absent from the request (e.g. no body where the contract leaves it optional)
            return None, ctx.error("validation", f"{param or 'source video id'} is required", param=param or "body")
        job = self.find(source_id)
        if job is None:
            return None, ctx.error("not_found", f"video {source_id!r} not found", param=param)
        st = self.job_state(job)
        if st.status != eng.COMPLETED:
            return None, ctx.error("conflict", f"video {source_id!r} is {st.status}; only completed videos "
                                   f"can be {verb}", param=param)
        if self.expired(job, st):
            return None, ctx.error("expired", f"video {source_id!r} has expired and cannot be {verb}", param=param)
        if job.params.get("delete_video") and job.delivered:
            return None, ctx.error("not_found", f"video {source_id!r} was deleted after generation "
                                   f"(delete_video was true), so it cannot be {verb}", param=param)
        return job, None

    def kind_and_source(self, ctx, body: Any) -> tuple[str, eng.Job | None, web.Response | None]:
        """The job kind of a create/submit/run request (``x-kind``, possibly chosen by the body) and, for a
        remix, its completed source: ``(kind, source, None)``, or ``(kind, None, error_response)``."""
        kind = ctx.op.kind_for(body) or "generate"
        if kind != "remix":
            return kind, None, None
        source, err = self.resolve_source(ctx, body)
        return kind, source, err

    def submit_job(self, ctx, *, logs: bool | None = None) -> tuple[eng.Job | None, web.Response | None]:
        """The front every creating operation of the queue, job and sync families shares: the request's
        webhook URL checked (:meth:`webhook_error`), its job kind and remix source resolved
        (:meth:`kind_and_source`), the job created (:meth:`create_job`, with ``logs``, the ``logs`` flag of a
        queue submit). Returns ``(job, None)``, or ``(None, the provider's error response)``.

        Raises:
            mockserver.timing.TimingHeaderError: a malformed ``X-Mock-Timing`` header (see :meth:`create_job`).
        """
        body = ctx.body if isinstance(ctx.body, dict) else {}
        err = self.webhook_error(ctx)
        if err is not None:
            return None, err
        kind, source, err = self.kind_and_source(ctx, body)
        if err is not None:
            return None, err
        return self.create_job(ctx, body, kind=kind, source=source, logs=logs), None

    def webhook_error(self, ctx) -> web.Response | None:
        """The provider's ``validation`` error when the request's webhook URL uses a scheme provider.yaml
        ``mock.webhook.url_schemes`` does not allow, else None."""
        allowed = self.webhook.get("url_schemes")
        url = self.callback_url(ctx) if allowed else None
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme in allowed and parts.netloc:
            return None
        return ctx.error("validation", f"webhook URL {url!r} must be an absolute {'/'.join(allowed)} URL",
                         param=self._callback_param(ctx))

    def create_job(self, ctx, body: Any, kind: str | None = None,
                   source: eng.Job | None = None, logs: bool | None = None,
                   params: dict[str, Any] | None = None) -> eng.Job:
        """Create the job for a submit/create/remix/run request, with the request's ``X-Mock-Timing``
        (:mod:`mockserver.timing`) over the provider's timing and injected generation failures; watch it for
        its webhook when the request (or the provider's project) names one. ``logs``: the ``logs`` flag of a queue
        submit (kept on the job, :attr:`mockserver.engine.Job.logs`). ``params``: the job's neutral parameters
        when the caller computed them (an extension's stitched ``seconds``), else :meth:`params_from` the body.

        Raises:
            mockserver.timing.TimingHeaderError: a malformed ``X-Mock-Timing`` header (raised before
                anything changes: no job, no fault rule spent); the pipeline answers it in the provider's
                ``validation`` envelope.
        """
        kind = kind or ctx.op.kind_for(body) or "generate"
        timing = parse_timing_header(ctx.request.headers.get(TIMING_HEADER), self.state.timing(self.contract.id))
        failure = self.state.faults.generation_failure(self.contract.id, ctx.op,
                                                       ctx.request.headers.get("X-Mock-Fault"))
        ids = self.meta["ids"]
        job = self.store.create(self.contract.id, kind if kind in eng.KINDS else "generate",
                                params if params is not None else self.params_from(body, source), timing,
                                failure=failure[0] if failure else None,
                                source_id=source.id if source else None,
                                id_prefix=ids["prefix"], id_format=ids["format"],
                                failure_message=failure[1] if failure else None,
                                requested=True, logs=logs)
        url = self.webhook_target(ctx)
        if url:
            self.state.webhooks.watch_job(job, self, url)
        return job

    def failure_message(self, job: eng.Job) -> str:
        """The message of a job's injected failure (a default when the fault set none)."""
        return job.failure_message or "generation failed"

    def mark_delivered(self, job: eng.Job) -> None:
        """Note that a job's output was delivered (fal ``delete_video`` deletes it afterwards)."""
        self.store.mark_delivered(job)

    def output_id(self, job: eng.Job) -> str:
        """The id a later remix names (the job id; the queue family may give outputs ids of their own)."""
        return job.id

    def poll_after_ms(self, st: eng.State) -> int:
        """A poll hint in real milliseconds: time to the next status change, clamped to 50..2000."""
        if st.next_change_in is None or self.state.config.clock == "manual":
            return 1000
        real = st.next_change_in / self.state.config.speed
        return int(min(2000, max(50, real * 1000)))

    # -- assets -------------------------------------------------------------------------------------
    def expires_at(self, job: eng.Job, st: eng.State) -> int | None:
        """Unix seconds when a completed job's assets expire (``mock.asset_ttl_seconds`` after it ended), else None."""
        if st.status != eng.COMPLETED:
            return None
        return self.wall(st.finished_at + self.state.asset_ttl(self.contract.id))

    def expired(self, job: eng.Job, st: eng.State) -> bool:
        """True when a completed job's assets have expired."""
        return st.status == eng.COMPLETED and self.now() >= st.finished_at + self.state.asset_ttl(self.contract.id)

    def file_url(self, job: eng.Job, variant: str = "video") -> str:
        """Absolute URL of a downloadable asset, served by the mock (``/__mock/files/...``)."""
        return (f"{self.state.public_base_url.rstrip('/')}/__mock/files/{self.contract.id}/{job.id}/"
                f"{file_name(job.id, variant)}")

    def file_object(self, job: eng.Job, variant: str = "video") -> Any:
        """A file object (provider.yaml ``mock.file`` with ``$url $content_type $file_name $file_size``)."""
        values = {"url": self.file_url(job, variant), "content_type": VARIANTS[variant][0],
                  "file_name": file_name(job.id, variant)}
        lazy = Vars({**{k: (lambda v=v: v) for k, v in values.items()},
                     "file_size": lambda: len(asset_bytes(job.params, variant))})
        return fill(self.template("file"), lazy, f"{self.where}.file")

    def op_url(self, role: str, job_id: str) -> str | None:
        """Absolute URL of this provider's ``role`` operation (status, result, cancel) for ``job_id``,
        from the contract path under the mock's base URL of the host serving it; None if no such op."""
        for m in self.state.mounts:
            if m.provider != self.contract.id:
                continue
            for op in m.operations:
                if op.role == role:
                    path = op.path
                    for name in _path_params(path):
                        path = path.replace("{" + name + "}", quote(job_id, safe=""))
                    return self.state.base_url(self.contract.id, m.host_id) + path
        return None

    def logs_value(self, job: eng.Job, st: eng.State) -> Any:
        """The ``logs`` of a job in the provider's shape: ``mock.logs`` ``format: list`` (items rendered from
        ``item`` with ``$message $level $timestamp``) or ``format: string`` (messages joined by newlines)."""
        spec = self.template("logs")
        lines = log_lines(job, st, self.failure_message(job))
        if spec.get("format") == "string":
            return "\n".join(msg for _, msg, _ in lines)
        item = spec.get("item") or {}
        return [fill(item, {"message": msg, "level": level, "timestamp": iso(self.state.clock.to_wall(t))},
                     f"{self.where}.logs.item") for level, msg, t in lines]

    # -- templates ----------------------------------------------------------------------------------
    def template(self, name: str) -> Any:
        """The ``mock.<name>`` template of provider.yaml (``name`` may be dotted: ``webhook.body``).

        Raises:
            KeyError: provider.yaml has no such template (an authoring error: the request is answered as a
                mock error, 500, and logged).
        """
        node: Any = self.mock
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"{self.where} has no {name!r} template")
            node = node[part]
        return node

    def template_for(self, name: str, state: str) -> Any:
        """The template by state ``mock.<name>`` for one neutral state (:func:`specs.templates.by_state`),
        merged once per (template, state)."""
        key = (name, state)
        tpl = self._by_state.get(key)
        if tpl is None:
            tpl = self._by_state[key] = by_state(self.template(name), state)
        return tpl

    def render(self, name: str, values: Mapping[str, Any], state: str | None = None) -> Any:
        """Render ``mock.<name>`` (by state when ``state`` is given) with ``values``.

        Raises:
            KeyError: no such template; specs.templates.TemplateError: it names an unknown variable.
        """
        tpl = self.template(name) if state is None else self.template_for(name, state)
        return fill(tpl, values, f"{self.where}.{name}")

    def variables(self, job: eng.Job, st: eng.State, logs: bool = False, **extra: Any) -> JobVars:
        """The template variables of ``job`` at ``st`` (:class:`mockserver.rendering.variables.JobVars`);
        ``extra`` values are added as they are."""
        return JobVars(self, job, st, logs, extra)

    def result_body(self, job: eng.Job, st: eng.State) -> Any:
        """The model output of a completed job (``mock.result``)."""
        return self.render("result", self.variables(job, st))

    def error_body(self, kind: str, message: str | None, param: str | None) -> Any:
        """The body of the provider's ``kind`` error envelope (for templates that embed one)."""
        return self.contract.error_body(kind, message, param=param)[1]

    def answer(self, ctx, spec: dict, values: Mapping[str, Any], message: str | None = None,
               param: str | None = None) -> web.Response:
        """Render one ``mock`` answer: ``{status, body, headers?}`` or ``{error: kind, message?, param?}``
        (``message`` and ``param`` are used when the spec has none)."""
        if "error" in spec:
            return ctx.error(spec["error"], spec.get("message") or message, param=spec.get("param", param))
        body = fill(spec.get("body", {}), values, self.where)
        return ctx.json(body, status=int(spec.get("status", 200)), headers=spec.get("headers"))

    # -- webhooks -----------------------------------------------------------------------------------
    def callback_url(self, ctx) -> str | None:
        """The webhook URL a request names through its operation's OpenAPI ``callbacks``: the first callback
        key (a runtime expression such as ``{$request.query.fal_webhook}``, ``{$request.body#/webhook_url}``
        or ``{$request.header.X-Hook}``, evaluated by :mod:`specs.expressions`) that gives a non-empty string
        in this request. None when the operation declares no callback or the request sets none."""
        if not ctx.op.definition.get("callbacks"):
            return None
        request = Message(query=ctx.request.query, headers=ctx.request.headers, path=ctx.path_params,
                          body=ctx.body, method=ctx.request.method)
        return callback_url(self.contract.openapi, ctx.op.definition, request)

    def _callback_param(self, ctx) -> str:
        """The request field (or query/header name) that carries the webhook URL, for an error's ``param``."""
        for key in callback_expressions(self.contract.openapi, ctx.op.definition):
            where = parse_request_expression(key)
            if where is not None:
                return _last_token(where[1]) or where[1]
        return "body"

    def webhook_target(self, ctx) -> str | None:
        """Where a new job's terminal event goes: the request's own webhook URL (through its operation's
        ``callbacks``), else the project-level URL (``--openai-webhook-url``) when the contract declares
        top-level ``webhooks``; None when neither is set or provider.yaml has no ``mock.webhook``."""
        if not self.webhook.get("events"):
            return None
        url = self.callback_url(ctx)
        if url:
            return url
        if self.contract.openapi.get("webhooks"):
            return self.state.config.openai_webhook_url
        return None

    @property
    def webhook_signing(self) -> dict | None:
        """provider.yaml ``mock.webhook.signing`` (:mod:`mockserver.delivery.signing`), or None (unsigned)."""
        return self.webhook.get("signing")

    def webhook_event(self, job: eng.Job, st: eng.State) -> tuple[str, Any] | None:
        """``(event name, body)`` of a terminal job (``mock.webhook``), or None when its state has no event.
        A body that carries ``$result`` delivers the output (:meth:`mark_delivered`)."""
        event = (self.webhook.get("events") or {}).get(st.status)
        if event is None:
            return None
        prefix = self.webhook.get("event_id_prefix", "")
        core = job.id.removeprefix(self.meta["ids"]["prefix"])
        body = self.render("webhook.body", self.variables(job, st, event=event, event_id=prefix + core), st.status)
        if self._delivers_output(st.status):
            self.mark_delivered(job)
        return event, body

    def _delivers_output(self, state: str) -> bool:
        found = self._delivers.get(state)
        if found is None:
            found = self._delivers[state] = "result" in variables(self.template_for("webhook.body", state))
        return found


def _path_params(path: str) -> list[str]:
    import re

    return re.findall(r"\{([^}]+)\}", path)


def _last_token(pointer: Any) -> str | None:
    if not isinstance(pointer, str) or not pointer:
        return None
    toks = tokens(pointer)
    return toks[-1] if toks else None


__all__ = ["Family"]
