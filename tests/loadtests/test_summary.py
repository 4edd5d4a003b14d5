"""summary.json from synthetic runs: phase split, timeline, upstream deltas, scenario blocks, thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.measurements import NONE, OK, TARGET_PROXY, TARGET_UPSTREAM, Measurements, Sample, SampleKey
from loadtests.summary import (
    SCHEMA,
    PhaseMark,
    RunRecord,
    StubPoint,
    build_summary,
    load_record,
    measurements_path,
    thresholds_violated,
    write_outputs,
)
from loadtests.summary_text import render_text

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


def k(
    phase: str, cache: str, outcome: str = OK, *, group: str = "", target: str = TARGET_PROXY, fwd: str = ""
) -> SampleKey:
    return SampleKey(phase, target, group, cache, outcome, fwd, False)


def outage_record() -> RunRecord:
    """10 s: warmup 0-3 s, outage 3-7 s, recovery 7-10 s; upstream counter polled along."""
    m = Measurements()

    def put(at: float, key: SampleKey, n: int, ms: float, resource: str | None = None) -> None:
        for _ in range(n):
            m.add(Sample(T0 + at, ms, key, resource))

    put(0.5, k("warmup", "MISS", group="new-key", fwd="uri-miss"), 10, 50.0, "1")
    put(1.5, k("warmup", "HIT", group="seen-key"), 30, 1.0)
    put(2.5, k("warmup", "HIT", group="seen-key"), 40, 1.0)
    put(3.5, k("outage", "STALE", group="seen-key", fwd="stale"), 20, 3.0)
    put(4.5, k("outage", "HIT", group="seen-key"), 20, 1.0)
    put(5.5, k("outage", "MISS", "http_503", group="new-key", fwd="uri-miss"), 10, 4.0)
    put(8.5, k("recovery", "HIT", group="seen-key"), 40, 1.0)
    put(9.5, k("recovery", "MISS", group="new-key", fwd="uri-miss"), 5, 40.0, "2")
    return RunRecord(
        scenario="outage",
        host="http://proxy",
        started=T0,
        ended=T0 + 10.0,
        measurements=m,
        phases=[PhaseMark("warmup", T0, 100), PhaseMark("outage", T0 + 3.0, 110), PhaseMark("recovery", T0 + 7.0, 140)],
        upstream_start=100,
        upstream_end=145,
        stub_trace=[
            StubPoint(T0 + 0.2, 100),
            StubPoint(T0 + 0.7, 110),
            StubPoint(T0 + 3.6, 120),
            StubPoint(T0 + 5.6, 140),
            StubPoint(T0 + 9.6, 145),
        ],
        locust_requests=175,
        locust_failures=10,
        users=5,
    )


def test_outage_summary_splits_phases_and_counts_upstream_per_phase() -> None:
    s = build_summary(outage_record())
    assert s["schema"] == SCHEMA
    assert (s["scenario"], s["duration_s"], s["requests"], s["failures"]) == ("outage", 10.0, 175, 10)
    assert s["throughput_rps"] == 17.5
    assert s["upstream_requests"] == 45
    assert s["upstream_requests_via_proxy"] == 45
    assert s["offload_ratio"] == round(1 - 45 / 175, 6)
    assert s["hit_ratio"] == round(130 / 175, 6)
    assert s["cache_served_ratio"] == round(150 / 175, 6)
    assert s["availability"] == round(165 / 175, 6)
    assert s["errors"]["by_status"] == {"503": 10}
    names = [p["name"] for p in s["phases"]]
    assert names == ["warmup", "outage", "recovery"]
    warmup, outage, recovery = s["phases"]
    assert (warmup["start_s"], warmup["end_s"], outage["duration_s"], recovery["end_s"]) == (0.0, 3.0, 4.0, 10.0)
    assert [p["requests"] for p in s["phases"]] == [80, 50, 45]
    assert sum(p["requests"] for p in s["phases"]) == s["requests"]
    assert [p["upstream_requests"] for p in s["phases"]] == [10, 30, 5]
    assert outage["availability"] == 0.8
    assert outage["groups"]["seen-key"]["availability"] == 1.0
    assert outage["groups"]["new-key"]["availability"] == 0.0
    assert outage["by_cache_status"]["STALE"]["count"] == 20
    assert outage["by_cache_status"]["STALE"]["p99_ms"] == pytest.approx(3.0, rel=0.01)
    assert s["groups"]["new-key"]["distinct_resources"] == 2
    assert s["consistency"]["sum_by_cache_status"] == 175
    assert s["consistency"]["forwarded_by_cache_status_header"] == 10 + 20 + 10 + 5
    assert "targets" in s
    assert s["targets"] == {}


def test_timeline_has_one_row_per_second_with_its_ratios_and_upstream_growth() -> None:
    s = build_summary(outage_record())
    rows = s["timeline"]
    assert [r["t_s"] for r in rows] == list(range(11))
    assert sum(r["requests"] for r in rows) == s["requests"]
    assert rows[0]["requests"] == 10
    assert rows[0]["hit_ratio"] == 0.0
    assert rows[0]["phase"] == "warmup"
    assert rows[1]["hit_ratio"] == 1.0
    assert rows[3]["cache_served_ratio"] == 1.0
    assert rows[3]["hit_ratio"] == 0.0
    assert rows[3]["phase"] == "outage"
    assert rows[5]["availability"] == 0.0
    assert rows[6]["requests"] == 0
    assert rows[6]["hit_ratio"] is None
    assert rows[6]["phase"] is None
    assert sum(r["upstream_requests"] for r in rows) == 45
    assert [rows[i]["upstream_requests"] for i in (0, 3, 5, 9)] == [10, 10, 20, 5]


def test_single_phase_run_without_stub() -> None:
    m = Measurements()
    for i in range(4):
        m.add(Sample(T0 + 0.5, 1.0 + i, k("steady", "HIT")))
    record = RunRecord("steady", "http://x", T0, T0 + 2.0, m, phases=[PhaseMark("steady", T0)])
    s = build_summary(record)
    assert s["upstream_requests"] is None
    assert s["offload_ratio"] is None
    assert s["phases"][0]["upstream_requests"] is None
    assert "upstream_requests" not in s["timeline"][0]
    assert s["phases"][0]["requests"] == 4
    assert "stampede" not in s
    assert "key_order" not in s
    assert "compare" not in s


def test_key_order_block_compares_the_groups() -> None:
    m = Measurements()
    for group, misses, hits in (("ordered", 10, 90), ("shuffled", 30, 70)):
        for i in range(misses):
            m.add(Sample(T0, 5.0, k("key-order", "MISS", group=group, fwd="uri-miss"), f"{group}-{i % 10}"))
        for i in range(hits):
            m.add(Sample(T0, 1.0, k("key-order", "HIT", group=group), f"{group}-{i % 10}"))
    s = build_summary(RunRecord("key-order", "h", T0, T0 + 1, m, phases=[PhaseMark("key-order", T0)]))
    block = s["key_order"]
    assert block["ordered_hit_ratio"] == 0.9
    assert block["shuffled_hit_ratio"] == 0.7
    assert block["hit_ratio_difference"] == pytest.approx(-0.2)
    assert block["ordered_misses_per_resource"] == 1.0
    assert block["shuffled_misses_per_resource"] == 3.0
    assert block["ordered_distinct_resources"] == 10


def test_compare_block_and_targets_keep_direct_calls_apart() -> None:
    m = Measurements()
    for _ in range(100):
        m.add(Sample(T0, 2.0, k("compare", "HIT")))
        m.add(Sample(T0, 50.0, k("compare", NONE, target=TARGET_UPSTREAM)))
    record = RunRecord(
        "compare", "h", T0, T0 + 1, m, phases=[PhaseMark("compare", T0, 0)], upstream_start=0, upstream_end=103
    )
    s = build_summary(record)
    assert s["direct_requests"] == 100
    assert s["upstream_requests_via_proxy"] == 3
    assert s["offload_ratio"] == 0.97
    assert s["hit_ratio"] == 1.0  # the direct calls are not in the cache ratios
    assert s["targets"]["upstream"]["requests"] == 100
    assert s["compare"]["speedup_p50"] == pytest.approx(25.0, rel=0.02)
    assert s["phases"][0]["targets"]["proxy"]["requests"] == 100


def test_stampede_block_counts_upstream_requests_per_refill() -> None:
    m = Measurements()
    m.add(Sample(T0, 1.0, k("stampede", "HIT")))
    trace = [
        StubPoint(T0 + t / 10, 50 + n, hot)
        for t, n, hot in [(0, 0, 0), (1, 1, 1), (2, 1, 1), (12, 2, 2), (13, 2, 2), (22, 4, 4), (23, 4, 4)]
    ]
    record = RunRecord(
        "stampede",
        "h",
        T0,
        T0 + 3,
        m,
        phases=[PhaseMark("stampede", T0, 50)],
        upstream_start=50,
        upstream_end=54,
        stub_trace=trace,
        hot_path="/items/1",
        expiry_gap_s=0.5,
    )
    block = build_summary(record)["stampede"]
    assert block["expiries"] == 3
    assert block["upstream_requests_per_expiry"] == [1, 1, 2]
    assert block["max_upstream_requests_per_expiry"] == 2
    assert block["hot_path_upstream_requests"] == 4
    assert [b["t_s"] for b in block["bursts"]] == [0.1, 1.2, 2.2]


def test_thresholds() -> None:
    s = build_summary(outage_record())
    assert thresholds_violated(s) == []
    assert thresholds_violated(s, min_hit_ratio=0.5, min_availability=0.9, max_p95_ms=100.0) == []
    problems = thresholds_violated(
        s, min_hit_ratio=0.8, min_availability=0.99, min_cache_served_ratio=0.9, max_p95_ms=1.0
    )
    assert len(problems) == 4
    assert any(p.startswith("hit_ratio 0.742857 is below 0.8") for p in problems)
    assert thresholds_violated({"hit_ratio": None}, min_hit_ratio=0.1) == ["hit_ratio None is below 0.1"]


def test_record_round_trip_and_files(tmp_path: Path) -> None:
    record = outage_record()
    path = tmp_path / "run" / "summary.json"
    written = write_outputs(record, path)
    assert json.loads(path.read_text()) == written
    assert measurements_path(path) == tmp_path / "run" / "measurements.json"
    assert measurements_path(tmp_path / "x.json") == tmp_path / "x.measurements.json"
    again = build_summary(load_record(measurements_path(path)))
    assert again == written


def test_render_text_mentions_the_headline_figures() -> None:
    text = render_text(build_summary(outage_record()))
    assert "scenario outage" in text
    assert "hit ratio 74.3%" in text
    assert "availability 94.3%" in text
    assert "upstream requests 45" in text
    for name in ("warmup", "outage", "recovery", "outage/seen-key", "STALE", "503:10"):
        assert name in text
