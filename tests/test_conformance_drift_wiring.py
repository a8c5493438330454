"""`conformance record|drift|diff` are reachable from the main `conformance` command."""

from __future__ import annotations

import yaml

import specs
from conformance.cli import main


def test_diff_through_the_main_command(tmp_path, capsys):
    vendored = specs.SPECS_DIR / "openai" / "openapi.yaml"
    assert main(["diff", str(vendored), str(vendored)]) == 0
    assert "no drift" in capsys.readouterr().out
    edited = yaml.safe_load(vendored.read_text())
    del edited["paths"]["/videos/{video_id}/remix"]  # a removed operation breaks clients
    new = tmp_path / "openapi.yaml"
    new.write_text(yaml.safe_dump(edited))
    report = tmp_path / "diff.json"
    assert main(["diff", str(vendored), str(new), "--report", f"json={report}"]) == 1
    assert "remix" in report.read_text() and "breaking" in report.read_text()


def test_record_and_drift_are_subcommands(capsys):
    for cmd in ("record", "drift"):
        try:
            main([cmd, "--help"])
        except SystemExit as exc:
            assert exc.code == 0
        assert "usage: conformance " + cmd in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys):
    try:
        rc = main(["frobnicate"])
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2
