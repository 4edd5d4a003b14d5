"""The Redis adapter behind the small `Store` interface, with a circuit breaker.

Every operation either succeeds or raises `StoreUnavailable` quickly: the caller then answers without the cache
(X-Cache: BYPASS). While the breaker is open no Redis call is attempted at all, so a dead or slow Redis costs
nothing per request; after a cool-down one probe call is let through and closes the breaker when it succeeds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

import redis
from redis._parsers import Encoder
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from proxy.config import Settings
from proxy.keys import (
    KEY_PREFIX,
    CacheKey,
    canonical_target,
    index_key,
    index_pattern,
    split_target,
    uri_digest,
)
from proxy.ports import Poll, StoreUnavailable

T = TypeVar("T")

# SET the entry, add its variant to the URI's index and make sure the index lives at least as long.
_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
"""
# Release a lock only if we still hold it (a slow holder must not release someone else's lock).
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisProblem(NamedTuple):
    """Why Redis did not answer, for the init log. kind: auth | database | refused | unreachable.

    redis-py's messages carry no credentials (the server answers WRONGPASS, not the password)."""

    kind: str
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> RedisProblem:
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, redis.AuthenticationError):
            return cls("auth", f"authentication failed ({text}): check the user:password of REDIS_URL, or the token "
                       "in REDIS_AUTH_SECRET_ARN")  # fmt: skip
        if isinstance(exc, redis.ResponseError) and "DB index is out of range" in str(exc):
            return cls("database", f"the database of REDIS_URL does not exist on this server ({text}): the /N at "
                       "the end of REDIS_URL must be below the server's `databases` setting (16 by default)")  # fmt: skip
        if isinstance(exc, redis.ResponseError):
            return cls("refused", f"refused the connection's setup ({text})")
        return cls("unreachable", f"unreachable ({text})")


class CircuitBreaker:
    """Closed → open after `threshold` consecutive failures; open → half-open after a cool-down that doubles
    (up to `max_cooldown`) each time the probe fails; one success closes it."""

    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 1.0,
        max_cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._cooldown = cooldown
        self._open_until: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._open_until is None:
                return "closed"
            return "half-open" if self._clock() >= self._open_until else "open"

    def allow(self) -> bool:
        open_until = self._open_until
        if open_until is None:  # closed: no lock needed to let a call through (the hot path)
            return True
        with self._lock:
            if self._open_until is None:
                return True
            if self._clock() < self._open_until or self._probing:
                return False
            self._probing = True  # exactly one probe while half-open
            return True

    def success(self) -> None:
        if self._open_until is None and not self._failures and not self._probing:
            return  # nothing to reset (the hot path)
        with self._lock:
            self._failures = 0
            self._open_until = None
            self._probing = False
            self._cooldown = self.base_cooldown

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing:
                self._cooldown = min(self._cooldown * 2, self.max_cooldown)
            if self._probing or self._failures >= self.threshold:
                self._open_until = self._clock() + self._cooldown
            self._probing = False


