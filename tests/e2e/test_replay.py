"""`cachelab load replay` through the native stack agrees exactly with `cachelab whatif` (issue 18).

redis-server, the stub (a fixed 60 ms latency) and the gateway run on free loopback ports. The trace mixes what the
proxy's decisions depend on: bursts of concurrent cold requests (collapsed into one fetch), expiries and
refreshes (stale-while-revalidate on), the same query in two parameter orders, a 404 under the negative TTL.
Requests sit on a 1 s grid and the TTLs end half-way between grid points (2.5 s, 1.5 s), so no request lands within
0.5 s of an expiry boundary, where replay jitter would decide; only requests landing during a refresh
are timing-sensitive, and the simulator counts them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachelab.cli import main
from cachelab.stack import Stack, StackConfig

TTL = "2.5"
NEGATIVE_TTL = "1.5"
GRID_SECONDS = 1.0  # requests sit on this grid; the TTLs end half-way between two points
STUB_LATENCY_MS = "60"
TARGETS = [f"/items/{i}" for i in range(1, 9)] + ["/items?page=2&size=5", "/items?size=5&page=2", "/items/99999"]


def write_trace(path: Path, seed: int = 18) -> int:
    rng = random.Random(seed)
    start = 1_735_725_600.0
    rows = ["timestamp,method,path,status"]
    for step in range(24):  # 24 s
        base = start + step * GRID_SECONDS
        for target in rng.sample(TARGETS, rng.randint(1, 3)):
            status = 404 if target.endswith("99999") else 200
            count = rng.randint(5, 9) if rng.random() < 0.15 else 1  # a burst: concurrent requests
            rows.extend(f"{base + i * 0.003:.3f},GET,{target},{status}" for i in range(count))
    rows.append(f"{start + 3.0:.3f},POST,/items/1,201")  # left out of the replay and of the prediction
    rows.sort(key=lambda r: r.split(",")[0])
    path.write_text("\n".join(rows) + "\n")
    return len(rows) - 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = StackConfig(
        stub_args=("--latency-ms", STUB_LATENCY_MS, "--seed", "18"),
        gateway_env={
            "CACHE_TTL_SECONDS": TTL,
            "CACHE_NEGATIVE_TTL_SECONDS": NEGATIVE_TTL,
            "UPSTREAM_TIMEOUT_SECONDS": "5",
        },
        gateway_args=("--throttle-wait", "30"),
        concurrency=16,
        warm=16,
        workdir=Path(tmp_path_factory.mktemp("replay-stack")),
    ).with_free_ports()
    with Stack(config, echo=False) as running:
        yield running


@pytest.mark.redis_server
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_replay_agrees_with_whatif(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.csv"
    requests = write_trace(trace)
    policy = ["--ttl", TTL, "--negative-ttl", NEGATIVE_TTL, "--latency-ms", STUB_LATENCY_MS]
    code = main(
        ["load", "replay", str(trace), "--host", stack.gateway_url, "--stub-admin", stack.stub_url,
         "--users", "24", "--out", str(tmp_path / "run"), "-q", *policy]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    w = summary["whatif"]
    assert w["planned_requests"] == requests == summary["requests"]
    assert summary["availability"] == 1.0
    assert summary["settings"]["replay"]["sent"] == requests
    assert w["measured_from"] == "stub"
    # the contract: the same upstream request count, within the requests that landed during a refresh
    assert abs(w["difference"]) <= w["during_refresh"]
    assert w["within_refresh_tolerance"] is True
    # This trace keeps every request 0.5 s off the expiry boundaries. While the replay kept the log's timing (no
    # request started 0.1 s late, none took 350 ms to answer: together under the 0.5 s margin) the counts are equal;
    # on a machine too busy for that, the contract above is what holds.
    kept_timing = w["max_lag_s"] < 0.1 and summary["latency"]["max_ms"] < 350
    if kept_timing:
        assert w["measured_upstream_requests"] == w["predicted_upstream_requests"], w
    assert 0 < w["predicted_upstream_requests"] < requests
    assert "agrees within the" in printed
    # `cachelab whatif` on the same file predicts the same count (the replay only shifts the clock)
    assert main(["whatif", str(trace), *policy, "--out", str(tmp_path / "whatif"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "whatif" / "whatif.json").read_text())
    assert report["results"][0]["upstream_requests"] == w["predicted_upstream_requests"]
    assert report["problems"]["not GET/HEAD"]["count"] == 1
