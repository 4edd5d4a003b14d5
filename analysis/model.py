"""Predict a TTL cache's hit ratio under Zipf traffic, and what a deployment costs per month.

Pure functions (no I/O), used by notebooks/02_ttl_model.ipynb, its tests and anyone sizing a TTL.

The hit-ratio model
-------------------
* N keys; key i is requested with probability p_i = i^-s / sum_j j^-s (Zipf, s = 0 is uniform).
* Requests arrive as a Poisson process of rate λ, so key i sees its own Poisson process of rate λ_i = λ·p_i.
* A request that finds no fresh entry fetches from the upstream (a *fetch*); the entry it stores stays fresh
  for T seconds from that request's arrival and is not refreshed by hits. That is exactly this proxy: an
  entry's age starts with the response delay (RFC 9111 corrected initial age), so it expires T after the
  fetching request arrived; requests arriving while the fetch is in flight wait for it (collapsed, no upstream
  call).
* Stationary (a long run): the fetches of key i form a renewal process with cycle T + Exp(λ_i): one fetch,
  then T seconds of hits, then the wait for the next request. So P(hit) = λ_i·T / (1 + λ_i·T), and the hit
  ratio is sum_i p_i · λ_i·T / (1 + λ_i·T).
* A finite run of D seconds from a cold cache (`window_hit_ratio`): fetch n of key i happens at
  S_n = (n-1)·T + Gamma(n, λ_i), so the expected number of fetches is exactly
  E[M_i(D)] = sum_{n >= 1} P(Gamma(n, λ_i) <= D - (n-1)·T) (`expected_fetches`). For long windows it tends to
  D/μ + 1/2 + 1/(2λ²μ²) - 1/(λμ) with μ = T + 1/λ (renewal theory, `expected_fetches_asymptotic`); the rough
  1 + (λD - 1)/(1 + λT) over-counts by about half a fetch per key.

Two hit ratios, two definitions (both are predicted):

* *hit ratio* here = requests answered without an upstream request = 1 - fetches / requests. Measured by the
  stub's request counter (summary.json `offload_ratio`) or by the proxy's headers
  (1 - expected_upstream_requests / answered).
* *X-Cache hit ratio* (summary.json `hit_ratio`): when the upstream sends validators (ETag / Last-Modified;
  the stub does) and the resource has not changed, every fetch after the first is a conditional request
  answered 304, and the proxy reports it as `X-Cache: HIT` (`Cache-Status: fwd=stale; fwd-status=304`). Then
  only the first request of each key is a MISS: X-Cache hit ratio = 1 - E[distinct keys] / requests. Without
  validators both coincide.

Stale-while-revalidate does not change the upstream requests: this proxy's refresh is synchronous (the request
that takes the refresh lock fetches; only requests arriving during that fetch are answered STALE instead of
waiting), so the first request after expiry always costs one upstream request, as in the model. It only
relabels those overlapping requests; runs compared against the model set
CACHE_STALE_WHILE_REVALIDATE_SECONDS=0 so the labels match too.

The cost model (`monthly_cost`) prices one month (730 hours) of a deployment as `sam/template.yaml` builds it:
Lambda (requests + GB-seconds), API Gateway REST API, NAT gateway(s) (hours, public IPv4, GB processed by the
upstream calls), ElastiCache (nodes per hour, or Serverless GB-hours + ECPUs) and data transfer out, against a
baseline without a cache (no VPC, no NAT, no Redis; every request calls the upstream). Prices are inputs
(`Prices`, us-east-1 on-demand defaults); check the AWS pricing pages for your region.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

HOURS_PER_MONTH = 730.0  # AWS's billing convention
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0
# Beyond this many expected fetches per key the exact series is replaced by its renewal-theory limit (which
# is then accurate to far better than one part in a million).
_EXACT_FETCH_LIMIT = 5000.0
_EPS = 1e-15


# ---------------------------------------------------------------------------------------------- workload


def zipf_probabilities(keys: int, s: float) -> FloatArray:
    """p_i of keys 1..N under Zipf(s) (s = 0: uniform); the same weights as loadtests.workload.Zipf."""
    if keys < 1:
        raise ValueError(f"the key space needs at least one key (got {keys})")
    if s < 0 or not math.isfinite(s):
        raise ValueError(f"the Zipf exponent must be finite and >= 0 (got {s})")
    weights = np.arange(1, keys + 1, dtype=np.float64) ** -s
    out: FloatArray = weights / weights.sum()
    return out


def _check_rate_ttl(rate: float, ttl: float) -> None:
    if rate < 0 or not math.isfinite(rate):
        raise ValueError(f"the request rate must be finite and >= 0 (got {rate})")
    if ttl < 0 or not math.isfinite(ttl):
        raise ValueError(f"the TTL must be finite and >= 0 (got {ttl})")


# ---------------------------------------------------------------------------------------------- stationary


def hit_probability(rate: float, ttl: float) -> float:
    """P(hit) of one key with Poisson requests at `rate`/s and a TTL of `ttl` s, long run: λT/(1+λT)."""
    _check_rate_ttl(rate, ttl)
    x = rate * ttl
    return x / (1.0 + x)


def hit_ratio(keys: int, zipf_s: float, rate: float, ttl: float) -> float:
    """Long-run share of requests answered without an upstream request: sum_i p_i λ_i T / (1 + λ_i T)."""
    _check_rate_ttl(rate, ttl)
    p = zipf_probabilities(keys, zipf_s)
    x = rate * ttl * p
    return float(np.sum(p * x / (1.0 + x)))


def ttl_for_hit_ratio(target: float, keys: int, zipf_s: float, rate: float, *, max_ttl: float = 1e9) -> float:
    """The shortest TTL whose long-run hit ratio reaches `target` (bisection; the hit ratio grows with T)."""
    if not 0.0 <= target < 1.0:
        raise ValueError(f"the target hit ratio must be in [0, 1) (got {target})")
    if rate <= 0:
        raise ValueError("without requests there are no hits: give a positive rate")
    if hit_ratio(keys, zipf_s, rate, max_ttl) < target:
        raise ValueError(f"no TTL up to {max_ttl:g} s reaches a hit ratio of {target}")
    lo, hi = 0.0, max_ttl
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if hit_ratio(keys, zipf_s, rate, mid) >= target:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-9 * max(1.0, hi):
            break
    return hi


def resident_share(rate: float, ttl: float, keep: float) -> float:
    """Long-run share of time one key's entry is stored, when Redis keeps it `keep` s past expiry (stale
    windows).

    The cycle is T + Exp(λ); the entry is stored during T + min(Exp(λ), keep):
    (λT + 1 - e^(-λ·keep)) / (1 + λT).
    """
    _check_rate_ttl(rate, ttl)
    if keep < 0:
        raise ValueError(f"keep must be >= 0 (got {keep})")
    if rate == 0:
        return 0.0
    return (rate * ttl - math.expm1(-rate * keep)) / (1.0 + rate * ttl)


def resident_entries(keys: int, zipf_s: float, rate: float, ttl: float, keep: float = 0.0) -> float:
    """Expected number of entries stored at any time (the Redis working set in entries)."""
    _check_rate_ttl(rate, ttl)
    lam = rate * zipf_probabilities(keys, zipf_s)
    share = (lam * ttl - np.expm1(-lam * keep)) / (1.0 + lam * ttl)
    return float(np.sum(share))


# ---------------------------------------------------------------------------------------------- finite window


def regularized_gamma_p(a: float, x: float) -> float:
    """P(a, x), the regularized lower incomplete gamma function: the CDF at x of a Gamma(a, 1) variable
    (series or continued fraction)."""
    if a <= 0:
        raise ValueError(f"a must be positive (got {a})")
    if x <= 0:
        return 0.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:  # series: converges fast below the mode
        term = total = 1.0 / a
        ap = a
        for _ in range(100_000):
            ap += 1.0
            term *= x / ap
            total += term
            if term < total * _EPS:
                break
        return min(1.0, total * math.exp(log_prefix))
    # Lentz's continued fraction for Q(a, x) = 1 - P(a, x)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return max(0.0, 1.0 - math.exp(log_prefix) * h)


def expected_fetches_asymptotic(rate: float, ttl: float, window: float) -> float:
    """The long-window limit of `expected_fetches`: D/μ + E[Y²]/(2μ²) - E[X₀]/μ, with μ = T + 1/λ."""
    _check_rate_ttl(rate, ttl)
    if rate == 0 or window <= 0:
        return 0.0
    mu = ttl + 1.0 / rate
    return window / mu + 0.5 + 1.0 / (2.0 * rate * rate * mu * mu) - 1.0 / (rate * mu)


def expected_fetches(rate: float, ttl: float, window: float) -> float:
    """Expected upstream requests of one key over `window` seconds from a cold cache (exact, see module doc).

    Fetch n happens at (n-1)·T + Gamma(n, λ): E[M(D)] = sum_n P(Gamma(n, λ) <= D - (n-1)T). Terms shrink with
    n; the sum stops once they are negligible.
    """
    _check_rate_ttl(rate, ttl)
    if rate == 0 or window <= 0:
        return 0.0
    if ttl == 0:
        return rate * window  # nothing is ever fresh: every request fetches
    if window / (ttl + 1.0 / rate) > _EXACT_FETCH_LIMIT:
        return expected_fetches_asymptotic(rate, ttl, window)
    total = 0.0
    n = 1
    while (n - 1) * ttl < window:
        term = regularized_gamma_p(float(n), rate * (window - (n - 1) * ttl))
        total += term
        if term < 1e-13:
            break
        n += 1
    return total


def expected_fetches_rough(rate: float, ttl: float, window: float) -> float:
    """The back-of-the-envelope 1 + (λD - 1)/(1 + λT), kept for comparison: in a long window it over-counts by
    1/2 - 1/(2(1 + λT)²), about half a fetch per key."""
    _check_rate_ttl(rate, ttl)
    if rate * window <= 1.0:
        return rate * window
    return 1.0 + (rate * window - 1.0) / (1.0 + rate * ttl)


@dataclass(frozen=True)
class Prediction:
    """What the model expects from a run of `window_s` seconds at `rate` requests/s from a cold cache."""

    keys: int
    zipf_s: float
    rate: float
    ttl_s: float
    window_s: float
    requests: float  # λD
    upstream_requests: float  # expected fetches over the window
    distinct_keys: float  # expected keys requested at least once (the cold MISSes)
    hit_ratio: float  # 1 - fetches / requests over the window (cold start included)
    stationary_hit_ratio: float  # the long-run hit ratio (no cold start)
    xcache_hit_ratio: float  # 1 - distinct / requests: X-Cache's HIT share when expiries revalidate with 304

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def predict(keys: int, zipf_s: float, rate: float, ttl: float, window: float) -> Prediction:
    """The model's figures for a run; see `Prediction`."""
    _check_rate_ttl(rate, ttl)
    if window <= 0 or not math.isfinite(window):
        raise ValueError(f"the window must be a positive number of seconds (got {window})")
    p = zipf_probabilities(keys, zipf_s)
    requests = rate * window
    fetches = sum(expected_fetches(rate * float(pi), ttl, window) for pi in p)
    distinct = float(np.sum(-np.expm1(-rate * window * p)))
    return Prediction(
        keys=keys,
        zipf_s=zipf_s,
        rate=rate,
        ttl_s=ttl,
        window_s=window,
        requests=requests,
        upstream_requests=fetches,
        distinct_keys=distinct,
        hit_ratio=1.0 - fetches / requests if requests > 0 else 0.0,
        stationary_hit_ratio=hit_ratio(keys, zipf_s, rate, ttl),
        xcache_hit_ratio=1.0 - distinct / requests if requests > 0 else 0.0,
    )


