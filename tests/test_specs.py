"""Contract tests: every vendored contract is valid OpenAPI 3.1, resolves, and agrees with provider.yaml."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

import specs
from specs import validate

PROVIDERS = specs.provider_ids()
EXPECTED = ["aigateway", "fal", "gptge", "onerouter", "openai", "sunra"]
ROLES = {
    "video_object": {"create", "list", "retrieve", "delete", "remix", "edit", "extend", "content", "character_create",
                     "character_retrieve"},
    "queue": {"submit", "status", "status_stream", "result", "cancel"},
    "job": {"submit", "retrieve", "cancel"},
    "sync": {"run"},
}


def test_all_six_providers_are_vendored():
    assert PROVIDERS == EXPECTED


@pytest.mark.parametrize("pid", PROVIDERS)
def test_contract_is_valid_openapi_31(pid):
    contract = specs.load(pid)
    assert contract.openapi["openapi"].startswith("3.1")
    assert validate.spec_errors(contract.openapi) == []
    for host in contract.hosts:
        assert validate.spec_errors(contract.host_document(host["id"])) == [], host["id"]


@pytest.mark.parametrize("pid", PROVIDERS)
def test_every_ref_resolves(pid):
    assert validate.unresolved_refs(specs.load(pid).openapi) == []


@pytest.mark.parametrize("pid", PROVIDERS)
def test_every_example_validates_or_is_a_recorded_doc_defect(pid):
    assert validate.example_problems(specs.load(pid).openapi) == []


@pytest.mark.parametrize("pid", PROVIDERS)
def test_operations_carry_roles_of_their_host_family(pid):
    contract = specs.load(pid)
    ids = [op.operation_id for op in contract.operations()]
    assert len(ids) == len(set(ids)), "operationId must be unique"
    for op in contract.operations():
        family = contract.host(op.host)["family"]
        assert op.role in ROLES[family], f"{op.method} {op.path}: x-role {op.role!r} not a {family} role"
        if op.sourced:
            assert op.source and op.source.get("in") in ("path", "body"), op.operation_id
        if op.role in ("submit", "run") and family == "queue":
            assert op.model, f"{op.operation_id}: queue submit needs x-model"


@pytest.mark.parametrize("pid", PROVIDERS)
def test_hosts_match_contract_servers(pid):
    contract = specs.load(pid)
    served = {op.host for op in contract.operations()}
    assert served == {h["id"] for h in contract.hosts}, "every host serves operations and vice versa"
    top = contract.openapi["servers"][0]["url"]
    assert urlsplit(top).netloc == urlsplit(contract.hosts[0]["base_url"]).netloc


@pytest.mark.parametrize("pid", PROVIDERS)
def test_statuses_cover_the_lifecycle_and_appear_in_the_contract(pid):
    contract = specs.load(pid)
    neutrals = {s["neutral"] for s in contract.provider["statuses"]}
    assert {"queued", "in_progress", "completed", "failed"} <= neutrals
    text = repr(contract.openapi)
    for entry in contract.provider["statuses"]:
        assert repr(entry["value"]) in text, f"status {entry['value']!r} not in the contract"


@pytest.mark.parametrize("pid", PROVIDERS)
def test_error_kinds_render_into_the_contracts_error_envelope(pid):
    """Every error kind of provider.yaml, rendered, validates against each schema the contract declares
    for that status code (so the mock's errors are in the provider's own envelope)."""
    contract = specs.load(pid)
    doc = contract.openapi
    checked = 0
    for kind in contract.provider["errors"]["kinds"]:
        if kind == "generation_failed":
            continue
        status, body = contract.error_body(kind, message="example message", param="prompt")
        for op in contract.operations():
            responses = op.definition.get("responses", {})
            resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
            if resp is None:
                continue
            resp, base = validate._resolve_obj(doc, resp, ("paths", op.spec_path, op.method.lower(),
                                                           "responses", str(status)))
            for ctype, mt in (resp.get("content") or {}).items():
                if "json" in ctype and "schema" in mt:
                    errs = validate.schema_errors(doc, validate.pointer(*base, "content", ctype, "schema"), body)
                    assert errs == [], f"{kind} -> {status} on {op.operation_id}: {errs}"
                    checked += 1
    assert checked > 0, "no operation declares any error status"


@pytest.mark.parametrize("pid", PROVIDERS)
def test_every_operation_declares_an_error_response(pid):
    for op in specs.load(pid).operations():
        codes = [c for c in op.definition.get("responses", {}) if re.match(r"^[45]", str(c))]
        assert codes, f"{op.operation_id} declares no 4xx/5xx response"


SEED_OF = {
    "onerouter": "seeds/000_0330a36d1c3c3a8c.txt",
    "fal": "seeds/001_716ce6af2195636f.txt",
    "gptge": "seeds/002_7cc6efb8c2df9320.txt",
    "sunra": "seeds/003_1964f426a30c94e9.txt",
    "aigateway": "seeds/004_94f7a976846d8512.txt",
}


@pytest.mark.parametrize("pid", sorted(SEED_OF))
def test_seed_examples_are_vendored(pid):
    """Each provider's seed document contributes examples, each traceable by a verbatim quote."""
    examples = [e for e in validate.iter_examples(specs.load(pid).openapi)
                if e.source and e.source.get("file") == SEED_OF[pid]]
    assert examples, f"no example from {SEED_OF[pid]}"
    assert specs.load(pid).provider["sources"][0]["ref"].endswith(SEED_OF[pid].split("/")[-1]) or any(
        s["ref"].endswith(SEED_OF[pid].split("/")[-1]) for s in specs.load(pid).provider["sources"])


