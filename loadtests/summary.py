"""summary.json: the figures of one load-test run, computed from its raw record (see README, "summary.json").

The Locust master (or the single local process) collects a `RunRecord` while the test runs and, when Locust quits,
writes it as `measurements.json` plus the derived `summary.json`. Both functions here are pure, so the summary can be
recomputed from `measurements.json` at any time (`load_record` + `build_summary`). The record and the summary stay
in one module: `build_summary` reads every field of the record, and the two files are written as a pair. How a
summary reads as text: loadtests.summary_text.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadtests.figures import figures, ratio
from loadtests.measurements import CACHE_STATUSES, NO_RESPONSE, TARGET_PROXY, TARGET_UPSTREAM, Measurements, bursts

SCHEMA = "cachelab.load.summary/1"


@dataclass
class PhaseMark:
    name: str
    start: float  # unix time the phase began
    upstream: int | None = None  # the stub's request counter at that moment (None without --stub-admin)


@dataclass
class StubPoint:
    t: float
    requests: int
    hot: int | None = None  # requests for the stampede's hot path, when one is tracked


@dataclass
class RunRecord:
    scenario: str
    host: str
    started: float
    ended: float
    measurements: Measurements
    phases: list[PhaseMark] = field(default_factory=list)
    upstream_start: int | None = None
    upstream_end: int | None = None
    stub_trace: list[StubPoint] = field(default_factory=list)
    locust_requests: int | None = None
    locust_failures: int | None = None
    users: int | None = None
    workers: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    hot_path: str | None = None
    expiry_gap_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "measurements"}
        data["measurements"] = self.measurements.to_wire()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        return cls(
            scenario=str(data["scenario"]),
            host=str(data["host"]),
            started=float(data["started"]),
            ended=float(data["ended"]),
            measurements=Measurements.from_wire(data["measurements"]),
            phases=[PhaseMark(**p) for p in data.get("phases", [])],
            upstream_start=data.get("upstream_start"),
            upstream_end=data.get("upstream_end"),
            stub_trace=[StubPoint(**p) for p in data.get("stub_trace", [])],
            locust_requests=data.get("locust_requests"),
            locust_failures=data.get("locust_failures"),
            users=data.get("users"),
            workers=int(data.get("workers", 0)),
            settings=dict(data.get("settings", {})),
            hot_path=data.get("hot_path"),
            expiry_gap_s=data.get("expiry_gap_s"),
            notes=list(data.get("notes", [])),
        )


def load_record(path: Path) -> RunRecord:
    return RunRecord.from_json(json.loads(path.read_text()))


def _delta(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else b - a


def _round(value: float, digits: int = 3) -> float:
    return round(value, digits)


def _upstream_by_second(trace: Sequence[StubPoint]) -> dict[int, int]:
    """The stub's request counter growth per unix second: each poll's growth goes to the second it was seen in."""
    out: dict[int, int] = {}
    for before, after in itertools.pairwise(trace):
        if after.requests >= before.requests:
            second = int(after.t)
            out[second] = out.get(second, 0) + after.requests - before.requests
    return out


def _phase_windows(record: RunRecord) -> list[tuple[PhaseMark, float, int | None]]:
    """Each phase with its end time and the stub's counter at its end."""
    out: list[tuple[PhaseMark, float, int | None]] = []
    for index, mark in enumerate(record.phases):
        if index + 1 < len(record.phases):
            nxt = record.phases[index + 1]
            out.append((mark, nxt.start, nxt.upstream))
        else:
            out.append((mark, record.ended, record.upstream_end))
    return out


def _groups(m: Measurements, phase: str | None = None) -> dict[str, Any]:
    names = sorted({k.group for k in m.hist if k.group and (phase is None or k.phase == phase)})
    out: dict[str, Any] = {}
    for name in names:
        figs = figures(m, group=name, phase=phase)
        if phase is None and name in m.resources:
            figs["distinct_resources"] = len(m.resources[name])
        out[name] = figs
    return out


