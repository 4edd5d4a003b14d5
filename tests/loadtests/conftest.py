"""The real native stack the scenario tests run against: redis-server, the stub API and `cachelab gateway`.

One stack for the whole session (starting it costs seconds); `stack` resets the stub and flushes Redis before
each test, so every scenario starts from a cold cache and a healthy upstream.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cachelab import processes
from tests.conftest import RedisServer

# The proxy's settings for the scenario tests: a short upstream timeout keeps the timeout-mode outage quick.
GATEWAY_ENV = {
    "CACHE_TTL_SECONDS": "300",
    "UPSTREAM_TIMEOUT_SECONDS": "1",
    "LOG_LEVEL": "INFO",
}
CONCURRENCY = 10


@dataclass
class Stack:
    gateway_url: str
    stub_url: str
    redis: RedisServer
    logs: Path

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.stub_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def faults(self, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "/__admin/faults", patch)
        return result

    def upstream_count(self) -> int:
        return int(self.admin("GET", "/__admin/stats")["requests"])

    def reset(self) -> None:
        """A healthy stub with zeroed counters and an empty cache: a cold start for the next run."""
        self.admin("POST", "/__admin/reset")
        client = self.redis.client()
        try:
            client.flushall()
        finally:
            client.close()


@pytest.fixture(scope="session")
def native_stack(redis_session: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("stack")
    stub_port = processes.free_port()
    gateway_port = processes.free_port()
    stub_url = f"http://127.0.0.1:{stub_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    stub_argv = [sys.executable, "-m", "stub_api", "--port", str(stub_port)]
    env = {**os.environ, **GATEWAY_ENV, "UPSTREAM_URL": stub_url, "REDIS_URL": redis_session.url}
    # Every environment warm before the first run (a cold start takes seconds on a busy machine, which a 3 s run
    # cannot spare), and a long wait for a free one instead of 429s when the machine is slow.
    gateway_argv = [sys.executable, "-m", "cachelab", "gateway", "--port", str(gateway_port),
                    "--concurrency", str(CONCURRENCY), "--warm", str(CONCURRENCY), "--throttle-wait", "30"]  # fmt: skip
    with (
        processes.running(
            stub_argv, port=stub_port, log=logs / "stub.log", health_url=stub_url + "/__admin/health", timeout=60
        ),
        processes.running(gateway_argv, port=gateway_port, env=env, log=logs / "gateway.log", timeout=120),
    ):
        yield Stack(gateway_url, stub_url, redis_session, logs)


@pytest.fixture
def stack(native_stack: Stack) -> Stack:
    native_stack.reset()
    return native_stack
