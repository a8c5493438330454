"""``conformance diff``: hand-made pairs of contracts, one kind of change each."""

from __future__ import annotations

import copy

import pytest
import yaml

import specs
from conformance.drift.specdiff import ContractDoc, DiffError, diff_contracts, load_contract_doc

BASE = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "servers": [{"url": "https://api.example.test/v1"}],
    "security": [{"bearer": []}],
    "paths": {
        "/videos": {
            "post": {
                "operationId": "createVideo",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/CreateBody"}}}},
                "responses": {
                    "200": {"description": "ok", "headers": {"x-request-id": {"required": True,
                                                                              "schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Video"}}}},
                    "400": {"description": "bad", "content": {"application/json": {"schema": {"type": "object"}}}},
                },
            },
        },
        "/videos/{video_id}": {
            "get": {
                "operationId": "retrieveVideo",
                "parameters": [{"name": "video_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "ok", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Video"}}}},
                    "404": {"description": "missing"},
                },
            },
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "CreateBody": {
                "type": "object", "required": ["prompt"],
                "properties": {"prompt": {"type": "string", "maxLength": 1000},
                               "seconds": {"type": "string", "enum": ["4", "8", "12"]}},
            },
            "Video": {
                "type": "object", "required": ["id", "status", "progress"],
                "properties": {"id": {"type": "string"},
                               "status": {"type": "string", "enum": ["queued", "in_progress", "completed", "failed"]},
                               "progress": {"type": "integer"},
                               "error": {"type": "string"}},
            },
        },
    },
}


def changed(edit) -> dict:
    doc = copy.deepcopy(BASE)
    edit(doc)
    return doc


def diff(new: dict, old: dict | None = None, old_provider: dict | None = None, new_provider: dict | None = None):
    return diff_contracts(ContractDoc(old or BASE, old_provider, "old"), ContractDoc(new, new_provider, "new"))


def found(report) -> set[tuple[str, str, str]]:
    return {(f.kind, f.severity, f.operation) for f in report.findings}


def schemas(doc):
    return doc["components"]["schemas"]


