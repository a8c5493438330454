"""Self-contained HTML reports (``--html PATH``) for ``conformance run``, ``drift`` and ``diff``.

One file, readable offline by a CI user: inline CSS and a small inline script (filters, links), no network
(a Content-Security-Policy forbids every fetch, and only this module's own script may run), no external font.
Every value taken from a run is escaped: response bodies and headers are hostile input.

The run report is built from the run's JSON (:meth:`conformance.results.Results.to_json`), the drift and
diff reports from :meth:`conformance.drift.findings.Report.to_json`, so each stays in step with the JSON
report of the same command. Missing or malformed keys are shown as absent, never raised.

Public functions:

- :func:`render_run` / :func:`write_run`: the verdict and totals, the provider × check matrix (colour and
  text), filters (outcome, provider, check name), each failure with its request (curl), response, expectation
  source, seed and re-run command, notes, suite errors, skipped checks with reasons, generated examples per
  operation, spend.
- :func:`render_findings` / :func:`write_findings`: drift or diff findings by class (breaking,
  non-breaking, info) with operation, kind, pointer, message, example and count, and an operation × class
  table linking to them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BODY_LIMIT = 4000  # characters of a response body shown (the JSON report keeps what the run kept)
TEXT_LIMIT = 20000  # characters of any other single value (a curl command with a large body, a traceback)
EXAMPLE_LIMIT = 6000  # characters of a drift finding's example

STATUS_WORD = {"passed": "pass", "failed": "FAIL", "noted": "note", "skipped": "skip"}
STATUS_MARK = {"passed": "✓", "failed": "✗", "noted": "!", "skipped": "–"}
SEVERITY_TITLE = {"breaking": "Breaking", "non-breaking": "Non-breaking", "info": "Informational"}
SEVERITIES = ("breaking", "non-breaking", "info")

_CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--bg:#fff;--panel:#f5f7fa;--line:#d8dde6;--pass:#1f7a3a;--pass-bg:#e3f4e8;
--fail:#b3261e;--fail-bg:#fde7e5;--note:#8a5a00;--note-bg:#fff3d6;--skip:#5b6475;--skip-bg:#eef0f3;
--err:#7b2f9e;--err-bg:#f3e6fa;--link:#0b57d0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:var(--bg)}
main{padding:0 24px 48px;max-width:1400px;margin:0 auto}
a{color:var(--link)}
h1{font-size:22px;margin:0}
h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:0 0 6px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
pre{background:var(--panel);border:1px solid var(--line);border-radius:4px;padding:8px;margin:4px 0;
white-space:pre-wrap;word-break:break-all;max-height:360px;overflow:auto}
header.top{padding:16px 24px;border-bottom:1px solid var(--line);background:var(--panel)}
.verdict{display:inline-block;font-weight:700;font-size:18px;padding:2px 12px;border-radius:4px;margin-left:12px;
border:2px solid currentColor}
.v-passed{color:var(--pass);background:var(--pass-bg)}
.v-failed{color:var(--fail);background:var(--fail-bg)}
.v-incomplete{color:var(--err);background:var(--err-bg)}
.meta{color:var(--muted);margin:6px 0 0}
.totals{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0 0;padding:0;list-style:none}
.totals li{border:1px solid var(--line);border-radius:4px;padding:4px 10px;background:var(--bg)}
.totals b{font-size:16px}
nav.toc{margin:8px 0 0}
nav.toc a{margin-right:14px}
.filters{position:sticky;top:0;z-index:2;background:var(--bg);border-bottom:1px solid var(--line);
padding:8px 0;display:flex;flex-wrap:wrap;gap:16px;align-items:center}
.filters fieldset{border:0;margin:0;padding:0;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.filters legend{float:left;font-weight:600;margin-right:6px}
.filters label{white-space:nowrap;cursor:pointer}
.filters input[type=search]{width:16em}
#f-count{color:var(--muted)}
table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--panel)}
table.matrix td.cell{text-align:center;white-space:nowrap;font-variant-numeric:tabular-nums}
table.matrix th.check{white-space:nowrap}
.s-passed{color:var(--pass);background:var(--pass-bg)}
.s-failed{color:var(--fail);background:var(--fail-bg);font-weight:700}
.s-noted{color:var(--note);background:var(--note-bg);font-weight:600}
.s-skipped{color:var(--skip);background:var(--skip-bg)}
.s-none{color:var(--muted)}
.s-breaking{color:var(--fail);background:var(--fail-bg);font-weight:700}
.s-non-breaking{color:var(--note);background:var(--note-bg);font-weight:600}
.s-info{color:var(--skip);background:var(--skip-bg)}
td.cell a{color:inherit;display:block}
.cat{color:var(--muted);font-size:12px}
.card{border:1px solid var(--line);border-left:6px solid var(--line);border-radius:4px;padding:10px 12px;margin:10px 0}
.card.k-failed,.card.k-breaking{border-left-color:var(--fail)}
.card.k-noted,.card.k-non-breaking{border-left-color:var(--note)}
.card.k-error{border-left-color:var(--err)}
.card.k-info,.card.k-skipped{border-left-color:var(--skip)}
[id]{scroll-margin-top:72px}
.card:target,tr:target{outline:3px solid var(--link);outline-offset:2px}
.example{border-top:1px dashed var(--line);margin-top:8px;padding-top:8px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0}
dl.kv dt{color:var(--muted)}
dl.kv dd{margin:0;min-width:0}
.badge{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;font-weight:600;border:1px solid currentColor}
.copy{float:right;font-size:12px;margin-left:6px;cursor:pointer}
.muted{color:var(--muted)}
.empty{color:var(--muted);font-style:italic}
[hidden]{display:none!important}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#a3abba;--bg:#14171c;--panel:#1d2129;--line:#363c48;
--pass:#7fd69a;--pass-bg:#15301f;--fail:#ff8a80;--fail-bg:#3a1714;--note:#ffcc66;--note-bg:#352a10;--skip:#b0b7c3;
--skip-bg:#252a33;--err:#d9a6f2;--err-bg:#2f1d3a;--link:#8ab4f8}}
@media print{.filters,.copy,nav.toc{display:none}pre{max-height:none}}
"""

