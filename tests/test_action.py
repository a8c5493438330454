"""The GitHub Action (action.yml, run-conformance/action.yml): their steps run locally as the runner would run
them, with the scripts in scripts/action/.

A small runner emulation reads the action's metadata, fills ``${{ inputs.* }}``, ``${{ github.action_path }}``,
``${{ runner.temp }}`` and ``${{ steps.*.outputs.* }}``, evaluates each step's ``if:``, and runs each ``run:``
step as ``shell: bash`` does (``bash --noprofile --norc -eo pipefail FILE``) with the step's ``env:``, a fresh
``GITHUB_OUTPUT`` file per step (read back as the step's outputs), ``GITHUB_STEP_SUMMARY``,
``GITHUB_ACTION_PATH`` and ``RUNNER_TEMP``. ``uses:`` steps (actions/upload-artifact) are recorded, not run.
The mock listens on 127.0.0.1 only, on free ports; every wait is bounded and every mock started is stopped
(by its pid) when a test ends.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MOCK_ACTION = ROOT / "action.yml"
CONFORMANCE_ACTION = ROOT / "run-conformance" / "action.yml"
STEP_TIMEOUT = 180  # seconds any one step may take
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ActionRun:
    """The result of one use of an action: its outputs, the steps that ran (id or name, exit code, output)."""

    def __init__(self) -> None:
        self.outputs: dict[str, str] = {}
        self.steps: list[dict] = []
        self.failed: dict | None = None

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s['name']} (exit {s['rc']})\n{s['out']}" for s in self.steps)


def _value(term: str, ctx: dict) -> str:
    term = term.strip()
    if len(term) >= 2 and term[0] == term[-1] == "'":
        return term[1:-1]
    if term.startswith("inputs."):
        return ctx["inputs"][term[len("inputs."):]]
    if term == "github.action_path":
        return ctx["action_path"]
    if term == "runner.temp":
        return ctx["runner_temp"]
    m = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", term)
    if m:
        return ctx["steps"].get(m[1], {}).get(m[2], "")
    raise AssertionError(f"the test's runner emulation does not support the expression {term!r}")


def _substitute(text: str, ctx: dict) -> str:
    return EXPR.sub(lambda m: _value(m[1], ctx), str(text))


def _condition(expr: str, ctx: dict) -> bool:
    """``if:`` of the forms the actions use: comparisons (``==``, ``!=``) joined by ``&&``."""
    expr = EXPR.sub(lambda m: m[1], str(expr))
    for term in expr.split("&&"):
        m = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", term)
        assert m, f"the test's runner emulation does not support the condition {expr!r}"
        equal = _value(m[1], ctx) == _value(m[3], ctx)
        if equal != (m[2] == "=="):
            return False
    return True


def run_action(action: Path, inputs: dict[str, str], tmp: Path, *, env: dict[str, str] | None = None) -> ActionRun:
    """Run ``action`` (its metadata file) with ``inputs`` the way the runner runs a composite action."""
    meta = yaml.safe_load(action.read_text())
    assert meta["runs"]["using"] == "composite"
    unknown = set(inputs) - set(meta["inputs"])
    assert not unknown, f"inputs the action does not declare: {unknown}"
    values = {name: str(spec.get("default", "")) for name, spec in meta["inputs"].items()}
    values.update({k: str(v) for k, v in inputs.items()})
    runner_temp = tmp / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    ctx = {"inputs": values, "action_path": str(action.parent), "runner_temp": str(runner_temp), "steps": {}}
    result = ActionRun()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "GITHUB_"))}
    base_env.update({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(runner_temp),
                     "GITHUB_STEP_SUMMARY": str(tmp / "step-summary.md"), "GITHUB_ACTION_PATH": str(action.parent),
                     **(env or {})})
    for n, step in enumerate(meta["runs"]["steps"]):
        name = step.get("id") or step.get("name") or f"step{n}"
        if "if" in step and not _condition(step["if"], ctx):
            continue
        if "uses" in step:
            result.steps.append({"name": name, "rc": 0, "out": f"(uses {step['uses']}: not run locally)",
                                 "uses": step["uses"], "with": {k: _substitute(v, ctx)
                                                                for k, v in (step.get("with") or {}).items()}})
            continue
        assert step.get("shell") == "bash", f"step {name} must run with shell: bash"
        out_file = tmp / f"github-output-{n}"
        out_file.write_text("")
        script = tmp / f"step-{n}.sh"
        script.write_text(_substitute(step["run"], ctx))
        step_env = {**base_env, "GITHUB_OUTPUT": str(out_file),
                    **{k: _substitute(v, ctx) for k, v in (step.get("env") or {}).items()}}
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], env=step_env,
                              cwd=tmp, capture_output=True, text=True, timeout=STEP_TIMEOUT)
        outputs = {}
        for line in out_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            assert sep, f"step {name} wrote a malformed output line {line!r}"
            outputs[key] = value
        if step.get("id"):
            ctx["steps"][step["id"]] = outputs
        record = {"name": name, "rc": proc.returncode, "out": proc.stdout + proc.stderr, "outputs": outputs}
        result.steps.append(record)
        if proc.returncode != 0:
            result.failed = record
            break
    if result.failed is None:
        result.outputs = {k: _substitute(spec["value"], ctx) for k, spec in (meta.get("outputs") or {}).items()}
    return result


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # exited (a zombie until its parent reaps it)


def _get(url: str, headers: dict | None = None, context=None) -> tuple[int, dict | str]:
    handlers = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.build_opener(*handlers).open(req, timeout=10) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


@pytest.fixture
def started(tmp_path):
    """Pids of mocks started by a test; any still running at its end are stopped by pid."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if not _gone(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _start(tmp_path: Path, started: list[int], **inputs: str) -> ActionRun:
    run = run_action(MOCK_ACTION, {"python": sys.executable, "port": "0", **inputs}, tmp_path)
    for step in run.steps:
        pid = step.get("outputs", {}).get("pid")
        if pid:
            started.append(int(pid))
    return run


