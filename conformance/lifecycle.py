"""Lifecycle checks: properties of the job lifecycle, observed through the family drivers.

The checks are a registry of named functions (``@check(name, "lifecycle", ..., events=(...))``), each
called with ``(run, event)`` for the event kinds it listens to. Adding a property is adding a function.
Events come from a :class:`Monitor` fed by a hypothesis ``RuleBasedStateMachine`` (:func:`run_lifecycle`)
that interleaves several jobs: it submits (some forced to fail on the mock), polls, cancels at random
moments, remixes sources in whatever state they are in, asks for results too early, polls unknown ids,
deletes, lists and reads status streams; at the end of each run every job is driven to a terminal status,
its output fetched and its assets downloaded and probed.

Event kinds: ``snapshot`` (a new observation of a job, with the previous one), ``submit``, ``final`` (a job
at the end, after result and downloads), ``download``, ``cancel``, ``remix``, ``early_result``, ``delete``,
``list``, ``stream``, ``hints`` (poll hints a driver saw) and ``timeout``.
"""

from __future__ import annotations

import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from specs.media import probe_mp4

from . import schema as sch
from .bodies import BodyError, build
from .context import ProviderRun, op_label, sub_seed
from .drivers import MISSING, Answer, Download, Driver, DriverError, Job, Snapshot
from .drivers.base import MAX_HINT_WAIT, RANK, TERMINAL
from .http import RunStopped
from .registry import Source, check
from .spend import SpendBlocked

WEBHOOK_WAIT = 10.0  # seconds the suite waits at most, after the jobs ended, for their webhook deliveries

# ------------------------------------------------------------------------------------------- events


@dataclass
class Event:
    """One thing that happened during a lifecycle run (see module docstring for the kinds)."""

    kind: str
    job: Job | None = None
    snap: Snapshot | None = None
    prev: Snapshot | None = None
    answer: Answer | None = None
    download: Download | None = None
    data: dict[str, Any] = field(default_factory=dict)


def observations(job: Job) -> list[Snapshot]:
    """A job's real observations: 2xx answers with a body (not 304, not errors)."""
    return [s for s in job.snapshots if 200 <= s.http_status < 300 and not s.not_modified]


# ------------------------------------------------------------------------------------------- checks


@check("job_accepted", "lifecycle", "A valid request to create a job is accepted (2xx) and its answer names "
       "the job (an id or request_id) so it can be followed.", events=("submit",), needs_spend=True,
       source=Source("contract", "the creating operation's 2xx response"))
def job_accepted(run: ProviderRun, ev: Event) -> None:
    job = ev.job
    if ev.data.get("error"):
        run.fail("job_accepted", ev.data["error"], exchange=ev.answer.exchange if ev.answer else None,
                 operation=job.request.op.operation_id if job else None)
        return
    if job.kind == "remix" and ev.data.get("expect") != "accept":
        return  # judged by remix_lineage
    if job.expect_failure and 400 <= job.submit.status < 500 and job.driver.family == "sync":
        return  # a forced failure of a synchronous call is the answer itself (failed_has_error)
    run.expect("job_accepted", job.submit.ok, f"a valid {job.kind} request was answered {job.submit.status}",
               exchange=job.submit.exchange, operation=job.request.op.operation_id)


@check("status_known", "lifecycle", "Every status a job reports is one of the provider's status values "
       "(provider.yaml statuses).", events=("snapshot",), needs_spend=True,
       source=Source("contract", "provider.yaml statuses (the contract's status values)"))
def status_known(run: ProviderRun, ev: Event) -> None:
    snap = ev.snap
    if snap.status is MISSING and snap.neutral:
        return  # synthetic observation (a sync answer carries no status)
    if snap.status is MISSING:
        run.fail("status_known", f"the {ev.job.kind} job's answer has no status field", exchange=snap.exchange,
                 operation=ev.job.label())
        return
    values = [s["value"] for s in run.contract.provider["statuses"]]
    run.expect("status_known", isinstance(snap.status, str) and snap.status in values,
               f"status {snap.status!r} is not one of {values}", exchange=snap.exchange, operation=ev.job.label())


@check("status_monotonic", "lifecycle", "Status only moves forward: queued -> in progress -> terminal.",
       events=("snapshot",), needs_spend=True,
       source=Source("contract", "provider.yaml statuses: the neutral lifecycle queued -> in_progress -> terminal"))
def status_monotonic(run: ProviderRun, ev: Event) -> None:
    snap, prev = ev.snap, ev.prev
    if prev is None or snap.rank is None or prev.rank is None:
        return
    run.expect("status_monotonic", snap.rank >= prev.rank,
               f"status went back from {prev.status!r} to {snap.status!r}", exchange=snap.exchange,
               operation=ev.job.label())


@check("terminal_is_final", "lifecycle", "Once a job is terminal (completed, failed, cancelled) its status "
       "never changes again.", events=("snapshot",), needs_spend=True,
       source=Source("contract", "provider.yaml statuses: completed, failed and cancelled are terminal"))
def terminal_is_final(run: ProviderRun, ev: Event) -> None:
    snap, prev = ev.snap, ev.prev
    if prev is None or not prev.terminal:
        return
    if snap.status is MISSING or prev.status is MISSING:  # a webhook or a sync answer: only its meaning counts
        same = set(snap.neutral) == set(prev.neutral)
    else:
        same = snap.status == prev.status and set(snap.neutral) == set(prev.neutral)
    run.expect("terminal_is_final", same,
               f"terminal status {prev.status!r} ({'/'.join(prev.neutral)}) changed to {snap.status!r} "
               f"({'/'.join(snap.neutral) or '?'})", exchange=snap.exchange, operation=ev.job.label())


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@check("progress_valid", "lifecycle", "Progress, where reported, is an integer in 0..100.",
       events=("snapshot",), needs_spend=True,
       source=Source("contract", "the job schema's progress (an integer 0..100)"))
def progress_valid(run: ProviderRun, ev: Event) -> None:
    p = ev.snap.progress
    if p is MISSING or p is None:
        return
    run.expect("progress_valid", _is_int(p) and 0 <= p <= 100, f"progress {p!r} is not an integer in 0..100",
               exchange=ev.snap.exchange, operation=ev.job.label())


@check("progress_monotonic", "lifecycle", "Progress never decreases.", events=("snapshot",), needs_spend=True,
       source=Source("mock", "our mock's progress rises linearly; providers document progress as approximate"))
def progress_monotonic(run: ProviderRun, ev: Event) -> None:
    snap, prev = ev.snap, ev.prev
    if prev is None or not _is_int(snap.progress) or not _is_int(prev.progress):
        return
    run.expect("progress_monotonic", snap.progress >= prev.progress,
               f"progress went down from {prev.progress} to {snap.progress}", exchange=snap.exchange,
               operation=ev.job.label())


@check("progress_complete", "lifecycle", "Progress is 100 exactly when the job is completed.",
       events=("snapshot",), needs_spend=True,
       source=Source("mock", "our mock reports 100 exactly when completed; no provider documents it"))
def progress_complete(run: ProviderRun, ev: Event) -> None:
    snap = ev.snap
    if not _is_int(snap.progress) or len(snap.neutral) != 1:
        return
    done = snap.neutral[0] == "completed"
    run.expect("progress_complete", (snap.progress == 100) == done,
               f"progress {snap.progress} with status {snap.status!r}" +
               (" (a completed job must report 100)" if done else " (only a completed job reports 100)"),
               exchange=snap.exchange, operation=ev.job.label())


@check("queue_position_monotonic", "lifecycle", "Queue position, where reported, is an integer >= 0 that "
       "never increases.", events=("snapshot",), needs_spend=True,
       source=Source("mock", "our mock's queue position only falls; no provider documents it"))
def queue_position_monotonic(run: ProviderRun, ev: Event) -> None:
    snap, prev = ev.snap, ev.prev
    q = snap.queue_position
    if q is MISSING or q is None:
        return
    if not (_is_int(q) and q >= 0):
        run.fail("queue_position_monotonic", f"queue_position {q!r} is not an integer >= 0",
                 exchange=snap.exchange, operation=ev.job.label(),
                 source=Source("contract", "the job schema's queue_position (an integer >= 0)"))
        return
    if prev is not None and _is_int(prev.queue_position):
        run.expect("queue_position_monotonic", q <= prev.queue_position,
                   f"queue position went up from {prev.queue_position} to {q}", exchange=snap.exchange,
                   operation=ev.job.label())
    else:
        run.ok("queue_position_monotonic")


@check("id_stable", "lifecycle", "A job's id never changes: every answer about it names the id it was created "
       "with, and the queue's status/result/cancel URLs address that id.", events=("snapshot", "submit"),
       needs_spend=True,
       source=Source("contract", "the job object's id (request_id) names the job it describes"))
def id_stable(run: ProviderRun, ev: Event) -> None:
    job = ev.job
    if ev.kind == "submit":
        if not job.submit.ok or not job.answer_urls:
            return
        for role, url in job.answer_urls.items():
            run.expect("id_stable", job.id in url, f"the {role} URL {url!r} does not name request {job.id!r}",
                       exchange=job.submit.exchange, operation=job.label())
        return
    snap = ev.snap
    if snap.id is MISSING or snap.id is None or not job.id or job.driver.family == "sync":
        return
    run.expect("id_stable", snap.id == job.id, f"the job created as {job.id!r} is reported as {snap.id!r}",
               exchange=snap.exchange, operation=job.label())