_JS = """
(function () {
  'use strict';
  function all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function radio() { var r = document.querySelector('input[name="f-status"]:checked'); return r ? r.value : ''; }
  var group = document.getElementById('f-group');
  var text = document.getElementById('f-text');
  var count = document.getElementById('f-count');
  function matches(filter, status) {
    if (!filter) { return true; }
    if (filter === 'problems') { return status === 'failed' || status === 'noted' || status === 'breaking'; }
    return status === filter;
  }
  function apply() {
    var s = radio(), g = group ? group.value : '', t = text ? text.value.trim().toLowerCase() : '';
    all('[data-col]').forEach(function (el) { el.hidden = !!g && el.getAttribute('data-col') !== g; });
    var shown = 0, total = 0;
    all('tr[data-row]').forEach(function (tr) {
      total += 1;
      var cells = all('[data-status]', tr).filter(function (td) { return !td.hidden; });
      var ok = (!t || tr.getAttribute('data-row').indexOf(t) >= 0) &&
        (!g || !tr.hasAttribute('data-group') || tr.getAttribute('data-group') === g) &&
        (!s || cells.some(function (td) { return matches(s, td.getAttribute('data-status')); }));
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    all('[data-item]').forEach(function (el) {
      var eg = el.getAttribute('data-group') || '';
      var ok = (!g || !eg || eg === g) && (!t || el.getAttribute('data-item').indexOf(t) >= 0) &&
        (!s || !el.hasAttribute('data-kind') || matches(s, el.getAttribute('data-kind')));
      el.hidden = !ok;
    });
    all('section[data-section]').forEach(function (sec) {
      var items = all('[data-item]', sec);
      var empty = sec.querySelector('.f-empty');
      if (empty) { empty.hidden = !items.length || items.some(function (el) { return !el.hidden; }); }
    });
    if (count) { count.textContent = shown + ' of ' + total + ' rows shown'; }
    var none = document.getElementById('f-none');
    if (none) { none.hidden = shown > 0 || total === 0; }
    document.body.setAttribute('data-filter', s || 'all');
  }
  function reset() {
    var a = document.querySelector('input[name="f-status"][value=""]');
    if (a) { a.checked = true; }
    if (group) { group.value = ''; }
    if (text) { text.value = ''; }
    apply();
  }
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (!el) { return; }
    for (var p = el; p; p = p.parentElement) {
      if (p.hidden) { reset(); break; }
    }
    for (var d = el; d; d = d.parentElement) { if (d.tagName === 'DETAILS') { d.open = true; } }
    el.scrollIntoView({block: 'start'});
  }
  all('input[name="f-status"]').forEach(function (r) { r.addEventListener('change', apply); });
  if (group) { group.addEventListener('change', apply); }
  if (text) { text.addEventListener('input', apply); }
  var resetButton = document.getElementById('f-reset');
  if (resetButton) { resetButton.addEventListener('click', reset); }
  all('button.copy').forEach(function (b) {
    b.addEventListener('click', function () {
      var pre = document.getElementById(b.getAttribute('data-for'));
      if (!pre) { return; }
      var done = function () { b.textContent = 'copied'; setTimeout(function () { b.textContent = 'copy'; }, 1500); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(pre.textContent).then(done, function () { select(pre); });
      } else { select(pre); }
    });
  });
  function select(el) {
    var range = document.createRange(); range.selectNodeContents(el);
    var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
  }
  var q = new URLSearchParams(location.search);
  if (q.get('status') !== null) {
    var r = document.querySelector('input[name="f-status"][value="' + CSS.escape(q.get('status')) + '"]');
    if (r) { r.checked = true; }
  }
  if (group && q.get('group')) { group.value = q.get('group'); }
  if (text && q.get('q')) { text.value = q.get('q'); }
  apply();
  window.addEventListener('hashchange', reveal);
  if (location.hash) { reveal(); }
  document.documentElement.setAttribute('data-ready', '1');
})();
"""


