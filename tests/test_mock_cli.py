"""The ``mockserver`` command: providers listing, serve lifecycle, usage errors (exit code 2)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

import specs

PY = sys.executable


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "mockserver", *args], capture_output=True, text=True, timeout=timeout)


def test_providers_lists_the_six_from_provider_yaml():
    out = run("providers", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == specs.provider_ids()
    fal = next(r for r in rows if r["id"] == "fal")
    assert fal["family"] == specs.load("fal").provider["family"]
    assert [h["base_url"] for h in fal["hosts"]] == [h["base_url"] for h in specs.load("fal").hosts]
    assert fal["auth"]["schemes"] == specs.load("fal").auth["schemes"]
    table = run("providers")
    assert table.returncode == 0
    for pid in specs.provider_ids():
        assert pid in table.stdout
    assert "queue.fal.run" in table.stdout and "Key <key>" in table.stdout


@pytest.mark.parametrize("args,needle", [
    (["serve", "--port", "99999"], "out of range"),
    (["serve", "--provider", "nope"], "unknown provider 'nope'"),
    (["serve", "--speed", "0"], "--speed"),
    (["serve", "--fault", "meltdown"], "unknown fault kind"),
    (["serve", "--rate-limit", "fast"], "--rate-limit"),
    (["serve", "--profile", "/nonexistent/profile.yaml"], "cannot read profile"),
    (["serve", "--timing", "fal"], "--timing"),
    (["serve", "--clock", "sundial"], "invalid choice"),
    (["bogus"], "invalid choice"),
])
def test_usage_errors_are_one_line_and_exit_2(args, needle):
    out = run(*args)
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.strip() and not ln.startswith("usage:")
             and not ln.startswith(" ")]
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_serve_prints_base_urls_and_stops_cleanly_on_sigterm(tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text("seed: 4\ntimings:\n  openai: {queued_seconds: 0, in_progress_seconds: 0.1}\n")
    proc = subprocess.Popen([PY, "-m", "mockserver", "serve", "--port", "0", "--only", "openai", "--only", "fal",
                             "--profile", str(profile)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "admin API" in line or (not line and proc.poll() is not None):
                break
        text = "".join(lines)
        found = re.search(r"mockserver (http://127\.0\.0\.1:\d+)", text)
        assert found, text + proc.stderr.read()
        root = found.group(1)
        assert f"{root}/openai/v1" in text and f"{root}/fal " in text and f"{root}/fal-run" in text
        assert "sunra" not in text
        with urllib.request.urlopen(f"{root}/__mock/health", timeout=5) as resp:
            health = json.loads(resp.read())
        assert health["mock"] == "sora-remix-mock"
        assert {m["provider"] for m in health["mounts"]} == {"openai", "fal"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "shutting down" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_single_provider_at_the_root():
    proc = subprocess.Popen([PY, "-m", "mockserver", "serve", "--port", "0", "--provider", "gptge"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        root = None
        for _ in range(20):
            m = re.search(r"mockserver (http://127\.0\.0\.1:\d+)", proc.stdout.readline())
            if m:
                root = m.group(1)
                break
        req = urllib.request.Request(f"{root}/v1/videos/video_x", headers={"Authorization": "Bearer k"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 404 and "error" in json.loads(err.value.read())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_port_in_use_is_a_clear_error():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        out = run("serve", "--port", str(s.getsockname()[1]), "--only", "openai")
        assert out.returncode == 2 and "cannot serve" in out.stderr and "Traceback" not in out.stderr
    finally:
        s.close()


def test_tls_serves_https_and_prints_the_ca_path(tmp_path):
    import ssl

    proc = subprocess.Popen([PY, "-m", "mockserver", "serve", "--port", "0", "--only", "openai", "--tls",
                             "--tls-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        text = ""
        deadline = time.monotonic() + 30
        while "TLS CA" not in text and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            text += line
        root = re.search(r"mockserver (https://127\.0\.0\.1:\d+)", text).group(1)
        ca = re.search(r"TLS CA\s+(\S+)", text).group(1)
        assert ca.startswith(str(tmp_path))
        ctx = ssl.create_default_context(cafile=ca)
        with urllib.request.urlopen(f"{root}/__mock/health", timeout=5, context=ctx) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        with pytest.raises(urllib.error.URLError):  # not trusted without the mock's CA
            urllib.request.urlopen(f"{root}/__mock/health", timeout=5, context=ssl.create_default_context())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
