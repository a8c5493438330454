"""The ``sqlite:///PATH`` store: one file, durable on one host (stdlib ``sqlite3``, WAL mode).

Every primitive of :class:`~mockserver.store.backend.Backend` is one transaction (``BEGIN IMMEDIATE`` for the
ones that read and then write), so processes sharing the file never see half a change.  WAL with
``synchronous=NORMAL`` keeps every committed transaction across a ``kill -9`` of the mock (only a power loss
may lose the last ones).  A file that stays locked longer than :data:`BUSY_MS` is :class:`StoreUnavailable`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from .backend import Backend, StoreError, StoreUnavailable, StoreURL

#: Milliseconds a transaction waits for another process's lock before the store counts as unavailable.
BUSY_MS = 5000

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (provider TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    live INTEGER NOT NULL, start REAL, rec TEXT NOT NULL, PRIMARY KEY (provider, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_seq ON jobs (provider, seq);
CREATE INDEX IF NOT EXISTS jobs_start ON jobs (provider, start) WHERE start IS NOT NULL;
CREATE TABLE IF NOT EXISTS seqs (provider TEXT PRIMARY KEY, next INTEGER NOT NULL, last REAL NOT NULL);
CREATE TABLE IF NOT EXISTS polls (provider TEXT NOT NULL, id TEXT NOT NULL, who TEXT NOT NULL, v TEXT NOT NULL,
    PRIMARY KEY (provider, id, who)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS faults (id INTEGER PRIMARY KEY, spec TEXT NOT NULL, fired INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (k TEXT PRIMARY KEY, tokens REAL NOT NULL, last REAL NOT NULL);
CREATE TABLE IF NOT EXISTS lists (n INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, v TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS lists_name ON lists (name, n);
"""


