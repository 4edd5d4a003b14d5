"""The simulation core: the proxy's caching decisions over a recorded trace, for several TTLs in one pass.

Pure: `Event`s in (arrival time, cache key, what the upstream answered then, how long it took), counters out.
No I/O, no clock; the same trace always gives the same figures.

What is the proxy's and what is modelled
----------------------------------------
* Freshness, stale windows, storability and Redis retention are the proxy's own functions, called as they are:
  `proxy.policy.plan_store` builds the entry a fetch would store (under `proxy.config.Policy` with the TTL under
  test as `default_ttl`, the `--swr` / `--stale-if-error` windows and `negative_ttl`), `policy.is_fresh` and
  `policy.lookup` decide hit, stale-while-revalidate or fetch, `policy.may_serve_stale_on_error` decides what an
  upstream failure answers, and `plan.redis_ttl` says when Redis drops the entry. For speed the age at which each
  of those answers changes is found once per kind of entry, by bisecting on the policy's own functions
  (`_first_false`); `reference=True` asks them on every request instead, and the tests check both agree.
* The origin is modelled as sending no Cache-Control (freshness = the TTL under test, 404/410 = the negative TTL)
  and an ETag (as the stub does; it only lengthens how long Redis keeps an expired entry). Entries are time
  invariant: the proxy ages an entry from the moment its fetch was sent (RFC 9111 corrected initial age =
  response delay), so an entry built at time 0 and asked about at `now - fetch start` answers exactly as the real
  entry would at `now`.
* The upstream answers a fetch made for request R with R's recorded status (`origin_status`), after R's recorded
  latency (or `SimConfig.latency`); a latency at or above the upstream timeout is a timeout (a failure).
* Coalescing follows proxy/service.py, with Redis operations taking no time:
  - one fetch per key at a time (the lock); the holder's answer comes from its own fetch;
  - a request arriving while the key's fetch is in flight ("during a refresh") is answered STALE at once when
    its stored entry is within stale-while-revalidate, else it waits: it gets the new entry (a collapsed HIT),
    or, when the fetch failed, the stale entry within stale-if-error or the error (a collapsed failure), or,
    when the answer may not be stored, fetches for itself (no lock, nothing stored);
  - a failed fetch leaves an "error" outcome marker for OUTCOME_TTL_SECONDS: while it is visible the next
    request of the key serves its stale entry (within stale-if-error) without asking the upstream again, and
    waiters that arrive up to OUTCOME_TTL_SECONDS / 2 after it take it as their answer at once;
  - a response that may not be stored leaves a "pass" marker the same way: waiters then fetch for themselves.
* Not modelled: Redis being unavailable (BYPASS), the Lambda deadline, request Cache-Control (logs do not
  carry it), and methods other than GET/HEAD (the trace layer leaves them out and counts them).

A request is a *hit* when it is answered from a fresh entry without an upstream request (collapsed ones
included). The proxy's X-Cache also says HIT after a 304 revalidation; here that is a fetch, because the question
is how many requests reach the upstream.

One module on purpose (over 400 lines): `TtlSimulator` is one state machine that mirrors proxy/service.py and
proxy/coalescing.py step by step, and its value types are only its inputs and outputs; split, the model would be
read in pieces that only make sense together.
"""

from __future__ import annotations

import heapq
import math
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from proxy import policy
from proxy.coalescing import OUTCOME_TTL_SECONDS, POLL_FIRST_SECONDS
from proxy.config import Policy
from proxy.entry import Entry
from proxy.http import Headers

ORIGIN_HEADERS = Headers([("etag", '"whatif"')])  # the modelled origin: a validator, no Cache-Control
_NO_HEADERS = Headers()
_GET = "GET"
_TIMEOUT_STATUS = 504  # what the proxy answers for an upstream timeout (service._failure_of)
MINUTE_SECONDS = 60.0
DEFAULT_LATENCY_SECONDS = 0.1


def origin_status(recorded: int | None) -> int:
    """What the upstream answered a request whose log line says `recorded`.

    A log written without a cache in front shows the upstream's own answers. 304 is the client's conditional
    request (the proxy never forwards the client's validators: the upstream answers 200); a missing, zero or 1xx
    status is taken as 200.
    """
    if recorded is None or recorded < 200 or recorded == 304:
        return 200
    return recorded


