"""The lifecycle checks: properties of the job lifecycle, observed through the family drivers.

Each is a named function ``(run, event)`` registered with ``@check(name, "lifecycle", ..., events=(...),
requires={...})``: the event kinds it judges (:mod:`conformance.lifecycle.events`) and what it needs to be
evaluated at all (the skip reason is worded from it). Adding a property is adding a function here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from specs.families import SOURCED_KINDS
from specs.media import probe_mp4

from .. import schema as sch
from ..context import ProviderRun
from ..drivers import MISSING, Answer, Job, Snapshot
from ..drivers.base import MAX_HINT_WAIT
from ..lifecycle.events import Event, observations
from ..registry import Source, check
from ..webhooks import Callback, delivered_state


def no_answer(run: ProviderRun, ev: Event, name: str) -> bool:
    """For a check that receives ``no_answer`` events: record the failure when the request the target did not
    answer was made for this check (``ev.data["check"]``). True when ``ev`` was such an event."""
    if ev.kind != "no_answer":
        return False
    if ev.data.get("check") == name:
        run.fail(name, ev.data["message"], exchange=ev.data.get("exchange"),
                 operation=ev.job.label() if ev.job else None)
    return True


@check("job_accepted", "lifecycle", "A valid request to create a job is accepted (2xx) and its answer names "
       "the job (an id or request_id) so it can be followed.", events=("submit", "no_answer"), needs_spend=True,
       source=Source("contract", "the creating operation's 2xx response"))
def job_accepted(run: ProviderRun, ev: Event) -> None:
    if no_answer(run, ev, "job_accepted"):
        return
    job = ev.job
    if ev.data.get("error"):
        run.fail("job_accepted", ev.data["error"], exchange=ev.answer.exchange if ev.answer else None,
                 operation=job.request.op.operation_id if job else None)
        return
    if job.kind in SOURCED_KINDS and ev.data.get("expect") != "accept":
        return  # judged by remix_lineage / extend_lineage
    if job.expect_failure and 400 <= job.submit.status < 500 and not job.driver.supports("poll"):
        return  # a forced failure of a synchronous call is the answer itself (failed_has_error)
    run.expect("job_accepted", job.submit.ok, f"a valid {job.kind} request was answered {job.submit.status}",
               exchange=job.submit.exchange, operation=job.request.op.operation_id)


@check("status_known", "lifecycle", "Every status a job reports is one of the provider's status values "
       "(provider.yaml statuses).", events=("snapshot",), needs_spend=True, requires={"capability": "poll"},
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
       events=("snapshot",), needs_spend=True, requires={"capability": "poll"},
       source=Source("contract", "provider.yaml statuses: the neutral lifecycle queued -> in_progress -> terminal"))
def status_monotonic(run: ProviderRun, ev: Event) -> None:
    snap, prev = ev.snap, ev.prev
    if prev is None or snap.rank is None or prev.rank is None:
        return
    run.expect("status_monotonic", snap.rank >= prev.rank,
               f"status went back from {prev.status!r} to {snap.status!r}", exchange=snap.exchange,
               operation=ev.job.label())


@check("terminal_is_final", "lifecycle", "Once a job is terminal (completed, failed, cancelled) its status "
       "never changes again.", events=("snapshot",), needs_spend=True, requires={"capability": "poll", "state": "terminal"},
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
       events=("snapshot",), needs_spend=True, requires={"capability": "poll", "field": "progress"},
       source=Source("contract", "the job schema's progress (an integer 0..100)"))
def progress_valid(run: ProviderRun, ev: Event) -> None:
    p = ev.snap.progress
    if p is MISSING or p is None:
        return
    run.expect("progress_valid", _is_int(p) and 0 <= p <= 100, f"progress {p!r} is not an integer in 0..100",
               exchange=ev.snap.exchange, operation=ev.job.label())


@check("progress_monotonic", "lifecycle", "Progress never decreases.", events=("snapshot",), needs_spend=True, requires={"capability": "poll", "field": "progress", "state": "active"},
       source=Source("mock", "our mock's progress rises linearly; providers document progress as approximate"))
def progress_monotonic(run: ProviderRun, ev: Event) -> None:
    snap, prev = ev.snap, ev.prev
    if prev is None or not _is_int(snap.progress) or not _is_int(prev.progress):
        return
    run.expect("progress_monotonic", snap.progress >= prev.progress,
               f"progress went down from {prev.progress} to {snap.progress}", exchange=snap.exchange,
               operation=ev.job.label())


@check("progress_complete", "lifecycle", "Progress is 100 exactly when the job is completed.",
       events=("snapshot",), needs_spend=True, requires={"capability": "poll", "field": "progress"},
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
       "never increases.", events=("snapshot",), needs_spend=True, requires={"capability": "poll", "field": "queue_position", "state": "active"},
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
       needs_spend=True, requires={"capability": "poll"},
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
    if snap.id is MISSING or snap.id is None or not job.id or not job.driver.supports("poll"):
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
    ident = job.id if job.driver.supports("poll") else job.source_id
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
       "and are ordered: created <= started <= completed <= expires.", events=("snapshot",), needs_spend=True, requires={"capability": "poll", "field_suffix": "_at"},
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
       events=("timeout", "final", "no_answer", "lost"), needs_spend=True, requires={"state": "any"},
       source=Source("run", "--job-timeout"))
def job_finishes(run: ProviderRun, ev: Event) -> None:
    if no_answer(run, ev, "job_finishes"):
        return
    if ev.kind == "lost":
        run.fail("job_finishes", f"{ev.job.label()} could not be followed: {ev.data['message']}",
                 exchange=ev.snap.exchange if ev.snap else None, operation=ev.job.label())
        return
    if ev.kind == "timeout":
        last = ev.job.last
        run.fail("job_finishes", f"{ev.job.label()} is still {last.status if last else 'unobserved'!r} after "
                 f"{run.config.job_timeout:g} s", exchange=last.exchange if last else None, operation=ev.job.label())
    else:
        run.ok("job_finishes")


@check("completed_has_assets", "lifecycle", "A completed job's output names a downloadable video.",
       events=("final", "no_answer"), needs_spend=True, requires={"state": "completed"},
       source=Source("contract", "the output schema of a completed job (a downloadable video)"))
def completed_has_assets(run: ProviderRun, ev: Event) -> None:
    if no_answer(run, ev, "completed_has_assets"):
        return
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
       "declared for them (video/mp4 for the video).", events=("download",), needs_spend=True, requires={"state": "completed"},
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
    if job.kind in SOURCED_KINDS:
        src = job.source.media if job.source is not None and job.source.media else None
        if src is None and job.source_ref:
            src = run.pool.seed_meta.get(job.source_ref) if run.pool else None
        if src:
            if "width" not in out and src.get("width"):
                out["width"], out["height"], out["size_from"] = src["width"], src["height"], f"the {job.kind} source"
            if "seconds" not in out and src.get("seconds") and job.kind == "remix":
                out["seconds"], out["seconds_from"] = float(src["seconds"]), "the remix source"
    if job.kind == "extend":  # the stitched total: the source's seconds plus the extension's
        out.pop("seconds", None)
        out.pop("seconds_from", None)
        total = _stitched_total(run, job)
        if total is not None:
            out["seconds"], out["seconds_from"] = total, "the source's seconds plus the extension's"
    return out


def _number(value: Any) -> float | None:
    """A duration in seconds from a job field or a request value (``"8"``, ``8``, ``8.0``); None otherwise."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _declared_seconds(run: ProviderRun, snap: Snapshot | None) -> float | None:
    """The seconds a job object declares: the field the request's ``seconds`` parameter names (provider.yaml
    ``mock.params.seconds`` pointer, openai ``seconds``), read from the job body; None when absent or mapped."""
    from ..spend import params_rules

    rule = params_rules(run.contract).get("seconds")
    if snap is None or not isinstance(snap.body, dict) or not rule or rule.get("map"):
        return None
    from specs.pointers import get_pointer

    return _number(get_pointer(snap.body, rule["pointer"]))


