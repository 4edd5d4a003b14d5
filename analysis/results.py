"""A load-test results directory, loaded, and the series and tables its charts and the notebooks show (no matplotlib).

A results directory is what `cachelab load` writes: summary.json (required), measurements.json (the raw
latency histograms: full CDFs; without it the CDF chart shows the summary's p50/p95/p99) and
locust_stats_history.csv. analysis.charts draws these series; notebooks/01_results.ipynb prints the tables.

    run = load_run(Path("results/20260101-120000-steady"))
    print(phase_table_text(run.summary)); print(savings_text(run))
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.histogram import Histogram
from loadtests.measurements import CACHE_STATUSES, TARGET_PROXY, TARGET_UPSTREAM, is_answered
from loadtests.summary import RunRecord, load_record
from loadtests.summary_text import percent

DIRECT = "direct upstream"  # the label of direct upstream calls, next to the cache statuses


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
        out[label] = [(value, seen / found.count) for value, seen in found.cumulative()]
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


def history_float(row: Mapping[str, str], column: str) -> float | None:
    """A number of a Locust history row (None when empty or not a number)."""
    try:
        value = float(row.get(column, "") or "nan")
    except ValueError:
        return None
    return None if math.isnan(value) else value


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
