"""The latency model over real HTTP: distributions, per-route overrides, the seed, and concurrency."""

from __future__ import annotations

import time
from pathlib import Path

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
    assert max(r.elapsed for r in results) < 1.0


def test_lognormal_latency_distribution(stub: StubClient) -> None:
    """p50 = 50 ms and p99 = 250 ms: the draws (X-Stub-Latency-Ms) and the waits measured by the client."""
    state = stub.faults(latency_ms=50, latency_p99_ms=250)
    assert state["latency_model"] == "lognormal", "latency_p99_ms alone selects the log-normal model"
    results = fetch_concurrently([f"{stub.url}/?name=n{i}" for i in range(400)], limit=40)
    _waited_at_least_the_sampled_latency(results)

    drawn = [r.latency_ms for r in results if r.latency_ms is not None]
    assert 0.8 * 50 <= percentile(drawn, 0.5) <= 1.2 * 50
    assert 0.6 * 250 <= percentile(drawn, 0.99) <= 1.6 * 250
    assert percentile(drawn, 0.9) > 1.5 * percentile(drawn, 0.5), "a heavy tail, not a constant"

    measured_ms = [r.elapsed * 1000 for r in results]
    assert 0.8 * 50 <= percentile(measured_ms, 0.5) <= 1.2 * 50 + 30  # + room for connecting and parsing
    assert 0.6 * 250 <= percentile(measured_ms, 0.99) <= 1.6 * 250 + 60


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
    assert stub.get("/?name=x").elapsed < 0.2


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


def test_200_concurrent_requests_with_200ms_latency(stub: StubClient) -> None:
    stub.faults(latency_ms=200)
    started = time.monotonic()
    results = fetch_concurrently([f"{stub.url}/items/{i % 50 + 1}" for i in range(200)])
    wall = time.monotonic() - started
    _waited_at_least_the_sampled_latency(results)
    assert wall < 1.5, f"200 concurrent 200 ms requests took {wall:.2f} s"
    stats = stub.stats()
    assert stats["requests"] == 200
    assert stats["by_status"] == {"200": 200}
    assert stats["max_in_flight"] >= 100, "they were in flight together"
    assert stats["in_flight"] == 0


def test_holds_500_concurrent_slow_requests(stub: StubClient) -> None:
    stub.faults(latency_ms=500)
    started = time.monotonic()
    results = fetch_concurrently([f"{stub.url}/?name=p{i}" for i in range(500)])
    wall = time.monotonic() - started
    _waited_at_least_the_sampled_latency(results)
    assert wall < 3.0, f"500 concurrent 500 ms requests took {wall:.2f} s"
    assert stub.stats()["max_in_flight"] >= 250
