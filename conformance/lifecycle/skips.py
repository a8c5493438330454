"""Why a lifecycle check did not evaluate: worded from what the check requires (``requires`` in its
registration) and what the run observed, so that every case has its own true words: a property the
contract does not have; a field no observed job carried; a state never reached within the time bound; an
operation the spend guard blocked; a target that completed jobs too fast to observe them active; a run that
stopped early.
"""

from __future__ import annotations

from .. import schema as sch
from ..context import ProviderRun
from ..drivers.base import TERMINAL
from ..registry import lookup


def _job_fields(run: ProviderRun) -> set[str]:
    """Property names of the job objects the poll operations return (from the contract), plus the neutral
    names provider.yaml ``fields`` maps onto one of them (``progress`` for a provider that calls it
    ``percent``)."""
    from specs.validate import resolve_pointer

    out: set[str] = set()
    for d in run.drivers:
        for role in ("retrieve", "status"):
            for op in d.ops.get(role, []):
                ptr = sch.response_schema(run.contract, op, 200)
                if ptr:
                    out |= set(sch.properties(run.contract.openapi, resolve_pointer(run.contract.openapi, ptr)))
    mapped = {name for name, ptr in run.contract.job_fields().items() if ptr.strip("/").split("/")[0] in out}
    if mapped & {"created", "started", "completed", "expires"}:
        mapped.add("created_at")  # a mapped timestamp counts as a timestamp
    if "lineage" in mapped:
        mapped.add("remixed_from")
    return out | mapped


_ROLE_OF = {"cancel": "cancel", "list": "list", "delete": "delete", "stream": "status_stream"}


def structural_reason(run: ProviderRun, requires: dict) -> str | None:
    """Why the provider's contract (or the target) cannot give what a check ``requires``; None when it can."""
    roles = {r for d in run.drivers for r, ops in d.ops.items() if ops}
    cap = requires.get("capability")
    if cap == "poll" and not any(d.supports("poll") for d in run.drivers):
        return "synchronous protocol: there is no job status to observe"
    if cap == "remix" and not any(d.creators("remix") for d in run.drivers):
        return "the contract has no remix operation"
    if cap == "extend" and not any(d.supports("extend") for d in run.drivers):
        return "the contract has no extend operation"
    if cap in _ROLE_OF and not any(d.supports(cap) for d in run.drivers):
        return f"the contract has no {_ROLE_OF[cap]} operation"
    if requires.get("role") and requires["role"] not in roles:
        return f"the contract has no {requires['role']} operation"
    fields = _job_fields(run)
    if requires.get("field") and requires["field"] not in fields:
        return f"the contract's job object has no {requires['field']}"
    if requires.get("field_suffix") and not any(f.endswith(requires["field_suffix"]) or f == "created"
                                                for f in fields):
        return "the contract's job object has no timestamps"
    if requires.get("field_prefix") and not any(f.startswith(requires["field_prefix"]) for f in fields):
        return "the contract's job object has no lineage field"
    if requires.get("output_request") and not roles & {"result", "content"}:
        return "the output comes with the job (no separate request for it)"
    if requires.get("hint") and not any(d.poll_hint_headers for d in run.drivers):
        return "the contract declares no poll hint header (Retry-After only comes with a 429/503)"
    if requires.get("ours") and not run.target.ours:
        return "no job failed (failures can be forced only on our mock)"
    if requires.get("webhook"):
        from ..webhooks import callback_of, project_webhooks

        per_request = any(callback_of(run.contract, op) for op in run.contract.operations())
        if not per_request and not project_webhooks(run.contract):
            return "the contract declares no webhook"
        if run.target.receiver is None:
            return ("webhooks are checked only when every host of the target is on this machine (a remote "
                    "provider cannot reach the suite's receiver)")
        if not per_request and run.id not in run.target.project_webhooks:
            return ("project webhooks go to the URL the target was started with (e.g. mockserver serve "
                    "--openai-webhook-url); the suite cannot set it")
    return None


def skip_reason(run: ProviderRun, name: str) -> str:
    """Why the lifecycle check ``name`` did not evaluate for this provider, in words that say which case it is
    (see the module docstring), from what the check ``requires`` (its registration) and what the run saw."""
    check = lookup(name)
    requires = dict(check.requires) if check is not None else {}
    reason = structural_reason(run, requires)
    if reason:
        return reason
    if requires.get("metadata"):
        return "no downloaded asset came with declared metadata (file_size, width, height, duration)"
    if run.stopped:
        return f"not reached: the run stopped early ({run.control.reason})"
    seen = run.seen
    jobs = len(seen["first"])
    blocked = (run.guard.ledger.blocked if run.guard is not None else {}) or {}
    if not seen["ids"] and not seen["first"]:
        if blocked:
            return "not reached: the spend guard refused the paid requests that create jobs (" + \
                "; ".join(sorted(blocked)) + ")"
        if run.halted:
            return f"not reached: no job could be created or followed ({run.halted})"
        return "not reached: no job was created (every create was refused)"
    field = requires.get("field")
    if field and field not in seen["fields"]:
        return (f"no observed job carried {field} (the contract declares it; the target never sent it in {jobs} "
                "job(s))")
    state = requires.get("state")
    if state == "completed" and "completed" not in seen["states"]:
        return f"not reached: no job completed within --job-timeout {run.config.job_timeout:g} s"
    if state == "terminal" and not seen["states"] & set(TERMINAL):
        return f"not reached: no job ended within --job-timeout {run.config.job_timeout:g} s"
    if state == "active":
        active = [s for s in seen["first"].values() if s and not all(n in TERMINAL for n in s)]
        if seen["first"] and not active and not run.target.ours:
            return (f"not reached: the target completed every job before it was first observed ({jobs} job(s) "
                    "first seen terminal): there was no queued or running job to act on")
    if run.halted:
        return f"not reached: no more jobs were created after {run.halted}"
    if blocked or not run.can_spend()[0]:
        why = run.can_spend()[1] or "; ".join(sorted(blocked))
        return f"not reached: the spend guard allowed no more jobs ({why})"
    if requires.get("hint"):
        return "the target sent no poll hint header on any answer"
    if requires.get("capability") == "delete":
        return "not reached: no delete was sent (no completed job was left to delete)"
    return "not reached in this run (the random rules did not produce this situation; try --lifecycle-runs N)"
