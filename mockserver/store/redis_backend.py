"""The ``redis://HOST:PORT/DB`` store: shared by many processes and hosts (redis-py with hiredis).

Each primitive of :class:`~mockserver.store.backend.Backend` is one command or one Lua script (atomic on the
server), so workers never see half a change and ``times=N`` / token buckets hold across workers.  Keys (all
under :data:`~mockserver.store.backend.PREFIX`):

===================== ==================================================================================
``j:<p>:<id>``        a job record (string)
``jl:<p>``            live jobs of provider ``<p>``: sorted set id -> ``seq``
``js:<p>``            jobs that may still be queued: sorted set id -> start time (default queue positions)
``jq:<p>``            the provider's next ``seq``
``jt:<p>``            the provider's latest creation time
``jp:<p>:<id>``       last answered polls of a job: hash caller hash -> value
``providers``         set of providers with jobs
``kv:<name>``         small values and counters (clock, fault ids, boots)
``faults``, ``fired`` rule specs and firing counts (hashes by rule id)
``rl:<key hash>``     token bucket of ``--rate-limit`` (hash tokens/last; expires when idle)
``l:<name>``          bounded lists (journal, deliveries)
===================== ==================================================================================

A connection that fails is :class:`StoreUnavailable` (a provider-shaped 503); redis-py reconnects on the next
command, so the mock serves again as soon as Redis is back.
"""

from __future__ import annotations

from typing import Any

from .backend import PREFIX, Backend, StoreError, StoreUnavailable, StoreURL

#: Seconds to connect, and to wait for one answer, before the store counts as unavailable.
CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0

_CREATE = """
local jk, live, starts, seqk, provs, lastk = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('EXISTS', jk) == 1 then return false end
local seq = redis.call('INCR', seqk) - 1
local t = ARGV[3]
local last = redis.call('GET', lastk)
if last and tonumber(last) > tonumber(t) then t = last end
redis.call('SET', lastk, t)
redis.call('ZREMRANGEBYSCORE', starts, '-inf', t)
local qp = ARGV[5]
if qp == '' then qp = redis.call('ZCARD', starts) else qp = tonumber(qp) end
if ARGV[4] ~= '' then redis.call('ZADD', starts, ARGV[4], ARGV[1]) end
redis.call('SET', jk, ARGV[2] .. t .. ',' .. seq .. ',' .. qp .. ']')
redis.call('ZADD', live, seq, ARGV[1])
redis.call('SADD', provs, ARGV[6])
return {seq, qp, t}
"""

_CAS = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] == '1' then redis.call('ZREM', KEYS[2], ARGV[5]) end
if ARGV[4] == '1' then redis.call('ZREM', KEYS[3], ARGV[5]) end
return 1
"""

_FIRE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local fired = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) >= 0 and fired >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return 1
"""

_TOKEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local cap, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens, last = tonumber(b[1]) or cap, tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - last) * rate)
local wait = ''
if tokens >= 1 then tokens = tokens - 1 else wait = tostring((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 60)
return wait
"""


class RedisBackend(Backend):
    """A Redis database shared by every worker (one connection pool per process; safe across ``fork``).

    Args:
        url: a parsed ``redis://``/``rediss://``/``unix://`` store URL.

    Raises:
        StoreError: Redis cannot be reached or refuses us at start (one line: the URL without its password
            and the reason).
    """

    kind = "redis"

    def __init__(self, url: StoreURL):
        super().__init__(url)
        import redis

        self._errors: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
        try:
            self.r = redis.Redis.from_url(url.url, socket_connect_timeout=CONNECT_TIMEOUT,
                                          socket_timeout=SOCKET_TIMEOUT, decode_responses=True)
            self.r.ping()
        except redis.RedisError as exc:
            raise StoreError(f"--store {url.public}: cannot use Redis: {str(exc).splitlines()[0]}") from None
        except ValueError as exc:
            raise StoreError(f"--store {url.public}: {exc}") from None
        self._create = self.r.register_script(_CREATE)
        self._cas = self.r.register_script(_CAS)
        self._fire = self.r.register_script(_FIRE)
        self._token = self.r.register_script(_TOKEN)

    def _do(self, fn, *args: Any) -> Any:
        """Run one command; a connection failure becomes :class:`StoreUnavailable`."""
        try:
            return fn(*args)
        except self._errors as exc:
            raise StoreUnavailable(f"Redis store {self.public_url}: {str(exc).splitlines()[0]}") from None

    def ping(self) -> None:
        """Check that Redis answers."""
        self._do(self.r.ping)

    def close(self) -> None:
        """Close this process's connections."""
        self.r.close()

    # -- small values -------------------------------------------------------------------------------------
    def get(self, name: str) -> str | None:
        """The value ``name`` or None."""
        return self._do(self.r.get, PREFIX + "kv:" + name)

    def put(self, name: str, value: str) -> None:
        """Set ``name``."""
        self._do(self.r.set, PREFIX + "kv:" + name, value)

    def set_default(self, name: str, value: str) -> str:
        """Set ``name`` unless set; returns its value."""
        key = PREFIX + "kv:" + name
        return self._do(lambda: self.r.set(key, value, nx=True) and value or self.r.get(key))

    def incr(self, name: str) -> int:
        """Counter + 1."""
        return int(self._do(self.r.incr, PREFIX + "kv:" + name))

    def add_float(self, name: str, amount: float) -> float:
        """Atomic add (INCRBYFLOAT)."""
        return float(self._do(self.r.incrbyfloat, PREFIX + "kv:" + name, amount))

    # -- jobs ---------------------------------------------------------------------------------------------
    def job_create(self, provider, id, head, t, start, queue_position):
        """See :meth:`Backend.job_create`."""
        keys = [f"{PREFIX}j:{provider}:{id}", f"{PREFIX}jl:{provider}", f"{PREFIX}js:{provider}",
                f"{PREFIX}jq:{provider}", PREFIX + "providers", f"{PREFIX}jt:{provider}"]
        args = [id, head, repr(t), "" if start is None else repr(start),
                "" if queue_position is None else str(queue_position), provider]
        out = self._do(self._create, keys, args)
        return None if out is None else (int(out[0]), int(out[1]), float(out[2]))

    def job_get(self, provider, id):
        """See :meth:`Backend.job_get`."""
        return self._do(self.r.get, f"{PREFIX}j:{provider}:{id}")

    def job_cas(self, provider, id, old, new, *, unlist=False, unstart=False):
        """See :meth:`Backend.job_cas`."""
        keys = [f"{PREFIX}j:{provider}:{id}", f"{PREFIX}jl:{provider}", f"{PREFIX}js:{provider}"]
        return bool(self._do(self._cas, keys, [old, new, "1" if unlist else "0", "1" if unstart else "0", id]))

    def job_page(self, provider, asc, after_seq, limit):
        """See :meth:`Backend.job_page`."""
        live = f"{PREFIX}jl:{provider}"
        if asc:
            lo = "-inf" if after_seq is None else f"({after_seq}"
            ids = self._do(self.r.zrangebyscore, live, lo, "+inf", 0, limit + 1)
        else:
            hi = "+inf" if after_seq is None else f"({after_seq}"
            ids = self._do(self.r.zrevrangebyscore, live, hi, "-inf", 0, limit + 1)
        more = len(ids) > limit
        ids = ids[:limit]
        if not ids:
            return [], more
        recs = self._do(self.r.mget, [f"{PREFIX}j:{provider}:{i}" for i in ids])
        return [(i, r) for i, r in zip(ids, recs, strict=True) if r is not None], more

    def job_count(self, provider):
        """See :meth:`Backend.job_count`."""
        if provider is not None:
            return int(self._do(self.r.zcard, f"{PREFIX}jl:{provider}"))
        provs = self._do(self.r.smembers, PREFIX + "providers")
        return sum(int(self._do(self.r.zcard, f"{PREFIX}jl:{p}")) for p in provs)

    def jobs_reset(self):
        """See :meth:`Backend.jobs_reset`."""
        def wipe():
            for pattern in ("j:*", "jl:*", "js:*", "jq:*", "jt:*", "jp:*"):
                batch = []
                for key in self.r.scan_iter(PREFIX + pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 1000:
                        self.r.unlink(*batch)
                        batch = []
                if batch:
                    self.r.unlink(*batch)
            self.r.delete(PREFIX + "providers")
        self._do(wipe)

    def poll_get(self, provider, id, who):
        """See :meth:`Backend.poll_get`."""
        return self._do(self.r.hget, f"{PREFIX}jp:{provider}:{id}", who)

    def poll_put(self, provider, id, who, value):
        """See :meth:`Backend.poll_put`."""
        self._do(self.r.hset, f"{PREFIX}jp:{provider}:{id}", who, value)

    # -- faults -------------------------------------------------------------------------------------------
    def faults_load(self):
        """See :meth:`Backend.faults_load`."""
        def load():
            pipe = self.r.pipeline(transaction=False)
            pipe.hgetall(PREFIX + "faults")
            pipe.hgetall(PREFIX + "fired")
            return pipe.execute()
        specs, fired = self._do(load)
        return sorted((int(k), v, int(fired.get(k, 0))) for k, v in specs.items())

    def fault_add(self, spec):
        """See :meth:`Backend.fault_add`."""
        fid = self.incr("fault_ids")
        self._do(self.r.hset, PREFIX + "faults", str(fid), spec)
        return fid

    def fault_remove(self, id):
        """See :meth:`Backend.fault_remove`."""
        gone = self._do(self.r.hdel, PREFIX + "faults", str(id))
        self._do(self.r.hdel, PREFIX + "fired", str(id))
        return bool(gone)

    def faults_clear(self):
        """See :meth:`Backend.faults_clear`."""
        def clear():
            pipe = self.r.pipeline(transaction=True)
            pipe.hlen(PREFIX + "faults")
            pipe.delete(PREFIX + "faults", PREFIX + "fired")
            return pipe.execute()[0]
        return int(self._do(clear))

    def fault_fire(self, id, times):
        """See :meth:`Backend.fault_fire`."""
        return bool(self._do(self._fire, [PREFIX + "faults", PREFIX + "fired"],
                             [str(id), "-1" if times is None else str(int(times))]))

    def take_token(self, key, capacity, per):
        """See :meth:`Backend.take_token` (the time is Redis's own, so hosts with skewed clocks agree)."""
        wait = self._do(self._token, [PREFIX + "rl:" + key], [repr(float(capacity)), repr(capacity / per)])
        return None if not wait else float(wait)

    # -- lists --------------------------------------------------------------------------------------------
    def list_push(self, name, item, keep):
        """See :meth:`Backend.list_push`."""
        def push():
            pipe = self.r.pipeline(transaction=True)
            pipe.rpush(PREFIX + "l:" + name, item)
            pipe.ltrim(PREFIX + "l:" + name, -keep, -1)
            pipe.execute()
        self._do(push)

    def list_push_many(self, name, items, keep):
        """See :meth:`Backend.list_push_many` (one round trip)."""
        def push():
            pipe = self.r.pipeline(transaction=True)
            pipe.rpush(PREFIX + "l:" + name, *items)
            pipe.ltrim(PREFIX + "l:" + name, -keep, -1)
            pipe.execute()
        if items:
            self._do(push)

    def list_read(self, name, limit):
        """See :meth:`Backend.list_read`."""
        if limit <= 0:
            return []
        return self._do(self.r.lrange, PREFIX + "l:" + name, -limit, -1)

    def list_clear(self, name):
        """See :meth:`Backend.list_clear`."""
        self._do(self.r.delete, PREFIX + "l:" + name)

    def bytes_used(self) -> int | None:
        """Redis ``used_memory`` in bytes."""
        return int(self._do(self.r.info, "memory")["used_memory"])


__all__ = ["RedisBackend"]
