"""analysis.ttl_model: the TTL hit-ratio model against closed forms and simulation; analysis.cost by hand."""

from __future__ import annotations

import math

import pytest

from analysis import agreement, cost, ttl_model
from loadtests.workload import Zipf

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------------------------------------- workload


def test_zipf_probabilities_are_the_load_generators_weights() -> None:
    p = ttl_model.zipf_probabilities(50, 1.1)
    sampler = Zipf(50, 1.1)
    assert p.sum() == pytest.approx(1.0)
    assert p.tolist() == pytest.approx(sampler.probabilities)
    assert ttl_model.zipf_probabilities(4, 0.0).tolist() == pytest.approx([0.25] * 4)


@pytest.mark.parametrize(("keys", "s"), [(0, 1.0), (10, -0.5), (10, math.nan)])
def test_bad_workloads_are_rejected(keys: int, s: float) -> None:
    with pytest.raises(ValueError, match=r"key space|Zipf exponent"):
        ttl_model.zipf_probabilities(keys, s)


def test_bad_rates_and_ttls_are_rejected() -> None:
    with pytest.raises(ValueError, match="rate"):
        ttl_model.hit_ratio(10, 1.0, -1.0, 5.0)
    with pytest.raises(ValueError, match="TTL"):
        ttl_model.expected_fetches(1.0, math.inf, 5.0)
    with pytest.raises(ValueError, match="window"):
        ttl_model.predict(10, 1.0, 1.0, 5.0, 0.0)


# ---------------------------------------------------------------------------------------------- stationary


def test_hit_probability_is_lambda_t_over_one_plus_lambda_t() -> None:
    assert ttl_model.hit_probability(2.0, 3.0) == pytest.approx(6.0 / 7.0)
    assert ttl_model.hit_probability(0.0, 3.0) == 0.0
    assert ttl_model.hit_probability(2.0, 0.0) == 0.0


def test_one_key_hit_ratio_is_its_hit_probability_and_it_grows_with_ttl_rate_and_skew() -> None:
    assert ttl_model.hit_ratio(1, 1.0, 4.0, 0.5) == pytest.approx(ttl_model.hit_probability(4.0, 0.5))
    ttls = [0.1, 1, 10, 100, 1000]
    values = [ttl_model.hit_ratio(1000, 1.0, 10.0, t) for t in ttls]
    assert values == sorted(values)
    assert values[-1] < 1.0
    assert ttl_model.hit_ratio(1000, 1.0, 100.0, 10.0) > ttl_model.hit_ratio(1000, 1.0, 10.0, 10.0)
    assert ttl_model.hit_ratio(1000, 1.2, 10.0, 10.0) > ttl_model.hit_ratio(1000, 0.0, 10.0, 10.0)


def test_uniform_keys_give_the_single_key_formula_at_the_per_key_rate() -> None:
    assert ttl_model.hit_ratio(100, 0.0, 50.0, 4.0) == pytest.approx(ttl_model.hit_probability(0.5, 4.0))


def test_long_run_hit_ratio_matches_a_long_simulation() -> None:
    # Long enough for the cold start to matter little, short enough to simulate in well under a second.
    requests, fetches, _ = ttl_model.simulate(100, 1.0, 50.0, 2.0, 600.0, seed=3)
    simulated = 1 - fetches / requests
    predicted = ttl_model.window_hit_ratio(100, 1.0, 50.0, 2.0, 600.0)
    assert simulated == pytest.approx(predicted, abs=0.01)
    assert ttl_model.hit_ratio(100, 1.0, 50.0, 2.0) == pytest.approx(predicted, abs=0.01)


def test_ttl_for_hit_ratio_inverts_the_curve() -> None:
    ttl = ttl_model.ttl_for_hit_ratio(0.9, 10_000, 1.0, 50.0)
    assert ttl_model.hit_ratio(10_000, 1.0, 50.0, ttl) == pytest.approx(0.9, abs=1e-6)
    assert ttl_model.hit_ratio(10_000, 1.0, 50.0, ttl * 0.99) < 0.9
    with pytest.raises(ValueError, match="target"):
        ttl_model.ttl_for_hit_ratio(1.0, 10, 1.0, 1.0)
    with pytest.raises(ValueError, match="no TTL"):
        ttl_model.ttl_for_hit_ratio(0.9, 10, 1.0, 1.0, max_ttl=1.0)


