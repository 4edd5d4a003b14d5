"""Charts of load-test results directories, as matplotlib Figures or PNGs (the model's charts: analysis.model_charts).

Used by notebooks/01_results.ipynb and `cachelab demo` (`write_charts`). Figures are built with
`matplotlib.figure.Figure` directly (no pyplot, no global backend state), so this works headless and in
threads.

    run = load_run(Path("results/20260101-120000-steady"))      # analysis.results
    write_charts(run.directory)                 # -> [.../charts/latency_cdf.png, ...]
    fig = latency_cdf_figure([run]); png = png_bytes(fig)
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis.results import (
    DIRECT,
    RunData,
    history_float,
    latency_cdfs,
    load_run,
    phase_table,
    stale_share_series,
    timeline_series,
    upstream_savings,
)

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
# summary.json's `availability`: proxy requests answered without a 5xx, a 429 or a transport error.
AVAILABILITY_LABEL = "availability (proxy requests)"


# ---------------------------------------------------------------------------------------------- figures


def new_figure(rows: int = 1, cols: int = 1, *, width: float = 9.0, height: float = 3.6) -> tuple[Figure, Axs]:
    """A Figure (no pyplot) with rows x cols axes, flattened row by row."""
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
    fig, axes = new_figure(len(runs) or 1)
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
    fig, axes = new_figure(1)
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


def outage_timeline_figure(run: RunData) -> Figure:
    """Availability (the proxy's, as in summary.json) and STALE share per second with the phases shaded, and
    per-phase bars."""
    fig, axes = new_figure(2)
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
    fig, axes = new_figure(1, 2, width=11.0, height=3.8)
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
    fig, axes = new_figure(1, 2, width=11.0, height=3.6)
    rps_ax, lat_ax = axes
    for run in runs:
        rows = run.history
        if not rows:
            continue
        start = float(rows[0]["Timestamp"])
        t = [float(r["Timestamp"]) - start for r in rows]
        rps_ax.plot(t, [history_float(r, "Requests/s") or 0.0 for r in rows], label=run.name)
        for column, style in (("50%", "-"), ("95%", "--")):
            pts = [(x, v) for x, r in zip(t, rows, strict=True) if (v := history_float(r, column))]
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
