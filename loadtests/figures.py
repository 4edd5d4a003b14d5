"""The headline figures of recorded samples: counts, ratios, latency percentiles and errors of one phase, group or
target (what summary.json and the progress lines report).
"""

from __future__ import annotations

from typing import Any

from loadtests.histogram import Histogram
from loadtests.measurements import (
    CACHE_STATUSES,
    CONNECTION,
    OTHER_ERROR,
    TARGET_PROXY,
    TIMEOUT,
    Measurements,
    SampleKey,
    is_answered,
    is_available,
    is_error_status,
    is_failure,
    outcome_status,
)

PERCENTILES: tuple[tuple[str, float], ...] = (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99))


def rounded_ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def ratio(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 6)


def latency_figures(hist: Histogram) -> dict[str, Any]:
    out: dict[str, Any] = {"count": hist.count}
    for name, q in PERCENTILES:
        out[name] = rounded_ms(hist.percentile(q))
    return out


def selects(key: SampleKey, phase: str | None, group: str | None, target: str | None) -> bool:
    return (
        (phase is None or key.phase == phase)
        and (group is None or key.group == group)
        and (target is None or key.target == target)
    )


def figures(
    m: Measurements, *, phase: str | None = None, group: str | None = None, target: str | None = None
) -> dict[str, Any]:
    """The headline figures of the samples of one phase / group / target (None: any).

    Ratios are None when their denominator is zero; percentiles are None for an empty status. Availability is
    the proxy's (direct upstream calls are a baseline, with their own figure under target="upstream").
    """
    keys = [k for k in m.hist if selects(k, phase, group, target)]
    availability_target = TARGET_PROXY if target is None else target
    total = Histogram()
    by_cache: dict[str, Histogram] = {s: Histogram() for s in CACHE_STATUSES}
    requests = failures = availability_requests = available = 0
    proxy_answered = hits = stale = 0
    revalidations = forwarded = collapsed = 0
    errors_by_status: dict[str, int] = {}
    errors = {TIMEOUT: 0, CONNECTION: 0, OTHER_ERROR: 0}
    for key in keys:
        hist = m.hist[key]
        n = hist.count
        requests += n
        total.merge(hist)
        by_cache.setdefault(key.cache, Histogram()).merge(hist)
        if is_failure(key.outcome):
            failures += n
        if key.target == availability_target:
            availability_requests += n
            if is_available(key.outcome):
                available += n
        status = outcome_status(key.outcome)
        if status is not None and is_error_status(status):
            errors_by_status[str(status)] = errors_by_status.get(str(status), 0) + n
        elif key.outcome in errors:
            errors[key.outcome] += n
        if key.target == TARGET_PROXY:
            if is_answered(key.outcome):
                proxy_answered += n
                if key.cache == "HIT":
                    hits += n
                elif key.cache == "STALE":
                    stale += n
            if key.cache == "HIT" and key.fwd and not key.collapsed:
                revalidations += n
            if key.fwd and not key.collapsed:
                forwarded += n
            if key.collapsed:
                collapsed += n
    by_status_out = {
        name: latency_figures(hist) for name, hist in by_cache.items() if name in CACHE_STATUSES or hist.count
    }
    latency = latency_figures(total)
    latency.pop("count")
    latency["mean_ms"] = rounded_ms(total.mean)
    latency["max_ms"] = rounded_ms(total.max_ms if total.count else None)
    miss = by_cache["MISS"].count
    bypass = by_cache["BYPASS"].count
    return {
        "requests": requests,
        "failures": failures,
        "answered": proxy_answered,
        "hit_ratio": ratio(hits, proxy_answered),
        "cache_served_ratio": ratio(hits + stale, proxy_answered),
        "availability": ratio(available, availability_requests),
        "by_cache_status": by_status_out,
        "latency": latency,
        "errors": {
            "total": sum(errors_by_status.values()) + sum(errors.values()),
            "by_status": dict(sorted(errors_by_status.items())),
            **errors,
        },
        "revalidations": revalidations,
        "forwarded": forwarded,
        "collapsed": collapsed,
        # What the proxy must have asked the upstream for, by X-Cache: each MISS and BYPASS, plus each
        # revalidation (a HIT whose Cache-Status has fwd=, e.g. fwd=stale; fwd-status=304, and not collapsed).
        "expected_upstream_requests": miss + bypass + revalidations,
    }