def window_hit_ratio(keys: int, zipf_s: float, rate: float, ttl: float, window: float) -> float:
    """Share of requests answered without an upstream request over a run of `window` s from a cold cache."""
    return predict(keys, zipf_s, rate, ttl, window).hit_ratio


# ---------------------------------------------------------------------------------------------- simulation


def simulate(
    keys: int, zipf_s: float, rate: float, ttl: float, window: float, *, seed: int = 0
) -> tuple[int, int, int]:
    """A discrete-event check of the model: Poisson requests with Zipf keys into a TTL cache, from cold.

    Returns (requests, upstream fetches, distinct keys). Pure Python; keep rate·window modest.
    """
    _check_rate_ttl(rate, ttl)
    rng = np.random.default_rng(seed)
    p = zipf_probabilities(keys, zipf_s)
    count = int(rng.poisson(rate * window))
    times = np.sort(rng.uniform(0.0, window, size=count))  # a Poisson process, conditioned on its count
    drawn = rng.choice(keys, size=count, p=p)
    expires: dict[int, float] = {}
    fetches = 0
    for t, key in zip(times.tolist(), drawn.tolist(), strict=True):
        if t >= expires.get(key, -math.inf):
            fetches += 1
            expires[key] = t + ttl
    return count, fetches, len(expires)


