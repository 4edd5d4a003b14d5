"""What a deployment costs per month, with the cache and without it.

The cost model (`monthly_cost`) prices one month (730 hours) of a deployment as `sam/template.yaml` builds it:
Lambda (requests + GB-seconds), API Gateway REST API, NAT gateway(s) (hours, public IPv4, GB processed by the
upstream calls), ElastiCache (nodes per hour, or Serverless GB-hours + ECPUs) and data transfer out, against a
baseline without a cache (no VPC, no NAT, no Redis; every request calls the upstream). Prices are inputs
(`Prices`, us-east-1 on-demand defaults); check the AWS pricing pages for your region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

HOURS_PER_MONTH = 730.0  # AWS's billing convention
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0


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
    stored_entries: float = 0.0  # serverless: entries kept in Redis (analysis.ttl_model.resident_entries)
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