def _csp() -> str:
    """The page's Content-Security-Policy: no fetch of any kind, inline styles, and only :data:`_JS`."""
    digest = base64.b64encode(hashlib.sha256(_JS.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


# -- small helpers --------------------------------------------------------------------------------------
def _e(value: Any, limit: int = TEXT_LIMIT) -> str:
    """Escape any value for HTML text or a quoted attribute, trimmed to ``limit`` characters."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit} more characters)"
    return html.escape(text, quote=True)


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


_ID_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def _id(*parts: Any) -> str:
    """A stable element id from ``parts`` (letters, digits, ``_ . -`` only)."""
    return "-".join(_ID_BAD.sub("_", str(p)) for p in parts)


def _key(*parts: Any) -> str:
    """The lower-case text a filter matches against (escaped for an attribute)."""
    return _e(" ".join(str(p) for p in parts if p is not None).lower())


class _Ids:
    """Unique element ids: the first use of a base keeps it, later ones get ``-2``, ``-3``..."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, base: str) -> str:
        out, n = base, 1
        while out in self.used:
            n += 1
            out = f"{base}-{n}"
        self.used.add(out)
        return out


def _page(title: str, header: str, body: Iterable[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp())}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        header,
        "<main>",
        *body,
        "</main>",
        f"<script>{_JS}</script>",
        "</body>",
        "</html>",
        "",
    ])


def _pre(text: Any, ids: _Ids, base: str, limit: int = TEXT_LIMIT, copy: bool = False) -> str:
    pid = ids(base)
    button = f'<button type="button" class="copy" data-for="{pid}">copy</button>' if copy else ""
    return f'{button}<pre id="{pid}">{_e(text, limit)}</pre>'


def _filters(statuses: list[tuple[str, str]], group_label: str, groups: list[str], text_label: str) -> str:
    radios = "".join(
        f'<label><input type="radio" name="f-status" value="{_e(v)}"{" checked" if not v else ""}> {_e(t)}</label>'
        for v, t in statuses)
    options = '<option value="">all</option>' + "".join(f'<option value="{_e(g)}">{_e(g)}</option>' for g in groups)
    return (f'<div class="filters" id="filters" role="search">'
            f'<fieldset id="f-statuses"><legend>Show</legend>{radios}</fieldset>'
            f'<label>{_e(group_label)} <select id="f-group">{options}</select></label>'
            f'<label>{_e(text_label)} <input type="search" id="f-text" placeholder="substring"></label>'
            f'<button type="button" id="f-reset">reset</button> <span id="f-count" aria-live="polite"></span>'
            f"</div>")


# -- the run report -------------------------------------------------------------------------------------
def run_verdict(data: dict) -> str:
    """``passed`` | ``failed`` | ``incomplete`` for a run's JSON (as :func:`conformance.report.verdict`)."""
    totals = _d(data.get("totals"))
    if data.get("ok") is False or _int(totals.get("failed")) or _int(totals.get("failing_evaluations")):
        return "failed"
    if _l(data.get("suite_errors")) or data.get("stopped"):
        return "incomplete"
    return "passed"


def _cell_text(o: dict) -> tuple[str, str]:
    """(short text, long title) of a matrix cell: ``✗ FAIL 2/61`` ..."""
    status = o.get("status") if o.get("status") in STATUS_WORD else "skipped"
    passed, failed, noted = _int(o.get("passed")), _int(o.get("failed")), _int(o.get("noted"))
    total = passed + failed + noted
    if status == "failed":
        return f"✗ FAIL {failed}/{total}", f"{failed} failing of {total} evaluations"
    if status == "noted":
        return f"! note {noted}", f"{noted} note(s) (not documented by the provider), {passed} passed"
    if status == "passed":
        return f"✓ pass {passed}", f"{passed} evaluations passed"
    return "– skip", f"skipped: {o.get('skip_reason') or 'not exercised'}"


def _source_html(src: Any) -> str:
    src = _d(src)
    if not src:
        return '<span class="muted">not recorded</span>'
    documented = src.get("documented")
    tag = "" if documented is None else (
        ' <span class="badge s-passed">documented</span>' if documented
        else ' <span class="badge s-noted">not documented by the provider</span>')
    quote = f"<blockquote>“{_e(src.get('quote'))}”</blockquote>" if src.get("quote") else ""
    return f"<b>{_e(src.get('kind'))}</b>: {_e(src.get('ref'))}{tag}{quote}"


