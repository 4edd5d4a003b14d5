"""Synthetic but realistic traffic, written in any supported log format (benchmarks, the notebook, tests).

The traffic has what real API traffic has and Zipf/Poisson models lack: a daily cycle, bursts (many clients asking
for the same resource within a second), a long tail of keys, query parameters in varying order and irrelevant
tracking parameters that fragment keys, some 404s and a short upstream outage.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
)
START = 1_735_725_600.0  # 2025-01-01T10:00:00Z


@dataclass(frozen=True)
class Hit:
    """One generated request."""

    time: float
    method: str
    target: str
    status: int
    latency_ms: float
    size: int
    client: str


def traffic(
    count: int,
    *,
    seed: int = 7,
    rate: float = 20.0,
    keys: int = 5000,
    zipf_s: float = 1.1,
    start: float = START,
    outage_seconds: float = 45.0,
) -> Iterator[Hit]:
    """`count` requests, in time order, at `rate` requests/s on average."""
    rng = random.Random(seed)
    weights = [1.0 / (i**zipf_s) for i in range(1, keys + 1)]
    total = sum(weights)
    cdf: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w / total
        cdf.append(acc)
    day = 86400.0
    now = start
    outage = (start + 0.37 * count / rate, start + 0.37 * count / rate + outage_seconds)
    made = 0
    while made < count:
        cycle = 1.0 + 0.6 * math.sin(2 * math.pi * (now - start) / day)  # daily cycle
        now += rng.expovariate(rate * cycle)
        burst = 1
        if rng.random() < 0.01:
            burst = rng.randint(5, 40)  # a push notification, a cron job, a retry storm
        key = _pick(cdf, rng.random()) + 1
        for _ in range(burst):
            if made >= count:
                break
            made += 1
            when = now + (rng.random() * 0.3 if burst > 1 else 0.0)
            yield _hit(rng, when, key, keys, outage)


def _pick(cdf: list[float], u: float) -> int:
    lo, hi = 0, len(cdf) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cdf[mid] < u:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _hit(rng: random.Random, when: float, key: int, keys: int, outage: tuple[float, float]) -> Hit:
    method = "GET"
    roll = rng.random()
    if roll < 0.002:
        method = "POST"
    elif roll < 0.004:
        method = "HEAD"
    if key % 5 == 0:
        params = [("page", str(1 + key % 3)), ("size", "20")]
        rng.shuffle(params)
        if rng.random() < 0.1:
            params.append(("utm_source", rng.choice(("mail", "push", "ad"))))
        path = "/items?" + "&".join(f"{k}={v}" for k, v in params)
    else:
        path = f"/items/{key}"
    status = 200
    if key > keys * 0.98:
        status = 404
    if outage[0] <= when < outage[1]:
        status = 503
    latency = rng.lognormvariate(math.log(120.0), 0.5)
    size = 0 if status == 404 else 900 + (key * 37) % 3000
    return Hit(when, method, path, status, round(latency, 1), size, f"10.0.{key % 200}.{rng.randint(1, 254)}")


def clf_time(when: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(when))


def line(hit: Hit, fmt: str, *, host: str = "api.example.com") -> str:
    """One line of `hit` in a line format."""
    if fmt in ("clf", "combined"):
        text = f'{hit.client} - - [{clf_time(hit.time)}] "{hit.method} {hit.target} HTTP/1.1" {hit.status} {hit.size}'
        if fmt == "combined":
            text += f' "-" "{_AGENTS[int(hit.time) % len(_AGENTS)]}"'
        return text
    if fmt == "csv":
        return f"{hit.time:.3f},{hit.method},{hit.target},{hit.status},{hit.latency_ms}"
    if fmt == "apigw-json":
        path = hit.target.partition("?")[0]
        return json.dumps(
            {
                "requestId": f"{int(hit.time * 1000):x}-{hit.size}",
                "ip": hit.client,
                "requestTime": clf_time(hit.time),
                "requestTimeEpoch": int(hit.time * 1000),
                "httpMethod": hit.method,
                "path": f"/prod{path}",
                "stage": "prod",
                "routeKey": "-",
                "status": str(hit.status),
                "protocol": "HTTP/1.1",
                "responseLength": str(hit.size),
                "integrationLatency": str(int(hit.latency_ms)),
            },
            separators=(",", ":"),
        )
    raise ValueError(f"no line format {fmt!r}")


def har(hits: list[Hit], *, host: str = "api.example.com") -> dict[str, object]:
    """A HAR document of `hits` (a browser's capture)."""
    entries = []
    for hit in hits:
        started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(hit.time)) + f".{int(hit.time * 1000) % 1000:03d}Z"
        entries.append(
            {
                "startedDateTime": started,
                "time": hit.latency_ms + 3.0,
                "request": {
                    "method": hit.method,
                    "url": f"https://{host}{hit.target}",
                    "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "Accept", "value": "application/json"}],
                    "queryString": [],
                    "headersSize": -1,
                    "bodySize": 0,
                },
                "response": {
                    "status": hit.status,
                    "statusText": "",
                    "httpVersion": "HTTP/1.1",
                    "headers": [],
                    "content": {"size": hit.size, "mimeType": "application/json"},
                    "redirectURL": "",
                    "headersSize": -1,
                    "bodySize": hit.size,
                },
                "cache": {},
                "timings": {"send": 0.5, "wait": hit.latency_ms, "receive": 2.5},
            }
        )
    return {"log": {"version": "1.2", "creator": {"name": "cachelab samples", "version": "1"}, "entries": entries}}


def main(argv: list[str] | None = None) -> int:
    """`python -m whatif.samples --lines N --format F > access.log`: an example log to try `cachelab whatif` on."""
    import argparse  # noqa: PLC0415 - only for this command line
    import sys  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m whatif.samples", description=main.__doc__)
    parser.add_argument("--lines", type=int, default=100_000, help="requests to write (default 100000)")
    parser.add_argument("--format", default="combined", choices=("combined", "clf", "csv", "apigw-json", "har"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    hits = traffic(args.lines, seed=args.seed)
    if args.format == "har":
        json.dump(har(list(hits)), sys.stdout)
        sys.stdout.write("\n")
        return 0
    if args.format == "csv":
        sys.stdout.write("timestamp,method,path,status,latency_ms\n")
    for hit in hits:
        sys.stdout.write(line(hit, args.format) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
