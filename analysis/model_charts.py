"""Charts of the hit-ratio and cost models, and of a steady run against them, as matplotlib Figures.

Used by notebooks/02_ttl_model.ipynb (no pyplot: see analysis.charts, whose `png_bytes` and `save` write them).
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from analysis.charts import COLORS, Curves, new_figure
from analysis.cost import MonthlyCost
from analysis.results import RunData, cumulative_offload_series, timeline_series


def warmup_figure(run: RunData, predicted_hit: Sequence[float], predicted_xcache: Sequence[float]) -> Figure:
    """A steady run from a cold cache against the model, second by second.

    Left: X-Cache hit ratio per second (measured) and the model's (only first requests miss; 304 revalidations
    are HITs). Right: share of requests so far answered without an upstream request (the stub's count) and the
    model's running figure, with its per-second value dotted.
    """
    fig, axes = new_figure(1, 2, width=11.0, height=3.8)
    left, right = axes
    xs, ys = timeline_series(run.summary, "hit_ratio")
    left.plot([x + 0.5 for x in xs], ys, marker=".", color=COLORS["HIT"], label="measured (X-Cache)")
    left.plot([t + 0.5 for t in range(len(predicted_xcache))], list(predicted_xcache), "k:", label="model")
    left.set_title("X-Cache hit ratio per second")
    # The stub is polled twice a second, so its first seconds are attributed roughly: start at 3 s.
    xs, ys = cumulative_offload_series(run.summary)
    xs, ys = [x for x in xs if x >= 3.0], [y for x, y in zip(xs, ys, strict=True) if x >= 3.0]
    right.plot(xs, ys, marker=".", color=COLORS["MISS"], label="measured so far (stub count)")
    running: list[float] = []
    for k, value in enumerate(predicted_hit):
        running.append(value if k == 0 else (running[-1] * k + value) / (k + 1))
    right.plot([t + 1.0 for t in range(len(running))], running, "k-", linewidth=1.0, label="model so far")
    middles = [t + 0.5 for t in range(len(predicted_hit))]
    right.plot(middles, list(predicted_hit), "k:", label="model per second")
    right.set_title("no upstream request (hit ratio of the model)")
    for ax in axes:
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("seconds since the start of the run")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    return fig


def ttl_curves_figure(
    ttls: Sequence[float],
    curves: Curves,
    *,
    measured: Sequence[tuple[float, float, str]] = (),
    predicted_points: Sequence[tuple[float, float, str]] = (),
    title: str = "predicted hit ratio by TTL",
) -> Figure:
    """Model curves (label: hit ratio per TTL) with measured (ttl, hit ratio, label) points on top."""
    fig, axes = new_figure(1, height=4.2)
    ax = axes[0]
    for label, values in curves.items():
        ax.plot(list(ttls), list(values), label=label)
    for ttl, value, label in predicted_points:
        ax.plot([ttl], [value], marker="x", color="black", markersize=9, linestyle="none", label=label)
    for ttl, value, label in measured:
        ax.plot([ttl], [value], marker="o", markersize=8, linestyle="none", label=label)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("TTL (s, log scale)")
    ax.set_ylabel("hit ratio (no upstream request)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def cost_figure(cost: MonthlyCost, *, title: str = "monthly cost") -> Figure:
    """Line items with and without the cache, side by side (USD per month)."""
    fig, axes = new_figure(1, height=4.2)
    ax = axes[0]
    rows = [row for row in cost.table() if row[0] != "total"]
    labels = [r[0] for r in rows]
    ys = list(range(len(rows)))
    ax.barh([y - 0.2 for y in ys], [r[1] for r in rows], height=0.4, label=f"with cache (${cost.total:,.2f})",
            color="#2a9d8f")  # fmt: skip
    ax.barh([y + 0.2 for y in ys], [r[2] for r in rows], height=0.4,
            label=f"without cache (${cost.total_without_cache:,.2f})", color="#8d99ae")  # fmt: skip
    ax.set_yticks(ys, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("USD per month")
    ax.set_title(f"{title}: {cost.upstream_requests_saved / 1e6:,.1f} M upstream requests saved")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def cost_curve_figure(rates: Sequence[float], costs: Sequence[MonthlyCost]) -> Figure:
    """Monthly total with and without the cache against the average request rate."""
    fig, axes = new_figure(1, height=4.0)
    ax = axes[0]
    ax.plot(list(rates), [c.total for c in costs], marker="o", label="with cache")
    ax.plot(list(rates), [c.total_without_cache for c in costs], marker="s", label="without cache")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("average requests per second (log scale)")
    ax.set_ylabel("USD per month (log scale)")
    ax.set_title("monthly cost against traffic")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig
