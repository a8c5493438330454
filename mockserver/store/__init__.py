"""Where jobs live: the ``--store`` of the mock (``memory``, ``sqlite:///PATH`` or ``redis://HOST:PORT/DB``).

``memory`` is :class:`mockserver.engine.JobStore` (one process; the default and the fast path).  The other two
are one :class:`~mockserver.store.shared.SharedJobStore` over a :class:`~mockserver.store.backend.Backend`
(:class:`~mockserver.store.sqlite_backend.SqliteBackend`, :class:`~mockserver.store.redis_backend.RedisBackend`),
with the clock, the fault book (rules, counters, rate-limit buckets) and the journal in the same store, so
``mockserver serve --workers N`` processes agree on everything.  A store that cannot be used at start is a
:class:`StoreError` (one line, exit 2); one that goes away while serving is :class:`StoreUnavailable`, answered
as a 503 by :class:`mockserver.middleware.StoreGuard`.
"""

from __future__ import annotations

from .backend import PREFIX, Backend, StoreError, StoreUnavailable, StoreURL, parse_store_url


def open_backend(url: str) -> Backend | None:
    """The backend of a ``--store`` value, connected and checked; None for ``memory``.

    Raises:
        StoreError: a malformed URL, or a store that cannot be reached or used (one line).
    """
    parsed = parse_store_url(url)
    if parsed.kind == "memory":
        return None
    if parsed.kind == "sqlite":
        from .sqlite_backend import SqliteBackend

        backend: Backend = SqliteBackend(parsed)
    else:
        from .redis_backend import RedisBackend

        backend = RedisBackend(parsed)
    try:
        backend.ping()
    except StoreUnavailable as exc:
        raise StoreError(f"--store {parsed.public}: {exc}") from None
    return backend


__all__ = ["PREFIX", "Backend", "StoreError", "StoreURL", "StoreUnavailable", "open_backend", "parse_store_url"]
