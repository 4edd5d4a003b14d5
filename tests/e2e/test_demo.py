"""`cachelab demo`, shortened: the whole guided experiment end to end on the native stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cachelab import processes
from tests.support.workload import at_least, with_workload


def seen_key_requests_in_the_outage(out: Path) -> int:
    summary = json.loads((out / "summary.json").read_text())
    outage: dict[str, Any] = next((p for p in summary["phases"] if p["name"] == "outage"), {})
    return int(outage.get("groups", {}).get("seen-key", {}).get("requests", 0))


@pytest.mark.slow
@pytest.mark.timeout(900)  # two demo runs, on a busy machine
def test_demo_runs_the_experiment_prints_the_summary_and_cleans_up(tmp_path: Path) -> None:
    """The outage figures need requests for keys seen before the outage; a run too starved to make them gets
    one more try at half the rate (tests/support/workload.py)."""
    ports = processes.free_ports(3)

    def demo(attempt: int) -> tuple[subprocess.CompletedProcess[str], Path]:
        out = tmp_path / f"results-{attempt}"
        result = subprocess.run(
            [sys.executable, "-m", "cachelab", "demo", "--duration", "24s", "--users", "10",
             "--rate", str(60 // (attempt + 1)), "--keys", "100", "--ttl", "5", "--redis-port", str(ports[0]),
             "--stub-port", str(ports[1]), "--gateway-port", str(ports[2]), "--out", str(out)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result, out

    def shortfall(run: tuple[subprocess.CompletedProcess[str], Path]) -> str | None:
        return at_least("requests for seen keys during the outage", seen_key_requests_in_the_outage(run[1]), 20)

    result, out = with_workload(demo, shortfall, gentler="at half the rate (30 requests/s)")
    text = result.stdout
    for step in ("Step 1/3", "Step 2/3", "Step 3/3", "phase outage", "phase recovery"):
        assert step in text
    for row in ("proxy, HIT", "proxy, MISS", "proxy, STALE", "direct upstream calls", "upstream requests saved"):
        assert row in text
    cached = re.search(r"availability during the outage\s+cached keys ([\d.]+)%", text)
    assert cached is not None
    assert float(cached.group(1)) == 100.0
    summary = json.loads((out / "summary.json").read_text())
    outage = next(p for p in summary["phases"] if p["name"] == "outage")
    assert outage["groups"]["seen-key"]["availability"] == 1.0
    assert summary["by_cache_status"]["STALE"]["count"] > 0  # the outage was answered from stale entries
    assert (out / "report.html").is_file()
    for chart in ("latency_cdf.png", "hit_ratio.png", "upstream_saved.png", "outage_timeline.png"):
        png = out / "charts" / chart
        assert png.read_bytes().startswith(b"\x89PNG"), chart
        assert f"charts/{chart}" in text
    assert list(out.glob("*.csv"))
    for port in ports:  # torn down
        processes.ensure_port_free(port)
