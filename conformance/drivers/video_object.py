"""Driver of the ``video_object`` family (openai, gptge): the create/remix/edit answer is the job object,
polled with ``retrieve``; assets come from ``content`` — streamed bytes per ``x-variants`` (OpenAI), or a
JSON link object when the operation's 200 media types are all JSON (gpt.ge). Sources: reference/protocols.md
§1 and §4, openai 3.57.0 ``resources/videos.py``.
"""

from __future__ import annotations

import time

from .base import MISSING, Answer, Asset, Download, Driver, DriverError, Job, Result, Snapshot


class VideoObjectDriver(Driver):
    family = "video_object"
    capabilities = frozenset({"submit", "poll", "result", "download", "list", "delete", "remix", "extend",
                              "characters"})

    def _has_ops_for(self, what: str) -> bool:
        need = {"poll": "retrieve", "result": "content", "download": "content", "list": "list",
                "delete": "delete", "cancel": "cancel", "extend": "extend", "characters": "character_create"}.get(what)
        return need is None or bool(self.ops.get(need))

    def poll(self, job: Job, honour: bool = True) -> Snapshot:
        honour = honour and not (job.held and not job.ended)  # a held job changes only when the suite moves it
        op = self.ops["retrieve"][0]
        if honour:
            self.wait_hint(job)
        resp = self.call(op, {_path_param(op): job.id}, timeout=self.job_timeout_for(job))
        ans = self.answer(resp)
        snap = self.snapshot(ans.body, resp, job) if ans.ok else Snapshot(
            at=time.monotonic(), http_status=resp.status_code, body=ans.body, exchange=ans.exchange)
        if not honour:
            snap.source = "probe"
        self.note_hint(job, resp)
        job.snapshots.append(snap)
        return snap

    def content_url(self, job_id: str, variant: str | None = None) -> tuple[str, str | None]:
        op = self.ops["content"][0]
        url = self.url_of(op, {_path_param(op): job_id})
        variants = op.definition.get("x-variants") or {}
        if variant and variant != "video" and variant in variants:
            url += f"?variant={variant}"
        return url, variants.get(variant or "video")

    def output_url(self, job: Job) -> str | None:
        return self.content_url(job.id)[0] if self.ops.get("content") else None

    def result(self, job: Job) -> Result:
        op = self.ops["content"][0]
        variants = op.definition.get("x-variants") or {}
        ok = (op.definition.get("responses") or {}).get("200") or {}
        types = list((ok.get("content") or {}).keys()) if isinstance(ok, dict) else []
        link = bool(types) and all("json" in t for t in types)
        last = job.last.body if job.last else None
        if link:  # JSON link object (gpt.ge): the URL to download
            resp = self.call(op, {_path_param(op): job.id}, timeout=self.job_timeout_for(job))
            ans = self.answer(resp)
            res = Result(answer=ans)
            if ans.ok:
                job.delivered = True
                res.assets = [a if a.name != "url" else Asset(a.url, "video", a.declared_type, meta=a.meta)
                              for a in self.assets_of(ans.body)]
            res.declared = self.declared_media(last, ans.body)
            return res
        # bytes: the video variant is fetched now (its answer is the result's answer: a failed or unfinished
        # video must not be served); every variant is an asset, the fetched one is kept for the download
        url, _ = self.content_url(job.id, "video")
        resp = self.send("GET", url, timeout=self.job_timeout_for(job))
        res = Result(answer=self.answer(resp))
        if not res.answer.ok:
            return res
        job.delivered = True
        for name, ctype in (variants.items() if variants else [("video", types[0] if types else None)]):
            vurl, _ = self.content_url(job.id, name)
            res.assets.append(Asset(url=vurl, name=name, declared_type=ctype, auth=True))
        res.prefetched[url] = Download(res.assets[0], resp.status_code, resp.headers.get("Content-Type"),
                                       resp.content or b"", getattr(resp, "exchange", None))
        res.declared = self.declared_media(last)
        return res

    def create_character(self, name: str, video: bytes, file_name: str = "character.mp4") -> Answer:
        """Create a character (role ``character_create``: OpenAI ``POST /videos/characters``, multipart with the
        video ``video`` as an MP4 file part and the display ``name``, as openai 3.57.0
        ``videos.create_character`` sends it). Returns the answer; its body is the character (``id``, ``name``,
        ``created_at``) when 2xx.

        Raises:
            DriverError: no answer, or the contract has no ``character_create`` operation on this host.
            conformance.spend.SpendBlocked: refused by the spend guard (the operation is ``x-billable``).
        """
        ops = self.ops.get("character_create")
        if not ops:
            raise DriverError(f"{self.contract.id}: no character_create operation")
        return self.answer(self.call(ops[0], body={"name": name, "video": (file_name, video, "video/mp4")},
                                     media_type="multipart/form-data"))

    def cancel(self, job: Job) -> Answer:
        raise DriverError(f"{self.contract.id}: no cancel operation")

    def list_page(self, *, limit: int | None = None, after: str | None = None,
                  order: str | None = None) -> Answer:
        op = self.ops["list"][0]
        params = {k: v for k, v in (("limit", limit), ("after", after), ("order", order)) if v is not None}
        return self.answer(self.call(op, params=params))

    def delete(self, job: Job) -> Answer:
        op = self.ops["delete"][0]
        ans = self.answer(self.call(op, {_path_param(op): job.id}))
        if ans.ok:
            job.deleted = True
        return ans

    def retrieve_raw(self, job_id: str) -> Answer:
        op = self.ops["retrieve"][0]
        return self.answer(self.call(op, {_path_param(op): job_id}))


def _path_param(op) -> str:
    import re

    names = re.findall(r"\{([^}]+)\}", op.path)
    return names[0] if names else "video_id"


__all__ = ["VideoObjectDriver", "MISSING"]
