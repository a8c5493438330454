"""Errors that explain themselves (issue 12): the helpers' exceptions, profile files, fault targets, body size
limits, seeded videos against the contract, and the admin job list's ``total``.

A user's mistake ends in one clear line (exit code 2 for the CLI), an exception of ours carrying the server's
message (the helpers), the admin envelope (admin API) or the provider's own envelope and status (provider
routes); never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

from mockserver.cli import main
from mockserver.config import MockConfig, profile_schema
from mockserver.embedded import EmbeddedMock, MockAdminError, MockError
from mockserver.middleware.faults import FAULT_KINDS
from mockserver.validation import MAX_BODY_BYTES, MAX_TEXT_BYTES, BodyTooLarge, parse_body

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mock():
    m = EmbeddedMock(MockConfig(port=0, clock="manual", providers=["openai", "gptge", "fal", "onerouter"]))
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def fresh(mock):
    mock.admin("POST", "reset")
    return mock


def one_line(text: str) -> str:
    assert "\n" not in text.strip() and "Traceback" not in text, text
    return text.strip()


# -- the helpers: our exception, the server's message -------------------------------------------------------
def test_helpers_raise_mock_admin_error_with_the_servers_message(fresh):
    with pytest.raises(MockAdminError) as err:
        fresh.advance(-1)
    assert err.value.status == 400 and err.value.code == 400
    assert one_line(str(err.value)) == "POST /__mock/clock/advance: 400 seconds: -1 is less than the minimum of 0"
    fresh.seed_video("openai", id="video_mine")
    with pytest.raises(MockAdminError) as err:
        fresh.seed_video("openai", id="video_mine")
    assert err.value.status == 409 and "video_mine" in err.value.message
    with pytest.raises(MockAdminError, match="400 kind: 'meltdown' is not one of"):
        fresh.add_fault(kind="meltdown")
    with pytest.raises(MockAdminError, match="404 no job 'video_nope'"):
        fresh.advance_job("openai", "video_nope")


def test_base_url_of_a_provider_or_host_not_served_is_a_mock_error(mock):
    with pytest.raises(MockError) as err:
        mock.base_url("sunra")
    assert one_line(str(err.value)) == ("provider 'sunra' is not served by this mock (served: openai, gptge, fal, "
                                        "onerouter); add it to MockConfig.providers")
    with pytest.raises(MockError, match=r"provider 'fal' has no host 'nope' \(hosts: queue, run\)"):
        mock.base_url("fal", "nope")
    assert mock.base_url("fal", "run").endswith("/fal-run")


def test_helpers_of_a_stopped_or_unstarted_mock_say_so():
    idle = EmbeddedMock(MockConfig(port=0, clock="manual", providers=["openai"]))
    with pytest.raises(MockError, match="not started"):
        idle.base_url("openai")
    with pytest.raises(MockError, match="not started"):
        idle.advance(1)


def test_sora_mock_helpers_raise_our_errors_in_a_users_test(pytester):
    pytester.makepyfile(test_user='''
import pytest
from mockserver.pytest_plugin import MockAdminError, MockError


@pytest.fixture
def sora_mock_config():
    return {"providers": ["openai"]}


def test_errors(sora_mock):
    with pytest.raises(MockError, match="provider 'fal' is not served"):
        sora_mock.base_url("fal")
    with pytest.raises(MockAdminError, match="size 12x12 is not allowed by the openai contract"):
        sora_mock.seed_video("openai", size="12x12")
    with pytest.raises(MockAdminError, match="fault operation 'nope'"):
        sora_mock.fault("rate_limit", operation="nope")
''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=1)


# -- profile files ----------------------------------------------------------------------------------------
BAD_PROFILES = [
    (b"seed: 1\nspeed: \xff\n", "is not UTF-8 text (byte 0xff at offset 15)"),
    (b"speed: fast\n", "speed: 'fast' is not of type 'number'"),
    (b"speed: 0\n", "speed: 0 is less than or equal to the minimum of 0"),
    (b"seed: abc\n", "seed: 'abc' is not of type 'integer'"),
    (b"timings: {fal: 5}\n", "timings.fal: 5 is not of type 'object'"),
    (b"timings: {fal: {queued: 1}}\n", "timings.fal: Additional properties are not allowed ('queued' was unexpected)"),
    (b"timings: {nope: {queued_seconds: 1}}\n", "timings for unknown provider 'nope'"),
    (b"providers: openai\n", "providers: 'openai' is not of type 'array'"),
    (b"providers: [nope]\n", "unknown provider 'nope'"),
    (b"faults: {kind: rate_limit}\n", "faults: {'kind': 'rate_limit'} is not of type 'array'"),
    (b"faults: [{kind: meltdown}]\n", "faults.0"),
    (b"faults: [{kind: rate_limit, operation: nope}]\n", "faults.0: fault operation 'nope' is not an operationId"),
    (b"providers: [openai, fal]\nfaults: ['rate_limit:provider=sunra']\n",
     "faults.0: fault provider 'sunra' is not served (served: openai, fal)"),
    (b"clock: sundial\n", "clock: 'sundial' is not one of ['system', 'manual']"),
    (b"rate_limit: fast\n", "rate_limit: 'fast' does not match"),
    (b"bogus: 1\nspeed: 2\n", "unknown setting(s) bogus (settings: providers, clock"),
    (b"- a\n- b\n", "must be a mapping of settings (specs/mockprofile.schema.yaml), not a list"),
    (b"speed: [1\n", "is not valid YAML (line 2)"),
]


@pytest.fixture
def no_serve(monkeypatch):
    """main() in-process must fail before serving: a configuration that is accepted fails the test at once."""
    async def refuse(cfg):
        raise AssertionError(f"the configuration was accepted: {cfg}")

    monkeypatch.setattr("mockserver.cli._serve", refuse)


@pytest.mark.parametrize("content,needle", BAD_PROFILES, ids=[n for _, n in BAD_PROFILES])
def test_bad_profiles_are_one_line_and_exit_2(tmp_path, capsys, no_serve, content, needle):
    path = tmp_path / "profile.yaml"
    path.write_bytes(content)
    code = main(["serve", "--port", "0", "--profile", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    line = one_line(err)
    assert line.startswith("mockserver: error: ") and needle in line, line


def test_profile_errors_from_the_command_line_have_no_traceback(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"timings: {fal: 5}\n")
    out = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--profile", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert one_line(out.stderr) == f"mockserver: error: profile {path}: timings.fal: 5 is not of type 'object'"


def test_the_documented_example_profile_is_valid_and_the_schema_lists_every_fault_kind(capsys):
    example = yaml.safe_load((ROOT / "examples" / "mock-profile.yaml").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(profile_schema())
    jsonschema.Draft202012Validator(profile_schema()).validate(example)
    from mockserver.cli import _build_parser, config_from_args

    cfg = config_from_args(_build_parser().parse_args(["serve", "--profile", str(ROOT / "examples/mock-profile.yaml")]))
    assert cfg.providers == ["openai", "fal"] and cfg.speed == 10 and len(cfg.faults) == 3
    assert tuple(profile_schema()["$defs"]["fault"]["properties"]["kind"]["enum"]) == FAULT_KINDS
    assert "examples/mock-profile.yaml" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("fields,needle", [
    ({"speed": "fast"}, "--speed must be a positive number, not 'fast'"),
    ({"seed": "abc"}, "--seed must be an integer, not 'abc'"),
    ({"providers": "openai"}, "providers must be a list of provider ids"),
    ({"timings": {"fal": 5}}, "timings.fal must be a mapping"),
    ({"faults": [{"kind": "rate_limit", "operation": "nope"}]}, "faults: fault operation 'nope'"),
])
def test_bad_config_in_code_is_a_config_error(fields, needle):
    from mockserver.config import ConfigError

    with pytest.raises(ConfigError) as err:
        EmbeddedMock(MockConfig(port=0, **fields)).start()
    assert needle in one_line(str(err.value))


# -- fault targets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag,needle", [
    ("rate_limit:operation=nope", "--fault 'rate_limit:operation=nope': fault operation 'nope' is not an "
                                  "operationId or x-role of any served provider"),
    ("rate_limit:provider=openai,operation=status", "fault operation 'status' is not an operationId or x-role of "
                                                    "openai"),
    ("rate_limit:provider=sunra", "fault provider 'sunra' is not served (served: openai, fal)"),
])
def test_fault_flags_with_unknown_targets_are_one_line_and_exit_2(capsys, no_serve, flag, needle):
    code = main(["serve", "--port", "0", "--only", "openai", "--only", "fal", "--fault", flag])
    assert code == 2
    assert needle in one_line(capsys.readouterr().err)


def test_admin_rejects_fault_targets_the_contracts_do_not_have(fresh):
    with httpx.Client(base_url=fresh.url, timeout=10) as c:
        r = c.post("/__mock/faults", json={"kind": "rate_limit", "operation": "nope"})
        assert r.status_code == 400
        assert r.json()["error"]["message"].startswith("fault operation 'nope' is not an operationId or x-role")
        r = c.post("/__mock/faults", json={"kind": "rate_limit", "provider": "fal", "operation": "createVideo"})
        assert r.status_code == 400 and "of fal" in r.json()["error"]["message"]
        # all or none: a good rule before a bad one is not installed either
        r = c.post("/__mock/faults", json=[{"kind": "rate_limit", "operation": "create"},
                                           {"kind": "rate_limit", "operation": "nope"}])
        assert r.status_code == 400 and c.get("/__mock/faults").json()["faults"] == []
        for target in ({"operation": "create"}, {"operation": "createVideo", "provider": "openai"},
                       {"operation": "status", "provider": "fal"}):
            assert c.post("/__mock/faults", json={"kind": "rate_limit", **target}).status_code == 201


# -- body size limits -------------------------------------------------------------------------------------
def test_oversized_json_bodies_are_413_in_the_providers_envelope(fresh):
    big = "a" * (MAX_TEXT_BYTES + 1)
    openai = httpx.post(fresh.base_url("openai") + "/videos", json={"prompt": big},
                        headers={"Authorization": "Bearer k"}, timeout=30)
    assert openai.status_code == 413
    assert openai.json()["error"]["type"] == "invalid_request_error"
    assert "request body is too large" in openai.json()["error"]["message"]
    fal = httpx.post(fresh.base_url("fal", "queue") + "/fal-ai/sora-2/text-to-video", json={"prompt": big},
                     headers={"Authorization": "Key k"}, timeout=30)
    assert fal.status_code == 413 and "request body is too large" in fal.json()["detail"][0]["msg"]
    assert fresh.admin("GET", "jobs")["total"] == 0  # nothing was kept
    ok = httpx.post(fresh.base_url("fal", "queue") + "/fal-ai/sora-2/text-to-video",
                    json={"prompt": "a" * (MAX_TEXT_BYTES - 100)}, headers={"Authorization": "Key k"}, timeout=30)
    assert ok.status_code == 200


def test_bodies_over_the_read_limit_are_413(fresh):
    r = httpx.post(fresh.base_url("openai") + "/videos", content=b"x" * (MAX_BODY_BYTES + 1),
                   headers={"Authorization": "Bearer k", "Content-Type": "multipart/form-data; boundary=zz"},
                   timeout=60)
    assert r.status_code == 413 and f"limit {MAX_BODY_BYTES} bytes" in r.json()["error"]["message"]


def test_multipart_text_fields_over_the_limit_are_too_large():
    body = (b"--zz\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n" + b"a" * (MAX_TEXT_BYTES + 1)
            + b"\r\n--zz--\r\n")
    with pytest.raises(BodyTooLarge, match="form field 'prompt' is too large"):
        parse_body(body, "multipart/form-data", "multipart/form-data; boundary=zz")
    small = body.replace(b"a" * (MAX_TEXT_BYTES + 1), b"a cat")
    assert parse_body(small, "multipart/form-data", "multipart/form-data; boundary=zz") == {"prompt": "a cat"}


# -- seeded videos against the contract -------------------------------------------------------------------
@pytest.mark.parametrize("provider,fields,needle", [
    ("openai", {"size": "12x12"}, "size 12x12 is not allowed by the openai contract (allowed: 1280x720, "
                                  "720x1280, 1024x1792, 1792x1024)"),
    ("openai", {"seconds": 7}, "seconds 7 is not allowed by the openai contract (allowed: 4, 8, 12)"),
    ("gptge", {"seconds": 16}, "seconds 16 is not allowed by the gptge contract"),
    ("fal", {"size": "1792x1024"}, "size 1792x1024 is not allowed by the fal contract (allowed: 1280x720, 720x1280)"),
])
def test_seed_video_is_checked_against_the_contract(fresh, provider, fields, needle):
    with pytest.raises(MockAdminError) as err:
        fresh.seed_video(provider, **fields)
    assert err.value.status == 400 and needle in one_line(str(err.value))


def test_seed_video_takes_what_the_contract_allows(fresh):
    assert fresh.seed_video("openai", seconds=12, size="1792x1024")["params"]["size"] == "1792x1024"
    assert fresh.seed_video("fal", seconds=8, size="720x1280")["status"] == "completed"
    # onerouter's contract enumerates neither: any even size within the mock's limits
    assert fresh.seed_video("onerouter", seconds=2, size="640x360")["params"]["seconds"] == 2


# -- the admin job list's total ---------------------------------------------------------------------------
def test_job_list_total_respects_the_filters(fresh):
    for _ in range(3):
        fresh.seed_video("openai")
    fresh.seed_video("gptge")
    client = httpx.Client(base_url=fresh.url, timeout=10)
    with client:
        queued = client.post(fresh.base_url("openai") + "/videos", json={"prompt": "a cat"},
                             headers={"Authorization": "Bearer k"})
        assert queued.status_code == 200
        every = client.get("/__mock/jobs").json()
        assert every["total"] == 5 and len(every["jobs"]) == 5
        openai = client.get("/__mock/jobs", params={"provider": "openai", "limit": "2"}).json()
        assert openai["total"] == 4 and len(openai["jobs"]) == 2
        assert client.get("/__mock/jobs", params={"provider": "gptge"}).json()["total"] == 1
        assert client.get("/__mock/jobs", params={"provider": "fal"}).json() == {"jobs": [], "total": 0}
        done = client.get("/__mock/jobs", params={"provider": "openai", "status": "completed"}).json()
        assert done["total"] == 3 and {j["status"] for j in done["jobs"]} == {"completed"}
        assert client.get("/__mock/jobs", params={"status": "queued", "limit": "0"}).json() == {"jobs": [], "total": 1}


def test_admin_contract_describes_the_new_errors():
    doc = yaml.safe_load((ROOT / "specs" / "mockadmin" / "openapi.yaml").read_text(encoding="utf-8"))
    text = json.dumps(doc)
    assert "match the `provider` and `status` filters" in text
    assert "contract allows for a generated video" in text
    assert "any other value is 400" in text
