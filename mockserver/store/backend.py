"""The primitives a shared store offers (:class:`Backend`), the ``--store`` URL, and the store's errors.

Two backends implement :class:`Backend`: :class:`mockserver.store.sqlite_backend.SqliteBackend` (a file, one
host, stdlib ``sqlite3`` in WAL mode) and :class:`mockserver.store.redis_backend.RedisBackend` (redis-py with
hiredis; many processes and hosts).  Everything above them (:mod:`mockserver.store.shared`) is written once
against these primitives.  Every primitive is synchronous and short (one SQLite transaction, one Redis round
trip or script); each is atomic, so workers never see a half-made change.

What is stored (Redis keys under ``soramock:``; SQLite tables): job records by provider and id, the live
jobs of each provider ordered by submission (``seq``), the start times of jobs that may still be queued
(default queue positions), the last answered poll per (job, caller hash), fault rules with how often each
fired, the token buckets of ``--rate-limit`` (by a hash of the API key, never the key), the clock (anchor of
a system clock, virtual time of a manual one), counters (process starts, fault ids) and two bounded lists:
the journal (redacted) and the webhook deliveries.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError
from ..http import ServiceUnavailable

#: Key prefix of every Redis key (and the name of nothing in SQLite).
PREFIX = "soramock:"


class StoreError(ConfigError):
    """A ``--store`` URL that is malformed, or a store that cannot be reached or used at start.
    ``str(err)`` is one clear line (the CLI exits with code 2)."""


class StoreUnavailable(ServiceUnavailable):
    """The store stopped answering while the mock serves (a Redis that went away, a SQLite file that is
    locked too long or unreadable).  Answered as the provider's 503 (:class:`mockserver.middleware.StoreGuard`);
    the next request tries again, so the mock serves as soon as the store is back."""


@dataclass(frozen=True)
class StoreURL:
    """A parsed ``--store`` value.

    Attributes:
        kind: ``memory``, ``sqlite`` or ``redis``.
        url: the value as given.
        path: the SQLite file (``sqlite`` only).
        public: the URL with any password replaced by ``***`` (for logs and ``/__mock/health``).
    """

    kind: str
    url: str
    path: str | None = None
    public: str = ""


def parse_store_url(url: Any) -> StoreURL:
    """Parse a ``--store`` value.

    Forms: ``memory`` (the default); ``sqlite:///ABSOLUTE/PATH`` (``sqlite:`` followed by the path: three
    slashes and an absolute path, or ``sqlite:relative/path``); ``redis://[:password@]HOST:PORT/DB``,
    ``rediss://...`` (TLS) or ``unix:///path/to/redis.sock?db=N``.

    Raises:
        StoreError: anything else (one line naming the accepted forms).
    """
    forms = "memory, sqlite:///PATH or redis://HOST:PORT/DB"
    if not isinstance(url, str) or not url.strip():
        raise StoreError(f"--store must be {forms}, not {url!r}")
    url = url.strip()
    if url == "memory":
        return StoreURL("memory", url, public="memory")
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:"):]
        path = rest[2:] if rest.startswith("//") else rest
        if not path or path in (":memory:", "/:memory:") or "?" in path or "\x00" in path:
            raise StoreError(f"--store {url!r}: a SQLite store needs a file path, e.g. sqlite:///tmp/mock.db")
        return StoreURL("sqlite", url, path=path, public=url)
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss", "unix"):
        try:
            port = parts.port
        except ValueError:
            raise StoreError(f"--store {url!r}: the port must be a number 1..65535") from None
        if parts.scheme != "unix" and not parts.hostname:
            raise StoreError(f"--store {url!r}: a Redis store needs a host, e.g. redis://127.0.0.1:6379/0")
        if parts.scheme != "unix" and port == 0:
            raise StoreError(f"--store {url!r}: the port must be a number 1..65535")
        db = parts.path.strip("/")
        if parts.scheme != "unix" and db and not db.isdigit():
            raise StoreError(f"--store {url!r}: the database must be a number, e.g. redis://127.0.0.1:6379/0")
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
        return StoreURL("redis", url, public=urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")))
    raise StoreError(f"--store must be {forms}, not {url!r}")


class Backend(abc.ABC):
    """The primitives of a shared store; :class:`mockserver.store.shared.SharedJobStore` and its companions
    (clock, fault book, journal) are written once against them.

    Every method is synchronous and short (one SQLite transaction, one Redis round trip or script), atomic,
    and raises :class:`StoreUnavailable` when the store does not answer.  Records are ``str`` (JSON).
    Times named ``t``/``start`` are the engine's virtual seconds.
    """

    #: ``sqlite`` or ``redis``.
    kind: str = ""

    def __init__(self, url: StoreURL):
        self.url = url

    @property
    def public_url(self) -> str:
        """The store URL without its password (for logs and ``/__mock/health``)."""
        return self.url.public

    # -- lifecycle ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def ping(self) -> None:
        """Check that the store answers (raises :class:`StoreUnavailable`)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connections of this process."""

    # -- small values and counters -----------------------------------------------------------------------
    @abc.abstractmethod
    def get(self, name: str) -> str | None:
        """The value named ``name`` (clock anchor, manual time ...), or None."""

    @abc.abstractmethod
    def put(self, name: str, value: str) -> None:
        """Set ``name`` to ``value``."""

    @abc.abstractmethod
    def set_default(self, name: str, value: str) -> str:
        """Set ``name`` to ``value`` unless it has a value; returns the value it has afterwards."""

    @abc.abstractmethod
    def incr(self, name: str) -> int:
        """Add 1 to the counter ``name`` (0 when missing) and return the new value (unique across workers)."""

    @abc.abstractmethod
    def add_float(self, name: str, amount: float) -> float:
        """Add ``amount`` to the number ``name`` (0 when missing), atomically; returns the new value."""

    # -- jobs ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def job_create(self, provider: str, id: str, head: str, t: float, start: float | None,
                   queue_position: int | None) -> tuple[int, int, float] | None:
        """Insert a job atomically: its ``seq`` is the provider's next (from 0); its creation time is ``t``, or
        the provider's latest creation time when that is later (workers read the clock before they insert, so
        submission order and creation times agree); start times ``<= t`` are forgotten; its queue position is
        ``queue_position`` or, when None, the number of start times left; ``start`` (virtual seconds its queue
        phase ends, None when it is not queued) is remembered; the record stored is
        ``head + f"{created!r},{seq},{queue_position}]"``, listed and counted live.

        Returns ``(seq, queue_position, created)``, or None (nothing changed) when ``id`` is taken."""

    @abc.abstractmethod
    def job_get(self, provider: str, id: str) -> str | None:
        """A job record (live or deleted), or None."""

    @abc.abstractmethod
    def job_cas(self, provider: str, id: str, old: str, new: str, *, unlist: bool = False,
                unstart: bool = False) -> bool:
        """Replace a job record if it still is ``old``; with ``unlist`` it is no longer listed or counted
        (deleted); with ``unstart`` its start time no longer counts in the queue.  False (nothing changed)
        when the record moved meanwhile (the caller reads it again and retries)."""

    @abc.abstractmethod
    def job_page(self, provider: str, asc: bool, after_seq: int | None,
                 limit: int) -> tuple[list[tuple[str, str]], bool]:
        """``(id, record)`` of one page of live jobs ordered by ``seq`` (strictly after ``after_seq`` in that order when
        given), and whether live jobs remain beyond it."""

    @abc.abstractmethod
    def job_count(self, provider: str | None) -> int:
        """Live jobs of ``provider`` (every provider when None)."""

    @abc.abstractmethod
    def jobs_reset(self) -> None:
        """Forget every job (records, order, queue, polls, sequence numbers)."""

    @abc.abstractmethod
    def poll_get(self, provider: str, id: str, who: str) -> str | None:
        """The last answered poll of a job by a caller hash, or None."""

    @abc.abstractmethod
    def poll_put(self, provider: str, id: str, who: str, value: str) -> None:
        """Record an answered poll (see :meth:`poll_get`)."""

    # -- faults -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def faults_load(self) -> list[tuple[int, str, int]]:
        """Every rule ``(id, spec JSON, fired)`` in id order."""

    @abc.abstractmethod
    def fault_add(self, spec: str) -> int:
        """Install a rule (spec JSON); returns its id (unique across workers)."""

    @abc.abstractmethod
    def fault_remove(self, id: int) -> bool:
        """Remove a rule; True if there was one."""

    @abc.abstractmethod
    def faults_clear(self) -> int:
        """Remove every rule; returns how many there were."""

    @abc.abstractmethod
    def fault_fire(self, id: int, times: int | None) -> bool:
        """Count one firing of a rule, atomically: False (nothing counted) when the rule is gone or has
        already fired ``times`` times, so ``times=N`` fires exactly N times across every worker."""

    @abc.abstractmethod
    def take_token(self, key: str, capacity: float, per: float) -> float | None:
        """Take a token from the bucket of ``key`` (a hash of the API key: ``capacity`` tokens refilled over
        ``per`` seconds of real time, shared by every worker): None when taken, else seconds until one is."""

    # -- bounded lists (journal, webhook deliveries) ------------------------------------------------------
    @abc.abstractmethod
    def list_push(self, name: str, item: str, keep: int) -> None:
        """Append ``item`` to the list ``name`` and keep only its last ``keep`` items."""

    def list_push_many(self, name: str, items: list[str], keep: int) -> None:
        """Append ``items`` (in order) to the list ``name`` and keep only its last ``keep`` items."""
        for item in items:
            self.list_push(name, item, keep)

    @abc.abstractmethod
    def list_read(self, name: str, limit: int) -> list[str]:
        """The last ``limit`` items of ``name``, oldest first."""

    @abc.abstractmethod
    def list_clear(self, name: str) -> None:
        """Empty the list ``name``."""

    # -- figures ------------------------------------------------------------------------------------------
    def bytes_used(self) -> int | None:
        """Bytes the store holds (Redis ``used_memory``; the SQLite file's size), for the bench."""
        return None


__all__ = ["PREFIX", "Backend", "StoreError", "StoreURL", "StoreUnavailable", "parse_store_url"]