@check("id_unique", "lifecycle", "Every create names a new job: ids (request_id, or the output's video id of a "
       "synchronous call) returned by different creates are different.", events=("submit",), needs_spend=True,
       source=Source("contract", "the creating operation's answer names the job it created"))
def id_unique(run: ProviderRun, ev: Event) -> None:
    job = ev.job
    if job is None or not job.submit.ok:
        return
    ident = job.id if job.driver.family != "sync" else job.source_id
    if not ident or ident.startswith("sync-"):
        return
    owners = run.seen["ids"]
    first = owners.get(ident)
    if first is None:
        owners[ident] = job
        run.ok("id_unique")
        return
    if first is job:
        return
    run.fail("id_unique", f"two creates were answered with the same id {ident!r} ({first.kind} and {job.kind} "
             "jobs)", exchange=job.submit.exchange, operation=job.label())


_TS_ORDER = (("created",), ("started",), ("completed", "finished"), ("expires",))


def _ts_rank(name: str) -> int | None:
    base = name[:-3] if name.endswith("_at") else name
    for i, names in enumerate(_TS_ORDER):
        if base in names:
            return i
    return None


@check("timestamps_ordered", "lifecycle", "Timestamps are integers (unix seconds), never change once set, "
       "and are ordered: created <= started <= completed <= expires.", events=("snapshot",), needs_spend=True,
       source=Source("contract", "the job schema's *_at fields: unix seconds of creation, start, completion, expiry"))
def timestamps_ordered(run: ProviderRun, ev: Event) -> None:
    snap, prev = ev.snap, ev.prev
    ts = {k: v for k, v in snap.timestamps.items() if v is not None}
    if not ts:
        return
    bad = {k: v for k, v in ts.items() if not _is_int(v)}
    if bad:
        run.fail("timestamps_ordered", f"timestamps are not integer seconds: {bad}", exchange=snap.exchange,
                 operation=ev.job.label())
        return
    ranked = sorted(((r, k, v) for k, v in ts.items() if (r := _ts_rank(k)) is not None))
    for (r1, k1, v1), (r2, k2, v2) in zip(ranked, ranked[1:], strict=False):
        if r1 < r2 and v1 > v2:
            run.fail("timestamps_ordered", f"{k1}={v1} is after {k2}={v2}", exchange=snap.exchange,
                     operation=ev.job.label())
            return
    if prev is not None:
        for k, v in ts.items():
            old = prev.timestamps.get(k)
            if _is_int(old) and old != v:
                run.fail("timestamps_ordered", f"{k} changed from {old} to {v}", exchange=snap.exchange,
                         operation=ev.job.label())
                return
    run.ok("timestamps_ordered")


@check("job_finishes", "lifecycle", "Every job reaches a terminal status within --job-timeout.",
       events=("timeout", "final"), needs_spend=True,
       source=Source("run", "--job-timeout"))
def job_finishes(run: ProviderRun, ev: Event) -> None:
    if ev.kind == "timeout":
        last = ev.job.last
        run.fail("job_finishes", f"{ev.job.label()} is still {last.status if last else 'unobserved'!r} after "
                 f"{run.config.job_timeout:g} s", exchange=last.exchange if last else None, operation=ev.job.label())
    else:
        run.ok("job_finishes")


@check("completed_has_assets", "lifecycle", "A completed job's output names a downloadable video.",
       events=("final",), needs_spend=True,
       source=Source("contract", "the output schema of a completed job (a downloadable video)"))
def completed_has_assets(run: ProviderRun, ev: Event) -> None:
    job = ev.job
    if job.final != "completed" or job.result is None:
        return
    res = job.result
    if not res.answer.ok:
        run.fail("completed_has_assets", f"the result of a completed job was answered {res.answer.status}",
                 exchange=res.answer.exchange, operation=job.label())
        return
    run.expect("completed_has_assets", any(a.is_video for a in res.assets),
               f"the output of a completed job names no video asset (assets: {[a.name for a in res.assets]})",
               exchange=res.answer.exchange, operation=job.label())


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


@check("download_content_type", "lifecycle", "A completed job's assets download (200) with the content type "
       "declared for them (video/mp4 for the video).", events=("download",), needs_spend=True,
       source=Source("contract", "the content type declared for the asset"))
def download_content_type(run: ProviderRun, ev: Event) -> None:
    dl = ev.download
    if dl.refused:
        run.skip("download_content_type", f"not downloaded: {dl.refused}")
        return
    if dl.status != 200:
        run.fail("download_content_type", f"downloading {dl.asset.name} answered {dl.status}",
                 exchange=dl.exchange, operation=ev.job.label())
        return
    expected = _media_type(dl.asset.declared_type) or ("video/mp4" if dl.asset.is_video else "")
    if not expected:
        run.ok("download_content_type")
        return
    got = _media_type(dl.content_type)
    run.expect("download_content_type", got == expected,
               f"{dl.asset.name} was served as {got or 'no content type'!r}, declared {expected!r}",
               exchange=dl.exchange, operation=ev.job.label())


def _expected_media(run: ProviderRun, job: Job) -> dict[str, Any]:
    """What the video should be: the request's explicit size/seconds, else the remix source's, else what the
    provider declares for the output."""
    out: dict[str, Any] = {}
    req = job.request.requested or {}
    if req.get("size"):
        w, h = str(req["size"]).split("x")
        out["width"], out["height"], out["size_from"] = int(w), int(h), "the request"
    if req.get("seconds"):
        out["seconds"], out["seconds_from"] = float(req["seconds"]), "the request"
    if job.kind == "remix":
        src = job.source.media if job.source is not None and job.source.media else None
        if src is None and job.source_ref:
            src = run.pool.seed_meta.get(job.source_ref) if run.pool else None
        if src:
            if "width" not in out and src.get("width"):
                out["width"], out["height"], out["size_from"] = src["width"], src["height"], "the remix source"
            if "seconds" not in out and src.get("seconds"):
                out["seconds"], out["seconds_from"] = float(src["seconds"]), "the remix source"
    return out


@check("video_matches_request", "lifecycle", "The video is a valid MP4 whose dimensions and duration match the "
       "request (or the remix source, or what the provider declares for the output).", events=("download",),
       needs_spend=True,
       source=Source("contract", "the request's size and seconds fields (the output's dimensions and duration)"))
def video_matches_request(run: ProviderRun, ev: Event) -> None:
    dl, job = ev.download, ev.job
    if not dl.asset.is_video or dl.status != 200:
        return
    try:
        info = probe_mp4(dl.data)
    except ValueError as exc:
        run.fail("video_matches_request", f"the video is not a valid MP4: {exc}", exchange=dl.exchange,
                 operation=job.label())
        return
    job.media = {"width": info["width"], "height": info["height"], "seconds": info["duration_seconds"]}
    problems = []
    want = _expected_media(run, job)
    declared = job.result.declared if job.result else {}
    for source, exp in ((want.get("size_from"), want), ("the provider's declared output", declared)):
        if source and exp.get("width") and (exp["width"], exp["height"]) != (info["width"], info["height"]):
            problems.append(f"{info['width']}x{info['height']} but {source} says {exp['width']}x{exp['height']}")
    for source, exp in ((want.get("seconds_from"), want), ("the provider's declared output", declared)):
        if source and exp.get("seconds"):
            tol = max(0.5, 0.05 * exp["seconds"])
            if abs(info["duration_seconds"] - exp["seconds"]) > tol:
                problems.append(f"{info['duration_seconds']:.2f} s but {source} says {exp['seconds']:g} s")
    run.expect("video_matches_request", not problems, "; ".join(problems), exchange=dl.exchange,
               operation=job.label())


@check("asset_matches_metadata", "lifecycle", "Each downloaded asset matches the metadata its output declares "
       "for it: file_size (bytes), and width, height and duration where declared.", events=("download",),
       needs_spend=True, source=Source("contract", "the output's file object (file_size, width, height, duration)"))
def asset_matches_metadata(run: ProviderRun, ev: Event) -> None:
    dl, job = ev.download, ev.job
    meta = dl.asset.meta or {}
    if dl.status != 200 or not meta:
        return
    problems = []
    size = meta.get("file_size")
    if _is_int(size) and size != len(dl.data):
        problems.append(f"file_size says {size} bytes, the URL served {len(dl.data)}")
    if dl.asset.is_video and any(_is_int(meta.get(k)) or isinstance(meta.get(k), float)
                                 for k in ("width", "height", "duration")):
        try:
            info = probe_mp4(dl.data)
        except ValueError:
            info = None  # an invalid MP4 is video_matches_request's finding
        if info is not None:
            for k, got in (("width", info["width"]), ("height", info["height"]),
                           ("duration", info["duration_seconds"])):
                want = meta.get(k)
                if isinstance(want, int | float) and not isinstance(want, bool):
                    tol = max(0.5, 0.05 * want) if k == "duration" else 0
                    if abs(float(got) - float(want)) > tol:
                        problems.append(f"{k} says {want:g}, the video has {got:g}")
    if not problems and size is None and not any(k in meta for k in ("width", "height", "duration")):
        return  # nothing declared to compare
    run.expect("asset_matches_metadata", not problems, f"{dl.asset.name}: " + "; ".join(problems),
               exchange=dl.exchange, operation=job.label())


@check("failed_has_error", "lifecycle", "A failed job carries an error in the contract's shape and no output; "
       "a job the mock was told to fail (X-Mock-Fault) ends failed.", events=("final",), needs_spend=True,
       source=Source("contract", "the job schema's error field"))
