"""The latency model over real HTTP: distributions, per-route overrides, the seed, and concurrency.

No upper bound on a measured time here: a busy machine makes every answer later, so "took less than" says
nothing about the stub. What the stub promises is checked instead: it waits at least the latency it drew (a
lower bound, which load cannot break), the draws follow the model (the X-Stub-Latency-Ms header, from the seeded
sampler; the sampler's statistics are unit-tested in test_stub_units.py), and slow requests overlap (the stub's
own in-flight counter). `make bench-stub` prints the measured latency next to the drawn one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.stub_api.helpers import StubClient, Timed, fetch_concurrently, percentile, running_stub


def _waited_at_least_the_sampled_latency(results: list[Timed], slack_s: float = 0.003) -> None:
    for r in results:
        assert r.status == 200, r
        assert r.latency_ms is not None
        assert r.elapsed >= r.latency_ms / 1000 - slack_s, (r.elapsed, r.latency_ms)


def test_fixed_latency(stub: StubClient) -> None:
    state = stub.faults(latency_ms=120)
    assert (state["latency_model"], state["latency_ms"], state["latency_p99_ms"]) == ("fixed", 120.0, None)
    results = fetch_concurrently([f"{stub.url}/items/{i}" for i in range(1, 51)])
    _waited_at_least_the_sampled_latency(results)
    assert {r.latency_ms for r in results} == {120.0}


def test_lognormal_latency_distribution(stub: StubClient) -> None:
    """p50 = 50 ms and p99 = 250 ms: the draws (X-Stub-Latency-Ms), and every wait at least its draw."""
    state = stub.faults(latency_ms=50, latency_p99_ms=250)
    assert state["latency_model"] == "lognormal", "latency_p99_ms alone selects the log-normal model"
    results = fetch_concurrently([f"{stub.url}/?name=n{i}" for i in range(400)], limit=40)
    _waited_at_least_the_sampled_latency(results)

    drawn = [r.latency_ms for r in results if r.latency_ms is not None]
    assert 0.8 * 50 <= percentile(drawn, 0.5) <= 1.2 * 50
    assert 0.6 * 250 <= percentile(drawn, 0.99) <= 1.6 * 250
    assert percentile(drawn, 0.9) > 1.5 * percentile(drawn, 0.5), "a heavy tail, not a constant"


def test_uniform_latency_distribution(stub: StubClient) -> None:
    state = stub.faults(latency_model="uniform", latency_ms=100, latency_p99_ms=190)
    assert state["latency_model"] == "uniform"
    results = fetch_concurrently([f"{stub.url}/items/{i}" for i in range(1, 301)], limit=60)
    _waited_at_least_the_sampled_latency(results)
    drawn = [r.latency_ms for r in results if r.latency_ms is not None]
    jitter = (190 - 100) / 0.98
    assert min(drawn) >= 100 - jitter - 0.1
    assert max(drawn) <= 100 + jitter + 0.1
    assert 0.85 * 100 <= percentile(drawn, 0.5) <= 1.15 * 100
    assert min(drawn) < 30, "spread over the whole range"
    assert max(drawn) > 170, "spread over the whole range"


def test_uniform_without_p99_spans_zero_to_twice_the_median(stub: StubClient) -> None:
    stub.faults(latency_model="uniform", latency_ms=40)
    drawn = [r.latency_ms for r in fetch_concurrently([f"{stub.url}/echo"] * 200) if r.latency_ms is not None]
    assert len(drawn) == 200
    assert 0 <= min(drawn) < 8
    assert 72 < max(drawn) <= 80


def test_per_route_latency_override(stub: StubClient) -> None:
    stub.faults(latency_ms=0, routes={"/items/{id}": {"latency_ms": 250}, "/items/2": {"latency_ms": 0}})
    slow = stub.get("/items/1")
    assert slow.latency_ms == 250.0
    assert slow.elapsed >= 0.245
    fast = stub.get("/items/2")
    assert fast.latency_ms == 0.0
    assert stub.get("/?name=x").latency_ms == 0.0


def test_delay_ms_query_knob_adds_latency(stub: StubClient) -> None:
    stub.faults(latency_ms=20)
    reply = stub.get("/items/1?delay_ms=150")
    assert reply.latency_ms == 170.0
    assert reply.elapsed >= 0.168
    for bad in ("-1", "nan", "x", "300001"):
        assert stub.get(f"/items/1?delay_ms={bad}").status == 400, bad


def _sequence(client: StubClient, count: int = 40) -> list[tuple[int, float]]:
    replies = [client.get(f"/items/{i % 7 + 1}") for i in range(count)]
    return [(r.status, r.latency_ms) for r in replies]


def test_seed_makes_runs_reproducible(stub: StubClient) -> None:
    stub.faults(seed=7, latency_ms=2, latency_p99_ms=20, error_rate=0.3)
    first = _sequence(stub)
    assert len({latency for _, latency in first}) > 15, "latencies vary"
    assert {status for status, _ in first} == {200, 500}, "some injected errors"
    stub.faults(seed=7)
    assert _sequence(stub) == first
    stub.faults(seed=8)
    assert _sequence(stub) != first


def test_seed_flag_reproduces_across_processes(tmp_path: Path) -> None:
    flags = ["--seed", "99", "--latency-ms", "2", "--latency-p99-ms", "20", "--error-rate", "0.25"]
    runs = []
    for _ in range(2):
        with running_stub(flags, log_dir=tmp_path) as client:
            assert client.admin("GET", "faults")["seed"] == 99
            runs.append(_sequence(client))
            client.reset()
            assert _sequence(client) == runs[-1], "reset re-seeds with the start seed"
    assert runs[0] == runs[1]


def _in_flight_together(stub: StubClient, urls: list[str], latency_ms: float, need: int) -> list[Timed]:
    """Send `urls` at once to a stub that holds each for `latency_ms`, and check they overlapped there.

    The overlap needs the client to put `need` requests on the wire before the first answer comes back. A machine
    busy enough to starve the client gets one more try with ten times the latency; then the failure says which
    side fell short: the client (starved) or the stub (it did not hold them)."""
    stats: Any = {}
    for attempt_ms in (latency_ms, 10 * latency_ms):
        stub.reset()
        stub.faults(latency_ms=attempt_ms)
        results = fetch_concurrently(urls, timeout=30 + 3 * attempt_ms / 1000)
        stats = stub.stats()
        if stats["max_in_flight"] >= need:
            _waited_at_least_the_sampled_latency(results)
            assert stats["requests"] == len(urls)
            assert stats["by_status"] == {"200": len(urls)}
            assert stub.wait_stats(lambda s: s["in_flight"] == 0)["in_flight"] == 0
            return results
        first_answer = min(r.ended for r in results)
        sent_before = sum(r.started < first_answer for r in results)
        if sent_before >= need:
            pytest.fail(
                f"the client had {sent_before} requests out before the first answer, but the stub counted at most "
                f"{stats['max_in_flight']} in flight at once ({attempt_ms:g} ms each): it does not hold them"
            )
    pytest.fail(
        f"starved: the client could not put {need} requests on the wire within {10 * latency_ms:g} ms (the stub "
        f"saw at most {stats['max_in_flight']} at once); the machine is too busy for this test to say anything"
    )


def test_200_concurrent_requests_with_200ms_latency(stub: StubClient) -> None:
    _in_flight_together(stub, [f"{stub.url}/items/{i % 50 + 1}" for i in range(200)], 200, need=100)


def test_holds_500_concurrent_slow_requests(stub: StubClient) -> None:
    _in_flight_together(stub, [f"{stub.url}/?name=p{i}" for i in range(500)], 500, need=250)
