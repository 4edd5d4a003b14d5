"""How a run's figures read: the table printed at the end of every run (`render_text`), the periodic progress line,
and the percentages and counts they use (also the demo's and the chaos harness's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadtests.figures import figures
from loadtests.measurements import TARGET_UPSTREAM, Measurements


def plural(count: int, word: str, many: str | None = None) -> str:
    """ "1 request", "2 requests" ("1 entry", "2 entries" with many="entries")."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def availability_label(has_direct_calls: bool) -> str:
    """How availability is labelled: it is always the proxy's, which needs saying next to direct upstream calls."""
    return "availability (proxy)" if has_direct_calls else "availability"


def throttled(fig: Mapping[str, Any]) -> int:
    """429 answers (the gateway's throttle): refused, so not available."""
    return int(fig["errors"]["by_status"].get("429", 0))


def progress_line(m: Measurements, phase: str, upstream: int | None) -> str:
    """The figures of the phase so far, as the periodic progress line shows them."""
    fig = figures(m, phase=phase)
    has_direct = any(key.target == TARGET_UPSTREAM for key in m.hist)
    parts = [
        f"phase {phase}: {plural(fig['requests'], 'request')}",
        f"hit ratio {_fmt(fig['hit_ratio'], True)}",
        f"{availability_label(has_direct)} {_fmt(fig['availability'], True)}",
    ]
    if throttled(fig):
        parts.append(f"throttled (429) {throttled(fig)}")
    if upstream is not None:
        parts.append(f"upstream requests {upstream}")
    return ", ".join(parts)


def percent(value: float | None) -> str:
    """A ratio as a percentage with one decimal, "-" for None. A ratio short of 1 never reads 100.0% (nor one
    above 0 as 0.0%): more decimals are shown until it does not, so 8 throttles in 46,198 requests read 99.98%."""
    if value is None:
        return "-"
    for digits in (1, 2, 3):
        text = f"{value * 100:.{digits}f}"
        if not ((0 < value < 0.5 and float(text) == 0) or (0.5 < value < 1 and float(text) == 100)):
            return text + "%"
    return (">99.999%" if value > 0.5 else "<0.001%") if 0 < value < 1 else f"{value * 100:.1f}%"


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return percent(float(value))
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def render_text(summary: Mapping[str, Any]) -> str:
    """A compact, human-readable table of a summary (printed at the end of every run)."""
    lines = [
        f"scenario {summary['scenario']}  host {summary['host']}  {summary['duration_s']:.1f} s  "
        f"users {summary.get('users') or '-'}  workers {summary.get('workers') or 0}",
        f"requests {summary['requests']} ({summary['throughput_rps']} req/s)  failures {summary['failures']}  "
        f"hit ratio {_fmt(summary['hit_ratio'], True)}  cache-served {_fmt(summary['cache_served_ratio'], True)}  "
        f"{availability_label(bool(summary.get('targets')))} {_fmt(summary['availability'], True)}",
    ]
    upstream = summary.get("upstream_requests")
    if upstream is not None:
        lines.append(
            f"upstream requests {upstream} (via proxy {summary['upstream_requests_via_proxy']}, "
            f"expected from X-Cache {summary['expected_upstream_requests']})  "
            f"offload {_fmt(summary['offload_ratio'], True)}"
        )
    lines.append(f"{'status':<10}{'count':>9}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for name, row in summary["by_cache_status"].items():
        lines.append(
            f"{name:<10}{row['count']:>9}{_fmt(row['p50_ms']):>10}{_fmt(row['p95_ms']):>10}{_fmt(row['p99_ms']):>10}"
        )
    for name, row in summary.get("targets", {}).items():
        lat = row["latency"]
        lines.append(
            f"{'→' + name:<10}{row['requests']:>9}{_fmt(lat['p50_ms']):>10}{_fmt(lat['p95_ms']):>10}"
            f"{_fmt(lat['p99_ms']):>10}  availability {_fmt(row['availability'], True)}"
        )
    errors = summary["errors"]
    if errors["total"]:
        by_status = " ".join(f"{k}:{v}" for k, v in errors["by_status"].items())
        lines.append(
            f"errors {errors['total']}: {by_status} timeout:{errors['timeout']} "
            f"connection:{errors['connection']} other:{errors['other']}"
        )
    if throttled(summary):
        lines.append(
            f"throttled (429) {throttled(summary)}: refused because every execution environment stayed busy; "
            "not counted as available"
        )
    if len(summary["phases"]) > 1 or summary.get("groups"):
        lines.append(
            f"{'phase/group':<22}{'requests':>9}{'hit':>8}{'served':>8}{'avail':>8}{'STALE':>7}"
            f"{'p50 ms':>9}{'p99 ms':>9}{'upstream':>9}"
        )
        rows: list[tuple[str, Mapping[str, Any]]] = []
        if len(summary["phases"]) > 1:
            for phase in summary["phases"]:
                rows.append((phase["name"], phase))
                rows.extend((f"  {phase['name']}/{g}", fig) for g, fig in phase.get("groups", {}).items())
        else:
            rows.extend((g, fig) for g, fig in summary["groups"].items())
        for label, fig in rows:
            lat = fig["latency"]
            lines.append(
                f"{label:<22}{fig['requests']:>9}{_fmt(fig['hit_ratio'], True):>8}"
                f"{_fmt(fig['cache_served_ratio'], True):>8}{_fmt(fig['availability'], True):>8}"
                f"{fig['by_cache_status']['STALE']['count']:>7}{_fmt(lat['p50_ms']):>9}{_fmt(lat['p99_ms']):>9}"
                f"{_fmt(fig.get('upstream_requests')):>9}"
            )
    stampede = summary.get("stampede")
    if stampede and stampede.get("expiries"):
        lines.append(
            f"stampede on {stampede['hot_path']}: 1 cold fill + {plural(stampede['expiries'] - 1, 'refill')}, "
            f"upstream requests per fill {stampede['upstream_requests_per_expiry']} "
            f"(max {stampede['max_upstream_requests_per_expiry']})"
        )
    lines.extend(f"note: {note}" for note in summary.get("notes", []))
    return "\n".join(lines)
