"""``conformance compare``: the migration report, checked against facts read from the contracts themselves.

The command under test is the one the README shows, ``conformance compare openai gptge aigateway fal sunra
onerouter``, run in-process through ``conformance.cli.main``. Expectations are derived from ``specs.load`` (the
role of each operation, the media types of a content operation, provider.yaml ids, statuses, auth, pricing)
wherever possible, so the test follows the contracts rather than the report's wording.
"""

from __future__ import annotations

import copy
import json
import re

import pytest

import specs
from conformance import compare as cmp
from conformance.cli import main
from specs import validate

TO = ["gptge", "aigateway", "fal", "sunra", "onerouter"]
COMMAND = ["compare", "openai", *TO]
README = specs.SPECS_DIR.parent / "README.md"


@pytest.fixture(scope="module")
def report() -> cmp.CompareReport:
    return cmp.compare("openai", TO + ["openai"])


@pytest.fixture(scope="module")
def by_id(report) -> dict[str, cmp.Comparison]:
    return {c.id: c for c in report.to}


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _full_paths(pid: str) -> set[tuple[str, str]]:
    c = specs.load(pid)
    out = set()
    for op in c.operations():
        base = c.host(op.host)["base_url"].split("://", 1)[1].split("/", 1)
        prefix = "/" + base[1] if len(base) > 1 else ""
        out.add((op.method, _norm(prefix.rstrip("/") + op.path)))
    return out


def _match(c: cmp.Comparison, operation_id: str) -> cmp.OpMatch:
    return next(m for m in c.operations if m.from_op["operation"] == operation_id)


