"""Charts of load-test results directories (and of the hit-ratio / cost model), as matplotlib Figures or PNGs.

Used by notebooks/01_results.ipynb, notebooks/02_ttl_model.ipynb and `make demo`. Figures are built with
`matplotlib.figure.Figure` directly (no pyplot, no global backend state), so this works headless and in
threads.

    run = load_run(Path("results/20260101-120000-steady"))
    write_charts(run.directory)                 # -> [.../charts/latency_cdf.png, ...]
    fig = latency_cdf_figure([run]); png = png_bytes(fig)

A results directory is what `cachelab load` writes: summary.json (required), measurements.json (the raw
latency histograms: full CDFs; without it the CDF chart shows the summary's p50/p95/p99) and
locust_stats_history.csv.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis.cost import MonthlyCost
from loadtests.analysis import CACHE_STATUSES, TARGET_PROXY, TARGET_UPSTREAM, Histogram, is_answered
from loadtests.summary import RunRecord, load_record, percent

DIRECT = "direct upstream"
COLORS: dict[str, str] = {
    "HIT": "#2a9d8f",
    "MISS": "#e76f51",
    "STALE": "#e9c46a",
    "BYPASS": "#8d99ae",
    DIRECT: "#264653",
}
PHASE_COLORS: dict[str, str] = {
    "warmup": "#e8f4f2",
    "outage": "#fbe3dc",
    "recovery": "#eef0f5",
    "steady": "#ffffff",
}
Curves = Mapping[str, Sequence[float]]  # label -> values
Axs = list[Axes]
CHART_NAMES = ("latency_cdf", "hit_ratio", "upstream_saved", "outage_timeline")
# summary.json's `availability`: proxy requests answered without a 5xx, a 429 or a transport error.
AVAILABILITY_LABEL = "availability (proxy requests)"


class ResultsError(ValueError):
    """A results directory cannot be read; the message says what is missing."""


@dataclass
class RunData:
    """One results directory, loaded."""

    directory: Path
    summary: dict[str, Any]
    record: RunRecord | None = None  # measurements.json, when present
    history: list[dict[str, str]] = field(default_factory=list)  # Locust's "Aggregated" history rows

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def label(self) -> str:
        return f"{self.name} ({self.summary.get('scenario', '?')})"


def load_run(directory: Path | str) -> RunData:
    """Read summary.json, measurements.json (optional) and locust_stats_history.csv (optional) of a run."""
    path = Path(directory)
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise ResultsError(f"{path} has no summary.json: give a directory written by `cachelab load`")
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{summary_path} is not valid JSON: {exc}") from None
    record = load_record(path / "measurements.json") if (path / "measurements.json").is_file() else None
    return RunData(path, summary, record, read_history(path / "locust_stats_history.csv"))


def read_history(path: Path) -> list[dict[str, str]]:
    """The "Aggregated" rows of Locust's --csv-full-history file (empty when the file is missing)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("Name") == "Aggregated"]


def newest_runs(results: Path | str = "results", count: int = 1) -> list[Path]:
    """The `count` most recently written results directories (those with a summary.json) under `results`."""
    base = Path(results)
    found = sorted(base.glob("*/summary.json"), key=lambda p: p.stat().st_mtime) if base.is_dir() else []
    if not found:
        raise ResultsError(f"no results directory with a summary.json under {base}/: run `cachelab load`")
    return [p.parent for p in found[-count:]]


# ---------------------------------------------------------------------------------------------- data


