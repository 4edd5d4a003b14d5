"""One short real run of the native stack for the whole tests/notebooks session.

redis-server, the stub API and the gateway start on free loopback ports (cachelab.stack.Stack); the steady
scenario runs for STEADY_SECONDS with a Zipf workload the model can predict (stale-while-revalidate off, a
fixed stub seed, a low-latency stub), then the stub and Redis are reset and a short outage run follows (for
the outage charts). The stack is stopped before any test runs; the tests read the results directories
`cachelab load` wrote. Each run must have produced the workload the tests read (steady: answered at about its
rate, nothing failed; outage: a clean warm-up, seen keys asked for during the outage); one that did not is run
again gentler, and otherwise the fixture fails saying the machine starved it. The runs are made once per test
run, also with several xdist workers.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from cachelab import processes
from loadtests.runner import LoadRun, run_scenario
from cachelab.stack import Stack, StackConfig
from tests.support.phases import boundary_failures
from tests.support.shared import once_per_run
from tests.support.workload import at_least, missing, with_workload

TTL_SECONDS = 5.0
STEADY_SECONDS = 24
STEADY_KNOBS = {"--keys": "200", "--zipf-s": "1.0", "--rate": "100", "--direct-share": "0.1"}
# A machine too busy for the steady run gets one more at a lower rate, longer (about as many requests): the
# model's hit ratio is still far from trivial there (0.72 predicted at 54 proxy requests/s).
GENTLER_STEADY = (36, "60")
OUTAGE_KNOBS = {"--keys": "100", "--rate": "100", "--phases": "warmup=4s,outage=4s,recovery=4s"}
GATEWAY_ENV = {
    "CACHE_TTL_SECONDS": f"{TTL_SECONDS:g}",
    "CACHE_STALE_WHILE_REVALIDATE_SECONDS": "0",  # labels as the model counts them (see analysis/ttl_model.py)
    "UPSTREAM_TIMEOUT_SECONDS": "1",
}
STUB_ARGS = ("--latency-ms", "20", "--latency-p99-ms", "60", "--seed", "7")
CONCURRENCY = 10  # every environment warm before the first run: no cold starts inside the measured runs


@dataclass(frozen=True)
class RealRuns:
    steady: Path  # results directory of the steady run
    outage: Path
    ttl_s: float

    def summary(self, which: str) -> dict[str, Any]:
        return read_summary(getattr(self, which))


def read_summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


def _reset(stack: Stack) -> None:
    request = urllib.request.Request(stack.stub_url + "/__admin/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=30)
    try:
        client.flushall()
    finally:
        client.close()


def steady_shortfall(out: Path) -> str | None:
    """The model describes a run that answered what it was asked, at about its rate, with nothing failing."""
    summary = read_summary(out)
    settings = summary["settings"]
    planned = settings["rate"] * (1 - settings["direct_share"]) * settings["run_seconds"]
    failed = summary["failures"]
    return missing(
        at_least("proxy requests answered, at 60% of the rate", summary["answered"], 0.6 * planned),
        f"{failed} requests failed ({summary['errors']})" if failed else None,
    )


def outage_shortfall(out: Path) -> str | None:
    """The outage charts need a clean warm-up and requests for seen keys during the outage."""
    summary = read_summary(out)
    outage = next(p for p in summary["phases"] if p["name"] == "outage")
    early = boundary_failures(out, "warmup", "outage").before
    return missing(
        at_least("requests for seen keys during the outage", outage["groups"]["seen-key"]["requests"], 50),
        f"{early} warm-up requests failed before the outage" if early else None,
    )


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> RealRuns:
    """Made once per test run, whatever the number of workers (tests/support/shared.py)."""
    steady, outage = once_per_run(tmp_path_factory, "notebook-runs", lambda: _real_runs(tmp_path_factory))
    return RealRuns(Path(steady), Path(outage), TTL_SECONDS)


def _real_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    out = tmp_path_factory.mktemp("runs")
    redis_port, stub_port, gateway_port = processes.free_ports(3)
    config = StackConfig(
        redis_port=redis_port,
        stub_port=stub_port,
        gateway_port=gateway_port,
        locust_port=None,
        stub_args=STUB_ARGS,
        gateway_env=dict(GATEWAY_ENV),
        concurrency=CONCURRENCY,
        warm=CONCURRENCY,
        workdir=out / "stack",
    )
    with Stack(config, echo=False) as stack:
        common: dict[str, Any] = {"host": stack.gateway_url, "users": 10, "stub_admin": stack.stub_url}

        def steady(attempt: int) -> Path:
            _reset(stack)
            seconds, rate = (STEADY_SECONDS, STEADY_KNOBS["--rate"]) if attempt == 0 else GENTLER_STEADY
            knobs = {**STEADY_KNOBS, "--rate": rate}
            run = LoadRun(
                "steady", out=out / f"attempt-{attempt}" / "steady", duration=f"{seconds}s", knobs=knobs, **common
            )
            run_scenario(run)
            return run.out

        def outage(attempt: int) -> Path:
            _reset(stack)
            knobs = {**OUTAGE_KNOBS, "--rate": "100" if attempt == 0 else "50"}
            run = LoadRun("outage", out=out / f"attempt-{attempt}" / "outage", duration="12s", knobs=knobs, **common)
            run_scenario(run)
            return run.out

        steady_out = with_workload(steady, steady_shortfall, gentler=f"at {GENTLER_STEADY[1]} requests/s")
        outage_out = with_workload(outage, outage_shortfall, gentler="at 50 requests/s")
    return str(steady_out), str(outage_out)
