"""The ``conformance`` command line: exit codes (0 passed, 1 failures, 2 usage/configuration) with one clear
line and no traceback, the check listing, and report files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from aiohttp import web
from threaded_server import serve

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-500:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def accept_everything(request: web.Request) -> web.Response:
    """A server that ignores credentials: every request gets 200 with an empty object."""
    await request.read()
    return web.json_response({})


def test_unknown_provider_is_one_line_and_exit_2():
    line = one_line_error(cli("run", "--provider", "nope"))
    assert "unknown provider 'nope'" in line and "openai" in line


def test_bad_flag_is_one_line_and_exit_2():
    line = one_line_error(cli("run", "--all", "--no-such-flag"))
    assert "--no-such-flag" in line


@pytest.mark.parametrize("args,needle", [
    (["run"], "--provider"),
    (["run", "--all", "--check", "no_such_check"], "no_such_check"),
    (["run", "--all", "--examples", "many"], "--examples"),
    (["run", "--provider", "fal", "--provider", "openai", "--source-video-id", "x"], "PROVIDER=x"),
    (["run", "--provider", "openai", "--max-spend-usd", "-3"], "--max-spend-usd"),
    (["run", "--provider", "openai", "--json", "/dev/null/r.json"], "cannot create directory /dev/null"),
    ([], "run | checks"),
])
def test_usage_errors_are_one_line_and_exit_2(args, needle):
    assert needle in one_line_error(cli(*args))


def test_unreachable_base_url_is_one_line_and_exit_2():
    port = _free_port()
    line = one_line_error(cli("run", "--provider", "openai", "--base-url", f"http://127.0.0.1:{port}",
                              env={"OPENAI_API_KEY": "k"}))
    assert "cannot reach" in line and str(port) in line


def test_missing_api_key_for_a_real_provider_is_exit_2():
    with serve(accept_everything) as url:
        env = {k: v for k, v in os.environ.items() if k != "FAL_KEY"}
        proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--provider", "fal", "--base-url", url],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert "FAL_KEY is not set" in one_line_error(proc)


def test_checks_lists_the_registry():
    proc = cli("checks")
    assert proc.returncode == 0
    for name in ("progress_monotonic", "response_schema_conformance", "examples_valid", "auth_required"):
        assert name in proc.stdout


def test_document_checks_pass_with_exit_0():
    proc = cli("run", "--all", "--check", "document", "--seed", "5", "--no-progress")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "examples_valid" in proc.stdout and "seed 5" in proc.stdout


def test_failures_give_exit_1_and_reports(tmp_path):
    """A server that ignores credentials: auth_required fails -> exit 1, and every report names the failure
    with a reproducible, redacted curl command and the seed."""
    junit, js, md = tmp_path / "r.xml", tmp_path / "r.json", tmp_path / "r.md"
    with serve(accept_everything) as url:
        proc = cli("run", "--provider", "gptge", "--base-url", url, "--check", "auth_required", "--seed", "42",
                   "--examples", "4", "--no-progress", "--junit", str(junit), "--json", str(js), "--markdown", str(md),
                   env={"GPTGE_API_KEY": "secret-gptge-key-123"})
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "auth_required" in proc.stdout and "✗" in proc.stdout
    for path in (junit, js, md):
        text = path.read_text()
        assert "secret-gptge-key-123" not in text, f"{path.name} leaks the key"
    data = json.loads(js.read_text())
    assert data["seed"] == 42 and data["ok"] is False
    out = next(o for o in data["outcomes"] if o["check"] == "auth_required")
    assert out["status"] == "failed" and out["failures"][0]["curl"].startswith("curl ")
    assert out["failures"][0]["seed"] == 42
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("name") == "gptge"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "auth_required")
    assert case.find("failure") is not None and "curl" in case.find("failure").text
    skipped = [c for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert skipped == [] or all(c.find("skipped").get("message") for c in skipped)
    assert "| auth_required |" in md.read_text() and "```sh" in md.read_text()
    # the examples count per operation is reported
    assert any(e["count"] > 0 for e in data["examples"])
