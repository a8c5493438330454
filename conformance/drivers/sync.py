"""Driver of the ``sync`` family (onerouter, fal's ``fal.run`` host): one call blocks until the output is
ready. A 2xx answer is a completed job whose body is the output; an error answer to a valid request is a
failed job (e.g. 422 content policy). There is nothing to poll or cancel. Sources: reference/protocols.md
§2 and §4.
"""

from __future__ import annotations

import time
import uuid

from ..bodies import Request
from .base import Answer, Driver, Job, Result, Snapshot


class SyncDriver(Driver):
    family = "sync"
    capabilities = frozenset({"submit", "result", "download", "remix"})

    def submit(self, req: Request, *, fail: bool = False, source: Job | None = None, hold: bool = False) -> Job:
        # the blocking call may take as long as a job may (--job-timeout), plus a margin
        job, ans, resp = self.begin(req, fail=fail, source=source, timeout=max(self.timeout, self.job_timeout + 5.0))
        # The blocking call is the whole lifecycle: a 2xx is "completed", an error answer "failed".
        neutral = ("completed",) if ans.ok else ("failed",)
        job.snapshots.append(Snapshot(at=time.monotonic(), http_status=ans.status, neutral=neutral, body=ans.body,
                                      exchange=ans.exchange, source="submit"))
        if ans.ok:
            job.delivered = True  # the answer is the output: delivered at once (fal delete_video applies now)
            job.source_id = self.source_id_from(job, ans.body)
            job.id = job.source_id or f"sync-{uuid.uuid4().hex[:12]}"
        return job

    def result(self, job: Job) -> Result:
        ans = job.submit
        res = Result(answer=Answer(ans.status, ans.body, ans.exchange))
        if ans.ok:
            res.assets = self.assets_of(ans.body)
            res.declared = self.declared_media(ans.body)
        return res

    def poll(self, job: Job, honour: bool = True) -> Snapshot:
        return job.snapshots[-1]
