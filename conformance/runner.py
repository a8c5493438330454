"""Orchestration of a run: resolve the target, then per provider (providers run concurrently) the document
checks, the fixture jobs, the contract checks and the lifecycle state machine; collect a :class:`Results`.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import specs

from .context import ProviderRun, RunConfig, RunControl, op_label
from .http import Client, RunStopped
from .results import Results
from .spend import SpendGuard
from .target import Target

Progress = Callable[[str, str], None]  # (provider, phase text)


def _noop(provider: str, text: str) -> None:
    pass


_AST_LOCK = threading.Lock()


def serialize_ast_parse() -> None:
    """Make ``ast.parse`` thread-safe (idempotent, process-wide).

    hypothesis parses source code with ``ast.parse`` (lambda descriptions, test digests); on CPython 3.11
    two threads doing so at once can fail with ``SystemError: AST constructor recursion depth mismatch``.
    Providers run in threads, so every ``ast.parse`` is serialized behind one lock (parsing is short and
    CPU-bound under the GIL anyway).
    """
    import ast

    if getattr(ast.parse, "_conformance_locked", False):
        return
    original = ast.parse

    def parse(*args: Any, **kwargs: Any):
        with _AST_LOCK:
            return original(*args, **kwargs)

    parse._conformance_locked = True
    ast.parse = parse


def run_documents(run: ProviderRun) -> None:
    """Run the selected document checks of one provider; a check that crashes is a suite error."""
    for c in run.results.checks:
        if c.category == "document" and c.fn is not None:
            try:
                c.fn(run)
            except Exception as exc:  # the check itself crashed: a suite error, not a finding
                run.suite_error("check_crashed", f"{c.name} could not check the document: {type(exc).__name__}: "
                                f"{exc}", check=c.name)


def run_provider(run: ProviderRun, progress: Progress) -> None:
    """All selected checks of one provider, in order: document, fixtures, lifecycle, contract."""
    from .cases import run_contract
    from .fixtures import Pool, build_pool
    from .lifecycle import run_lifecycle

    cats = {c.category for c in run.results.checks}
    run.progress = lambda text: progress(run.id, text)
    if "document" in cats:
        progress(run.id, "document checks")
        run_documents(run)
    if not run.drivers:
        run.results.skip_all(run.id, "the target has no URL for any host of this provider", "contract")
        run.results.skip_all(run.id, "the target has no URL for any host of this provider", "lifecycle")
        return
    if cats & {"contract", "lifecycle"}:
        progress(run.id, "fixture jobs")
        run.pool = build_pool(run)
    else:
        run.pool = Pool()
    # the lifecycle first: on a paid target it is where the budget's jobs are followed and judged; the
    # contract phase's paid examples get what is left
    if "lifecycle" in cats:
        progress(run.id, "lifecycle state machine")
        run_lifecycle(run)
    if "contract" in cats:
        progress(run.id, "contract checks")
        run_contract(run)
    for c in run.results.checks:  # every skip says why (a check no response applied to)
        run.skip(c.name, "not evaluated: no response or observation this check applies to was seen")
    progress(run.id, "done")


def execute(config: RunConfig, target: Target, *, progress: Progress = _noop, client_hooks: list | None = None,
            parallel: bool = True, listener: Callable[[str, str, str], None] | None = None,
            control: RunControl | None = None, results: Results | None = None) -> Results:
    """Run every selected check of ``config.providers`` against ``target``.

    Args:
        progress: ``(provider, phase text)`` callback for live progress.
        client_hooks: functions called with every :class:`~conformance.http.Exchange` (recording).
        listener: ``(provider, check, "pass"|"fail"|"note")`` callback for every evaluation.
        control: the run's stop flag and deadline (default: one bounded by ``config.max_time``); the CLI
            passes its own so that a signal can stop the run.
        results: the :class:`Results` to fill (the CLI creates it first so that a report can be written
            from it if the run is interrupted).

    Returns:
        The :class:`Results`; ``results.suite_errors`` lists what the suite itself could not do (never a
        conformance failure), ``results.stopped`` why the run ended early, if it did.
    """
    contracts = {pid: specs.load(pid) for pid in config.providers}
    if parallel and len(config.providers) > 1:
        serialize_ast_parse()
        import warnings

        # hypothesis flags any use of the global `random` module while it draws; with providers in threads,
        # another thread's use (HTTP libraries, the embedded mock) trips it although no strategy uses it
        warnings.filterwarnings("ignore", message=".*Do not use the `random` module inside strategies.*")
    control = control or RunControl(config.max_time)
    guard = SpendGuard.for_config(target, contracts, config)
    client = Client(guard=guard, timeout=config.timeout, trust_env=not target.loopback,
                    pool=max(32, config.workers * len(config.providers)), control=control)
    if target.receiver is None and target.loopback and target.hosts:
        from .webhooks import WebhookReceiver

        target.receiver = WebhookReceiver()  # per-request webhooks of jobs on a target on this machine
    if config.only_target_hosts:
        from urllib.parse import urlsplit

        client.allowed_netlocs = {urlsplit(u).netloc.lower() for u in target.hosts.values()}
    for pid, creds in target.credentials.items():
        scope = [u for (p, _h), u in target.hosts.items() if p == pid]
        client.add_secret(creds.key, f"${creds.env}", scope=scope)
    client.hooks.extend(client_hooks or [])
    results = results or Results(config.checks, config.providers, config.seed)
    results.spend_ledger = guard.ledger
    if listener is not None:
        results.listeners.append(listener)
    results.target = target.describe()
    for note in target.notes:
        results.note(note.split(":")[0], note)
    from .drivers import drivers_for

    runs = [ProviderRun(contracts[pid], target, client, guard, results, config,
                        drivers_for(contracts[pid], target, client, timeout=config.timeout,
                                    job_timeout=config.job_timeout), control) for pid in config.providers]

    def one(run: ProviderRun) -> None:
        try:
            run_provider(run, progress)
        except RunStopped:
            progress(run.id, f"stopped ({control.reason})")
        except Exception as exc:  # a bug in the suite: reported as a suite error, other providers go on
            if control.stopped:
                return  # a consequence of stopping (a half-made request), not a bug
            results.suite_error("internal", run.id, f"{type(exc).__name__}: {exc}\n" + "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__))[-2000:])
            progress(run.id, f"internal error: {exc}")

    if parallel and len(runs) > 1:
        with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="provider") as pool:
            list(pool.map(one, runs))
    else:
        for r in runs:
            one(r)
    if control.stopped:
        results.stopped = control.reason
        results.suite_error(control.reason or "interrupted", None, _STOPPED.get(control.reason or "", "stopped")
                            .format(t=config.max_time))
        for o in results.outcomes():
            if o.status == "skipped" and (o.skip_reason is None or o.skip_reason.startswith("not reached")):
                o.skip_reason = f"not reached: the run stopped early ({control.reason})"
    results.finished = time.monotonic()
    results.spend = guard.ledger.to_json()
    results.requests = client.count
    client.close()
    return results


_STOPPED = {"max_time": "the run reached --max-time {t:g} s; checks not reached are reported as skipped",
            "interrupted": "the run was interrupted; checks not reached are reported as skipped"}


@dataclass
class PlanRow:
    provider: str
    item: str
    runs: bool
    paid_requests: int
    est_usd: float | None
    why: str = ""


def plan(config: RunConfig, target: Target) -> list[PlanRow]:
    """What a run would do, without sending anything: per provider, which check groups and operations run,
    how many paid requests at most, and their estimated cost (USD; None when the price is unknown)."""
    from .spend import requested_seconds

    contracts = {pid: specs.load(pid) for pid in config.providers}
    guard = SpendGuard.for_config(target, contracts, config)
    cats = {c.category for c in config.checks}
    rows: list[PlanRow] = []
    for pid, c in contracts.items():
        price = guard.price(pid)
        if "document" in cats:
            rows.append(PlanRow(pid, "document checks", True, 0, 0.0))
        for op in c.operations():
            if target.base_url(pid, op.host) is None:
                rows.append(PlanRow(pid, op_label(c, op), False, 0, 0.0, "no URL for its host"))
                continue
            if "contract" not in cats:
                continue
            if not op.billable or target.free:
                rows.append(PlanRow(pid, op_label(c, op), True, 0, 0.0,
                                    "free" if target.free else "not billable"))
                continue
            seconds = requested_seconds(c, {})
            ok, why = guard.can_spend(pid, seconds)
            if not ok:
                rows.append(PlanRow(pid, op_label(c, op), False, 0, 0.0, why))
                continue
            n = config.paid_examples
            est = None if price is None else n * seconds * price
            rows.append(PlanRow(pid, op_label(c, op), True, n, est, "paid, within the budget"))
        if "lifecycle" in cats:
            ok, why = guard.can_spend(pid)
            if target.free:
                rows.append(PlanRow(pid, "lifecycle state machine", True, 0, 0.0,
                                    f"{config.lifecycle_runs} runs x {config.lifecycle_steps} steps"))
            elif not ok:
                rows.append(PlanRow(pid, "lifecycle state machine", False, 0, 0.0, why))
            else:
                n = config.lifecycle_runs * config.lifecycle_steps + 2
                if config.max_paid_jobs is not None:
                    n = min(n, config.max_paid_jobs)
                seconds = requested_seconds(c, {})
                if config.max_video_seconds is not None and seconds > 0:
                    n = min(n, int(config.max_video_seconds // seconds))
                est = None if price is None else n * seconds * price
                rows.append(PlanRow(pid, "lifecycle state machine", True, n, est,
                                    f"at most {n} jobs of {seconds:g} s; stops at the budget"))
    return rows


def plan_total(rows: list[PlanRow], cap: float | None) -> float | None:
    """Estimated USD of the paid rows (None when a paid row has no price), cut to ``cap`` when given."""
    if any(r.runs and r.paid_requests and r.est_usd is None for r in rows):
        return None
    total = sum(r.est_usd or 0.0 for r in rows if r.runs)
    return total if cap is None else min(total, cap)


def render_plan(rows: list[PlanRow], config: RunConfig, target: Target, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"Plan (dry run) against {target.label}", title_justify="left")
    for col in ("provider", "what", "runs", "paid requests", "est. USD", "note"):
        t.add_column(col, justify="right" if col in ("paid requests", "est. USD") else "left")
    for r in rows:
        t.add_row(r.provider, Text(r.item), "yes" if r.runs else "no", str(r.paid_requests),
                  "?" if r.est_usd is None else f"{r.est_usd:.2f}", Text(r.why))
    console.print(t)
    paid = sum(r.paid_requests for r in rows if r.runs)
    total = plan_total(rows, None if target.free else config.max_spend_usd)
    where = ("free: the target is our mock" if target.ours else "declared free (--free-target)" if target.free
             else "paid target")
    console.print(f"At most {paid} paid request(s); estimated cost: "
                  f"{'unknown (no price: give --usd-per-second)' if total is None else f'${total:.2f}'} ({where})",
                  highlight=False)