def _source_seconds(run: ProviderRun, job: Job) -> float | None:
    """Seconds of a remix/extension source: its probed MP4, else what its job object declared, else what the
    fixture pool knows of it (admin-seeded or --source-video-id)."""
    src = job.source
    if src is not None and src.media and src.media.get("seconds"):
        return float(src.media["seconds"])
    if src is not None:
        declared = _declared_seconds(run, src.last)
        if declared is not None:
            return declared
    meta = run.pool.seed_meta.get(job.source_ref or "") if run.pool else None
    return float(meta["seconds"]) if meta and meta.get("seconds") else None


def _stitched_total(run: ProviderRun, job: Job) -> float | None:
    """What an extension's ``seconds`` should be: its source's seconds plus the requested extension; None when
    either is unknown."""
    added = _number((job.request.requested or {}).get("seconds"))
    source = _source_seconds(run, job)
    return None if added is None or source is None else source + added


@check("video_matches_request", "lifecycle", "The video is a valid MP4 whose dimensions and duration match the "
       "request (or the remix source, or what the provider declares for the output).", events=("download",),
       needs_spend=True, requires={"state": "completed"},
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
       needs_spend=True, requires={"state": "completed", "metadata": True}, source=Source("contract", "the output's file object (file_size, width, height, duration)"))
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
       "a job the mock was told to fail (X-Mock-Fault) ends failed.", events=("final",), needs_spend=True, requires={"ours": True},
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
    if not job.driver.supports("poll") and job.submit.status >= 400:
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
       "never lets it complete; cancelling a finished job leaves it unchanged.", events=("cancel", "final", "no_answer"),
       needs_spend=True, requires={"capability": "cancel", "state": "active"},
       source=Source("contract", "the cancel operation's declared responses"))
