"""The measurement model on synthetic data: histogram precision, label parsing, ratios and error classes."""

from __future__ import annotations

import random

import pytest

from loadtests.figures import figures
from loadtests.histogram import Histogram, quantile_exact
from loadtests.measurements import (
    CONNECTION,
    NO_RESPONSE,
    NONE,
    OK,
    OTHER,
    OTHER_ERROR,
    TARGET_PROXY,
    TARGET_UPSTREAM,
    TIMEOUT,
    Measurements,
    Sample,
    SampleKey,
    bursts,
    cache_status,
    classify_exception,
    http_outcome,
    is_available,
    is_failure,
    parse_cache_status,
)

pytestmark = pytest.mark.unit


def key(
    cache: str = "HIT",
    outcome: str = OK,
    *,
    phase: str = "p",
    target: str = TARGET_PROXY,
    group: str = "",
    fwd: str = "",
    collapsed: bool = False,
) -> SampleKey:
    return SampleKey(phase, target, group, cache, outcome, fwd, collapsed)


def add(m: Measurements, k: SampleKey, *latencies: float, end: float = 1000.0, resource: str | None = None) -> None:
    for ms in latencies:
        m.add(Sample(end, ms, k, resource))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_histogram_percentiles_stay_within_one_percent_of_the_exact_values(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(0.0, 1.5) for _ in range(20_000)] + [0.0, 1e-6, 59_999.0]
    hist = Histogram()
    for v in values:
        hist.add(v)
    for q in (0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        exact = quantile_exact(values, q)
        assert exact is not None
        got = hist.percentile(q)
        assert got is not None
        assert got == pytest.approx(exact, rel=0.011, abs=Histogram.MIN_MS), q
    assert hist.count == len(values)
    assert hist.max_ms == max(values)
    assert hist.mean == pytest.approx(sum(values) / len(values))


def test_histogram_merge_equals_one_histogram_of_everything_and_survives_the_wire() -> None:
    rng = random.Random(7)
    values = [rng.expovariate(0.2) for _ in range(3000)]
    whole = Histogram()
    parts = [Histogram() for _ in range(3)]
    for i, v in enumerate(values):
        whole.add(v)
        parts[i % 3].add(v)
    merged = Histogram()
    for part in parts:
        merged.merge(Histogram.from_wire(part.to_wire()))
    assert merged.buckets == whole.buckets
    assert merged.count == whole.count
    assert merged.min_ms == whole.min_ms
    assert merged.max_ms == whole.max_ms
    assert merged.total_ms == pytest.approx(whole.total_ms)
    assert [merged.percentile(q) for q in (0.5, 0.99)] == [whole.percentile(q) for q in (0.5, 0.99)]


def test_empty_histogram_has_no_percentiles() -> None:
    hist = Histogram()
    assert hist.percentile(0.5) is None
    assert hist.mean is None
    assert Histogram.from_wire(hist.to_wire()).count == 0


def test_single_value_percentiles_are_exact() -> None:
    hist = Histogram()
    hist.add(12.345)
    assert hist.percentile(0.5) == pytest.approx(12.345)
    assert hist.percentile(0.99) == pytest.approx(12.345)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("HIT", "HIT"),
        ("miss", "MISS"),
        (" STALE ", "STALE"),
        ("BYPASS", "BYPASS"),
        ("HIT from cdn", "HIT"),
        (None, NONE),
        ("", NONE),
        ("REFRESH", OTHER),
    ],
)
def test_cache_status_from_x_cache(header: str | None, expected: str) -> None:
    assert cache_status(header) == expected


@pytest.mark.parametrize(
    ("header", "fwd", "collapsed"),
    [
        (None, "", False),
        ("cachelab; hit; ttl=299", "", False),
        ("cachelab; fwd=uri-miss; fwd-status=200; stored", "uri-miss", False),
        ("cachelab; fwd=stale; fwd-status=304; ttl=1", "stale", False),
        ("cachelab; fwd=uri-miss; collapsed; ttl=299", "uri-miss", True),
        ("cachelab; fwd=stale; collapsed; ttl=-3; detail=stale-if-error", "stale", True),
        ("cachelab; fwd=uri-miss; detail=collapsed-failure; collapsed", "uri-miss", True),
        ("cachelab; fwd=bypass; fwd-status=200; detail=redis-unavailable", "bypass", False),
        ('cdn; hit, cachelab; fwd="miss"', "miss", False),  # the entry of the cache closest to the client
        ("cachelab; fwd=uri-miss; collapsed=?0", "uri-miss", False),
    ],
)
def test_cache_status_header_forwarding(header: str | None, fwd: str, collapsed: bool) -> None:
    info = parse_cache_status(header)
    assert (info.fwd, info.collapsed) == (fwd, collapsed)


