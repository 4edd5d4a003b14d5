"""The figures of one fault run (from its summary.json) and the Markdown table of all runs: what `make chaos` prints
and the README's "Reliability" section shows. Pure: no process, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cachelab.chaos.faults import Fault
from cachelab.chaos.plan import Plan
from loadtests.summary_text import percent

# The hit ratio counts as recovered once a second's hit ratio is back within this much of the level before.
RECOVERY_TOLERANCE = 0.1


@dataclass(frozen=True)
class Figures:
    """One row of the reliability table (the fault phase unless said otherwise)."""

    fault: str
    description: str
    requests: int  # the whole run
    fault_requests: int
    errors_5xx: int  # the whole run
    fault_5xx: int
    transport_errors: int  # the whole run: timeouts, resets, refused connections seen by the client
    cached_availability: float | None  # seen-key: keys this run had already been answered
    uncached_availability: float | None  # new-key
    cached_failures: int  # seen-key answers with a status >= 400 (or none at all)
    p99_ms: float | None
    baseline_p99_ms: float | None
    added_p99_ms: float | None
    hit_ratio_before: float | None  # the two whole seconds before the fault
    recovery_s: int | None  # whole seconds into the recovery phase until the hit ratio was back; None: never
    bypass_at_end: int  # BYPASS answers in the last two seconds of the run (the cache back in use: 0)
    by_cache_status: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _phase(summary: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for phase in summary["phases"]:
        if phase["name"] == name:
            found: Mapping[str, Any] = phase
            return found
    raise KeyError(f"summary has no phase {name!r}")


def _errors_5xx(figs: Mapping[str, Any]) -> int:
    return sum(int(v) for status, v in figs["errors"]["by_status"].items() if int(status) >= 500)


def _group(phase: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    group: Mapping[str, Any] | None = phase.get("groups", {}).get(name)
    return group


def recovery_seconds(timeline: Sequence[Mapping[str, Any]]) -> tuple[float | None, int | None]:
    """(hit ratio over the two whole seconds before the fault, whole seconds into the recovery phase until a
    second's hit ratio is back within RECOVERY_TOLERANCE of it; None when it never is)."""
    warm = [row for row in timeline if row["phase"] == "warmup" and row["hit_ratio"] is not None]
    tail = warm[-3:-1]  # the last warm-up second is cut by the fault's start
    answered = sum(sum(row["by_cache_status"].values()) for row in tail)
    hits = sum(row["by_cache_status"]["HIT"] for row in tail)
    if not answered:
        return None, None
    before = hits / answered
    recovery = [row for row in timeline if row["phase"] == "recovery"]
    for index, row in enumerate(recovery):
        if row["hit_ratio"] is not None and row["hit_ratio"] >= before - RECOVERY_TOLERANCE:
            return round(before, 4), index + 1
    return round(before, 4), None


def figures(fault: Fault, summary: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> Figures:
    phase = _phase(summary, "outage")
    seen, new = _group(phase, "seen-key"), _group(phase, "new-key")
    p99 = phase["latency"]["p99_ms"]
    base = _phase(baseline, "outage")["latency"]["p99_ms"] if baseline is not None else None
    before, recovery = recovery_seconds(summary["timeline"])
    last = [row for row in summary["timeline"] if row["requests"]][-2:]
    errors = summary["errors"]
    return Figures(
        fault=fault.name,
        description=fault.description,
        requests=int(summary["requests"]),
        fault_requests=int(phase["requests"]),
        errors_5xx=_errors_5xx(summary),
        fault_5xx=_errors_5xx(phase),
        transport_errors=int(errors["timeout"]) + int(errors["connection"]) + int(errors["other"]),
        cached_availability=seen["availability"] if seen else None,
        uncached_availability=new["availability"] if new else None,
        cached_failures=int(seen["failures"]) if seen else 0,
        p99_ms=p99,
        baseline_p99_ms=base,
        added_p99_ms=None if p99 is None or base is None else round(p99 - base, 2),
        hit_ratio_before=before,
        recovery_s=recovery,
        bypass_at_end=sum(int(row["by_cache_status"]["BYPASS"]) for row in last),
        by_cache_status={k: int(v["count"]) for k, v in phase["by_cache_status"].items() if v["count"]},
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(rows: Sequence[Figures], plan: Plan | None = None) -> str:
    """The figures as a Markdown table (what the README's "Reliability" section shows)."""
    lines = []
    if plan is not None:
        lines.append(
            f"{plan.users} users at {plan.rate:g} req/s over {plan.keys} Zipf keys; warm-up {plan.warmup_s:g} s, "
            f"fault {plan.fault_s:g} s, recovery {plan.recovery_s:g} s"
        )
        lines.append("")
    lines.append(
        "| fault | requests | in fault | 5xx | cached keys available | uncached keys available "
        "| p99 ms (baseline) | added p99 ms | hit ratio back after | served in fault |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        recovered = "never" if r.recovery_s is None else f"≤ {r.recovery_s} s"
        if r.fault == "none":
            recovered = "-"
        served = " ".join(f"{k} {v}" for k, v in sorted(r.by_cache_status.items()))
        lines.append(
            f"| {r.description} | {r.requests} | {r.fault_requests} | {r.errors_5xx} | {percent(r.cached_availability)} "
            f"| {percent(r.uncached_availability)} | {_ms(r.p99_ms)} ({_ms(r.baseline_p99_ms)}) "
            f"| {'-' if r.added_p99_ms is None else f'{r.added_p99_ms:+.0f}'} | {recovered} | {served} |"
        )
    return "\n".join(lines)
