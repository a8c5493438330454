"""Driver of the ``job`` family (aigateway): submit answers a job (HTTP 202), ``retrieve`` polls it and
carries the ``result`` (``url``/``file_url``) once completed, ``cancel`` answers the job. A ``304 Not
Modified`` poll (polled faster than the provider allows, reference/protocols.md §4) is "no news": it is
kept as a not-modified observation and the driver backs off before the next poll.
"""

from __future__ import annotations

import re
import time

from .base import Answer, Driver, DriverError, Job, Result, Snapshot

NOT_MODIFIED_BACKOFF = 0.1  # real seconds added to the wait after each 304


class JobDriver(Driver):
    family = "job"
    capabilities = frozenset({"submit", "poll", "result", "download", "cancel", "remix"})

    def _has_ops_for(self, what: str) -> bool:
        need = {"poll": "retrieve", "result": "retrieve", "cancel": "cancel"}.get(what)
        return need is None or bool(self.ops.get(need))

    def _param(self, role: str) -> str:
        names = re.findall(r"\{([^}]+)\}", self.ops[role][0].path)
        return names[0] if names else "job_id"

    def poll(self, job: Job, honour: bool = True) -> Snapshot:
        honour = honour and not (job.held and not job.ended)  # a held job changes only when the suite moves it
        if honour:
            self.wait_hint(job)
        resp = self.call(self.ops["retrieve"][0], {self._param("retrieve"): job.id}, timeout=self.job_timeout_for(job))
        ans = self.answer(resp)
        if resp.status_code == 304:
            snap = Snapshot(at=time.monotonic(), http_status=304, exchange=ans.exchange, not_modified=True)
            job.next_poll_at = max(job.next_poll_at, time.monotonic() + NOT_MODIFIED_BACKOFF *
                                   (1 + sum(1 for s in job.snapshots[-5:] if s.not_modified)))
        elif ans.ok:
            snap = self.snapshot(ans.body, resp, job)
        else:
            snap = Snapshot(at=time.monotonic(), http_status=resp.status_code, body=ans.body, exchange=ans.exchange)
        if not honour:
            snap.source = "probe"
        self.note_hint(job, resp)
        job.snapshots.append(snap)
        return snap

    def result(self, job: Job) -> Result:
        last = job.last
        body = last.body if last else None
        ans = Answer(last.http_status if last else 0, body, last.exchange if last else None)
        res = Result(answer=ans)
        if isinstance(body, dict) and isinstance(body.get("result"), dict):
            job.delivered = True
            res.assets = self.assets_of(body["result"])
            for a in res.assets:
                if a.name in ("url", "file_url"):
                    a.name = "video"
            res.declared = self.declared_media(body["result"])
            job.source_id = self.source_id_from(job, body["result"])
        return res

    def cancel(self, job: Job) -> Answer:
        ans = self.answer(self.call(self.ops["cancel"][0], {self._param("cancel"): job.id}))
        return ans

    def retrieve_raw(self, job_id: str) -> Answer:
        return self.answer(self.call(self.ops["retrieve"][0], {self._param("retrieve"): job_id}))


__all__ = ["JobDriver", "DriverError"]