def _targets(m: Measurements) -> dict[str, Any]:
    present = {k.target for k in m.hist}
    if present <= {TARGET_PROXY}:
        return {}
    return {t: figures(m, target=t) for t in (TARGET_PROXY, TARGET_UPSTREAM) if t in present}


def _timeline(record: RunRecord) -> list[dict[str, Any]]:
    m = record.measurements
    if not m.timeline:
        return []
    first = math.floor(record.started)
    last = max(*(k.second for k in m.timeline), math.floor(record.ended))
    rows: dict[int, dict[str, Any]] = {}
    for second in range(first, last + 1):
        rows[second] = {
            "t_s": second - first,
            "phase": None,
            "requests": 0,
            "proxy": 0,
            "proxy_requests": 0,
            "available": 0,
            "by_cache_status": dict.fromkeys(CACHE_STATUSES, 0),
            "_phases": {},
        }
    for key, count in m.timeline.items():
        row = rows.get(key.second)
        if row is None:
            continue
        row["requests"] += count
        row["_phases"][key.phase] = row["_phases"].get(key.phase, 0) + count
        if key.target == TARGET_PROXY:
            row["proxy_requests"] += count
            if key.available:
                row["available"] += count
            if key.cache != NO_RESPONSE:
                row["proxy"] += count
            if key.cache in CACHE_STATUSES:
                row["by_cache_status"][key.cache] += count
    upstream = _upstream_by_second(record.stub_trace)
    out: list[dict[str, Any]] = []
    for second in sorted(rows):
        row = rows[second]
        phases: dict[str, int] = row.pop("_phases")
        if phases:
            row["phase"] = max(phases, key=lambda p: phases[p])
        answered = row.pop("proxy")
        available = row.pop("available")
        proxy_requests = row.pop("proxy_requests")
        counts = row["by_cache_status"]
        row["hit_ratio"] = ratio(counts["HIT"], answered)
        row["cache_served_ratio"] = ratio(counts["HIT"] + counts["STALE"], answered)
        row["availability"] = ratio(available, proxy_requests)  # the proxy's, as everywhere
        if record.stub_trace:
            row["upstream_requests"] = upstream.get(second, 0)
        out.append(row)
    return out


def _stampede(record: RunRecord) -> dict[str, Any] | None:
    if record.hot_path is None:
        return None
    trace = [(p.t, p.hot) for p in record.stub_trace if p.hot is not None]
    if not trace:
        return {"hot_path": record.hot_path, "expiries": None, "note": "no stub trace (give --stub-admin)"}
    gap = record.expiry_gap_s if record.expiry_gap_s is not None else 0.5
    found = bursts(trace, gap)
    per = [b.requests for b in found]
    return {
        "hot_path": record.hot_path,
        "expiry_gap_s": gap,
        "hot_path_upstream_requests": trace[-1][1] - trace[0][1],
        "expiries": len(found),
        "upstream_requests_per_expiry": per,
        "max_upstream_requests_per_expiry": max(per) if per else None,
        "mean_upstream_requests_per_expiry": _round(sum(per) / len(per)) if per else None,
        "bursts": [
            {
                "t_s": _round(b.start - record.started),
                "span_s": _round(b.end - b.start),
                "upstream_requests": b.requests,
            }
            for b in found
        ],
    }


def _per(num: float | None, den: float | None) -> float | None:
    return None if num is None or not den else _round(num / den)


