"""Drift findings, reports and their renderers (text, JSON, JUnit XML, Markdown).

A :class:`Finding` is one difference, classed for clients of the provider:

- ``breaking``: a client written against the contract can fail (a missing required field, a changed type,
  a status or enum value it does not know, a removed operation, a new required request field ...);
- ``non-breaking``: the wire changed but a correct client keeps working (an undocumented extra field, a
  new optional request field, an undocumented error status ...);
- ``info``: worth knowing, no client impact (an undocumented infrastructure-free header, a deprecation ...).

The same format serves observed drift (traffic vs contract, ``kind="drift"``) and contract diffs
(``kind="diff"``). ``--fail-on`` thresholds: ``breaking`` (fail on breaking findings), ``non-breaking``
(breaking or non-breaking), ``any`` (any finding, info included), ``none`` (never fail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

SEVERITIES = ("breaking", "non-breaking", "info")
_RANK = {"breaking": 0, "non-breaking": 1, "info": 2}
FAIL_ON = ("breaking", "non-breaking", "any", "none")
FORMATS = ("text", "json", "junit", "markdown")
REPORT_VERSION = 1


@dataclass
class Finding:
    """One difference between observed traffic (or a new contract) and the contract.

    Attributes:
        kind: what changed (``undocumented_field``, ``missing_required_field``, ``type_change``,
            ``new_enum_value``, ``undocumented_status``, ``undocumented_content_type``, ``header_change``,
            ``lifecycle_new_state``, ``operation_removed`` ...; see ``KINDS`` in observed.py / specdiff.py).
        severity: ``breaking`` | ``non-breaking`` | ``info``.
        operation: the operationId (or ``METHOD /path``, or ``(contract)`` for document-level changes).
        pointer: where: a JSON pointer into the observed message (``/response/body/progress``) or into the
            contract (``#/paths/~1videos/post/...``).
        message: one human-readable sentence.
        example: the observed example (value, interaction seq and request line), or the old/new values.
        count: how many times it was observed (duplicates are merged).
    """

    kind: str
    severity: str
    operation: str
    pointer: str
    message: str
    example: Any = None
    count: int = 1

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "operation": self.operation,
                "pointer": self.pointer, "message": self.message, "example": self.example, "count": self.count}


@dataclass
class Report:
    """Findings of one drift or diff run.

    Attributes:
        kind: ``drift`` (observed vs contract) or ``diff`` (contract vs contract).
        title: one line naming what was compared.
        subject: details (provider, cassettes, contract paths, interactions checked).
        operations: operations that were checked (observed in traffic, or present in either contract).
        findings: the findings, merged (duplicates counted).
    """

    kind: str
    title: str
    subject: dict[str, Any] = field(default_factory=dict)
    operations: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding, key: tuple | None = None) -> Finding:
        """Add a finding, merging it into an existing one with the same key (kind, operation, pointer,
        message by default): the count grows and the first example is kept."""
        key = key or (finding.kind, finding.operation, finding.pointer, finding.message)
        index = self.__dict__.setdefault("_index", {})
        existing = index.get(key)
        if existing is not None:
            existing.count += finding.count
            return existing
        index[key] = finding
        self.findings.append(finding)
        return finding

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (_RANK[f.severity], f.operation, f.pointer, f.kind))

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            out[f.severity] += 1
        return out

    def fails(self, fail_on: str) -> bool:
        """True when a finding reaches the ``--fail-on`` threshold (see the module docstring)."""
        if fail_on not in FAIL_ON:
            raise ValueError(f"--fail-on must be one of {', '.join(FAIL_ON)}")
        if fail_on == "none":
            return False
        limit = {"breaking": 0, "non-breaking": 1, "any": 2}[fail_on]
        return any(_RANK[f.severity] <= limit for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {"report_version": REPORT_VERSION, "kind": self.kind, "title": self.title,
                "subject": self.subject, "summary": self.counts(), "operations": list(self.operations),
                "findings": [f.to_json() for f in self.sorted_findings()]}


def merge_reports(reports: list[Report], title: str | None = None) -> Report:
    """Combine several reports of the same kind (several cassettes) into one."""
    if len(reports) == 1:
        return reports[0]
    out = Report(kind=reports[0].kind if reports else "drift", title=title or "; ".join(r.title for r in reports))
    out.subject = {"parts": [r.subject for r in reports]}
    for r in reports:
        for op in r.operations:
            if op not in out.operations:
                out.operations.append(op)
        for f in r.findings:
            out.add(Finding(**f.to_json()))
    return out


# -- renderers ----------------------------------------------------------------------------------------
def _example_text(example: Any, limit: int = 300) -> str:
    if example is None:
        return ""
    text = json.dumps(example, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def render_text(report: Report) -> str:
    """Plain text for terminals and logs."""
    c = report.counts()
    lines = [f"{report.title}",
             f"{len(report.operations)} operation(s) checked; findings: {c['breaking']} breaking, "
             f"{c['non-breaking']} non-breaking, {c['info']} info"]
    for f in report.sorted_findings():
        times = f" (x{f.count})" if f.count > 1 else ""
        lines.append(f"  [{f.severity}] {f.operation}: {f.kind} at {f.pointer}{times}")
        lines.append(f"      {f.message}")
        ex = _example_text(f.example)
        if ex:
            lines.append(f"      example: {ex}")
    if not report.findings:
        lines.append("  no drift")
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    """The report as indented JSON (``Report.to_json``)."""
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False, default=str) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """GitHub-flavoured Markdown (for PR comments and job summaries)."""
    c = report.counts()
    out = [f"## {_md(report.title)}", "",
           f"**{c['breaking']} breaking**, {c['non-breaking']} non-breaking, {c['info']} info "
           f"across {len(report.operations)} operation(s).", ""]
    if not report.findings:
        out.append("No drift.")
        return "\n".join(out) + "\n"
    out += ["| severity | operation | kind | where | message | example | count |",
            "|---|---|---|---|---|---|---|"]
    for f in report.sorted_findings():
        ex = _example_text(f.example, 160)
        out.append(f"| {f.severity} | `{_md(f.operation)}` | {f.kind} | `{_md(f.pointer)}` | {_md(f.message)} | "
                   f"{'`' + _md(ex) + '`' if ex else ''} | {f.count} |")
    return "\n".join(out) + "\n"


def render_junit(report: Report, fail_on: str = "breaking") -> str:
    """JUnit XML: one testcase per finding (a ``<failure>`` when it reaches ``fail_on``, else passing with
    the finding in ``<system-out>``) and one passing testcase per checked operation without findings."""
    limit = {"breaking": 0, "non-breaking": 1, "any": 2, "none": -1}[fail_on]
    cases = []
    failures = 0
    with_findings = set()
    for f in report.sorted_findings():
        with_findings.add(f.operation)
        name = f"{f.kind} {f.pointer}"
        body = f"{f.message}\nexample: {_example_text(f.example, 2000)}\ncount: {f.count}"
        if _RANK[f.severity] <= limit:
            failures += 1
            inner = (f"<failure type={quoteattr(f.severity)} message={quoteattr(f.message)}>"
                     f"{escape(body)}</failure>")
        else:
            inner = f"<system-out>{escape(f'[{f.severity}] ' + body)}</system-out>"
        cases.append(f'    <testcase classname={quoteattr(f"{report.kind}.{f.operation}")} '
                     f'name={quoteattr(name)}>{inner}</testcase>')
    for op in report.operations:
        if op not in with_findings:
            cases.append(f'    <testcase classname={quoteattr(f"{report.kind}.{op}")} name="no drift"/>')
    head = (f'<testsuite name={quoteattr(report.title)} tests="{len(cases)}" failures="{failures}" '
            f'errors="0" skipped="0">')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n  ' + head + "\n" + "\n".join(cases)
            + "\n  </testsuite>\n</testsuites>\n")


def render(report: Report, fmt: str, fail_on: str = "breaking") -> str:
    """Render a report in one of :data:`FORMATS`. Raises ValueError for an unknown format."""
    if fmt == "text":
        return render_text(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "junit":
        return render_junit(report, fail_on)
    if fmt in ("markdown", "md"):
        return render_markdown(report)
    raise ValueError(f"unknown report format {fmt!r} (formats: {', '.join(FORMATS)})")


__all__ = ["FAIL_ON", "FORMATS", "SEVERITIES", "Finding", "Report", "merge_reports", "render",
           "render_json", "render_junit", "render_markdown", "render_text"]
