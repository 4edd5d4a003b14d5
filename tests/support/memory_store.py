"""An in-memory `proxy.store.Store` for unit tests of the service: Redis semantics, a clock you can drive.

It keeps the same keys RedisStore writes (entry, lock, outcome, the URI's variant index) with millisecond TTLs
measured on `clock`, so a test that advances a fake clock sees a lock or an entry expire without sleeping.
tests/contract/test_store_contract.py runs it through the same contract as RedisStore on fakeredis and on a real
redis-server: what the unit tests learn from it holds for Redis too.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from proxy.keys import KEY_PREFIX, CacheKey, canonical_target, index_key, index_pattern, split_target, uri_digest
from proxy.ports import Poll, StoreUnavailable


@dataclass
class _Value:
    data: bytes | set[str]
    expires: float | None  # on the store's clock; None: no TTL


@dataclass
class Calls:
    """How often each Store operation was called (also while the store was down)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class MemoryStore:
    """The Store Protocol over a dict. `down = True` makes every operation raise StoreUnavailable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, _Value] = {}
        self._lock = threading.Lock()
        self.down = False
        self.calls = Calls()

    # -- the Store interface ---------------------------------------------------------------------------
    def get(self, key: CacheKey) -> bytes | None:
        with self._op("get"):
            return self._bytes(key.entry)

    def put(self, key: CacheKey, value: bytes, ttl_seconds: float) -> None:
        with self._op("put"):
            ttl = _ttl(ttl_seconds)
            self._set(key.entry, value, ttl)
            index = self._live(key.variant_index)
            variants = index.data if index is not None and isinstance(index.data, set) else set()
            variants.add(key.variant)
            expires = self._clock() + ttl
            if index is None or index.expires is None or index.expires < expires:  # PTTL < ttl: PEXPIRE
                self._data[key.variant_index] = _Value(variants, expires)
            else:
                index.data = variants

    def try_lock(self, key: CacheKey, token: str, ttl_seconds: float) -> bool:
        with self._op("try_lock"):
            if self._live(key.lock) is not None:
                return False
            self._set(key.lock, token.encode(), _ttl(ttl_seconds))
            return True

    def unlock(self, key: CacheKey, token: str) -> None:
        with self._op("unlock"):
            if self._bytes(key.lock) == token.encode():
                del self._data[key.lock]

    def poll(self, key: CacheKey) -> Poll:
        with self._op("poll"):
            lock = self._bytes(key.lock)
            return Poll(self._bytes(key.entry), None if lock is None else lock.decode(), self._bytes(key.outcome))

    def set_outcome(self, key: CacheKey, value: bytes, ttl_seconds: float) -> None:
        with self._op("set_outcome"):
            self._set(key.outcome, value, _ttl(ttl_seconds))

    def delete_uri(self, uri: str, path: str) -> int:
        with self._op("delete_uri"):
            return self._delete_uri(uri, path)

    def purge(self, target: str, *, prefix: bool = False) -> int:
        """What RedisStore.purge does: an exact URI (`/p?q=1`), a path with every query, or a path prefix."""
        with self._op("purge"):
            if prefix:
                return self._purge_matching(index_pattern(target, prefix=True))
            path, query = split_target(target)
            if "?" in target:
                return self._delete_uri(uri_digest(canonical_target(path, query)), path)
            return self._purge_matching(index_pattern(path, prefix=False))

    # -- for tests -------------------------------------------------------------------------------------
    def pttl(self, name: str) -> int:
        """Redis PTTL of a raw key name: milliseconds left, -1 without a TTL, -2 when missing."""
        with self._lock:
            value = self._live(name)
            if value is None:
                return -2
            if value.expires is None:
                return -1
            return max(0, round((value.expires - self._clock()) * 1000))

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(name for name in list(self._data) if self._live(name) is not None)

    # -- internals -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _op(self, name: str) -> Iterator[None]:
        self.calls.add(name)
        if self.down:
            raise StoreUnavailable(f"memory store is down ({name})")
        with self._lock:
            yield

    def _live(self, name: str) -> _Value | None:
        value = self._data.get(name)
        if value is not None and value.expires is not None and value.expires <= self._clock():
            del self._data[name]
            return None
        return value

    def _bytes(self, name: str) -> bytes | None:
        value = self._live(name)
        return value.data if value is not None and isinstance(value.data, bytes) else None

    def _set(self, name: str, data: bytes, ttl: float) -> None:
        self._data[name] = _Value(data, self._clock() + ttl)

    def _delete_uri(self, uri: str, path: str) -> int:
        index = index_key(uri, path)
        found = self._live(index)
        variants = found.data if found is not None and isinstance(found.data, set) else set()
        deleted = 0
        for variant in variants:
            if self._data.pop(f"{KEY_PREFIX}{{{uri}}}:e:{variant}", None) is not None:
                deleted += 1
        self._data.pop(index, None)
        return deleted

    def _purge_matching(self, pattern: str) -> int:
        matcher = _glob(pattern)
        indexes = [name for name in list(self._data) if matcher.fullmatch(name) and self._live(name) is not None]
        deleted = 0
        for index in indexes:
            uri = index[index.index("{") + 1 : index.index("}")]
            path = index[index.index("}:i:") + 4 :]
            deleted += self._delete_uri(uri, path)
        return deleted


def _ttl(seconds: float) -> float:
    """Redis keeps whole milliseconds, at least one (RedisStore rounds the same way)."""
    return max(1, int(seconds * 1000)) / 1000


def _glob(pattern: str) -> re.Pattern[str]:
    """A MATCH pattern of proxy.keys.index_pattern as a regex: `*`, `?` and backslash escapes (the only glob
    syntax it produces; it escapes `[` and `]`)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c in "*?":
            out.append(".*" if c == "*" else ".")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)