def _headers_html(headers: Any) -> str:
    headers = _d(headers)
    if not headers:
        return '<span class="muted">none recorded</span>'
    rows = "".join(f"<tr><th class=\"mono\">{_e(k, 200)}</th><td class=\"mono\">{_e(v, 2000)}</td></tr>"
                   for k, v in headers.items())
    return f'<table class="headers">{rows}</table>'


def _failure_html(f: Any, ids: _Ids, base: str, n: int) -> str:
    f = _d(f)
    parts = [f'<div class="example"><h3>example {n}</h3><dl class="kv">']
    if f.get("operation"):
        parts.append(f"<dt>operation</dt><dd class=\"mono\">{_e(f['operation'])}</dd>")
    parts.append(f"<dt>message</dt><dd>{_pre(f.get('message'), ids, base + '-msg')}</dd>")
    parts.append(f"<dt>expectation from</dt><dd>{_source_html(f.get('source'))}</dd>")
    parts.append(f"<dt>seed</dt><dd class=\"mono\">{_e(f.get('seed'))}</dd>")
    if f.get("status") is not None:
        parts.append(f"<dt>response status</dt><dd class=\"mono\">{_e(f.get('status'))}</dd>")
    if f.get("response_headers"):
        parts.append(f"<dt>response headers</dt><dd>{_headers_html(f.get('response_headers'))}</dd>")
    if f.get("response"):
        parts.append(f"<dt>response body</dt><dd>{_pre(f.get('response'), ids, base + '-body', BODY_LIMIT)}</dd>")
    if f.get("curl"):
        parts.append(f"<dt>request (curl)</dt><dd>{_pre(f.get('curl'), ids, base + '-curl', copy=True)}</dd>")
    if f.get("rerun"):
        parts.append(f"<dt>re-run</dt><dd>{_pre(f.get('rerun'), ids, base + '-rerun', copy=True)}</dd>")
    parts.append("</dl></div>")
    return "".join(parts)


def _outcome_cards(outcomes: list[dict], kind: str, descriptions: dict[str, str], ids: _Ids) -> list[str]:
    """Cards of the failing (``kind="failed"``) or noted (``"noted"``) outcomes."""
    out = []
    field, count_key, prefix = ("failures", "failed", "fail") if kind == "failed" else ("notes", "noted", "note")
    for o in outcomes:
        if not _int(o.get(count_key)):
            continue
        pid, check = str(o.get("provider") or ""), str(o.get("check") or "")
        cid = ids(_id(prefix, pid, check))
        total = _int(o.get("passed")) + _int(o.get("failed")) + _int(o.get("noted"))
        items = _l(o.get(field))
        mark = STATUS_MARK[kind]
        what = "failing" if kind == "failed" else "note(s)"
        kept = f"; the first {len(items)} shown" if 0 < len(items) < _int(o.get(count_key)) else ""
        card = [f'<article class="card k-{kind}" id="{cid}" data-item="{_key(pid, check)}" data-group="{_e(pid)}" '
                f'data-kind="{kind}">',
                f'<h3><span class="badge s-{kind}">{mark} {STATUS_WORD[kind]}</span> {_e(pid)} / '
                f'<span class="mono">{_e(check)}</span> <span class="muted">({_int(o.get(count_key))} {what} of '
                f'{total} evaluations{kept}; {_e(o.get("category"))})</span></h3>']
        if descriptions.get(check):
            card.append(f'<p class="muted">{_e(descriptions[check])}</p>')
        for n, f in enumerate(items, 1):
            card.append(_failure_html(f, ids, f"{cid}-{n}", n))
        if not items:
            card.append('<p class="empty">no example kept</p>')
        card.append("</article>")
        out.append("".join(card))
    return out


def _spend_html(spend: dict) -> list[str]:
    if not spend:
        return ['<p class="empty">no spend recorded (a free target, or the run ended before the spend guard '
                'started)</p>']

    def bound(v: Any) -> str:
        return "no bound" if v is None else _e(v)

    budget, remaining = _d(spend.get("budget")), _d(spend.get("remaining"))
    keys = list(dict.fromkeys([*budget, *remaining]))
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{bound(budget.get(k))}</td><td>{bound(remaining.get(k))}</td></tr>"
                   for k in keys)
    usd = spend.get("committed_usd")
    out = ['<dl class="kv">',
           f"<dt>paid requests sent</dt><dd>{_e(spend.get('paid_requests', 0))}</dd>",
           f"<dt>accepted</dt><dd>{_e(spend.get('accepted', 0))}</dd>",
           f"<dt>video seconds requested</dt><dd>{_e(spend.get('video_seconds', 0))}</dd>",
           f"<dt>estimated USD</dt><dd>{'unknown (no price)' if usd is None else _e(usd)}</dd>", "</dl>"]
    if keys:
        out.append(f"<table><tr><th>bound</th><th>budget</th><th>remaining</th></tr>{rows}</table>")
    if spend.get("blocked"):
        out.append("<p>Refused by the spend guard:</p>")
        out.append(f"<pre>{_e(json.dumps(spend['blocked'], indent=2, default=str))}</pre>")
    return out