# ---------------------------------------------------------------------------------------------- measured runs


@dataclass(frozen=True)
class RunInputs:
    """The model's inputs as a steady run realised them (summary.json + the proxy's TTL)."""

    keys: int
    zipf_s: float
    rate: float  # requests/s through the proxy, as achieved (answered / duration)
    window_s: float
    ttl_s: float
    requests: int  # requests the proxy answered


def run_inputs(summary: Mapping[str, Any], ttl_s: float) -> RunInputs:
    """Read a steady run's workload from its summary.json; the TTL comes from the proxy's configuration."""
    if summary.get("scenario") != "steady":
        raise ValueError(
            f"the model predicts steady runs, not {summary.get('scenario')!r} ones: measure one with "
            "`cachelab load steady` (a cachelab demo run is an outage run)"
        )
    settings = summary.get("settings") or {}
    if "keys" not in settings or "zipf_s" not in settings:
        raise ValueError("summary.json has no settings.keys / settings.zipf_s: not a steady-style run")
    answered = int(summary["answered"])
    duration = float(summary["duration_s"])
    if answered <= 0 or duration <= 0:
        raise ValueError("the run answered no requests through the proxy")
    return RunInputs(
        keys=int(settings["keys"]),
        zipf_s=float(settings["zipf_s"]),
        rate=answered / duration,
        window_s=duration,
        ttl_s=float(ttl_s),
        requests=answered,
    )