def test_vendored_sources_match_shared_copies():
    """specs/sources holds verbatim copies of ../shared seeds (when ../shared is present)."""
    shared = validate.SOURCES_DIR.parents[1].parent / "shared"
    if not shared.is_dir():
        pytest.skip("../shared not present")
    for seed in (shared / "seeds").glob("*.txt"):
        assert (validate.SOURCES_DIR / "seeds" / seed.name).read_bytes() == seed.read_bytes()


def test_unknown_provider_is_one_clear_error():
    with pytest.raises(specs.UnknownProviderError, match=r"unknown provider 'nope' \(known: aigateway"):
        specs.load("nope")


def test_load_is_cached():
    assert specs.load(PROVIDERS[0]) is specs.load(PROVIDERS[0])


def test_invalid_files_give_one_clear_error(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(specs.SPECS_DIR / PROVIDERS[0], tmp_path / "broken")
    shutil.copy(specs.SPECS_DIR / "provider.schema.yaml", tmp_path / "provider.schema.yaml")
    monkeypatch.setattr(specs, "SPECS_DIR", tmp_path)
    specs.load.cache_clear()
    try:
        (tmp_path / "broken" / "provider.yaml").write_text("id: broken\nfamily: [unclosed\n")
        with pytest.raises(specs.SpecError, match=r"invalid YAML in .*provider.yaml line \d+"):
            specs.load("broken")
        (tmp_path / "broken" / "provider.yaml").write_text("id: broken\nfamily: teleport\n")
        with pytest.raises(specs.SpecError, match=r"provider.yaml: .*"):
            specs.load("broken")
    finally:
        specs.load.cache_clear()


def _defect_notes(doc) -> list[str]:
    """Every x-doc-defect / x-assumption entry of a document, flattened to text."""
    notes: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("x-doc-defect", "x-assumption"):
                    notes.append(repr(value))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return notes


@pytest.mark.parametrize("pid,needles", [
    ("gptge", ["01K7P7689TQP1E80YN3Q7G4AR4"]),
    ("aigateway", ["processing", "running", "video_id"]),
    ("openai", ["edits", "2026-09-24"]),
    ("fal", ["delete_video", "logs=1"]),
    ("sunra", ["//requests/", "Key"]),
])
def test_known_doc_defects_are_recorded_next_to_the_schema(pid, needles):
    """The doc problems listed in the contracts issue each carry an x-doc-defect/x-assumption note."""
    doc = specs.load(pid).openapi
    notes = " ".join(_defect_notes(doc)) + " " + repr(doc.get("x-deprecation", ""))
    for needle in needles:
        assert needle in notes, f"{pid}: no x-doc-defect mentions {needle!r}"


@pytest.mark.parametrize("pid", PROVIDERS)
def test_expectation_annotations_are_well_formed(pid):
    """x-mock-only sits on response objects and says why; x-assumption entries name source and chosen, and
    their keywords name keywords of the same object (docs/contracts.md, "Expectation sources")."""
    from specs.validate import annotation_problems

    assert annotation_problems(specs.load(pid).openapi) == []


def test_bad_expectation_annotations_are_reported():
    from specs.validate import annotation_problems

    doc = {"paths": {"/x": {"get": {"responses": {"405": {"description": "d", "x-mock-only": ""}}}}},
           "components": {"schemas": {"A": {"type": "object", "x-mock-only": "why",
                                            "x-assumption": [{"source": "s", "chosen": "c",
                                                              "keywords": ["additionalProperties"]}]},
                                      "B": {"x-assumption": [{"chosen": "c"}]}}}}
    problems = " | ".join(annotation_problems(doc))
    assert "paths//x/get/responses/405: x-mock-only must say why" in problems
    assert "components/schemas/A: x-mock-only belongs on a response object" in problems
    assert "keywords names 'additionalProperties'" in problems
    assert "components/schemas/B: x-assumption[0] needs string source and chosen" in problems


def test_mock_only_declarations_are_marked():
    """The 405 bodies that exist only so the mock's answer has a contract say so (x-mock-only)."""
    from conformance import schema as sch

    for pid in ("openai", "gptge", "aigateway", "onerouter"):
        c = specs.load(pid)
        node = c.openapi["components"]["responses"]["MethodNotAllowed"]
        assert node.get("x-mock-only"), pid
    c = specs.load("openai")
    marks = sch.response_marks(c, c.operation("retrieveVideo"), 404)
    assert marks["assumption"] and not marks["mock_only"]


@pytest.mark.parametrize("pid", PROVIDERS)
def test_documented_expectations_quote_their_source(pid):
    """Every provider.yaml ``expectations`` entry quotes its source file verbatim (as x-source does)."""
    for name, entry in (specs.load(pid).provider.get("expectations") or {}).items():
        assert validate.source_problem({"file": entry["source"], "quote": entry["quote"]}) is None, name


def test_a_documented_expectation_is_a_doc_source():
    from conformance.checks.lifecycle import _REMIX_REJECT
    from conformance.context import ProviderRun, RunConfig
    from conformance.results import Results

    run = ProviderRun(specs.load("fal"), None, None, None, Results([], ["fal"], 1), RunConfig(["fal"]), [])
    src = run.source("remix_lineage", "remix_rejects_deleted", _REMIX_REJECT)
    assert src.kind == "doc" and src.documented and "cannot be used for remixing" in src.quote
    assert run.source("remix_lineage", "remix_rejects_unfinished", _REMIX_REJECT) is _REMIX_REJECT
