"""Every scenario, briefly, through Locust against the real native stack, with summary.json cross-checked.

The cross-checks are the point: Locust's own request count (its CSV) equals the sum of the per-status counts,
and the upstream requests the proxy's headers account for equal what the stub counted. Equality is exact: the
run ends with a drain (no request is cut off), the stub counts a request when it arrives, and the proxy does no
background work. The one tolerance is documented where it is used.
"""

from __future__ import annotations

import csv
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cachelab import processes
from cachelab.commands.load import LoadRun, locustfile, run_scenario
from tests.loadtests.conftest import Stack

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]


def run(
    stack: Stack,
    tmp_path: Path,
    scenario: str,
    *,
    users: int = 8,
    duration: str = "3s",
    processes: int = 1,
    stub: bool = True,
    **knobs: Any,
) -> dict[str, Any]:
    load = LoadRun(
        scenario=scenario,
        host=stack.gateway_url,
        out=tmp_path / scenario,
        users=users,
        duration=duration,
        stub_admin=stack.stub_url if stub else None,
        processes=processes,
        knobs={"--" + name.replace("_", "-"): str(value) for name, value in knobs.items()},
    )
    summary = run_scenario(load)
    check_consistency(summary, load.out)
    return summary


def locust_totals(out: Path) -> tuple[int, int]:
    with open(out / "locust_stats.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    assert len(rows) == 1
    return int(rows[0]["Request Count"]), int(rows[0]["Failure Count"])


def check_consistency(s: dict[str, Any], out: Path) -> None:
    requests, failures = locust_totals(out)
    assert requests > 0
    assert s["requests"] == requests, "Locust's CSV and summary.json disagree on the request count"
    assert s["failures"] == failures
    assert s["consistency"]["locust_requests"] == requests
    assert sum(v["count"] for v in s["by_cache_status"].values()) == requests
    assert sum(p["requests"] for p in s["phases"]) == requests
    assert sum(row["requests"] for row in s["timeline"]) == requests
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "measurements.json").exists()
    with open(out / "locust_stats_history.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) >= 2
    if s["upstream_requests"] is not None:
        assert sum(p["upstream_requests"] for p in s["phases"]) == s["upstream_requests"]


def check_upstream_exact(s: dict[str, Any]) -> None:
    """The stub's count equals what the proxy's Cache-Status headers say it forwarded, and X-Cache agrees."""
    observed = s["upstream_requests_via_proxy"]
    assert observed is not None
    assert s["forwarded"] == observed
    assert s["expected_upstream_requests"] == observed  # MISS + BYPASS + revalidations


def check_collapsed(misses: int, distinct: int) -> None:
    """A cold cache whose entries outlive the run misses each resource exactly once: concurrent misses are
    collapsed, and a request that takes the lock after another stored the entry reads it again instead of
    fetching a second time."""
    assert distinct > 0
    assert misses == distinct


def test_steady_cold_cache_misses_each_key_once(stack: Stack, tmp_path: Path) -> None:
    s = run(stack, tmp_path, "steady", keys=200, zipf_s=1.0)
    check_upstream_exact(s)
    assert s["scenario"] == "steady"
    assert [p["name"] for p in s["phases"]] == ["steady"]
    assert s["availability"] == 1.0
    check_collapsed(s["by_cache_status"]["MISS"]["count"], s["distinct_resources"])
    assert s["hit_ratio"] == pytest.approx(1 - s["by_cache_status"]["MISS"]["count"] / s["requests"], abs=1e-6)
    hit, miss = s["by_cache_status"]["HIT"], s["by_cache_status"]["MISS"]
    assert 0 < hit["p50_ms"] <= hit["p95_ms"] <= hit["p99_ms"]
    assert 0 < miss["p50_ms"] <= miss["p95_ms"] <= miss["p99_ms"]


def test_steady_distributed_over_two_processes_at_a_target_rate(stack: Stack, tmp_path: Path) -> None:
    s = run(stack, tmp_path, "steady", users=6, duration="4s", processes=2, rate=150, keys=100)
    check_upstream_exact(s)
    assert s["workers"] == 2
    # The rate is spread over all users of both processes: about 150 requests/s (users start within a second).
    assert 0.75 * 150 * 4 <= s["requests"] <= 1.1 * 150 * 4
    check_collapsed(s["by_cache_status"]["MISS"]["count"], s["distinct_resources"])


def test_outage_error_keeps_seen_keys_available_from_stale_entries(stack: Stack, tmp_path: Path) -> None:
    stack.faults({"cache_control": "max-age=1"})  # entries go stale within the outage
    s = run(
        stack,
        tmp_path,
        "outage",
        duration="6s",
        keys=40,
        rate=160,
        outage_mode="error",
        phases="warmup=0.4,outage=0.3,recovery=0.3",
    )
    check_upstream_exact_outage(s)
    assert stack.admin("GET", "/__admin/faults")["mode"] == "up"  # restored after the run
    warmup, outage, recovery = s["phases"]
    assert [p["name"] for p in s["phases"]] == ["warmup", "outage", "recovery"]
    assert outage["start_s"] == pytest.approx(2.4, abs=0.3)
    assert recovery["start_s"] == pytest.approx(4.2, abs=0.3)
    assert warmup["availability"] == 1.0
    seen = outage["groups"]["seen-key"]
    assert seen["requests"] > 0
    assert seen["availability"] == 1.0
    assert seen["cache_served_ratio"] == 1.0
    assert outage["by_cache_status"]["STALE"]["count"] > 0
    new = outage["groups"].get("new-key")
    if new is not None:  # keys first requested during the outage have nothing to fall back on
        assert new["availability"] < 1.0
        statuses = outage["errors"]["by_status"]
        assert statuses
        assert all(500 <= int(status) <= 504 for status in statuses)  # the upstream's error, passed on
    assert recovery["availability"] == 1.0
    assert outage["upstream_requests"] > 0


def check_upstream_exact_outage(s: dict[str, Any], direct_retries: bool = False) -> None:
    """During an outage a STALE answer may have cost its own failed fetch (stale-if-error): X-Cache alone cannot
    tell, Cache-Status can (fwd=stale without collapsed). So here the header count must match exactly, and
    MISS + BYPASS + revalidations can only be lower."""
    observed = s["upstream_requests_via_proxy"]
    if direct_retries:
        # geventhttpclient silently resends a GET whose connection was reset before any response (at most twice
        # with one connection per user), so the stub may see up to three attempts per recorded direct request;
        # the last attempt can also succeed (at the end of the outage), so the bound is per direct request.
        assert s["forwarded"] <= observed <= s["forwarded"] + 2 * s["direct_requests"]
        assert observed > s["forwarded"]  # the reset direct calls were resent at least once
    else:
        assert s["forwarded"] == observed
    assert s["expected_upstream_requests"] <= s["forwarded"]


def test_outage_timeout_classifies_direct_timeouts(stack: Stack, tmp_path: Path) -> None:
    stack.faults({"cache_control": "max-age=1"})
    s = run(
        stack,
        tmp_path,
        "outage",
        duration="6s",
        keys=30,
        rate=100,
        outage_mode="timeout",
        direct_share=0.3,
        request_timeout=1.5,
        phases="warmup=0.4,outage=0.3,recovery=0.3",
    )
    check_upstream_exact_outage(s)
    outage = s["phases"][1]
    direct = outage["targets"]["upstream"]
    assert direct["requests"] > 0
    assert direct["errors"]["timeout"] == direct["requests"] - direct["availability"] * direct["requests"] > 0
    assert direct["by_cache_status"]["ERROR"]["p50_ms"] == pytest.approx(1500, rel=0.2)
    assert outage["groups"]["seen-key"]["availability"] == 1.0
    assert s["phases"][0]["targets"]["upstream"]["availability"] == 1.0


def test_outage_reset_classifies_connection_errors(stack: Stack, tmp_path: Path) -> None:
    stack.faults({"cache_control": "max-age=1"})
    s = run(
        stack,
        tmp_path,
        "outage",
        duration="5s",
        keys=30,
        rate=150,
        outage_mode="reset",
        direct_share=0.3,
        phases="warmup=0.4,outage=0.3,recovery=0.3",
    )
    check_upstream_exact_outage(s, direct_retries=True)
    outage = s["phases"][1]
    direct = outage["targets"]["upstream"]
    assert direct["errors"]["connection"] > 0
    assert direct["availability"] < 0.5
    assert outage["groups"]["seen-key"]["availability"] == 1.0
    assert s["phases"][2]["availability"] == 1.0


def test_stampede_one_upstream_request_per_refill(stack: Stack, tmp_path: Path) -> None:
    s = run(stack, tmp_path, "stampede", users=20, duration="4.5s", hot_max_age=1, hot_latency_ms=100)
    check_upstream_exact(s)
    st = s["stampede"]
    assert st["hot_path"] == "/items/1"
    assert st["expiries"] >= 3
    assert sum(st["upstream_requests_per_expiry"]) == st["hot_path_upstream_requests"] == s["upstream_requests"]
    # 20 users, exactly one upstream request per refill
    assert st["max_upstream_requests_per_expiry"] == 1
    assert s["by_cache_status"]["MISS"]["count"] == 1  # the cold fill
    assert stack.admin("GET", "/__admin/faults")["routes"] == {}  # the hot-path override is removed


def test_key_order_shuffled_parameters_hit_as_often_as_ordered(stack: Stack, tmp_path: Path) -> None:
    s = run(stack, tmp_path, "key-order", keys=100)
    check_upstream_exact(s)
    ko = s["key_order"]
    for group in ("ordered", "shuffled"):
        fig = s["groups"][group]
        check_collapsed(fig["by_cache_status"]["MISS"]["count"], fig["distinct_resources"])
    # Had the order or the headers split the cache, each shuffled resource would miss many times.
    assert ko["shuffled_misses_per_resource"] < 1.1
    assert ko["ordered_hit_ratio"] > 0.5
    assert abs(ko["hit_ratio_difference"]) < 0.1
    assert s["groups"]["shuffled"]["requests"] > 0
    assert s["groups"]["ordered"]["requests"] > 0


def test_compare_sends_the_same_keys_both_ways(stack: Stack, tmp_path: Path) -> None:
    users = 6
    s = run(stack, tmp_path, "compare", users=users, keys=100)
    proxy, upstream = s["targets"]["proxy"], s["targets"]["upstream"]
    # Pairs: the drain may stop a user between the two requests of its last pair.
    assert abs(proxy["requests"] - upstream["requests"]) <= users
    assert upstream["by_cache_status"]["NONE"]["count"] == upstream["requests"] == s["direct_requests"]
    assert s["upstream_requests"] == s["direct_requests"] + s["forwarded"]
    check_upstream_exact(s)
    assert s["compare"]["speedup_p50"] > 0
    assert s["hit_ratio"] == proxy["hit_ratio"]


def test_sigterm_during_the_outage_lifts_the_fault_and_still_writes_the_summary(stack: Stack, tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile("outage")), "--headless", "--host",
            stack.gateway_url, "-u", "3", "-r", "3", "-t", "30s", "--stub-admin", stack.stub_url,
            "--phases", "warmup=1s,outage=20s,recovery=9s", "--summary-json", str(summary_path)]  # fmt: skip
    proc = processes.start(argv, log=tmp_path / "locust.log")
    try:
        deadline = time.monotonic() + 15
        while stack.admin("GET", "/__admin/faults")["mode"] != "error" and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.2)
        assert stack.admin("GET", "/__admin/faults")["mode"] == "error"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    finally:
        processes.stop(proc)
    assert stack.admin("GET", "/__admin/faults")["mode"] == "up"
    summary = json.loads(summary_path.read_text())
    assert [p["name"] for p in summary["phases"]] == ["warmup", "outage"]
    assert summary["requests"] > 0