def failed_has_error(run: ProviderRun, ev: Event) -> None:
    job = ev.job
    cancelled = any(a.ok for a, _ in job.cancels)
    if job.expect_failure and job.final is not None and job.final != "failed" and not cancelled:
        run.fail("failed_has_error", f"a job submitted with a generation-failure fault ended {job.final}",
                 exchange=job.last.exchange if job.last else None, operation=job.label())
        return
    if job.final != "failed":
        return
    last = job.last
    res = job.result
    evidence = []
    if last is not None and last.error not in (MISSING, None, "", {}):
        err_schema = _error_property_schema(run, job)
        if err_schema is not None:
            errs = sch.errors(run.contract.openapi, err_schema, last.error)
            if errs:
                run.fail("failed_has_error", f"the error of a failed job does not match the contract: {errs[0]}",
                         exchange=last.exchange, operation=job.label())
                return
        evidence.append("status body")
    if res is not None and res.answer.ok and res.assets:
        run.fail("failed_has_error", "a failed job still offers downloadable output", exchange=res.answer.exchange,
                 operation=job.label())
        return
    if res is not None and res.answer.status >= 400 and res.answer.body is not None:
        evidence.append("result answer")
    if job.driver.family == "sync" and job.submit.status >= 400:
        ptr = sch.response_schema(run.contract, job.request.op, job.submit.status)
        errs = sch.errors(run.contract.openapi, ptr, job.submit.body) if ptr else ["no schema declared"]
        if job.submit.body is None or errs:
            run.fail("failed_has_error", f"the {job.submit.status} answer of a failed job is not the declared "
                     f"error: {errs[0] if errs else 'no JSON body'}", exchange=job.submit.exchange,
                     operation=job.label())
            return
        evidence.append("answer")
    run.expect("failed_has_error", bool(evidence), "a failed job carries no error (neither in its status body "
               "nor as an error answer of its result)", exchange=last.exchange if last else None,
               operation=job.label())


def _error_property_schema(run: ProviderRun, job: Job) -> str | None:
    """Pointer of the ``error`` property schema in the job schema of the poll operation, if declared."""
    for role in ("retrieve", "status"):
        for op in job.driver.ops.get(role, []):
            ptr = sch.response_schema(run.contract, op, 200)
            if not ptr:
                continue
            doc = run.contract.openapi
            from specs.validate import resolve_pointer

            root = resolve_pointer(doc, ptr)
            prop = sch.properties(doc, root).get("error")
            if prop is None:
                continue
            if isinstance(prop, dict) and "$ref" in prop and len(prop) == 1:
                return prop["$ref"]
            # inline schema: find its pointer by walking the merged properties is not stable; validate via a
            # wrapper object instead
            return None
    return None


_CANCEL_EFFECT = Source("mock", "our mock cancels a queued or running job at once; a provider may only "
                                "accept a cancellation request (fal: CANCELLATION_REQUESTED)")
_REMIX_REJECT = Source("mock", "our mock rejects a remix of a source that is not completed (a 4xx)")


def _reject_expectation(state: str | None) -> str:
    """The provider.yaml ``expectations`` name of "a remix of a source in ``state`` is rejected"."""
    return "remix_rejects_deleted" if state == "deleted" else "remix_rejects_unfinished"


@check("cancel_semantics", "lifecycle", "Cancel behaves as documented: the answer is a status the contract "
       "declares with a body in its schema; a cancelled job stays cancelled; an accepted cancel of a queued job "
       "never lets it complete; cancelling a finished job leaves it unchanged.", events=("cancel", "final"),
       needs_spend=True,
       source=Source("contract", "the cancel operation's declared responses"))
def cancel_semantics(run: ProviderRun, ev: Event) -> None:
    job = ev.job
    if ev.kind == "final":
        for ans, before in job.cancels:
            if ans.ok and before is not None and before.neutral == ("queued",) and job.final == "completed":
                run.fail("cancel_semantics", "a job that was queued when its cancel was accepted "
                         f"({ans.status}) completed anyway", exchange=ans.exchange, operation=job.label(),
                         source=run.source("cancel_semantics", "cancel_stops_queued_job", _CANCEL_EFFECT))
                return
        return
    ans, before, after = ev.answer, ev.data.get("before"), ev.data.get("after")
    op = (job.driver.ops.get("cancel") or [None])[0]
    if op is None:
        return
    declared = str(ans.status) in (op.definition.get("responses") or {})
    if not declared:
        run.fail("cancel_semantics", f"cancel answered {ans.status}, which the contract does not declare",
                 exchange=ans.exchange, operation=job.label())
        return
    ptr = sch.response_schema(run.contract, op, ans.status)
    if ptr and ans.body is not None:
        errs = sch.errors(run.contract.openapi, ptr, ans.body)
        if errs:
            run.fail("cancel_semantics", f"the cancel answer does not match its schema: {errs[0]}",
                     exchange=ans.exchange, operation=job.label())
            return
    if before is not None and before.terminal and after is not None and observations(job) and \
            after.http_status == 200 and not after.not_modified:
        if after.status != before.status:
            run.fail("cancel_semantics", f"cancelling a {before.status} job changed it to {after.status}",
                     exchange=ans.exchange, operation=job.label(),
                     source=run.source("cancel_semantics", "cancel_leaves_finished_job", _CANCEL_EFFECT))
            return
    if ans.ok and isinstance(ans.body, dict) and isinstance(ans.body.get("status"), str):
        neutral = run.contract.neutral_states(ans.body["status"])
        if neutral and after is not None and after.neutral and not after.not_modified and \
                after.http_status == 200 and "cancelled" in neutral:
            run.expect("cancel_semantics", "cancelled" in after.neutral or after.terminal,
                       f"the cancel answer says {ans.body['status']!r} but the job then reports {after.status!r}",
                       exchange=after.exchange, operation=job.label(),
                       source=run.source("cancel_semantics", "cancel_takes_effect", _CANCEL_EFFECT))
            return
    run.ok("cancel_semantics")


@check("remix_lineage", "lifecycle", "Remix follows its source: a completed source is accepted and the new job "
       "(a new id) names its source (remixed_from_*); a source that is not completed, or was deleted, is "
       "rejected with a 4xx or the remix ends failed, never completed.", events=("remix", "final"),
       needs_spend=True,
       source=Source("contract", "the remix operation and the lineage field (remixed_from_*)"))
def remix_lineage(run: ProviderRun, ev: Event) -> None:
    job = ev.job
    if ev.kind == "final":
        if job.kind == "remix" and job.submit.ok:
            if job.remix_expect == "reject":
                run.expect("remix_lineage", job.final in ("failed", "cancelled", None),
                           f"a remix of a source that was not completed ({job.remix_source_state}) completed",
                           exchange=job.submit.exchange, operation=job.label(),
                           source=run.source("remix_lineage", _reject_expectation(job.remix_source_state),
                                             _REMIX_REJECT))
        return
    expect = ev.data.get("expect")
    ans = job.submit
    if job.expect_failure and not ans.ok and 400 <= ans.status < 500:
        return  # a forced failure surfaced in the answer itself (synchronous family): judged by failed_has_error
    if ans.status >= 500:
        run.fail("remix_lineage", f"remix answered {ans.status}", exchange=ans.exchange, operation=job.label())
        return
    if expect == "accept":
        if not run.expect("remix_lineage", ans.ok, f"a remix of a completed source was answered {ans.status}",
                          exchange=ans.exchange, operation=job.label()):
            return
    elif expect == "reject" and not ans.ok:
        run.expect("remix_lineage", 400 <= ans.status < 500,
                   f"a remix of a {ev.data.get('state')} source answered {ans.status}, expected a 4xx",
                   exchange=ans.exchange, operation=job.label(),
                   source=run.source("remix_lineage", _reject_expectation(ev.data.get("state")), _REMIX_REJECT))
        return
    if not ans.ok:
        return
    if job.id and job.source_ref and job.id == job.source_ref:
        run.fail("remix_lineage", f"the remix got its source's id {job.id!r}", exchange=ans.exchange,
                 operation=job.label())
        return
    first = job.snapshots[0] if job.snapshots else None
    if first is not None and first.lineage is not MISSING:
        run.expect("remix_lineage", first.lineage == job.source_ref,
                   f"remixed_from is {first.lineage!r}, expected the source {job.source_ref!r}",
                   exchange=ans.exchange, operation=job.label())
    elif expect == "accept":
        run.ok("remix_lineage")


@check("webhook_consistent", "lifecycle", "A job that asked for a webhook (a callback URL in its request, or the "
       "project's webhook) gets a delivery once it ends, in the shape the contract declares, naming the job and the "
       "terminal status it reached.", events=("webhook",), needs_spend=True,
       source=Source("contract", "the creating operation's callbacks (or the contract's webhooks) and x-delivery"))
