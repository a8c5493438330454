"""Reports of a run: the rich summary table (check x provider), JUnit XML, JSON and Markdown.

Every failure carries the operation, the message, where the failed expectation comes from (contract,
provider document, standard, or a convention of our mock), the response (status, headers, body, trimmed),
a curl command reproducing the request (credentials as ``$ENV`` references), the run's hypothesis seed and
the ``conformance run`` command that repeats the check. Suite errors (what the suite itself could not do)
are listed apart from failures, and notes (deviations from expectations no provider document backs, on a
target that is not our mock) apart from both.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .results import Failure, Outcome, Results

MARK = {"passed": "✓", "failed": "✗", "noted": "!", "skipped": "–"}
BODY_LIMIT = 1200  # characters of a response body shown in reports


def cell(o: Outcome) -> str:
    """Table cell text of an outcome: ``✓ 312``, ``✗ 2/315``, ``! 3 notes``, ``–``."""
    if o.status == "failed":
        return f"✗ {o.failed}/{o.failed + o.passed + o.noted}"
    if o.status == "noted":
        return f"! {o.noted} note{'s' if o.noted != 1 else ''}"
    if o.status == "passed":
        return f"✓ {o.passed}"
    return "–"


def counts(results: Results) -> dict[str, int]:
    out = {"passed": 0, "failed": 0, "noted": 0, "skipped": 0}
    for o in results.outcomes():
        out[o.status] += 1
    return out


def verdict(results: Results) -> str:
    """``passed`` | ``FAILED`` | ``INCOMPLETE`` (suite errors or an early stop, no failure)."""
    if not results.ok:
        return "FAILED"
    return "INCOMPLETE" if results.suite_errors else "passed"


def _headers_text(headers: dict[str, str] | None) -> str:
    if not headers:
        return ""
    return "; ".join(f"{k}: {v}" for k, v in headers.items())


def _source_text(f: Failure) -> str:
    src = f.source or {}
    if not src:
        return ""
    text = f"{src.get('kind')}: {src.get('ref')}"
    if src.get("quote"):
        text += f' ("{src["quote"]}")'
    return text


def render_summary(results: Results, console) -> None:
    """Print the summary table, the per-operation example counts, the first failure of every failing check,
    the notes, the suite errors and the skip reasons to a rich console."""
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
            style = {"passed": "green", "failed": "bold red", "noted": "yellow", "skipped": "dim"}[o.status]
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

    def show(f: Failure) -> None:
        if f.operation:
            console.print(f"  operation: {f.operation}", markup=False, highlight=False)
        console.print(f"  {f.message}", markup=False, highlight=False)
        src = _source_text(f)
        if src:
            console.print(f"  expectation from {src}", markup=False, highlight=False)
        if f.status is not None:
            console.print(f"  status: {f.status}  response: {(f.response or '')[:200]}", markup=False,
                          highlight=False)
        if f.curl:
            console.print(f"  curl: {f.curl[:1500]}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"  reproduce: {f.rerun or ''}", markup=False, highlight=False, soft_wrap=True)

    failing = [o for o in results.outcomes() if o.failed]
    if failing:
        console.print(Text("Failures (first example of each failing check)", style="bold red"))
        for o in failing:
            console.print(Text(f"✗ {o.provider} / {o.check}", style="bold red") +
                          Text(f"  ({o.failed} failing of {o.failed + o.passed + o.noted})", style="dim"))
            show(o.failures[0])
    noted = [o for o in results.outcomes() if o.noted]
    if noted:
        console.print(Text("Notes: deviations from expectations the provider does not document (not failures)",
                           style="bold yellow"))
        for o in noted:
            console.print(Text(f"! {o.provider} / {o.check}", style="yellow") + Text(f"  ({o.noted})", style="dim"))
            show(o.notes[0])
    if results.suite_errors:
        console.print(Text("Suite errors (the suite could not do this; not a finding about the target)",
                           style="bold magenta"))
        for e in results.suite_errors:
            where = " / ".join(x for x in (e.provider, e.check, e.operation) if x)
            console.print(f"  [{e.name}] {where + ': ' if where else ''}{e.message.splitlines()[0] if e.message else ''}",
                          markup=False, highlight=False)
    skipped_reasons: dict[str, list[str]] = {}
    for o in results.outcomes():
        if o.status == "skipped" and o.skip_reason:
            skipped_reasons.setdefault(o.skip_reason, []).append(f"{o.provider}/{o.check}")
    if skipped_reasons:
        console.print(Text("Skipped", style="bold"))
        for reason, which in sorted(skipped_reasons.items()):
            shown = ", ".join(which[:6]) + (f" and {len(which) - 6} more" if len(which) > 6 else "")
            console.print(f"  – {shown}: {reason}", markup=False, highlight=False)
    spend = results.to_json()["spend"]
    if spend.get("paid_requests") or any(v is not None for v in (spend.get("budget") or {}).values()):
        console.print(f"Spend: {spend.get('paid_requests', 0)} paid request(s), {spend.get('video_seconds', 0):g} s "
                      f"requested, ${spend.get('committed_usd') if spend.get('committed_usd') is not None else '?'} "
                      f"estimated; remaining {spend.get('remaining')}", markup=False, highlight=False)
    n = counts(results)
    total_ex = sum(results.examples.values())
    line = (f"{n['passed']} passed, {n['failed']} failed, {n['noted']} noted, {n['skipped']} skipped "
            f"(provider × check) · {len(results.suite_errors)} suite error(s) · {total_ex} generated examples · "
            f"{results.wall_seconds:.1f} s · seed {results.seed} · {verdict(results)}")
    style = "bold red" if not results.ok else "bold magenta" if results.suite_errors else "bold green"
    console.print(Text(line, style=style))


def write_json(results: Results, path: str | Path) -> None:
    Path(path).write_text(json.dumps(results.to_json(), indent=2, default=str) + "\n", encoding="utf-8")


def write_junit(results: Results, path: str | Path) -> None:
    """JUnit XML: one testsuite per provider, one testcase per check (classname = provider); suite errors are
    ``<error>`` testcases of a ``conformance.suite`` testsuite; notes go to ``system-out``."""
    outs_all = results.outcomes()
    root = ET.Element("testsuites", name="conformance", tests=str(len(outs_all) + len(results.suite_errors)),
                      failures=str(sum(1 for o in outs_all if o.failed)), errors=str(len(results.suite_errors)),
                      skipped=str(sum(1 for o in outs_all if o.status == "skipped")),
                      time=f"{results.wall_seconds:.3f}")
    for p in results.providers:
        outs = [o for o in outs_all if o.provider == p]
        suite = ET.SubElement(root, "testsuite", name=p, tests=str(len(outs)),
                              failures=str(sum(1 for o in outs if o.failed)), errors="0",
                              skipped=str(sum(1 for o in outs if o.status == "skipped")))
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="seed", value=str(results.seed))
        ET.SubElement(props, "property", name="target", value=str(results.target.get("label", "")))
        for o in outs:
            case = ET.SubElement(suite, "testcase", classname=f"conformance.{p}", name=o.check)
            if o.failed:
                f = o.failures[0]
                fail = ET.SubElement(case, "failure", message=f.message[:500], type=o.check)
                fail.text = _failure_text(o, o.failures, o.failed)
            elif o.status == "skipped":
                ET.SubElement(case, "skipped", message=o.skip_reason or "not exercised")
            else:
                out = ET.SubElement(case, "system-out")
                out.text = f"{o.passed} evaluations passed"
                if o.noted:
                    out.text += "\n\n" + _failure_text(o, o.notes, o.noted, noun="notes (not documented by the "
                                                                                  "provider; not failures)")
    if results.suite_errors:
        suite = ET.SubElement(root, "testsuite", name="suite", tests=str(len(results.suite_errors)), failures="0",
                              errors=str(len(results.suite_errors)), skipped="0")
        for e in results.suite_errors:
            case = ET.SubElement(suite, "testcase", classname="conformance.suite",
                                 name=f"{e.name} {e.provider or ''} {e.check or ''}".strip())
            err = ET.SubElement(case, "error", message=(e.message.splitlines()[0] if e.message else e.name)[:500],
                                type=e.name)
            err.text = e.message
    ET.indent(root)
    Path(path).write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n", encoding="utf-8")


def _failure_lines(f: Failure) -> list[str]:
    lines = []
    if f.operation:
        lines.append(f"operation: {f.operation}")
    lines.append(f.message)
    src = _source_text(f)
    if src:
        lines.append(f"expectation from {src}")
    if f.status is not None:
        lines.append(f"status: {f.status}")
    if f.response_headers:
        lines.append(f"response headers: {_headers_text(f.response_headers)}")
    if f.response:
        lines.append(f"response body: {f.response[:BODY_LIMIT]}")
    if f.curl:
        lines.append(f"curl: {f.curl}")
    lines.append(f"seed: {f.seed}")
    if f.rerun:
        lines.append(f"reproduce: {f.rerun}")
    return lines


def _failure_text(o: Outcome, items: list[Failure], count: int, noun: str = "failing") -> str:
    lines = [f"{count} {noun} of {o.failed + o.passed + o.noted} evaluations"]
    for f in items:
        lines.append("")
        lines += _failure_lines(f)
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_failure(f: Failure) -> list[str]:
    lines = []
    if f.operation:
        lines.append(f"- operation: `{_md(f.operation)}`")
    lines.append(f"- {_md(f.message)}")
    src = _source_text(f)
    if src:
        lines.append(f"- expectation from {_md(src)}")
    if f.status is not None:
        lines.append(f"- status: {f.status}")
    lines.append(f"- seed: {f.seed}")
    if f.rerun:
        lines.append(f"- reproduce: `{f.rerun}`")
    if f.response_headers or f.response:
        lines += ["", "<details><summary>response</summary>", "", "```"]
        if f.response_headers:
            lines += [f"{k}: {v}" for k, v in f.response_headers.items()]
            lines.append("")
        if f.response:
            lines.append(f.response[:BODY_LIMIT].replace("```", "'''"))
        lines += ["```", "", "</details>"]
    if f.curl:
        lines += ["", "```sh", f.curl, "```"]
    lines.append("")
    return lines


def write_markdown(results: Results, path: str | Path) -> None:
    n = counts(results)
    lines = ["# Conformance report", "",
             f"Target: {results.target.get('label', '?')} · seed {results.seed} · {results.wall_seconds:.1f} s · "
             f"**{verdict(results)}**", "",
             f"Totals (provider × check): {n['passed']} passed, {n['failed']} failed, {n['noted']} noted, "
             f"{n['skipped']} skipped; {results.failed_count} failing evaluation(s), {results.noted_count} note(s), "
             f"{len(results.suite_errors)} suite error(s); {sum(results.examples.values())} generated examples, "
             f"{results.requests} requests.", ""]
    par = getattr(results, "parallel", None)
    if par:
        lines += [f"Checked in {par['processes']} processes (`--parallel {par['requested']}`): "
                  + " | ".join(", ".join(g) for g in par["assignment"]) + f"; spend budget: {_md(par['budget'])}.", ""]
    for note in results.target.get("notes") or []:
        lines.append(f"> {_md(note)}")
    if results.target.get("notes"):
        lines.append("")
    lines += ["| check | kind | " + " | ".join(results.providers) + " |",
              "|---|---|" + "---:|" * len(results.providers)]
    for c in results.checks:
        row = [c.name, c.category] + [cell(results.outcome(p, c.name)) for p in results.providers]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Generated examples per operation", "", "| provider | operation | examples |", "|---|---|---:|"]
    for (p, op), count in sorted(results.examples.items()):
        lines.append(f"| {p} | `{_md(op)}` | {count} |")
    failing = [o for o in results.outcomes() if o.failed]
    if failing:
        lines += ["", "## Failures", ""]
        for o in failing:
            lines += [f"### {o.provider} / {o.check} ({o.failed} failing)", ""]
            lines += _md_failure(o.failures[0])
    noted = [o for o in results.outcomes() if o.noted]
    if noted:
        lines += ["", "## Notes (not documented by the provider; not failures)", ""]
        for o in noted:
            lines += [f"### {o.provider} / {o.check} ({o.noted})", ""]
            lines += _md_failure(o.notes[0])
    if results.suite_errors:
        lines += ["", "## Suite errors", "", "What the suite itself could not do; not a finding about the target.", ""]
        for e in results.suite_errors:
            where = " / ".join(x for x in (e.provider, e.check, e.operation) if x)
            lines.append(f"- **{e.name}** {_md(where)}: {_md(e.message.splitlines()[0] if e.message else '')}")
    skipped = [o for o in results.outcomes() if o.status == "skipped"]
    if skipped:
        lines += ["", "## Skipped", ""]
        for o in skipped:
            lines.append(f"- {o.provider} / {o.check}: {_md(o.skip_reason or 'not exercised')}")
    spend = results.to_json()["spend"]
    if spend:
        lines += ["", "## Spend", "", f"- paid requests: {spend.get('paid_requests', 0)}",
                  f"- requested video seconds: {spend.get('video_seconds', 0)}",
                  f"- estimated USD: {spend.get('committed_usd')}",
                  f"- budget: {spend.get('budget')}", f"- remaining: {spend.get('remaining')}"]
        if spend.get("blocked"):
            lines.append(f"- refused by the spend guard: {spend['blocked']}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
