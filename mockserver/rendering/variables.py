"""The variables of the mock's provider.yaml templates (``mock:``), for one job at one state.

The template language is :mod:`specs.templates` (``$name`` keeps the value's JSON type; ``$name?`` leaves the
entry out when the value is null). Every family renders with these variables; each is computed only when a
template names it.

========================== ==============================================================================
variable                   value
========================== ==============================================================================
``$id`` ``$request_id``    the job id (as the provider reports it)
``$video_id``              the id a later remix names (``mock.output_id``: fal's output ``video_id``), else
                           the job id
``$status``                the provider's status word for the job's neutral state (provider.yaml
                           ``statuses``; a state the provider has no word for, e.g. OpenAI's cancelled,
                           reads as its ``failed`` word)
``$progress``              integer 0..100
``$queue_position``        integer >= 0
``$created_at``            unix seconds (integer) of submission; ``$started_at``, ``$finished_at``,
                           ``$completed_at`` (only when completed), ``$expires_at`` (assets, when completed):
                           integer or null
``$inference_time``        seconds between start and end (float, 3 decimals) or null
``$prompt``                the request's prompt (a string, ``""`` when there is none)
``$model``                 the model (null when the request named none and provider.yaml gives no default)
``$seconds``               integer seconds of video; ``$seconds_string`` the same as a string (``"8"``)
``$size``                  ``"WIDTHxHEIGHT"``
``$source_id``             the remix source's job id, or null
``$failure_code``          the injected failure code (else the ``generation_failed`` kind's ``type``)
``$failure_message``       the failure's message; ``$failure_kind_code``, ``$failure_kind_type``: the
                           ``generation_failed`` kind's ``code`` (a string) and ``type``
``$failure_error``         the provider's ``generation_failed`` error envelope (a body)
``$cancelled_message``     ``mock.cancelled_message``; ``$cancelled_error`` the ``conflict`` envelope with it
``$video`` ``$thumbnail``  file objects (``mock.file``, with ``$url $content_type $file_name $file_size``)
``$spritesheet``
``$video_url``             asset URLs (served by the mock under ``/__mock/files/``); also ``$thumbnail_url``,
                           ``$spritesheet_url``
``$status_url``            URLs of this provider's ``status``, ``result`` and ``cancel`` operations for the job
``$response_url``          (null when it has no such operation)
``$cancel_url``
``$logs``                  ``mock.logs`` rendered (``format: list`` of ``item`` with ``$message $level
                           $timestamp``, or ``format: string``), or null when logs were not asked for
``$result``                ``mock.result`` rendered (the model output of a completed job)
``$cost_usd``              seconds x provider.yaml ``pricing.usd_per_second`` (null without a price)
========================== ==============================================================================

Templates add their own (:data:`EXTRA`, :data:`OWN`): a webhook body ``$event`` (the event name) and
``$event_id``; a list answer ``$items $first_id $last_id $has_more``; a content link ``$asset_url``; a timeout
answer ``$message``; a file object ``$url $content_type $file_name $file_size``; a log item ``$message $level
$timestamp``; a character (``characters.body``, not a job) ``$id $name $created_at``. A template naming any other
variable stops the server at start (``Family.check_templates``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .. import engine as eng


def iso(wall: float) -> str:
    """ISO 8601 UTC date-time of unix seconds, millisecond precision (fal log item ``timestamp``)."""
    return dt.datetime.fromtimestamp(wall, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(f: Any, j: eng.Job, s: eng.State, logs: bool) -> int:
    return int(j.params.get("seconds", 4))


def _inference_time(f: Any, j: eng.Job, s: eng.State, logs: bool) -> float | None:
    if s.started_at is None or s.finished_at is None:
        return None
    return round(s.finished_at - s.started_at, 3)


def _cost(f: Any, j: eng.Job, s: eng.State, logs: bool) -> float | None:
    price = f.contract.price_per_second_usd
    return None if price is None else round(_seconds(f, j, s, logs) * price, 6)


def _failure_kind(f: Any) -> dict:
    return f.contract.error_kind("generation_failed")


#: variable -> ``(family, job, state, logs wanted) -> value`` (see the module docstring).
VARIABLES: dict[str, Callable[[Any, eng.Job, eng.State, bool], Any]] = {
    "id": lambda f, j, s, logs: j.id,
    "request_id": lambda f, j, s, logs: j.id,
    "video_id": lambda f, j, s, logs: f.output_id(j),
    "status": lambda f, j, s, logs: f.status_word(s.status),
    "progress": lambda f, j, s, logs: s.progress,
    "queue_position": lambda f, j, s, logs: s.queue_position,
    "created_at": lambda f, j, s, logs: f.wall(j.created),
    "started_at": lambda f, j, s, logs: f.wall(s.started_at),
    "finished_at": lambda f, j, s, logs: f.wall(s.finished_at),
    "completed_at": lambda f, j, s, logs: f.wall(s.completed_at),
    "expires_at": lambda f, j, s, logs: f.expires_at(j, s),
    "inference_time": _inference_time,
    "prompt": lambda f, j, s, logs: str(j.params.get("prompt") or ""),
    "model": lambda f, j, s, logs: j.params.get("model"),
    "seconds": _seconds,
    "seconds_string": lambda f, j, s, logs: str(_seconds(f, j, s, logs)),
    "size": lambda f, j, s, logs: str(j.params.get("size", "720x1280")),
    "source_id": lambda f, j, s, logs: j.source_id,
    "failure_code": lambda f, j, s, logs: j.failure or _failure_kind(f).get("type"),
    "failure_message": lambda f, j, s, logs: f.failure_message(j),
    "failure_kind_code": lambda f, j, s, logs: str(_failure_kind(f).get("code", _failure_kind(f).get("type"))),
    "failure_kind_type": lambda f, j, s, logs: _failure_kind(f).get("type"),
    "failure_error": lambda f, j, s, logs: f.error_body("generation_failed", f.failure_message(j), f.prompt_param),
    "cancelled_message": lambda f, j, s, logs: f.cancelled_message,
    "cancelled_error": lambda f, j, s, logs: f.error_body("conflict", f.cancelled_message, f.id_param),
    "video": lambda f, j, s, logs: f.file_object(j, "video"),
    "thumbnail": lambda f, j, s, logs: f.file_object(j, "thumbnail"),
    "spritesheet": lambda f, j, s, logs: f.file_object(j, "spritesheet"),
    "video_url": lambda f, j, s, logs: f.file_url(j, "video"),
    "thumbnail_url": lambda f, j, s, logs: f.file_url(j, "thumbnail"),
    "spritesheet_url": lambda f, j, s, logs: f.file_url(j, "spritesheet"),
    "status_url": lambda f, j, s, logs: f.op_url("status", j.id),
    "response_url": lambda f, j, s, logs: f.op_url("result", j.id),
    "cancel_url": lambda f, j, s, logs: f.op_url("cancel", j.id),
    "logs": lambda f, j, s, logs: f.logs_value(j, s) if logs else None,
    "result": lambda f, j, s, logs: f.result_body(j, s),
    "cost_usd": _cost,
}

#: The variables each kind of template gets besides (or instead of) :data:`VARIABLES`, by template name.
EXTRA: dict[str, frozenset[str]] = {
    "content": frozenset({"asset_url"}),
    "webhook.body": frozenset({"event", "event_id"}),
    "sync.timeout": frozenset({"message"}),
}
#: Templates that are not about one job: their only variables.
OWN: dict[str, frozenset[str]] = {
    "list.body": frozenset({"items", "first_id", "last_id", "has_more"}),
    "file": frozenset({"url", "content_type", "file_name", "file_size"}),
    "logs.item": frozenset({"message", "level", "timestamp"}),
    "cancel.unknown": frozenset({"id", "request_id"}),
    "characters.body": frozenset({"id", "name", "created_at"}),
}


def allowed(template: str) -> frozenset[str]:
    """The variable names a ``mock`` template (dotted name: ``job``, ``webhook.body`` ...) may use."""
    if template in OWN:
        return OWN[template]
    return frozenset(VARIABLES) | EXTRA.get(template, frozenset())


class JobVars(Mapping[str, Any]):
    """The variables of one job at one state, each computed on first use (a template names few of them).

    Args:
        family: the :class:`mockserver.rendering.base.Family` rendering it.
        job: the job; ``st``: its state now.
        logs: whether ``$logs`` renders the logs (a status read that asked for them).
        extra: more variables ``{name: value}``, overriding these.
    """

    __slots__ = ("family", "job", "st", "logs", "values")

    def __init__(self, family: Any, job: eng.Job, st: eng.State, logs: bool = False,
                 extra: dict[str, Any] | None = None):
        self.family, self.job, self.st, self.logs = family, job, st, logs
        self.values: dict[str, Any] = dict(extra or {})

    def __getitem__(self, name: str) -> Any:
        values = self.values
        if name not in values:
            values[name] = VARIABLES[name](self.family, self.job, self.st, self.logs)
        return values[name]

    def __contains__(self, name: object) -> bool:
        return name in self.values or name in VARIABLES

    def __iter__(self) -> Iterator[str]:
        return iter(set(VARIABLES) | set(self.values))

    def __len__(self) -> int:
        return len(set(VARIABLES) | set(self.values))


def log_lines(job: eng.Job, st: eng.State, failure_message: str) -> list[tuple[str, str, float]]:
    """``(level, message, virtual time)`` log lines of a job up to its current state (queue family logs)."""
    if st.started_at is None:
        return [("INFO", "Request is queued.", job.created)]
    lines = [("INFO", f"Starting Sora 2 {job.kind}: {job.params.get('seconds')}s at {job.params.get('size')}.",
              st.started_at)]
    for pct in (25, 50, 75):
        if st.progress >= pct:
            lines.append(("INFO", f"Generating video: {pct}%.", st.started_at + pct / 100 * job.timing.in_progress))
    if st.status == eng.COMPLETED:
        lines.append(("INFO", "Video generated.", st.finished_at))
    elif st.status == eng.FAILED:
        lines.append(("ERROR", failure_message, st.finished_at))
    elif st.status == eng.CANCELLED:
        lines.append(("WARN", "Request was cancelled.", st.finished_at))
    return lines


__all__ = ["EXTRA", "OWN", "VARIABLES", "JobVars", "allowed", "iso", "log_lines"]