def test_outcomes_availability_and_failures() -> None:
    assert http_outcome(200) == OK
    assert http_outcome(304) == OK
    assert http_outcome(404) == "http_404"
    assert http_outcome(503) == "http_503"
    assert is_available("http_404")
    assert is_failure("http_404")
    assert not is_available("http_502")
    assert is_failure("http_502")
    assert not is_available(TIMEOUT)
    assert not is_available(CONNECTION)
    assert not is_available(OTHER_ERROR)
    assert is_available(OK)
    assert not is_failure(OK)


class GeventLikeTimeout(BaseException):
    """Stands in for gevent.Timeout (a BaseException called Timeout)."""


GeventLikeTimeout.__name__ = "Timeout"


class HTTPConnectionClosed(Exception):
    """Stands in for geventhttpclient's exception of the same name."""


class ConnectionError(Exception):
    def __init__(self, url: str, *args: object, **kw: object) -> None:
        super().__init__(url, *args)
        self.__dict__.update(kw)


class RetriesExceeded(ConnectionError):
    """Stands in for geventhttpclient's wrapper of the real cause."""


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RetriesExceeded("http://x/1", 0, original=TimeoutError("timed out")), TIMEOUT),
        (RetriesExceeded("http://x/1", 0, original=ConnectionResetError(104, "reset")), CONNECTION),
        (RetriesExceeded("http://x/1", 0), CONNECTION),
        (TimeoutError("timed out"), TIMEOUT),
        (TimeoutError(), TIMEOUT),
        (GeventLikeTimeout(), TIMEOUT),
        (ConnectionResetError(104, "reset"), CONNECTION),
        (ConnectionRefusedError(111, "refused"), CONNECTION),
        (BrokenPipeError(), CONNECTION),
        (HTTPConnectionClosed("closed"), CONNECTION),
        (OSError(99, "address not available"), CONNECTION),
        (ValueError("bad"), OTHER_ERROR),
        (None, OTHER_ERROR),
    ],
)
def test_transport_errors_are_classified(exc: BaseException | None, expected: str) -> None:
    assert classify_exception(exc) == expected


def test_figures_ratios_count_only_answered_proxy_requests() -> None:
    m = Measurements()
    add(m, key("HIT"), *[1.0] * 60)
    add(m, key("STALE"), *[2.0] * 10)
    add(m, key("MISS", fwd="uri-miss"), *[20.0] * 20)
    add(m, key("MISS", "http_503", fwd="uri-miss"), *[5.0] * 5)  # answered, not available
    add(m, key("HIT", "http_404"), 1.0)  # a cached 404: answered and available, but a Locust failure
    add(m, key(NO_RESPONSE, TIMEOUT), 10_000.0, 10_000.0)  # not answered
    add(m, key(NONE, OK, target=TARGET_UPSTREAM), *[3.0] * 50)  # direct calls: no cache ratio
    f = figures(m)
    assert f["requests"] == 60 + 10 + 20 + 5 + 1 + 2 + 50
    answered = 60 + 10 + 20 + 5 + 1
    assert f["answered"] == answered
    assert f["hit_ratio"] == round(61 / answered, 6)
    assert f["cache_served_ratio"] == round(71 / answered, 6)
    assert f["availability"] == round((98 - 5 - 2) / 98, 6)  # the proxy's: direct calls have their own figure
    assert f["failures"] == 5 + 1 + 2
    assert f["errors"] == {"total": 7, "by_status": {"503": 5}, "timeout": 2, "connection": 0, "other": 0}
    statuses = f["by_cache_status"]
    assert list(statuses)[:4] == ["HIT", "MISS", "STALE", "BYPASS"]
    assert statuses["BYPASS"] == {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}
    assert statuses["HIT"]["count"] == 61
    assert statuses[NONE]["count"] == 50
    assert statuses[NO_RESPONSE]["count"] == 2
    assert sum(s["count"] for s in statuses.values()) == f["requests"]
    assert statuses["MISS"]["p50_ms"] == pytest.approx(20.0, rel=0.01)
    assert statuses["MISS"]["p95_ms"] == pytest.approx(20.0, rel=0.01)
    assert f["latency"]["max_ms"] == pytest.approx(10_000.0)


