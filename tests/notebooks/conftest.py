"""One short real run of the native stack for the whole tests/notebooks session.

redis-server, the stub API and the gateway start on free loopback ports (cachelab.stack.Stack); the steady
scenario runs for STEADY_SECONDS with a Zipf workload the model can predict (stale-while-revalidate off, a
fixed stub seed, a low-latency stub), then the stub and Redis are reset and a short outage run follows (for
the outage charts). The stack is stopped before any test runs; the tests read the results directories
`cachelab load` wrote.
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
from cachelab.commands.load import LoadRun, run_scenario
from cachelab.stack import Stack, StackConfig

TTL_SECONDS = 5.0
STEADY_SECONDS = 24
STEADY_KNOBS = {"--keys": "200", "--zipf-s": "1.0", "--rate": "100", "--direct-share": "0.1"}
OUTAGE_KNOBS = {"--keys": "100", "--rate": "100", "--phases": "warmup=4s,outage=4s,recovery=4s"}
GATEWAY_ENV = {
    "CACHE_TTL_SECONDS": f"{TTL_SECONDS:g}",
    "CACHE_STALE_WHILE_REVALIDATE_SECONDS": "0",  # labels as the model counts them (see loadtests/model.py)
    "UPSTREAM_TIMEOUT_SECONDS": "1",
}
STUB_ARGS = ("--latency-ms", "20", "--latency-p99-ms", "60", "--seed", "7")


@dataclass(frozen=True)
class RealRuns:
    steady: Path  # results directory of the steady run
    outage: Path
    ttl_s: float

    def summary(self, which: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((getattr(self, which) / "summary.json").read_text())
        return data


def _reset(stack: Stack) -> None:
    request = urllib.request.Request(stack.stub_url + "/__admin/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
    try:
        client.flushall()
    finally:
        client.close()


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> RealRuns:
    out = tmp_path_factory.mktemp("runs")
    redis_port, stub_port, gateway_port = processes.free_ports(3)
    config = StackConfig(
        redis_port=redis_port,
        stub_port=stub_port,
        gateway_port=gateway_port,
        locust_port=None,
        stub_args=STUB_ARGS,
        gateway_env=dict(GATEWAY_ENV),
        workdir=out / "stack",
    )
    with Stack(config, echo=False) as stack:
        common: dict[str, Any] = {"host": stack.gateway_url, "users": 10, "stub_admin": stack.stub_url}
        duration = f"{STEADY_SECONDS}s"
        steady = LoadRun("steady", out=out / "steady", duration=duration, knobs=STEADY_KNOBS, **common)
        run_scenario(steady)
        _reset(stack)
        outage = LoadRun("outage", out=out / "outage", duration="12s", knobs=OUTAGE_KNOBS, **common)
        run_scenario(outage)
    return RealRuns(steady.out, outage.out, TTL_SECONDS)
