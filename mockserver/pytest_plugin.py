"""pytest plugin (registered through the ``pytest11`` entry point as ``soramock``).

Fixtures for users' own tests:

``sora_mock``
    A fresh mock per test, started in-process on a free 127.0.0.1 port with a **manual clock** (nothing
    moves until you advance it). It is a :class:`SoraMock` (an :class:`~mockserver.embedded.EmbeddedMock`)
    with helpers::

        def test_my_client(sora_mock):
            client = openai.OpenAI(base_url=sora_mock.base_url("openai"), api_key="sk-test")
            video = client.videos.create(prompt="a cat")
            sora_mock.advance(10)                       # virtual seconds: the job is now completed
            assert client.videos.retrieve(video.id).status == "completed"
            sora_mock.fault("rate_limit", provider="openai", times=1)   # the next call gets a 429
            source = sora_mock.seed_video("fal", seconds=8, size="1280x720")  # a completed source video
            held = client.videos.create(prompt="a dog", extra_headers={"X-Mock-Timing": "queued=hold"})
            sora_mock.advance_job("openai", held.id, to="end")  # only this job: completed now

``sora_virtual_time``
    Opt-in virtual time for the test's own process (needs the manual clock, the default): while the test
    runs, ``time.sleep``, ``asyncio.sleep`` and ``anyio.sleep`` called outside the mock's thread advance the
    mock's clock instead of waiting, so SDK poll loops and retry back-off finish at once with the same
    answers (:mod:`mockserver.virtual_time` lists what it patches and what it cannot)::

        def test_poll(sora_mock, sora_virtual_time):
            client = openai.OpenAI(base_url=sora_mock.base_url("openai"), api_key="sk-test")
            video = client.videos.create_and_poll(prompt="a cat")      # milliseconds of wall time
            assert video.status == "completed" and sora_virtual_time.advanced > 0

Helper errors are :class:`~mockserver.embedded.MockAdminError` (the admin API's status and message, e.g.
``POST /__mock/videos: 409 id 'x' already exists for provider 'openai'``) and :class:`~mockserver.embedded.MockError` (a provider
the mock does not serve, virtual time on a system clock), both importable from this module.

``sora_mock_config``
    Override this fixture to change the configuration (providers, TLS, timings, api_key, ...)::

        @pytest.fixture
        def sora_mock_config():
            return {"providers": ["fal"], "tls": True}

Command-line options: ``--sora-mock-speed`` (use a system clock at this speed instead of the manual clock),
``--sora-mock-seed`` and ``--sora-mock-store`` (``memory``, the default; ``sqlite:///PATH`` or
``redis://HOST:PORT/DB``: the fixture's jobs, faults, clock and journal then live there, and each test starts
by resetting them).  ``sora_mock_config`` may set ``store`` too.
"""

from __future__ import annotations

from typing import Any

import pytest

from .config import MockConfig
from .embedded import EmbeddedMock, MockAdminError, MockError
from .virtual_time import VirtualTime

__all__ = ["MockAdminError", "MockError", "SoraMock", "sora_mock", "sora_mock_config", "sora_virtual_time"]


class SoraMock(EmbeddedMock):
    """An :class:`EmbeddedMock` with test helpers."""

    def fault(self, kind: str, **spec: Any) -> dict:
        """Install a fault (``kind`` from :data:`mockserver.middleware.faults.FAULT_KINDS`); returns the rule.

        Raises:
            MockAdminError: 400 for a bad kind, option or target, 404 for a provider the mock does not serve.
        """
        return self.add_fault(kind=kind, **spec)

    def clear_faults(self) -> None:
        """Remove every installed fault."""
        self.admin("DELETE", "faults")

    def jobs(self, provider: str | None = None) -> list[dict]:
        """The mock's neutral view of its jobs (status, progress, lineage ...).

        Raises:
            MockAdminError: 404 for a provider the mock does not serve.
        """
        from urllib.parse import quote

        return self.admin("GET", "jobs" + (f"?provider={quote(provider, safe='')}" if provider else ""))["jobs"]

    def journal(self) -> list[dict]:
        """Recent requests (credentials redacted)."""
        return self.admin("GET", "journal")["requests"]

    def reset(self) -> None:
        """Forget jobs, faults, journal and webhook deliveries (not the clock)."""
        self.admin("POST", "reset")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("soramock", "Sora provider mock (sora-remix-contracts)")
    group.addoption("--sora-mock-speed", type=float, default=None,
                    help="run the sora_mock fixture on a system clock at this speed instead of a manual clock")
    group.addoption("--sora-mock-seed", type=int, default=0, help="seed of the sora_mock fixture")
    group.addoption("--sora-mock-store", default="memory", metavar="URL",
                    help="store of the sora_mock fixture: memory (default), sqlite:///PATH or redis://HOST:PORT/DB")


@pytest.fixture
def sora_mock_config() -> dict[str, Any]:
    """Extra :class:`~mockserver.config.MockConfig` fields for :func:`sora_mock` (override in conftest)."""
    return {}


@pytest.fixture
def sora_mock(request: pytest.FixtureRequest, sora_mock_config: dict[str, Any]):
    """A running mock of all providers (manual clock, free port on 127.0.0.1), stopped after the test."""
    speed = request.config.getoption("--sora-mock-speed")
    fields: dict[str, Any] = {"port": 0, "seed": request.config.getoption("--sora-mock-seed"),
                              "store": request.config.getoption("--sora-mock-store")}
    if speed:
        fields.update(clock="system", speed=speed)
    else:
        fields["clock"] = "manual"
    fields.update(sora_mock_config)
    mock = SoraMock(MockConfig(**fields))
    mock.start()
    if mock.state.backend is not None:  # a shared store outlives the fixture: start each test clean
        mock.reset()
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture
def sora_virtual_time(sora_mock: SoraMock):
    """Virtual time for the test (see the module docstring): yields the active
    :class:`~mockserver.virtual_time.VirtualTime` (``advanced``: virtual seconds slept, ``calls``).

    Raises:
        MockError: the ``sora_mock`` runs on a system clock (``--sora-mock-speed``), so there is no manual
            clock to advance.
    """
    vt: VirtualTime
    with sora_mock.virtual_time() as vt:
        yield vt