CASES = [
    ("operation removed", lambda d: d["paths"].pop("/videos/{video_id}"),
     {("operation_removed", "breaking", "retrieveVideo")}),
    ("operation added", lambda d: d["paths"].__setitem__("/videos/{video_id}/remix", {"post": {
        "operationId": "remixVideo", "responses": {"200": {"description": "ok"}}}}),
     {("operation_added", "non-breaking", "remixVideo")}),
    ("required response field removed", lambda d: (schemas(d)["Video"]["properties"].pop("progress"),
                                                    schemas(d)["Video"]["required"].remove("progress")),
     {("field_removed", "breaking", "createVideo"), ("field_removed", "breaking", "retrieveVideo")}),
    ("optional response field removed", lambda d: schemas(d)["Video"]["properties"].pop("error"),
     {("field_removed", "non-breaking", "createVideo"), ("field_removed", "non-breaking", "retrieveVideo")}),
    ("response field added", lambda d: schemas(d)["Video"]["properties"].__setitem__("size", {"type": "string"}),
     {("field_added", "non-breaking", "createVideo"), ("field_added", "non-breaking", "retrieveVideo")}),
    ("response field now optional", lambda d: schemas(d)["Video"]["required"].remove("status"),
     {("field_now_optional", "breaking", "createVideo"), ("field_now_optional", "breaking", "retrieveVideo")}),
    ("narrowed request enum", lambda d: schemas(d)["CreateBody"]["properties"]["seconds"]["enum"].remove("12"),
     {("enum_narrowed", "breaking", "createVideo")}),
    ("widened request enum", lambda d: schemas(d)["CreateBody"]["properties"]["seconds"]["enum"].append("16"),
     {("enum_widened", "non-breaking", "createVideo")}),
    ("new response enum value", lambda d: schemas(d)["Video"]["properties"]["status"]["enum"].insert(1, "processing"),
     {("new_enum_value", "breaking", "createVideo"), ("new_enum_value", "breaking", "retrieveVideo")}),
    ("response enum value removed", lambda d: schemas(d)["Video"]["properties"]["status"]["enum"].remove("failed"),
     {("enum_value_removed", "non-breaking", "createVideo"), ("enum_value_removed", "non-breaking", "retrieveVideo")}),
    ("new required request field", lambda d: (schemas(d)["CreateBody"]["properties"].__setitem__(
        "model", {"type": "string"}), schemas(d)["CreateBody"]["required"].append("model")),
     {("new_required_request_field", "breaking", "createVideo")}),
    ("new optional request field", lambda d: schemas(d)["CreateBody"]["properties"].__setitem__(
        "size", {"type": "string"}), {("request_field_added", "non-breaking", "createVideo")}),
    ("request field became required", lambda d: schemas(d)["CreateBody"]["required"].append("seconds"),
     {("new_required_request_field", "breaking", "createVideo")}),
    ("request schema closed", lambda d: schemas(d)["CreateBody"].__setitem__("additionalProperties", False),
     {("request_closed", "breaking", "createVideo")}),
    ("response type change", lambda d: schemas(d)["Video"]["properties"]["progress"].__setitem__("type", "string"),
     {("type_change", "breaking", "createVideo"), ("type_change", "breaking", "retrieveVideo")}),
    ("response field may now be null", lambda d: schemas(d)["Video"]["properties"]["id"].__setitem__(
        "type", ["string", "null"]),
     {("type_change", "breaking", "createVideo"), ("type_change", "breaking", "retrieveVideo")}),
    ("request type widened", lambda d: schemas(d)["CreateBody"]["properties"]["prompt"].__setitem__(
        "type", ["string", "array"]), {("type_relaxed", "non-breaking", "createVideo")}),
    ("request constraint tightened", lambda d: schemas(d)["CreateBody"]["properties"]["prompt"].__setitem__(
        "maxLength", 100), {("constraint_tightened", "breaking", "createVideo")}),
    ("request constraint relaxed", lambda d: schemas(d)["CreateBody"]["properties"]["prompt"].pop("maxLength"),
     {("constraint_relaxed", "non-breaking", "createVideo")}),
    ("new required parameter", lambda d: d["paths"]["/videos/{video_id}"]["get"]["parameters"].append(
        {"name": "variant", "in": "query", "required": True, "schema": {"type": "string"}}),
     {("new_required_parameter", "breaking", "retrieveVideo")}),
    ("new optional parameter", lambda d: d["paths"]["/videos/{video_id}"]["get"]["parameters"].append(
        {"name": "variant", "in": "query", "schema": {"type": "string"}}),
     {("parameter_added", "non-breaking", "retrieveVideo")}),
    ("success status removed", lambda d: d["paths"]["/videos/{video_id}"]["get"]["responses"].__setitem__(
        "202", d["paths"]["/videos/{video_id}"]["get"]["responses"].pop("200")),
     {("response_status_removed", "breaking", "retrieveVideo"), ("response_status_added", "non-breaking",
                                                                  "retrieveVideo")}),
    ("error status removed", lambda d: d["paths"]["/videos/{video_id}"]["get"]["responses"].pop("404"),
     {("response_status_removed", "non-breaking", "retrieveVideo")}),
    ("request media type removed", lambda d: d["paths"]["/videos"]["post"]["requestBody"]["content"].__setitem__(
        "multipart/form-data", d["paths"]["/videos"]["post"]["requestBody"]["content"].pop("application/json")),
     {("request_content_type_removed", "breaking", "createVideo"),
      ("request_content_type_added", "non-breaking", "createVideo")}),
    ("response media type removed", lambda d: d["paths"]["/videos/{video_id}"]["get"]["responses"]["200"][
        "content"].__setitem__("video/mp4", d["paths"]["/videos/{video_id}"]["get"]["responses"]["200"][
            "content"].pop("application/json")),
     {("response_content_type_removed", "breaking", "retrieveVideo"),
      ("response_content_type_added", "non-breaking", "retrieveVideo")}),
    ("required header dropped", lambda d: d["paths"]["/videos"]["post"]["responses"]["200"]["headers"].clear(),
     {("header_removed", "breaking", "createVideo")}),
    ("server changed", lambda d: d["servers"].__setitem__(0, {"url": "https://api.example.test/v2"}),
     {("server_changed", "breaking", "(contract)")}),
    ("auth scheme changed", lambda d: d["components"]["securitySchemes"]["bearer"].__setitem__("scheme", "basic"),
     {("security_changed", "breaking", "(contract)")}),
    ("path parameter renamed only", lambda d: d["paths"].__setitem__(
        "/videos/{id}", d["paths"].pop("/videos/{video_id}")) or
     d["paths"]["/videos/{id}"]["get"]["parameters"][0].__setitem__("name", "id"), set()),
]


