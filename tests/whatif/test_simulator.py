"""The simulation core against the proxy's rules (proxy/policy.py, proxy/service.py), case by case.

The modelled origin sends no Cache-Control, so freshness is the TTL under test (RFC 9111 §4.2.2 heuristic
freshness = CACHE_TTL_SECONDS) and the stale windows are the configured ones (RFC 5861).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from proxy.coalescing import OUTCOME_TTL_SECONDS
from whatif.simulator import Event, SimConfig, TtlResult, TtlSimulator, origin_status, simulate

L = 0.1  # upstream latency of every fetch in these tests


def run(events: list[Event], ttl: float = 10.0, **settings: Any) -> TtlResult:
    config = SimConfig(ttls=(ttl,), stale_while_revalidate=0.0, stale_if_error=0.0, latency=L)
    [result] = simulate(events, dataclasses.replace(config, **settings))
    assert result.requests == len(events)
    assert result.hits + result.misses + result.stale + result.errors == result.requests
    return result


def test_a_cold_burst_reaches_the_upstream_once() -> None:  # service._coalesced: one fetch per key at a time
    events = [Event(0.0, "a")] + [Event(0.001 * i, "a") for i in range(1, 50)]
    result = run(events)
    assert (result.upstream_requests, result.misses, result.hits, result.collapsed) == (1, 1, 49, 49)
    assert result.during_refresh == 49


def test_fresh_for_exactly_the_ttl_from_the_fetch_request() -> None:  # RFC 9111 §4.2: fresh while age < lifetime
    # The age counts from when the fetching request was sent (corrected initial age = response delay, §4.2.3).
    result = run([Event(0.0, "a"), Event(9.999, "a"), Event(10.0, "a")])
    assert (result.hits, result.upstream_requests) == (1, 2)


def test_every_ttl_in_one_pass() -> None:
    events = [Event(float(t), "a") for t in range(0, 100, 5)]
    results = simulate(events, SimConfig(ttls=(1.0, 10.0, 60.0, 1000.0), stale_while_revalidate=0.0))
    assert [r.upstream_requests for r in results] == [20, 10, 2, 1]
    assert [r.ttl for r in results] == [1.0, 10.0, 60.0, 1000.0]


def test_ttl_zero_never_serves_from_the_cache() -> None:
    result = run([Event(float(t), "a") for t in range(5)], ttl=0.0)
    assert result.upstream_requests == 5


def test_stale_while_revalidate_answers_during_the_refresh_only() -> None:  # RFC 5861 §3
    # The request that takes the lock refreshes synchronously (its own answer waits); the others are STALE.
    events = [Event(0.0, "a"), Event(12.0, "a"), Event(12.05, "a"), Event(12.2, "a")]
    result = run(events, stale_while_revalidate=30.0)
    assert (result.upstream_requests, result.stale_while_revalidate, result.hits) == (2, 1, 1)
    beyond = run([Event(0.0, "a"), Event(50.0, "a"), Event(50.05, "a")], stale_while_revalidate=30.0)
    assert (beyond.stale_while_revalidate, beyond.collapsed) == (0, 1)  # past the window: wait, don't serve stale


def test_stale_if_error_and_the_outcome_marker() -> None:  # RFC 5861 §4; service._refresh_holding_lock
    events = [
        Event(0.0, "a"),
        Event(20.0, "a", 503),  # expired; the upstream fails: the stale copy answers
        Event(21.0, "a", 503),  # the failure marker is still visible: STALE without asking the upstream
        Event(20.1 + OUTCOME_TTL_SECONDS + 0.5, "a", 503),  # the marker is gone: ask again (and fail again)
        Event(40.0, "a", 200),
    ]
    result = run(events, stale_if_error=3600.0)
    assert result.upstream_requests == 4
    assert (result.stale_if_error, result.errors, result.hits + result.misses) == (3, 0, 2)
    without = run(events, stale_if_error=0.0)
    assert (without.errors, without.upstream_requests) == (3, 5)  # no stale copy: no marker short cut either


def test_waiters_take_a_failed_fetch_as_their_answer() -> None:  # service._collapsed_failure
    events = [Event(0.0, "a", 503), Event(0.05, "a", 503), Event(0.06, "a", 503)]
    result = run(events)
    assert (result.upstream_requests, result.errors) == (1, 3)


def test_an_uncacheable_answer_makes_every_waiter_fetch_for_itself() -> None:  # "pass" marker, service._direct
    events = [Event(0.0, "a", 403), Event(0.05, "a", 403), Event(0.06, "a", 403), Event(1.0, "a", 403)]
    result = run(events)
    assert result.upstream_requests == 4
    assert result.misses == 4


def test_negative_answers_are_kept_for_the_negative_ttl() -> None:  # RFC 9111 §4.2.2, CACHE_NEGATIVE_TTL_SECONDS
    events = [Event(0.0, "gone", 404), Event(5.0, "gone", 404), Event(11.0, "gone", 404)]
    assert run(events, ttl=300.0, negative_ttl=10.0).upstream_requests == 2
    assert run(events, ttl=300.0, negative_ttl=0.0).upstream_requests == 3


def test_a_slow_upstream_is_a_timeout_failure() -> None:  # UPSTREAM_TIMEOUT_SECONDS; a timeout is an error (504)
    events = [Event(0.0, "a", 200, 9.0), Event(1.0, "a")]
    result = run(events, upstream_timeout=5.0)
    assert (result.errors, result.upstream_requests) == (2, 1)  # the second waited and took the failure


def test_redis_drops_the_entry_after_its_retention() -> None:
    # Kept for TTL + max(swr, stale-if-error, TTL for an entry with a validator): past that, a failure is an error.
    events = [Event(0.0, "a"), Event(15.0, "a", 500), Event(100.0, "a", 500)]
    result = run(events, ttl=10.0, stale_if_error=60.0)
    assert (result.stale_if_error, result.errors) == (1, 1)


def test_keys_are_independent_and_state_is_dropped_when_nothing_is_alive() -> None:
    sim = TtlSimulator(1.0, SimConfig(ttls=(1.0,), stale_while_revalidate=0.0, stale_if_error=0.0))
    for i in range(1000):
        sim.handle(Event(float(i), f"k{i}"))
    assert sim.tracked_keys <= 3  # entries live TTL + TTL (the validator keeps them one TTL longer)
    result = sim.finish()
    assert (result.upstream_requests, result.peak_entries) == (1000, 2)


def test_worst_minute() -> None:
    events = [Event(float(i), f"k{i}") for i in range(0, 60, 10)] + [Event(60.0 + i / 10, f"x{i}") for i in range(30)]
    result = run(events)
    assert result.worst_minute is not None
    assert (result.worst_minute.start, result.worst_minute.upstream_requests) == (60.0, 30)


def test_recorded_statuses_become_what_the_upstream_answered() -> None:
    assert [origin_status(s) for s in (None, 0, 101, 200, 304, 404, 503)] == [200, 200, 200, 200, 200, 404, 503]


def test_events_must_come_in_time_order() -> None:
    with pytest.raises(ValueError, match="time order"):
        simulate([Event(5.0, "a"), Event(1.0, "b")], SimConfig(ttls=(1.0,)), batch=1)


@pytest.mark.parametrize("seed", range(12))
def test_decision_boundaries_agree_with_asking_the_policy_on_every_request(seed: int) -> None:
    """The fast path compares ages with boundaries found once; the reference asks proxy.policy each time."""
    rng = random.Random(seed)
    now = 0.0
    events: list[Event] = []
    for _ in range(3000):
        now += rng.expovariate(4.0) if rng.random() < 0.85 else rng.choice((0.0, 1.0, 2.0))
        key = f"k{int(rng.paretovariate(1.1)) % 40}"
        status = rng.choice((200,) * 20 + (404, 410, 503, 500, 403, 302))
        events.append(Event(now, key, status, rng.choice((None, 0.02, 0.4, 7.0))))
    config = SimConfig(
        ttls=(0.0, 0.5, 2.0, 10.0, 60.0),
        stale_while_revalidate=rng.choice((0.0, 1.0, 30.0)),
        stale_if_error=rng.choice((0.0, 3.0, 86400.0)),
        negative_ttl=rng.choice((0.0, 1.0, 10.0)),
    )
    fast = simulate(events, config)
    reference = simulate(events, config, reference=True)
    assert [dataclasses.asdict(r) for r in fast] == [dataclasses.asdict(r) for r in reference]
    assert any(r.stale for r in fast) or config.stale_if_error == 0.0