class LazyCluster:
    """A RedisCluster client made on first use. Its constructor connects (to read the slot map): made at init, a
    cluster that is unreachable during a cold start would fail the function instead of answering BYPASS."""

    def __init__(self, make: Callable[[], RedisCluster]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.client: RedisCluster | None = None

    def get_encoder(self) -> Encoder:
        return Encoder("utf-8", "strict", False)  # type: ignore[no-untyped-call]  # what Script hashes with

    def register_script(self, script: str) -> Script:
        return Script(self, script)  # type: ignore[arg-type]

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def __getattr__(self, name: str) -> Any:
        client = self.client
        if client is None:
            with self._lock:
                if self.client is None:
                    self.client = self._make()
                client = self.client
        return getattr(client, name)


class RedisStore:
    """The `proxy.ports.Store` on redis-py: a standalone/replication-group client or a cluster client, created once.

    With a cluster every shard has its own breaker, so one shard down sends only its own keys past the cache."""

    def __init__(self, client: Any, breaker: CircuitBreaker | None = None) -> None:
        self.client = client
        self.breaker = breaker or CircuitBreaker()
        self._put = client.register_script(_PUT)
        self._unlock = client.register_script(_UNLOCK)
        self._cluster = isinstance(client, (RedisCluster, LazyCluster))
        self._shard_breakers: dict[str, CircuitBreaker] = {}
        self._shard_lock = threading.Lock()
        # The hot path (a hit's GET) runs on a connection of its own per thread, outside the pool: no checkout and
        # release per request, no command-dispatch layers. Lambda runs one request at a time per environment.
        self._hot = threading.local()
        self._hot_connections: list[Any] = []

    @classmethod
    def from_settings(cls, settings: Settings, password: str | None = None) -> RedisStore:
        return cls(make_client(settings, password))

    def ping(self) -> bool:
        """Open the connection early (Lambda's init phase is not billed the same way); False when down."""
        return self.diagnose() is None

    def diagnose(self) -> RedisProblem | None:
        """Ping Redis now; None when it answers, else what is wrong (a wrong password is not an outage)."""
        try:
            if self._cluster:
                self._call(lambda: bool(self.client.ping()))  # (the lazy cluster client is made inside _call)
            else:
                self._hot_call(
                    b"*1\r\n$4\r\nPING\r\n"
                )  # on the hot path's own connection: the first request finds it open
        except StoreUnavailable as exc:
            return RedisProblem.of(exc.__cause__ or exc)
        return None

    def close(self) -> None:
        """Close every connection (the pool's and the hot path's)."""
        for connection in self._hot_connections:
            connection.disconnect()
        self.client.close()

    # -- the Store interface ---------------------------------------------------------------------------
    def get(self, key: CacheKey) -> bytes | None:
        if self._cluster:
            value: bytes | None = self._call(lambda: self.client.get(key.entry), key.entry)
            return value
        entry = key.entry.encode()
        return self._hot_call(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(entry), entry))  # type: ignore[no-any-return]

    def put(self, key: CacheKey, value: bytes, ttl_seconds: float) -> None:
        ttl_ms = max(1, int(ttl_seconds * 1000))
        self._call(lambda: self._put(keys=[key.entry, key.variant_index], args=[value, ttl_ms, key.variant]), key.entry)

    def try_lock(self, key: CacheKey, token: str, ttl_seconds: float) -> bool:
        ttl_ms = max(1, int(ttl_seconds * 1000))
        return bool(self._call(lambda: self.client.set(key.lock, token, nx=True, px=ttl_ms), key.lock))

    def unlock(self, key: CacheKey, token: str) -> None:
        self._call(lambda: self._unlock(keys=[key.lock], args=[token]), key.lock)

    def poll(self, key: CacheKey) -> Poll:
        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(key.entry)
            pipe.get(key.lock)
            pipe.get(key.outcome)
            return list(pipe.execute())

        entry, lock, outcome = self._call(run, key.entry)
        return Poll(entry, lock.decode() if isinstance(lock, bytes) else lock, outcome)

    def set_outcome(self, key: CacheKey, value: bytes, ttl_seconds: float) -> None:
        self._call(lambda: self.client.set(key.outcome, value, px=max(1, int(ttl_seconds * 1000))), key.outcome)

    def delete_uri(self, uri: str, path: str) -> int:
        """Delete every variant of one URI (RFC 9111 §4.4 invalidation, exact purges)."""
        index = index_key(uri, path)

        def run() -> int:
            variants = [v.decode() if isinstance(v, bytes) else str(v) for v in self.client.smembers(index)]
            keys = [f"{KEY_PREFIX}{{{uri}}}:e:{v}" for v in variants]
            deleted = int(self.client.delete(*keys)) if keys else 0
            self.client.delete(index)
            return deleted

        return self._call(run, index)

    def purge(self, target: str, *, prefix: bool = False) -> int:
        """Delete cached entries. `/p?q=1`: that exact URI; `/p`: the path with every query; prefix=True:
        every path starting with `target`. Returns the number of entries deleted."""
        if prefix:
            return self._purge_matching(index_pattern(target, prefix=True))
        path, query = split_target(target)
        if "?" in target:
            return self.delete_uri(uri_digest(canonical_target(path, query)), path)
        return self._purge_matching(index_pattern(path, prefix=False))

    # -- internals -----------------------------------------------------------------------------------
    def _purge_matching(self, pattern: str) -> int:
        def scan() -> list[str]:
            return [
                k.decode() if isinstance(k, bytes) else str(k) for k in self.client.scan_iter(match=pattern, count=1000)
            ]

        deleted = 0
        for index in _unique(self._call(scan)):
            uri = index[index.index("{") + 1 : index.index("}")]
            path = index[index.index("}:i:") + 4 :]
            deleted += self.delete_uri(uri, path)
        return deleted

    def _call(self, operation: Callable[[], T], key: str | None = None) -> T:
        """Run `operation` (on `key`'s shard, when given) behind that shard's breaker."""
        breaker = self._breaker(key) if self._cluster and key is not None else self.breaker
        if not breaker.allow():
            raise StoreUnavailable("redis circuit breaker is open")
        try:
            result = operation()
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            breaker.failure()
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
        breaker.success()
        return result

    def _hot_call(self, command: bytes) -> Any:
        """One command (packed: RESP) on this thread's own connection, behind the breaker (standalone Redis only)."""
        breaker = self.breaker
        if not breaker.allow():
            raise StoreUnavailable("redis circuit breaker is open")
        connection = getattr(self._hot, "connection", None)
        if connection is None:
            connection = self._hot.connection = self.client.connection_pool.make_connection()
            self._hot_connections.append(connection)
        try:
            connection.send_packed_command((command,), check_health=False)
            result = connection.read_response()
        except (redis.RedisError, OSError) as exc:
            connection.disconnect()
            breaker.failure()
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
        breaker.success()
        return result

    def _breaker(self, key: str) -> CircuitBreaker:
        """The breaker of the cluster shard that holds `key`; the store's own one until the slot map is known."""
        client = self.client.client if isinstance(self.client, LazyCluster) else self.client
        if client is None:
            return self.breaker
        try:
            shard = str(client.get_node_from_key(key).name)
        except (redis.RedisError, RedisClusterException):
            return self.breaker
        with self._shard_lock:
            breaker = self._shard_breakers.get(shard)
            if breaker is None:
                base = self.breaker
                breaker = CircuitBreaker(base.threshold, base.base_cooldown, base.max_cooldown, base._clock)
                self._shard_breakers[shard] = breaker
            return breaker


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def make_client(settings: Settings, password: str | None = None) -> Any:
    """One client per execution environment: short timeouts, no retries (the breaker handles failure)."""
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_socket_timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    if password is not None:
        options["password"] = password
    if settings.redis_cluster:
        return LazyCluster(lambda: RedisCluster.from_url(settings.redis_url, **options))
    return redis.Redis.from_url(settings.redis_url, **options)