def test_only_hit_and_stale_cost_nothing_upstream() -> None:
    m = Measurements()
    add(m, key("HIT"), *[1.0] * 10)  # fresh hits
    add(m, key("HIT", fwd="stale"), *[1.0] * 3)  # revalidated (304): one upstream request each
    add(m, key("HIT", fwd="uri-miss", collapsed=True), *[1.0] * 7)  # waited for another request's fetch
    add(m, key("MISS", fwd="uri-miss"), *[1.0] * 4)
    add(m, key("BYPASS", fwd="bypass"), *[1.0] * 2)
    add(m, key("STALE"), *[1.0] * 5)  # stale-while-revalidate: another request refreshes
    add(m, key("STALE", fwd="stale"), *[1.0] * 6)  # stale-if-error after its own failed fetch
    add(m, key("STALE", fwd="stale", collapsed=True), *[1.0] * 8)
    add(m, key("MISS", "http_502", fwd="uri-miss", collapsed=True), 1.0)  # a waiter given the holder's failure
    f = figures(m)
    assert f["revalidations"] == 3
    assert f["expected_upstream_requests"] == 4 + 2 + 1 + 3  # MISS + BYPASS + revalidations
    assert f["forwarded"] == 3 + 4 + 2 + 6
    assert f["collapsed"] == 7 + 8 + 1


def test_figures_select_by_phase_group_and_target() -> None:
    m = Measurements()
    add(m, key("HIT", phase="warmup", group="seen-key"), 1.0, 1.0)
    add(m, key("MISS", phase="warmup", group="new-key"), 9.0)
    add(m, key("STALE", phase="outage", group="seen-key"), 2.0, 2.0, 2.0)
    add(m, key("MISS", "http_500", phase="outage", group="new-key"), 3.0)
    add(m, key(NONE, "http_500", phase="outage", target=TARGET_UPSTREAM), 1.0)
    assert figures(m, phase="warmup")["requests"] == 3
    outage = figures(m, phase="outage")
    assert outage["requests"] == 5
    assert outage["availability"] == 0.75  # 3 of the 4 proxy requests; the direct call is the upstream's figure
    assert outage["cache_served_ratio"] == 0.75
    warm = figures(m, phase="outage", group="seen-key")
    assert (warm["requests"], warm["availability"], warm["cache_served_ratio"]) == (3, 1.0, 1.0)
    direct = figures(m, target=TARGET_UPSTREAM)
    assert (direct["requests"], direct["availability"]) == (1, 0.0)
    assert direct["hit_ratio"] is None  # no proxy answers to divide by
    assert figures(m, phase="nope")["availability"] is None


def test_measurements_merge_and_wire_round_trip() -> None:
    a, b = Measurements(), Measurements()
    add(a, key("HIT", group="g"), 1.0, 2.0, end=100.2, resource="1")
    add(b, key("HIT", group="g"), 3.0, end=100.9, resource="2")
    add(b, key("MISS", "http_503"), 4.0, end=101.5)
    merged = Measurements.from_wire(a.to_wire())
    merged.merge(Measurements.from_wire(b.to_wire()))
    assert merged.requests == 4
    assert merged.resources == {"g": {"1", "2"}}
    assert sum(merged.timeline.values()) == 4
    by_second = {(k.second, k.available): c for k, c in merged.timeline.items()}
    assert by_second == {(100, True): 3, (101, False): 1}
    assert merged.hist[key("HIT", group="g")].count == 3


def test_bursts_group_counter_growth_separated_by_quiet_gaps() -> None:
    trace = [(0.0, 10), (0.1, 11), (0.2, 13), (0.3, 13), (1.0, 13), (1.1, 14), (1.2, 14), (2.5, 16), (2.6, 17)]
    found = bursts(trace, gap_s=0.5)
    assert [(b.start, b.end, b.requests) for b in found] == [(0.1, 0.2, 3), (1.1, 1.1, 1), (2.5, 2.6, 3)]
    assert bursts(trace, gap_s=5.0)[0].requests == 7
    assert bursts([(0.0, 5)], 0.5) == []
    assert bursts([], 0.5) == []


def test_bursts_survive_a_counter_reset() -> None:
    found = bursts([(0.0, 100), (0.1, 101), (1.0, 2), (1.1, 3)], gap_s=0.5)
    assert [b.requests for b in found] == [1, 1]