def cancel_semantics(run: ProviderRun, ev: Event) -> None:
    if no_answer(run, ev, "cancel_semantics"):
        return
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
       needs_spend=True, requires={"capability": "remix", "state": "completed"},
       source=Source("contract", "the remix operation and the lineage field (remixed_from_*)"))
def remix_lineage(run: ProviderRun, ev: Event) -> None:
    _judge_lineage(run, ev, "remix_lineage", "remix", "remix",
                   lambda state: run.source("remix_lineage", _reject_expectation(state), _REMIX_REJECT))


_EXTEND_REJECT = Source("mock", "our mock rejects an extension of a source that is not completed (a 4xx)")


@check("extend_lineage", "lifecycle", "Extension follows its source: extending a completed video is accepted "
       "and the new job (a new id) names its source (remixed_from_*); extending a source that is not completed, "
       "failed or was deleted is rejected with a 4xx or the extension ends failed, never completed.",
       events=("extend", "final"), needs_spend=True, requires={"capability": "extend", "state": "completed"},
       source=Source("contract", "the extend operation (x-role extend, x-source) and the lineage field"))
def extend_lineage(run: ProviderRun, ev: Event) -> None:
    reject = run.source("extend_lineage", "extend_rejects_unfinished", _EXTEND_REJECT)
    _judge_lineage(run, ev, "extend_lineage", "extend", "extension", lambda state: reject)


def _judge_lineage(run: ProviderRun, ev: Event, name: str, kind: str, noun: str,
                   reject_source: Callable[[str | None], Source]) -> None:
    """What remix_lineage and extend_lineage judge alike, for a job of ``kind`` (``remix``, ``extend``) made
    from a source: on its ``final`` event, a job whose source was not completed must not complete; on its
    creating event, a completed source is accepted (never a 5xx), another is refused with a 4xx (or fails
    later), the new job has its own id and its lineage field names the source. ``noun`` words the messages;
    ``reject_source(state)`` is where "a source in ``state`` is refused" comes from."""
    job = ev.job
    if ev.kind == "final":
        if job.kind == kind and job.submit.ok and job.remix_expect == "reject":
            run.expect(name, job.final in ("failed", "cancelled", None),
                       f"a {noun} of a source that was not completed ({job.remix_source_state}) completed",
                       exchange=job.submit.exchange, operation=job.label(),
                       source=reject_source(job.remix_source_state))
        return
    expect = ev.data.get("expect")
    ans = job.submit
    if job.expect_failure and not ans.ok and 400 <= ans.status < 500:
        return  # a forced failure surfaced in the answer itself (synchronous family): judged by failed_has_error
    if ans.status >= 500:
        run.fail(name, f"{kind} answered {ans.status}", exchange=ans.exchange, operation=job.label())
        return
    if expect == "accept":
        if not run.expect(name, ans.ok, f"a {noun} of a completed source was answered {ans.status}",
                          exchange=ans.exchange, operation=job.label()):
            return
    elif expect == "reject" and not ans.ok:
        run.expect(name, 400 <= ans.status < 500,
                   f"a {noun} of a {ev.data.get('state')} source answered {ans.status}, expected a 4xx",
                   exchange=ans.exchange, operation=job.label(), source=reject_source(ev.data.get("state")))
        return
    if not ans.ok:
        return
    if job.id and job.source_ref and job.id == job.source_ref:
        run.fail(name, f"the {noun} got its source's id {job.id!r}", exchange=ans.exchange, operation=job.label())
        return
    first = job.snapshots[0] if job.snapshots else None
    if first is not None and first.lineage is not MISSING:
        run.expect(name, first.lineage == job.source_ref,
                   f"remixed_from is {first.lineage!r}, expected the source {job.source_ref!r}",
                   exchange=ans.exchange, operation=job.label())
    elif expect == "accept":
        run.ok(name)


