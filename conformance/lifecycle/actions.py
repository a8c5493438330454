"""The actions of the lifecycle state machine: submit, poll, cancel, remix, extend, ask for output too early, delete,
list, stream, finish, collect webhooks, and the fixed opening every run starts with. Each action observes
the target through a family driver and emits events (:mod:`conformance.lifecycle.events`); actions ask the
drivers for capabilities, never for a family's name.
"""

from __future__ import annotations

import random
import time
from typing import Any

from .. import schema as sch
from ..bodies import BodyError, build
from ..context import ProviderRun
from ..drivers import Answer, Driver, DriverError, Job, Snapshot
from ..fixtures import generate_ops
from ..http import RunStopped
from ..spend import SpendBlocked, params_rules
from ..target import TargetError
from ..webhooks import Callback, callback_of, delivered_state, new_token, project_webhooks
from .events import Event, Monitor

WEBHOOK_WAIT = 10.0  # seconds the suite waits at most, after the jobs ended, for their webhook deliveries


def deletes_output(contract, job: Job) -> bool:
    """True when a job's request asked the provider to delete the output once delivered: the field of
    provider.yaml ``mock.params.delete_video``, its value in the request, else the schema's default (fal's
    ``delete_video`` defaults to true, seed 001)."""
    from specs.validate import get_pointer

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
            # no answer: judged by the check of what the action was for (it receives "no_answer" events)
            self.m.emit(Event("no_answer", job=job, data={"check": on_error, "message": str(exc),
                                                          "exchange": exc.exchange}))
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
        """Remix ``source`` (a job of this run, or a source id) through ``op``; emits ``submit`` and ``remix``
        events. Returns the new job when the request was accepted."""
        return self._from_source("remix", source, driver, op, seconds, fail=fail, hold=hold, webhook=webhook)

    def extend(self, source: Job | str, driver: Driver, op, seconds: int | None, hold: bool = False) -> Job | None:
        """Extend ``source`` through ``op`` (role ``extend``: a new job continuing the source for ``seconds``
        more; its own seconds are the stitched total); emits ``submit`` and ``extend`` events, judged by
        ``extend_lineage`` and ``extend_duration``. Returns the new job when the request was accepted."""
        return self._from_source("extend", source, driver, op, seconds, hold=hold)

    def _from_source(self, kind: str, source: Job | str, driver: Driver, op, seconds: int | None,
                     fail: bool = False, hold: bool = False, webhook: bool = False) -> Job | None:
        """A job of ``kind`` (``remix`` or ``extend``) made from ``source``: the source's state when asked decides
        whether the request should be accepted (completed) or rejected (failed, cancelled, deleted, or
        still active when a read right after agrees)."""
        if not self._can_create(seconds):
            return None
        if isinstance(source, Job):
            before = self.state_of(source)
            ref = self.source_ref(source)
            if before == "completed" and source.delivered and deletes_output(self.run.contract, source):
                before = "deleted"  # its output was delivered with the "delete after delivery" flag (fal)
        else:
            before, ref = "completed", source
        if not self.run.target.free and kind == "remix":
            seconds = None
        req = self._build(op, kind, source_id=ref, seconds=seconds, keep_output=self.rng.random() < 0.5)
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
            # not terminal: the source's state at the request is known only if a read right after agrees
            after = self.state_of(source, honour=False)
            expect = "reject" if after == before else None
        job.remix_expect = expect
        job.remix_source_state = before
        self._observe_submit(job, expect=expect)
        self.m.emit(Event(kind, job=job, data={"expect": expect, "state": before}))
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
        url = d.output_url(job) if job.id else None  # None: the output comes with the job, not on its own
        if url is None or job.deleted or self.run.halted:
            return
        before = self.state_of(job)
        if before not in ("queued", "in_progress"):
            return
        ans = self._guarded(lambda: d.answer(d.send("GET", url)), on_error="early_result_rejected")
        if ans is None:
            return
        if 200 <= ans.status < 300:
            # output served: wrong unless the job completed in between (a read right after tells)
            if self.state_of(job, honour=False) == "completed":
                return
        self.m.emit(Event("early_result", job=job, answer=ans, data={"state": before}))

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
        if not d.supports("poll") and job.expect_failure and not job.submit.ok:
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
                job.lost_reported = True
                self.m.emit(Event("lost", job=job, snap=snap, data={"message": job.lost}))
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
                self.m.emit(Event("lost", job=job, data={"message": job.lost}))
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
        if isinstance(job.callback, Callback):
            return job.callback.delivery
        for ptr, mapping in job.callback:
            if ptr is None or not sch.errors(self.run.contract.openapi, ptr, d.json):
                return mapping
        return job.callback[0][1]

    def _deliveries(self, job: Job) -> list:
        got = self.run.target.receiver.for_path(job.webhook)
        if job.webhook.startswith("/hook/"):
            return got
        return [d for d in got if delivered_state(self.run.contract, self._delivery_map(job, d), d.json)[0] == job.id]

    # -- the opening: every property exercised on every run ----------------------------------------------
    def opening(self, generators: list[Driver], remixers: list, pick: int,
                extenders: list | None = None) -> list[Job]:
        """A fixed sequence run first in every state-machine run, so that every property is exercised every
        time (on our mock deterministically, with held jobs; elsewhere as far as real time allows). Returns
        the jobs it created (they join the machine's bundle). ``remixers`` / ``extenders``: ``(driver, operation)``
        pairs of the contract's remix and extend operations."""
        run = self.run
        out: list[Job] = []
        pool = run.pool
        sources = list(pool.sources) if pool else []
        remix_pick = remixers[pick % len(remixers)] if remixers else None
        extend_pick = extenders[pick % len(extenders)] if extenders else None

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
        if extend_pick is not None:
            self.extend(main, *extend_pick, None)            # extending a source that is not completed: rejected
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
        if extend_pick is not None and main.final == "completed":
            longer = self.extend(main, *extend_pick, None, hold=True)  # accepted: lineage, the stitched total
            if longer is not None:
                out.append(longer)
                self.finish(longer)                          # to its end: its MP4 lasts the stitched total
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
                if extend_pick is not None:
                    self.extend(failing, *extend_pick, None)  # a failed source cannot be extended either
        if driver.supports("delete"):
            gone = new()
            if gone is not None:
                self.finish(gone)
                self.delete(gone)
                if remix_pick is not None:
                    self.remix(gone, *remix_pick, None)      # a deleted source: rejected
                if extend_pick is not None:
                    self.extend(gone, *extend_pick, None)    # nor a deleted one
        for d in {id(x.driver): x.driver for x in out}.values():
            if d.supports("list"):
                self.list(d, 2, complete=True)
        if driver.supports("stream"):
            streamed = new()
            if streamed is not None:
                self.stream(streamed, drive=True)            # follows the job to its end
        return out



