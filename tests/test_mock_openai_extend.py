"""The official openai SDK (3.57.0), unmodified, drives extensions and characters against the mock (127.0.0.1
only): ``client.videos.extend``, ``create_character`` and ``get_character``. Every response goes through
:class:`mock_sdk_support.ProviderChecked` (the openai contract), and an extended video's MP4 is probed
(:func:`specs.media.probe_mp4`): it lasts the stitched total its ``seconds`` names."""

from __future__ import annotations

import warnings

import openai
import pytest
from mock_sdk_support import ProviderChecked
from openai.types import Video

from mockserver import media
from mockserver.embedded import EmbeddedMock
from specs.media import probe_mp4

warnings.filterwarnings("ignore", message="The Sora API is scheduled", category=DeprecationWarning)
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


@pytest.fixture(scope="module")
def mock():
    # 0.5 s queued + 2 s in progress, 100x faster: a job takes ~25 ms of real time.
    with EmbeddedMock(providers=["openai"], speed=100, seed=11) as m:
        yield m


@pytest.fixture
def checked(mock):
    return ProviderChecked(mock, "openai")


@pytest.fixture
def client(mock, checked):
    mock.admin("DELETE", "faults")
    with checked.client(timeout=10) as http, openai.OpenAI(base_url=mock.base_url("openai"), api_key="sk-test-key",
                                                           max_retries=0, http_client=http) as c:
        yield c


def _duration(client: openai.OpenAI, video_id: str) -> float:
    return probe_mp4(client.videos.download_content(video_id).read())["duration_seconds"]


def test_extend_by_id_is_a_new_job_with_the_stitched_total_and_lineage(client, checked):
    source = client.videos.poll(client.videos.create(prompt="a lighthouse", seconds="8", size="720x1280").id)
    assert source.status == "completed" and source.seconds == "8"
    # openai 3.57.0's videos.extend accepts only a file for `video`: a {"id": ...} reference fails before any
    # request is sent (the contract's extendVideo description says so); an extension by id goes out as JSON
    # through the SDK's generic post.
    sent = len(checked.checked)
    with pytest.raises(RuntimeError, match="Expected entry at `video` to be bytes"):
        client.videos.extend(prompt="the storm arrives", seconds="4", video={"id": source.id})
    assert len(checked.checked) == sent, "the SDK sent a request it should have refused client-side"
    ext = client.post("/videos/extensions", body={"prompt": "the storm arrives", "seconds": "4",
                                                  "video": {"id": source.id}}, cast_to=Video)
    assert ext.id != source.id and ext.status == "queued"
    assert ext.remixed_from_video_id == source.id and ext.seconds == "12"
    done = client.videos.poll(ext.id)
    assert done.status == "completed" and done.seconds == "12" and done.size == source.size
    assert abs(_duration(client, done.id) - 12) < 0.2
    assert abs(_duration(client, source.id) - 8) < 0.2  # the source is unchanged

    again = client.videos.poll(client.post("/videos/extensions", body={"prompt": "dawn", "seconds": "4",
                                                                       "video": {"id": done.id}}, cast_to=Video).id)
    assert again.remixed_from_video_id == done.id and again.seconds == "16"  # an extension of an extension
    assert abs(_duration(client, again.id) - 16) < 0.2


def test_sdk_extend_of_an_uploaded_video_adds_its_duration(client):
    upload = ("clip.mp4", media.video_mp4(720, 1280, 4), "video/mp4")
    ext = client.videos.extend(prompt="keep going", seconds="8", video=upload)
    assert ext.seconds == "12" and ext.remixed_from_video_id is None
    done = client.videos.poll(ext.id)
    assert done.status == "completed"
    info = probe_mp4(client.videos.download_content(done.id).read())
    assert abs(info["duration_seconds"] - 12) < 0.2 and (info["width"], info["height"]) == (720, 1280)


def test_extend_rules_unknown_unfinished_and_failed_sources(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.post("/videos/extensions", body={"prompt": "x", "seconds": "4", "video": {"id": "video_nope"}},
                    cast_to=Video)
    assert err.value.body["type"] == "invalid_request_error"
    pending = client.videos.create(prompt="slow", extra_headers={"X-Mock-Timing": "queued=hold"})
    with pytest.raises(openai.BadRequestError) as err:
        client.post("/videos/extensions", body={"prompt": "x", "seconds": "4", "video": {"id": pending.id}},
                    cast_to=Video)
    assert "only completed videos can be extended" in err.value.body["message"]
    failing = client.videos.poll(client.videos.create(prompt="doomed",
                                                      extra_headers={"X-Mock-Fault": "generation_failure"}).id)
    assert failing.status == "failed"
    with pytest.raises(openai.BadRequestError):
        client.post("/videos/extensions", body={"prompt": "x", "seconds": "4", "video": {"id": failing.id}},
                    cast_to=Video)
    with pytest.raises(openai.BadRequestError) as err:  # `seconds` is required (spec CreateVideoExtendJsonBody)
        client.post("/videos/extensions", body={"prompt": "x", "video": {"id": pending.id}}, cast_to=Video)
    assert err.value.body["type"] == "invalid_request_error"


def test_create_and_get_character_with_the_sdk(client, mock):
    clip = ("hero.mp4", media.video_mp4(720, 1280, 4), "video/mp4")
    made = client.videos.create_character(name="Captain Fox", video=clip)
    assert made.id.startswith("char_") and made.name == "Captain Fox" and isinstance(made.created_at, int)
    got = client.videos.get_character(made.id)
    assert (got.id, got.name, got.created_at) == (made.id, made.name, made.created_at)
    other = client.videos.create_character(name="Sidekick", video=clip)
    assert other.id != made.id
    with pytest.raises(openai.NotFoundError) as err:
        client.videos.get_character("char_0000")
    assert err.value.body["param"] == "character_id"
    with pytest.raises(openai.BadRequestError):  # the name is required (spec CreateVideoCharacterBody)
        client.post("/videos/characters", body={}, files=[("video", clip)], cast_to=Video,
                    options={"headers": {"Content-Type": "multipart/form-data"}})
    mock.admin("POST", "reset")  # forgets characters too
    with pytest.raises(openai.NotFoundError):
        client.videos.get_character(made.id)


def test_characters_of_one_provider_are_invisible_to_another():
    with EmbeddedMock(providers=["openai", "gptge"], seed=3) as m:
        state = m.state
        made = state.characters.create("openai", "Solo", 0.0)
        assert state.characters.get("openai", made.id) == made
        with pytest.raises(KeyError):
            state.characters.get("gptge", made.id)
        with pytest.raises(ValueError):
            state.characters.create("openai", "Bad format", 0.0, id_format="ulid")