def webhook_consistent(run: ProviderRun, ev: Event) -> None:
    from .webhooks import delivered_state

    job, deliveries = ev.job, ev.data["deliveries"]
    if not deliveries:
        run.fail("webhook_consistent", f"no webhook delivery for {job.label()} ({job.final}) within "
                 f"{ev.data['waited']:.0f} s of its end", exchange=job.submit.exchange, operation=job.label())
        return
    from .webhooks import Callback

    # a per-request callback declares one body; project webhooks one per event type (any of them may come)
    shapes = [(job.callback.schema_ptr, job.callback.delivery)] if isinstance(job.callback, Callback) \
        else list(job.callback)
    for d in deliveries:
        if d.json is None:
            run.fail("webhook_consistent", f"a webhook delivery for {job.label()} is not JSON: {d.body[:100]!r}",
                     operation=job.label())
            return
        errs = [sch.errors(run.contract.openapi, ptr, d.json) if ptr else [] for ptr, _ in shapes]
        if all(errs):
            run.fail("webhook_consistent", f"a webhook delivery does not match its declared schema: {errs[0][0]}",
                     operation=job.label())
            return
        delivery = shapes[errs.index(next(e for e in errs if not e))][1]
        ident, neutral = delivered_state(run.contract, delivery, d.json)
        if ident != job.id and job.driver.family != "sync":
            run.fail("webhook_consistent", f"a webhook delivery for {job.label()} names {ident!r}",
                     operation=job.label())
            return
        if job.final and neutral and job.final not in neutral:
            run.fail("webhook_consistent", f"the webhook says {'/'.join(neutral)} for a job that ended {job.final}",
                     operation=job.label())
            return
    run.ok("webhook_consistent")


@check("generate_has_no_lineage", "lifecycle", "A job generated from a prompt names no remix source.",
       events=("submit",), needs_spend=True,
       source=Source("contract", "the lineage field (remixed_from_*) of a job that is not a remix"))
def generate_has_no_lineage(run: ProviderRun, ev: Event) -> None:
    job = ev.job
    if job.kind != "generate" or not job.submit.ok or not job.snapshots:
        return
    lineage = job.snapshots[0].lineage
    if lineage is MISSING:
        return
    run.expect("generate_has_no_lineage", lineage is None, f"a generated job names remix source {lineage!r}",
               exchange=job.submit.exchange, operation=job.label())


@check("early_result_rejected", "lifecycle", "Asking for the output of a job that is not completed gets a 4xx "
       "(not the output, not a 5xx).", events=("early_result",), needs_spend=True,
       source=Source("mock", "our mock answers the output of an unfinished job with a 4xx"))
def early_result_rejected(run: ProviderRun, ev: Event) -> None:
    ans = ev.answer
    run.expect("early_result_rejected", 400 <= ans.status < 500,
               f"the output of a {ev.data.get('state')} job was answered {ans.status}", exchange=ans.exchange,
               operation=ev.job.label())


@check("deleted_is_gone", "lifecycle", "After a successful delete the job is gone: retrieving it is 404 and "
       "it cannot be remixed.", events=("delete",), needs_spend=True,
       source=Source("contract", "the delete operation's 2xx (deleted: true)"))
def deleted_is_gone(run: ProviderRun, ev: Event) -> None:
    ans, after = ev.answer, ev.data.get("after")
    if not ans.ok:
        run.fail("deleted_is_gone", f"delete answered {ans.status}", exchange=ans.exchange, operation=ev.job.label())
        return
    if isinstance(ans.body, dict) and ans.body.get("deleted") is False:
        run.fail("deleted_is_gone", "delete answered deleted=false", exchange=ans.exchange, operation=ev.job.label())
        return
    if after is not None:
        retrieve = (ev.job.driver.ops.get("retrieve") or [None])[0]
        run.expect("deleted_is_gone", after.status == 404,
                   f"retrieving a deleted job answered {after.status}", exchange=after.exchange,
                   operation=ev.job.label(), source=run.response_source(retrieve, 404) if retrieve else None)


@check("list_pagination", "lifecycle", "Listing pages through every live job exactly once: no duplicates, "
       "pages within limit, first_id/last_id/has_more consistent, newest first, deleted jobs absent.",
       events=("list",), needs_spend=True,
       source=Source("contract", "the list schema: data, first_id, last_id, has_more, the after cursor"))
def list_pagination(run: ProviderRun, ev: Event) -> None:
    pages: list[tuple[Answer, int]] = ev.data["pages"]
    seen: list[str] = []
    prev_created = None
    for ans, limit in pages:
        body = ans.body
        if not ans.ok or not isinstance(body, dict) or not isinstance(body.get("data"), list):
            run.fail("list_pagination", f"a list page answered {ans.status}", exchange=ans.exchange,
                     operation="list")
            return
        data = [d for d in body["data"] if isinstance(d, dict)]
        if len(data) > limit:
            run.fail("list_pagination", f"a page with limit={limit} holds {len(data)} items", exchange=ans.exchange,
                     operation="list")
            return
        ids = [d.get("id") for d in data]
        if data and ("first_id" in body or "last_id" in body) and \
                (body.get("first_id") != ids[0] or body.get("last_id") != ids[-1]):
            run.fail("list_pagination", f"first_id/last_id {body.get('first_id')!r}/{body.get('last_id')!r} do not "
                     f"match the page ({ids[0]!r}..{ids[-1]!r})", exchange=ans.exchange, operation="list")
            return
        for d in data:
            c = d.get("created_at")
            if _is_int(c) and _is_int(prev_created) and c > prev_created:
                run.fail("list_pagination", f"{d.get('id')} (created_at {c}) comes after an older job",
                         exchange=ans.exchange, operation="list")
                return
            prev_created = c if _is_int(c) else prev_created
        dup = [i for i in ids if i in seen]
        if dup:
            run.fail("list_pagination", f"{dup[0]!r} appears on two pages", exchange=ans.exchange, operation="list")
            return
        seen.extend(ids)
    last = pages[-1][0].body if pages else None
    if isinstance(last, dict) and last.get("has_more") is True and ev.data.get("complete"):
        run.fail("list_pagination", "the last page says has_more=true", exchange=pages[-1][0].exchange,
                 operation="list")
        return
    if ev.data.get("complete"):
        live = [j.id for j in ev.data["jobs"] if j.id and not j.deleted and j.submit.ok]
        gone = [j.id for j in ev.data["jobs"] if j.id and j.deleted]
        missing = [i for i in live if i not in seen]
        present = [i for i in gone if i in seen]
        if missing:
            run.fail("list_pagination", f"{len(missing)} live job(s) missing from the list, e.g. {missing[0]!r}",
                     exchange=pages[-1][0].exchange, operation="list")
            return
        if present:
            run.fail("list_pagination", f"deleted job {present[0]!r} is still listed",
                     exchange=pages[-1][0].exchange, operation="list")
            return
    run.ok("list_pagination")


@check("poll_hints", "lifecycle", "Poll hints (openai-poll-after-ms, Retry-After) are numbers of sane size, and "
       "the driver waited at least the hinted time before polling again.", events=("hints", "final"),
       needs_spend=True,
       source=Source("contract", "the poll hint headers the contract declares"))
def poll_hints(run: ProviderRun, ev: Event) -> None:
    if ev.kind == "final":
        job = ev.job
        polls = [s for s in job.snapshots if s.exchange is not None and s.source == "poll"]
        for a, b in zip(polls, polls[1:], strict=False):
            hint = _hint_seconds(a)
            if hint is None or any(a.at <= t <= b.at for t in job.advanced):
                continue  # no hint, or the suite moved the job on (admin API) in between
            gap = b.exchange.started - (a.exchange.started + a.exchange.elapsed)
            need = min(hint, MAX_HINT_WAIT) - 0.01
            if gap < need:  # our own driver did not wait: a bug of the suite, not of the target
                run.suite_error("internal", f"the driver polled {job.label()} again after {gap * 1000:.0f} ms "
                                f"although the server asked for {hint * 1000:.0f} ms", check="poll_hints")
                return
        return
    for h in ev.data["hints"]:
        limit = 60.0 if h.header.lower() != "retry-after" else 3600.0
        if h.seconds is None:
            run.fail("poll_hints", f"{h.header}: {h.value!r} is not a number", exchange=h.exchange,
                     operation=h.header)
        elif h.seconds > limit:
            run.fail("poll_hints", f"{h.header}: {h.value!r} asks to wait more than {limit:g} s",
                     exchange=h.exchange, operation=h.header)
        else:
            run.ok("poll_hints")


def _hint_seconds(snap: Snapshot) -> float | None:
    hdrs = snap.exchange.response_headers if snap.exchange else {}
    vals = []
    for k, v in hdrs.items():
        if "poll" in k and re.fullmatch(r"\s*\d+(\.\d+)?\s*", v or ""):
            vals.append(float(v) / 1000.0)
        elif k == "retry-after" and re.fullmatch(r"\s*\d+\s*", v or ""):
            vals.append(float(v))
    return max(vals) if vals else None


@check("stream_consistent", "lifecycle", "A status stream reports the job's statuses in lifecycle order and ends "
       "with the terminal status polling reports.", events=("stream",), needs_spend=True,
       source=Source("contract", "the status stream's x-event-schema and provider.yaml statuses"))
def stream_consistent(run: ProviderRun, ev: Event) -> None:
    ans, snaps, job = ev.answer, ev.data["snaps"], ev.job
    if ans.status != 200:
        run.fail("stream_consistent", f"the status stream answered {ans.status}", exchange=ans.exchange,
                 operation=job.label())
        return
    ranks = [s.rank for s in snaps if s.rank is not None]
    if any(b < a for a, b in zip(ranks, ranks[1:], strict=False)):
        run.fail("stream_consistent", f"stream statuses go backwards: {[s.status for s in snaps]}",
                 exchange=ans.exchange, operation=job.label())
        return
    if not snaps or not snaps[-1].terminal:
        run.fail("stream_consistent", f"the stream ended with {snaps[-1].status if snaps else 'no event'!r}, "
                 "not a terminal status", exchange=ans.exchange, operation=job.label())
        return
    run.ok("stream_consistent")


