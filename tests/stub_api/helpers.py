"""Talking to a real stub_api process over HTTP, for the tests in this folder."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp

from cachelab import processes
from stub_api.client import StubAdmin


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def latency_ms(self) -> float:
        """The latency the stub says it waited (X-Stub-Latency-Ms)."""
        return float(self.headers["X-Stub-Latency-Ms"])


class StubClient:
    """A tiny HTTP client for one stub: a fresh connection per request, a timeout on every call."""

    def __init__(self, port: int, proc: Any = None, log: Path | None = None) -> None:
        self.port = port
        self.proc = proc
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.api = StubAdmin(self.url, timeout=10)  # the admin API through the one client the tools use

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status, resp.headers, data, time.monotonic() - started)
        finally:
            conn.close()

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def admin(self, method: str, path: str, payload: object = None) -> Any:
        body = None if payload is None else json.dumps(payload)
        headers = {} if payload is None else {"Content-Type": "application/json"}
        reply = self.request(method, f"/__admin/{path}", body=body, headers=headers)
        assert reply.status == 200, (method, path, reply.status, reply.body[:500])
        return reply.json()

    def faults(self, **patch: object) -> Any:
        return self.api.faults(patch)

    def stats(self) -> Any:
        return self.api.stats()

    def reset(self) -> Any:
        return self.api.reset()

    def wait_stats(self, predicate: Any, timeout: float = 5.0) -> Any:
        """Poll the stats until `predicate(stats)` holds (the server notices closed connections a bit later)."""
        deadline = time.monotonic() + timeout
        stats = self.stats()
        while not predicate(stats) and time.monotonic() < deadline:
            time.sleep(0.05)
            stats = self.stats()
        return stats


def stub_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any STUB_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUB_")}
    env.update(extra or {})
    return env


@contextlib.contextmanager
def running_stub(
    args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    log_dir: Path,
    argv0: Sequence[str] | None = None,
    port: int | None = None,
) -> Iterator[StubClient]:
    """A real `python -m stub_api` (or `argv0`) process on a free loopback port, stopped at the end."""
    port = processes.free_port() if port is None else port
    command = [*(argv0 or [sys.executable, "-m", "stub_api"]), "--port", str(port), *args]
    log = log_dir / f"stub-{port}.log"
    with processes.running(
        command, port=port, env=stub_env(env), log=log, health_url=f"http://127.0.0.1:{port}/__admin/health", timeout=60
    ) as proc:
        yield StubClient(port, proc, log)


@dataclass
class Timed:
    status: int
    started: float
    ended: float
    latency_ms: float | None
    error: str | None = None

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


async def _fetch_all(urls: Sequence[str], timeout: float, limit: int | None) -> list[Timed]:
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    gate = asyncio.Semaphore(limit or len(urls) or 1)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def one(url: str) -> Timed:
            async with gate:
                return await timed(url)

        async def timed(url: str) -> Timed:
            started = time.monotonic()
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    header = resp.headers.get("X-Stub-Latency-Ms")
                    return Timed(resp.status, started, time.monotonic(), None if header is None else float(header))
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Timed(0, started, time.monotonic(), None, type(exc).__name__)

        return await asyncio.gather(*(one(url) for url in urls))


def fetch_concurrently(urls: Sequence[str], *, limit: int | None = None, timeout: float = 30.0) -> list[Timed]:
    """GET all `urls` at once, or at most `limit` at a time (one connection each), and time every answer."""
    return asyncio.run(_fetch_all(urls, timeout, limit))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]