def latency_cdfs(run: RunData) -> dict[str, list[tuple[float, float]]]:
    """(latency ms, cumulative share) points per cache status of answered proxy requests, and of direct calls.

    From the histograms in measurements.json (1 % precision); empty series are left out.
    """
    if run.record is None:
        return {}
    merged: dict[str, Histogram] = {}
    for key, hist in run.record.measurements.hist.items():
        if not is_answered(key.outcome):
            continue
        if key.target == TARGET_UPSTREAM:
            label = DIRECT
        elif key.target == TARGET_PROXY and key.cache in CACHE_STATUSES:
            label = key.cache
        else:
            continue
        merged.setdefault(label, Histogram()).merge(hist)
    out: dict[str, list[tuple[float, float]]] = {}
    for label in (*CACHE_STATUSES, DIRECT):
        found = merged.get(label)
        if found is None or found.count == 0:
            continue
        hist = found
        seen = 0
        points: list[tuple[float, float]] = []
        for bucket in sorted(hist.buckets):
            seen += hist.buckets[bucket]
            value = min(max(Histogram.value_of(bucket), hist.min_ms), hist.max_ms)
            points.append((value, seen / hist.count))
        out[label] = points
    return out


def timeline_series(summary: Mapping[str, Any], field_name: str) -> tuple[list[float], list[float]]:
    """(t_s, value) of one per-second timeline field, skipping seconds where it is undefined (None)."""
    xs: list[float] = []
    ys: list[float] = []
    for row in summary.get("timeline", []):
        value = row.get(field_name)
        if value is not None:
            xs.append(float(row["t_s"]))
            ys.append(float(value))
    return xs, ys