def test_resident_share_spans_fresh_time_to_always_stored() -> None:
    assert ttl_model.resident_share(2.0, 3.0, 0.0) == pytest.approx(ttl_model.hit_probability(2.0, 3.0))
    assert ttl_model.resident_share(2.0, 3.0, 1e6) == pytest.approx(1.0)
    one_key = ttl_model.hit_probability(1.0, 1.0)
    assert ttl_model.resident_entries(10, 0.0, 10.0, 1.0, 0.0) == pytest.approx(10 * one_key)


# ---------------------------------------------------------------------------------------------- finite window


@pytest.mark.parametrize("n", [1, 2, 5, 30])
@pytest.mark.parametrize("x", [0.01, 0.7, 3.0, 29.5, 80.0])
def test_regularized_gamma_p_matches_the_poisson_tail_for_integer_a(n: int, x: float) -> None:
    # P(n, x) = P(Poisson(x) >= n) = 1 - sum_{k<n} e^-x x^k / k!
    below = sum(math.exp(-x + k * math.log(x) - math.lgamma(k + 1)) for k in range(n))
    assert ttl_model.regularized_gamma_p(float(n), x) == pytest.approx(1.0 - below, abs=1e-12)


def test_regularized_gamma_p_edges() -> None:
    assert ttl_model.regularized_gamma_p(1.0, 0.0) == 0.0
    assert ttl_model.regularized_gamma_p(1.0, 2.0) == pytest.approx(1 - math.exp(-2.0))
    assert ttl_model.regularized_gamma_p(3.0, 1e4) == 1.0
    with pytest.raises(ValueError, match="positive"):
        ttl_model.regularized_gamma_p(0.0, 1.0)


def test_expected_fetches_limits() -> None:
    assert ttl_model.expected_fetches(3.0, 0.0, 10.0) == pytest.approx(30.0)  # no caching: every request fetches
    # TTL longer than the window: one fetch at most, if any request came
    assert ttl_model.expected_fetches(0.2, 50.0, 10.0) == pytest.approx(1 - math.exp(-2.0))
    # Very frequent requests: a fetch right at 0, T, 2T, ... -> ceil(D / T) fetches.
    assert ttl_model.expected_fetches(500.0, 5.0, 24.0) == pytest.approx(5.0, abs=1e-3)
    assert ttl_model.expected_fetches(0.0, 5.0, 24.0) == 0.0


def test_expected_fetches_tends_to_the_renewal_limit_and_the_rough_formula_overcounts() -> None:
    rate, ttl = 0.7, 3.0
    exact = ttl_model.expected_fetches(rate, ttl, 400.0)
    assert exact == pytest.approx(ttl_model.expected_fetches_asymptotic(rate, ttl, 400.0), abs=1e-9)
    # rough - exact -> 1/2 - 1/(2 (1 + λT)²): about half a fetch per key once λT is large
    over = ttl_model.expected_fetches_rough(rate, ttl, 400.0) - exact
    assert over == pytest.approx(0.5 - 0.5 / (1 + rate * ttl) ** 2, abs=1e-9)
    # Past 5000 expected fetches the renewal limit replaces the exact sum; just below, the two agree.
    limit = 5000.0 * (ttl + 1.0 / rate)
    below = ttl_model.expected_fetches(rate, ttl, limit * 0.999)
    assert below == pytest.approx(ttl_model.expected_fetches_asymptotic(rate, ttl, limit * 0.999), rel=1e-9)
    assert ttl_model.expected_fetches(rate, ttl, limit * 1.001) == ttl_model.expected_fetches_asymptotic(
        rate, ttl, limit * 1.001
    )