# ------------------------------------------------------------------------------------------- monitor


class Monitor:
    """Dispatches lifecycle events to the selected checks of one provider run."""

    def __init__(self, run: ProviderRun):
        self.run = run
        self.handlers: dict[str, list] = defaultdict(list)
        for c in run.results.checks:
            if c.category == "lifecycle" and c.fn is not None:
                for kind in c.events:
                    self.handlers[kind].append(c.fn)
        self.jobs: list[Job] = []
        self.webhook_jobs: list[Job] = []
        self.hints_seen: dict[int, int] = {}

    def emit(self, ev: Event) -> None:
        for fn in self.handlers.get(ev.kind, []):
            try:
                fn(self.run, ev)
            except Exception as exc:  # the check crashed: a suite error, never a finding about the target
                import traceback

                self.run.suite_error("check_crashed", f"{fn.__name__} on a {ev.kind} event: {type(exc).__name__}: "
                                     f"{exc}\n" + "".join(traceback.format_exception(exc))[-1500:],
                                     check=fn.__name__)

    def observe(self, job: Job, snap: Snapshot) -> None:
        """Emit a ``snapshot`` event for a new observation (ignoring errors and 304s). A 2xx observation
        without a status field (of a family that reports one) means the job cannot be followed any more."""
        if not (200 <= snap.http_status < 300) or snap.not_modified:
            return
        obs = observations(job)
        idx = next((i for i in range(len(obs) - 1, -1, -1) if obs[i] is snap), None)
        prev = obs[idx - 1] if idx else None
        seen = self.run.seen
        if isinstance(snap.body, dict):
            seen["fields"].update(snap.body)
        seen["states"].update(snap.neutral)
        if prev is None and snap.source in ("poll", "probe", "submit") and id(job) not in seen["first"]:
            seen["first"][id(job)] = snap.neutral
        self.emit(Event("snapshot", job=job, snap=snap, prev=prev))
        if snap.status is MISSING and not snap.neutral and job.driver.supports("poll") and job.lost is None:
            job.lost = f"its {snap.source} answer carries no status field"

    def adopt(self, job: Job) -> None:
        """Judge a job observed outside the state machine (a fixture job): every observation it has, in order."""
        if job in self.jobs:
            return
        self.jobs.append(job)
        if job.submit is not None:
            self.emit(Event("submit", job=job, answer=job.submit, data={"expect": "accept"}))
        for snap in list(job.snapshots):
            self.observe(job, snap)

    def flush_hints(self) -> None:
        for d in self.run.drivers:
            start = self.hints_seen.get(id(d), 0)
            new = d.hints[start:]
            self.hints_seen[id(d)] = len(d.hints)
            if new:
                self.emit(Event("hints", data={"hints": new}))


# ------------------------------------------------------------------------------------------- actions


def deletes_output(contract, job: Job) -> bool:
    """True when a job's request asked the provider to delete the output once delivered: the field of
    provider.yaml ``mock.params.delete_video``, its value in the request, else the schema's default (fal's
    ``delete_video`` defaults to true, seed 001)."""
    from specs.validate import get_pointer

    from .spend import params_rules

    rule = params_rules(contract).get("delete_video")
    if not rule or not isinstance(job.request.body, dict):
        return False
    value = get_pointer(job.request.body, rule["pointer"])
    if value is None:
        rs = sch.request_schema(contract, job.request.op)
        if rs is None:
            return False
        from specs.validate import resolve_pointer

        tokens = [t for t in rule["pointer"].strip("/").split("/") if t]
        prop = sch.schema_at(contract.openapi, resolve_pointer(contract.openapi, rs[1]), tokens)
        if prop is None:
            return False
        value = prop.get("default", rule.get("default", False))
    return bool(value)



