"""The real thing: sam/template.yaml's proxy function behind the gateway, with redis-server and the stub API."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from cachelab import processes
from tests.gateway.support import REAL_TEMPLATE, Gateway, running_gateway

pytestmark = pytest.mark.redis_server


@pytest.fixture(scope="module")
def proxy_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if processes.redis_server_path() is None:
        pytest.fail("redis-server is not installed (make tools)")
    workdir = tmp_path_factory.mktemp("real")
    redis_port, stub_port = processes.free_port(), processes.free_port()
    redis = processes.start_redis_server(redis_port, workdir=workdir / "redis")
    try:
        stub_argv = [sys.executable, "-m", "stub_api", "--port", str(stub_port), "--seed", "7"]
        stub_health = f"http://{processes.LOOPBACK}:{stub_port}/__admin/health"
        with (
            processes.running(stub_argv, port=stub_port, log=workdir / "stub.log", health_url=stub_health),
            running_gateway(
                workdir,
                "--param", "RedisMode=external",
                "--param", f"RedisUrl=redis://{processes.LOOPBACK}:{redis_port}/0",
                "--param", "CacheTtlSeconds=60",
                template=REAL_TEMPLATE,
                env={"UPSTREAM_URL": f"http://{processes.LOOPBACK}:{stub_port}"},
            ) as gw,
        ):  # fmt: skip
            yield gw
    finally:
        processes.stop(redis)


def test_miss_then_hit_through_the_template_function(proxy_gateway: Gateway) -> None:
    first = proxy_gateway.get("/items/3", headers={"Accept": "application/json"})
    assert first.status == 200, first.body[:300]
    assert first.headers["X-Cache"] == "MISS"
    second = proxy_gateway.get("/items/3", headers={"Accept": "application/json"})
    assert second.status == 200
    assert second.headers["X-Cache"] == "HIT"
    assert second.body == first.body
    assert "Age" in second.headers
    assert "Cache-Status" in second.headers


def test_template_configuration_reaches_the_proxy(proxy_gateway: Gateway) -> None:
    (started,) = proxy_gateway.events("gateway_started")
    assert started["handler"] == "proxy.handler.lambda_handler"
    assert started["function"] == "ProxyFunction"
    assert started["env_overrides"] == ["UPSTREAM_URL"]
    cold = proxy_gateway.wait_events("cold_start", 1)
    assert cold[0]["function"] == "ProxyFunction"


def test_unknown_upstream_path_is_answered_by_the_proxy(proxy_gateway: Gateway) -> None:
    reply = proxy_gateway.get("/definitely-not-a-resource")
    assert reply.status == 404
    assert reply.headers["X-Cache"] in {"MISS", "BYPASS"}