def render_run(data: dict) -> str:
    """Render a run's JSON (:meth:`Results.to_json`) as one self-contained HTML page.

    Args:
        data: the run's JSON dict (keys ``ok``, ``seed``, ``target``, ``totals``, ``providers``, ``checks``,
            ``outcomes`` with ``failures``/``notes``, ``suite_errors``, ``examples``, ``spend``, ``stopped``,
            ``notes``...). Missing or malformed keys are rendered as absent.

    Returns:
        The HTML text. It names no external resource; every value from ``data`` is escaped.
    """
    data = _d(data)
    ids = _Ids()
    verdict = run_verdict(data)
    target = _d(data.get("target"))
    totals = _d(data.get("totals"))
    outcomes = [o for o in _l(data.get("outcomes")) if isinstance(o, dict)]
    checks = [c for c in _l(data.get("checks")) if isinstance(c, dict) and c.get("name")]
    providers = [str(p) for p in _l(data.get("providers"))]
    for o in outcomes:  # outcomes of a provider or check the lists do not name still show
        if str(o.get("provider")) not in providers:
            providers.append(str(o.get("provider")))
        if not any(c["name"] == o.get("check") for c in checks):
            checks.append({"name": str(o.get("check")), "category": o.get("category")})
    by_key = {(str(o.get("provider")), str(o.get("check"))): o for o in outcomes}
    descriptions = {str(c["name"]): str(c.get("description") or "") for c in checks}
    suite_errors = [e for e in _l(data.get("suite_errors")) if isinstance(e, dict)]
    skipped = [o for o in outcomes if o.get("status") == "skipped"]
    examples = [x for x in _l(data.get("examples")) if isinstance(x, dict)]
    n_fail = sum(1 for o in outcomes if _int(o.get("failed")))
    n_note = sum(1 for o in outcomes if _int(o.get("noted")))

    total_examples = sum(_int(x.get("count")) for x in examples)
    tiles = [("passed", totals.get("passed")), ("failed", totals.get("failed")), ("noted", totals.get("noted")),
             ("skipped", totals.get("skipped"))]
    tile_html = "".join(f'<li class="{f"s-{k}" if _int(v) else ""}"><b>{_int(v)}</b> {k}</li>' for k, v in tiles)
    tile_html += "".join(f"<li><b>{_e(v)}</b> {_e(k)}</li>" for k, v in (
        ("failing evaluations", _int(totals.get("failing_evaluations"))), ("notes", _int(totals.get("notes"))),
        ("suite errors", _int(totals.get("suite_errors"))), ("generated examples", total_examples),
        ("requests", _int(data.get("requests")))))
    stopped = (f'<p class="meta"><b>Stopped early:</b> {_e(data.get("stopped"))}</p>'
               if data.get("stopped") else "")
    header = (
        '<header class="top">'
        f'<h1>Conformance report <span class="verdict v-{verdict}" id="verdict" data-verdict="{verdict}">'
        f"{verdict.upper()}</span></h1>"
        f'<p class="meta">Target: <b>{_e(target.get("label") or "?")}</b> · seed <span class="mono">'
        f'{_e(data.get("seed"))}</span> · {_e(data.get("wall_seconds"))} s · providers: '
        f'{_e(", ".join(providers) or "none")}</p>{stopped}'
        f'<ul class="totals" id="totals" aria-label="totals (provider × check outcomes)">{tile_html}</ul>'
        '<nav class="toc"><a href="#matrix">matrix</a>'
        f'<a href="#failures">failures ({n_fail})</a><a href="#notes">notes ({n_note})</a>'
        f'<a href="#suite-errors">suite errors ({len(suite_errors)})</a>'
        f'<a href="#skipped">skipped ({len(skipped)})</a><a href="#examples">examples</a>'
        '<a href="#spend">spend</a><a href="#checks">checks</a></nav>'
        "</header>")

    body: list[str] = [_filters([("", "all"), ("failed", "only failures"), ("problems", "failures and notes"),
                                 ("noted", "only notes"), ("skipped", "only skipped"), ("passed", "only passed")],
                                "provider", providers, "check")]
    for note in _l(target.get("notes")):
        body.append(f'<p class="meta">ⓘ {_e(note)}</p>')

    # the matrix
    body.append('<section id="matrix"><h2>Check × provider</h2>'
                '<p class="muted">Each cell: ✓ pass N (evaluations passed) · ✗ FAIL failed/total · ! note N '
                '(deviation the provider does not document, not a failure) · – skip (reason below). '
                'Failing, noted and skipped cells link to their details.</p>'
                '<table class="matrix" id="matrix-table"><thead><tr><th>check</th><th>kind</th>')
    body.append("".join(f'<th data-col="{_e(p)}">{_e(p)}</th>' for p in providers) + "</tr></thead><tbody>")
    for c in checks:
        name = str(c["name"])
        row = [f'<tr id="{ids(_id("row", name))}" data-row="{_key(name)}" data-check="{_e(name)}">'
               f'<th class="check mono" title="{_e(descriptions.get(name))}">{_e(name)}</th>'
               f'<td class="cat">{_e(c.get("category"))}</td>']
        for p in providers:
            o = by_key.get((p, name))
            if o is None:
                row.append(f'<td class="cell s-none" data-col="{_e(p)}">n/a</td>')
                continue
            status = o.get("status") if o.get("status") in STATUS_WORD else "skipped"
            text, title = _cell_text(o)
            anchor = {"failed": "fail", "noted": "note", "skipped": "skip"}.get(status)
            inner = (f'<a href="#{_id(anchor, p, name)}">{_e(text)}</a>' if anchor else _e(text))
            row.append(f'<td class="cell s-{status}" data-col="{_e(p)}" data-status="{status}" '
                       f'data-provider="{_e(p)}" title="{_e(title)}">{inner}</td>')
        body.append("".join(row) + "</tr>")
    body.append('</tbody></table><p id="f-none" class="empty" hidden>no row matches the filters</p></section>')

    # failures, notes, suite errors, skipped
    fail_cards = _outcome_cards(outcomes, "failed", descriptions, ids)
    body.append('<section id="failures" data-section="failures"><h2>Failures</h2>'
                '<p class="muted">Deviations from a documented expectation: each with the request (curl), the '
                'response, where the expectation comes from, the seed and the command that re-runs it.</p>')
    body += fail_cards or ['<p class="empty">no failure</p>']
    if fail_cards:
        body.append('<p class="empty f-empty" hidden>no failure matches the filters</p>')
    body.append("</section>")
    note_cards = _outcome_cards(outcomes, "noted", descriptions, ids)
    body.append('<section id="notes" data-section="notes"><h2>Notes</h2>'
                '<p class="muted">Deviations from expectations the provider does not document (a convention of '
                'our mock or a contract assumption), seen on a target that is not our mock: reported, never '
                'failed.</p>')
    body += note_cards or ['<p class="empty">no note</p>']
    if note_cards:
        body.append('<p class="empty f-empty" hidden>no note matches the filters</p>')
    provider_notes = [(p, t) for p, texts in _d(data.get("notes")).items() for t in _l(texts)]
    if provider_notes:
        body.append("<h3>Run notes</h3><ul>" + "".join(
            f'<li data-item="{_key(p, t)}" data-group="{_e(p)}"><b>{_e(p)}</b>: {_e(t)}</li>'
            for p, t in provider_notes) + "</ul>")
    body.append("</section>")

    body.append('<section id="suite-errors" data-section="suite-errors"><h2>Suite errors</h2>'
                '<p class="muted">What the suite itself could not do; not a finding about the target.</p>')
    for n, e in enumerate(suite_errors, 1):
        where = " / ".join(str(x) for x in (e.get("provider"), e.get("check"), e.get("operation")) if x)
        eid = ids(_id("suite-error", n))
        body.append(f'<article class="card k-error" id="{eid}" data-item="{_key(e.get("name"), where)}" '
                    f'data-group="{_e(e.get("provider") or "")}">'
                    f'<h3><span class="badge v-incomplete">suite error</span> <span class="mono">'
                    f'{_e(e.get("name"))}</span> {_e(where)}</h3>'
                    f'<p class="muted">{_e(e.get("meaning"))}</p>{_pre(e.get("message"), ids, eid + "-msg")}</article>')
    if not suite_errors:
        body.append('<p class="empty">no suite error</p>')
    body.append("</section>")

    body.append('<section id="skipped" data-section="skipped"><h2>Skipped</h2>')
    if skipped:
        body.append("<table><thead><tr><th>provider</th><th>check</th><th>reason</th></tr></thead><tbody>")
        for o in skipped:
            p, name = str(o.get("provider")), str(o.get("check"))
            body.append(f'<tr id="{ids(_id("skip", p, name))}" data-item="{_key(name)}" data-group="{_e(p)}" '
                        f'data-kind="skipped"><td>{_e(p)}</td><td class="mono">{_e(name)}</td>'
                        f'<td>{_e(o.get("skip_reason") or "not exercised")}</td></tr>')
        body.append('</tbody></table><p class="empty f-empty" hidden>no skipped check matches the filters</p>')
    else:
        body.append('<p class="empty">nothing skipped</p>')
    body.append("</section>")

    body.append('<section id="examples"><h2>Generated examples per operation</h2>')
    if examples:
        body.append("<table><thead><tr><th>provider</th><th>operation</th><th>examples</th></tr></thead><tbody>")
        for x in examples:
            p = str(x.get("provider"))
            body.append(f'<tr data-item="{_key(p, x.get("operation"))}" data-group="{_e(p)}"><td>{_e(p)}</td>'
                        f'<td class="mono">{_e(x.get("operation"))}</td><td>{_e(x.get("count"))}</td></tr>')
        body.append(f"</tbody><tfoot><tr><th colspan=\"2\">total</th><th>{total_examples}</th></tr></tfoot></table>")
    else:
        body.append('<p class="empty">no example generated</p>')
    body.append("</section>")

    body.append('<section id="spend"><h2>Spend</h2>')
    body += _spend_html(_d(data.get("spend")))
    body.append("</section>")

    body.append('<section id="checks"><h2>Checks</h2><details><summary>what each check asserts</summary>'
                "<table><thead><tr><th>check</th><th>kind</th><th>origin</th><th>asserts</th></tr></thead><tbody>")
    for c in checks:
        body.append(f'<tr><td class="mono">{_e(c["name"])}</td><td>{_e(c.get("category"))}</td>'
                    f'<td>{_e(c.get("origin"))}</td><td>{_e(c.get("description"))}</td></tr>')
    body.append("</tbody></table></details></section>")
    hosts = _d(target.get("hosts"))
    if hosts:
        body.append('<section id="target"><h2>Target</h2><table><tbody>' + "".join(
            f'<tr><th class="mono">{_e(k)}</th><td class="mono">{_e(v)}</td></tr>' for k, v in hosts.items())
            + "</tbody></table></section>")
    return _page(f"Conformance report: {verdict.upper()}", header, body)


