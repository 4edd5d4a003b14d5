"""The native stack over HTTP: redis-server, the stub and the SAM-defined proxy behind the local gateway.

Real processes on free loopback ports; every assertion is about what a client of the gateway sees.
"""

from __future__ import annotations

import contextlib
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
from stub_api.client import StubAdmin
from tests.support.workload import with_workload


class Client:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.stub = StubAdmin(stack.stub_url, timeout=10)

    def get(self, path: str, timeout: float = 15) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(self.stack.gateway_url + path, timeout=timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    def upstream_requests(self, path: str) -> int:
        return int(self.stub.stats()["by_path"].get(path, 0))


@contextlib.contextmanager
def stack_client(workdir: Path, *, params: tuple[str, ...] = (), concurrency: int = 8) -> Iterator[Client]:
    """The native stack with every gateway environment warm (cold starts are not what these tests measure) and
    generous waits for a free environment: a busy machine is slow, not wrong."""
    config = StackConfig(
        stub_args=("--latency-ms", "20", "--seed", "3"),
        gateway_params=params,
        gateway_env={"UPSTREAM_TIMEOUT_SECONDS": "5", "CACHE_STALE_WHILE_REVALIDATE_SECONDS": "0"},
        gateway_args=("--throttle-wait", "60"),
        concurrency=concurrency,
        warm=concurrency,
        workdir=workdir,
    ).with_free_ports()
    with Stack(config, echo=False) as stack:
        yield Client(stack)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The template's function timeout (10 s) over a 5 s upstream timeout: a waiter can wait for the lock holder
    and still have time for its own fetch (with less, proxy/service.py gives every waiter its own fetch)."""
    with stack_client(tmp_path_factory.mktemp("stack")) as made:
        yield made


@pytest.fixture(scope="module")
def short_budget(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A 2 s function timeout, shorter than the 5 s upstream timeout: the Lambda deadline is what cuts."""
    with stack_client(tmp_path_factory.mktemp("short"), params=("FunctionTimeoutSeconds=2",), concurrency=1) as made:
        yield made


@pytest.fixture(autouse=True)
def _upstream_up(client: Client) -> None:
    client.stub.reset()


def test_miss_then_hit_and_expiry_revalidates(client: Client) -> None:
    """Fresh for 3 s: the second request comes well within that even on a busy machine."""
    first = client.get("/items/11?cc=max-age%3D3")
    second = client.get("/items/11?cc=max-age%3D3")
    assert (first[0], first[1]["x-cache"], second[1]["x-cache"]) == (200, "MISS", "HIT")
    assert second[2] == first[2]
    time.sleep(3.2)
    expired = client.get("/items/11?cc=max-age%3D3")
    assert expired[1]["x-cache"] == "HIT"  # the stub's ETag answered 304: renewed without the body
    assert "fwd=stale; fwd-status=304" in expired[1]["cache-status"]
    assert client.upstream_requests("/items/11") == 2


def test_stale_while_the_stub_is_down(client: Client) -> None:
    assert client.get("/items/12?cc=max-age%3D1")[1]["x-cache"] == "MISS"
    time.sleep(1.2)
    client.stub.faults({"mode": "error"})
    status, headers, body = client.get("/items/12?cc=max-age%3D1")
    assert (status, headers["x-cache"]) == (200, "STALE")
    assert json.loads(body)["id"] == 12
    uncached = client.get("/items/13")
    assert uncached[0] == 503  # nothing to fall back on: the upstream's own answer
    assert uncached[1]["x-cache"] == "MISS"


def test_100_concurrent_cold_requests_reach_the_upstream_once(client: Client) -> None:
    """100 requests for one uncached key at once, through 8 warm environments: one upstream request."""
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(100, timeout=60)

    def call() -> None:
        barrier.wait()
        status, headers, _ = client.get("/items/14?delay_ms=300", timeout=120)
        with lock:
            results.append((status, headers.get("x-cache", "")))

    threads = [threading.Thread(target=call) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert len(results) == 100
    assert all(status == 200 for status, _ in results), results
    assert client.upstream_requests("/items/14") == 1
    assert sorted({cache for _, cache in results}) == ["HIT", "MISS"]


def test_a_slow_upstream_is_cut_off_within_the_function_timeout(short_budget: Client) -> None:
    """The template gives the function 2 s; the proxy budgets its upstream call from the Lambda context's remaining
    time, so it answers its own 504 (keeping 0.25 s to answer) before Lambda would cut it off: the gateway's 504
    "Endpoint request timed out" (tested in tests/gateway with a handler that overruns) would be a failure here.
    The stub would take a minute. A function starved past its 0.25 s margin gets one more try."""
    short_budget.stub.reset()

    def attempt(n: int) -> tuple[int, dict[str, str], bytes]:
        return short_budget.get(f"/items/15?delay_ms=60000&attempt={n}", timeout=60)

    def shortfall(answer: tuple[int, dict[str, str], bytes]) -> str | None:
        if b"Endpoint request timed out" in answer[2]:
            return "the gateway cut the function off at its 2 s timeout: it had no time left to answer its own 504"
        return None

    status, headers, body = with_workload(attempt, shortfall, gentler="once more")
    assert status == 504
    assert headers["x-cache"] == "MISS"
    assert json.loads(body)["error"] == "upstream timed out"
    assert short_budget.get("/items/16")[0] == 200


def test_redis_killed_bypasses_then_recovers_after_restart(client: Client) -> None:
    stack = client.stack
    assert client.get("/items/17")[1]["x-cache"] == "MISS"
    redis = next(s for s in stack.services if s.name == "redis")
    processes.stop(redis.proc, timeout=1)
    answers = [client.get("/items/17") for _ in range(10)]
    assert [(a[0], a[1]["x-cache"]) for a in answers] == [(200, "BYPASS")] * 10
    redis.proc = processes.start_redis_server(stack.config.redis_port, workdir=stack.workdir / "redis-again")
    deadline = time.monotonic() + 60
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen.append(client.get("/items/17")[1]["x-cache"])
        if seen[-1] == "HIT":
            break
        time.sleep(0.3)
    assert seen[-1] == "HIT", seen