class Lifecycle:
    """The actions of the state machine (each observes, then emits events). Never raises for provider faults.

    On our mock the actions drive job states instead of racing the clock: jobs are created held
    (``X-Mock-Timing: queued=hold, in_progress=hold``) and moved on with the admin API
    (``POST /__mock/jobs/{provider}/{id}/advance``), so every state the checks need is observed on every run,
    whatever the seed, the clock or the machine's load. Elsewhere the same actions run on real time.
    """

    def __init__(self, run: ProviderRun, monitor: Monitor, rng: random.Random):
        self.run = run
        self.m = monitor
        self.rng = rng
        self.stopped: str | None = None
        self.blocked: str | None = None  # the spend guard refused a paid request

    @property
    def ours(self) -> bool:
        return bool(self.run.target.ours)

    # helpers
    def _observe_submit(self, job: Job, expect: str | None = None) -> None:
        self.m.jobs.append(job)
        self.m.emit(Event("submit", job=job, answer=job.submit, data={"expect": expect}))
        for snap in list(job.snapshots):
            self.m.observe(job, snap)

    def _guarded(self, fn, *args, on_error: str = "job_accepted", job: Job | None = None, **kw):
        """Call a driver action; provider faults become a failure of ``on_error`` (a transport error while
        following ``job`` means it can no longer be followed), a refusal of the spend guard or a stopped run
        stops the state machine's actions. Returns None when the action did not complete."""
        if self.run.stopped:
            self.stopped = f"the run stopped ({self.run.control.reason})"
            return None
        try:
            return fn(*args, **kw)
        except SpendBlocked as exc:
            self.stopped = str(exc)
            self.blocked = str(exc)
            return None
        except RunStopped as exc:
            self.stopped = f"the run stopped ({exc})"
            return None
        except DriverError as exc:
            if job is not None:
                job.lost = str(exc)
                job.lost_reported = True
            if exc.timed_out and self.run.halted is None:  # a target that stops answering: make no more jobs
                self.run.halted = f"the target did not answer in time ({exc})"
            self.run.fail(on_error, str(exc), exchange=exc.exchange, operation=job.label() if job else None)
            return None

    def _build(self, op, kind: str, **kw) -> Any:
        """A valid request body from the contract; a failure to build one is a suite error (None)."""
        if not self.run.target.free:
            kw.setdefault("cheapest", True)  # a paid target: the cheapest duration and size the contract allows
        try:
            return build(self.run.contract, op, kind, rng=self.rng, **kw)
        except BodyError as exc:
            self.run.suite_error("generation", f"cannot build a {kind} request: {exc}", operation=op.operation_id)
            return None

    def _can_create(self, seconds: int | None) -> bool:
        if self.run.halted and not self.stopped:
            self.stopped = self.run.halted
        if self.stopped:
            return False
        ok, why = self.run.can_spend(seconds or 4)
        if not ok:
            self.stopped = why
            self.blocked = why
        return ok

    def submit(self, driver: Driver, fail: bool, seconds: int | None, size: str | None,
               hold: bool = False, webhook: bool = False) -> Job | None:
        from .fixtures import generate_ops

        ops = generate_ops(driver)
        if not ops or not self._can_create(seconds):
            return None
        if not self.run.target.free:
            seconds = size = None
        req = self._build(ops[0], "generate", seconds=seconds, size=size, keep_output=True)
        if req is None:
            return None
        hook = self._ask_webhook(req) if webhook else None
        job = self._guarded(driver.submit, req, fail=fail and self.ours, hold=hold and self.ours)
        if job is None:
            return None
        self._note_webhook(job, hook, webhook)
        self._observe_submit(job, expect="accept")
        return job if job.submit.ok else None

    def _ask_webhook(self, req) -> tuple[str, Any] | None:
        """Give a request a webhook URL of its own on the receiver, where its operation declares a callback
        (``x-delivery``); returns ``(receiver path, callback)`` or None."""
        from .webhooks import callback_of, new_token

        receiver = self.run.target.receiver
        cb = callback_of(self.run.contract, req.op) if receiver is not None else None
        if cb is None:
            return None
        token = new_token()
        req.set_at(cb.in_, cb.name, receiver.url(token))
        return f"/hook/{token}", cb

    def _note_webhook(self, job: Job, hook, wanted: bool) -> None:
        """Remember where a job's webhook goes: its own URL, or the project's (OpenAI, set where the server
        started); those jobs are judged by ``webhook_consistent`` at the end of the run."""
        if hook is not None:
            job.webhook, job.callback = hook
        elif wanted and self.run.id in self.run.target.project_webhooks:
            from .webhooks import project_webhooks

            hooks = project_webhooks(self.run.contract)
            if hooks:
                job.webhook = self.run.target.project_webhooks[self.run.id]
                job.callback = hooks
        if job.webhook is not None:
            self.m.webhook_jobs.append(job)

    def advance(self, job: Job, to: str) -> bool:
        """Move a held job on our mock to ``in_progress`` or its ``end`` now (admin API); False elsewhere."""
        if not (self.ours and job.held and job.id) or job.deleted:
            return False
        from .target import TargetError

        try:
            self.run.target.admin("POST", f"jobs/{self.run.id}/{job.id}/advance", {"to": to})
        except TargetError as exc:
            self.run.suite_error("internal", f"mock admin: cannot advance {job.label()} to {to}: {exc}")
            job.held = False
            return False
        job.next_poll_at = 0.0  # a poll hint was about the job's own timing, which the suite just overrode
        job.advanced.append(time.monotonic())
        return True

    def state_of(self, job: Job, honour: bool = True) -> str | None:
        """Poll (if the family polls) and return the job's neutral state (None when unknown). ``honour=False``
        is a confirmation read sent at once (see Driver.poll)."""
        if job.deleted:
            return "deleted"
        if job.lost is not None or self.run.halted:
            return job.final  # the job (or the target) can no longer be followed
        if job.driver.supports("poll") and not job.ended:
            snap = self._guarded(job.driver.poll, job, honour, on_error="job_finishes", job=job)
            if snap is None:
                return None
            self.m.observe(job, snap)
            if snap.not_modified or not 200 <= snap.http_status < 300:
                return None  # "no news" (304) or an error: the current state is unknown, not the last one seen
        return job.final or (job.last.neutral[0] if job.last and len(job.last.neutral) == 1 else None)

    def source_ref(self, job: Job) -> str:
        if job.final == "completed" and job.source_id is None and job.driver.supports("result"):
            res = self._guarded(job.driver.result, job, on_error="completed_has_assets", job=job)
            if res is not None and job.result is None:
                job.result = res
        return job.source_id or job.id

    def remix(self, source: Job | str, driver: Driver, op, seconds: int | None, fail: bool = False,
              hold: bool = False, webhook: bool = False) -> Job | None:
        if not self._can_create(seconds):
            return None
        if isinstance(source, Job):
            before = self.state_of(source)
            ref = self.source_ref(source)
            if before == "completed" and source.delivered and deletes_output(self.run.contract, source):
                before = "deleted"  # its output was delivered with the "delete after delivery" flag (fal)
        else:
            before, ref = "completed", source
        if not self.run.target.free:
            seconds = None
        req = self._build(op, "remix", source_id=ref, seconds=seconds, keep_output=self.rng.random() < 0.5)
        if req is None:
            return None
        hook = self._ask_webhook(req) if webhook else None
        job = self._guarded(driver.submit, req, fail=fail and self.ours, hold=hold and self.ours,
                            source=source if isinstance(source, Job) else None)
        if job is None:
            return None
        self._note_webhook(job, hook, webhook)
        expect = None
        if before == "completed":
            expect = "accept"
        elif before in ("failed", "cancelled", "deleted"):
            expect = "reject"
        elif before is not None and isinstance(source, Job):
            # not terminal: the source's state at the remix is known only if a read right after agrees
            after = self.state_of(source, honour=False)
            expect = "reject" if after == before else None
        job.remix_expect = expect
        job.remix_source_state = before
        self._observe_submit(job, expect=expect)
        self.m.emit(Event("remix", job=job, data={"expect": expect, "state": before}))
        return job if job.submit.ok else None

    def poll(self, job: Job) -> None:
        if job.driver.supports("poll") and not job.deleted and job.lost is None and not self.run.halted:
            snap = self._guarded(job.driver.poll, job, on_error="job_finishes", job=job)
            if snap is not None:
                self.m.observe(job, snap)

    def cancel(self, job: Job) -> None:
        if not job.driver.supports("cancel") or job.deleted or not job.id or self.run.halted:
            return
        before = self._poll_snapshot(job)
        ans = self._guarded(job.driver.cancel, job, on_error="cancel_semantics", job=None)
        if ans is None:
            return
        job.cancels.append((ans, before))
        after = self._poll_snapshot(job)
        self.m.emit(Event("cancel", job=job, answer=ans, data={"before": before, "after": after}))

    def _poll_snapshot(self, job: Job) -> Snapshot | None:
        if not job.driver.supports("poll") or job.lost is not None:
            return job.last
        snap = self._guarded(job.driver.poll, job, on_error="job_finishes", job=job)
        if snap is not None:
            self.m.observe(job, snap)
        return snap

    def early_result(self, job: Job) -> None:
        d = job.driver
        if not d.supports("result") or job.deleted or d.family in ("sync", "job") or self.run.halted:
            return
        before = self.state_of(job)
        if before not in ("queued", "in_progress"):
            return
        if d.family == "video_object":
            url, _ = d.content_url(job.id)
        else:
            url = job.urls.get("result") or d.contract_url("result", job.id)
        ans = self._guarded(lambda: d.answer(d.send("GET", url)), on_error="early_result_rejected")
        if ans is None:
            return
        if 200 <= ans.status < 300:
            # output served: wrong unless the job completed in between (a read right after tells)
            if self.state_of(job, honour=False) == "completed":
                return
        self.m.emit(Event("early_result", job=job, answer=ans, data={"state": before}))

    def unknown(self, driver: Driver, role: str) -> None:
        from .contract_checks import unknown_id

        ops = driver.ops.get(role) or []
        if not ops or (ops[0].billable and not self.run.target.free) or self.run.halted:
            return
        op = ops[0]
        ident = unknown_id(self.run.contract, self.rng)
        params = {p: ident for p in re.findall(r"\{([^}]+)\}", op.path)}
        if not params:
            return
        resp = self._guarded(driver.send, op.method.upper(), driver.url_of(op, params), on_error="unknown_id_is_404")
        if resp is None:
            return
        ex = getattr(resp, "exchange", None)
        self.run.expect("unknown_id_is_404", resp.status_code == 404,
                        f"{op.operation_id} of an unknown id answered {resp.status_code}, expected 404",
                        exchange=ex, operation=op_label(self.run.contract, op),
                        source=self.run.response_source(op, 404))

    def delete(self, job: Job) -> None:
        d = job.driver
        if not d.supports("delete") or job.deleted or not job.id or self.run.halted:
            return
        ans = self._guarded(d.delete, job, on_error="deleted_is_gone")
        if ans is None:
            return
        after = self._guarded(d.retrieve_raw, job.id, on_error="deleted_is_gone") if d.supports("poll") else None
        self.m.emit(Event("delete", job=job, answer=ans, data={"after": after}))

    def list(self, driver: Driver, limit: int, complete: bool) -> None:
        if not driver.supports("list") or self.run.halted:
            return
        pages: list[tuple[Answer, int]] = []
        after = None
        for _ in range(200 if complete else 3):
            ans = self._guarded(driver.list_page, limit=limit, after=after, order="desc", on_error="list_pagination")
            if ans is None:
                return
            pages.append((ans, limit))
            body = ans.body if isinstance(ans.body, dict) else {}
            self._observe_listed(driver, ans, body)
            if not ans.ok or not body.get("has_more") or not body.get("data"):
                break
            after = body.get("last_id") or (body["data"][-1].get("id") if isinstance(body["data"][-1], dict) else None)
            if after is None:
                break
        else:
            complete = False
        mine = [j for j in self.m.jobs if j.driver is driver]
        self.m.emit(Event("list", data={"pages": pages, "complete": complete, "jobs": mine}))

    def _observe_listed(self, driver: Driver, ans: Answer, body: dict) -> None:
        """Each listed job the suite follows is an observation of that job (every invariant applies)."""
        if not ans.ok or not isinstance(body.get("data"), list):
            return
        by_id = {j.id: j for j in self.m.jobs if j.driver is driver and j.id and not j.deleted}
        for item in body["data"]:
            job = by_id.get(item.get("id")) if isinstance(item, dict) else None
            if job is None:
                continue
            snap = driver.snapshot(item, None, job, source="list", status_code=ans.status)
            snap.exchange = ans.exchange
            job.snapshots.append(snap)
            self.m.observe(job, snap)

    def stream(self, job: Job, drive: bool = False) -> None:
        """Read the job's status stream to its end (every event is an observation). With ``drive`` (a held job
        on our mock) the job is moved through its states while the stream is open."""
        d = job.driver
        if not d.supports("stream") or not job.id or job.deleted or self.run.halted:
            return
        box: dict[str, Any] = {}

        def read() -> None:
            box["res"] = self._guarded(d.stream, job, self.run.config.job_timeout, on_error="stream_consistent")

        if drive and self.ours and job.held and not job.ended:
            import threading

            reader = threading.Thread(target=read, name=f"stream-{self.run.id}", daemon=True)
            reader.start()
            for to in ("in_progress", "end"):
                self.run.control.sleep(0.05)
                self.advance(job, to)
            reader.join(max(1.0, job.deadline - time.monotonic() + 1.0))
        else:
            read()
        res = box.get("res")
        if res is None:
            return
        ans, snaps = res
        for snap in snaps:
            job.snapshots.append(snap)
            self.m.observe(job, snap)
        self.m.emit(Event("stream", job=job, answer=ans, data={"snaps": snaps}))

    def finish(self, job: Job) -> None:
        """Drive a job to its end: poll to terminal within its --job-timeout (a held job on our mock is moved
        to its end first), poll once more (a terminal status must stay), fetch its output, download and
        judge its assets. A job that does not end in time, or cannot be followed, fails ``job_finishes``."""
        d = job.driver
        if d.family == "sync" and job.expect_failure and not job.submit.ok:
            self.m.emit(Event("final", job=job))  # the forced failure is the answer itself
            return
        if job.deleted or not job.submit.ok or not job.id or job.finished:
            return
        job.finished = True
        if job.held and not job.ended:
            self.advance(job, "end")
        polled_after_end = False
        while d.supports("poll") and not job.ended and job.lost is None and not (
                self.run.halted and time.monotonic() >= job.deadline):
            if self.run.stopped or time.monotonic() >= job.deadline:
                break
            snap = self._guarded(d.poll, job, on_error="job_finishes", job=job)
            if snap is None:
                break
            self.m.observe(job, snap)
            if snap.http_status >= 400 and snap.http_status not in (429, 503):
                job.lost = f"its status answered {snap.http_status}"
                self.run.fail("job_finishes", f"{job.label()} could not be followed: its status answered "
                              f"{snap.http_status}", exchange=snap.exchange, operation=job.label())
        if not job.ended:
            if self.run.stopped:
                return
            if self.run.halted is None:
                self.run.halted = f"{job.label()} " + (f"could not be followed: {job.lost}" if job.lost else
                                                       "did not end within --job-timeout")
            if job.lost is None:
                self.m.emit(Event("timeout", job=job))
            elif not job.lost_reported and "carries no status" not in job.lost:  # (no status: status_known)
                job.lost_reported = True
                self.run.fail("job_finishes", f"{job.label()} could not be followed: {job.lost}",
                              operation=job.label())
            return
        if d.supports("poll") and not job.deleted:  # one more read: a terminal status must stay as it is
            snap = self._guarded(d.poll, job, False, on_error="job_finishes", job=job)
            if snap is not None:
                self.m.observe(job, snap)
                polled_after_end = True
        job.polled_after_end = polled_after_end
        if d.supports("result") and job.final in ("completed", "failed"):
            res = self._guarded(d.result, job, on_error="completed_has_assets", job=job)
            if res is not None:
                job.result = res
        if job.final == "completed" and job.result is not None and job.result.answer.ok:
            for asset in job.result.assets:
                dl = job.result.prefetched.get(asset.url)
                if dl is None or dl.asset.name != asset.name:
                    dl = d.download(asset)
                job.downloads.append(dl)
                self.m.emit(Event("download", job=job, download=dl))
        self.m.emit(Event("final", job=job))

    def collect_webhooks(self) -> None:
        """Wait (bounded) for the webhooks of the jobs that asked for one and ended, then emit a ``webhook``
        event per job; every delivery is also an observation of its job."""
        receiver = self.run.target.receiver
        jobs = [j for j in self.m.webhook_jobs if j.ended and not j.webhook_judged]
        if receiver is None or not jobs:
            return
        wait = min(WEBHOOK_WAIT, max(0.5, max(j.deadline for j in jobs) - time.monotonic()))
        receiver.wait(sorted({j.webhook for j in jobs if j.webhook.startswith("/hook/")}), wait,
                      stop=lambda: self.run.stopped)
        if any(not j.webhook.startswith("/hook/") for j in jobs):  # project webhooks: one path, many jobs
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not self.run.stopped and not all(
                    self._deliveries(j) for j in jobs if not j.webhook.startswith("/hook/")):
                self.run.control.sleep(0.05)
        from .webhooks import delivered_state

        for job in jobs:
            job.webhook_judged = True
            deliveries = self._deliveries(job)
            for d in deliveries:
                ident, neutral = delivered_state(self.run.contract, self._delivery_map(job, d), d.json)
                snap = Snapshot(at=time.monotonic(), http_status=200, id=ident, neutral=neutral, body=d.json,
                                source="webhook")
                job.snapshots.append(snap)
                self.m.observe(job, snap)
            self.m.emit(Event("webhook", job=job, data={"deliveries": deliveries, "waited": wait}))

    def _delivery_map(self, job: Job, d) -> dict:
        """The ``x-delivery`` mapping that reads delivery ``d`` of ``job`` (project webhooks: the one whose
        declared schema the body matches)."""
        from .webhooks import Callback

        if isinstance(job.callback, Callback):
            return job.callback.delivery
        for ptr, mapping in job.callback:
            if ptr is None or not sch.errors(self.run.contract.openapi, ptr, d.json):
                return mapping
        return job.callback[0][1]

    def _deliveries(self, job: Job) -> list:
        from .webhooks import delivered_state

        got = self.run.target.receiver.for_path(job.webhook)
        if job.webhook.startswith("/hook/"):
            return got
        return [d for d in got if delivered_state(self.run.contract, self._delivery_map(job, d), d.json)[0] == job.id]

    # -- the opening: every property exercised on every run ----------------------------------------------
    def opening(self, generators: list[Driver], remixers: list, pick: int) -> list[Job]:
        """A fixed sequence run first in every state-machine run, so that every property is exercised every
        time (on our mock deterministically, with held jobs; elsewhere as far as real time allows). Returns
        the jobs it created (they join the machine's bundle)."""
        run = self.run
        out: list[Job] = []
        pool = run.pool
        sources = list(pool.sources) if pool else []
        remix_pick = remixers[pick % len(remixers)] if remixers else None

        def new(hold: bool = True, fail: bool = False, webhook: bool = False) -> Job | None:
            if generators:
                job = self.submit(generators[0], fail, None, None, hold=hold, webhook=webhook)
            elif remixers and sources:
                d, op = remixers[0]
                job = self.remix(sources[pick % len(sources)], d, op, None, fail=fail, hold=hold, webhook=webhook)
            else:
                job = None
            if job is not None:
                out.append(job)
            return job

        main = new(webhook=True)
        if main is None:
            return out
        driver = main.driver
        self.state_of(main)
        self.early_result(main)                              # while queued
        if remix_pick is not None:
            self.remix(main, *remix_pick, None)              # a source that is not completed: rejected
        if self.advance(main, "in_progress"):
            self.state_of(main)
            self.early_result(main)                          # while in progress
        if driver.supports("cancel"):
            queued = new()
            if queued is not None:
                self.cancel(queued)                          # cancel while queued
            running = new()
            if running is not None and self.advance(running, "in_progress"):
                self.state_of(running)
                self.cancel(running)                         # cancel while in progress
        self.finish(main)                                    # to its end: result, downloads, one more poll
        if driver.supports("cancel") and main.ended:
            self.cancel(main)                                # cancel a finished job: nothing changes
        if remix_pick is not None and main.final == "completed":
            young = self.remix(main, *remix_pick, None)      # a completed source: accepted, with lineage
            if young is not None:
                out.append(young)
        if remixers and sources:
            d, op = remixers[(pick + 1) % len(remixers)]
            fresh = self.remix(sources[pick % len(sources)], d, op, None)
            if fresh is not None:
                out.append(fresh)
        if self.ours:
            failing = new(fail=True, webhook=True)           # forced to fail (X-Mock-Fault)
            if failing is not None:
                self.finish(failing)
                if remix_pick is not None:
                    self.remix(failing, *remix_pick, None)   # a failed source: rejected
        if driver.supports("delete"):
            gone = new()
            if gone is not None:
                self.finish(gone)
                self.delete(gone)
                if remix_pick is not None:
                    self.remix(gone, *remix_pick, None)      # a deleted source: rejected
        for d in {id(x.driver): x.driver for x in out}.values():
            for role in ("retrieve", "status", "result", "cancel", "delete", "content"):
                self.unknown(d, role)
            if d.supports("list"):
                self.list(d, 2, complete=True)
        if driver.supports("stream"):
            streamed = new()
            if streamed is not None:
                self.stream(streamed, drive=True)            # follows the job to its end
        return out



