"""``conformance compare openai gptge aigateway --runtime``: the openai SDK's own flow against the embedded mock
of each provider. The verdicts are checked against facts of the contracts (not against the table itself), the
README holds the table the command prints, and the docs' claims are quoted verbatim from their sources."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import specs
from conformance import compare as cmp
from conformance import sdk_proof as sp
from conformance.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TO = ["gptge", "aigateway"]


@pytest.fixture(scope="module")
def proof() -> sp.RuntimeProof:
    return sp.prove("openai", TO)


def _cells(proof: sp.RuntimeProof) -> dict[str, dict[str, sp.StepResult]]:
    return {p.id: {s.step: s for s in p.steps} for p in proof.providers}


def _full_paths(contract: specs.Contract) -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every operation under its host's base path, path parameters as ``{}``."""
    out = set()
    for op in contract.operations():
        base = contract.host(op.host)["base_url"].split("://", 1)[1].partition("/")[2]
        out.add((op.method.upper(), re.sub(r"\{[^}]*\}", "{}", ("/" + base).rstrip("/") + op.path)))
    return out


def test_openai_is_the_reference_every_step_works(proof):
    cells = _cells(proof)["openai"]
    assert [s for s, r in cells.items() if not r.ok] == []
    assert "stitched total" in cells["extend"].how and cells["download"].how.startswith("a 720x1280 MP4")


def test_aigateway_has_no_videos_route_so_every_step_is_its_404(proof):
    contract = specs.load("aigateway")
    paths = _full_paths(contract)
    assert not any(p == "/v1/videos" or p.startswith("/v1/videos/{}") or p.startswith("/v1/videos/characters")
                   or p == "/v1/videos/extensions" for _, p in paths), paths  # the contract fact
    status = contract.provider["errors"]["kinds"]["not_found"]["status"]
    for step, r in _cells(proof)["aigateway"].items():
        assert not r.ok and r.how.startswith(f"HTTP {status} "), (step, r.how)


def test_gptge_verdicts_follow_its_contract(proof):
    contract = specs.load("gptge")
    cells = _cells(proof)["gptge"]
    # create: its create operation takes JSON only, the SDK always sends multipart/form-data
    create = contract.operations_by_role("create")[0]
    assert "multipart/form-data" not in create.definition["requestBody"]["content"]
    assert not cells["create"].ok and cells["create"].how.startswith("HTTP 400") and "multipart" in cells["create"].how
    # poll and remix are on OpenAI's routes with OpenAI's video object
    assert cells["poll"].ok and cells["remix"].ok
    # download: the content operation's 200 is JSON (a link), not bytes
    content = contract.operations_by_role("content")[0]
    assert all("json" in t for t in content.definition["responses"]["200"]["content"])
    assert not cells["download"].ok and "not MP4 bytes: a JSON link" in cells["download"].how
    # extensions and characters: neither documented nor in the contract
    documents = contract.provider["compatibility"]["documents"]
    for step, role in (("extend", "extend"), ("character", "character_create")):
        assert documents[role] is False and not contract.operations_by_role(role)
        assert not cells[step].ok and cells[step].how.startswith(("HTTP 404", "HTTP 405")), cells[step].how


def test_the_statements_say_where_the_docs_promise_more(proof):
    statements = dict(zip([p.id for p in proof.providers[1:]], proof.statements(), strict=True))
    claim = specs.load("aigateway").provider["compatibility"]["claim"]
    assert f'"{claim}"' in statements["aigateway"]
    assert "its docs promise more than its contract delivers: 0 of 6 steps" in statements["aigateway"]
    assert "make no claim" in statements["gptge"] and "2 of 6 steps" in statements["gptge"]
    assert "do not document character_create, character_retrieve" in statements["gptge"]


@pytest.mark.parametrize("pid", ["gptge", "aigateway"])
def test_compatibility_claims_are_verbatim_from_their_source(pid):
    compat = specs.load(pid).provider["compatibility"]
    source = (ROOT / "specs" / "sources" / compat["source"]).read_text(encoding="utf-8")
    if compat["claim"] is not None:
        assert " ".join(compat["claim"].split()) in " ".join(source.split())
    assert compat["with"] == "openai" and compat["sdk_base_url"].startswith(specs.load(pid).hosts[0]["base_url"])


def test_the_readme_holds_the_table_the_command_prints(proof):
    text = README.read_text(encoding="utf-8")
    begin = "<!-- conformance compare openai gptge aigateway --runtime: begin -->\n"
    assert begin in text and "./scripts/conformance compare openai gptge aigateway --runtime" in text
    body = text.split(begin, 1)[1].split("<!-- conformance compare --runtime: end -->", 1)[0]
    assert body == sp.render_markdown(proof), (
        "README is out of date: paste the last section of ./scripts/conformance compare openai gptge aigateway "
        "--runtime --format markdown")


def test_the_command_adds_the_proof_to_every_format(capsys, tmp_path):
    out = tmp_path / "r.json"
    assert main(["compare", "openai", "gptge", "--runtime", "--format", "json", "--output", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["report"] == "compare" and [p["id"] for p in doc["runtime"]["providers"]] == ["openai", "gptge"]
    assert main(["compare", "openai", "gptge", "--runtime"]) == 0
    assert "Runtime proof" in capsys.readouterr().out
    assert main(["compare", "openai", "gptge"]) == 0
    assert "Runtime proof" not in capsys.readouterr().out  # without --runtime nothing is sent


def test_a_from_provider_without_the_openai_sdk_is_a_usage_error(capsys):
    assert main(["compare", "fal", "gptge", "--runtime"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fal-client" in err[0]
    assert cmp.compare("fal", ["gptge"]).to  # the contract-only report still works