@pytest.mark.parametrize(("rate", "ttl", "window"), [(1.0, 5.0, 25.0), (0.1, 5.0, 25.0), (3.0, 0.5, 10.0)])
def test_expected_fetches_of_one_key_match_a_simulation(rate: float, ttl: float, window: float) -> None:
    runs = 3000
    total = sum(ttl_model.simulate(1, 0.0, rate, ttl, window, seed=seed)[1] for seed in range(runs))
    exact = ttl_model.expected_fetches(rate, ttl, window)
    # Fetches per run are bounded by ceil(window / ttl) + 1, so their sd is at most that; 4 sd of the mean.
    bound = 4 * (window / ttl + 1) / math.sqrt(runs)
    assert total / runs == pytest.approx(exact, abs=bound)


def test_a_short_zipf_run_from_cold_matches_a_simulation() -> None:
    # The shape of the real run in tests/notebooks (200 keys, s=1, ~90 req/s, TTL 5 s, 24 s).
    prediction = ttl_model.predict(200, 1.0, 90.0, 5.0, 24.0)
    results = [ttl_model.simulate(200, 1.0, 90.0, 5.0, 24.0, seed=seed) for seed in range(30)]
    requests = sum(r[0] for r in results)
    simulated_hit = 1 - sum(r[1] for r in results) / requests
    simulated_xcache = 1 - sum(r[2] for r in results) / requests
    assert simulated_hit == pytest.approx(prediction.hit_ratio, abs=0.005)
    assert simulated_xcache == pytest.approx(prediction.xcache_hit_ratio, abs=0.005)
    # The cold start matters here: the long-run figure is further off than the window's.
    assert abs(prediction.stationary_hit_ratio - simulated_hit) > abs(prediction.hit_ratio - simulated_hit)


def test_per_second_timelines_add_up_to_the_window_figures() -> None:
    keys, s, rate, ttl, seconds = 50, 1.0, 40.0, 3.0, 12
    per_second = ttl_model.hit_ratio_timeline(keys, s, rate, ttl, seconds)
    assert len(per_second) == seconds
    window = ttl_model.window_hit_ratio(keys, s, rate, ttl, seconds)
    assert sum(per_second) / seconds == pytest.approx(window, abs=1e-9)
    xcache = ttl_model.xcache_hit_ratio_timeline(keys, s, rate, seconds)
    prediction = ttl_model.predict(keys, s, rate, ttl, seconds)
    assert sum(xcache) / seconds == pytest.approx(prediction.xcache_hit_ratio, abs=1e-9)
    assert xcache == sorted(xcache)  # only first requests miss: it only goes up


# ---------------------------------------------------------------------------------------------- runs


def _summary(**overrides: object) -> dict[str, object]:
    summary: dict[str, object] = {
        "scenario": "steady",
        "settings": {"keys": 200, "zipf_s": 1.0},
        "answered": 2000,
        "duration_s": 25.0,
        "offload_ratio": 0.78,
        "hit_ratio": 0.91,
        "expected_upstream_requests": 500,
    }
    summary.update(overrides)
    return summary


def test_compare_run_uses_the_runs_achieved_rate_and_length() -> None:
    compared = agreement.compare_run(_summary(), 5.0)
    assert compared.inputs.rate == pytest.approx(80.0)
    assert compared.inputs.window_s == 25.0
    assert compared.measured_from == "stub"
    expected = ttl_model.predict(200, 1.0, 80.0, 5.0, 25.0)
    assert compared.prediction == expected
    assert compared.difference_pp == pytest.approx(100 * (0.78 - expected.hit_ratio))
    assert compared.xcache_difference_pp == pytest.approx(100 * (0.91 - expected.xcache_hit_ratio))
    text = "\n".join(compared.lines(5.0))
    assert "tolerance 5 pp" in text
    assert f"predicted {expected.hit_ratio:.1%}" in text


def test_without_a_stub_count_the_headers_measure() -> None:
    compared = agreement.compare_run(_summary(offload_ratio=None), 5.0)
    assert compared.measured_from == "headers"
    assert compared.measured_hit_ratio == pytest.approx(1 - 500 / 2000)