def test_start_exposes_the_urls_and_stop_ends_the_process(tmp_path, started):
    t0 = time.monotonic()
    run = _start(tmp_path, started, providers="openai, fal", speed="20", seed="3", **{"api-key": "sk-action-test"})
    assert run.failed is None, run.log
    print(f"start (install: auto, already installed; start; wait; outputs): {time.monotonic() - t0:.1f} s")
    assert [s["name"] for s in run.steps] == ["Install the toolkit", "start"]
    out = run.outputs
    url = out["url"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), out
    assert out["health-url"] == f"{url}/__mock/health"
    assert out["openai-url"] == f"{url}/openai/v1"
    assert out["fal-url"] == f"{url}/fal" and out["fal-run-url"] == f"{url}/fal-run"
    assert json.loads(out["base-urls"]) == {"openai": out["openai-url"], "fal": out["fal-url"],
                                            "fal-run": out["fal-run-url"]}
    assert out["sunra-url"] == "" and out["ca-path"] == ""
    assert all(out[k] for k in ("url", "health-url", "base-urls", "pid", "log-path"))
    key_lines = [line for line in run.log.splitlines() if "sk-action-test" in line]
    assert key_lines == ["::add-mask::sk-action-test"], key_lines  # masked on GitHub, never printed otherwise
    pid = int(out["pid"])
    assert "mockserver" in Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\0", " ")
    assert os.getpgid(pid) == pid, "the mock runs in its own session (it outlives the step's shell)"
    assert Path(out["log-path"]).is_file()

    status, health = _get(out["health-url"])
    assert status == 200 and health["status"] == "ok" and health["speed"] == 20.0
    assert {m["provider"] for m in health["mounts"]} == {"openai", "fal"}
    assert _get(f"{out['openai-url']}/videos")[0] == 401  # --api-key: another key is refused
    assert _get(f"{out['openai-url']}/videos", {"Authorization": "Bearer sk-action-test"})[0] == 200

    again = _start(tmp_path, started, providers="openai")  # same state dir: refused, the first one untouched
    assert again.failed is not None and again.failed["rc"] == 2 and "already running" in again.failed["out"]
    assert not _gone(pid)

    t0 = time.monotonic()
    stop = run_action(MOCK_ACTION, {"mode": "stop"}, tmp_path)
    assert stop.failed is None, stop.log
    assert [s["name"] for s in stop.steps] == ["stop"]
    assert f"stopped (pid {pid})" in stop.log and "mock log" in stop.log
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid), "the mock's process is still running after stop"
    print(f"stop: {time.monotonic() - t0:.1f} s")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2).close()
    again = run_action(MOCK_ACTION, {"mode": "stop"}, tmp_path)  # idempotent
    assert again.failed is None and "not running" in again.log


def test_tls_outputs_the_ca_path(tmp_path, started):
    import ssl

    run = _start(tmp_path, started, providers="fal", tls="true")
    assert run.failed is None, run.log
    out = run.outputs
    assert out["url"].startswith("https://127.0.0.1:") and out["fal-url"] == out["url"] + "/fal"
    ca = Path(out["ca-path"])
    assert ca.is_file() and ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    status, health = _get(out["health-url"], context=ssl.create_default_context(cafile=str(ca)))
    assert status == 200 and health["status"] == "ok"
    stop = run_action(MOCK_ACTION, {"mode": "stop"}, tmp_path)
    assert stop.failed is None, stop.log
    assert _gone(int(out["pid"]))


