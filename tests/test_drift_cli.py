"""The drift CLI end to end (``record``, ``drift``, ``diff``): reports, exit codes, secrets, spend guard."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import yaml

import specs
from conformance.drift.cli import main
from conformance.drift.recorder import Recorder
from mockserver.embedded import EmbeddedMock

FAST = ["--poll-interval", "0.02", "--poll-timeout", "20"]


@pytest.fixture(scope="module")
def openai_cassette(tmp_path_factory):
    """One recording of the openai flow against the mock, through the CLI."""
    path = tmp_path_factory.mktemp("rec") / "openai.cassette.json"
    with EmbeddedMock(providers=["openai"], speed=50) as mock:
        assert main(["record", "--provider", "openai", "--base-url", mock.base_url("openai"), "-o", str(path),
                     *FAST]) == 0
    return path


def test_record_writes_a_cassette_with_the_whole_flow(openai_cassette):
    data = json.loads(openai_cassette.read_text())
    labels = [i["label"] for i in data["interactions"]]
    assert data["provider"] == "openai" and set(data["hosts"]) == {"api"}
    assert labels[0] == "create" and labels.count("poll") >= 2 and "remix" in labels
    assert {"content", "list", "probe-unknown-id", "probe-no-auth", "delete"} <= set(labels)
    content = next(i for i in data["interactions"] if i["label"] == "content")
    assert content["response"]["body_encoding"] == "binary"
    assert set(content["response"]["body"]) == {"content_type", "length", "sha256"}
    assert [i["seq"] for i in data["interactions"]] == list(range(len(labels)))


def test_drift_reports_in_every_format_and_exit_0(openai_cassette, tmp_path, capsys):
    reports = {fmt: tmp_path / f"drift.{fmt}" for fmt in ("json", "junit", "markdown", "text")}
    args = ["drift", str(openai_cassette)] + [a for f, p in reports.items() for a in ("--report", f"{f}={p}")]
    assert main(args) == 0
    assert "no drift" in capsys.readouterr().out
    doc = json.loads(reports["json"].read_text())
    assert doc["kind"] == "drift" and doc["summary"] == {"breaking": 0, "non-breaking": 0, "info": 0}
    assert "retrieveVideo" in doc["operations"]
    suite = ET.parse(reports["junit"]).getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) == len(doc["operations"])
    assert reports["markdown"].read_text().startswith("## drift: openai")


def test_drift_against_an_edited_contract_and_fail_on_thresholds(openai_cassette, tmp_path, capsys):
    """The vendored contract edited to match "new docs": remixed_from_video_id dropped from Video. The
    mock still sends it, so the traffic has an undocumented field: non-breaking."""
    src = specs.load("openai").directory
    edited = tmp_path / "openai"
    edited.mkdir()
    doc = yaml.safe_load((src / "openapi.yaml").read_text())
    video = doc["components"]["schemas"]["Video"]
    video["properties"].pop("remixed_from_video_id")
    video["required"].remove("remixed_from_video_id")
    (edited / "openapi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    base = ["drift", "--provider", "openai", "--contract", str(edited), str(openai_cassette), "--format", "json"]
    assert main(base) == 0  # --fail-on breaking (default): nothing breaking
    out = json.loads(capsys.readouterr().out)
    kinds = {(f["kind"], f["severity"], f["pointer"]) for f in out["findings"]}
    assert ("undocumented_field", "non-breaking", "/response/200/body/remixed_from_video_id") in kinds
    assert {f["severity"] for f in out["findings"]} == {"non-breaking"}
    assert out["findings"][0]["example"]["seq"] >= 0 and "request" in out["findings"][0]["example"]
    assert main([*base, "--fail-on", "non-breaking"]) == 1
    assert main([*base, "--fail-on", "any"]) == 1
    assert main([*base, "--fail-on", "none"]) == 0
    junit = tmp_path / "j.xml"
    assert main([*base, "--fail-on", "any", "--report", f"junit={junit}"]) == 1
    assert int(ET.parse(junit).getroot().find("testsuite").get("failures")) >= 1


def test_diff_cli_exit_codes_and_reports(tmp_path, capsys):
    src = specs.load("fal").directory
    new = tmp_path / "fal"
    new.mkdir()
    doc = yaml.safe_load((src / "openapi.yaml").read_text())
    doc["components"]["schemas"]["Sora2RemixInput"]["required"].append("delete_video")
    (new / "openapi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    md = tmp_path / "diff.md"
    assert main(["diff", str(src), str(new), "--report", f"markdown={md}"]) == 1
    text = capsys.readouterr().out
    assert "[breaking] submitRemix: new_required_request_field" in text
    assert "[breaking] runRemix: new_required_request_field" in text
    assert "| breaking | `submitRemix` | new_required_request_field |" in md.read_text()
    assert main(["diff", str(src), str(new), "--fail-on", "none"]) == 0
    assert main(["diff", "fal", str(src)]) == 0


def test_drift_straight_from_a_base_url(tmp_path, capsys):
    saved = tmp_path / "live.json"
    with EmbeddedMock(providers=["aigateway"], speed=50) as mock:
        rc = main(["drift", "--provider", "aigateway", "--base-url", mock.base_url("aigateway"),
                   "--save-cassette", str(saved), "--no-remix", *FAST])
    assert rc == 0, capsys.readouterr()
    assert "no drift" in capsys.readouterr().out
    assert json.loads(saved.read_text())["provider"] == "aigateway"


@pytest.mark.parametrize("argv,needle", [
    (["record", "--provider", "nope", "--base-url", "http://127.0.0.1:9"], "unknown provider 'nope'"),
    (["drift", "/does/not/exist.json"], "cannot read cassette"),
    (["drift"], "give cassette files"),
    (["diff", "openai", "/no/such/contract.yaml"], "no such file"),
    (["diff", "openai", "openai", "--report", "pdf=x.pdf"], "--report must look like"),
    (["record", "--provider", "openai", "--base-url", "http://127.0.0.1:9", "--host-url", "nohost"],
     "--host-url must look like"),
    (["record", "--provider", "openai", "--base-url", "http://127.0.0.1:9", "--poll-interval", "0"],
     "--poll-interval must be a positive"),
])
def test_usage_errors_are_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_unreachable_target_is_exit_2(capsys):
    assert main(["record", "--provider", "openai", "--base-url", "http://127.0.0.1:9/openai/v1", *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach http://127.0.0.1:9/openai/v1" in err and "\n" not in err


def test_spend_guard_refuses_real_providers_before_sending(monkeypatch, tmp_path, capsys):
    """Billable operations against a real host need --allow-spend and a bounded price; nothing is sent
    otherwise (there is no network here, so a sent request would fail differently)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used-0123456789")
    monkeypatch.setenv("AIGATEWAY_API_KEY", "aig-not-used-0123456789")
    out = tmp_path / "c.json"
    assert main(["record", "--provider", "openai", "--base-url", "https://api.openai.com/v1", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 billable generation(s) against https://api.openai.com/v1" in err and "--allow-spend" in err
    assert main(["record", "--provider", "openai", "--base-url", "https://api.openai.com/v1", "--allow-spend",
                 "--max-spend-usd", "5", "-o", str(out)]) == 2
    assert "documents no price" in capsys.readouterr().err
    aig = specs.load("aigateway").provider["auth"]["env"]
    monkeypatch.setenv(aig, "aig-not-used-0123456789")
    assert main(["record", "--provider", "aigateway", "--base-url", "https://api.aigateway.sh", "--allow-spend",
                 "--max-spend-usd", "0.5", "-o", str(out)]) == 2
    assert "above --max-spend-usd 0.5" in capsys.readouterr().err
    assert not out.exists()
    monkeypatch.delenv("OPENAI_API_KEY")
    assert main(["record", "--provider", "openai", "--base-url", "https://api.openai.com/v1"]) == 2
    assert "set OPENAI_API_KEY" in capsys.readouterr().err


def test_no_secret_reaches_any_cassette_or_report(tmp_path, monkeypatch, capsys):
    """A canary key in headers, query and body (registered and unregistered ones) never appears in any
    written file (cassettes, blobs, reports) nor on stdout/stderr."""
    canary = "sk-CANARY-4d1f0c9e7b2a58f3"          # the API key the CLI reads from the environment
    canary_q = "qCANARY-91f2e6a4c0d8b3a7"         # unregistered: in a query string
    canary_b = "bCANARY-0a7c5e3f1b9d2468"         # unregistered: in a JSON body, echoed by a 400
    canary_h = "hCANARY-6e2b8d4f0a1c3957"         # unregistered: in an X-API-Key header
    canary_s = "sCANARY-3c9a1e7f5b2d4806"         # a signed-URL signature
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    out = tmp_path / "out"
    with EmbeddedMock(providers=["openai"], speed=50, api_key=canary) as mock:
        base = mock.base_url("openai")
        assert main(["record", "--provider", "openai", "--base-url", base, "-o", str(out / "flow.json"),
                     "--store-binary", *FAST]) == 0
        rec = Recorder(provider="openai", hosts={"api": base}, store_binary=True)
        with httpx.Client(transport=rec.transport(), headers={"Authorization": f"Bearer {canary}"}) as c:
            c.get(f"{base}/videos", params={"limit": 1, "api_key": canary_q})
            c.post(f"{base}/videos", json={"prompt": "x", "api_key": canary_b, "note": f"token {canary_b}"})
            c.get(f"{base}/videos", params={"limit": 1}, headers={"X-API-Key": canary_h})
            c.get(f"{mock.url}/__mock/health", params={"X-Amz-Signature": canary_s, "X-Amz-Expires": "60"})
        rec.cassette.save(out / "extra.json")
    reports = [a for fmt in ("json", "junit", "markdown", "text") for a in ("--report", f"{fmt}={out}/r.{fmt}")]
    main(["drift", "--provider", "openai", str(out / "flow.json"), str(out / "extra.json"), *reports,
          "--fail-on", "none"])
    printed = capsys.readouterr()
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) >= 7 and any(p.parent.name.endswith(".blobs") for p in written)
    for secret in (canary, canary_q, canary_b, canary_h, canary_s):
        for p in written:
            assert secret.encode() not in p.read_bytes(), f"{secret} leaked into {p}"
        assert secret not in printed.out and secret not in printed.err
    # the cassette still shows where the secrets were
    extra = json.loads((out / "extra.json").read_text())["interactions"]
    assert extra[0]["request"]["url"].endswith("api_key=%5BREDACTED%5D") or "[REDACTED]" in extra[0]["request"]["url"]
    assert extra[1]["request"]["body"]["api_key"] == "[REDACTED]"
    assert extra[2]["request"]["headers"]["x-api-key"] == "[REDACTED]"


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "conformance.drift", "diff", "openai", "openai"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert proc.returncode == 0 and "no drift" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "conformance.drift", "drift", "--fail-on", "sometimes"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "Traceback" not in proc.stderr
