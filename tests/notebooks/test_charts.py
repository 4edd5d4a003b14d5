"""analysis.results, charts and model_charts on the real run's results: the charts are written, and the data behind
them is right."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from analysis import agreement, charts, cost, model_charts, results, ttl_model
from tests.notebooks.conftest import RealRuns

pytestmark = [pytest.mark.redis_server, pytest.mark.slow, pytest.mark.timeout(900)]  # the session's real runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), path
    assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"


def test_write_charts_of_a_steady_run(real_runs: RealRuns) -> None:
    written = charts.write_charts(real_runs.steady)
    assert [p.name for p in written] == ["latency_cdf.png", "hit_ratio.png", "upstream_saved.png"]
    assert all(p.parent == real_runs.steady / "charts" for p in written)
    for path in written:
        assert_png(path)


def test_write_charts_of_an_outage_run_adds_the_timeline(real_runs: RealRuns, tmp_path: Path) -> None:
    written = charts.write_charts(real_runs.outage, tmp_path / "out", dpi=80)
    assert [p.name for p in written][-1] == "outage_timeline.png"
    assert len(written) == 4
    for path in written:
        assert_png(path)


def test_latency_cdfs_per_cache_status_and_for_direct_calls(real_runs: RealRuns) -> None:
    run = results.load_run(real_runs.steady)
    cdfs = results.latency_cdfs(run)
    assert {"HIT", "MISS", results.DIRECT} <= set(cdfs)
    for points in cdfs.values():
        values = [v for v, _ in points]
        shares = [s for _, s in points]
        assert values == sorted(values)
        assert shares == sorted(shares)
        assert shares[-1] == pytest.approx(1.0)

    def median(label: str) -> float:
        return next(v for v, s in cdfs[label] if s >= 0.5)

    assert median("HIT") < median("MISS")  # the stub adds ~20 ms to every MISS
    summary_p50 = run.summary["by_cache_status"]["HIT"]["p50_ms"]
    assert median("HIT") == pytest.approx(summary_p50, rel=0.02)
    assert len(run.history) > 5  # Locust's CSV history was read


def test_outage_phase_table_and_timeline(real_runs: RealRuns) -> None:
    summary = real_runs.summary("outage")
    table = results.phase_table(summary)
    assert [row["phase"] for row in table] == ["warmup", "outage", "recovery"]
    by_phase = {row["phase"]: row for row in table}
    phases = {phase["name"]: phase for phase in summary["phases"]}
    assert by_phase["warmup"]["availability"] == phases["warmup"]["availability"]
    assert by_phase["outage"]["requests"] == phases["outage"]["requests"]
    assert by_phase["outage"]["stale_share"] > 0.2  # expired entries served while the upstream fails
    assert by_phase["warmup"]["stale_share"] == 0.0
    text = results.phase_table_text(summary)
    assert text.splitlines()[0].split()[:3] == ["phase", "requests", "avail"]
    xs, ys = results.stale_share_series(summary)
    assert len(xs) >= 10
    assert max(ys) > 0.2


def test_upstream_savings_and_the_cumulative_series_agree_with_the_summary(real_runs: RealRuns) -> None:
    summary = real_runs.summary("steady")
    savings = results.upstream_savings(summary)
    assert savings["source"] == "stub"
    assert savings["proxy_requests"] == summary["answered"]
    assert savings["upstream_requests"] == summary["upstream_requests_via_proxy"]
    assert savings["saved_share"] == pytest.approx(summary["offload_ratio"], abs=1e-6)
    _, ys = results.cumulative_offload_series(summary)
    assert ys[-1] == pytest.approx(summary["offload_ratio"], abs=1e-6)
    assert "saved" in results.savings_text(results.load_run(real_runs.steady))


def test_model_figures_render(real_runs: RealRuns) -> None:
    run = results.load_run(real_runs.steady)
    compared = agreement.compare_run(run.summary, real_runs.ttl_s)
    i = compared.inputs
    ttls = [1.0, 5.0, 30.0]
    base = cost.Deployment(1.0, 0.8)
    curve = {"model": [ttl_model.hit_ratio(i.keys, i.zipf_s, i.rate, t) for t in ttls]}
    figures = [
        model_charts.ttl_curves_figure(ttls, curve, measured=[(i.ttl_s, compared.measured_hit_ratio, "measured")]),
        model_charts.warmup_figure(
            run,
            ttl_model.hit_ratio_timeline(i.keys, i.zipf_s, i.rate, i.ttl_s, int(i.window_s)),
            ttl_model.xcache_hit_ratio_timeline(i.keys, i.zipf_s, i.rate, int(i.window_s)),
        ),
        model_charts.cost_figure(cost.monthly_cost(cost.Deployment(requests_per_second=50.0, hit_ratio=0.8))),
        model_charts.cost_curve_figure([1.0, 10.0], cost.cost_curve([1.0, 10.0], [0.8, 0.8], base)),
        charts.locust_history_figure([run]),
    ]
    for fig in figures:
        assert charts.png_bytes(fig, dpi=50).startswith(PNG_MAGIC)


def test_load_run_explains_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(results.ResultsError, match=r"no summary\.json"):
        results.load_run(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(results.ResultsError, match="not valid JSON"):
        results.load_run(tmp_path)
    with pytest.raises(results.ResultsError, match="no results directory"):
        results.newest_runs(tmp_path / "nothing-here")


def test_newest_runs_and_a_run_without_measurements(real_runs: RealRuns, tmp_path: Path) -> None:
    old, new = tmp_path / "a-old", tmp_path / "b-new"
    for directory, when in ((old, time.time() - 60), (new, time.time())):
        directory.mkdir()
        summary = directory / "summary.json"
        summary.write_text((real_runs.steady / "summary.json").read_text())
        os.utime(summary, (when, when))
    assert results.newest_runs(tmp_path) == [new]
    assert results.newest_runs(tmp_path, count=2) == [old, new]
    run = results.load_run(new)  # summary.json only: no histograms, no Locust history
    assert run.record is None
    assert run.history == []
    assert results.latency_cdfs(run) == {}
    assert charts.png_bytes(charts.latency_cdf_figure([run]), dpi=50).startswith(PNG_MAGIC)
    assert json.loads((new / "summary.json").read_text())["scenario"] == "steady"
