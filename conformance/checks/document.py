"""Document checks: the vendored contract documents themselves, no request sent.

They reuse specs/validate.py (``spec_errors``, ``unresolved_refs``, ``example_problems``) and check that each
contract is consistent with its provider.yaml, following docs/contracts.md (the authoring convention).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from specs import Contract
from specs import validate as sv
from specs.families import roles_by_family

from .. import schema as sch
from ..context import ProviderRun
from ..registry import check

ROLES = roles_by_family()  # family -> its operation roles (specs/families.py)


@check("spec_valid", "document", "The contract, and each host's flattened view of it, is valid OpenAPI 3.1, and "
       "its expectation annotations (x-mock-only, x-assumption) are well formed.")
def spec_valid(run: ProviderRun) -> None:
    c = run.contract
    for label, doc in [("openapi.yaml", c.openapi)] + [(f"host {h['id']}", c.host_document(h["id"])) for h in c.hosts]:
        errs = sv.spec_errors(doc)
        run.expect("spec_valid", not errs, f"{label}: {errs[0] if errs else ''}", operation=label)
    problems = sv.annotation_problems(c.openapi)
    run.expect("spec_valid", not problems, f"openapi.yaml: {problems[0] if problems else ''}", operation="annotations")


@check("refs_resolve", "document", "Every $ref of the contract resolves inside the document.")
def refs_resolve(run: ProviderRun) -> None:
    bad = sv.unresolved_refs(run.contract.openapi)
    run.expect("refs_resolve", not bad, f"{len(bad)} unresolved $ref, e.g. {bad[0] if bad else ''}")


@check("examples_valid", "document", "Every example validates against its schema (or is a recorded doc defect "
       "that really fails), and every x-source quote is found in its source file.")
def examples_valid(run: ProviderRun) -> None:
    problems = sv.example_problems(run.contract.openapi)
    n = sum(1 for _ in sv.iter_examples(run.contract.openapi))
    for p in problems:
        run.fail("examples_valid", p, operation=p.split(":")[0])
    if n - len(problems) > 0:
        run.ok("examples_valid", n - len(problems))


@check("provider_consistency", "document", "The contract agrees with provider.yaml: hosts and servers, x-role of "
       "each host's family, x-source/x-model where needed, status values, auth scheme, error envelopes, and an "
       "error response on every operation.")
def provider_consistency(run: ProviderRun) -> None:
    for where, problem in consistency_problems(run.contract):
        if problem:
            run.fail("provider_consistency", problem, operation=where)
        else:
            run.ok("provider_consistency")


def consistency_problems(c: Contract) -> list[tuple[str, str | None]]:
    """``[(where, problem or None)]``: one entry per assertion (None = holds). See provider_consistency."""
    out: list[tuple[str, str | None]] = []
    ops = c.operations()
    ids = [o.operation_id for o in ops]
    out.append(("operations", None if len(ids) == len(set(ids)) else "operationId values are not unique"))
    served = {o.host for o in ops}
    hosts = {h["id"] for h in c.hosts}
    out.append(("hosts", None if served == hosts else
                f"hosts serving operations {sorted(served)} differ from provider.yaml hosts {sorted(hosts)}"))
    top = (c.openapi.get("servers") or [{}])[0].get("url", "")
    out.append(("servers", None if urlsplit(top).netloc == urlsplit(c.hosts[0]["base_url"]).netloc else
                f"top-level server {top!r} is not the primary host {c.hosts[0]['base_url']!r}"))
    for o in ops:
        family = c.host(o.host)["family"]
        where = o.operation_id
        out.append((where, None if o.role in ROLES.get(family, set()) else
                    f"x-role {o.role!r} is not a role of the {family} family"))
        if o.sourced:
            out.append((where, None if (o.source or {}).get("in") in ("path", "body") else
                        "a remix or extension operation needs x-source {in: path|body}"))
        if o.role == "submit" and family == "queue":
            out.append((where, None if o.model else "a queue submit needs x-model"))
        codes = [k for k in (o.definition.get("responses") or {}) if re.match(r"^[45]", str(k))]
        out.append((where, None if codes else "declares no 4xx/5xx response"))
    neutrals = {s["neutral"] for s in c.provider["statuses"]}
    missing = {"queued", "in_progress", "completed", "failed"} - neutrals
    out.append(("statuses", None if not missing else f"provider.yaml maps no status onto {sorted(missing)}"))
    text = repr(c.openapi)
    for entry in c.provider["statuses"]:
        out.append(("statuses", None if repr(entry["value"]) in text else
                    f"status {entry['value']!r} of provider.yaml does not appear in the contract"))
    out.append(("auth", _auth_problem(c)))
    doc = c.openapi
    for kind in c.provider["errors"]["kinds"]:
        if kind == "generation_failed":
            continue
        status, body = c.error_body(kind, message="example message", param="prompt")
        checked = 0
        for o in ops:
            ptr = sch.response_schema(c, o, status)
            if not ptr:
                continue
            errs = sv.schema_errors(doc, ptr, body)
            checked += 1
            out.append((f"errors.kinds.{kind}", None if not errs else
                        f"{kind} rendered as {status} does not match {o.operation_id}'s schema: {errs[0]}"))
    return out


def _auth_problem(c: Contract) -> str | None:
    auth = c.auth
    schemes = (c.openapi.get("components") or {}).get("securitySchemes") or {}
    header = auth["header"].lower()
    for s in schemes.values():
        if s.get("type") == "apiKey" and s.get("in") == "header" and str(s.get("name", "")).lower() == header:
            return None
        if s.get("type") == "http" and header == "authorization":
            return None
    return f"no securityScheme describes the {auth['header']} header of provider.yaml auth"
