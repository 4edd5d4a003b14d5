"""The two small interfaces the service needs, and their failures. The adapters implement them: `proxy.store`
(Redis, with redis-py) and `proxy.upstream` (HTTP, with urllib3); tests use in-memory doubles.

Nothing here imports a client library, so the core and the service load without them.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from proxy.http import Headers, Response
from proxy.keys import CacheKey


class StoreUnavailable(Exception):
    """The store failed, timed out, or its circuit breaker is open: answer without the cache (BYPASS)."""


class Poll(NamedTuple):
    """One read of a key's coalescing state (see proxy.coalescing): the entry, the lock holder's token, and the
    outcome a holder that stored nothing left for its waiters."""

    entry: bytes | None
    lock: str | None
    outcome: bytes | None


class Store(Protocol):
    """Entries, locks and outcome markers of cache keys; every call raises StoreUnavailable quickly or succeeds."""

    def get(self, key: CacheKey) -> bytes | None: ...
    def put(self, key: CacheKey, value: bytes, ttl_seconds: float) -> None: ...
    def try_lock(self, key: CacheKey, token: str, ttl_seconds: float) -> bool: ...
    def unlock(self, key: CacheKey, token: str) -> None: ...
    def poll(self, key: CacheKey) -> Poll: ...
    def set_outcome(self, key: CacheKey, value: bytes, ttl_seconds: float) -> None: ...
    def delete_uri(self, uri: str, path: str) -> int: ...
    def purge(self, target: str, *, prefix: bool = False) -> int: ...


class UpstreamError(Exception):
    """The upstream gave no usable answer. `kind` is "timeout", "connect", "protocol" or "too-large"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Upstream(Protocol):
    def send(self, method: str, target: str, headers: Headers, body: bytes, timeout: float) -> Response:
        """The whole exchange within `timeout` seconds, or UpstreamError."""
        ...