# -- the command ---------------------------------------------------------------------------------------------
def test_the_readme_command_prints_json_with_one_verdict_per_provider(capsys):
    assert main([*COMMAND, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["report"] == "compare" and data["version"] == cmp.REPORT_VERSION
    assert data["from"]["id"] == "openai" and data["from"]["sdk"]["name"] == "openai"
    assert [t["id"] for t in data["to"]] == TO
    for t in data["to"]:
        assert set(t) >= {"id", "verdict", "verdict_code", "base_url", "changes", "operations", "statuses", "errors",
                          "delivery", "auth", "ids", "price"}
        assert t["verdict"] in data["verdicts"] and t["verdict_code"] == cmp.VERDICT_CODES[t["verdict"]]
        assert all(set(ch) == {"rank", "area", "text"} for ch in t["changes"])
        assert [ch["rank"] for ch in t["changes"]] == sorted(ch["rank"] for ch in t["changes"])
        # every FROM operation appears once, with its TO operations or a note saying why there is none
        assert [m["from_op"]["operation"] for m in t["operations"]] == [
            op.operation_id for op in specs.load("openai").operations()]
        assert all(m["to_ops"] or m["note"] for m in t["operations"])


def test_text_and_markdown_formats(capsys, tmp_path):
    assert main(COMMAND) == 0
    text = capsys.readouterr().out
    assert "needs code changes" in text and "Facts from the contracts" in text and "[operation]" not in text
    out = tmp_path / "reports" / "compare.md"
    assert main([*COMMAND, "--format", "markdown", "--output", str(out)]) == 0
    md = out.read_text(encoding="utf-8")
    assert md.startswith("**Migration report from") and "### `gptge`: needs code changes" in md


def test_the_readme_holds_the_markdown_output_of_that_command():
    text = README.read_text(encoding="utf-8")
    begin = "<!-- conformance compare openai gptge aigateway fal sunra onerouter --format markdown: begin -->\n"
    assert begin in text, "README: the compare section's begin marker is missing"
    body = text.split(begin, 1)[1].split("<!-- conformance compare: end -->", 1)[0]
    assert body == cmp.render_markdown(cmp.compare("openai", TO)), (
        "README is out of date: paste the output of ./scripts/conformance compare openai gptge aigateway fal "
        "sunra onerouter --format markdown")
    assert "./scripts/conformance compare openai gptge aigateway fal sunra onerouter" in text


@pytest.mark.parametrize(("argv", "needle"), [
    (["compare", "openai", "nope"], "unknown provider 'nope'"),
    (["compare", "nope", "fal"], "unknown provider 'nope'"),
    (["compare", "openai"], "required: TO"),
    (["compare", "openai", "fal", "--format", "xml"], "invalid choice"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert needle in captured.err and captured.err.count("\n") == 1 and captured.out == ""


def test_an_unwritable_output_is_a_usage_error(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([*COMMAND, "--output", str(blocker / "sub" / "r.md")]) == 2
    assert main([*COMMAND, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("conformance compare: --output") for line in err)


# -- verdicts against the contracts ---------------------------------------------------------------------------
def test_openai_against_itself_is_unchanged(by_id):
    c = by_id["openai"]
    assert c.verdict == cmp.UNCHANGED and c.changes == []
    assert c.base_url == specs.load("openai").hosts[0]["base_url"]
    assert all(len(m.to_ops) == 1 and m.to_ops[0]["same_route"] for m in c.operations)


def test_every_other_provider_needs_code_changes(by_id):
    assert {pid: by_id[pid].verdict for pid in TO} == {pid: cmp.CODE_CHANGES for pid in TO}


def test_gptge_content_is_a_json_link_not_bytes(by_id):
    gptge, openai = specs.load("gptge"), specs.load("openai")
    content = gptge.operations_by_role("content")[0]
    types = list(content.definition["responses"]["200"]["content"])
    assert types and all("json" in t for t in types)  # the fact, from the contract
    assert not any("json" in t for t in openai.operations_by_role("content")[0].definition["responses"]["200"]["content"])
    c = by_id["gptge"]
    assert c.delivery["to"]["kinds"] == ["link"] and c.delivery["from"]["kinds"] == ["bytes"]
    m = _match(c, "downloadVideoContent")
    assert [t["operation"] for t in m.to_ops] == [content.operation_id] and m.to_ops[0]["same_route"]
    assert any(ch.area == "delivery" and "JSON link" in ch.text and "bytes" in ch.text for ch in c.changes)


def test_gptge_is_openai_shaped_but_lacks_operations_and_multipart(by_id):
    c, gptge = by_id["gptge"], specs.load("gptge")
    roles = {op.role for op in gptge.operations()}
    missing = [m.from_op["operation"] for m in c.operations if not m.to_ops]
    assert missing == [op.operation_id for op in specs.load("openai").operations() if op.role not in roles
                       and op.role != "edit"]
    assert c.changes[0].area == "operation" and "listVideos" in c.changes[0].text
    assert c.base_url == "https://api.gpt.ge/v1"  # the FROM SDK's /videos paths land on gptge's /v1/videos
    create = next(ch.text for ch in c.changes if ch.area == "request" and "createVideo" in ch.text)
    assert "multipart/form-data" in create and "multipart/form-data" not in gptge.operation(
        "createVideo").definition["requestBody"]["content"]
    assert all(s["same"] for s in c.statuses) and c.ids["same"]


def test_aigateway_has_no_videos_route_and_documents_a_price(by_id):
    c, gw = by_id["aigateway"], specs.load("aigateway")
    assert not _full_paths("openai") & _full_paths("aigateway")  # the fact, from the contracts
    assert not any(t["same_route"] for m in c.operations for t in m.to_ops) and c.base_url is None
    retrieve = gw.operations_by_role("retrieve")[0].operation_id
    assert [t["operation"] for t in _match(c, "retrieveVideo").to_ops] == [retrieve]
    assert [t["operation"] for t in _match(c, "downloadVideoContent").to_ops] == [retrieve]  # the job holds the result
    submit = gw.operations_by_role("submit")[0].operation_id
    for op in ("createVideo", "remixVideo", "editVideo"):
        assert [t["operation"] for t in _match(c, op).to_ops] == [submit]
    running = [s["to"] for s in c.statuses if s["neutral"] == "in_progress"][0]
    assert running == [s["value"] for s in gw.provider["statuses"] if s["neutral"] == "in_progress"]
    assert c.price["usd_per_second"] == gw.price_per_second_usd == 0.1 and c.price["source"]
    assert c.ids["to"]["prefix"] == "job_" and any(ch.area == "ids" for ch in c.changes)
    assert c.changes[-1].area == "ids"  # the id format is the least important change


def test_fal_delivers_a_file_object(by_id):
    c, fal = by_id["fal"], specs.load("fal")
    assert c.delivery["to"]["kinds"] == ["file"]
    result = fal.operations_by_role("result")[0]
    assert {"operation": result.operation_id, "kind": "file", "pointer": "/video"} in c.delivery["to"]["where"]
    schema = validate.deref(fal.openapi, result.definition["responses"]["200"]["content"]["application/json"]["schema"])
    video = validate.deref(fal.openapi, schema["properties"]["video"])
    props = set(video.get("properties") or {}) | {k for sub in video.get("allOf") or []
                                                  for k in validate.deref(fal.openapi, sub).get("properties", {})}
    assert {"url", "content_type"} <= props  # the file object, in the contract
    assert [t["operation"] for t in _match(c, "retrieveVideo").to_ops] == [
        fal.operations_by_role("status")[0].operation_id]
    create = _match(c, "createVideo")
    fields = {(r.from_field, r.to_field) for r in create.fields}
    assert ("seconds", "duration") in fields and ("size", "aspect_ratio") in fields  # provider.yaml mock.params
    size = next(r for r in create.fields if r.from_field == "size")
    assert any("1280x720 -> 16:9" in n for n in size.notes)
    assert c.price["usd_per_second"] is None and c.price["text"] == "not documented"


def test_onerouter_is_remix_only_and_synchronous(by_id):
    c, one = by_id["onerouter"], specs.load("onerouter")
    kinds = {op.kind for op in one.operations()}
    assert kinds == {"remix"} and {h["family"] for h in one.hosts} == {"sync"}  # the facts
    assert c.families == ["sync"]
    assert any("remix only" in n for n in c.notes) and any("synchronous" in n for n in c.notes)
    assert not _match(c, "createVideo").to_ops
    assert any(ch.area == "operation" and "createVideo" in ch.text for ch in c.changes)
    poll = _match(c, "retrieveVideo")
    assert not poll.to_ops and poll.note.startswith("none needed")
    assert [t["operation"] for t in _match(c, "remixVideo").to_ops] == ["onerouterVideoEdit"]
    assert not any(ch.area == "status" for ch in c.changes)  # no status on the wire to differ


def test_sunra_ids_statuses_and_errors_come_from_provider_yaml(by_id):
    c, sunra = by_id["sunra"], specs.load("sunra")
    assert c.ids["to"]["prefix"] == sunra.provider["ids"]["prefix"] == "pd_"
    failed = next(s for s in c.statuses if s["neutral"] == "failed")
    assert failed["to"] == [s["value"] for s in sunra.provider["statuses"] if s["neutral"] == "failed"]
    assert set(failed["to"]) == {"COMPLETED", "FAILED"} and not failed["same"]
    assert c.auth["to"]["env"] == sunra.auth["env"] == "SUNRA_KEY"
    validation = next(k for k in c.errors["kinds"] if k["kind"] == "validation")
    assert (validation["from_status"], validation["to_status"]) == (400, sunra.error_kind("validation")["status"])
    assert any(ch.area == "errors" and "validation 422" in ch.text for ch in c.changes)


def test_a_wire_identical_clone_on_another_host_needs_only_a_base_url_and_key():
    openai = specs.load("openai")
    doc = copy.deepcopy(openai.openapi)
    doc["servers"] = [{"url": "https://sora.example.com/api/v1"}]
    meta = copy.deepcopy(openai.provider)
    meta["id"] = "clone"
    meta["hosts"][0]["base_url"] = "https://sora.example.com/api/v1"
    meta["auth"]["env"] = "CLONE_API_KEY"
    clone = specs.Contract(id="clone", openapi=doc, provider=meta, directory=openai.directory)
    c = cmp.compare_one(openai, clone)
    assert c.verdict == cmp.BASE_URL_AND_KEY and c.changes == []
    assert c.base_url == "https://sora.example.com/api/v1"
    # and one renamed status word makes it a code change, ranked after a missing operation
    meta["statuses"][1]["value"] = "running"
    del doc["paths"]["/videos"]["get"]
    c = cmp.compare_one(openai, specs.Contract(id="clone2", openapi=doc, provider=meta, directory=openai.directory))
    assert c.verdict == cmp.CODE_CHANGES and [ch.area for ch in c.changes] == ["operation", "status"]
