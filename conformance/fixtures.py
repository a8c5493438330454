"""Fixture jobs a provider run needs: completed source videos to remix and real ids to address.

Valid data needs real ids: a retrieve of a random id is a 404, not a test of the happy path. Before the
contract and lifecycle checks, :func:`build_pool` creates (through the family drivers, so on a real
provider only when spending is allowed) a few completed jobs — their ids address status/result/content
operations and their output ids are remix sources — plus, on the mock, a failed and a running job. A
``--source-video-id`` the user supplies is used as a source everywhere (and is the only source when paid
operations cannot run). When a provider has no operation that generates a video (onerouter is remix-only),
the mock's admin API seeds the sources (``POST /__mock/videos``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from .bodies import BodyError, build
from .context import ProviderRun, sub_seed
from .drivers import MISSING, Driver, DriverError, Job
from .spend import SpendBlocked


@dataclass
class Pool:
    """Fixture jobs of one provider.

    Attributes:
        jobs: every fixture job created (any state).
        completed: completed jobs whose output was fetched.
        sources: ids usable as remix sources (completed outputs, admin-seeded videos, --source-video-id).
        by_host: ``{host: {"any": [ids], "completed": [ids], "characters": [ids]}}`` job ids per host for id
            parameters (``characters``: ids of characters made by the host's ``character_create`` operation).
        reasons: ``{what: why}`` for fixtures that could not be made (``"sources"``, ``"jobs"``, ``"fresh"``).
    """

    jobs: list[Job] = field(default_factory=list)
    completed: list[Job] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    by_host: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    seed_meta: dict[str, dict] = field(default_factory=dict)  # source id -> {"seconds", "size"} when known

    def ids(self, host: str, which: str) -> list[str]:
        return list((self.by_host.get(host) or {}).get(which) or [])


def wait_terminal(driver: Driver, job: Job, timeout: float) -> bool:
    """Poll ``job`` (honouring hints) until a terminal status, its deadline (``--job-timeout`` from its
    creation, or ``timeout`` seconds from now if it has none) or an answer that cannot be followed (an error,
    a body without a status: ``job.lost`` says why); True when terminal. The lifecycle checks judge every
    observation later (:meth:`conformance.lifecycle.Monitor.adopt`)."""
    if not driver.supports("poll"):
        return job.terminal
    deadline = job.deadline or (time.monotonic() + timeout)
    while not job.ended and job.lost is None and time.monotonic() < deadline:
        snap = driver.poll(job)
        if snap.http_status >= 400 and snap.http_status not in (429, 503):
            job.lost = f"its status answered {snap.http_status}"
            return False
        if 200 <= snap.http_status < 300 and not snap.not_modified and snap.status is MISSING and not snap.neutral:
            job.lost = "its status answer carries no status field"
            return False
        if not job.ended:
            driver.sleep(0.005)
    return job.ended


def generate_ops(driver: Driver):
    return [op for op in driver.creators("generate")
            if op.kind_for({}) == "generate" or isinstance(op.kind, dict)]


def submit_generate(run: ProviderRun, driver: Driver, *, keep: bool, fail: bool = False, hold: bool = False,
                    rng: random.Random | None = None) -> Job | None:
    """Submit one generate job through ``driver`` (None when the host has no generate operation). On a paid
    target the request asks for the cheapest duration and size the contract allows. ``fail``/``hold``: mock
    controls (see :meth:`conformance.drivers.Driver.mock_headers`)."""
    ops = generate_ops(driver)
    if not ops:
        return None
    rng = rng or run.rng
    req = build(run.contract, ops[0], "generate", keep_output=keep, rng=rng, cheapest=not run.target.free)
    return driver.submit(req, fail=fail, hold=hold)


def source_is_job_id(contract) -> bool:
    """True when a remix source id is a job id of the provider (OpenAI's video ids, sunra's request ids,
    aigateway's job ids), False when outputs carry their own id field named like the ``x-source`` token
    (fal's output ``video_id``). Read from the contract: the token appearing as a property of a 200 answer."""
    from specs.validate import resolve_pointer

    from . import schema as sch

    tokens = set()
    for op in contract.operations():
        src = op.source or {}
        if src.get("in") == "path":
            return True
        if src.get("in") == "body":
            tokens.add(src.get("pointer", "").rstrip("/").split("/")[-1])
    for op in contract.operations():
        if op.role in ("result", "run", "retrieve", "status"):
            ptr = sch.response_schema(contract, op, 200)
            if ptr and tokens & set(sch.properties(contract.openapi, resolve_pointer(contract.openapi, ptr))):
                return False
    return True


def build_pool(run: ProviderRun) -> Pool:
    """Create the fixture jobs of ``run``'s provider (see module docstring). Never raises for a provider
    fault: what cannot be made is explained in ``pool.reasons`` (and reported by the checks that need it)."""
    pool = Pool()
    rng = random.Random(sub_seed(run.config.seed, run.id, "pool"))
    user = run.config.source_video_ids.get(run.id)
    if user:
        pool.sources.append(user)
        if source_is_job_id(run.contract):  # the user's video is also a job to retrieve (free checks)
            for d in run.drivers:
                if d.supports("poll"):
                    entry = pool.by_host.setdefault(d.host, {})
                    entry.setdefault("any", []).append(user)
                    entry.setdefault("completed", []).append(user)
    allowed, why = run.can_spend()
    creating: list[tuple[Driver, Job]] = []
    if allowed:
        for driver in run.drivers:
            if not generate_ops(driver):
                continue
            n = 2 if (run.target.free or not driver.supports("poll")) else 1
            for i in range(n):
                try:
                    job = submit_generate(run, driver, keep=True, rng=rng)
                except (BodyError, DriverError, SpendBlocked) as exc:
                    pool.reasons.setdefault("jobs", f"{driver.host}: {exc}")
                    break
                if job is None or not job.submit.ok:
                    if job is not None:
                        pool.reasons.setdefault("jobs", f"{driver.host}: generate answered {job.submit.status}")
                    break
                creating.append((driver, job))
                if i == 0 and run.target.ours and driver.supports("poll"):
                    # a failed job and a job held queued, for retrieval in every state (mock only)
                    for fail in (True, False):
                        try:
                            extra = submit_generate(run, driver, keep=False, fail=fail, hold=not fail, rng=rng)
                        except (BodyError, DriverError, SpendBlocked):
                            extra = None
                        if extra is not None and extra.submit.ok and extra.id:
                            pool.jobs.append(extra)
                            pool.by_host.setdefault(driver.host, {}).setdefault("any", []).append(extra.id)
    else:
        pool.reasons["jobs"] = why
    for driver, job in creating:
        pool.jobs.append(job)
        if job.id:
            pool.by_host.setdefault(driver.host, {}).setdefault("any", []).append(job.id)
        try:
            done = wait_terminal(driver, job, run.config.job_timeout)
        except (DriverError, SpendBlocked) as exc:
            pool.reasons.setdefault("jobs", str(exc))
            job.lost = str(exc)
            if isinstance(exc, DriverError) and exc.timed_out and run.halted is None:
                run.halted = f"the target did not answer in time ({exc})"
            continue
        if not done or job.final != "completed":
            pool.reasons.setdefault("jobs", f"fixture job {job.id} did not complete "
                                    f"(last status {job.last.status if job.last else None!r})")
            if not done and run.halted is None:  # the target does not finish jobs: make no more
                run.halted = (f"fixture job {job.label()} {'could not be followed: ' + job.lost if job.lost else 'did not end within --job-timeout'}")
            continue
        try:
            job.result = driver.result(job)
        except (DriverError, SpendBlocked) as exc:
            pool.reasons.setdefault("jobs", str(exc))
            continue
        if job.result.answer.ok:
            pool.completed.append(job)
            if job.id:
                pool.by_host.setdefault(driver.host, {}).setdefault("completed", []).append(job.id)
            sid = job.source_id or job.id
            if sid and sid not in pool.sources:
                pool.sources.append(sid)
                pool.seed_meta[sid] = dict(job.result.declared)
    if not pool.sources and run.target.ours and run.target.mock_root:
        for size in ("1280x720", "720x1280"):
            try:
                seeded = run.target.admin("POST", "videos", {"provider": run.id, "seconds": 4, "size": size})
            except Exception as exc:  # the admin API is optional for a mock behind a proxy
                pool.reasons.setdefault("sources", f"mock admin seed failed: {exc}")
                break
            sid = seeded.get("id") if isinstance(seeded, dict) else None
            if sid:
                pool.sources.append(sid)
                w, h = size.split("x")
                pool.seed_meta[sid] = {"width": int(w), "height": int(h), "seconds": 4.0}
    if allowed:
        _characters(run, pool)
    if not pool.sources:
        pool.reasons.setdefault("sources", "no completed source video: give --source-video-id "
                                f"{run.id}=ID (or allow spend to generate one)")
    return pool


#: Name of the fixture character (1..80 characters, the contract's bound).
CHARACTER_NAME = "Conformance character"


def _characters(run: ProviderRun, pool: Pool) -> None:
    """One character per host whose driver can make characters (role ``character_create``), from the suite's
    sample MP4 (``conformance/samples/upload.mp4``); its id addresses ``character_retrieve`` operations. What
    cannot be made is explained in ``pool.reasons["characters"]``."""
    from pathlib import Path

    video = (Path(__file__).with_name("samples") / "upload.mp4").read_bytes()
    for driver in run.drivers:
        if not driver.supports("characters"):
            continue
        try:
            ans = driver.create_character(CHARACTER_NAME, video)
        except (DriverError, SpendBlocked) as exc:
            pool.reasons.setdefault("characters", f"{driver.host}: {exc}")
            continue
        cid = ans.body.get("id") if ans.ok and isinstance(ans.body, dict) else None
        if isinstance(cid, str) and cid:
            pool.by_host.setdefault(driver.host, {}).setdefault("characters", []).append(cid)
        else:
            pool.reasons.setdefault("characters", f"{driver.host}: character_create answered {ans.status}")
