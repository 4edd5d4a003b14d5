"""The charts' legends sit outside the plot area: an outage's trough (mid-run, low) is never hidden behind one."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import charts, results
from loadtests.measurements import OK, TARGET_PROXY, Measurements, Sample, SampleKey
from loadtests.summary import PhaseMark, RunRecord, build_summary

T0 = 1_700_000_000.0


def outage_run() -> results.RunData:
    """30 s: warm-up, an outage whose hit ratio drops to 20 % (the trough), recovery."""
    m = Measurements()
    for second in range(30):
        phase = "warmup" if second < 12 else "outage" if second < 21 else "recovery"
        hits = 2 if phase == "outage" else 9
        for cache, count in (
            ("HIT", hits),
            ("STALE", 8 - hits if phase == "outage" else 0),
            ("MISS", 10 - max(hits, 8)),
        ):
            for _ in range(count):
                m.add(Sample(T0 + second + 0.5, 1.0, SampleKey(phase, TARGET_PROXY, "", cache, OK, "", False)))
    record = RunRecord("outage", "http://proxy", T0, T0 + 30, m,
                       phases=[PhaseMark("warmup", T0), PhaseMark("outage", T0 + 12), PhaseMark("recovery", T0 + 21)])  # fmt: skip
    return results.RunData(Path("run"), build_summary(record))


@pytest.mark.parametrize(
    ("make", "panels"), [(lambda run: charts.hit_ratio_figure([run]), 1), (charts.outage_timeline_figure, 2)]
)
def test_the_legend_never_covers_the_plot_area(make: object, panels: int) -> None:
    run = outage_run()
    fig = make(run)  # type: ignore[operator]
    fig.draw_without_rendering()
    assert len(fig.axes) == panels
    for ax in fig.axes:  # the curves, and the per-phase bars with their value labels
        legend = ax.get_legend()
        assert legend is not None
        area, box = ax.get_window_extent(), legend.get_window_extent()
        assert not area.overlaps(box), (area, box)
        assert box.y1 <= area.y0  # below the plot
        assert fig.bbox.y0 <= box.y0  # and still inside the figure (the PNG shows it)