# ------------------------------------------------------------------------------------------- machine


def make_machine(run: ProviderRun):
    """A RuleBasedStateMachine class bound to one provider run (see module docstring)."""
    from hypothesis import strategies as st
    from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, multiple, precondition, rule

    drivers = run.drivers
    creators = [d for d in drivers if d.supports("submit")]
    from .fixtures import generate_ops

    generators = [d for d in creators if generate_ops(d)]
    remixers = [(d, op) for d in creators for op in d.creators("remix")]
    pollers = [d for d in drivers if d.supports("poll")]
    unknown_roles = [(d, role) for d in drivers for role in ("retrieve", "status", "result", "cancel", "delete",
                                                             "content") if d.ops.get(role)]
    listers = [d for d in drivers if d.supports("list")]
    sizes = [None, "1280x720", "720x1280"]
    seconds_choices = [None, 4, 8]

    class Machine(RuleBasedStateMachine):
        jobs = Bundle("jobs")

        runs_done = 0

        def __init__(self):
            super().__init__()
            Machine.runs_done += 1
            run.progress(f"lifecycle run {Machine.runs_done}/{run.config.lifecycle_runs}")
            self.monitor = Monitor(run)
            self.life = Lifecycle(run, self.monitor, random.Random(sub_seed(run.config.seed, run.id, id(self))))

        @initialize(target=jobs, pick=st.integers(0, 7))
        def start(self, pick):
            """A fixed opening so every property is exercised in every run (see Lifecycle.opening); random
            rules follow. The fixture jobs made before the machine are judged here too (first run only)."""
            if run.pool is not None and not getattr(run.pool, "adopted", False):
                run.pool.adopted = True
                for job in run.pool.jobs:
                    self.monitor.adopt(job)
            out = self.life.opening(generators, remixers, pick)
            for d in generators[1:]:  # every other host that creates jobs gets one too
                job = self.life.submit(d, False, None, None)
                if job is not None:
                    out.append(job)
            return multiple(*out)

        @precondition(lambda self: bool(generators) and not self.life.stopped)
        @rule(target=jobs, which=st.integers(0, 7), fail=st.sampled_from([False, False, False, False, True]),
              seconds=st.sampled_from(seconds_choices), size=st.sampled_from(sizes))
        def submit(self, which, fail, seconds, size):
            job = self.life.submit(generators[which % len(generators)], fail, seconds, size)
            return multiple(job) if job is not None else multiple()

        @precondition(lambda self: bool(remixers) and not self.life.stopped)
        @rule(target=jobs, source=jobs, which=st.integers(0, 7), seconds=st.sampled_from([None, 4]))
        def remix_job(self, source, which, seconds):
            d, op = remixers[which % len(remixers)]
            job = self.life.remix(source, d, op, seconds)
            return multiple(job) if job is not None else multiple()

        @precondition(lambda self: bool(remixers) and bool(run.pool and run.pool.sources) and not self.life.stopped)
        @rule(target=jobs, which=st.integers(0, 7), pick=st.integers(0, 7))
        def remix_pool_source(self, which, pick):
            d, op = remixers[which % len(remixers)]
            src = run.pool.sources[pick % len(run.pool.sources)]
            job = self.life.remix(src, d, op, None)
            return multiple(job) if job is not None else multiple()

        @precondition(lambda self: bool(pollers))
        @rule(job=jobs)
        def poll(self, job):
            self.life.poll(job)

        @rule(job=jobs)
        def cancel(self, job):
            self.life.cancel(job)

        @rule(job=jobs)
        def early_result(self, job):
            self.life.early_result(job)

        @precondition(lambda self: bool(unknown_roles))
        @rule(which=st.integers(0, 20))
        def poll_unknown(self, which):
            d, role = unknown_roles[which % len(unknown_roles)]
            self.life.unknown(d, role)

        @rule(job=jobs)
        def delete(self, job):
            self.life.delete(job)

        @precondition(lambda self: bool(listers))
        @rule(which=st.integers(0, 7), limit=st.integers(1, 4))
        def list_some(self, which, limit):
            self.life.list(listers[which % len(listers)], limit, complete=False)

        @rule(job=jobs)
        def stream(self, job):
            if job.driver.supports("stream"):
                self.life.stream(job)

        @rule(ms=st.integers(0, 80))
        def wait(self, ms):
            run.control.sleep(ms / 1000.0)

        def teardown(self):
            for job in list(self.monitor.jobs):
                self.life.finish(job)
            self.life.collect_webhooks()
            for d in listers:
                self.life.list(d, 100, complete=True)
            self.monitor.flush_hints()
            if self.life.stopped:
                run.results.note(run.id, f"lifecycle: stopped submitting ({self.life.stopped})")

    Machine.__name__ = Machine.__qualname__ = f"Lifecycle_{run.id}"
    return Machine