def is_failure(status: int) -> bool:
    """An upstream answer the proxy treats as a failure (RFC 5861 §4: a 5xx; service._failure_of)."""
    return status >= 500


@dataclass(frozen=True)
class SimConfig:
    """The proxy settings under test (CACHE_* environment variables) and the trace's defaults."""

    ttls: tuple[float, ...]
    stale_while_revalidate: float = 30.0  # CACHE_STALE_WHILE_REVALIDATE_SECONDS
    stale_if_error: float = 86400.0  # CACHE_STALE_IF_ERROR_SECONDS
    negative_ttl: float = 10.0  # CACHE_NEGATIVE_TTL_SECONDS
    upstream_timeout: float = 5.0  # UPSTREAM_TIMEOUT_SECONDS
    latency: float = DEFAULT_LATENCY_SECONDS  # upstream latency of a fetch whose request recorded none
    key_headers: tuple[str, ...] = ()  # CACHE_KEY_HEADERS

    def __post_init__(self) -> None:
        if not self.ttls:
            raise ValueError("give at least one TTL")
        for name in ("stale_while_revalidate", "stale_if_error", "negative_ttl", "latency"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0 (got {value})")
        for ttl in self.ttls:
            if not math.isfinite(ttl) or ttl < 0:
                raise ValueError(f"a TTL must be a finite number of seconds >= 0 (got {ttl})")
        if not math.isfinite(self.upstream_timeout) or self.upstream_timeout <= 0:
            raise ValueError(f"upstream_timeout must be positive (got {self.upstream_timeout})")

    def policy(self, ttl: float) -> Policy:
        return Policy(
            default_ttl=ttl,
            stale_while_revalidate=self.stale_while_revalidate,
            stale_if_error=self.stale_if_error,
            negative_ttl=self.negative_ttl,
            key_headers=self.key_headers,
        )


class Event:
    """One request of the trace, as the simulator sees it."""

    __slots__ = ("key", "latency", "status", "time")

    def __init__(self, time: float, key: str, status: int = 200, latency: float | None = None) -> None:
        self.time = time  # arrival, seconds (epoch or any origin)
        self.key = key  # the proxy's cache key (any string that is equal exactly when the keys are)
        self.status = status  # what the upstream answers a fetch made for this request (origin_status)
        self.latency = latency  # seconds the upstream takes to answer it; None: SimConfig.latency

    def __repr__(self) -> str:
        return f"Event({self.time!r}, {self.key!r}, {self.status!r}, {self.latency!r})"


@dataclass(frozen=True)
class Minute:
    """One minute of the trace under one TTL."""

    start: float  # seconds, a multiple of 60 on the trace's clock
    requests: int
    upstream_requests: int

    @property
    def saved_share(self) -> float:
        return 1.0 - self.upstream_requests / self.requests if self.requests else 0.0


@dataclass(slots=True)
class TtlResult:
    """What the proxy would have done with the trace under one TTL."""

    ttl: float
    requests: int = 0
    upstream_requests: int = 0
    hits: int = 0  # answered from a fresh entry without an upstream request (collapsed included)
    collapsed: int = 0  # of the hits: waited for another request's fetch
    misses: int = 0  # answered by their own upstream request (a 304 revalidation included)
    stale: int = 0  # answered STALE (both windows)
    stale_while_revalidate: int = 0
    stale_if_error: int = 0
    errors: int = 0  # answered with the upstream's failure: nothing stale to fall back on
    during_refresh: int = 0  # arrived while their key's fetch was in flight (timing-sensitive)
    peak_entries: int = 0  # most entries Redis held at once
    worst_minute: Minute | None = None  # the minute with the most upstream requests

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    @property
    def saved(self) -> int:
        return self.requests - self.upstream_requests

    @property
    def saved_share(self) -> float:
        return self.saved / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class _Fetch:
    """What a fetch answered with status S yields under one policy."""

    failure: bool
    entry: Entry | None  # stored entry, fetched at time 0 (None: not stored)
    redis_ttl: float
    # The policy's answers as ages: fresh below fresh_until, served STALE while revalidating below swr_until,
    # served STALE on an upstream failure below sie_until (found by asking the policy, see _first_false).
    fresh_until: float = 0.0
    swr_until: float = 0.0
    sie_until: float = 0.0


_FAR_AGE = 1e15  # seconds: "never" for an entry's age (30 million years)
_DOUBLE = struct.Struct("<d")
_INT64 = struct.Struct("<q")


def _first_false(holds: Callable[[float], bool]) -> float:
    """The smallest age >= 0 at which `holds` turns false, to the exact float (inf: never within _FAR_AGE).

    `holds` is one of the policy's predicates on an entry's age (fresh, may serve stale), true while the entry
    is young enough and false from some age on. Non-negative doubles order like their bit patterns, so a
    bisection over the bit patterns finds the boundary exactly in at most 64 calls.
    """
    if not holds(0.0):
        return 0.0
    if holds(_FAR_AGE):
        return math.inf
    lo = 0
    hi = _INT64.unpack(_DOUBLE.pack(_FAR_AGE))[0]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if holds(_DOUBLE.unpack(_INT64.pack(mid))[0]):
            lo = mid
        else:
            hi = mid
    age: float = _DOUBLE.unpack(_INT64.pack(hi))[0]
    return age


@dataclass(slots=True)
class _Key:
    """One key's state: stored entry, outcome marker, running fetch. Dropped once nothing of it is alive."""

    stored: _Fetch | None = None  # what the stored entry's fetch yielded (None: nothing stored)
    t0: float = 0.0  # when the stored entry's fetch was sent
    evict_at: float = math.inf  # when Redis drops the entry
    marker: str | None = None  # "error" or "pass"
    marker_at: float = -math.inf
    fetch: _Fetch | None = None  # the fetch in flight (the lock is held)
    fetch_start: float = 0.0
    fetch_end: float = math.inf
    waiters: list[tuple[int, _Fetch | None, float]] = field(default_factory=list)  # (status, stored, its t0)
    due: float = math.inf  # earliest pending clean-up time in the heap


class TtlSimulator:
    """The proxy under one TTL. Feed events in time order with `handle`, then call `finish`.

    `reference=True` asks the policy functions on every request instead of comparing ages with the boundaries
    found once per kind of entry (slower; the tests check that both give the same figures).
    """

    def __init__(self, ttl: float, config: SimConfig, *, reference: bool = False) -> None:
        self.config = config
        self.reference = reference
        self.policy = config.policy(ttl)
        self.result = TtlResult(ttl=ttl)
        self._fetches: dict[int, _Fetch] = {}
        self._keys: dict[str, _Key] = {}
        self._heap: list[tuple[float, str]] = []
        self._live = 0
        self._minutes: dict[int, list[int]] = {}
        self._minute_index = -(2**62)
        self._minute: list[int] = [0, 0]
        self._finished = False

    # -- the proxy's rules, through its policy ---------------------------------------------------------------
    def _fetch_of(self, status: int) -> _Fetch:
        found = self._fetches.get(status)
        if found is None:
            if is_failure(status):
                found = _Fetch(True, None, 0.0)
            else:
                plan = policy.plan_store(
                    request_headers=_NO_HEADERS,
                    status=status,
                    response_headers=ORIGIN_HEADERS,
                    body=b"",
                    request_time=0.0,
                    response_time=0.0,
                    policy=self.policy,
                )
                entry = plan.entry if plan.store else None
                found = _Fetch(False, entry, plan.redis_ttl)
                if entry is not None:
                    stored = entry

                    def fresh(age: float) -> bool:
                        return policy.is_fresh(stored, age)

                    def revalidating(age: float) -> bool:
                        return fresh(age) or policy.lookup(_GET, _NO_HEADERS, stored, age).stale_while_revalidate

                    def on_error(age: float) -> bool:
                        return policy.may_serve_stale_on_error(stored, age)

                    found = _Fetch(
                        False,
                        entry,
                        plan.redis_ttl,
                        fresh_until=_first_false(fresh),
                        swr_until=_first_false(revalidating),
                        sie_until=_first_false(on_error),
                    )
            self._fetches[status] = found
        return found

    def _fresh(self, stored: _Fetch, age: float) -> bool:
        if self.reference:
            assert stored.entry is not None
            return policy.is_fresh(stored.entry, age)
        return age < stored.fresh_until

    def _revalidating(self, stored: _Fetch, age: float) -> bool:
        """Not fresh, and within stale-while-revalidate (policy.lookup's decision)."""
        if self.reference:
            assert stored.entry is not None
            return policy.lookup(_GET, _NO_HEADERS, stored.entry, age).stale_while_revalidate
        return age < stored.swr_until

    def _on_error(self, stored: _Fetch | None, age: float) -> bool:
        """An upstream failure may be answered with this entry (policy.may_serve_stale_on_error)."""
        if stored is None or stored.entry is None:
            return False
        if self.reference:
            return policy.may_serve_stale_on_error(stored.entry, age)
        return age < stored.sie_until

    @staticmethod
    def _marker_visible(state: _Key, now: float) -> bool:
        return now < state.marker_at + OUTCOME_TTL_SECONDS

    # -- events ------------------------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        now = event.time
        heap = self._heap
        if heap and heap[0][0] <= now:
            self._expire(now)
        index = int(now // MINUTE_SECONDS)
        if index != self._minute_index:
            self._minute_index = index
            self._minute = self._minutes.setdefault(index, [0, 0])
        minute = self._minute
        minute[0] += 1
        result = self.result
        result.requests += 1
        state = self._keys.get(event.key)
        if state is None:
            state = self._keys[event.key] = _Key()
        else:
            if state.fetch_end <= now:
                self._settle(state)
            if state.stored is not None and state.evict_at <= now:
                state.stored = None
                self._live -= 1
            if state.due == math.inf:
                self._reschedule(event.key, state)
        stored = state.stored
        swr = False
        if stored is not None:
            age = now - state.t0  # the entry was fetched at time 0 (see the module doc)
            if age < stored.fresh_until if not self.reference else self._fresh(stored, age):
                result.hits += 1
                return
            swr = self._revalidating(stored, age)
        if state.fetch is not None:  # another request holds the lock: service._Call._coalesced / _wait
            result.during_refresh += 1
            if swr:
                result.stale += 1
                result.stale_while_revalidate += 1
                return
            first_poll = now + POLL_FIRST_SECONDS
            if (
                state.marker is not None
                and state.marker_at >= now - OUTCOME_TTL_SECONDS / 2
                and self._marker_visible(state, first_poll)
            ):
                self._waited(state.marker, (event.status, stored, state.t0), first_poll, minute)
            else:
                state.waiters.append((event.status, stored, state.t0))
            return
        # the lock is ours: service._Call._refresh_holding_lock
        if (
            stored is not None
            and state.marker == "error"
            and self._marker_visible(state, now)
            and self._on_error(stored, now - state.t0)
        ):
            result.stale += 1
            result.stale_if_error += 1
            return
        latency = self.config.latency if event.latency is None else event.latency
        timeout = self.config.upstream_timeout
        if latency >= timeout:
            fetch = self._fetch_of(_TIMEOUT_STATUS)
            latency = timeout
        else:
            fetch = self._fetches.get(event.status) or self._fetch_of(event.status)
        result.upstream_requests += 1
        minute[1] += 1
        state.fetch = fetch
        state.fetch_start = now
        state.fetch_end = now + latency
        if fetch.failure:  # service._Call._after_failure, judged when the answer arrives
            self._failed(stored, state.fetch_end - state.t0)
        else:
            result.misses += 1
        if state.due == math.inf:
            state.due = state.fetch_end
            heapq.heappush(heap, (state.fetch_end, event.key))

    def _failed(self, stored: _Fetch | None, age: float) -> None:
        result = self.result
        if self._on_error(stored, age):
            result.stale += 1
            result.stale_if_error += 1
        else:
            result.errors += 1

    def _waited(self, marker: str, waiter: tuple[int, _Fetch | None, float], at: float, minute: list[int]) -> None:
        """A waiting request (status, stored entry, its t0) that saw an outcome marker at `at` (service._Call._wait)."""
        status, stored, t0 = waiter
        result = self.result
        if marker == "error":  # _collapsed_failure
            self._failed(stored, at - t0)
            return
        # "pass": the answer may not be stored, so the waiter fetches for itself (_direct: no lock, no store)
        result.upstream_requests += 1
        minute[1] += 1
        if is_failure(status):
            self._failed(stored, at - t0)
        else:
            result.misses += 1

    def _settle(self, state: _Key) -> None:
        """The fetch in flight has answered at state.fetch_end: store or mark, then answer the waiters."""
        fetch = state.fetch
        assert fetch is not None
        end = state.fetch_end
        result = self.result
        waiters = state.waiters
        if fetch.entry is not None:
            if state.stored is None:
                self._live += 1
                result.peak_entries = max(result.peak_entries, self._live)
            state.stored = fetch
            state.t0 = state.fetch_start
            state.evict_at = state.fetch_start + fetch.redis_ttl
            result.hits += len(waiters)
            result.collapsed += len(waiters)
        else:
            state.marker = "error" if fetch.failure else "pass"
            state.marker_at = end
            if waiters:
                minute = self._minutes.setdefault(int(end // MINUTE_SECONDS), [0, 0])
                for waiter in waiters:
                    self._waited(state.marker, waiter, end, minute)
        state.fetch = None
        state.fetch_end = math.inf
        if waiters:
            state.waiters = []

    # -- clean-up: state only for keys with something alive ---------------------------------------------------
    def _schedule(self, key: str, state: _Key, when: float) -> None:
        """One heap item per key at most, so the heap stays as small as the state. A key whose next change comes
        before its scheduled item is brought up to date when it is next requested or when the item is due; every
        decision compares times itself, so only the clean-up and the entry count wait."""
        if state.due == math.inf:
            state.due = when
            heapq.heappush(self._heap, (when, key))

    def _expire(self, now: float) -> None:
        heap = self._heap
        keys = self._keys
        while heap and heap[0][0] <= now:
            due, key = heapq.heappop(heap)
            state = keys.get(key)
            if state is None or state.due != due:
                continue
            state.due = math.inf
            if state.fetch_end <= due:
                self._settle(state)
            if state.stored is not None and state.evict_at <= due:
                state.stored = None
                self._live -= 1
            if state.marker is not None and not self._marker_visible(state, due):
                state.marker = None
            if not self._reschedule(key, state):
                del keys[key]

    def _reschedule(self, key: str, state: _Key) -> bool:
        """Schedule the key's next change (fetch answered, entry evicted, marker gone); False when none is left."""
        nxt = state.fetch_end
        if state.stored is not None:
            nxt = min(nxt, state.evict_at)
        if state.marker is not None:
            nxt = min(nxt, state.marker_at + OUTCOME_TTL_SECONDS)
        if nxt == math.inf:
            return False
        self._schedule(key, state, nxt)
        return True

    def finish(self) -> TtlResult:
        """Settle the fetches still in flight and pick the worst minute; returns the result."""
        if not self._finished:
            self._finished = True
            for state in self._keys.values():
                if state.fetch is not None:
                    self._settle(state)
            self._keys.clear()
            self._heap.clear()
            worst: Minute | None = None
            for index, (requests, upstream) in sorted(self._minutes.items()):
                if worst is None or upstream > worst.upstream_requests:
                    worst = Minute(index * MINUTE_SECONDS, requests, upstream)
            self.result.worst_minute = worst
        return self.result

    @property
    def tracked_keys(self) -> int:
        """Keys with state right now (bounded by the keys whose entries, markers or fetches are alive)."""
        return len(self._keys)


class Simulation:
    """Every TTL of `config` over the same events, in one pass."""

    def __init__(self, config: SimConfig, *, reference: bool = False) -> None:
        self.config = config
        self.simulators = [TtlSimulator(ttl, config, reference=reference) for ttl in config.ttls]
        self.last_time = -math.inf

    def feed(self, events: Sequence[Event]) -> None:
        """A batch of events in time order (each simulator runs through the batch in turn)."""
        if not events:
            return
        if events[0].time < self.last_time:
            raise ValueError("events must come in time order")
        self.last_time = events[-1].time
        for simulator in self.simulators:
            handle = simulator.handle
            for event in events:
                handle(event)

    def finish(self) -> list[TtlResult]:
        return [simulator.finish() for simulator in self.simulators]

    @property
    def tracked_keys(self) -> int:
        return max((s.tracked_keys for s in self.simulators), default=0)


def simulate(
    events: Iterable[Event], config: SimConfig, *, batch: int = 4096, reference: bool = False
) -> list[TtlResult]:
    """All TTLs of `config` over `events` (in time order)."""
    simulation = Simulation(config, reference=reference)
    chunk: list[Event] = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= batch:
            simulation.feed(chunk)
            chunk = []
    simulation.feed(chunk)
    return simulation.finish()
