"""One outage-scenario run with a fault in its outage phase.

Each fault runs as the `outage` Locust scenario (warm-up, fault, recovery) against a native `Stack`, with a
`FaultRelay` (cachelab.chaos.relay) as the scenario's `--stub-admin`: so every fault gets the scenario's phase timing,
its `seen-key`/`new-key` groups and its per-second timeline, and `figures` (cachelab.chaos.figures) turns the run's
summary.json into its row of the figures table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis as redis_py

from cachelab.chaos.faults import Fault, FaultError
from cachelab.chaos.plan import Plan
from cachelab.chaos.relay import RelayLog, relaying
from cachelab.processes import LOOPBACK
from cachelab.stack import Stack
from loadtests.runner import LoadRun, run_scenario
from stub_api.client import StubAdmin


def reset(stack: Stack) -> None:
    """A healthy stub with zeroed counters and an empty cache."""
    StubAdmin(stack.stub_url).reset()
    if stack.alive("redis"):
        client = redis_py.Redis(host=LOOPBACK, port=stack.config.redis_port, socket_timeout=5)
        try:
            client.flushall()
        finally:
            client.close()


def run_fault(stack: Stack, fault: Fault, plan: Plan, out: Path) -> tuple[dict[str, Any], RelayLog]:
    """One outage-scenario run with `fault` during its outage phase; summary.json and the relay's log."""
    reset(stack)
    phases = f"warmup={plan.warmup_s:g}s,outage={plan.fault_s:g}s,recovery={plan.recovery_s:g}s"
    with relaying(stack.stub_url, fault) as relay:
        load = LoadRun(
            scenario="outage",
            host=stack.gateway_url,
            out=out,
            users=plan.users,
            duration=f"{plan.duration_s:g}s",
            stub_admin=relay.url,
            knobs={"--phases": phases, "--rate": f"{plan.rate:g}", "--keys": str(plan.keys), "--progress": "0"},
        )
        summary = run_scenario(load)
    if relay.log.errors:
        raise FaultError(f"{fault.name}: " + "; ".join(relay.log.errors))
    return summary, relay.log
