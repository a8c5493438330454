"""Driver of the ``queue`` family (fal's queue host, sunra): submit answers ``request_id`` plus
``status_url``/``response_url``/``cancel_url``; the driver follows those URLs as the SDKs do (fal-client
1.0.3, sunra-client 0.6.0), falling back to the contract's ``status``/``result``/``cancel`` paths. The model
output of ``result`` holds file objects (``url``, ``content_type``) and, for fal, the ``video_id`` a remix
names. Sources: reference/protocols.md §2-3.
"""

from __future__ import annotations

import json
import time

from ..bodies import Request
from .base import Answer, Driver, DriverError, Job, Result, Snapshot


class QueueDriver(Driver):
    family = "queue"
    capabilities = frozenset({"submit", "poll", "result", "download", "cancel", "remix", "stream"})

    def _has_ops_for(self, what: str) -> bool:
        need = {"poll": "status", "result": "result", "cancel": "cancel", "stream": "status_stream"}.get(what)
        return need is None or bool(self.ops.get(need))

    def contract_url(self, role: str, request_id: str) -> str | None:
        ops = self.ops.get(role) or []
        if not ops:
            return None
        return self.url_of(ops[0], {"request_id": request_id})

    def submit(self, req: Request, *, fail: bool = False, source: Job | None = None, hold: bool = False) -> Job:
        job, ans, resp = self.begin(req, fail=fail, source=source, hold=hold)
        if not ans.ok:
            return job
        body = ans.body
        if not isinstance(body, dict) or not isinstance(body.get("request_id"), str) or not body["request_id"]:
            raise DriverError(f"{req.op.operation_id}: a {ans.status} answer without a request_id", ans.exchange)
        job.id = body["request_id"]
        for key, role in (("status_url", "status"), ("response_url", "result"), ("cancel_url", "cancel")):
            url = body.get(key)
            ok = isinstance(url, str) and url.startswith(("http://", "https://"))
            if ok:
                job.answer_urls[role] = url
            # follow the answer's URL as the SDKs do, unless the run keeps to the target's hosts
            job.urls[role] = url if ok and self.client.allows(url) else (self.contract_url(role, job.id) or "")
        if "status" in body:
            job.snapshots.append(self.snapshot(body, resp, job, source="submit"))
        return job

    def poll(self, job: Job, honour: bool = True) -> Snapshot:
        honour = honour and not (job.held and not job.ended)  # a held job changes only when the suite moves it
        if honour:
            self.wait_hint(job)
        url = job.urls.get("status") or self.contract_url("status", job.id)
        resp = self.send("GET", url, timeout=self.job_timeout_for(job))
        ans = self.answer(resp)
        snap = self.snapshot(ans.body, resp, job) if ans.ok else Snapshot(
            at=time.monotonic(), http_status=resp.status_code, body=ans.body, exchange=ans.exchange)
        if ans.ok and snap.id is not None and not isinstance(snap.id, str):
            snap.id = str(snap.id)
        if not honour:
            snap.source = "probe"
        self.note_hint(job, resp)
        job.snapshots.append(snap)
        return snap

    def stream(self, job: Job, timeout: float = 30.0) -> tuple[Answer, list[Snapshot]]:
        """Read the status stream (SSE) to its end: the answer and one snapshot per ``data:`` event."""
        url = self.contract_url("status_stream", job.id)
        resp = self.send("GET", url, timeout=min(timeout, self.job_timeout_for(job)),
                         headers={"Accept": "text/event-stream"})
        ans = Answer(resp.status_code, None, getattr(resp, "exchange", None))
        snaps: list[Snapshot] = []
        if resp.status_code != 200:
            return ans, snaps
        for data in sse_events(resp.content or b""):
            try:
                body = json.loads(data)
            except ValueError:
                body = data
            snaps.append(self.snapshot(body, resp, job, source="stream"))
        return ans, snaps

    def output_url(self, job: Job) -> str | None:
        return job.urls.get("result") or self.contract_url("result", job.id)

    def result(self, job: Job) -> Result:
        url = job.urls.get("result") or self.contract_url("result", job.id)
        resp = self.send("GET", url, timeout=self.job_timeout_for(job))
        ans = self.answer(resp)
        res = Result(answer=ans)
        if ans.ok:
            job.delivered = True
            res.assets = self.assets_of(ans.body)
            res.declared = self.declared_media(ans.body)
            job.source_id = self.source_id_from(job, ans.body)
        return res

    def cancel(self, job: Job) -> Answer:
        url = job.urls.get("cancel") or self.contract_url("cancel", job.id)
        op = (self.ops.get("cancel") or [None])[0]
        method = op.method.upper() if op else "PUT"
        return self.answer(self.send(method, url))


def sse_events(raw: bytes) -> list[str]:
    """The ``data`` payloads of a Server-Sent Events body (multi-line data joined with newlines)."""
    events: list[str] = []
    data: list[str] = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if data:
                events.append("\n".join(data))
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        events.append("\n".join(data))
    return events