def stale_share_series(summary: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """(t_s, STALE answers / proxy answers) per second (the hit ratio's denominator; direct calls left out)."""
    xs: list[float] = []
    ys: list[float] = []
    for row in summary.get("timeline", []):
        answered = sum(row["by_cache_status"].values())
        if answered:
            xs.append(float(row["t_s"]))
            ys.append(row["by_cache_status"].get("STALE", 0) / answered)
    return xs, ys


def phase_table(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per phase: requests, availability (the proxy's), hit ratio, cache-served ratio, STALE share of the proxy's
    answers and upstream requests."""
    rows: list[dict[str, Any]] = []
    for phase in summary.get("phases", []):
        requests = int(phase.get("requests") or 0)
        answered = int(phase.get("answered") or 0)
        stale = int(phase["by_cache_status"].get("STALE", {}).get("count", 0))
        rows.append(
            {
                "phase": phase["name"],
                "start_s": phase.get("start_s"),
                "end_s": phase.get("end_s"),
                "requests": requests,
                "availability": phase.get("availability"),
                "hit_ratio": phase.get("hit_ratio"),
                "cache_served_ratio": phase.get("cache_served_ratio"),
                "stale_share": stale / answered if answered else None,
                "upstream_requests": phase.get("upstream_requests"),
            }
        )
    return rows


def upstream_savings(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Proxy requests, the upstream requests they caused (stub count, else the headers'), the share saved."""
    proxy = int(summary.get("answered") or 0)
    via = summary.get("upstream_requests_via_proxy")
    source = "stub"
    if via is None:
        via, source = summary.get("expected_upstream_requests"), "headers"
    via_int = int(via or 0)
    return {
        "proxy_requests": proxy,
        "upstream_requests": via_int,
        "saved": proxy - via_int,
        "saved_share": (proxy - via_int) / proxy if proxy else None,
        "source": source,
        "direct_requests": int(summary.get("direct_requests") or 0),
    }


def cumulative_offload_series(summary: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """(end of second t, share of proxy requests so far answered without an upstream request), from the stub's
    per-second counts minus the direct calls (requests without a cache status). Empty without a stub trace.

    The stub is polled twice a second; what it counted after the timeline's last second (the drain) goes to
    that second, so the series ends at the run's `offload_ratio`."""
    xs: list[float] = []
    ys: list[float] = []
    timeline = summary.get("timeline", [])
    if not timeline or any("upstream_requests" not in row for row in timeline):
        return xs, ys
    late = int(summary.get("upstream_requests") or 0) - sum(int(row["upstream_requests"]) for row in timeline)
    proxy_total = upstream_total = 0
    for index, row in enumerate(timeline):
        proxy = sum(row["by_cache_status"].values())
        direct = max(0, int(row["requests"]) - proxy)
        proxy_total += proxy
        extra = max(0, late) if index == len(timeline) - 1 else 0
        upstream_total += int(row["upstream_requests"]) - direct + extra
        if proxy_total:
            xs.append(float(row["t_s"]) + 1.0)
            ys.append(1.0 - upstream_total / proxy_total)
    return xs, ys


def _history_float(row: Mapping[str, str], column: str) -> float | None:
    try:
        value = float(row.get(column, "") or "nan")
    except ValueError:
        return None
    return None if math.isnan(value) else value


# ---------------------------------------------------------------------------------------------- figures


def _figure(rows: int = 1, cols: int = 1, *, width: float = 9.0, height: float = 3.6) -> tuple[Figure, Axs]:
    fig = Figure(figsize=(width, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _legend_below(ax: Axes, *, offset: float = 0.2) -> None:
    """The legend under the plot area (`offset` below it, in axes heights: past the x label), never over a curve or
    a bar's label (an outage's trough is where a legend inside would go)."""
    count = len(ax.get_legend_handles_labels()[1])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -offset), ncols=min(3, max(1, count)), fontsize=8, frameon=False)


def _shade_phases(ax: Axes, summary: Mapping[str, Any]) -> None:
    phases = summary.get("phases", [])
    if len(phases) < 2:
        return
    for phase in phases:
        color = PHASE_COLORS.get(phase["name"], "#f2f2f2")
        ax.axvspan(float(phase["start_s"]), float(phase["end_s"]), color=color, zorder=0)
        ax.text(float(phase["start_s"]) + 0.2, 1.02, phase["name"], fontsize=8, va="bottom", color="#555555")


def latency_cdf_figure(runs: Sequence[RunData]) -> Figure:
    """Latency CDF per cache status (HIT, MISS, STALE, BYPASS) against direct upstream calls, per run."""
    fig, axes = _figure(len(runs) or 1)
    for ax, run in zip(axes, runs, strict=False):
        cdfs = latency_cdfs(run)
        if cdfs:
            for label, points in cdfs.items():
                xs, ys = zip(*points, strict=True)
                ax.step(xs, ys, where="post", color=COLORS.get(label), label=label, linewidth=1.6)
        else:  # no measurements.json: the summary's percentiles only
            for label, row in run.summary.get("by_cache_status", {}).items():
                pts = [(row[f"p{q}_ms"], q / 100) for q in (50, 95, 99) if row.get(f"p{q}_ms") is not None]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, "o-", color=COLORS.get(label), label=f"{label} (p50/p95/p99)")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("share of requests ≤ x")
        ax.set_title(f"latency by cache status: {run.label}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    return fig


def hit_ratio_figure(runs: Sequence[RunData], *, predicted: Curves | None = None) -> Figure:
    """Hit ratio and cache-served ratio per second of each run; `predicted` adds model curves (label: per
    second)."""
    fig, axes = _figure(1)
    ax = axes[0]
    for run in runs:
        xs, ys = timeline_series(run.summary, "hit_ratio")
        ax.plot(xs, ys, marker=".", linewidth=1.4, label=f"hit ratio, {run.name}")
        xs, ys = timeline_series(run.summary, "cache_served_ratio")
        if any(row["by_cache_status"].get("STALE") for row in run.summary.get("timeline", [])):
            ax.plot(xs, ys, linestyle="--", linewidth=1.0, label=f"cache-served (HIT+STALE), {run.name}")
    for label, values in (predicted or {}).items():
        ax.plot([t + 0.5 for t in range(len(values))], list(values), "k:", label=label)
    if len(runs) == 1:
        _shade_phases(ax, runs[0].summary)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("seconds since the start of the run")
    ax.set_ylabel("share of proxy answers")
    ax.set_title("hit ratio over time")
    ax.grid(True, alpha=0.3)
    _legend_below(ax)
    return fig


def warmup_figure(run: RunData, predicted_hit: Sequence[float], predicted_xcache: Sequence[float]) -> Figure:
    """A steady run from a cold cache against the model, second by second.

    Left: X-Cache hit ratio per second (measured) and the model's (only first requests miss; 304 revalidations
    are HITs). Right: share of requests so far answered without an upstream request (the stub's count) and the
    model's running figure, with its per-second value dotted.
    """
    fig, axes = _figure(1, 2, width=11.0, height=3.8)
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


def outage_timeline_figure(run: RunData) -> Figure:
    """Availability (the proxy's, as in summary.json) and STALE share per second with the phases shaded, and
    per-phase bars."""
    fig, axes = _figure(2)
    ax, bars = axes
    summary = run.summary
    xs, ys = timeline_series(summary, "availability")
    ax.plot(xs, ys, color="#264653", marker=".", label=AVAILABILITY_LABEL)
    xs, ys = stale_share_series(summary)
    ax.plot(xs, ys, color=COLORS["STALE"], marker=".", label="STALE share of proxy answers")
    xs, ys = timeline_series(summary, "hit_ratio")
    ax.plot(xs, ys, color=COLORS["HIT"], linewidth=1.0, alpha=0.7, label="hit ratio")
    _shade_phases(ax, summary)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("seconds since the start of the run")
    ax.set_ylabel("share of proxy requests")
    ax.set_title(f"outage timeline: {run.label}")
    ax.grid(True, alpha=0.3)
    _legend_below(ax)
    table = phase_table(summary)
    metrics = (
        ("availability", "#264653", AVAILABILITY_LABEL),
        ("cache_served_ratio", "#2a9d8f", "cache-served (HIT+STALE)"),
        ("stale_share", COLORS["STALE"], "STALE share"),
    )
    width = 0.8 / len(metrics)
    for index, (metric, color, label) in enumerate(metrics):
        values = [float(row[metric] or 0.0) for row in table]
        positions = [i + (index - 1) * width for i in range(len(table))]
        bars.bar(positions, values, width=width, color=color, label=label)
        for x, v in zip(positions, values, strict=True):
            bars.text(x, v + 0.01, f"{v:.0%}", ha="center", va="bottom", fontsize=7)
    bars.set_xticks(range(len(table)), [row["phase"] for row in table])
    bars.set_ylim(0, 1.15)
    bars.set_ylabel("share of the phase's proxy requests")
    bars.set_title("per phase")
    _legend_below(bars, offset=0.1)
    return fig


def upstream_saved_figure(runs: Sequence[RunData]) -> Figure:
    """Proxy requests against the upstream requests they caused: totals per run, and per second."""
    fig, axes = _figure(1, 2, width=11.0, height=3.8)
    totals, per_second = axes
    names = [run.name for run in runs]
    savings = [upstream_savings(run.summary) for run in runs]
    xs = list(range(len(runs)))
    left, right = [x - 0.2 for x in xs], [x + 0.2 for x in xs]
    proxy = [s["proxy_requests"] for s in savings]
    totals.bar(left, proxy, width=0.4, label="proxy requests", color="#8d99ae")
    caused = [s["upstream_requests"] for s in savings]
    totals.bar(right, caused, width=0.4, label="upstream requests they caused", color=COLORS["MISS"])
    for x, s in zip(xs, savings, strict=True):
        if s["saved_share"] is not None:
            label = f"{s['saved_share']:.0%} saved"
            totals.text(x, s["proxy_requests"], label, ha="center", va="bottom", fontsize=8)
    totals.set_xticks(xs, names, rotation=10, fontsize=8)
    totals.set_ylabel("requests")
    totals.set_title("upstream requests saved")
    totals.legend(fontsize=8)
    for run in runs:
        timeline = run.summary.get("timeline", [])
        t = [row["t_s"] for row in timeline]
        proxy = [sum(row["by_cache_status"].values()) for row in timeline]
        per_second.plot(t, proxy, label=f"proxy, {run.name}")
        if any("upstream_requests" in row for row in timeline):
            per_second.plot(
                t,
                [row.get("upstream_requests", 0) for row in timeline],
                linestyle="--",
                label=f"upstream, {run.name}",
            )
    per_second.set_xlabel("seconds since the start of the run")
    per_second.set_ylabel("requests per second")
    per_second.set_title("per second")
    per_second.grid(True, alpha=0.3)
    per_second.legend(fontsize=8)
    return fig


def locust_history_figure(runs: Sequence[RunData]) -> Figure:
    """Locust's own view (locust_stats_history.csv): requests/s and the p50 / p95 response time over time."""
    fig, axes = _figure(1, 2, width=11.0, height=3.6)
    rps_ax, lat_ax = axes
    for run in runs:
        rows = run.history
        if not rows:
            continue
        start = float(rows[0]["Timestamp"])
        t = [float(r["Timestamp"]) - start for r in rows]
        rps_ax.plot(t, [_history_float(r, "Requests/s") or 0.0 for r in rows], label=run.name)
        for column, style in (("50%", "-"), ("95%", "--")):
            pts = [(x, v) for x, r in zip(t, rows, strict=True) if (v := _history_float(r, column))]
            if pts:
                px, py = zip(*pts, strict=True)
                lat_ax.plot(px, py, linestyle=style, label=f"{column} {run.name}")
    rps_ax.set_title("Locust: requests/s")
    rps_ax.set_xlabel("seconds")
    lat_ax.set_title("Locust: response time (ms)")
    lat_ax.set_xlabel("seconds")
    lat_ax.set_yscale("log")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
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
    fig, axes = _figure(1, height=4.2)
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
    fig, axes = _figure(1, height=4.2)
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
    fig, axes = _figure(1, height=4.0)
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


# ---------------------------------------------------------------------------------------------- files


def png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for IPython.display.Image or an HTTP answer)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save(fig: Figure, path: Path, *, dpi: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path


def write_charts(results_dir: Path | str, out_dir: Path | str | None = None, *, dpi: int = 100) -> list[Path]:
    """Write the charts of one results directory as PNGs (default: into <results_dir>/charts/).

    latency_cdf.png, hit_ratio.png and upstream_saved.png always; outage_timeline.png when the run has more
    than one phase (the outage scenario). Returns the paths written.
    """
    run = load_run(results_dir)
    out = Path(out_dir) if out_dir is not None else run.directory / "charts"
    written = [
        save(latency_cdf_figure([run]), out / "latency_cdf.png", dpi=dpi),
        save(hit_ratio_figure([run]), out / "hit_ratio.png", dpi=dpi),
        save(upstream_saved_figure([run]), out / "upstream_saved.png", dpi=dpi),
    ]
    if len(run.summary.get("phases", [])) > 1:
        written.append(save(outage_timeline_figure(run), out / "outage_timeline.png", dpi=dpi))
    return written


# ---------------------------------------------------------------------------------------------- text


def phase_table_text(summary: Mapping[str, Any]) -> str:
    """The per-phase figures as a small table."""
    lines = [f"{'phase':<10}{'requests':>9}{'avail':>9}{'served':>9}{'hit':>9}{'STALE':>9}{'upstream':>9}"]
    for row in phase_table(summary):
        lines.append(
            f"{row['phase']:<10}{row['requests']:>9}{percent(row['availability']):>9}"
            f"{percent(row['cache_served_ratio']):>9}{percent(row['hit_ratio']):>9}{percent(row['stale_share']):>9}"
            f"{row['upstream_requests'] or '-':>9}"
        )
    return "\n".join(lines)


def savings_text(run: RunData) -> str:
    """One line: proxy requests, the upstream requests they caused and the share saved."""
    s = upstream_savings(run.summary)
    direct = f"; {s['direct_requests']} direct calls not counted" if s["direct_requests"] else ""
    return (
        f"{run.name}: {s['proxy_requests']} proxy requests caused {s['upstream_requests']} upstream requests "
        f"(counted by the {s['source']}): {s['saved']} saved ({percent(s['saved_share'])}){direct}"
    )
