"""OpenAI's contract held against OpenAI's own published spec.

``specs/sources/upstream/openai-openapi-videos.yaml`` is the ``/videos*`` subset of openai/openai-openapi at
commit f85dbe2 (2026-08-21), vendored verbatim. ``specs/openai/openapi.yaml`` names it in ``x-upstream``. The
project's own contract diff (``conformance diff``, i.e. :func:`conformance.drift.specdiff.diff_contracts`,
called in-process) runs from the upstream spec to the contract, and every finding must be *explained* by an
``x-doc-defect`` / ``x-assumption`` entry (or an ``x-upstream.differences`` entry) whose ``upstream`` list
names it, on a node the finding concerns, saying why we differ: the rule is
:func:`specs.validate.upstream_problems` (docs/contracts.md, "Differences from an upstream spec"). A matcher
that explains nothing fails too, so the explanations cannot go stale.
"""

from __future__ import annotations

import collections

import pytest
import yaml

import specs
from conformance.drift.specdiff import diff_contracts
from specs import validate

UPSTREAM_DIR = validate.SOURCES_DIR / "upstream"
WITH_UPSTREAM = [pid for pid in specs.provider_ids() if "x-upstream" in specs.load(pid).openapi]


def _diff(pid: str):
    contract = specs.load(pid)
    upstream = validate.SOURCES_DIR / contract.openapi["x-upstream"]["file"]
    return diff_contracts(str(upstream), str(specs.SPECS_DIR / pid / "openapi.yaml"))


# -- the vendored copy -----------------------------------------------------------------------------------
def test_the_upstream_copy_is_verbatim_and_names_its_origin():
    path = UPSTREAM_DIR / "openai-openapi-videos.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert doc["openapi"].startswith("3.1") and all(p.startswith("/videos") for p in doc["paths"])
    assert doc["info"]["x-vendored"]["commit"] == "f85dbe2"
    readme = (UPSTREAM_DIR / "README.md").read_text(encoding="utf-8")
    assert "openai/openai-openapi" in readme and "f85dbe2" in readme and "2026-08-21" in readme
    shared = validate.SOURCES_DIR.parents[1].parent / "shared" / "reference" / path.name
    if shared.is_file():
        assert path.read_bytes() == shared.read_bytes(), "the vendored upstream spec must stay verbatim"


def test_openai_names_its_upstream():
    meta = specs.load("openai").openapi["x-upstream"]
    assert meta["file"] == "upstream/openai-openapi-videos.yaml"
    assert (meta["repository"], meta["commit"], meta["date"]) == ("openai/openai-openapi", "f85dbe2", "2026-08-21")
    assert WITH_UPSTREAM == ["openai"]


@pytest.mark.parametrize("pid", specs.provider_ids())
def test_upstream_annotations_are_well_formed(pid):
    assert validate.upstream_problems(specs.load(pid).openapi) == []


# -- the diff --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pid", WITH_UPSTREAM)
def test_every_difference_from_upstream_is_explained(pid):
    report = _diff(pid)
    assert report.findings, "the diff found nothing: it did not compare what we think it compares"
    problems = validate.upstream_problems(specs.load(pid).openapi, report.findings)
    assert problems == [], f"{len(problems)} problem(s):\n" + "\n".join(problems)


def test_the_differences_kept_are_the_deliberate_ones():
    """The findings left after the fixes of issue 11, per class (the closing note lists them with why)."""
    findings = _diff("openai").findings
    by_class = collections.Counter(f.severity for f in findings)
    assert dict(by_class) == {"breaking": 24, "non-breaking": 114, "info": 34}
    kinds = {(f.kind, f.pointer) for f in findings}
    # every upstream operation is vendored (issue 11 item 2: extensions and characters)
    assert not [f for f in findings if f.kind == "operation_removed"], "an upstream operation is missing"
    for path in ("~1videos~1extensions/post", "~1videos~1characters/post", "~1videos~1characters~1{character_id}/get"):
        assert ("operation_id_changed", f"#/paths/{path}/operationId") in kinds  # present, under our own name
    differences = specs.load("openai").openapi["x-upstream"]["differences"]
    assert not any("not vendored" in d["chosen"] for d in differences), "a stale 'not vendored yet' explanation"
    # fixed: these must not come back
    assert not [f for f in findings if "minLength" in f.message], "ids have no minLength upstream"
    assert not [f for f in findings if "unixtime" in f.message or "'uri'" in f.message]
    assert not [f for f in findings if f.pointer in ("#/security", "#/components/securitySchemes/ApiKeyAuth")]


