"""Reports of a run: the rich summary table (check x provider), JUnit XML, JSON and Markdown.

Every failure carries the operation, the message, a curl command reproducing the request (credentials as
``$ENV`` references) and the run's hypothesis seed (``--seed``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .results import Outcome, Results

MARK = {"passed": "✓", "failed": "✗", "skipped": "–"}


def cell(o: Outcome) -> str:
    """Table cell text of an outcome: ``✓ 312``, ``✗ 2/315``, ``–``."""
    if o.status == "failed":
        return f"✗ {o.failed}/{o.failed + o.passed}"
    if o.status == "passed":
        return f"✓ {o.passed}"
    return "–"


def counts(results: Results) -> dict[str, int]:
    out = {"passed": 0, "failed": 0, "skipped": 0}
    for o in results.outcomes():
        out[o.status] += 1
    return out


def render_summary(results: Results, console) -> None:
    """Print the summary table, the per-operation example counts and the first failure of every failing
    check to a rich console."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Conformance summary (check × provider)", title_justify="left", show_lines=False)
    table.add_column("check", no_wrap=True)
    table.add_column("kind", style="dim", no_wrap=True)
    for p in results.providers:
        table.add_column(p, no_wrap=True, justify="right")
    for c in results.checks:
        row = [c.name, c.category]
        for p in results.providers:
            o = results.outcome(p, c.name)
            style = {"passed": "green", "failed": "bold red", "skipped": "dim"}[o.status]
            row.append(Text(cell(o), style=style))
        table.add_row(*row)
    console.print(table)

    ex = Table(title="Generated examples per operation", title_justify="left")
    ex.add_column("provider")
    ex.add_column("operation")
    ex.add_column("examples", justify="right")
    for (p, op), n in sorted(results.examples.items()):
        ex.add_row(p, Text(op), str(n))
    if results.examples:
        console.print(ex)

    failing = [o for o in results.outcomes() if o.failed]
    if failing:
        console.print(Text("Failures (first example of each failing check)", style="bold red"))
        for o in failing:
            f = o.failures[0]
            console.print(Text(f"✗ {o.provider} / {o.check}", style="bold red") +
                          Text(f"  ({o.failed} failing of {o.failed + o.passed})", style="dim"))
            if f.operation:
                console.print(f"  operation: {f.operation}", markup=False, highlight=False)
            console.print(f"  {f.message}", markup=False, highlight=False)
            if f.status is not None:
                console.print(f"  status: {f.status}  response: {(f.response or '')[:200]}", markup=False,
                              highlight=False)
            if f.curl:
                console.print(f"  reproduce: {f.curl[:1500]}", markup=False, highlight=False, soft_wrap=True)
            console.print(f"  seed: {f.seed}  (conformance run --provider {o.provider} --check {o.check} "
                          f"--seed {f.seed})", markup=False, highlight=False)
    skipped_reasons = {}
    for o in results.outcomes():
        if o.status == "skipped" and o.skip_reason:
            skipped_reasons.setdefault(o.skip_reason, []).append(f"{o.provider}/{o.check}")
    if skipped_reasons:
        console.print(Text("Skipped", style="bold"))
        for reason, which in sorted(skipped_reasons.items()):
            shown = ", ".join(which[:6]) + (f" and {len(which) - 6} more" if len(which) > 6 else "")
            console.print(f"  – {shown}: {reason}", markup=False, highlight=False)
    n = counts(results)
    total_ex = sum(results.examples.values())
    line = (f"{n['passed']} passed, {n['failed']} failed, {n['skipped']} skipped "
            f"(provider × check) · {total_ex} generated examples · {results.wall_seconds:.1f} s · "
            f"seed {results.seed}")
    console.print(Text(line, style="bold green" if results.ok else "bold red"))


def write_json(results: Results, path: str | Path) -> None:
    Path(path).write_text(json.dumps(results.to_json(), indent=2, default=str) + "\n", encoding="utf-8")


def write_junit(results: Results, path: str | Path) -> None:
    """JUnit XML: one testsuite per provider, one testcase per check (classname = provider)."""
    root = ET.Element("testsuites", name="conformance", tests=str(len(results.outcomes())),
                      failures=str(sum(1 for o in results.outcomes() if o.failed)),
                      time=f"{results.wall_seconds:.3f}")
    for p in results.providers:
        outs = [o for o in results.outcomes() if o.provider == p]
        suite = ET.SubElement(root, "testsuite", name=p, tests=str(len(outs)),
                              failures=str(sum(1 for o in outs if o.failed)),
                              skipped=str(sum(1 for o in outs if o.status == "skipped")))
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="seed", value=str(results.seed))
        for o in outs:
            case = ET.SubElement(suite, "testcase", classname=f"conformance.{p}", name=o.check)
            if o.failed:
                f = o.failures[0]
                fail = ET.SubElement(case, "failure", message=f.message[:500], type=o.check)
                fail.text = _failure_text(o)
            elif o.status == "skipped":
                ET.SubElement(case, "skipped", message=o.skip_reason or "not exercised")
            else:
                out = ET.SubElement(case, "system-out")
                out.text = f"{o.passed} evaluations passed"
    ET.indent(root)
    Path(path).write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n", encoding="utf-8")


def _failure_text(o: Outcome) -> str:
    lines = [f"{o.failed} failing of {o.failed + o.passed} evaluations"]
    for f in o.failures:
        lines.append("")
        if f.operation:
            lines.append(f"operation: {f.operation}")
        lines.append(f.message)
        if f.status is not None:
            lines.append(f"status: {f.status}")
        if f.response:
            lines.append(f"response: {f.response}")
        if f.curl:
            lines.append(f"reproduce: {f.curl}")
        lines.append(f"seed: {f.seed}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(results: Results, path: str | Path) -> None:
    lines = ["# Conformance report", "",
             f"Target: {results.target.get('label', '?')} · seed {results.seed} · {results.wall_seconds:.1f} s · "
             f"{'passed' if results.ok else 'FAILED'}", "",
             "| check | kind | " + " | ".join(results.providers) + " |",
             "|---|---|" + "---:|" * len(results.providers)]
    for c in results.checks:
        row = [c.name, c.category] + [cell(results.outcome(p, c.name)) for p in results.providers]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Generated examples per operation", "", "| provider | operation | examples |", "|---|---|---:|"]
    for (p, op), n in sorted(results.examples.items()):
        lines.append(f"| {p} | `{_md(op)}` | {n} |")
    failing = [o for o in results.outcomes() if o.failed]
    if failing:
        lines += ["", "## Failures", ""]
        for o in failing:
            f = o.failures[0]
            lines += [f"### {o.provider} / {o.check} ({o.failed} failing)", ""]
            if f.operation:
                lines.append(f"- operation: `{_md(f.operation)}`")
            lines.append(f"- {_md(f.message)}")
            if f.status is not None:
                lines.append(f"- status: {f.status}")
            lines.append(f"- seed: {f.seed}")
            if f.curl:
                lines += ["", "```sh", f.curl, "```"]
            lines.append("")
    skipped = [o for o in results.outcomes() if o.status == "skipped"]
    if skipped:
        lines += ["", "## Skipped", ""]
        for o in skipped:
            lines.append(f"- {o.provider} / {o.check}: {_md(o.skip_reason or 'not exercised')}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
