"""The figures per TTL, priced with analysis.cost, as text, JSON and a chart (a matplotlib Figure, no pyplot)."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from analysis.cost import Deployment, MonthlyCost, Prices, monthly_cost
from whatif.simulator import SimConfig, TtlResult
from whatif.trace import Problems, TraceStats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SCHEMA = "cachelab.whatif/1"
_DEPLOYMENT_FIXED = {"requests_per_second", "hit_ratio", "stored_entries"}  # taken from the trace and simulation


class PricesError(ValueError):
    """A --prices file that cannot be used; the message says why."""


@dataclass(frozen=True)
class CostInputs:
    """Unit prices and the deployment's shape (everything but the traffic, which comes from the log)."""

    prices: Prices = field(default_factory=Prices)
    deployment: Mapping[str, Any] = field(default_factory=dict)  # Deployment fields to override


def cost_inputs(data: object) -> CostInputs:
    """A --prices document: Prices fields at the top level, or {"prices": {...}, "deployment": {...}}."""
    if not isinstance(data, Mapping):
        raise PricesError("the prices file must hold a JSON object")
    price_fields = {f.name for f in dataclasses.fields(Prices)}
    deployment_fields = {f.name for f in dataclasses.fields(Deployment)} - _DEPLOYMENT_FIXED
    nested = "prices" in data or "deployment" in data
    prices = data.get("prices", {}) if nested else data
    deployment = data.get("deployment", {}) if nested else {}
    if nested and set(data) - {"prices", "deployment"}:
        raise PricesError(f"unknown top-level field(s): {', '.join(sorted(set(data) - {'prices', 'deployment'}))}")
    if not isinstance(prices, Mapping) or not isinstance(deployment, Mapping):
        raise PricesError('"prices" and "deployment" must be JSON objects')
    for name, given, known in (("price", prices, price_fields), ("deployment", deployment, deployment_fields)):
        unknown = set(given) - known
        if unknown:
            raise PricesError(
                f"unknown {name} field(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
    for name, value in prices.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise PricesError(f"price {name} must be a number >= 0, not {value!r}")
    try:
        Deployment(requests_per_second=0.0, hit_ratio=0.0, **deployment)
    except (TypeError, ValueError) as exc:
        raise PricesError(f"deployment: {exc}") from None
    return CostInputs(Prices(**{k: float(v) for k, v in prices.items()}), dict(deployment))


def cost_of(result: TtlResult, stats: TraceStats, inputs: CostInputs) -> MonthlyCost | None:
    """One month of the log's average traffic under this TTL (None when the log spans no time)."""
    if stats.duration <= 0 or result.requests == 0:
        return None
    shape: dict[str, Any] = {}
    if stats.mean_size is not None:
        shape["response_kb"] = stats.mean_size / 1024.0
    shape.update(inputs.deployment)
    deployment = Deployment(
        requests_per_second=result.requests / stats.duration,
        hit_ratio=result.saved_share,
        stored_entries=float(result.peak_entries),
        **shape,
    )
    return monthly_cost(deployment, inputs.prices)


@dataclass
class Report:
    """Everything `cachelab whatif` prints and writes."""

    log: str
    fmt: str
    config: SimConfig
    stats: TraceStats
    problems: Problems
    results: list[TtlResult]
    costs: list[MonthlyCost | None]
    host: str | None = None
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        stats = self.stats
        mean_latency = stats.mean_latency
        return {
            "schema": SCHEMA,
            "log": self.log,
            "format": self.fmt,
            "settings": {
                "ttls_s": list(self.config.ttls),
                "stale_while_revalidate_s": self.config.stale_while_revalidate,
                "stale_if_error_s": self.config.stale_if_error,
                "negative_ttl_s": self.config.negative_ttl,
                "upstream_timeout_s": self.config.upstream_timeout,
                "latency_ms": self.config.latency * 1000.0,
                "key_headers": list(self.config.key_headers),
                "host": self.host,
            },
            "trace": {
                "lines": stats.lines,
                "requests": stats.requests,
                "start": _iso(stats.first) if stats.requests else None,
                "end": _iso(stats.last) if stats.requests else None,
                "duration_s": round(stats.duration, 3),
                "rate_rps": round(stats.requests / stats.duration, 3) if stats.duration > 0 else None,
                "recorded_failures": stats.recorded_failures,
                "mean_latency_ms": None if mean_latency is None else round(mean_latency * 1000.0, 3),
                "mean_response_bytes": None if stats.mean_size is None else round(stats.mean_size, 1),
                "reordered": stats.reordered,
            },
            "problems": self.problems.to_json(),
            "results": [_result_json(r, c) for r, c in zip(self.results, self.costs, strict=True)],
            "notes": list(self.notes),
            "elapsed_s": round(self.elapsed_s, 3),
        }

    def text(self) -> str:
        s = self.stats
        span = f"{_iso(s.first)} .. {_iso(s.last)} ({s.duration:,.0f} s)" if s.requests else "-"
        rate = f"{s.requests / s.duration:,.2f} req/s" if s.duration > 0 else "-"
        lines = [
            f"{self.log} ({self.fmt}): {s.requests:,} GET/HEAD requests of {s.lines:,} lines, {span}, {rate}",
            f"proxy settings: stale-while-revalidate {self.config.stale_while_revalidate:g} s, stale-if-error "
            f"{self.config.stale_if_error:g} s, negative TTL {self.config.negative_ttl:g} s, upstream latency "
            + (
                f"as recorded (mean {s.mean_latency * 1000:,.0f} ms)"
                if s.mean_latency is not None
                else f"{self.config.latency * 1000:g} ms (none recorded)"
            ),
            "",
            f"{'TTL s':>8}{'hit ratio':>11}{'upstream':>11}{'saved':>8}{'worst minute':>20}{'STALE':>8}"
            f"{'errors':>8}{'entries':>9}{'USD/month':>12}{'no cache':>11}",
        ]
        for result, cost in zip(self.results, self.costs, strict=True):
            worst = result.worst_minute
            worst_text = f"{worst.upstream_requests:,}/{worst.requests:,} req" if worst else "-"
            lines.append(
                f"{result.ttl:>8g}{result.hit_ratio:>11.1%}{result.upstream_requests:>11,}{result.saved_share:>8.1%}"
                f"{worst_text:>20}{result.stale:>8,}{result.errors:>8,}{result.peak_entries:>9,}"
                + (f"{cost.total:>12,.2f}{cost.total_without_cache:>11,.2f}" if cost else f"{'-':>12}{'-':>11}")
            )
        lines.append(
            "hit ratio: answered from a fresh entry without an upstream request; saved: share of requests that "
            "needed no upstream request (STALE answers too); worst minute: upstream requests / requests in the "
            "minute with the most upstream requests; entries: most entries Redis held at once"
        )
        if s.recorded_failures:
            lines.append(f"the log shows {s.recorded_failures:,} upstream failures (5xx)")
        if self.problems.total:
            lines.append(f"left out of the simulation ({self.problems.total:,} lines):")
            lines.extend("  " + line for line in self.problems.lines())
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


def _result_json(result: TtlResult, cost: MonthlyCost | None) -> dict[str, Any]:
    worst = result.worst_minute
    return {
        "ttl_s": result.ttl,
        "requests": result.requests,
        "upstream_requests": result.upstream_requests,
        "saved": result.saved,
        "saved_share": round(result.saved_share, 6),
        "hit_ratio": round(result.hit_ratio, 6),
        "hits": result.hits,
        "collapsed": result.collapsed,
        "misses": result.misses,
        "stale": result.stale,
        "stale_while_revalidate": result.stale_while_revalidate,
        "stale_if_error": result.stale_if_error,
        "errors": result.errors,
        "during_refresh": result.during_refresh,
        "peak_entries": result.peak_entries,
        "worst_minute": None
        if worst is None
        else {
            "start": _iso(worst.start),
            "requests": worst.requests,
            "upstream_requests": worst.upstream_requests,
            "saved_share": round(worst.saved_share, 6),
        },
        "monthly_cost": None if cost is None else _cost_json(cost),
    }


def _cost_json(cost: MonthlyCost) -> dict[str, Any]:
    return {
        "total_usd": round(cost.total, 2),
        "without_cache_usd": round(cost.total_without_cache, 2),
        "extra_usd": round(cost.extra_cost, 2),
        "requests": round(cost.requests),
        "upstream_requests": round(cost.upstream_requests),
        "items_usd": {k: round(v, 2) for k, v in cost.items.items()},
        "items_without_cache_usd": {k: round(v, 2) for k, v in cost.items_without_cache.items()},
    }


def _iso(seconds: float) -> str:
    whole = math.floor(seconds)
    millis = round((seconds - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def chart(results: Sequence[TtlResult], costs: Sequence[MonthlyCost | None], *, title: str = "") -> Figure:
    """Hit ratio and upstream share saved against TTL (left), monthly cost with and without the cache (right)."""
    from matplotlib.figure import Figure  # noqa: PLC0415 - matplotlib takes half a second to import: only to draw

    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    ttls = [r.ttl for r in results]
    left.plot(ttls, [r.hit_ratio for r in results], marker="o", label="hit ratio", color="#2a9d8f")
    left.plot(ttls, [r.saved_share for r in results], marker="s", label="upstream requests saved", color="#264653")
    left.set_ylim(0, 1.02)
    left.set_ylabel("share of requests")
    left.set_title("hit ratio by TTL")
    priced = [(r.ttl, c) for r, c in zip(results, costs, strict=True) if c is not None]
    if priced:
        right.plot(
            [t for t, _ in priced], [c.total for _, c in priced], marker="o", label="with cache", color="#2a9d8f"
        )
        right.plot([t for t, _ in priced], [c.total_without_cache for _, c in priced], marker="s",
                   label="without cache", color="#8d99ae")  # fmt: skip
    else:
        right.text(0.5, 0.5, "the log spans no time: no monthly cost", ha="center", va="center",
                   transform=right.transAxes)  # fmt: skip
    right.set_ylabel("USD per month")
    right.set_title("monthly cost by TTL")
    for ax in (left, right):
        if ttls and min(ttls) > 0:
            ax.set_xscale("log")
        ax.set_xlabel("TTL (s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
