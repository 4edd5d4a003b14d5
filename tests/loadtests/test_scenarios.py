"""Every scenario, briefly, through Locust against the real native stack, with summary.json cross-checked.

The cross-checks are the point: Locust's own request count (its CSV) equals the sum of the per-status counts,
and the upstream requests the proxy's headers account for equal what the stub counted. Equality is exact: the
run ends with a drain (no request is cut off), the stub counts a request when it arrives, and the proxy does no
background work. The one tolerance is documented where it is used.

Each test also states the workload its assertions need (enough requests, hits, requests in a phase). A run on a
machine too busy to produce it is rerun once, gentler, and otherwise fails saying it was starved
(tests/support/workload.py). Phase timing is checked as planned (the summary's settings) and never early; how
late a phase switch comes on a busy machine is not the scenario's business.
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
from loadtests.runner import LoadRun, locustfile, run_scenario
from tests.loadtests.conftest import Stack
from tests.support.phases import boundary_failures
from tests.support.workload import at_least, missing, with_workload

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]
KEY_ORDER = ("ordered", "shuffled")


class Summary(dict[str, Any]):
    """summary.json of a run, and the folder the run wrote (measurements.json, Locust's CSVs)."""

    def __init__(self, data: dict[str, Any], out: Path) -> None:
        super().__init__(data)
        self.out = out


def run(
    stack: Stack,
    tmp_path: Path,
    scenario: str,
    *,
    users: int = 8,
    duration: str = "3s",
    processes: int = 1,
    stub: bool = True,
    attempt: int = 0,
    **knobs: Any,
) -> Summary:
    """One run from a cold cache and a healthy stub (`attempt` > 0: a rerun, in its own folder)."""
    if attempt:
        stack.reset()
    load = LoadRun(
        scenario=scenario,
        host=stack.gateway_url,
        out=tmp_path / (scenario if not attempt else f"{scenario}-{attempt}"),
        users=users,
        duration=duration,
        stub_admin=stack.stub_url if stub else None,
        processes=processes,
        knobs={"--" + name.replace("_", "-"): str(value) for name, value in knobs.items()},
    )
    summary = run_scenario(load)
    check_consistency(summary, load.out)
    return Summary(summary, load.out)


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


def hits(s: dict[str, Any]) -> int:
    return int(s["by_cache_status"]["HIT"]["count"])


def test_steady_cold_cache_misses_each_key_once(stack: Stack, tmp_path: Path) -> None:
    s = with_workload(
        lambda n: run(stack, tmp_path, "steady", duration=("3s", "8s")[n], attempt=n, keys=200, zipf_s=1.0),
        lambda s: at_least("HIT answers (keys asked for again)", hits(s), 20),
        gentler="for 8 s",
    )
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
    """The rate is spread over all users of both processes: never more than it, about it when the machine can
    generate it (users start within a second). A generator that falls behind gets one run at 40 requests/s."""
    rates = (150, 40)
    s = with_workload(
        lambda n: run(
            stack, tmp_path, "steady", users=6, duration="4s", processes=2, attempt=n, rate=rates[n], keys=100
        ),
        lambda s: at_least("requests, at 75% of the rate", s["requests"], 0.75 * s["settings"]["rate"] * 4),
        gentler=f"at {rates[1]} requests/s",
    )
    check_upstream_exact(s)
    assert s["workers"] == 2
    assert s["requests"] <= 1.1 * s["settings"]["rate"] * 4  # not the rate per process (twice as many)
    check_collapsed(s["by_cache_status"]["MISS"]["count"], s["distinct_resources"])


OUTAGE_PHASES = "warmup=0.4,outage=0.3,recovery=0.3"


def outage_requests(s: dict[str, Any], where: str) -> int:
    """Requests of the outage phase in a group ("seen-key", "new-key") or to a target ("upstream")."""
    outage = next(p for p in s["phases"] if p["name"] == "outage")
    figures = outage["groups"].get(where) or outage["targets"].get(where) or {}
    return int(figures.get("requests", 0))


def outage_run(
    stack: Stack, tmp_path: Path, *, rates: tuple[float, float], needs: tuple[str, int], **knobs: Any
) -> Summary:
    """An outage run (entries fresh for 1 s only, so they go stale within the outage) that must have made
    `needs` = (group or target, count) requests during the outage; else once more at the second rate."""
    where, count = needs

    def attempt(n: int) -> Summary:
        if n:
            stack.reset()
        stack.faults({"cache_control": "max-age=1"})
        return run(stack, tmp_path, "outage", attempt=n, rate=rates[n], phases=OUTAGE_PHASES, **knobs)

    return with_workload(
        attempt,
        lambda s: at_least(f"{where} requests during the outage", outage_requests(s, where), count),
        gentler=f"at {rates[1]:g} requests/s",
    )


def test_outage_error_keeps_seen_keys_available_from_stale_entries(stack: Stack, tmp_path: Path) -> None:
    s = outage_run(
        stack, tmp_path, rates=(160, 60), needs=("seen-key", 20), duration="6s", keys=40, outage_mode="error"
    )
    check_upstream_exact_outage(s)
    assert stack.admin("GET", "/__admin/faults")["mode"] == "up"  # restored after the run
    _, outage, recovery = s["phases"]
    assert [p["name"] for p in s["phases"]] == ["warmup", "outage", "recovery"]
    # The fractions are of the run's 6 s; a phase never starts before its time (a busy machine may make it late).
    assert [(p["name"], p["seconds"]) for p in s["settings"]["phases"]] == [
        ("warmup", 2.4), ("outage", 1.8), ("recovery", 1.8)
    ]  # fmt: skip
    assert 2.4 - 0.1 <= outage["start_s"] < recovery["start_s"]
    assert recovery["start_s"] >= 4.2 - 0.1
    boundary_failures(s.out, "warmup", "outage").check(s["users"])  # (was: warm-up availability 1.0)
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
    s = outage_run(
        stack, tmp_path, rates=(100, 40), needs=("upstream", 5), duration="6s", keys=30, outage_mode="timeout",
        direct_share=0.3, request_timeout=1.5,
    )  # fmt: skip
    check_upstream_exact_outage(s)
    outage = s["phases"][1]
    direct = outage["targets"]["upstream"]
    # Every direct call that got no answer timed out (one sent just before the outage ended may still be answered).
    unanswered = direct["requests"] - round(direct["availability"] * direct["requests"])
    assert direct["errors"]["timeout"] == unanswered > 0
    # They waited for the client's 1.5 s request timeout, not less: a busy machine only adds to it.
    assert 0.95 * 1500 <= direct["by_cache_status"]["ERROR"]["p50_ms"] < 10 * 1500
    assert outage["groups"]["seen-key"]["availability"] == 1.0
    boundary_failures(s.out, "warmup", "outage", target="upstream").check(s["users"])


def test_outage_reset_classifies_connection_errors(stack: Stack, tmp_path: Path) -> None:
    s = outage_run(
        stack, tmp_path, rates=(150, 60), needs=("upstream", 10), duration="5s", keys=30, outage_mode="reset",
        direct_share=0.3,
    )  # fmt: skip
    check_upstream_exact_outage(s, direct_retries=True)
    outage = s["phases"][1]
    direct = outage["targets"]["upstream"]
    assert direct["errors"]["connection"] > 0
    assert direct["availability"] < 0.5
    assert outage["groups"]["seen-key"]["availability"] == 1.0
    assert s["phases"][2]["availability"] == 1.0


def test_stampede_one_upstream_request_per_refill(stack: Stack, tmp_path: Path) -> None:
    s = with_workload(
        lambda n: run(
            stack,
            tmp_path,
            "stampede",
            users=20,
            duration=("4.5s", "9s")[n],
            attempt=n,
            hot_max_age=1,
            hot_latency_ms=100,
        ),
        lambda s: at_least("expiries of the hot entry under load", s["stampede"]["expiries"] or 0, 3),
        gentler="for 9 s",
    )
    check_upstream_exact(s)
    st = s["stampede"]
    assert st["hot_path"] == "/items/1"
    assert sum(st["upstream_requests_per_expiry"]) == st["hot_path_upstream_requests"] == s["upstream_requests"]
    # 20 users, exactly one upstream request per refill
    assert st["max_upstream_requests_per_expiry"] == 1
    assert s["by_cache_status"]["MISS"]["count"] == 1  # the cold fill
    assert stack.admin("GET", "/__admin/faults")["routes"] == {}  # the hot-path override is removed


def test_key_order_shuffled_parameters_hit_as_often_as_ordered(stack: Stack, tmp_path: Path) -> None:
    """Hit ratios compared within 0.1 need a few hundred requests per group (~1500 each on a quiet machine)."""

    def shortfall(s: dict[str, Any]) -> str | None:
        groups = s["groups"]
        return missing(*(at_least(f"{g} requests", groups.get(g, {}).get("requests", 0), 300) for g in KEY_ORDER))

    s = with_workload(
        lambda n: run(stack, tmp_path, "key-order", duration=("3s", "8s")[n], attempt=n, keys=100),
        shortfall,
        gentler="for 8 s",
    )
    check_upstream_exact(s)
    ko = s["key_order"]
    for group in KEY_ORDER:
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
        deadline = time.monotonic() + 60  # Locust's start and the 1 s warm-up, on however busy a machine
        while stack.admin("GET", "/__admin/faults")["mode"] != "error" and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.2)
        assert stack.admin("GET", "/__admin/faults")["mode"] == "error"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        processes.stop(proc)
    assert stack.admin("GET", "/__admin/faults")["mode"] == "up"
    summary = json.loads(summary_path.read_text())
    assert [p["name"] for p in summary["phases"]] == ["warmup", "outage"]
    assert summary["requests"] > 0