# -- the rule itself ---------------------------------------------------------------------------------------
def _finding(kind: str, pointer: str) -> dict:
    return {"kind": kind, "pointer": pointer, "severity": "breaking", "message": "m"}


def _doc(**extra) -> dict:
    doc = {
        "openapi": "3.1.0", "info": {"title": "t", "version": "1"},
        "paths": {"/v/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Body"}}}},
                "responses": {"200": {"description": "ok"}}}}},
        "components": {"schemas": {
            "Body": {"type": "object", "properties": {"ref": {"anyOf": [{"$ref": "#/components/schemas/Ref"},
                                                                         {"type": "null"}]}}},
            "Ref": {"type": "object", "properties": {"id": {"type": "string"}}},
            "Other": {"type": "object"}}},
    }
    doc.update(extra)
    return doc


def _explain(node: dict, kind, at: str, **entry) -> None:
    node.setdefault("x-doc-defect", []).append({"says": "s", "source": "s", "chosen": "c", "why": "w",
                                                "upstream": [{"kind": kind, "at": at}], **entry})


BODY = "#/paths/~1v~1{id}/post/requestBody/content/application~1json/schema"


def test_an_entry_on_a_referenced_component_explains_a_finding_that_passes_through_it():
    doc = _doc()
    _explain(doc["components"]["schemas"]["Ref"], "request_closed", f"{BODY}/properties/ref/**/additionalProperties")
    finding = _finding("request_closed", f"{BODY}/properties/ref/additionalProperties")
    assert validate.upstream_problems(doc, [finding]) == []


def test_an_entry_on_a_node_the_finding_does_not_concern_explains_nothing():
    doc = _doc()
    _explain(doc["components"]["schemas"]["Other"], "request_closed", f"{BODY}/**")
    problems = validate.upstream_problems(doc, [_finding("request_closed", f"{BODY}/additionalProperties")])
    assert any(p.startswith("unexplained [breaking] request_closed") for p in problems)
    assert any("explains no finding" in p for p in problems)


def test_patterns_kinds_and_path_item_parameters():
    doc = _doc()
    op = doc["paths"]["/v/{id}"]["parameters"][0]
    _explain(op, ["constraint_tightened", "type_change"], "#/paths/*/post/parameters/path:*/schema")
    findings = [_finding("constraint_tightened", "#/paths/~1v~1{id}/post/parameters/path:id/schema"),
                _finding("type_change", "#/paths/~1v~1{id}/post/parameters/path:id/schema")]
    assert validate.upstream_problems(doc, findings) == []
    # a kind the matcher does not name, or a pointer it does not match, stays unexplained
    other = [_finding("enum_narrowed", "#/paths/~1v~1{id}/post/parameters/path:id/schema"),
             _finding("constraint_tightened", "#/paths/~1v~1{id}/post/parameters/query:id/schema")]
    assert len([p for p in validate.upstream_problems(doc, findings + other) if p.startswith("unexplained")]) == 2


def test_top_level_differences_and_their_shape():
    doc = _doc(**{"x-upstream": {"file": "upstream/openai-openapi-videos.yaml", "repository": "openai/openai-openapi",
                                 "commit": "f85dbe2", "date": "2026-08-21", "differences": [
                                     {"chosen": "c", "why": "w",
                                      "upstream": [{"kind": "operation_removed", "at": "#/paths/~1gone/get"}]}]}})
    assert validate.upstream_problems(doc, [_finding("operation_removed", "#/paths/~1gone/get")]) == []
    doc["x-upstream"]["commit"] = "0000000"
    doc["x-upstream"]["differences"][0] = {"chosen": "c", "upstream": [{"kind": "x", "at": "paths/no-hash"}]}
    problems = validate.upstream_problems(doc)
    assert any("x-upstream.commit" in p for p in problems)
    assert any("needs chosen and why" in p for p in problems)
    assert any("must be {kind" in p for p in problems)
