"""Per-request lifecycle timing: the ``X-Mock-Timing`` header of job-creating requests.

    X-Mock-Timing: queued=<S>, in_progress=<S>

Sets how long the job a request creates spends queued and in progress, in *virtual* seconds of the mock's
clock (so a system clock at ``--speed 10`` runs them ten times faster, and a manual clock only when
advanced). Items are separated by ``,`` or ``;`` (as in ``X-Mock-Fault``), spaces are ignored:

- ``<S>`` is a plain decimal number of seconds, ``0 <= S <= 1e12`` (``0``, ``2.5``, ``1e3``);
- ``hold`` (any case) keeps the job in that phase until it is moved on with
  ``POST /__mock/jobs/{provider}/{job_id}/advance`` (internally :data:`mockserver.engine.HOLD_SECONDS`);
- a key left out keeps the provider's default (``mock`` in provider.yaml, or ``--timing``/profile).

Examples: ``queued=hold`` (stays queued), ``queued=0; in_progress=hold`` (starts at once, never ends by
itself), ``queued=0, in_progress=0`` (completed as soon as it is created).

It applies wherever a job is created (create, remix, edit, submit, run; every family). On the synchronous
family (onerouter, fal.run) the call blocks until the job ends, so a ``hold`` there keeps the call waiting
until the job is advanced (the waiting call wakes up at once) or until ``mock.sync.max_wait_seconds`` of
real time have passed, when the provider's own timeout answer is returned.

A malformed header is the client's error: the request is answered in the provider's ``validation`` error
envelope and status (as a malformed ``X-Mock-Fault`` is), and no job is created.
"""

from __future__ import annotations

import math
import re

from .engine import HOLD_SECONDS, Timing

__all__ = ["HOLD", "TIMING_HEADER", "TimingHeaderError", "parse_timing_header"]

TIMING_HEADER = "X-Mock-Timing"
#: The value that holds a phase until it is advanced through the admin API.
HOLD = "hold"
_KEYS = ("queued", "in_progress")
_MAX = f"{HOLD_SECONDS:g}".replace("e+", "e")  # "1e12"
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class TimingHeaderError(ValueError):
    """The ``X-Mock-Timing`` header is malformed; ``str(err)`` is one clear line (without the header name)."""


def parse_timing_header(value: str | None, default: Timing) -> Timing:
    """The timing of a new job from an ``X-Mock-Timing`` header value and the provider's default.

    Args:
        value: the header value (``"queued=hold, in_progress=2"``), or None / blank when absent.
        default: the provider's :class:`~mockserver.engine.Timing` (seconds), used for omitted keys and
            returned as is when the header is absent or blank.

    Returns:
        A :class:`~mockserver.engine.Timing` in virtual seconds; ``hold`` is
        :data:`~mockserver.engine.HOLD_SECONDS`.

    Raises:
        TimingHeaderError: an item without ``=``, an unknown or repeated key, or a value that is neither
            ``hold`` nor a plain decimal number in 0..1e12 (no sign, ``nan``, ``inf`` or ``_``).
    """
    if value is None or not value.strip():
        return default
    found: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in value.replace(";", ",").split(","))):
        key, eq, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq:
            raise TimingHeaderError(f"item {item!r} must look like queued=<seconds|hold> or "
                                    "in_progress=<seconds|hold>")
        if key not in _KEYS:
            raise TimingHeaderError(f"unknown key {key!r} (keys: {', '.join(_KEYS)})")
        if key in found:
            raise TimingHeaderError(f"{key} is given more than once")
        if raw.lower() == HOLD:
            found[key] = HOLD_SECONDS
            continue
        seconds = float(raw) if _NUMBER.fullmatch(raw) else math.nan
        if not 0 <= seconds <= HOLD_SECONDS:  # also NaN: not a plain number, or 1e400 (inf)
            raise TimingHeaderError(f"{key} must be a number of seconds in 0..{_MAX} or {HOLD!r}, not {raw!r}")
        found[key] = seconds
    if not found:
        raise TimingHeaderError("expected queued=<seconds|hold> and/or in_progress=<seconds|hold>")
    return Timing(found.get("queued", default.queued), found.get("in_progress", default.in_progress))