def test_compare_run_refuses_what_it_cannot_model() -> None:
    with pytest.raises(ValueError, match="steady"):
        agreement.compare_run(_summary(scenario="outage"), 5.0)
    with pytest.raises(ValueError, match=r"settings\.keys"):
        agreement.compare_run(_summary(settings={}), 5.0)
    with pytest.raises(ValueError, match="no requests"):
        agreement.compare_run(_summary(answered=0), 5.0)


# ---------------------------------------------------------------------------------------------- cost


def test_monthly_cost_line_items_by_hand() -> None:
    # 100 req/s for 730 h = 262.8 M requests; 90 % hits -> 26.28 M upstream requests.
    deployment = cost.Deployment(
        requests_per_second=100.0,
        hit_ratio=0.9,
        lambda_memory_mb=512.0,
        hit_duration_ms=10.0,
        miss_duration_ms=200.0,
        response_kb=1.0,
        request_overhead_kb=0.0,
    )
    prices = cost.Prices(upstream_per_call=0.001)
    month = cost.monthly_cost(deployment, prices)
    assert month.requests == pytest.approx(262.8e6)
    assert month.upstream_requests == pytest.approx(26.28e6)
    assert month.upstream_requests_saved == pytest.approx(236.52e6)
    items = month.items
    assert items["lambda requests"] == pytest.approx(262.8 * 0.20)
    # (236.52 M x 0.010 s + 26.28 M x 0.200 s) x 0.5 GB x price per GB-s
    assert items["lambda compute"] == pytest.approx((236.52e6 * 0.010 + 26.28e6 * 0.200) * 0.5 * 0.0000133334)
    assert items["api gateway"] == pytest.approx(262.8 * 3.50)
    assert items["nat gateway hours"] == pytest.approx(730 * 0.05)
    assert items["nat data processed"] == pytest.approx(26.28e6 / 1024**2 * 0.045)
    assert items["elasticache nodes"] == pytest.approx(730 * 0.016)
    assert items["upstream calls"] == pytest.approx(26.28e6 * 0.001)
    without = month.items_without_cache
    assert "nat gateway hours" not in without
    assert "elasticache nodes" not in without
    assert without["lambda compute"] == pytest.approx(262.8e6 * 0.200 * 0.5 * 0.0000133334)
    assert without["upstream calls"] == pytest.approx(262.8e6 * 0.001)
    assert month.total == pytest.approx(sum(items.values()))
    assert month.extra_cost < 0  # at a tenth of a cent per upstream call the cache pays for itself
    assert "pays for itself" in month.text()
    assert month.table()[-1] == ("total", month.total, month.total_without_cache)


def test_serverless_bills_the_minimum_storage_and_ecpus() -> None:
    deployment = cost.Deployment(10.0, 0.5, redis="serverless", stored_entries=100)
    month = cost.monthly_cost(deployment)
    requests = 10.0 * 730 * 3600
    assert month.items["elasticache serverless storage"] == pytest.approx(1.0 * 730 * 0.125)
    ecpu = requests * 0.5 * 1.0 + requests * 0.5 * 4.0
    assert month.items["elasticache serverless ecpu"] == pytest.approx(ecpu / 1e6 * 0.0034)
    assert "elasticache nodes" not in month.items


def test_costs_grow_with_traffic_and_a_cache_costs_more_when_traffic_is_low() -> None:
    base = cost.Deployment(requests_per_second=1.0, hit_ratio=0.8)
    costs = cost.cost_curve([1.0, 10.0, 100.0], [0.8, 0.8, 0.8], base)
    totals = [c.total for c in costs]
    assert totals == sorted(totals)
    assert costs[0].extra_cost > 0  # fixed NAT + node hours dominate at 1 req/s
    assert costs[0].cost_per_million_saved is not None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hit_ratio": 1.5}, "hit_ratio"),
        ({"requests_per_second": -1.0}, "requests_per_second"),
        ({"redis": "memcached"}, "redis"),
    ],
)
def test_bad_deployments_are_rejected(fields: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"requests_per_second": 1.0, "hit_ratio": 0.5, **fields}
    with pytest.raises(ValueError, match=message):
        cost.Deployment(**arguments)  # type: ignore[arg-type]