class SqliteBackend(Backend):
    """A SQLite file shared by the processes of one host.

    Args:
        url: a parsed ``sqlite:`` store URL (``url.path`` is the file; its directory must exist).

    Raises:
        StoreError: the file cannot be opened or is not a SQLite database (one line).
    """

    kind = "sqlite"

    def __init__(self, url: StoreURL):
        super().__init__(url)
        self.path = str(url.path)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        if not Path(self.path).parent.is_dir():
            raise StoreError(f"--store {url.public}: directory {str(Path(self.path).parent)!r} does not exist")
        try:
            db = self._conn()
            db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"--store {url.public}: cannot use {self.path!r} as a SQLite store: {exc}") from None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():  # a forked worker opens its own connection
            db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            self._db, self._pid = db, os.getpid()
        return self._db

    def _run(self, fn, write: bool = False):
        """Run ``fn(connection)`` in one transaction (IMMEDIATE when it writes); errors -> StoreUnavailable."""
        with self._lock:
            try:
                db = self._conn()
                if not write:
                    return fn(db)
                db.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                return out
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from None

    def ping(self) -> None:
        """Check that the file answers."""
        self._run(lambda db: db.execute("SELECT 1").fetchone())

    def close(self) -> None:
        """Close this process's connection."""
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    # -- small values -------------------------------------------------------------------------------------
    def get(self, name: str) -> str | None:
        """The value ``name`` or None."""
        row = self._run(lambda db: db.execute("SELECT v FROM kv WHERE k=?", (name,)).fetchone())
        return None if row is None else row[0]

    def put(self, name: str, value: str) -> None:
        """Set ``name``."""
        self._run(lambda db: db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (name, value)), write=True)

    def set_default(self, name: str, value: str) -> str:
        """Set ``name`` unless set; returns its value."""
        def fn(db):
            db.execute("INSERT OR IGNORE INTO kv VALUES (?, ?)", (name, value))
            return db.execute("SELECT v FROM kv WHERE k=?", (name,)).fetchone()[0]
        return self._run(fn, write=True)

    def incr(self, name: str) -> int:
        """Counter + 1."""
        return int(self.add_float(name, 1))

    def add_float(self, name: str, amount: float) -> float:
        """Atomic add."""
        def fn(db):
            row = db.execute("SELECT v FROM kv WHERE k=?", (name,)).fetchone()
            value = (float(row[0]) if row else 0.0) + amount
            db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (name, repr(value)))
            return value
        return self._run(fn, write=True)

    # -- jobs ---------------------------------------------------------------------------------------------
    def job_create(self, provider, id, head, t, start, queue_position):
        """See :meth:`Backend.job_create`."""
        def fn(db):
            if db.execute("SELECT 1 FROM jobs WHERE provider=? AND id=?", (provider, id)).fetchone():
                return None
            row = db.execute("SELECT next, last FROM seqs WHERE provider=?", (provider,)).fetchone()
            seq, created = (row[0], max(t, row[1])) if row else (0, t)
            db.execute("INSERT OR REPLACE INTO seqs VALUES (?, ?, ?)", (provider, seq + 1, created))
            db.execute("UPDATE jobs SET start=NULL WHERE provider=? AND start IS NOT NULL AND start<=?",
                       (provider, created))
            qp = queue_position
            if qp is None:
                qp = db.execute("SELECT count(*) FROM jobs WHERE provider=? AND start IS NOT NULL",
                                (provider,)).fetchone()[0]
            db.execute("INSERT INTO jobs VALUES (?, ?, ?, 1, ?, ?)",
                       (provider, id, seq, start, f"{head}{created!r},{seq},{qp}]"))
            return seq, qp, created
        return self._run(fn, write=True)

    def job_get(self, provider, id):
        """See :meth:`Backend.job_get`."""
        row = self._run(lambda db: db.execute("SELECT rec FROM jobs WHERE provider=? AND id=?",
                                              (provider, id)).fetchone())
        return None if row is None else row[0]

    def job_cas(self, provider, id, old, new, *, unlist=False, unstart=False):
        """See :meth:`Backend.job_cas`."""
        def fn(db):
            cur = db.execute("UPDATE jobs SET rec=?, live=CASE WHEN ? THEN 0 ELSE live END, "
                             "start=CASE WHEN ? THEN NULL ELSE start END WHERE provider=? AND id=? AND rec=?",
                             (new, unlist, unstart, provider, id, old))
            return cur.rowcount == 1
        return self._run(fn, write=True)

    def job_page(self, provider, asc, after_seq, limit):
        """See :meth:`Backend.job_page`."""
        op, order = (">", "ASC") if asc else ("<", "DESC")
        bound = after_seq if after_seq is not None else (-1 if asc else 2 ** 62)
        rows = self._run(lambda db: db.execute(
            f"SELECT id, rec FROM jobs WHERE provider=? AND live=1 AND seq{op}? ORDER BY seq {order} LIMIT ?",
            (provider, bound, limit + 1)).fetchall())
        return [(r[0], r[1]) for r in rows[:limit]], len(rows) > limit

    def job_count(self, provider):
        """See :meth:`Backend.job_count`."""
        if provider is None:
            return self._run(lambda db: db.execute("SELECT count(*) FROM jobs WHERE live=1").fetchone()[0])
        return self._run(lambda db: db.execute("SELECT count(*) FROM jobs WHERE provider=? AND live=1",
                                               (provider,)).fetchone()[0])

    def jobs_reset(self):
        """See :meth:`Backend.jobs_reset`."""
        def fn(db):
            for table in ("jobs", "seqs", "polls"):
                db.execute(f"DELETE FROM {table}")
        self._run(fn, write=True)

    def poll_get(self, provider, id, who):
        """See :meth:`Backend.poll_get`."""
        row = self._run(lambda db: db.execute("SELECT v FROM polls WHERE provider=? AND id=? AND who=?",
                                              (provider, id, who)).fetchone())
        return None if row is None else row[0]

    def poll_put(self, provider, id, who, value):
        """See :meth:`Backend.poll_put`."""
        self._run(lambda db: db.execute("INSERT OR REPLACE INTO polls VALUES (?, ?, ?, ?)",
                                        (provider, id, who, value)), write=True)

    # -- faults -------------------------------------------------------------------------------------------
    def faults_load(self):
        """See :meth:`Backend.faults_load`."""
        return [tuple(r) for r in self._run(lambda db: db.execute(
            "SELECT id, spec, fired FROM faults ORDER BY id").fetchall())]

    def fault_add(self, spec):
        """See :meth:`Backend.fault_add`."""
        def fn(db):
            row = db.execute("SELECT v FROM kv WHERE k='fault_ids'").fetchone()
            fid = int(float(row[0])) + 1 if row else 1
            db.execute("INSERT OR REPLACE INTO kv VALUES ('fault_ids', ?)", (str(fid),))
            db.execute("INSERT INTO faults VALUES (?, ?, 0)", (fid, spec))
            return fid
        return self._run(fn, write=True)

    def fault_remove(self, id):
        """See :meth:`Backend.fault_remove`."""
        return self._run(lambda db: db.execute("DELETE FROM faults WHERE id=?", (id,)).rowcount == 1, write=True)

    def faults_clear(self):
        """See :meth:`Backend.faults_clear`."""
        return self._run(lambda db: db.execute("DELETE FROM faults").rowcount, write=True)

    def fault_fire(self, id, times):
        """See :meth:`Backend.fault_fire`."""
        cap = -1 if times is None else int(times)
        return self._run(lambda db: db.execute(
            "UPDATE faults SET fired=fired+1 WHERE id=? AND (?<0 OR fired<?)", (id, cap, cap)).rowcount == 1,
            write=True)

    def take_token(self, key, capacity, per):
        """See :meth:`Backend.take_token`."""
        rate = capacity / per

        def fn(db):
            now = time.time()
            row = db.execute("SELECT tokens, last FROM buckets WHERE k=?", (key,)).fetchone()
            tokens, last = row if row else (capacity, now)
            tokens = min(capacity, tokens + max(0.0, now - last) * rate)
            if tokens >= 1:
                db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)", (key, tokens - 1, now))
                return None
            db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)", (key, tokens, now))
            return (1 - tokens) / rate
        return self._run(fn, write=True)

    # -- lists --------------------------------------------------------------------------------------------
    def list_push(self, name, item, keep):
        """See :meth:`Backend.list_push`."""
        def fn(db):
            n = db.execute("INSERT INTO lists (name, v) VALUES (?, ?)", (name, item)).lastrowid
            if n % 64 == 0 or keep < 64:  # trim now and then: the list holds at most keep + 64 items
                db.execute("DELETE FROM lists WHERE name=? AND n NOT IN "
                           "(SELECT n FROM lists WHERE name=? ORDER BY n DESC LIMIT ?)", (name, name, keep))
        self._run(fn, write=True)

    def list_push_many(self, name, items, keep):
        """See :meth:`Backend.list_push_many` (one transaction)."""
        def fn(db):
            db.executemany("INSERT INTO lists (name, v) VALUES (?, ?)", [(name, item) for item in items])
            db.execute("DELETE FROM lists WHERE name=? AND n NOT IN "
                       "(SELECT n FROM lists WHERE name=? ORDER BY n DESC LIMIT ?)", (name, name, keep))
        if items:
            self._run(fn, write=True)

    def list_read(self, name, limit):
        """See :meth:`Backend.list_read`."""
        rows = self._run(lambda db: db.execute("SELECT v FROM lists WHERE name=? ORDER BY n DESC LIMIT ?",
                                               (name, limit)).fetchall())
        return [r[0] for r in reversed(rows)]

    def list_clear(self, name):
        """See :meth:`Backend.list_clear`."""
        self._run(lambda db: db.execute("DELETE FROM lists WHERE name=?", (name,)), write=True)

    def bytes_used(self) -> int | None:
        """Size of the file and its WAL in bytes."""
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))


__all__ = ["BUSY_MS", "SqliteBackend"]
