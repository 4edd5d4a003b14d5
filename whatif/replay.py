"""`cachelab load replay`: the replay plan of a log and its prediction, and the measured-vs-predicted comparison.

Pure: the locustfile (loadtests/replay.py) sends the plan, the CLI (cachelab load replay) predicts it with the
simulator and compares with the run's summary.json.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadtests.summary_text import percent
from whatif.parsers import Record
from whatif.simulator import Event, SimConfig, TtlResult, origin_status, simulate
from whatif.trace import Trace

LATE_SECONDS = 0.05  # a replay whose requests started later than this did not keep the log's timing


@dataclass(frozen=True)
class Planned:
    """One request to replay: when (seconds after the replay starts) and what."""

    offset: float
    target: str  # path with query, as logged
    status: int  # what the upstream answered when the log was written (for the prediction)
    latency: float | None  # (replays send no request headers: a HAR's would name the recorded host)


def plan(records: Iterable[Record], *, speed: float = 1.0, limit: int | None = None) -> list[Planned]:
    """The first `limit` requests in time order, at the log's own timing divided by `speed`."""
    if not speed > 0:
        raise ValueError(f"the speed must be positive (got {speed})")
    chosen = sorted(records, key=lambda r: r.time)
    if limit is not None:
        chosen = chosen[:limit]
    if not chosen:
        return []
    start = chosen[0].time
    return [Planned((r.time - start) / speed, r.target, origin_status(r.status), r.latency) for r in chosen]


def predict(planned: list[Planned], config: SimConfig) -> list[TtlResult]:
    """What the simulator expects from replaying `planned` (at its scaled times) through the proxy."""
    trace = Trace(key_headers=config.key_headers)
    events: list[Event] = []
    for number, item in enumerate(planned, 1):
        key = trace.key_of(Record(number, item.offset, "GET", item.target), item.target)
        if key is not None:
            events.append(Event(item.offset, key, item.status, item.latency))
    return simulate(events, config)


def compare(summary: Mapping[str, Any], predicted: TtlResult, planned: int) -> dict[str, Any]:
    """Measured (summary.json of the replay) against predicted, for the summary's "whatif" block."""
    answered = int(summary.get("requests") or 0)
    via_proxy = summary.get("upstream_requests_via_proxy")
    source = "stub"
    if via_proxy is None:
        via_proxy = summary.get("expected_upstream_requests")
        source = "headers"
    measured_upstream = None if via_proxy is None else int(via_proxy)
    difference = None if measured_upstream is None else measured_upstream - predicted.upstream_requests
    return {
        "ttl_s": predicted.ttl,
        "planned_requests": planned,
        "replayed_requests": answered,
        "predicted_upstream_requests": predicted.upstream_requests,
        "measured_upstream_requests": measured_upstream,
        "measured_from": source,
        "difference": difference,
        "during_refresh": predicted.during_refresh,
        "within_refresh_tolerance": None if difference is None else abs(difference) <= predicted.during_refresh,
        "predicted_saved_share": round(predicted.saved_share, 6),
        "measured_saved_share": None
        if measured_upstream is None or answered == 0
        else round(1.0 - measured_upstream / answered, 6),
        "predicted_hit_ratio": round(predicted.hit_ratio, 6),
        "measured_hit_ratio": summary.get("hit_ratio"),
        "predicted_stale": predicted.stale,
    }


def lines(comparison: Mapping[str, Any]) -> list[str]:
    """The comparison as the CLI prints it."""
    c = comparison
    sent = c.get("sent_requests", c["planned_requests"])
    out = [f"whatif for TTL {c['ttl_s']:g} s: {c['planned_requests']:,} requests planned, {sent:,} sent and "
           f"predicted, {c['replayed_requests']:,} answered"]  # fmt: skip
    lag = c.get("max_lag_s")
    if isinstance(lag, int | float) and lag > LATE_SECONDS:
        out.append(
            f"  (requests started up to {lag:.2f} s late: the log's timing was not kept, so expect differences; "
            "use more --users, a lower --speed, or a quieter machine)"
        )
    if c["measured_upstream_requests"] is None:
        out.append(f"  upstream requests: predicted {c['predicted_upstream_requests']:,}, not measured")
    else:
        verdict = "agrees" if c["within_refresh_tolerance"] else "DIFFERS"
        out.append(
            f"  upstream requests: measured {c['measured_upstream_requests']:,} ({c['measured_from']}), predicted "
            f"{c['predicted_upstream_requests']:,}, difference {c['difference']:+,}: {verdict} within the "
            f"{c['during_refresh']:,} requests that landed during a refresh"
        )
        out.append(
            f"  share saved: measured {_pct(c['measured_saved_share'])}, predicted {_pct(c['predicted_saved_share'])}"
        )
    out.append(
        f"  X-Cache hit ratio measured {_pct(c['measured_hit_ratio'])} (304 revalidations count as HIT there); "
        f"fresh-hit ratio predicted {_pct(c['predicted_hit_ratio'])}"
    )
    return out


def _pct(value: object) -> str:
    return percent(float(value)) if isinstance(value, int | float) else "-"
