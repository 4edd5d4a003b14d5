"""One definition of availability everywhere (the proxy's requests; direct upstream calls have their own figure),
and a gateway's 429 throttle is not availability: it is shown as what it is."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from analysis import charts, results
from cachelab.commands.demo import render_demo_summary
from loadtests.figures import figures
from loadtests.measurements import NONE, OK, TARGET_PROXY, TARGET_UPSTREAM, Measurements, Sample, SampleKey
from loadtests.summary import PhaseMark, RunRecord, build_summary
from loadtests.summary_text import percent, plural, progress_line, render_text

T0 = 1_700_000_000.0


def k(phase: str, cache: str, outcome: str = OK, *, group: str = "", target: str = TARGET_PROXY) -> SampleKey:
    return SampleKey(phase, target, group, cache, outcome, "", False)


def demo_like_record() -> RunRecord:
    """warmup 0-2 s, outage 2-4 s, recovery 4-6 s; 10 % direct upstream calls that fail during the outage."""
    m = Measurements()

    def put(at: float, key: SampleKey, n: int) -> None:
        for _ in range(n):
            m.add(Sample(T0 + at, 2.0, key, "1" if key.target == TARGET_PROXY else None))

    for phase, at in (("warmup", 0.5), ("recovery", 4.5)):
        put(at, k(phase, "HIT", group="seen-key"), 90)
        put(at, k(phase, NONE, target=TARGET_UPSTREAM), 10)
    put(2.5, k("outage", "STALE", group="seen-key"), 80)
    put(2.5, k("outage", "MISS", "http_503", group="new-key"), 8)
    put(2.5, k("outage", NONE, "http_429"), 2)  # the gateway throttled: no X-Cache
    put(2.5, k("outage", NONE, "http_503", target=TARGET_UPSTREAM), 10)
    return RunRecord(
        scenario="outage",
        host="http://proxy",
        started=T0,
        ended=T0 + 6.0,
        measurements=m,
        phases=[PhaseMark("warmup", T0), PhaseMark("outage", T0 + 2.0), PhaseMark("recovery", T0 + 4.0)],
    )


def test_a_429_throttle_is_a_failure_and_not_available() -> None:
    m = Measurements()
    for _ in range(97):
        m.add(Sample(T0, 1.0, k("steady", "HIT")))
    for _ in range(3):
        m.add(Sample(T0, 1100.0, k("steady", NONE, "http_429")))
    fig = figures(m)
    assert fig["availability"] == 0.97
    assert fig["failures"] == 3
    assert fig["errors"]["by_status"] == {"429": 3}
    assert fig["errors"]["total"] == 3
    assert fig["by_cache_status"][NONE]["count"] == 3


def test_the_summary_shows_throttles() -> None:
    s = build_summary(demo_like_record())
    text = render_text(s)
    assert "throttled (429) 2: refused because every execution environment stayed busy" in text
    assert re.search(r"errors 20: 429:2 503:18 ", text)
    assert "throttled (429)                     2 requests (not available)" in render_demo_summary(s)


def test_availability_has_one_definition_in_every_place() -> None:
    record = demo_like_record()
    s = build_summary(record)
    outage = s["phases"][1]
    expected = round(80 / 90, 6)  # proxy requests answered without a 5xx or a 429: not the 10 failing direct calls
    assert outage["availability"] == outage["targets"]["proxy"]["availability"] == expected
    assert s["availability"] == s["targets"]["proxy"]["availability"]
    assert outage["targets"]["upstream"]["availability"] == 0.0
    # summary.json's timeline (what outage_timeline.png draws), second 2: the outage
    assert s["timeline"][2]["availability"] == expected
    # the progress line, labelled
    line = progress_line(record.measurements, "outage", upstream=None)
    assert f"availability (proxy) {expected * 100:.1f}%" in line
    assert "throttled (429) 2" in line
    # the table, labelled
    assert f"availability (proxy) {s['availability'] * 100:.1f}%" in render_text(s)
    # the demo's summary
    demo = render_demo_summary(s)
    assert f"all proxy requests {expected * 100:.1f}%" in demo
    assert "availability: the share of proxy requests answered without a 5xx, a 429 throttle" in demo
    # the chart: the plotted line is the timeline's figure, labelled as the proxy's
    fig = charts.outage_timeline_figure(results.RunData(Path("run"), s))
    (line2d,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == charts.AVAILABILITY_LABEL]
    drawn = [row["availability"] for row in s["timeline"] if row["availability"] is not None]
    assert np.asarray(line2d.get_ydata(), dtype=float).tolist() == drawn


def test_without_direct_calls_availability_needs_no_label() -> None:
    m = Measurements()
    m.add(Sample(T0, 1.0, k("steady", "HIT")))
    assert progress_line(m, "steady", upstream=3) == (
        "phase steady: 1 request, hit ratio 100.0%, availability 100.0%, upstream requests 3"
    )


def test_plural() -> None:
    assert plural(1, "request") == "1 request"
    assert plural(0, "request") == "0 requests"
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(2, "entry", "entries") == "2 entries"


def test_a_few_throttles_never_read_as_100_percent() -> None:
    assert percent(46190 / 46198) == "99.98%"  # 8 throttles in a steady run
    assert percent(1 - 1e-9) == ">99.999%"
    assert percent(1.0) == "100.0%"
    assert percent(0.987) == "98.7%"
    assert percent(1e-4) == "0.01%"
    assert percent(0.0) == "0.0%"
    assert percent(None) == "-"
