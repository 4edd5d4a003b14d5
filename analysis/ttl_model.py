"""Predict a TTL cache's hit ratio under Zipf traffic (the cost of a deployment: analysis.cost; the model against a
measured run: analysis.agreement).

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

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