@check("extend_duration", "lifecycle", "An extension's seconds are the stitched total (the source's seconds plus "
       "the requested extension), from its first answer to its end, and its downloaded MP4 lasts that long.",
       events=("download",), needs_spend=True, requires={"capability": "extend", "state": "completed"},
       source=Source("contract", "VideoResource.seconds: for extensions, the stitched total duration"))
def extend_duration(run: ProviderRun, ev: Event) -> None:
    dl, job = ev.download, ev.job
    if job.kind != "extend" or not dl.asset.is_video or dl.status != 200:
        return
    source = run.source("extend_duration", "extend_seconds_stitched")
    total = _stitched_total(run, job)
    if total is None:
        return  # the source's duration or the requested seconds are unknown: nothing to compare
    problems = []
    for snap in observations(job):
        declared = _declared_seconds(run, snap)
        if declared is not None and abs(declared - total) > 0.5:
            problems.append(f"the job declares {declared:g} s (source {total - _number(job.request.requested['seconds']):g} s "
                            f"+ extension {job.request.requested['seconds']} s = {total:g} s)")
            break
    try:
        seconds = probe_mp4(dl.data)["duration_seconds"]
    except ValueError as exc:
        problems.append(f"the video is not a valid MP4: {exc}")
    else:
        if abs(seconds - total) > max(0.5, 0.05 * total):
            problems.append(f"the MP4 lasts {seconds:.2f} s, the stitched total is {total:g} s")
    run.expect("extend_duration", not problems, "; ".join(problems), exchange=dl.exchange, operation=job.label(),
               source=source)


@check("webhook_consistent", "lifecycle", "A job that asked for a webhook (a callback URL in its request, or the "
       "project's webhook) gets a delivery once it ends, in the shape the contract declares, naming the job and the "
       "terminal status it reached.", events=("webhook",), needs_spend=True, requires={"webhook": True, "state": "terminal"},
       source=Source("contract", "the creating operation's callbacks (or the contract's webhooks) and x-delivery"))
def webhook_consistent(run: ProviderRun, ev: Event) -> None:
    job, deliveries = ev.job, ev.data["deliveries"]
    if not deliveries:
        run.fail("webhook_consistent", f"no webhook delivery for {job.label()} ({job.final}) within "
                 f"{ev.data['waited']:.0f} s of its end", exchange=job.submit.exchange, operation=job.label())
        return
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
        if ident != job.id and job.driver.supports("poll"):
            run.fail("webhook_consistent", f"a webhook delivery for {job.label()} names {ident!r}",
                     operation=job.label())
            return
        if job.final and neutral and job.final not in neutral:
            run.fail("webhook_consistent", f"the webhook says {'/'.join(neutral)} for a job that ended {job.final}",
                     operation=job.label())
            return
    run.ok("webhook_consistent")


@check("generate_has_no_lineage", "lifecycle", "A job generated from a prompt names no remix source.",
       events=("submit",), needs_spend=True, requires={"field_prefix": "remixed_from"},
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
       "(not the output, not a 5xx).", events=("early_result", "no_answer"), needs_spend=True, requires={"output_request": True, "state": "active"},
       source=Source("mock", "our mock answers the output of an unfinished job with a 4xx"))
def early_result_rejected(run: ProviderRun, ev: Event) -> None:
    if no_answer(run, ev, "early_result_rejected"):
        return
    ans = ev.answer
    run.expect("early_result_rejected", 400 <= ans.status < 500,
               f"the output of a {ev.data.get('state')} job was answered {ans.status}", exchange=ans.exchange,
               operation=ev.job.label())


@check("deleted_is_gone", "lifecycle", "After a successful delete the job is gone: retrieving it is 404 and "
       "it cannot be remixed.", events=("delete", "no_answer"), needs_spend=True, requires={"capability": "delete", "state": "completed"},
       source=Source("contract", "the delete operation's 2xx (deleted: true)"))
def deleted_is_gone(run: ProviderRun, ev: Event) -> None:
    if no_answer(run, ev, "deleted_is_gone"):
        return
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
       events=("list", "no_answer"), needs_spend=True, requires={"capability": "list"},
       source=Source("contract", "the list schema: data, first_id, last_id, has_more, the after cursor"))
def list_pagination(run: ProviderRun, ev: Event) -> None:
    if no_answer(run, ev, "list_pagination"):
        return
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
       needs_spend=True, requires={"hint": True},
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
       "with the terminal status polling reports.", events=("stream", "no_answer"), needs_spend=True, requires={"capability": "stream"},
       source=Source("contract", "the status stream's x-event-schema and provider.yaml statuses"))
def stream_consistent(run: ProviderRun, ev: Event) -> None:
    if no_answer(run, ev, "stream_consistent"):
        return
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