def run_lifecycle(run: ProviderRun) -> None:
    """Run the lifecycle state machine of one provider (``lifecycle_runs`` runs of ``lifecycle_steps`` steps)."""
    wanted = [c for c in run.results.checks if c.category == "lifecycle"]
    if not wanted:
        return
    creators = [d for d in run.drivers if d.supports("submit")]
    if not creators:
        run.results.skip_all(run.id, "no host of this provider has a URL", "lifecycle")
        return
    ok, why = run.can_spend()
    adopted = list(run.pool.jobs) if run.pool is not None else []
    if not ok and not adopted:
        run.results.skip_all(run.id, f"lifecycle checks create jobs: {why}", "lifecycle")
        return
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import seed as hseed
    from hypothesis.stateful import run_state_machine_as_test

    machine = make_machine(run)
    hseed(sub_seed(run.config.seed, run.id, "lifecycle"))(machine)
    runs = run.config.lifecycle_runs if ok else 1  # no more jobs can be made: one run judges the fixture jobs
    run_state_machine_as_test(machine, settings=settings(
        max_examples=runs, stateful_step_count=run.config.lifecycle_steps, deadline=None,
        database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)))
    for c in wanted:
        run.skip(c.name, skip_reason(run, c.name))


def _job_fields(run: ProviderRun) -> set[str]:
    """Property names of the job objects the poll operations return (from the contract)."""
    from specs.validate import resolve_pointer

    out: set[str] = set()
    for d in run.drivers:
        for role in ("retrieve", "status"):
            for op in d.ops.get(role, []):
                ptr = sch.response_schema(run.contract, op, 200)
                if ptr:
                    out |= set(sch.properties(run.contract.openapi, resolve_pointer(run.contract.openapi, ptr)))
    return out


#: Lifecycle checks that judge a job field, and the field.
_FIELD_OF = {"progress_valid": "progress", "progress_monotonic": "progress", "progress_complete": "progress",
             "queue_position_monotonic": "queue_position"}
#: Lifecycle checks that need a job observed while it was still active (not yet terminal).
_NEEDS_ACTIVE = {"early_result_rejected", "progress_monotonic", "queue_position_monotonic", "cancel_semantics"}
#: Lifecycle checks that need a completed job (its output, downloads, a completed remix source).
_NEEDS_COMPLETED = {"completed_has_assets", "download_content_type", "video_matches_request",
                    "asset_matches_metadata", "remix_lineage"}


def skip_reason(run: ProviderRun, name: str) -> str:
    """Why a lifecycle check did not evaluate for this provider, in words that say which case it is: a
    property the contract does not have; a field no observed job carried; a state never reached within the
    time bound; an operation the spend guard blocked; a target that completed jobs too fast to observe them
    active; or a run that stopped early."""
    roles = {r for d in run.drivers for r, ops in d.ops.items() if ops}
    fields = _job_fields(run)
    polls = any(d.supports("poll") for d in run.drivers)
    seen = run.seen
    if name in ("status_known", "status_monotonic", "terminal_is_final", "id_stable", "queue_position_monotonic",
                "progress_valid", "progress_monotonic", "progress_complete", "timestamps_ordered") and not polls:
        return "synchronous protocol: there is no job status to observe"
    if name in _FIELD_OF and _FIELD_OF[name] not in fields:
        return f"the contract's job object has no {_FIELD_OF[name]}"
    if name == "timestamps_ordered" and not any(f.endswith("_at") or f == "created" for f in fields):
        return "the contract's job object has no timestamps"
    if name == "generate_has_no_lineage" and not any(f.startswith("remixed_from") for f in fields):
        return "the contract's job object has no lineage field"
    needs_role = {"cancel_semantics": "cancel", "list_pagination": "list", "deleted_is_gone": "delete",
                  "stream_consistent": "status_stream"}
    if name in needs_role and needs_role[name] not in roles:
        return f"the contract has no {needs_role[name]} operation"
    if name == "early_result_rejected" and not roles & {"result", "content"}:
        return "the output comes with the job (no separate result request)"
    if name == "poll_hints" and not any(d.poll_hint_headers for d in run.drivers):
        return "the contract declares no poll hint header (Retry-After only comes with a 429/503)"
    if name == "failed_has_error" and not run.target.ours:
        return "no job failed (failures can be forced only on our mock)"
    if name == "remix_lineage" and not any(d.creators("remix") for d in run.drivers):
        return "the contract has no remix operation"
    if name == "asset_matches_metadata":
        return "no downloaded asset came with declared metadata (file_size, width, height, duration)"
    if name == "webhook_consistent":
        from .webhooks import callback_of, project_webhooks

        per_request = any(callback_of(run.contract, op) for op in run.contract.operations())
        if not per_request and not project_webhooks(run.contract):
            return "the contract declares no webhook"
        if run.target.receiver is None:
            return ("webhooks are checked only when every host of the target is on this machine (a remote "
                    "provider cannot reach the suite's receiver)")
        if not per_request and run.id not in run.target.project_webhooks:
            return ("project webhooks go to the URL the target was started with (e.g. mockserver serve "
                    "--openai-webhook-url); the suite cannot set it")
    if run.stopped:
        return f"not reached: the run stopped early ({run.control.reason})"
    jobs = len(seen["first"])
    if not seen["ids"] and not seen["first"]:
        blocked = (run.guard.ledger.blocked if run.guard is not None else {}) or {}
        if blocked:
            return "not reached: the spend guard refused the paid requests that create jobs (" + \
                "; ".join(sorted(blocked)) + ")"
        if run.halted:
            return f"not reached: no job could be created or followed ({run.halted})"
        return "not reached: no job was created (every create was refused)"
    if name in _FIELD_OF and _FIELD_OF[name] not in seen["fields"]:
        return (f"no observed job carried {_FIELD_OF[name]} (the contract declares it; the target never sent it "
                f"in {jobs} job(s))")
    if name in _NEEDS_COMPLETED and "completed" not in seen["states"]:
        return f"not reached: no job completed within --job-timeout {run.config.job_timeout:g} s"
    if name in _NEEDS_ACTIVE:
        active = [s for s in seen["first"].values() if s and not all(n in TERMINAL for n in s)]
        if seen["first"] and not active and not run.target.ours:
            return (f"not reached: the target completed every job before it was first observed ({jobs} job(s) "
                    "first seen terminal): there was no queued or running job to act on")
    if run.halted:
        return f"not reached: no more jobs were created after {run.halted}"
    blocked = (run.guard.ledger.blocked if run.guard is not None else {}) or {}
    if blocked or not run.can_spend()[0]:
        why = run.can_spend()[1] or "; ".join(sorted(blocked))
        return f"not reached: the spend guard allowed no more jobs ({why})"
    if name == "poll_hints":
        return "the target sent no poll hint header on any answer"
    if name == "deleted_is_gone":
        return "not reached: no delete was sent (no completed job was left to delete)"
    return "not reached in this run (the random rules did not produce this situation; try --lifecycle-runs N)"


__all__ = ["Event", "Lifecycle", "Monitor", "make_machine", "run_lifecycle", "RANK", "TERMINAL"]
