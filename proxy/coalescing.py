"""The coalescing protocol: one upstream fetch per cache key at a time, across every execution environment.

All of it lives in the store, under the key's names (proxy.keys.CacheKey: `entry`, `lock`, `outcome`, one Redis
Cluster hash slot):

- **lock**: the invocation that needs to fetch takes `lock` (SET NX PX, a random token, a TTL a little longer than
  the upstream timeout) and releases it only if it still holds it (compare-and-delete). A holder that dies blocks
  nobody for longer than the TTL.
- **waiters**: an invocation that finds the lock taken polls `entry`, `lock` and `outcome` in one round trip, with a
  growing interval, until a newer entry appears (it is answered from it, "collapsed"), the holder leaves an outcome,
  the lock is free (it takes the lock and fetches itself), or its own time is up.
- **outcome**: a holder that stored nothing leaves a short-lived marker: "error" (the upstream failed: waiters answer
  at once with a stale copy or the same error instead of queueing behind an upstream that is down, and the next
  refresh of a stale key waits OUTCOME_TTL_SECONDS) or "pass" (the response may not be stored: everyone fetches for
  themselves).

This module holds the mechanics; what to answer in each case is the service's business.
"""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple

from proxy.entry import Entry, decode_entry
from proxy.keys import CacheKey
from proxy.ports import Poll, Store, StoreUnavailable

LOCK_MARGIN_SECONDS = 1.0  # the lock outlives the upstream timeout by this much
OUTCOME_TTL_SECONDS = 2.0  # how long a failed fetch's outcome is visible to the invocations waiting for it
POLL_FIRST_SECONDS = 0.01
POLL_MAX_SECONDS = 0.1
MAX_POLLS = 2000
_NOTHING = Poll(None, None, None)


class OutcomeKind(StrEnum):
    ERROR = "error"  # the upstream failed (5xx, timeout, connection): `status` is what the holder answered
    PASS = "pass"  # noqa: S105 - not a password; the response may not be stored


class FetchOutcome(NamedTuple):
    """What a lock holder that stored nothing leaves for its waiters."""

    kind: OutcomeKind
    status: int
    at: float  # wall-clock time it was left

    def encode(self) -> bytes:
        return json.dumps({"kind": self.kind.value, "status": self.status, "at": self.at}).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> FetchOutcome | None:
        if raw is None:
            return None
        try:
            value = json.loads(raw)
            return cls(OutcomeKind(value["kind"]), int(value["status"]), float(value["at"]))
        except (ValueError, KeyError, TypeError):
            return None


class WaitEnd(StrEnum):
    STORED = "stored"  # a newer entry appeared: `entry`
    FAILED = "failed"  # the holder's fetch failed: `status`
    UNCACHEABLE = "uncacheable"  # the holder's response may not be stored: fetch without the lock
    LOCKED = "locked"  # the lock was free and is now ours: `token`
    TIMEOUT = "timeout"  # no answer in time
    UNAVAILABLE = "unavailable"  # the store failed


class Waited(NamedTuple):
    end: WaitEnd
    entry: Entry | None = None
    status: int = 0
    token: str = ""


class Coalescing:
    """The protocol on one Store, with the service's clocks (injected, so tests need no real time)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.store = store
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep

    def try_lock(self, key: CacheKey, ttl: float) -> str | None:
        """The token of the lock just taken, or None when another invocation holds it; raises StoreUnavailable."""
        token = uuid.uuid4().hex
        return token if self.store.try_lock(key, token, ttl) else None

    def unlock(self, key: CacheKey, token: str) -> None:
        with contextlib.suppress(StoreUnavailable):  # else the lock expires by itself
            self.store.unlock(key, token)

    def peek(self, key: CacheKey) -> Poll:
        """The key's state in one read; nothing when the store fails (the caller then just fetches)."""
        try:
            return self.store.poll(key)
        except StoreUnavailable:
            return _NOTHING

    def failed_recently(self, poll: Poll) -> bool:
        """Whether a fetch of this key failed less than OUTCOME_TTL_SECONDS ago."""
        outcome = FetchOutcome.decode(poll.outcome)
        return (
            outcome is not None
            and outcome.kind is OutcomeKind.ERROR
            and outcome.at >= self._clock() - OUTCOME_TTL_SECONDS
        )

    def leave(self, key: CacheKey, kind: OutcomeKind, status: int) -> None:
        """The outcome of a fetch that stored nothing, for the waiters."""
        with contextlib.suppress(StoreUnavailable):
            self.store.set_outcome(key, FetchOutcome(kind, status, self._clock()).encode(), OUTCOME_TTL_SECONDS)

    def wait(self, key: CacheKey, *, newer_than: float | None, until: float, lock_ttl: float) -> Waited:
        """Wait for the lock holder's result, until the monotonic time `until`. `newer_than` is the response time of
        the entry the caller already has (None: it has none)."""
        started = self._clock()
        previous = -math.inf if newer_than is None else newer_than
        interval = POLL_FIRST_SECONDS
        for _ in range(MAX_POLLS):
            if self._monotonic() >= until:
                break
            self._sleep(interval)
            interval = min(interval * 1.5, POLL_MAX_SECONDS)
            try:
                polled = self.store.poll(key)
            except StoreUnavailable:
                return Waited(WaitEnd.UNAVAILABLE)
            entry = decode_entry(polled.entry)
            if entry is not None and entry.response_time > previous:
                return Waited(WaitEnd.STORED, entry=entry)
            outcome = FetchOutcome.decode(polled.outcome)
            if outcome is not None and outcome.at >= started - OUTCOME_TTL_SECONDS / 2:
                if outcome.kind is OutcomeKind.PASS:
                    return Waited(WaitEnd.UNCACHEABLE)
                return Waited(WaitEnd.FAILED, status=outcome.status)
            if polled.lock is None:
                try:
                    token = self.try_lock(key, lock_ttl)
                except StoreUnavailable:
                    return Waited(WaitEnd.UNAVAILABLE)
                if token is not None:
                    return Waited(WaitEnd.LOCKED, token=token)
        try:  # the wait ends when the holder's lock would expire: one last try to take it over
            token = self.try_lock(key, lock_ttl)
        except StoreUnavailable:
            return Waited(WaitEnd.UNAVAILABLE)
        return Waited(WaitEnd.LOCKED, token=token) if token is not None else Waited(WaitEnd.TIMEOUT)
