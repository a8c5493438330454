"""The "job" family (aigateway): ``POST`` a generation request, get the contract's success status (202) and the
job object; poll it; cancel it.

Wire shape (specs/aigateway/openapi.yaml, from seeds/004_94f7a976846d8512.txt and reference/protocols.md §4,
documentation only, low confidence):

- submit (``x-role: submit``): the job object with the operation's lowest declared 2xx status. The body
  decides the kind (``x-kind``); a remix needs a completed source named by ``x-source``: unknown -> 404
  ``not_found``, not completed -> ``conflict``, result expired -> ``expired``.
- retrieve (``x-role: retrieve``): the job object. A poll less than ``mock.min_poll_interval_seconds``
  (virtual seconds, per API key and job) after the previous answered poll gets **304 Not Modified** with no
  body (reference/protocols.md §4: "Polling faster than every 3 s -> 304"); 0 or absent disables it.
- cancel (``x-role: cancel``): the job object while queued or in progress; a job already in a terminal state
  answers ``conflict`` and stays unchanged (the contract's x-assumption).
- A completed job whose result has expired (``mock.asset_ttl_seconds``) is answered like an unknown one, with
  the ``expired`` error kind.

Templates (provider.yaml ``mock``): ``job`` (the job object, by state: ``result`` once completed, ``error``
once failed) and ``webhook`` (:mod:`mockserver.rendering.base`; aigateway: ``job.completed`` /
``job.failed``, signed ``aig-signature``; a cancelled job sends no event).
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from .. import engine as eng
from .base import Family


class JobFamily(Family):
    """Adapter of the ``job`` family. Roles: ``submit``, ``retrieve``, ``cancel``."""

    name = "job"

    def job_object(self, job: eng.Job, st: eng.State | None = None):
        """The provider's job object at the current time (``mock.job`` for its state)."""
        st = st or self.job_state(job)
        return self.render("job", self.variables(job, st), st.status)

    @staticmethod
    def _success_status(op) -> int:
        codes = [int(c) for c in (op.definition.get("responses") or {}) if str(c).isdigit() and str(c)[0] == "2"]
        return min(codes) if codes else 200

    def _missing(self, ctx, job_id: str) -> web.Response:
        return ctx.error("not_found", f"Job '{job_id}' not found.", param=ctx.path_param)

    def _live(self, ctx) -> tuple[eng.Job | None, eng.State | None, web.Response | None]:
        """The job named in the path with its state, or the 404 (unknown, or result expired)."""
        job_id = ctx.path_id
        job = self.find(job_id)
        if job is None:
            return None, None, self._missing(ctx, job_id)
        st = self.job_state(job)
        if self.expired(job, st):
            return None, None, ctx.error("expired", f"Job '{job_id}' and its result have expired.",
                                         param=ctx.path_param)
        return job, st, None

    # -- polling rate (304) -------------------------------------------------------------------------
    def _min_poll_interval(self) -> float:
        try:
            return max(0.0, float(self.mock.get("min_poll_interval_seconds") or 0.0))
        except (TypeError, ValueError):
            return 0.0

    def _too_soon(self, ctx, job: eng.Job) -> bool:
        """True when this API key polled ``job`` less than the minimum interval ago (virtual seconds).

        Only answered (200) polls start a new interval, so a client polling every second still gets a
        fresh job every 3 s. The caller is kept hashed by the job store (``poll_get``/``poll_put``), with
        the job's timing: a job moved by the admin API (``POST /__mock/jobs/.../advance`` gives it a new
        timing) has changed, so its next poll is answered even within the interval (on a manual clock the
        interval would otherwise never pass).
        """
        interval = self._min_poll_interval()
        if interval <= 0:
            return False
        who = hashlib.blake2s((ctx.api_key or "").encode(), digest_size=8).hexdigest()
        now = self.now()
        timing = (job.timing.queued, job.timing.in_progress)
        last = self.store.poll_get(job, who)
        if last is not None and now - last[0] < interval and tuple(last[1]) == timing:
            return True
        self.store.poll_put(job, who, (now, timing))
        return False

    # -- operations ---------------------------------------------------------------------------------
    async def op_submit(self, ctx) -> web.Response:
        job, err = self.submit_job(ctx)
        if err is not None:
            return err
        return ctx.json(self.job_object(job), status=self._success_status(ctx.op))

    async def op_retrieve(self, ctx) -> web.Response:
        job, st, err = self._live(ctx)
        if err is not None:
            return err
        if self._too_soon(ctx, job):
            return web.Response(status=304)
        return ctx.json(self.job_object(job, st))

    async def op_cancel(self, ctx) -> web.Response:
        job, st, err = self._live(ctx)
        if err is not None:
            return err
        if not self.store.cancel(job, self.now()):
            return ctx.error("conflict", f"Job {job.id} is already {self.status_word(st.status)}.",
                             param=ctx.path_param)
        return ctx.json(self.job_object(job))


__all__ = ["JobFamily"]
