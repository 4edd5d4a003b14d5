"""The native stack over HTTP: redis-server, the stub and the SAM-defined proxy behind the local gateway.

Real processes on free loopback ports; every assertion is about what a client of the gateway sees.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachelab import processes
from cachelab.stack import Stack, StackConfig


class Client:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def get(self, path: str, timeout: float = 15) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(self.stack.gateway_url + path, timeout=timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    def admin(self, method: str, path: str, body: object | None = None) -> dict[str, object]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.stack.stub_url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as resp:
            result: dict[str, object] = json.loads(resp.read())
            return result

    def upstream_requests(self, path: str) -> int:
        stats = self.admin("GET", "/__admin/stats")
        by_path = stats["by_path"]
        assert isinstance(by_path, dict)
        return int(by_path.get(path, 0))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    ports = processes.free_ports(3)
    config = StackConfig(
        redis_port=ports[0],
        stub_port=ports[1],
        gateway_port=ports[2],
        locust_port=None,
        stub_args=("--latency-ms", "20", "--seed", "3"),
        gateway_params=("FunctionTimeoutSeconds=2",),
        gateway_env={"UPSTREAM_TIMEOUT_SECONDS": "5", "CACHE_STALE_WHILE_REVALIDATE_SECONDS": "0"},
        gateway_args=("--throttle-wait", "30"),
        concurrency=16,
        workdir=Path(tmp_path_factory.mktemp("stack")),
    )
    with Stack(config, echo=False) as stack:
        yield Client(stack)


@pytest.fixture(autouse=True)
def _upstream_up(client: Client) -> None:
    client.admin("POST", "/__admin/reset")


def test_miss_then_hit_and_expiry_revalidates(client: Client) -> None:
    first = client.get("/items/11?cc=max-age%3D1")
    second = client.get("/items/11?cc=max-age%3D1")
    assert (first[0], first[1]["x-cache"], second[1]["x-cache"]) == (200, "MISS", "HIT")
    assert second[2] == first[2]
    time.sleep(1.2)
    expired = client.get("/items/11?cc=max-age%3D1")
    assert expired[1]["x-cache"] == "HIT"  # the stub's ETag answered 304: renewed without the body
    assert "fwd=stale; fwd-status=304" in expired[1]["cache-status"]
    assert client.upstream_requests("/items/11") == 2


def test_stale_while_the_stub_is_down(client: Client) -> None:
    assert client.get("/items/12?cc=max-age%3D1")[1]["x-cache"] == "MISS"
    time.sleep(1.2)
    client.admin("POST", "/__admin/faults", {"mode": "error"})
    status, headers, body = client.get("/items/12?cc=max-age%3D1")
    assert (status, headers["x-cache"]) == (200, "STALE")
    assert json.loads(body)["id"] == 12
    uncached = client.get("/items/13")
    assert uncached[0] == 503  # nothing to fall back on: the upstream's own answer
    assert uncached[1]["x-cache"] == "MISS"


def test_100_concurrent_cold_requests_reach_the_upstream_once(client: Client) -> None:
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(100, timeout=20)

    def call() -> None:
        barrier.wait()
        status, headers, _ = client.get("/items/14?delay_ms=300", timeout=60)
        with lock:
            results.append((status, headers.get("x-cache", "")))

    threads = [threading.Thread(target=call) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert len(results) == 100
    assert all(status == 200 for status, _ in results), results
    assert client.upstream_requests("/items/14") == 1
    assert sorted({cache for _, cache in results}) == ["HIT", "MISS"]


def test_a_slow_upstream_is_cut_off_within_the_function_timeout(client: Client) -> None:
    """The template gives the function 2 s; the proxy budgets its upstream call from the Lambda context's remaining
    time, so it answers its own 504 before Lambda (and the gateway's 504 "Endpoint request timed out", tested in
    tests/gateway with a handler that overruns) would cut it off."""
    started = time.monotonic()
    status, headers, body = client.get("/items/15?delay_ms=4000")
    assert status == 504
    assert headers["x-cache"] == "MISS"
    assert json.loads(body)["error"] == "upstream timed out"
    assert time.monotonic() - started < 2.0
    assert client.get("/items/16")[0] == 200


def test_redis_killed_bypasses_then_recovers_after_restart(client: Client) -> None:
    stack = client.stack
    assert client.get("/items/17")[1]["x-cache"] == "MISS"
    redis = next(s for s in stack.services if s.name == "redis")
    processes.stop(redis.proc, timeout=1)
    answers = [client.get("/items/17") for _ in range(10)]
    assert [(a[0], a[1]["x-cache"]) for a in answers] == [(200, "BYPASS")] * 10
    redis.proc = processes.start_redis_server(stack.config.redis_port, workdir=stack.workdir / "redis-again")
    deadline = time.monotonic() + 20
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen.append(client.get("/items/17")[1]["x-cache"])
        if seen[-1] == "HIT":
            break
        time.sleep(0.3)
    assert seen[-1] == "HIT", seen