@dataclass(frozen=True)
class Agreement:
    """Predicted against measured, in percentage points (measured - predicted)."""

    inputs: RunInputs
    prediction: Prediction
    measured_hit_ratio: float  # share answered without an upstream request (stub counter, else headers)
    measured_from: str  # "stub" (offload_ratio) or "headers" (1 - expected_upstream_requests / answered)
    measured_xcache_hit_ratio: float | None  # summary.json hit_ratio
    difference_pp: float
    xcache_difference_pp: float | None

    def within(self, tolerance_pp: float) -> bool:
        return abs(self.difference_pp) <= tolerance_pp

    def lines(self, tolerance_pp: float = 5.0) -> list[str]:
        """A human-readable comparison (what the notebook prints)."""
        p, i = self.prediction, self.inputs
        verdict = "OK" if self.within(tolerance_pp) else "OUTSIDE"
        out = [
            f"run: {i.keys} keys, zipf s={i.zipf_s:g}, {i.rate:.1f} req/s for {i.window_s:.1f} s, "
            f"TTL {i.ttl_s:g} s, {i.requests} requests",
            f"hit ratio (no upstream request): predicted {p.hit_ratio:.1%}  "
            f"measured {self.measured_hit_ratio:.1%} ({self.measured_from})  "
            f"difference {self.difference_pp:+.1f} pp  "
            f"(tolerance {tolerance_pp:g} pp: {verdict})",
            f"  long-run (no cold start) prediction {p.stationary_hit_ratio:.1%}; "
            f"upstream requests predicted {p.upstream_requests:.0f}",
        ]
        if self.measured_xcache_hit_ratio is not None and self.xcache_difference_pp is not None:
            out.append(
                f"X-Cache hit ratio (304 revalidations count as HIT): predicted {p.xcache_hit_ratio:.1%}  "
                f"measured {self.measured_xcache_hit_ratio:.1%}  "
                f"difference {self.xcache_difference_pp:+.1f} pp"
            )
        return out


