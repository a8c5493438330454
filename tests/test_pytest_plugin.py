"""The pytest plugin, loaded through its entry point in a separate pytest run, as a user would get it."""

from __future__ import annotations

USER_TEST = '''
import httpx
import openai
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_manual_clock_and_helpers(sora_mock):
    client = openai.OpenAI(base_url=sora_mock.base_url("openai"), api_key="sk-user", max_retries=0)
    video = client.videos.create(prompt="a cat")
    assert client.videos.retrieve(video.id).status == "queued"   # frozen until advanced
    sora_mock.advance(1.0)
    assert client.videos.retrieve(video.id).status == "in_progress"
    sora_mock.advance(60)
    assert client.videos.retrieve(video.id).status == "completed"
    sora_mock.fault("rate_limit", provider="openai", times=1)
    with pytest.raises(openai.RateLimitError):
        client.videos.list()
    source = sora_mock.seed_video("openai", seconds=8, size="1280x720")
    remix = client.videos.remix(source["id"], prompt="purple")
    assert remix.remixed_from_video_id == source["id"]
    assert {j["id"] for j in sora_mock.jobs("openai")} >= {video.id, source["id"], remix.id}
    assert all(e["headers"].get("Authorization") in (None, "[REDACTED]") for e in sora_mock.journal())


class TestOverride:
    @pytest.fixture
    def sora_mock_config(self):
        return {"providers": ["gptge"], "api_key": "only-me"}

    def test_config_override(self, sora_mock):
        assert [m["provider"] for m in sora_mock.admin("GET", "health")["mounts"]] == ["gptge"]
        url = sora_mock.base_url("gptge") + "/v1/videos/x"
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
'''


def test_plugin_fixture_via_entry_point(pytester):
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_plugin_options_are_registered(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--sora-mock-speed*"])


def test_plugin_fixture_on_a_sqlite_store(pytester, tmp_path):
    """``--sora-mock-store``: the user's tests run unchanged on a shared store, each starting clean."""
    pytester.makepyfile(test_user=USER_TEST + '''

def test_store_is_sqlite_and_each_test_starts_clean(sora_mock):
    assert sora_mock.admin("GET", "health")["store"]["kind"] == "sqlite"
    assert sora_mock.jobs() == []
''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "--sora-mock-store",
                                           f"sqlite:///{tmp_path}/plugin.db")
    result.assert_outcomes(passed=3)
