"""Virtual time for the test's own process: its sleeps advance the mock's manual clock instead of waiting.

Opt in with :meth:`mockserver.embedded.EmbeddedMock.virtual_time` (a context manager) or the pytest fixture
``sora_virtual_time``. While it is active, with a mock on a **manual clock**:

- ``time.sleep(s)``: what openai's sync poll loop (``SyncAPIResource._sleep``) and sync retry back-off
  (``SyncAPIClient._sleep_for_retry``), fal-client's and sunra-client's sync poll loops (``iter_events``) and
  fal-client's sync retry (``_maybe_retry_request``) call;
- ``asyncio.sleep(s)``: what fal-client's and sunra-client's async poll loops and retries call;
- ``anyio.sleep(s)``: what openai's async poll loop and async retry back-off call (anyio binds
  ``asyncio.sleep`` at import, so patching ``asyncio.sleep`` alone would miss it);

each advance the mock's clock by ``s`` virtual seconds (``POST /__mock/clock/advance``) and then yield for
0 s, so a 60 s poll loop or a ``Retry-After: 30`` retry takes milliseconds of wall time with the same answers.

What is *not* changed: calls made on a mock server's own thread (its event loop keeps real time: latency and
hang faults, webhook retries), sleeps of other processes, waits inside C extensions or in code that imported
``sleep`` by name before the patch (``from time import sleep``), timeouts of sockets and event loops
(``asyncio.wait_for``, ``loop.call_later``), and code that waits by reading ``time.monotonic()``/``time.time()``
in a loop. Non-finite or non-positive durations sleep as before. Only one virtual time may be active in a
process at once.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import Any

#: Thread idents of running embedded mock servers: their sleeps always keep real time.
SERVER_THREADS: set[int] = set()
_ACTIVE_LOCK = threading.Lock()
_active: VirtualTime | None = None


class VirtualTimeError(RuntimeError):
    """Virtual time cannot be entered (not a manual clock, or already active); ``str(err)`` is one line."""


class VirtualTime:
    """The patch of ``time.sleep``, ``asyncio.sleep`` and ``anyio.sleep`` (see the module docstring).

    Args:
        advance: called with the virtual seconds (a finite float > 0) to move the mock's clock by; it must not
            sleep itself.

    Attributes:
        advanced: total virtual seconds the patched sleeps advanced the clock by.
        calls: how many sleeps were turned into advances.
    """

    def __init__(self, advance: Callable[[float], Any]):
        self._advance = advance
        self.advanced = 0.0
        self.calls = 0
        self._lock = threading.Lock()
        self._saved: list[tuple[Any, str, Any]] = []

    def _virtual(self, seconds: Any) -> bool:
        """True when a sleep of ``seconds`` by the calling thread becomes an advance."""
        if threading.get_ident() in SERVER_THREADS:
            return False
        try:
            return math.isfinite(seconds) and seconds > 0
        except TypeError:
            return False

    def _take(self, seconds: float) -> None:
        self._advance(float(seconds))
        with self._lock:
            self.advanced += float(seconds)
            self.calls += 1

    def __enter__(self) -> VirtualTime:
        global _active
        with _ACTIVE_LOCK:
            if _active is not None:
                raise VirtualTimeError("virtual time is already active in this process (one at a time)")
            _active = self
        real_sleep = time.sleep
        real_asleep = asyncio.sleep

        def sleep(seconds: float) -> None:
            if not self._virtual(seconds):
                return real_sleep(seconds)
            self._take(seconds)
            return real_sleep(0)

        async def asleep(delay: float, result: Any = None) -> Any:
            if not self._virtual(delay):
                return await real_asleep(delay, result)
            self._take(delay)
            return await real_asleep(0, result)

        sleep.__doc__ = "time.sleep under mockserver virtual time: advances the mock's clock instead."
        asleep.__doc__ = "asyncio.sleep under mockserver virtual time: advances the mock's clock instead."
        self._patch(time, "sleep", sleep)
        self._patch(asyncio, "sleep", asleep)
        try:
            import anyio
        except ImportError:  # not installed: nothing to patch
            anyio = None
        if anyio is not None:
            real_anyio_sleep = anyio.sleep

            async def anyio_sleep(delay: float) -> None:
                if not self._virtual(delay):
                    return await real_anyio_sleep(delay)
                self._take(delay)
                return await real_anyio_sleep(0)

            self._patch(anyio, "sleep", anyio_sleep)
        return self

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def __exit__(self, *exc: Any) -> None:
        global _active
        for owner, name, value in reversed(self._saved):
            setattr(owner, name, value)
        self._saved.clear()
        with _ACTIVE_LOCK:
            _active = None


__all__ = ["SERVER_THREADS", "VirtualTime", "VirtualTimeError"]