def measured_hit_ratio(summary: Mapping[str, Any]) -> tuple[float, str]:
    """Share of proxy requests answered without an upstream request: the stub's count, else the headers'."""
    offload = summary.get("offload_ratio")
    if offload is not None:
        return float(offload), "stub"
    answered = int(summary.get("answered") or 0)
    if answered <= 0:
        raise ValueError("the run answered no requests through the proxy")
    return 1.0 - float(summary["expected_upstream_requests"]) / answered, "headers"


def compare_run(summary: Mapping[str, Any], ttl_s: float) -> Agreement:
    """Predict a steady run from its own settings and achieved rate, and set the prediction against it."""
    inputs = run_inputs(summary, ttl_s)
    prediction = predict(inputs.keys, inputs.zipf_s, inputs.rate, inputs.ttl_s, inputs.window_s)
    measured, source = measured_hit_ratio(summary)
    raw_xcache = summary.get("hit_ratio")
    xcache = None if raw_xcache is None else float(raw_xcache)
    return Agreement(
        inputs=inputs,
        prediction=prediction,
        measured_hit_ratio=measured,
        measured_from=source,
        measured_xcache_hit_ratio=xcache,
        difference_pp=100.0 * (measured - prediction.hit_ratio),
        xcache_difference_pp=None if xcache is None else 100.0 * (xcache - prediction.xcache_hit_ratio),
    )


# ---------------------------------------------------------------------------------------------- cost


@dataclass(frozen=True)
class Prices:
    """Unit prices in USD (us-east-1 on-demand, 2025; edit for your region and date)."""

    lambda_per_million_requests: float = 0.20
    lambda_per_gb_second: float = 0.0000133334  # arm64 (the template's default); x86_64: 0.0000166667
    api_gateway_rest_per_million: float = 3.50  # first 333 million requests a month
    nat_gateway_per_hour: float = 0.045
    nat_per_gb: float = 0.045  # data processed
    public_ipv4_per_hour: float = 0.005  # each NAT gateway's Elastic IP
    elasticache_node_per_hour: float = 0.016  # cache.t4g.micro
    serverless_per_gb_hour: float = 0.125  # ElastiCache Serverless for Redis OSS, data stored (minimum 1 GB)
    serverless_min_gb: float = 1.0
    serverless_per_million_ecpu: float = 0.0034
    data_transfer_out_per_gb: float = 0.09  # responses to the internet (the same with or without a cache)
    upstream_per_call: float = 0.0  # what the external API charges per request (0: free, or unknown)


