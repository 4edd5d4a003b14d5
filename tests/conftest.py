"""Shared fixtures: a real redis-server, a scriptable origin, and proxies wired to both."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, settings

from cachelab import processes
from proxy.config import Settings
from proxy.service import CachingProxy
from proxy.store import RedisStore
from proxy.upstream import Urllib3Upstream
from tests.support.upstream import Origin

# Hypothesis: the same examples on every run (derandomize, no example database), so CI, a busy laptop and a quiet
# one agree, and no check depends on the machine's speed (no per-example deadline, no too_slow health check). A
# failure prints the falsifying example and a @reproduce_failure line that replays it.
# HYPOTHESIS_PROFILE=explore draws fresh random examples each run (and keeps failures in .hypothesis/) to search.
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


UNIT_FOLDERS = ("unit", "contract")  # every test in these is a unit test; elsewhere a file says so (pytestmark)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(tests) and item.path.relative_to(tests).parts[0] in UNIT_FOLDERS:
            item.add_marker(pytest.mark.unit)


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = processes.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = processes.start_redis_server(self.port, workdir=workdir)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def stop(self) -> None:
        processes.stop(self.proc)

    def restart(self) -> None:
        self.stop()
        self.proc = processes.start_redis_server(self.port, workdir=self.workdir)


@pytest.fixture(scope="session")
def redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run `make test` (installs it) or apt-get install redis-server")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    if redis_session.proc.poll() is not None:
        redis_session.restart()
    redis_session.client().flushall()
    return redis_session


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


def make_settings(upstream_url: str, redis_url: str, **env: str) -> Settings:
    return Settings.from_env({"UPSTREAM_URL": upstream_url, "REDIS_URL": redis_url, **env})


@pytest.fixture
def proxy_factory(origin: Origin, redis_server: RedisServer) -> Iterator[Callable[..., CachingProxy]]:
    """Each call makes an independent proxy (its own clients): one Lambda execution environment."""
    made: list[CachingProxy] = []

    def factory(**env: Any) -> CachingProxy:
        settings = make_settings(origin.url, redis_server.url, **{k: str(v) for k, v in env.items()})
        proxy = CachingProxy(RedisStore.from_settings(settings), Urllib3Upstream(settings.upstream_url), settings)
        made.append(proxy)
        return proxy

    yield factory
    for proxy in made:
        proxy.store.close()  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _no_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's real AWS or proxy configuration."""
    for name in list(os.environ):
        if name.startswith(("AWS_LAMBDA_", "CACHE_", "REDIS_")) or name == "UPSTREAM_URL":
            monkeypatch.delenv(name, raising=False)