@pytest.mark.parametrize("inputs,rc,needle", [
    ({"mode": "restart"}, 2, "mode must be start or stop"),
    ({"clock": "sometimes"}, 2, "clock must be system or manual"),
    ({"port": "http"}, 2, "port must be a number"),
    ({"tls": "maybe"}, 2, "tls must be true or false"),
    ({"providers": "open ai!"}, 2, "is not a provider id"),
    ({"args": "--no-such-flag"}, 1, "exited before answering"),
    ({"args": "--timing 'unclosed"}, 2, "cannot split"),
    ({"install": "sometimes"}, 2, "install must be auto, true or false"),
])
def test_bad_inputs_fail_fast_with_one_line(tmp_path, started, inputs, rc, needle):
    t0 = time.monotonic()
    run = _start(tmp_path, started, **inputs)
    assert run.failed is not None and run.failed["rc"] == rc, run.log
    assert needle in run.failed["out"], run.log
    assert "::error title=sora-mock::" in run.failed["out"]
    assert "Traceback" not in run.failed["out"].split("--- mock log")[0]
    assert time.monotonic() - t0 < 60
    pidfile = tmp_path / "runner-temp" / "sora-mock" / "pid"
    if pidfile.exists():  # a mock that did not come up is stopped by start itself
        assert _gone(int(pidfile.read_text()))


def test_wait_is_bounded(tmp_path):
    """A server that accepts and never answers: ``wait`` gives up after SORA_MOCK_TIMEOUT seconds."""
    state = tmp_path / "state"
    state.mkdir()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (state / "url").write_text(f"http://127.0.0.1:{silent.getsockname()[1]}\n")
        (state / "pid").write_text(f"{sleeper.pid}\n")
        env = {**os.environ, "SORA_MOCK_STATE_DIR": str(state), "SORA_MOCK_PYTHON": sys.executable,
               "SORA_MOCK_TIMEOUT": "2"}
        t0 = time.monotonic()
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "action" / "wait")], env=env, capture_output=True,
                              text=True, timeout=60)
        took = time.monotonic() - t0
        assert proc.returncode == 1 and "did not answer within 2 s" in proc.stderr, proc
        assert took < 15, took
        # and a mock whose process is gone is reported at once
        sleeper.kill()
        sleeper.wait(timeout=10)
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "action" / "wait")], env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1 and "exited before answering" in proc.stderr, proc
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait(timeout=10)
        silent.close()


def test_run_conformance_against_the_started_mock(tmp_path, started):
    run = _start(tmp_path, started, providers="openai")
    assert run.failed is None, run.log
    try:
        reports = tmp_path / "reports"
        conf = run_action(CONFORMANCE_ACTION, {"python": sys.executable, "base-url": run.outputs["url"],
                                               "args": "--provider openai --check document --seed 5",
                                               "reports-dir": str(reports)}, tmp_path)
        assert conf.failed is None, conf.log
        assert conf.outputs["exit-code"] == "0" and conf.outputs["verdict"] == "passed", conf.log
        for name in ("junit.xml", "results.json", "report.md", "report.html"):
            assert (reports / name).is_file(), name
        assert conf.outputs["html"] == str(reports / "report.html")
        upload = next(s for s in conf.steps if s.get("uses"))
        assert upload["uses"].startswith("actions/upload-artifact@")
        assert upload["with"]["path"] == str(reports) and upload["with"]["name"] == "conformance-reports"
        assert (tmp_path / "step-summary.md").read_text().startswith("# Conformance report")
        assert json.loads((reports / "results.json").read_text())["target"]["kind"] == "mock"

        bad = run_action(CONFORMANCE_ACTION, {"python": sys.executable, "args": "--provider nope",
                                              "reports-dir": str(tmp_path / "bad"), "upload": "false"}, tmp_path)
        assert bad.failed is not None and bad.failed["rc"] == 2, bad.log
        assert bad.failed["name"] == "Fail on a non-zero exit" and "usage-error" in bad.failed["out"]
        assert not any(s.get("uses") for s in bad.steps)
    finally:
        stop = run_action(MOCK_ACTION, {"mode": "stop"}, tmp_path)
        assert stop.failed is None, stop.log


def test_every_output_and_input_is_wired():
    """Each input reaches a step and each output is a step's output (their values: the tests above)."""
    for action in (MOCK_ACTION, CONFORMANCE_ACTION):
        meta = yaml.safe_load(action.read_text())
        text = action.read_text()
        for name in meta["inputs"]:
            assert f"inputs.{name}" in text, f"{action.name}: input {name} is not used"
        for name, spec in (meta.get("outputs") or {}).items():
            assert re.fullmatch(r"\$\{\{ steps\.[\w-]+\.outputs\.[\w-]+ \}\}", spec["value"]), (name, spec)
            assert spec.get("description")
