"""The fault suite: every fault under steady Locust load against the real native stack (redis-server, the stub,
the gateway running the proxy), with the figures table printed at the end of the run.

Each test is one `outage`-scenario run (warm-up, fault, recovery; cachelab.chaos.FaultRelay starts the fault when
the scenario starts its outage). `make test` runs the quick profile (about two minutes for all eight runs);
`make chaos` runs the full one, whose table is the README's "Reliability" section.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cachelab import chaos
from cachelab.stack import Stack
from tests.reliability.conftest import FIGURES, PLAN

pytestmark = [pytest.mark.chaos, pytest.mark.redis_server, pytest.mark.slow, pytest.mark.timeout(180)]

REDIS_FAULTS = ("redis-pause", "redis-kill")
OUTAGES = ("upstream-error", "upstream-timeout", "upstream-reset", "upstream-flapping")
# A paused Redis costs a request at most a few socket timeouts (0.25 s) before the breaker opens.
PAUSED_REDIS_P99_MS = 1500.0


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
class Suite:
    stack: Stack
    plan: chaos.Plan
    baseline: dict[str, Any]  # summary.json of the run without a fault


@pytest.fixture(scope="module")
def suite(stack: Stack, plan: chaos.Plan, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    summary, _ = chaos.run_fault(stack, chaos.NoFault(), plan, tmp_path_factory.mktemp("run-none"))
    return Suite(stack, plan, summary)


def gateway_log(stack: Stack) -> str:
    return (stack.workdir / "gateway.log").read_text(errors="replace")


@pytest.mark.parametrize("name", chaos.FAULT_NAMES)
def test_fault_under_load(name: str, suite: Suite, tmp_path: Path, pytestconfig: pytest.Config) -> None:
    stack = suite.stack
    fault = chaos.make_fault(name, stack, suite.plan)
    log_before = len(gateway_log(stack))
    if name == "none":
        summary, relay = suite.baseline, None
    else:
        summary, relay = chaos.run_fault(stack, fault, suite.plan, tmp_path / name)
    figures = chaos.figures(fault, summary, suite.baseline)
    pytestconfig.stash[FIGURES].append(figures)

    if relay is not None:  # the fault really happened, once, and was lifted
        assert (len(relay.started), len(relay.stopped)) == (1, 1)
    phases = {p["name"]: p for p in summary["phases"]}
    assert phases["warmup"]["failures"] == 0
    assert figures.fault_requests >= 20, "the load was not held through the fault"
    # Keys this run had already been answered stay available through every fault: HIT, STALE or BYPASS.
    assert figures.cached_failures == 0
    assert figures.cached_availability == 1.0
    # After the fault the cache is in use again and the hit ratio is back within the recovery phase.
    assert figures.bypass_at_end == 0
    assert figures.recovery_s is not None, f"hit ratio never got back to {figures.hit_ratio_before}"
    last = [row for row in summary["timeline"] if row["requests"]][-2:]
    assert {row["availability"] for row in last} == {1.0}

    if name in ("none", "upstream-slow", *REDIS_FAULTS):  # the upstream answers: nothing may fail
        assert summary["failures"] == 0
        assert figures.errors_5xx == figures.transport_errors == 0
        assert figures.uncached_availability == 1.0
    if name in REDIS_FAULTS:
        assert figures.by_cache_status.get("BYPASS", 0) > 0  # Redis was really out of the way
        assert figures.p99_ms is not None
        assert figures.p99_ms < PAUSED_REDIS_P99_MS
    if name in OUTAGES:
        # Cached keys came from stale entries (stale-if-error); a 5xx only for keys never fetched before.
        assert figures.by_cache_status.get("STALE", 0) > 0
        new_key = phases["outage"].get("groups", {}).get("new-key", {"requests": 0})
        assert figures.fault_5xx <= new_key["requests"]
        assert figures.transport_errors == 0  # the proxy answers even when the upstream resets or hangs
    added = gateway_log(stack)[log_before:]
    assert "unhandled error" not in added
    assert "Traceback" not in added