@dataclass(frozen=True)
class Deployment:
    """What one month of traffic and the deployment look like."""

    requests_per_second: float  # average over the month
    hit_ratio: float  # requests answered without an upstream request (from the model or a run)
    redis: Literal["elasticache", "serverless"] = "elasticache"
    cache_nodes: int = 1  # elasticache: 1, or 2 with MultiAZ=true
    nat_gateways: int = 1  # 1, or 2 with MultiAZ=true
    lambda_memory_mb: float = 256.0
    hit_duration_ms: float = 5.0  # billed Lambda time of a cache hit
    miss_duration_ms: float = 150.0  # billed Lambda time of a request that waits for the upstream
    response_kb: float = 2.0  # response body size
    request_overhead_kb: float = 0.5  # request + headers through the NAT per upstream call
    stored_entries: float = 0.0  # serverless: entries kept in Redis (model.resident_entries)
    ecpu_per_hit: float = 1.0  # one GET of <= 1 KB
    ecpu_per_fetch: float = 4.0  # GET, lock SET NX, entry SET, lock DEL

    def __post_init__(self) -> None:
        if self.requests_per_second < 0 or not math.isfinite(self.requests_per_second):
            raise ValueError(f"requests_per_second must be finite and >= 0 (got {self.requests_per_second})")
        if not 0.0 <= self.hit_ratio <= 1.0:
            raise ValueError(f"hit_ratio must be between 0 and 1 (got {self.hit_ratio})")
        if self.redis not in ("elasticache", "serverless"):
            raise ValueError(f"redis must be 'elasticache' or 'serverless' (got {self.redis!r})")


@dataclass(frozen=True)
class MonthlyCost:
    """One month: line items (USD) with and without the cache, and the upstream requests it saves."""

    requests: float
    upstream_requests: float
    upstream_requests_without_cache: float
    items: dict[str, float] = field(default_factory=dict)
    items_without_cache: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.items.values())

    @property
    def total_without_cache(self) -> float:
        return sum(self.items_without_cache.values())

    @property
    def upstream_requests_saved(self) -> float:
        return self.upstream_requests_without_cache - self.upstream_requests

    @property
    def extra_cost(self) -> float:
        """What the cache adds to the bill (negative: it pays for itself)."""
        return self.total - self.total_without_cache

    @property
    def cost_per_million_saved(self) -> float | None:
        """Extra cost per million upstream requests saved (None when nothing is saved)."""
        saved = self.upstream_requests_saved
        return None if saved <= 0 else self.extra_cost / saved * 1e6

    def text(self) -> str:
        """The line items side by side, and what the cache saves (what the notebook prints)."""
        lines = [f"{'item':<32}{'with cache':>14}{'without':>14}"]
        lines += [f"{name:<32}{a:>14,.2f}{b:>14,.2f}" for name, a, b in self.table()]
        lines.append(
            f"requests {self.requests / 1e6:,.1f} M/month; "
            f"upstream requests {self.upstream_requests / 1e6:,.2f} M "
            f"with the cache, {self.upstream_requests_without_cache / 1e6:,.1f} M without: "
            f"{self.upstream_requests_saved / 1e6:,.2f} M saved"
        )
        per = self.cost_per_million_saved
        verdict = "the cache pays for itself" if self.extra_cost <= 0 else "the cache costs"
        lines.append(
            f"{verdict}: {self.extra_cost:+,.2f} USD/month"
            + ("" if per is None else f" ({per:+,.2f} USD per million upstream requests saved)")
        )
        return "\n".join(lines)

    def table(self) -> list[tuple[str, float, float]]:
        """(item, with cache, without cache) rows, then the total."""
        names = list(dict.fromkeys([*self.items, *self.items_without_cache]))
        rows = [(n, self.items.get(n, 0.0), self.items_without_cache.get(n, 0.0)) for n in names]
        rows.append(("total", self.total, self.total_without_cache))
        return rows