# -- drift / diff -----------------------------------------------------------------------------------------
def findings_verdict(data: dict, fail_on: str = "breaking") -> bool:
    """True when a finding of ``data`` (:meth:`Report.to_json`) reaches ``fail_on`` (as ``Report.fails``)."""
    limit = {"breaking": 0, "non-breaking": 1, "any": 2, "none": -1}.get(fail_on, 0)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return any(rank.get(_d(f).get("severity"), 0) <= limit for f in _l(_d(data).get("findings")))


def render_findings(data: dict, fail_on: str = "breaking") -> str:
    """Render a drift or diff report's JSON (:meth:`conformance.drift.findings.Report.to_json`) as one
    self-contained HTML page.

    Args:
        data: the report's JSON dict (``kind``, ``title``, ``subject``, ``summary``, ``operations``,
            ``findings`` with ``severity``, ``operation``, ``kind``, ``pointer``, ``message``, ``example``,
            ``count``). Missing or malformed keys are rendered as absent.
        fail_on: the ``--fail-on`` threshold, shown with the verdict (``breaking``, ``non-breaking``, ``any``,
            ``none``).

    Returns:
        The HTML text: the counts per class, an operation × class table linking to the findings, and the
        findings grouped by class with their details. Every value from ``data`` is escaped.
    """
    data = _d(data)
    ids = _Ids()
    findings = [f for f in _l(data.get("findings")) if isinstance(f, dict)]
    for f in findings:
        if f.get("severity") not in SEVERITIES:
            f["severity"] = "info"
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in SEVERITIES}
    fails = findings_verdict(data, fail_on)
    kind = str(data.get("kind") or "drift")
    operations = [str(o) for o in _l(data.get("operations"))]
    for f in findings:
        if str(f.get("operation")) not in operations:
            operations.append(str(f.get("operation")))
    verdict = "failed" if fails else "passed"
    word = (f"FAILS (--fail-on {fail_on})" if fails else
            ("no drift" if not findings else f"passes (--fail-on {fail_on})"))
    tiles = "".join(f'<li class="{f"s-{s}" if counts[s] else ""}"><b>{counts[s]}</b> {SEVERITY_TITLE[s].lower()}</li>'
                    for s in SEVERITIES)
    tiles += f"<li><b>{len(operations)}</b> operation(s) checked</li>"
    header = (
        '<header class="top">'
        f'<h1>{_e(kind)} report <span class="verdict v-{verdict}" id="verdict" data-verdict="{verdict}">'
        f"{_e(word)}</span></h1>"
        f'<p class="meta">{_e(data.get("title"))}</p>'
        f'<ul class="totals" id="totals">{tiles}</ul>'
        '<nav class="toc"><a href="#matrix">by operation</a>'
        + "".join(f'<a href="#{s}">{SEVERITY_TITLE[s].lower()} ({counts[s]})</a>' for s in SEVERITIES)
        + '<a href="#subject">subject</a></nav></header>')
    body = [_filters([("", "all"), ("breaking", "only breaking"), ("non-breaking", "only non-breaking"),
                      ("info", "only informational")], "operation", operations, "text")]

    # per-finding ids first, so the table can link to the first finding of each (operation, class)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: (order[f["severity"]], str(f.get("operation")), str(f.get("pointer")),
                                 str(f.get("kind"))))
    first: dict[tuple[str, str], str] = {}
    for f in findings:
        f["_id"] = ids(_id("finding", f["severity"], f.get("operation"), f.get("kind")))
        first.setdefault((str(f.get("operation")), f["severity"]), f["_id"])

    body.append('<section id="matrix"><h2>Findings by operation and class</h2>'
                '<table class="matrix"><thead><tr><th>operation</th>'
                + "".join(f"<th>{SEVERITY_TITLE[s]}</th>" for s in SEVERITIES) + "</tr></thead><tbody>")
    for op in operations:
        row = [f'<tr id="{ids(_id("op", op))}" data-row="{_key(op)}" data-group="{_e(op)}">'
               f'<th class="check mono">{_e(op)}</th>']
        for s in SEVERITIES:
            n = sum(1 for f in findings if str(f.get("operation")) == op and f["severity"] == s)
            if n:
                row.append(f'<td class="cell s-{s}" data-status="{s}"><a href="#{first[(op, s)]}">'
                           f"{_e(SEVERITY_TITLE[s].lower())} {n}</a></td>")
            else:
                row.append('<td class="cell s-none" data-status="none">0</td>')
        body.append("".join(row) + "</tr>")
    body.append("</tbody></table></section>")
    if not findings:
        body.append('<p class="empty">No drift: nothing differs.</p>')
    for s in SEVERITIES:
        body.append(f'<section id="{s}" data-section="{s}"><h2>{SEVERITY_TITLE[s]} ({counts[s]})</h2>')
        items = [f for f in findings if f["severity"] == s]
        for f in items:
            op = str(f.get("operation"))
            example = f.get("example")
            ex_text = (example if isinstance(example, str)
                       else json.dumps(example, indent=2, ensure_ascii=False, sort_keys=True, default=str))
            ex_html = (f"<dt>example</dt><dd>{_pre(ex_text, ids, f['_id'] + '-ex', EXAMPLE_LIMIT)}</dd>"
                       if example is not None else "")
            times = f' <span class="muted">(×{_int(f.get("count"))})</span>' if _int(f.get("count")) > 1 else ""
            body.append(
                f'<article class="card k-{s}" id="{f["_id"]}" data-kind="{s}" data-group="{_e(op)}" '
                f'data-item="{_key(op, f.get("kind"), f.get("pointer"), f.get("message"))}">'
                f'<h3><span class="badge s-{s}">{_e(SEVERITY_TITLE[s].lower())}</span> <span class="mono">'
                f'{_e(op)}</span>: {_e(f.get("kind"))}{times}</h3>'
                f'<dl class="kv"><dt>message</dt><dd>{_e(f.get("message"))}</dd>'
                f'<dt>where</dt><dd class="mono">{_e(f.get("pointer"))}</dd>'
                f'<dt>count</dt><dd>{_e(f.get("count"))}</dd>{ex_html}</dl></article>')
        body.append(f'<p class="empty">no {SEVERITY_TITLE[s].lower()} finding</p>' if not items else
                    '<p class="empty f-empty" hidden>no finding matches the filters</p>')
        body.append("</section>")
    subject = _d(data.get("subject"))
    body.append('<section id="subject"><h2>Subject</h2>')
    body.append(f"<pre>{_e(json.dumps(subject, indent=2, ensure_ascii=False, default=str))}</pre>" if subject
                else '<p class="empty">nothing recorded</p>')
    body.append("</section>")
    return _page(f"{kind} report: {word}", header, body)


