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

from .context import ProviderRun, RunConfig, op_label
from .http import Client
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


def run_provider(run: ProviderRun, progress: Progress) -> None:
    """All selected checks of one provider, in order: document, fixtures, contract, lifecycle."""
    from .contract_checks import run_contract
    from .document import run_documents
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
    if "contract" in cats:
        progress(run.id, "contract checks")
        run_contract(run)
    if "lifecycle" in cats:
        progress(run.id, "lifecycle state machine")
        run_lifecycle(run)
    progress(run.id, "done")


def execute(config: RunConfig, target: Target, *, progress: Progress = _noop, client_hooks: list | None = None,
            parallel: bool = True, listener: Callable[[str, str, str], None] | None = None) -> Results:
    """Run every selected check of ``config.providers`` against ``target``.

    Args:
        progress: ``(provider, phase text)`` callback for live progress.
        client_hooks: functions called with every :class:`~conformance.http.Exchange` (recording).
        listener: ``(provider, check, "pass"|"fail")`` callback for every evaluation.

    Returns:
        The :class:`Results`; ``results.internal_errors`` lists crashes of the suite itself (bugs), which the
        CLI treats as failures.
    """
    contracts = {pid: specs.load(pid) for pid in config.providers}
    if parallel and len(config.providers) > 1:
        serialize_ast_parse()
        import warnings

        # hypothesis flags any use of the global `random` module while it draws; with providers in threads,
        # another thread's use (HTTP libraries, the embedded mock) trips it although no strategy uses it
        warnings.filterwarnings("ignore", message=".*Do not use the `random` module inside strategies.*")
    guard = SpendGuard(target, contracts, allow_spend=config.allow_spend, max_spend_usd=config.max_spend_usd)
    client = Client(guard=guard, timeout=config.timeout, trust_env=not target.loopback,
                    pool=max(32, config.workers * len(config.providers)))
    for pid, creds in target.credentials.items():
        scope = [u for (p, _h), u in target.hosts.items() if p == pid]
        client.add_secret(creds.key, f"${creds.env}", scope=scope)
    client.hooks.extend(client_hooks or [])
    results = Results(config.checks, config.providers, config.seed)
    if listener is not None:
        results.listeners.append(listener)
    results.target = target.describe()
    for note in target.notes:
        results.note(note.split(":")[0], note)
    from .drivers import drivers_for

    runs = [ProviderRun(contracts[pid], target, client, guard, results, config,
                        drivers_for(contracts[pid], target, client)) for pid in config.providers]
    lock = threading.Lock()

    def one(run: ProviderRun) -> None:
        try:
            run_provider(run, progress)
        except Exception as exc:  # a bug in the suite: reported, other providers go on
            with lock:
                results.internal_errors.append(f"{run.id}: {type(exc).__name__}: {exc}")
            results.note(run.id, "internal error: " + "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__))[-2000:])
            progress(run.id, f"internal error: {exc}")

    if parallel and len(runs) > 1:
        with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="provider") as pool:
            list(pool.map(one, runs))
    else:
        for r in runs:
            one(r)
    results.finished = time.monotonic()
    results.spend = guard.ledger.to_json()
    results.requests = client.count
    client.close()
    return results


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
    from .spend import SpendGuard, requested_seconds

    contracts = {pid: specs.load(pid) for pid in config.providers}
    guard = SpendGuard(target, contracts, allow_spend=config.allow_spend, max_spend_usd=config.max_spend_usd)
    cats = {c.category for c in config.checks}
    rows: list[PlanRow] = []
    for pid, c in contracts.items():
        price = c.price_per_second_usd
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
            if not config.allow_spend:
                rows.append(PlanRow(pid, op_label(c, op), False, 0, 0.0,
                                    "x-billable: needs --allow-spend"))
                continue
            n = config.paid_examples
            est = None if price is None else n * requested_seconds(c, {}) * price
            rows.append(PlanRow(pid, op_label(c, op), price is not None, n, est,
                                "paid" if price is not None else "no price in provider.yaml: blocked"))
        if "lifecycle" in cats:
            ok, why = guard.can_spend(pid)
            if target.free:
                rows.append(PlanRow(pid, "lifecycle state machine", True, 0, 0.0,
                                    f"{config.lifecycle_runs} runs x {config.lifecycle_steps} steps"))
            elif not ok:
                rows.append(PlanRow(pid, "lifecycle state machine", False, 0, 0.0, why))
            else:
                n = config.lifecycle_runs * config.lifecycle_steps + 2
                est = n * 8 * float(price)
                rows.append(PlanRow(pid, "lifecycle state machine", True, n, est,
                                    f"at most {n} jobs; stops at --max-spend-usd {config.max_spend_usd:g}"))
    return rows


def plan_total(rows: list[PlanRow], cap: float) -> float:
    total = sum(r.est_usd or 0.0 for r in rows if r.runs)
    return min(total, cap)


def render_plan(rows: list[PlanRow], config: RunConfig, target: Target, console: Any) -> None:
    from rich.table import Table

    t = Table(title=f"Plan (dry run) against {target.label}", title_justify="left")
    for col in ("provider", "what", "runs", "paid requests", "est. USD", "note"):
        t.add_column(col, justify="right" if col in ("paid requests", "est. USD") else "left")
    for r in rows:
        from rich.text import Text

        t.add_row(r.provider, Text(r.item), "yes" if r.runs else "no", str(r.paid_requests),
                  "?" if r.est_usd is None else f"{r.est_usd:.2f}", Text(r.why))
    console.print(t)
    total = plan_total(rows, config.max_spend_usd if not target.free else 0.0)
    console.print(f"Estimated cost: ${total:.2f} (cap --max-spend-usd {config.max_spend_usd:g}; "
                  f"{'free: the target is the mock' if target.free else 'target is not the mock'})")
