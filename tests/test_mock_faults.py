"""Every fault kind, shown through the official openai SDK's own behaviour (retries, timeouts, errors)."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

import specs
from mockserver.config import ConfigError, MockConfig
from mockserver.embedded import EmbeddedMock
from mockserver.faults import FaultError, parse_fault

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


@pytest.fixture(scope="module")
def mock():
    with EmbeddedMock(providers=["openai", "gptge"], speed=100, seed=3) as m:
        yield m


@pytest.fixture(autouse=True)
def clean(mock):
    mock.admin("POST", "reset")
    yield


def client(mock, **kw) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=mock.base_url("openai"), api_key="sk-fault-test", **kw)


def journal_statuses(mock, operation: str) -> list[int]:
    return [e["status"] for e in mock.admin("GET", "journal")["requests"] if e["operation"] == operation]


def test_rate_limit_429_is_retried_by_the_sdk_honouring_retry_after(mock):
    mock.add_fault(kind="rate_limit", provider="openai", operation="list", times=1, retry_after=1)
    started = time.monotonic()
    page = client(mock, max_retries=2).videos.list()
    elapsed = time.monotonic() - started
    assert page.data == []
    assert journal_statuses(mock, "listVideos") == [429, 200]
    assert 0.95 <= elapsed < 3.0, "the SDK waits the Retry-After second before retrying"


def test_rate_limit_without_retries_surfaces_the_envelope(mock):
    mock.add_fault(kind="rate_limit", provider="openai", times=1)
    with pytest.raises(openai.RateLimitError) as err:
        client(mock).videos.list()
    assert err.value.response.headers["Retry-After"] == "1"
    kind = specs.load("openai").error_kind("rate_limited")  # the envelope provider.yaml declares
    assert (err.value.body["type"], err.value.body["code"]) == (kind["type"], kind.get("code"))


@pytest.mark.parametrize("kind,status,exc", [("server_error", 500, openai.InternalServerError),
                                             ("bad_gateway", 502, openai.InternalServerError),
                                             ("unavailable", 503, openai.InternalServerError)])
def test_5xx_faults_raise_then_retry(mock, kind, status, exc):
    mock.add_fault(kind=kind, provider="openai", times=1)
    with pytest.raises(exc) as err:
        client(mock).videos.list()
    assert err.value.status_code == status and "message" in err.value.body
    mock.add_fault(kind=kind, provider="openai", times=1)
    assert client(mock, max_retries=1).videos.list().data == []  # the SDK retries >= 500 once and succeeds


def test_fixed_latency_delays_the_answer(mock):
    mock.add_fault(kind="latency", provider="openai", ms=300, times=1)
    started = time.monotonic()
    client(mock).videos.list()
    assert time.monotonic() - started >= 0.3


def test_latency_distributions_are_drawn_from_the_seeded_generator():
    def draws(seed):
        with EmbeddedMock(providers=["openai"], seed=seed) as m:
            book = m.state.faults
            rule = parse_fault({"kind": "latency", "distribution": "uniform", "min_ms": 10, "max_ms": 50})
            return [m.call(book.latency_seconds, rule) for _ in range(5)]

    a, b = draws(11), draws(11)
    assert a == b and all(0.01 <= x <= 0.05 for x in a) and len(set(a)) > 1
    assert draws(12) != a


def test_hang_makes_the_sdk_time_out(mock):
    mock.add_fault(kind="hang", provider="openai", ms=5000, times=1)
    with pytest.raises(openai.APITimeoutError):
        client(mock, timeout=0.5).videos.list()


def test_connection_reset_is_a_connection_error(mock):
    mock.add_fault(kind="reset", provider="openai", times=1)
    with pytest.raises(openai.APIConnectionError):
        client(mock).videos.list()


def test_generation_failure_ends_in_openais_failed_shape(mock):
    mock.add_fault(kind="generation_failure", provider="openai", code="moderation_blocked", times=1)
    c = client(mock)
    failed = c.videos.poll(c.videos.create(prompt="something disallowed").id)
    assert failed.status == "failed" and failed.error.code == "moderation_blocked" and failed.error.message
    ok = c.videos.poll(c.videos.create(prompt="fine").id)
    assert ok.status == "completed" and ok.error is None


def test_per_request_header_injects_a_fault(mock):
    c = client(mock)
    with pytest.raises(openai.InternalServerError):
        c.videos.list(extra_headers={"X-Mock-Fault": "bad_gateway"})
    v = c.videos.create(prompt="x", extra_headers={"X-Mock-Fault": "generation_failure; code=content_policy_violation"})
    assert c.videos.poll(v.id).error.code == "content_policy_violation"
    with pytest.raises(openai.BadRequestError) as err:
        c.videos.list(extra_headers={"X-Mock-Fault": "meltdown"})
    assert "unknown fault kind" in err.value.body["message"]


def test_faults_target_a_provider_and_an_operation(mock):
    mock.add_fault(kind="server_error", provider="openai", operation="retrieveVideo")
    c = client(mock)
    v = c.videos.create(prompt="targeted")  # create is not targeted
    with pytest.raises(openai.InternalServerError):
        c.videos.retrieve(v.id)
    other = httpx.get(f"{mock.base_url('gptge')}/v1/videos/video_nope", headers={"Authorization": "Bearer k"})
    assert other.status_code == 404  # other providers untouched


def test_times_n_then_spent(mock):
    rule = mock.add_fault(kind="server_error", provider="openai", times=2)
    c = client(mock)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            c.videos.list()
    assert c.videos.list().data == []
    listed = mock.admin("GET", "faults")["faults"]
    assert [f["fired"] for f in listed if f["id"] == rule["id"]] == [2]


def test_probability_is_reproducible_with_the_seed():
    def pattern(seed):
        with EmbeddedMock(providers=["openai"], seed=seed) as m:
            m.add_fault(kind="server_error", probability=0.5)
            c = openai.OpenAI(base_url=m.base_url("openai"), api_key="k", max_retries=0)
            out = []
            for _ in range(24):
                try:
                    c.videos.list()
                    out.append(0)
                except openai.InternalServerError:
                    out.append(1)
            return out

    first = pattern(5)
    assert 0 < sum(first) < 24
    assert pattern(5) == first


def test_token_bucket_rate_limit_emits_real_429s():
    with EmbeddedMock(providers=["openai"], rate_limit=(3, 60.0)) as m:
        c = openai.OpenAI(base_url=m.base_url("openai"), api_key="sk-a", max_retries=0)
        for _ in range(3):
            c.videos.list()
        with pytest.raises(openai.RateLimitError) as err:
            c.videos.list()
        assert int(err.value.response.headers["Retry-After"]) >= 1
        other = openai.OpenAI(base_url=m.base_url("openai"), api_key="sk-b", max_retries=0)
        assert other.videos.list().data == []  # one bucket per key


def test_fault_specs_are_validated():
    for bad in ["meltdown", "latency", "rate_limit:times=0", "server_error:probability=2",
                "latency:distribution=uniform,min_ms=1", "server_error:nonsense=1"]:
        with pytest.raises(FaultError):
            parse_fault(bad)
    assert parse_fault("rate_limit:provider=fal,times=3,retry_after=2").times == 3
    with pytest.raises(ConfigError, match="^faults: unknown fault kind 'meltdown'"):
        EmbeddedMock(MockConfig(port=0, faults=["meltdown"])).start()


def test_admin_rejects_bad_faults_with_400(mock):
    with pytest.raises(Exception) as err:
        mock.admin("POST", "faults", {"kind": "latency"})
    assert getattr(err.value, "code", None) == 400