# -- writing --------------------------------------------------------------------------------------------
def _write(text: str, path: str | Path) -> None:
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(text.encode("utf-8", "replace"))  # a lone surrogate from a hostile body becomes "?"


def write_run(results: Any, path: str | Path) -> None:
    """Write the HTML report of a run to ``path`` (its folder is created when missing).

    Args:
        results: a :class:`conformance.results.Results` (its ``to_json()`` is rendered) or that JSON dict.
        path: the file to write (UTF-8, one self-contained page).

    Raises:
        OSError: the file cannot be written (callers check report paths before a run; see ``_report_paths``).
    """
    data = results.to_json() if hasattr(results, "to_json") else results
    _write(render_run(data), path)


def write_findings(report: Any, path: str | Path, fail_on: str = "breaking") -> None:
    """Write the HTML report of a drift or diff to ``path`` (its folder is created when missing).

    Args:
        report: a :class:`conformance.drift.findings.Report` (its ``to_json()`` is rendered) or that dict.
        path: the file to write (UTF-8, one self-contained page).
        fail_on: the ``--fail-on`` threshold shown with the verdict.

    Raises:
        OSError: the file cannot be written.
    """
    data = report.to_json() if hasattr(report, "to_json") else report
    _write(render_findings(data, fail_on), path)


__all__ = ["render_findings", "render_run", "run_verdict", "findings_verdict", "write_findings", "write_run"]
