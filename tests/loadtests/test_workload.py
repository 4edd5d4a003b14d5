"""Workload generators: Zipf keys, phase plans, durations, key-order variations."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from loadtests.workload import (
    PhaseSpec,
    Zipf,
    irrelevant_headers,
    key_order_params,
    next_boundary,
    parse_duration,
    phase_at,
    plan_phases,
    query_string,
    shuffled,
)

pytestmark = pytest.mark.unit


def test_zipf_frequencies_follow_the_law() -> None:
    zipf = Zipf(100, 1.0, random.Random(42))
    draws = 200_000
    counts = Counter(zipf.sample() for _ in range(draws))
    assert set(counts) <= set(range(1, 101))
    harmonic = sum(1 / k for k in range(1, 101))
    for key in (1, 2, 10, 50):
        expected = draws / key / harmonic
        assert counts[key] == pytest.approx(expected, rel=0.05 if key < 10 else 0.15)
    assert counts[1] / counts[2] == pytest.approx(2.0, rel=0.05)


def test_zipf_zero_exponent_is_uniform_and_one_key_always_draws_it() -> None:
    zipf = Zipf(4, 0.0, random.Random(1))
    assert zipf.probabilities == [0.25] * 4
    counts = Counter(zipf.sample() for _ in range(40_000))
    assert all(c == pytest.approx(10_000, rel=0.05) for c in counts.values())
    assert {Zipf(1, 1.2).sample() for _ in range(50)} == {1}


def test_zipf_expected_distinct_keys() -> None:
    zipf = Zipf(1000, 1.0)
    assert zipf.expected_distinct(0) == 0.0
    assert zipf.expected_distinct(1) == pytest.approx(1.0)
    assert 0 < zipf.expected_distinct(1000) < 1000
    assert zipf.expected_distinct(10**9) == pytest.approx(1000, rel=1e-3)


@pytest.mark.parametrize(("n", "s"), [(0, 1.0), (10, -0.5)])
def test_zipf_rejects_bad_parameters(n: int, s: float) -> None:
    with pytest.raises(ValueError, match=r"key space|negative"):
        Zipf(n, s)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), ("250ms", 0.25), (" 3 s ", 3.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "-5s", "5d", "1m30s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


NAMES = ("warmup", "outage", "recovery")


def test_plan_phases_scales_shares_to_the_run() -> None:
    plan = plan_phases("warmup=0.3,outage=0.4,recovery=0.3", 60.0, NAMES)
    assert plan == [PhaseSpec("warmup", 18.0), PhaseSpec("outage", 24.0), PhaseSpec("recovery", 18.0)]
    plan = plan_phases("warmup=1,outage=2,recovery=1", 8.0, NAMES)
    assert [p.seconds for p in plan] == [2.0, 4.0, 2.0]


def test_plan_phases_with_fixed_durations_ignores_the_run_length() -> None:
    plan = plan_phases("warmup=10s,outage=1m,recovery=500ms", 5.0, NAMES)
    assert [p.seconds for p in plan] == [10.0, 60.0, 0.5]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("warmup=0.5,outage=0.5", "must be warmup, outage, recovery"),
        ("outage=1,warmup=1,recovery=1", "in this order"),
        ("warmup=0.3,outage=10s,recovery=0.3", "not a mix"),
        ("warmup=x,outage=1,recovery=1", "neither a share"),
        ("warmup,outage=1,recovery=1", "needs a value"),
        ("warmup=0,outage=1,recovery=1", "positive duration"),
        ("warmup=-1,outage=1,recovery=1", ">= 0"),
    ],
)
def test_plan_phases_rejects_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_phases(spec, 60.0, NAMES)


def test_phase_at_and_next_boundary() -> None:
    plan = [PhaseSpec("a", 2.0), PhaseSpec("b", 3.0)]
    assert [phase_at(plan, t) for t in (0.0, 1.99, 2.0, 4.99, 5.0, 9.0)] == ["a", "a", "b", "b", None, None]
    assert [next_boundary(plan, t) for t in (0.0, 2.0, 4.5, 5.0)] == [2.0, 5.0, 5.0, None]


def test_key_order_variants_are_permutations_of_one_resource() -> None:
    rng = random.Random(3)
    canonical = key_order_params(7)
    assert canonical[0] == ("name", "item-7")
    spellings = {query_string(shuffled(canonical, rng)) for _ in range(200)}
    assert len(spellings) > 20
    assert all(sorted(s.split("&")) == sorted(query_string(canonical).split("&")) for s in spellings)
    headers = [irrelevant_headers(rng) for _ in range(20)]
    assert len({h["X-Request-Id"] for h in headers}) == 20
    assert all(set(h) == {"User-Agent", "X-Request-Id", "X-Amzn-Trace-Id", "X-Forwarded-For"} for h in headers)
