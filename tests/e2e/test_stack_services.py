"""`Stack.kill`, `pause`/`resume` and `restart` on a real native stack (redis-server, the stub, the gateway), seen
from a client: the proxy bypasses a Redis that is gone or hung, and uses it again once it is back."""

from __future__ import annotations

import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import redis

from cachelab import processes
from cachelab.stack import Stack, StackConfig, StackError
from stub_api.client import StubAdmin

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = StackConfig(
        stub_args=("--seed", "5"),
        gateway_env={"UPSTREAM_TIMEOUT_SECONDS": "5", "LOG_LEVEL": "INFO"},
        concurrency=2,
        warm=2,
        workdir=tmp_path_factory.mktemp("services"),
    ).with_free_ports()
    with Stack(config, echo=False) as running:
        if running.fake_redis:
            pytest.fail("these tests need a real redis-server (apt-get install redis-server)")
        yield running


@pytest.fixture(autouse=True)
def _every_service_up(stack: Stack) -> None:
    for name in ("redis", "stub"):
        stack.resume(name)
        if not stack.alive(name):
            stack.restart(name)
    StubAdmin(stack.stub_url).reset()
    _redis(stack).flushall()


def _redis(stack: Stack, timeout: float = 5.0) -> redis.Redis:
    return redis.Redis(host=processes.LOOPBACK, port=stack.config.redis_port, socket_timeout=timeout)


def _x_cache(stack: Stack, path: str) -> str:
    try:
        with urllib.request.urlopen(stack.gateway_url + path, timeout=30) as resp:
            return str(resp.headers["X-Cache"])
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.headers.get('X-Cache')}"


def test_kill_then_restart_redis(stack: Stack) -> None:
    assert _x_cache(stack, "/items/1") == "MISS"
    first = stack.service("redis").proc
    stack.kill("redis")
    assert first.returncode == -signal.SIGKILL
    assert not stack.alive("redis")
    assert not processes.port_open(stack.config.redis_port)
    assert _x_cache(stack, "/items/1") == "BYPASS"  # the proxy answers from the upstream without its cache
    stack.kill("redis")  # already gone: nothing happens

    stack.restart("redis")
    assert stack.alive("redis")
    assert stack.service("redis").proc is not first
    assert _redis(stack).dbsize() == 0  # restarted empty
    # Each gateway environment's breaker tries Redis again after its cool-down (at most 5 s): then MISS, HIT.
    for _ in range(160):  # 0.25 s apart: 40 s at most
        if _x_cache(stack, "/items/2") == "HIT":
            break
        time.sleep(0.25)
    else:
        pytest.fail("the proxy never used the restarted Redis again")


def test_pause_hangs_redis_until_resume(stack: Stack) -> None:
    _redis(stack).set("k", "v")
    stack.pause("redis")
    assert stack.alive("redis")
    with socket.create_connection((processes.LOOPBACK, stack.config.redis_port), timeout=5):
        pass  # the kernel still accepts connections for it
    with pytest.raises(redis.TimeoutError):
        _redis(stack, timeout=0.5).get("k")
    stack.resume("redis")
    assert _redis(stack).get("k") == b"v"
    stack.resume("redis")  # not paused: nothing happens


def test_restart_the_stub(stack: Stack) -> None:
    admin = StubAdmin(stack.stub_url)
    admin.faults({"mode": "error"})
    before = stack.service("stub").proc
    stack.restart("stub")
    assert before.returncode is not None
    assert stack.service("stub").proc.pid != before.pid
    assert admin.fault_state()["mode"] == "up"  # a fresh process: its start state
    assert admin.stats()["requests"] == 0


def test_a_paused_service_still_stops_with_the_stack(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = StackConfig(concurrency=1, workdir=tmp_path_factory.mktemp("paused")).with_free_ports()
    with Stack(config, echo=False) as stack:
        stack.pause("redis")
        redis_proc = stack.service("redis").proc
    assert redis_proc.returncode is not None
    assert redis_proc.returncode != -signal.SIGKILL  # resumed, so it heard SIGTERM and ended on its own


def test_an_unknown_or_stopped_service_is_an_error(stack: Stack) -> None:
    with pytest.raises(StackError, match="no 'mongo' service; it runs redis, stub, gateway"):
        stack.kill("mongo")
    stack.kill("redis")
    with pytest.raises(StackError, match="redis is not running"):
        stack.pause("redis")
