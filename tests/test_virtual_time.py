"""Virtual time for the client (issue 12): under ``EmbeddedMock.virtual_time()`` / the ``sora_virtual_time``
fixture, the SDKs' own sleeps (poll loops, retry back-off) advance the mock's manual clock instead of waiting.

Each SDK test measures its wall time: the sleeps it makes would take more than 30 s of real time, and under
virtual time the whole call must finish in under 5 s (it takes well under a second on an idle machine).
"""

from __future__ import annotations

import asyncio
import threading
import time

import fal_client
import httpx
import openai
import pytest

from mockserver.config import MockConfig
from mockserver.embedded import EmbeddedMock, MockError
from mockserver.sdk_recipes import point_fal_client_at
from mockserver.virtual_time import SERVER_THREADS

# openai 3.x warns that the Sora API shuts down in 2026 on every videos call (tests/test_pytest_plugin.py too)
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


SLOW = {"queued_seconds": 5.0, "in_progress_seconds": 30.0}  # 35 virtual seconds per job
WALL_BOUND = 5.0


@pytest.fixture
def slow_mock():
    mock = EmbeddedMock(MockConfig(port=0, clock="manual", providers=["openai", "fal"],
                                   timings={"openai": dict(SLOW), "fal": dict(SLOW)}))
    mock.start()
    try:
        yield mock
    finally:
        mock.stop()


def test_openai_create_and_poll_finishes_in_virtual_time(slow_mock, record_property):
    with openai.OpenAI(base_url=slow_mock.base_url("openai"), api_key="sk-test", max_retries=0) as client:
        t0 = time.perf_counter()
        with slow_mock.virtual_time() as vt:
            video = client.videos.create_and_poll(prompt="a cat", poll_interval_ms=1000)
        wall = time.perf_counter() - t0
        assert client.videos.retrieve(video.id).status == "completed"
    record_property("wall_seconds", round(wall, 3))
    print(f"openai create_and_poll: {wall:.3f} s wall, {vt.advanced:.1f} virtual s in {vt.calls} sleeps")
    assert video.status == "completed" and video.progress == 100
    assert vt.advanced >= 35.0 and vt.calls >= 35  # the real sleeps would have taken >= 35 s
    assert wall < WALL_BOUND
    assert slow_mock.admin("GET", "clock")["now"] == pytest.approx(vt.advanced)


def test_openai_retry_after_30_is_slept_virtually(slow_mock, record_property):
    slow_mock.add_fault(kind="rate_limit", provider="openai", operation="list", times=1, retry_after=30)
    with openai.OpenAI(base_url=slow_mock.base_url("openai"), api_key="sk-test", max_retries=2) as client:
        t0 = time.perf_counter()
        with slow_mock.virtual_time() as vt:
            page = client.videos.with_raw_response.list()
        wall = time.perf_counter() - t0
    record_property("wall_seconds", round(wall, 3))
    print(f"openai 429 Retry-After 30: {wall:.3f} s wall, {vt.advanced:.1f} virtual s")
    assert page.status_code == 200 and page.retries_taken == 1
    assert vt.advanced == 30.0 and vt.calls == 1
    assert wall < WALL_BOUND
    statuses = [e["status"] for e in slow_mock.admin("GET", "journal")["requests"]]
    assert statuses == [429, 200]


def test_fal_client_subscribe_finishes_in_virtual_time(slow_mock, record_property):
    restore = point_fal_client_at(slow_mock.base_url("fal", "queue"), slow_mock.base_url("fal", "run"))
    client = fal_client.SyncClient(key="mock-key")
    updates: list[str] = []
    try:
        t0 = time.perf_counter()
        with slow_mock.virtual_time() as vt:
            result = client.subscribe("fal-ai/sora-2/text-to-video", arguments={"prompt": "a cat"},
                                      interval=0.5, on_queue_update=lambda s: updates.append(type(s).__name__))
        wall = time.perf_counter() - t0
    finally:
        restore()
        client._client.close()
    record_property("wall_seconds", round(wall, 3))
    print(f"fal_client.subscribe: {wall:.3f} s wall, {vt.advanced:.1f} virtual s in {vt.calls} sleeps")
    assert result["video"]["content_type"] == "video/mp4"
    with httpx.Client() as http:
        assert http.get(result["video"]["url"]).content[4:8] == b"ftyp"
    assert updates[0] == "Queued" and "InProgress" in updates and updates[-1] == "Completed"
    assert vt.advanced >= 35.0
    assert wall < WALL_BOUND


def test_async_sleeps_advance_but_the_mock_thread_keeps_real_time(slow_mock):
    """asyncio.sleep in the test's loop is virtual; the mock's own loop (a latency fault) still waits."""
    async def main() -> float:
        await asyncio.sleep(100)
        return slow_mock.admin("GET", "clock")["now"]

    slow_mock.add_fault(kind="latency", provider="openai", ms=300, times=1)
    with slow_mock.virtual_time() as vt, openai.OpenAI(base_url=slow_mock.base_url("openai"), api_key="sk-test",
                                                       max_retries=0) as client:
        assert asyncio.run(main()) == 100.0
        t0 = time.perf_counter()
        client.videos.list()
        assert time.perf_counter() - t0 >= 0.25  # the mock's thread really slept (not patched there)
    assert vt.advanced == 100.0
    assert threading.get_ident() not in SERVER_THREADS
    # restored afterwards: a real sleep takes real time and leaves the clock alone
    t0 = time.perf_counter()
    time.sleep(0.05)
    assert time.perf_counter() - t0 >= 0.04
    assert slow_mock.admin("GET", "clock")["now"] == 100.0


def test_virtual_time_needs_a_manual_clock_and_is_not_nested(slow_mock):
    with EmbeddedMock(MockConfig(port=0, clock="system", providers=["openai"])) as system_mock:
        with pytest.raises(MockError, match="needs a manual clock"):
            system_mock.virtual_time()
    with slow_mock.virtual_time():
        with pytest.raises(MockError, match="already active"):
            slow_mock.virtual_time().__enter__()
    assert time.sleep.__module__ == "time"  # the patch was undone


USER_TEST = '''
import time
import openai


def test_virtual_poll(sora_mock, sora_virtual_time):
    with openai.OpenAI(base_url=sora_mock.base_url("openai"), api_key="sk-user", max_retries=0) as client:
        t0 = time.perf_counter()
        video = client.videos.create_and_poll(prompt="a cat", poll_interval_ms=1000)
    assert video.status == "completed"
    assert sora_virtual_time.advanced >= 2 and time.perf_counter() - t0 < 5
'''


def test_sora_virtual_time_fixture_via_entry_point(pytester):
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=1)


def test_async_openai_create_and_poll_finishes_in_virtual_time(slow_mock, record_property):
    """AsyncOpenAI sleeps with anyio.sleep (bound to asyncio.sleep at anyio's import): patched too."""
    async def main():
        async with openai.AsyncOpenAI(base_url=slow_mock.base_url("openai"), api_key="sk-test",
                                      max_retries=0) as client:
            return await client.videos.create_and_poll(prompt="a cat", poll_interval_ms=1000)

    t0 = time.perf_counter()
    with slow_mock.virtual_time() as vt:
        video = asyncio.run(main())
    wall = time.perf_counter() - t0
    record_property("wall_seconds", round(wall, 3))
    print(f"AsyncOpenAI create_and_poll: {wall:.3f} s wall, {vt.advanced:.1f} virtual s")
    assert video.status == "completed" and vt.advanced >= 35.0
    assert wall < WALL_BOUND
