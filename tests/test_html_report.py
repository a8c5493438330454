"""The HTML reports (``--html PATH``) of ``conformance run``, ``drift`` and ``diff``, checked in a real
headless Chromium (Debian's package, installed by scripts/install-chromium; these tests never skip).

The run report comes from a small real run (``conformance run --provider openai --examples 3
--lifecycle-runs 1 --lifecycle-steps 3``) against the mock behind a corrupting proxy on 127.0.0.1: retrieve
answers lose their required ``progress`` and carry hostile text (markup in a body field and a header), so the
run fails and its failures hold input that must be escaped. Chromium is driven over the Chrome DevTools
Protocol (``--remote-debugging-port``, the ``websockets`` package): real mouse clicks on a filter and on a
failing matrix cell, typed text in the check filter, DOM reads, and screenshots into the pytest tmp dir (the
paths are printed). The drift and diff reports are loaded with ``chromium --dump-dom``. Every browser is
killed in a ``finally``; every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from aiohttp import ClientSession, web
from threaded_server import serve

import specs
from conformance import html_report
from conformance.drift.cli import main as drift_main
from mockserver.embedded import EmbeddedMock

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--window-size=1280,1000"]
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">&amp;</pre>'
HOSTILE_HEADER = "<b onmouseover=alert(1)>bold</b>"
RUN_TIMEOUT = 240  # seconds the small conformance run may take


def chromium_path() -> str:
    """The Chromium binary (``CHROMIUM_BIN`` or ``chromium`` on PATH); fails the test when it is missing."""
    found = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: run scripts/install-chromium (Debian package chromium)")
    return found


# -- a corrupting proxy in front of the mock ----------------------------------------------------------------
class HostileProxy:
    """A reverse proxy on 127.0.0.1 in front of ``upstream`` (the mock): each JSON answer of a video retrieve
    (``GET .../videos/{id}``) loses ``progress`` (a required field: response_schema_conformance fails) and
    gains a ``hostile`` field, and carries an ``X-Hostile`` header, both holding markup."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        body = await request.read()
        async with ClientSession(auto_decompress=False) as s, s.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body or None,
                allow_redirects=False) as r:
            data = await r.read()
            status = r.status
            out = {k: v for k, v in r.headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection",
                                        "date", "server")}
        data = data.replace(self.upstream.encode(), self.url.encode())
        if (request.method == "GET" and re.fullmatch(r".*/videos/video_[^/]+", request.path)
                and not request.path.startswith("/__mock")):
            try:
                doc = json.loads(data)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and doc.get("object") == "video":
                doc.pop("progress", None)
                data = json.dumps({"hostile": HOSTILE, **doc}).encode()
                out["X-Hostile"] = HOSTILE_HEADER
        return web.Response(status=status, headers=out, body=data)

    def __enter__(self) -> HostileProxy:
        self._server = serve(self._handle, method="*")
        self.url = self._server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._server.__exit__(*exc)


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    """A small real run with --json and --html against the mock behind :class:`HostileProxy` (exit 1)."""
    out = tmp_path_factory.mktemp("run")
    with EmbeddedMock(providers=["openai"], speed=10) as mock, HostileProxy(mock.url) as proxy:
        cmd = [sys.executable, "-m", "conformance", "run", "--provider", "openai", "--base-url", proxy.url,
               "--examples", "3", "--lifecycle-runs", "1", "--lifecycle-steps", "3", "--seed", "7",
               "--job-timeout", "20", "--max-time", "180", "--no-progress",
               "--json", str(out / "run.json"), "--html", str(out / "reports" / "run.html")]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        print(f"conformance run: exit {proc.returncode} in {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 1 and (out / "run.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((out / "run.json").read_text())
    return data, out / "reports" / "run.html"


# -- Chromium over the DevTools protocol ----------------------------------------------------------------
class Browser:
    """Headless Chromium with a fresh profile, driven over CDP (one page). Use as a context manager: the
    process is killed and the profile removed when the block ends."""

    def __init__(self, timeout: float = 20.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.proc: subprocess.Popen | None = None
        self.ws = None
        self._next = 0

    def __enter__(self) -> Browser:
        from websockets.sync.client import connect

        try:
            self.proc = subprocess.Popen(
                [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
                 "--remote-debugging-address=127.0.0.1", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            port_file = Path(self.profile) / "DevToolsActivePort"
            deadline = time.monotonic() + self.timeout
            while not (port_file.exists() and port_file.read_text().strip()):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Chromium did not open its DevTools port (exit {self.proc.poll()})")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            while True:
                with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if not pages:
                raise RuntimeError("Chromium has no page target")
            self._ws_cm = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
            self.ws = self._ws_cm.__enter__()
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.ws is not None:
                self._ws_cm.__exit__(None, None, None)
        finally:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, 9)
                except ProcessLookupError:
                    pass
            if self.proc is not None:
                self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, params: dict | None = None) -> dict:
        """Send one CDP command and return its result (events in between are ignored)."""
        self._next += 1
        ident = self._next
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"CDP {method}: no answer within {self.timeout} s")
            msg = json.loads(self.ws.recv(timeout=left))
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(f"CDP {method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression: str):
        """Evaluate ``expression`` in the page and return its JSON value."""
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True})
        if res.get("exceptionDetails"):
            raise RuntimeError(f"page exception: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def open(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && document.documentElement.dataset.ready === '1'",
                      f"{url} to load and its script to run")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed + released) at the centre of the first element matching ``selector``,
        scrolled into view first."""
        box = self.js(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
            if (!el) return null; el.scrollIntoView({{block: 'center'}}); const r = el.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        assert box is not None, f"nothing matches {selector}"
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                   "clickCount": 1})

    def type(self, text: str) -> None:
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": min(size[1], 6000), "scale": 1}
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params)["data"]))
        return path


VISIBLE_ROWS = "Array.from(document.querySelectorAll('#matrix-table tbody tr')).filter(r => !r.hidden)"


def test_run_report_in_headless_chromium(failing_run, tmp_path):
    data, html_path = failing_run
    text = html_path.read_text(encoding="utf-8")
    failing = [o for o in data["outcomes"] if o["failed"]]
    passing = [o for o in data["outcomes"] if o["status"] == "passed"]
    assert failing and passing, "the corrupting proxy should make some checks fail and leave others passing"
    assert "response_schema_conformance" in {o["check"] for o in failing}
    # self-contained and escaped: one script (ours), nothing fetched, hostile text only as text
    assert text.count("<script") == 1 and "<link" not in text and "@import" not in text and "url(" not in text
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", text)
    assert HOSTILE not in text and HOSTILE_HEADER not in text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in text
    # in step with the JSON report: a details card for each failing outcome
    for o in failing:
        assert f'id="fail-openai-{o["check"]}"' in text

    with Browser() as b:
        b.open(html_path.as_uri())
        # it renders: verdict, totals and the whole matrix are in the DOM
        assert b.js("document.getElementById('verdict').textContent") == "FAILED"
        assert b.js("document.querySelectorAll('#matrix-table tbody tr').length") == len(data["checks"])
        assert b.js("document.querySelectorAll('#matrix-table td.s-failed').length") == len(failing)
        assert b.js("document.querySelector('#matrix-table td.s-failed').textContent").startswith("✗ FAIL")
        totals = b.js("document.getElementById('totals').innerText")
        assert f"{data['totals']['failed']} failed" in totals and f"{data['totals']['passed']} passed" in totals
        # hostile input stayed text: no script ran, no element was injected, the words are readable
        assert b.js("typeof window.__pwned") == "undefined"
        assert b.js("document.querySelectorAll('script').length") == 1
        assert b.js("document.querySelectorAll('img').length") == 0
        assert b.js("document.body.textContent.includes('<script>window.__pwned=1</script><img src=x onerror=')")
        assert b.js(f"document.body.textContent.includes({json.dumps(HOSTILE_HEADER)})")
        shot_top = b.screenshot(tmp_path / "run-report.png")
        shot_full = b.screenshot(tmp_path / "run-report-full.png", full_page=True)
        assert len(b.js(VISIBLE_ROWS)) == len(data["checks"])

        # a filter: "only failures" hides every row without a failing cell (and the skipped list)
        b.click('input[name="f-status"][value="failed"]')
        assert b.js("document.querySelector('input[name=\"f-status\"][value=\"failed\"]').checked")
        visible = b.js(VISIBLE_ROWS + ".map(r => r.dataset.check)")
        assert sorted(visible) == sorted(o["check"] for o in failing)
        a_pass = passing[0]["check"]
        assert b.js(f"document.querySelector('tr[data-check=\"{a_pass}\"]').offsetParent === null")
        assert b.js("Array.from(document.querySelectorAll('#skipped tr[data-item]')).every(r => r.hidden)")
        assert b.js("document.getElementById('f-count').textContent") == (
            f"{len(failing)} of {len(data['checks'])} rows shown")

        # a link from a failing cell leads to its failure details
        check = b.js("document.querySelector('#matrix-table td.s-failed').closest('tr').dataset.check")
        b.click("#matrix-table td.s-failed a")
        b.wait_for(f"location.hash === '#fail-openai-{check}'", "the link to change the location")
        card = b.js("""(() => { const el = document.querySelector(':target'); const r = el.getBoundingClientRect();
            return {id: el.id, hidden: el.hidden, top: r.top, height: innerHeight, text: el.innerText}; })()""")
        assert card["id"] == f"fail-openai-{check}" and not card["hidden"]
        assert -1 <= card["top"] < card["height"] / 2, "the failure details are scrolled into view"
        failure = next(o for o in failing if o["check"] == check)["failures"][0]
        assert check in card["text"] and "request (curl)" in card["text"] and "re-run" in card["text"]
        assert failure["rerun"] in card["text"] and str(failure["seed"]) in card["text"]
        assert "expectation from" in card["text"]
        shot_failure = b.screenshot(tmp_path / "run-report-failure.png")

        # the check-name filter (typed) combined with "all"
        b.click('input[name="f-status"][value=""]')
        b.click("#f-text")
        b.type("progress")
        names = b.js(VISIBLE_ROWS + ".map(r => r.dataset.check)")
        assert names and all("progress" in n for n in names)
        assert len(names) == sum(1 for c in data["checks"] if "progress" in c["name"])
        # a link to a card hidden by the filters clears them
        b.js("location.hash = ''")
        b.js(f"location.hash = '#fail-openai-{check}'")
        b.wait_for(f"!document.getElementById('fail-openai-{check}').hidden", "the hidden card to be revealed")
        assert b.js("document.getElementById('f-text').value") == ""
    for shot in (shot_top, shot_full, shot_failure):
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")


def test_run_report_sections(failing_run):
    """Failures, notes, suite errors and skipped checks each in their own section; examples; spend."""
    data, html_path = failing_run
    text = html_path.read_text(encoding="utf-8")
    for section in ("matrix", "failures", "notes", "suite-errors", "skipped", "examples", "spend", "checks"):
        assert f'id="{section}"' in text
    for o in data["outcomes"]:
        if o["status"] == "skipped":
            assert f'id="skip-openai-{o["check"]}"' in text
            assert html_report._e(o["skip_reason"]) in text
    for x in data["examples"]:
        assert html_report._e(x["operation"]) in text
    assert data["target"]["label"] in text


def _dump_dom(path: Path) -> str:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    proc = subprocess.Popen([chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                             path.as_uri()], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True, text=True)
    try:
        out, _ = proc.communicate(timeout=60)
        return out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def test_diff_and_drift_reports_render(tmp_path, capsys):
    """``diff --html`` (a breaking change) and ``drift --report html=`` (a non-breaking one), through the
    CLI, loaded in Chromium: the classes, the counts, a finding's details and the operation table."""
    src = specs.load("fal").directory
    new = tmp_path / "fal"
    new.mkdir()
    doc = yaml.safe_load((src / "openapi.yaml").read_text())
    doc["components"]["schemas"]["Sora2RemixInput"]["required"].append("delete_video")
    (new / "openapi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    diff_html = tmp_path / "out" / "diff.html"
    diff_json = tmp_path / "diff.json"
    assert drift_main(["diff", str(src), str(new), "--html", str(diff_html), "--report", f"json={diff_json}"]) == 1
    summary = json.loads(diff_json.read_text())["summary"]

    edited = tmp_path / "openai"
    edited.mkdir()
    doc = yaml.safe_load((specs.load("openai").directory / "openapi.yaml").read_text())
    video = doc["components"]["schemas"]["Video"]
    video["properties"].pop("remixed_from_video_id")
    video["required"].remove("remixed_from_video_id")
    (edited / "openapi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    drift_html = tmp_path / "drift.html"
    with EmbeddedMock(providers=["openai"], speed=50) as mock:
        assert drift_main(["drift", "--provider", "openai", "--contract", str(edited), "--base-url",
                           mock.base_url("openai"), "--poll-interval", "0.02", "--poll-timeout", "20",
                           "--report", f"html={drift_html}"]) == 0
    capsys.readouterr()

    dom = _dump_dom(diff_html)
    assert 'data-verdict="failed"' in dom and "FAILS (--fail-on breaking)" in dom
    assert re.search(r'<article class="card k-breaking" id="finding-breaking-submitRemix-new_required_request_'
                     r'field[^"]*"[^>]*>', dom)
    assert 'href="#finding-breaking-submitRemix-new_required_request_field' in dom
    assert "delete_video" in dom and summary["breaking"] >= 1
    for severity, title in (("breaking", "Breaking"), ("non-breaking", "Non-breaking"), ("info", "Informational")):
        assert f"<h2>{title} ({summary[severity]})</h2>" in dom
        assert dom.count(f'class="card k-{severity}"') == summary[severity]
    dom = _dump_dom(drift_html)
    assert 'data-verdict="passed"' in dom and "passes (--fail-on breaking)" in dom
    assert "undocumented_field" in dom and "/response/200/body/remixed_from_video_id" in dom
    assert 'class="card k-non-breaking"' in dom and "Breaking (0)" in dom


def test_report_paths_that_cannot_be_written_are_one_line_exit_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for argv in (["run", "--provider", "openai", "--html", str(blocker / "r.html")],
                 ["run", "--provider", "openai", "--html", str(tmp_path)],
                 ["diff", "openai", "openai", "--html", str(blocker / "r.html")],
                 ["diff", "openai", "openai", "--report", f"html={tmp_path}"]):
        proc = subprocess.run([sys.executable, "-m", "conformance", *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        err = proc.stderr.strip()
        assert proc.returncode == 2, (argv, proc.stdout, err)
        assert "\n" not in err and "Traceback" not in err and ("html" in err or "report" in err), err


@pytest.mark.parametrize("data", [None, {}, {"outcomes": "x", "checks": 3, "totals": []},
                                  {"outcomes": [None, {"provider": "p", "check": "c", "status": "weird"}]}])
def test_bad_input_never_crashes(data, tmp_path):
    html_report.write_run(data, tmp_path / "r.html")
    html_report.write_findings(data, tmp_path / "f.html")
    assert "</html>" in (tmp_path / "r.html").read_text() and "</html>" in (tmp_path / "f.html").read_text()


def test_hostile_values_everywhere_are_escaped(tmp_path):
    evil = '"><script>alert(1)</script>\ud800'
    failure = {"check": evil, "provider": evil, "operation": evil, "message": evil, "curl": evil, "seed": evil,
               "status": evil, "response": evil * 2000, "response_headers": {evil: evil},
               "source": {"kind": evil, "ref": evil, "quote": evil, "documented": False}, "rerun": evil}
    data = {"ok": False, "target": {"label": evil, "notes": [evil], "hosts": {evil: evil}}, "providers": [evil],
            "checks": [{"name": evil, "category": evil, "description": evil}],
            "outcomes": [{"provider": evil, "check": evil, "status": "failed", "failed": 1, "noted": 1,
                          "failures": [failure], "notes": [failure]}],
            "suite_errors": [{"name": evil, "provider": evil, "message": evil, "meaning": evil}],
            "examples": [{"provider": evil, "operation": evil, "count": evil}], "notes": {evil: [evil]},
            "spend": {"budget": {evil: evil}, "remaining": {evil: None}, "blocked": {evil: evil}}, "stopped": evil}
    html_report.write_run(data, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>alert" not in text and text.count("<script") == 1
    assert "characters)" in text  # the long body was trimmed
    report = {"kind": evil, "title": evil, "subject": {evil: evil}, "operations": [evil],
              "findings": [{"severity": "breaking", "operation": evil, "kind": evil, "pointer": evil,
                            "message": evil, "example": {evil: evil}, "count": 2}]}
    html_report.write_findings(report, tmp_path / "f.html")
    text = (tmp_path / "f.html").read_text(encoding="utf-8")
    assert "<script>alert" not in text and text.count("<script") == 1


def test_install_chromium_is_quiet_when_present():
    chromium_path()
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install-chromium")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc


def test_install_chromium_that_cannot_install_is_one_line_exit_2(tmp_path):
    """No chromium and no apt-get on PATH: one line, exit 2."""
    proc = subprocess.run(["/bin/bash", str(ROOT / "scripts" / "install-chromium")], capture_output=True,
                          text=True, timeout=60, env={"PATH": str(tmp_path), "HOME": str(tmp_path)})
    err = proc.stderr.strip()
    assert proc.returncode == 2 and proc.stdout == "" and "\n" not in err and "install-chromium: error:" in err
