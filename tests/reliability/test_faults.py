"""The fault suite: every fault under steady Locust load against the real native stack (redis-server, the stub,
the gateway running the proxy), with the figures table printed at the end of the run.

Each test is one `outage`-scenario run (warm-up, fault, recovery; cachelab.chaos.FaultRelay starts the fault when
the scenario starts its outage). `make test` runs the quick profile (about two minutes for all eight runs);
`make chaos` runs the full one, whose table is in docs/reliability.md.

Latency is a figure of that table, never asserted here: a busy machine makes every answer later. A run whose
warm-up already failed (no fault yet), that did not hold the load through the fault, or whose healthy upstream
timed out, is a run the machine starved: it is run once more at half the rate, and otherwise the test fails
saying so (tests/support/workload.py).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cachelab import chaos
from cachelab.stack import Stack
from tests.reliability.conftest import FIGURES, PLAN
from tests.support.phases import boundary_failures
from tests.support.workload import at_least, missing, with_workload

pytestmark = [pytest.mark.chaos, pytest.mark.redis_server, pytest.mark.slow, pytest.mark.timeout(300)]

REDIS_FAULTS = ("redis-pause", "redis-kill")
OUTAGES = ("upstream-error", "upstream-timeout", "upstream-reset", "upstream-flapping")
UPSTREAM_ANSWERS = ("none", "upstream-slow", *REDIS_FAULTS)  # the upstream answers: nothing may fail


@pytest.fixture(scope="module")
def plan(pytestconfig: pytest.Config) -> chaos.Plan:
    profile = os.environ.get("CACHELAB_CHAOS_PROFILE", "quick")
    if profile not in chaos.PROFILES:
        pytest.fail(f"CACHELAB_CHAOS_PROFILE must be one of {', '.join(chaos.PROFILES)}, not {profile!r}")
    chosen = chaos.PROFILES[profile]
    pytestconfig.stash[PLAN] = chosen
    return chosen


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(chaos.stack_config(tmp_path_factory.mktemp("chaos")), echo=False) as running:
        if running.fake_redis:
            pytest.fail("the fault suite needs a real redis-server (apt-get install redis-server)")
        yield running


@dataclass
class Run:
    fault: chaos.Fault
    summary: dict[str, Any]
    relay: chaos.RelayLog | None
    out: Path
    plan: chaos.Plan


def shortfall(run: Run) -> str | None:
    """What a starved machine did to this run, if anything (the fault itself cannot cause any of it)."""
    early = boundary_failures(run.out, "warmup", "outage").before
    outage = next(p for p in run.summary["phases"] if p["name"] == "outage")
    timeouts = int(run.summary["errors"]["by_status"].get("504", 0))
    return missing(
        f"{early} warm-up requests failed before the fault began" if early else None,
        at_least("requests during the fault", int(outage["requests"]), 20),
        f"{timeouts} upstream timeouts (504) from an upstream that answers within its timeout"
        if run.fault.name in UPSTREAM_ANSWERS and timeouts
        else None,
    )


def run_fault(stack: Stack, name: str, plan: chaos.Plan, out: Path) -> Run:
    def attempt(n: int) -> Run:
        gentler = plan if n == 0 else dataclasses.replace(plan, rate=plan.rate / 2)
        fault = chaos.make_fault(name, stack, gentler)
        folder = out / f"{name}-{n}"
        summary, relay = chaos.run_fault(stack, fault, gentler, folder)
        return Run(fault, summary, relay if name != "none" else None, folder, gentler)

    return with_workload(attempt, shortfall, gentler=f"at {plan.rate / 2:g} requests/s")


@dataclass
class Suite:
    stack: Stack
    plan: chaos.Plan
    baseline: Run  # the run without a fault


@pytest.fixture(scope="module")
def suite(stack: Stack, plan: chaos.Plan, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return Suite(stack, plan, run_fault(stack, "none", plan, tmp_path_factory.mktemp("run-none")))


def gateway_log(stack: Stack) -> str:
    return (stack.workdir / "gateway.log").read_text(errors="replace")


@pytest.mark.parametrize("name", chaos.FAULT_NAMES)
def test_fault_under_load(name: str, suite: Suite, tmp_path: Path, pytestconfig: pytest.Config) -> None:
    stack = suite.stack
    log_before = len(gateway_log(stack))
    run = suite.baseline if name == "none" else run_fault(stack, name, suite.plan, tmp_path)
    summary = run.summary
    figures = chaos.figures(run.fault, summary, suite.baseline.summary)
    pytestconfig.stash[FIGURES].append(figures)

    if run.relay is not None:  # the fault really happened, once, and was lifted
        assert (len(run.relay.started), len(run.relay.stopped)) == (1, 1)
    phases = {p["name"]: p for p in summary["phases"]}
    boundary_failures(run.out, "warmup", "outage").check(run.plan.users)  # before the fault: nothing fails
    assert figures.fault_requests >= 20, "the load was not held through the fault"
    # Keys this run had already been answered stay available through every fault: HIT, STALE or BYPASS.
    assert figures.cached_failures == 0
    assert figures.cached_availability == 1.0
    # After the fault the cache is in use again and the hit ratio is back within the recovery phase.
    assert figures.bypass_at_end == 0
    assert figures.recovery_s is not None, f"hit ratio never got back to {figures.hit_ratio_before}"
    last = [row for row in summary["timeline"] if row["requests"]][-2:]
    assert {row["availability"] for row in last} == {1.0}

    if name in UPSTREAM_ANSWERS:  # the upstream answers: nothing may fail
        assert summary["failures"] == 0
        assert figures.errors_5xx == figures.transport_errors == 0
        assert figures.uncached_availability == 1.0
    if name in REDIS_FAULTS:
        assert figures.by_cache_status.get("BYPASS", 0) > 0  # Redis was really out of the way
    if name in OUTAGES:
        # Cached keys came from stale entries (stale-if-error); a 5xx only for keys never fetched before.
        assert figures.by_cache_status.get("STALE", 0) > 0
        new_key = phases["outage"].get("groups", {}).get("new-key", {"requests": 0})
        assert figures.fault_5xx <= new_key["requests"]
        assert figures.transport_errors == 0  # the proxy answers even when the upstream resets or hangs
    added = gateway_log(stack)[log_before:]
    assert "unhandled error" not in added
    assert "Traceback" not in added