def monthly_cost(deployment: Deployment, prices: Prices | None = None) -> MonthlyCost:
    """Price one month of `deployment` with a cache, and the same traffic without one (see module doc)."""
    pr = prices or Prices()
    d = deployment
    requests = d.requests_per_second * SECONDS_PER_MONTH
    fetches = requests * (1.0 - d.hit_ratio)
    hits = requests - fetches
    gb = d.lambda_memory_mb / 1024.0

    def lambda_items(hit_count: float, fetch_count: float) -> dict[str, float]:
        seconds = (hit_count * d.hit_duration_ms + fetch_count * d.miss_duration_ms) / 1000.0
        return {
            "lambda requests": requests / 1e6 * pr.lambda_per_million_requests,
            "lambda compute": seconds * gb * pr.lambda_per_gb_second,
            "api gateway": requests / 1e6 * pr.api_gateway_rest_per_million,
            "data transfer out": requests * d.response_kb / 1024.0 / 1024.0 * pr.data_transfer_out_per_gb,
        }

    items = lambda_items(hits, fetches)
    upstream_gb = fetches * (d.response_kb + d.request_overhead_kb) / 1024.0 / 1024.0
    nat_hourly = pr.nat_gateway_per_hour + pr.public_ipv4_per_hour
    items["nat gateway hours"] = d.nat_gateways * HOURS_PER_MONTH * nat_hourly
    items["nat data processed"] = upstream_gb * pr.nat_per_gb
    if d.redis == "elasticache":
        items["elasticache nodes"] = d.cache_nodes * HOURS_PER_MONTH * pr.elasticache_node_per_hour
    else:
        stored_gb = max(pr.serverless_min_gb, d.stored_entries * d.response_kb / 1024.0 / 1024.0)
        items["elasticache serverless storage"] = stored_gb * HOURS_PER_MONTH * pr.serverless_per_gb_hour
        ecpu = hits * d.ecpu_per_hit + fetches * d.ecpu_per_fetch
        items["elasticache serverless ecpu"] = ecpu / 1e6 * pr.serverless_per_million_ecpu
    items["upstream calls"] = fetches * pr.upstream_per_call
    without = lambda_items(0.0, requests)
    without["upstream calls"] = requests * pr.upstream_per_call
    return MonthlyCost(
        requests=requests,
        upstream_requests=fetches,
        upstream_requests_without_cache=requests,
        items=items,
        items_without_cache=without,
    )


def cost_curve(
    rates: Sequence[float], hit_ratios: Sequence[float], base: Deployment, prices: Prices | None = None
) -> list[MonthlyCost]:
    """`monthly_cost` for each (rate, hit ratio) pair, everything else as in `base`."""
    return [
        monthly_cost(replace(base, requests_per_second=r, hit_ratio=h), prices)
        for r, h in zip(rates, hit_ratios, strict=True)
    ]


def hit_ratio_timeline(keys: int, zipf_s: float, rate: float, ttl: float, seconds: int) -> list[float]:
    """Expected hit ratio in each whole second 0..seconds-1 of a run from a cold cache (the warm-up curve).

    Second k: 1 - (E[fetches by k+1] - E[fetches by k]) / λ, summed over keys.
    """
    _check_rate_ttl(rate, ttl)
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0 (got {seconds})")
    if rate == 0:
        return [0.0] * seconds
    fetched = np.zeros(seconds + 1)
    for pi in zipf_probabilities(keys, zipf_s).tolist():
        fetched += np.array([expected_fetches(rate * pi, ttl, float(t)) for t in range(seconds + 1)])
    return [1.0 - float(f) / rate for f in np.diff(fetched)]


def xcache_hit_ratio_timeline(keys: int, zipf_s: float, rate: float, seconds: int) -> list[float]:
    """Expected X-Cache hit ratio per second from a cold cache when expiries revalidate with 304 (only each
    key's first request is a MISS): second k is 1 - sum_i (e^(-λ_i k) - e^(-λ_i (k+1))) / λ."""
    _check_rate_ttl(rate, 0.0)
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0 (got {seconds})")
    if rate == 0:
        return [0.0] * seconds
    lam = rate * zipf_probabilities(keys, zipf_s)
    out: list[float] = []
    for k in range(seconds):
        first = float(np.sum(np.exp(-lam * k) - np.exp(-lam * (k + 1))))
        out.append(1.0 - first / rate)
    return out