@pytest.mark.parametrize("name,edit,expected", CASES, ids=[c[0] for c in CASES])
def test_each_kind_of_change_is_classed(name, edit, expected):
    report = diff(changed(edit))
    assert found(report) == expected, [f.to_json() for f in report.findings]
    for f in report.findings:
        assert f.pointer.startswith("#/") and f.message


def test_identical_contracts_give_no_findings():
    assert diff(copy.deepcopy(BASE)).findings == []
    for pid in specs.provider_ids():
        report = diff_contracts(pid, pid)
        assert report.findings == [] and report.operations, pid


def test_provider_yaml_status_vocabulary_and_auth(tmp_path):
    old_p = {"statuses": [{"value": "queued", "neutral": "queued"}, {"value": "completed", "neutral": "completed"}],
             "auth": {"header": "Authorization", "schemes": ["Bearer", "Key"]}}
    new_p = copy.deepcopy(old_p)
    new_p["statuses"].insert(1, {"value": "processing", "neutral": "in_progress"})
    new_p["auth"]["schemes"] = ["Bearer"]
    report = diff(copy.deepcopy(BASE), old_provider=old_p, new_provider=new_p)
    assert found(report) == {("status_value_added", "breaking", "(provider.yaml)"),
                             ("auth_changed", "breaking", "(provider.yaml)")}


def test_vendored_contract_against_an_edited_copy(tmp_path):
    """The use case of the issue: the vendored contract vs one edited to match new docs (files on disk)."""
    src = specs.load("openai").directory
    edited = tmp_path / "openai-next"
    edited.mkdir()
    doc = yaml.safe_load((src / "openapi.yaml").read_text())
    doc["components"]["schemas"]["VideoStatus"]["enum"].append("cancelled")
    doc["components"]["schemas"]["VideoSeconds"]["enum"].remove("12")
    del doc["paths"]["/videos/{video_id}/remix"]
    (edited / "openapi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (edited / "provider.yaml").write_text((src / "provider.yaml").read_text())
    report = diff_contracts(str(src), str(edited))
    got = found(report)
    assert ("operation_removed", "breaking", "remixVideo") in got
    assert ("new_enum_value", "breaking", "retrieveVideo") in got
    assert ("enum_narrowed", "breaking", "createVideo") in got
    assert all(f.severity == "breaking" for f in report.findings if f.kind in ("new_enum_value", "enum_narrowed"))
    assert {f.kind for f in report.findings} == {"operation_removed", "new_enum_value", "enum_narrowed"}


def test_load_errors(tmp_path):
    with pytest.raises(DiffError, match="no such file"):
        load_contract_doc(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("openapi: [unclosed")
    with pytest.raises(DiffError, match=r"invalid YAML in .*bad.yaml line 1"):
        load_contract_doc(str(bad))
    bad.write_text("just: a mapping\n")
    with pytest.raises(DiffError, match="not an OpenAPI"):
        load_contract_doc(str(bad))
