"""The stub API's latency model as a client measures it: the drawn latency next to the measured one.

    python -m bench.bench_stub [--requests 400] [--concurrency 40]

A real `python -m stub_api` process on a free loopback port. Prints, side by side, the latency the stub drew
(X-Stub-Latency-Ms) and the time the client waited, per percentile, for a log-normal model (p50 50 ms, p99 250 ms);
then the wall time of 200 requests held 200 ms each and 500 held 500 ms each, all at once. The difference is what
connecting, parsing and the machine's load add: figures, not pass/fail (the tests check the model itself).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from cachelab.processes import LOOPBACK, free_port, running
from stub_api.client import StubAdmin

SEED = 7


async def _fetch(urls: list[str], concurrency: int) -> list[tuple[float, float]]:
    """(drawn ms, measured ms) per request, at most `concurrency` at a time, one connection each."""
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def one(url: str) -> tuple[float, float]:
            async with gate:
                started = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    return float(resp.headers["X-Stub-Latency-Ms"]), (time.perf_counter() - started) * 1000

        return await asyncio.gather(*(one(url) for url in urls))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_stub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=40)
    args = parser.parse_args(argv)
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    admin = StubAdmin(base, timeout=10)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(
            [sys.executable, "-m", "stub_api", "--port", str(port), "--seed", str(SEED)],
            port=port,
            log=Path(tmp) / "stub.log",
            health_url=admin.health_url,
        ),
    ):
        admin.faults({"latency_ms": 50, "latency_p99_ms": 250})
        pairs = asyncio.run(_fetch([f"{base}/?name=n{i}" for i in range(args.requests)], args.concurrency))
        drawn, measured = [p[0] for p in pairs], [p[1] for p in pairs]
        print(f"log-normal p50 50 ms / p99 250 ms, {args.requests} requests, {args.concurrency} at a time")
        print(f"  {'':>5} {'drawn ms':>9} {'measured ms':>12} {'added ms':>9}")
        for q in (0.5, 0.9, 0.99):
            d, m = _pct(drawn, q), _pct(measured, q)
            print(f"  p{round(q * 100):<4} {d:9.1f} {m:12.1f} {m - d:9.1f}")
        for count, latency_ms in ((200, 200), (500, 500)):
            admin.reset()
            admin.faults({"latency_ms": latency_ms})
            started = time.perf_counter()
            asyncio.run(_fetch([f"{base}/items/{i % 50 + 1}" for i in range(count)], count))
            wall = time.perf_counter() - started
            print(
                f"{count} requests held {latency_ms} ms each, all at once: {wall:.2f} s wall ({wall * 1000 / latency_ms:.1f}x one)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