def _key_order(groups: Mapping[str, Any]) -> dict[str, Any] | None:
    if "ordered" not in groups or "shuffled" not in groups:
        return None
    out: dict[str, Any] = {}
    for name in ("ordered", "shuffled"):
        fig = groups[name]
        misses = fig["by_cache_status"]["MISS"]["count"]
        out[f"{name}_hit_ratio"] = fig["hit_ratio"]
        out[f"{name}_distinct_resources"] = fig.get("distinct_resources")
        # 1.0 when each resource was fetched once (cold cache, TTL longer than the run); far more when the
        # parameter order or an irrelevant header splits one resource into several cache entries.
        out[f"{name}_misses_per_resource"] = _per(misses, fig.get("distinct_resources"))
    a, b = out["ordered_hit_ratio"], out["shuffled_hit_ratio"]
    out["hit_ratio_difference"] = None if a is None or b is None else round(b - a, 6)
    return out


def _compare(targets: Mapping[str, Any]) -> dict[str, Any] | None:
    if "proxy" not in targets or "upstream" not in targets:
        return None
    proxy, upstream = targets["proxy"]["latency"], targets["upstream"]["latency"]
    out: dict[str, Any] = {"proxy": proxy, "upstream": upstream}
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        # How many times faster the proxy answered than the upstream, at this percentile.
        out[f"speedup_{name.removesuffix('_ms')}"] = _per(upstream[name], proxy[name])
    out["proxy_availability"] = targets["proxy"]["availability"]
    out["upstream_availability"] = targets["upstream"]["availability"]
    return out


def build_summary(record: RunRecord) -> dict[str, Any]:
    """summary.json of a run (the schema is documented in the README)."""
    m = record.measurements
    overall = figures(m)
    upstream = _delta(record.upstream_start, record.upstream_end)
    direct = sum(h.count for k, h in m.hist.items() if k.target == TARGET_UPSTREAM)
    proxy_requests = sum(h.count for k, h in m.hist.items() if k.target == TARGET_PROXY)
    via_proxy = None if upstream is None else upstream - direct
    duration = max(record.ended - record.started, 1e-9)
    by_status_total = sum(v["count"] for v in overall["by_cache_status"].values())
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "scenario": record.scenario,
        "host": record.host,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.started)),
        "duration_s": _round(duration),
        "users": record.users,
        "workers": record.workers,
        **overall,
        "throughput_rps": _round(overall["requests"] / duration, 1),
        # Distinct resources requested through the proxy: with a cold cache and a TTL longer than the run,
        # a cache that collapses concurrent misses has exactly this many MISSes.
        "distinct_resources": len(set().union(*m.resources.values())) if m.resources else 0,
        "upstream_requests": upstream,
        "direct_requests": direct,
        "upstream_requests_via_proxy": via_proxy,
        "offload_ratio": None
        if via_proxy is None or proxy_requests == 0
        else _round(1 - via_proxy / proxy_requests, 6),
        "consistency": {
            "locust_requests": record.locust_requests,
            "locust_failures": record.locust_failures,
            "recorded_requests": overall["requests"],
            "sum_by_cache_status": by_status_total,
            "expected_upstream_requests": overall["expected_upstream_requests"],
            "forwarded_by_cache_status_header": overall["forwarded"],
            "observed_upstream_requests_via_proxy": via_proxy,
        },
        "phases": [],
        "groups": _groups(m),
        "targets": _targets(m),
        "timeline": _timeline(record),
        "settings": record.settings,
        "notes": record.notes,
    }
    for mark, end, upstream_end in _phase_windows(record):
        figs = figures(m, phase=mark.name)
        phase: dict[str, Any] = {
            "name": mark.name,
            "start_s": _round(mark.start - record.started),
            "end_s": _round(end - record.started),
            "duration_s": _round(end - mark.start),
            **figs,
            "upstream_requests": _delta(mark.upstream, upstream_end),
        }
        groups = _groups(m, mark.name)
        if groups:
            phase["groups"] = groups
        if summary["targets"]:
            phase["targets"] = {t: figures(m, phase=mark.name, target=t) for t in summary["targets"]}
        summary["phases"].append(phase)
    stampede = _stampede(record)
    if stampede is not None:
        summary["stampede"] = stampede
    key_order = _key_order(summary["groups"])
    if key_order is not None:
        summary["key_order"] = key_order
    compare = _compare(summary["targets"])
    if compare is not None:
        summary["compare"] = compare
    summary["notes"] = [*record.notes, *scenario_notes(summary)]
    return summary


def measured_nothing(summary: Mapping[str, Any]) -> str | None:
    """Why a run measured nothing its scenario is for (None when it did): `cachelab load` exits 2 on it."""
    stampede = summary.get("stampede") or {}
    if stampede.get("hot_path_upstream_requests") == 0:
        return (
            f"the stub saw no request for the hot path {stampede['hot_path']} during the run, so there was no fill "
            "to measure: the proxy at --host does not fetch from the stub at --stub-admin, or --hot-path is not "
            "one of the stub's resources"
        )
    return None


def scenario_notes(summary: Mapping[str, Any]) -> list[str]:
    """What a run could not show from its own figures (they join `notes` and are printed under the table)."""
    notes: list[str] = []
    nothing = measured_nothing(summary)
    if nothing is not None:
        notes.append(nothing)
    stampede = summary.get("stampede") or {}
    if stampede.get("expiries") == 1:
        notes.append(
            "the hot entry never expired during the run: only the cold fill was measured, no refill; give "
            "--hot-max-age S (seconds, shorter than the run) or run the proxy with a shorter CACHE_TTL_SECONDS"
        )
    phases = {phase["name"]: phase for phase in summary.get("phases", [])}
    seen = phases.get("outage", {}).get("groups", {}).get("seen-key") or {}
    untouched = seen.get("forwarded") == 0 and seen["by_cache_status"]["STALE"]["count"] == 0 if seen else False
    if summary.get("scenario") == "outage" and seen.get("requests") and untouched:
        notes.append(
            "the outage was invisible to cached keys: no entry expired during it, so they answered HIT as if the "
            "upstream were up (no STALE, no upstream request). Their freshness (CACHE_TTL_SECONDS, or the "
            "upstream's max-age) outlasts the warm-up and the outage; to see stale-if-error at work, give the "
            "proxy a shorter TTL (cachelab up --param CacheTtlSeconds=10, cachelab demo --ttl 5) or a longer outage"
        )
    return notes


def thresholds_violated(
    summary: Mapping[str, Any],
    *,
    min_hit_ratio: float | None = None,
    min_availability: float | None = None,
    min_cache_served_ratio: float | None = None,
    max_p95_ms: float | None = None,
) -> list[str]:
    """The thresholds a summary misses, as messages (empty when all hold). A missing figure misses."""
    problems: list[str] = []

    def below(field_name: str, value: Any, limit: float | None) -> None:
        if limit is None:
            return
        if value is None or float(value) < limit:
            problems.append(f"{field_name} {value} is below {limit}")

    below("hit_ratio", summary.get("hit_ratio"), min_hit_ratio)
    below("cache_served_ratio", summary.get("cache_served_ratio"), min_cache_served_ratio)
    below("availability", summary.get("availability"), min_availability)
    if max_p95_ms is not None:
        p95 = summary.get("latency", {}).get("p95_ms")
        if p95 is None or float(p95) > max_p95_ms:
            problems.append(f"latency p95_ms {p95} is above {max_p95_ms}")
    return problems


def measurements_path(summary_path: Path) -> Path:
    """Where the raw record of a summary lives: DIR/measurements.json next to DIR/summary.json."""
    if summary_path.name == "summary.json":
        return summary_path.with_name("measurements.json")
    return summary_path.with_suffix(".measurements.json")


def write_outputs(record: RunRecord, summary_path: Path) -> dict[str, Any]:
    """Write summary.json and, next to it, the raw record (measurements.json); return the summary."""
    summary = build_summary(record)
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    measurements_path(summary_path).write_text(json.dumps(record.to_json()) + "\n")
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
