"""The synchronous family (onerouter, fal's ``fal.run`` host): one call blocks until the video is ready.

``run`` creates the job like a queue submit would, waits until the job's computed state is terminal, then
answers the provider's result body (``mock.result`` in provider.yaml; fal.run: the same body as the queue
result, reference/protocols.md §2; onerouter: ``{data: [{url, revised_prompt, video_id}], created}``,
reference/protocols.md §4) or the provider's failure error. Templates: ``result``, ``file``, ``sync``
(``{max_wait_seconds, timeout: <answer>}``), ``output_id`` (:mod:`mockserver.rendering.queue`).

Waiting follows the mock's clock:

- system clock: ``asyncio.sleep`` of the virtual time left until the next status change divided by
  ``config.speed`` (no busy polling);
- manual clock: the state is re-read every ``MANUAL_POLL_SECONDS`` of real time until a test has advanced
  the clock far enough;
- either way a job moved by ``POST /__mock/jobs/{provider}/{job_id}/advance`` wakes the wait at once.

``X-Mock-Timing`` (:mod:`mockserver.timing`) applies here as everywhere: numbers set how long the call
blocks (in virtual seconds), and ``hold`` keeps the call waiting until the job is advanced through the admin
API (e.g. ``EmbeddedMock.advance_job``) from another connection or thread.

Either way the call gives up after ``mock.sync.max_wait_seconds`` real seconds (default 300) with the
provider's timeout answer ``mock.sync.timeout`` (onerouter: its ``timeout`` error kind, 408; fal.run: 504
``request_timeout``), and it stops waiting as soon as the client disconnects.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from .. import engine as eng
from .queue import QueueOutputs

#: Real seconds between two reads of the state while waiting on a manual clock.
MANUAL_POLL_SECONDS = 0.02
#: Real seconds a blocking call waits at most by default (``mock.sync.max_wait_seconds`` overrides it).
MAX_WAIT_SECONDS = 300.0


class SyncFamily(QueueOutputs):
    """Adapter of the ``sync`` family. See the module docstring."""

    name = "sync"

    @property
    def sync_settings(self) -> dict:
        return self.mock.get("sync") or {}

    async def wait_terminal(self, ctx, job: eng.Job) -> eng.State | None:
        """Wait (without blocking the loop) until ``job`` is terminal; its final state, or None when the
        wait timed out or the client disconnected."""
        deadline = time.monotonic() + float(self.sync_settings.get("max_wait_seconds", MAX_WAIT_SECONDS))
        manual = self.state.config.clock == "manual"
        while True:
            moved = self.state.jobs_moved_event()  # taken before the read: a later advance wakes us
            st = self.job_state(self.store.reload(job))  # a shared store: another worker may have moved it
            if st.terminal:
                return st
            left = deadline - time.monotonic()
            transport = ctx.request.transport
            if left <= 0 or transport is None or transport.is_closing():
                return None
            if manual or st.next_change_in is None:
                delay = MANUAL_POLL_SECONDS
            else:
                delay = max(0.001, st.next_change_in / self.state.config.speed)
            if self.store.shared:  # an advance through another worker wakes no event here
                delay = min(delay, MANUAL_POLL_SECONDS)
            try:
                await asyncio.wait_for(moved.wait(), min(delay, left))
            except TimeoutError:
                pass

    async def op_run(self, ctx) -> web.Response:
        job, err = self.submit_job(ctx)
        if err is not None:
            return err
        st = await self.wait_terminal(ctx, job)
        if st is None:
            spec = self.sync_settings.get("timeout") or {"error": "server_error"}
            message = "the generation did not finish in time"
            return self.answer(ctx, spec, self.variables(job, self.job_state(job), message=message), message=message)
        if st.status == eng.FAILED:
            return self.failure_error(ctx, job)
        if st.status == eng.CANCELLED:
            return self.cancelled_error(ctx, job)
        out = self.result_body(job, st)
        self.mark_delivered(job)
        return ctx.json(out)


__all__ = ["MANUAL_POLL_SECONDS", "MAX_WAIT_SECONDS", "SyncFamily"]
