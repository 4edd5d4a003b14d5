"""Gateway HIT latency vs nginx `proxy_cache` serving a hit, side by side, on this machine.

    python -m bench.bench_gateway [--requests 5000] [--warmup 500] [--rounds 5] [--max-ratio 3]

Targets, each measured with sequential keep-alive GETs from one `http.client` connection (rounds interleave the
targets so machine noise spreads evenly):
- nginx: Debian's nginx as a non-daemon with a throwaway prefix, `proxy_cache` in front of the stub API
  (every measured answer must say X-Cache: HIT);
- gateway, constant handler: `cachelab gateway` with a handler that returns a constant copy of the proxy's HIT
  answer (same headers and body): the gateway's own cost;
- gateway, proxy handler: `cachelab gateway` on sam/template.yaml with the real proxy, redis-server and the stub
  API (every measured answer must say X-Cache: HIT). Skipped, with a note, when redis-server is missing;
- proxy handler alone: the same HIT event passed to `proxy.handler.lambda_handler` in this process (no HTTP, no
  gateway), to show how the proxy row splits between the handler and the gateway.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cachelab.events import build_event
from cachelab.gateway.cli import command as gateway_command
from cachelab.gateway.cli import health_url
from cachelab.gateway.worker import LambdaContext, StaticContext
from cachelab.processes import (
    LOOPBACK,
    free_port,
    redis_server_path,
    running,
    start_redis_server,
    stop,
)
from proxy import handler as proxy_handler
from proxy.config import ENVIRONMENT_NAMES
from stub_api.client import StubAdmin

ROOT = Path(__file__).resolve().parents[1]
NGINX = "/usr/sbin/nginx"
PATH = "/items/1"

TRIVIAL_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  BenchFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: bench_handler.lambda_handler
      Runtime: python3.11
      Timeout: 10
      MemorySize: 256
      Events:
        Root: {Type: Api, Properties: {Path: /, Method: ANY}}
        Proxy: {Type: Api, Properties: {Path: "/{proxy+}", Method: ANY}}
"""

TRIVIAL_HANDLER = """\
# A constant answer shaped like the proxy's HIT for /items/1 (same headers, same 205-byte body), so the rows
# compare the same response on the wire.
BODY = (
    '{"id":1,"version":1,"name":"urban orchid","price":89.55,"currency":"EUR","tags":["bulk","gift","limited"],'
    '"stock":90,"description":"The urban orchid no. 1, revision 1.","updated_at":"2024-01-01T00:01:00Z"}'
)
HEADERS = {
    "etag": '"449af912b65f58941ce0b185248c02d8"',
    "last-modified": "Mon, 01 Jan 2024 00:01:00 GMT",
    "content-type": "application/json; charset=utf-8",
    "x-stub-latency-ms": "0.0",
    "age": "0",
    "x-cache": "HIT",
    "cache-status": "cachelab; hit; ttl=299",
}


def lambda_handler(event, context):
    return {"statusCode": 200, "headers": HEADERS, "body": BODY}
"""

NGINX_CONF = """\
{user}worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    proxy_cache_path {prefix}/cache keys_zone=bench:1m;
    keepalive_requests 1000000;
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://{host}:{upstream};
            proxy_cache bench;
            proxy_cache_valid 200 10m;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            add_header X-Cache $upstream_cache_status;
        }}
    }}
}}
"""


@dataclass
class Target:
    name: str
    port: int
    expect_hit: bool
    samples: list[float] = field(default_factory=list)  # microseconds
    call: Callable[[], float] | None = None  # an in-process measurement instead of HTTP

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(LOOPBACK, self.port, timeout=10)


def _handler_call(redis_port: int, stub_port: int) -> Callable[[], float]:
    """One timed in-process call of the proxy handler with the HIT event the gateway sends (logs discarded)."""
    os.environ.update(
        UPSTREAM_URL=f"http://{LOOPBACK}:{stub_port}", REDIS_URL=f"redis://{LOOPBACK}:{redis_port}/0", LOG_LEVEL="INFO"
    )
    event = build_event("GET", PATH, [("Host", "bench"), ("Accept", "application/json")])
    static = StaticContext({"AWS_LAMBDA_FUNCTION_NAME": "ProxyFunction", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"})
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the benchmark

    def call() -> float:
        context = LambdaContext("bench", int(time.time() * 1000) + 10_000, static)
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            started = time.perf_counter_ns()
            result = proxy_handler.lambda_handler(event, context)
            elapsed = (time.perf_counter_ns() - started) / 1000.0
        headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        if result.get("statusCode") != 200 or headers.get("x-cache") != "HIT":
            raise RuntimeError(f"proxy handler alone: expected a 200 HIT, got {result.get('statusCode')} {headers}")
        return elapsed

    return call


def _get(conn: http.client.HTTPConnection, target: Target) -> float:
    started = time.perf_counter_ns()
    conn.request("GET", PATH, headers={"Accept": "application/json"})
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter_ns() - started) / 1000.0
    if response.status != 200:
        raise RuntimeError(f"{target.name}: status {response.status}")
    if target.expect_hit and response.getheader("X-Cache") != "HIT":
        raise RuntimeError(f"{target.name}: expected X-Cache: HIT, got {response.getheader('X-Cache')!r}")
    return elapsed


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@contextmanager
def _nginx(workdir: Path, upstream_port: int) -> Iterator[int]:
    prefix = workdir / "nginx"
    prefix.mkdir()
    prefix.chmod(0o755)
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(user=user, prefix=prefix, host=LOOPBACK, port=port, upstream=upstream_port),
        encoding="utf-8",
    )
    with running([NGINX, "-p", str(prefix), "-c", str(conf)], port=port, log=prefix / "nginx.out"):
        yield port


@contextmanager
def _stub(workdir: Path) -> Iterator[int]:
    port = free_port()
    argv = [sys.executable, "-m", "stub_api", "--port", str(port)]
    health = StubAdmin(f"http://{LOOPBACK}:{port}").health_url
    with running(argv, port=port, log=workdir / "stub.log", health_url=health):
        yield port


@contextmanager
def _gateway(workdir: Path, name: str, args: list[str], env: dict[str, str] | None = None) -> Iterator[int]:
    port = free_port()
    child_env = {**os.environ, **(env or {})}
    argv = gateway_command(port, pass_env=ENVIRONMENT_NAMES, extra=args)
    with running(argv, port=port, env=child_env, log=workdir / f"{name}.log", health_url=health_url(port), timeout=30):
        yield port


def _trivial_template(workdir: Path) -> Path:
    root = workdir / "trivial"
    (root / "code").mkdir(parents=True)
    (root / "code" / "bench_handler.py").write_text(TRIVIAL_HANDLER, encoding="utf-8")
    template = root / "template.yaml"
    template.write_text(TRIVIAL_TEMPLATE, encoding="utf-8")
    return template


def _measure(targets: list[Target], requests: int, warmup: int, rounds: int) -> None:
    connections = {t.name: t.connect() for t in targets if t.call is None}
    probes: dict[str, Callable[[], float]] = {}
    for target in targets:
        if target.call is not None:
            probes[target.name] = target.call
        else:
            conn = connections[target.name]
            probes[target.name] = lambda conn=conn, target=target: _get(conn, target)  # type: ignore[misc]
    try:
        for target in targets:
            for _ in range(warmup):
                probes[target.name]()
        per_round = max(1, requests // rounds)
        for _ in range(rounds):
            for target in targets:
                probe = probes[target.name]
                target.samples.extend(probe() for _ in range(per_round))
    finally:
        for conn in connections.values():
            conn.close()


def _report(targets: list[Target], requests: int, warmup: int, notes: list[str]) -> dict[str, float]:
    baseline = sorted(targets[0].samples)
    base50, base99 = _percentile(baseline, 0.50), _percentile(baseline, 0.99)
    print(
        f"\n{requests} sequential keep-alive GET {PATH} per target (one http.client connection each, "
        f"after {warmup} warm-up), {os.cpu_count()} CPUs"
    )
    header = f"{'target':<44}{'p50 us':>9}{'p99 us':>9}{'mean us':>9}{'p50 x':>8}{'p99 x':>8}"
    print(header)
    print("-" * len(header))
    ratios: dict[str, float] = {}
    for target in targets:
        values = sorted(target.samples)
        p50, p99 = _percentile(values, 0.50), _percentile(values, 0.99)
        if target.call is None and target is not targets[0]:
            ratios[target.name] = p50 / base50
        print(
            f"{target.name:<44}{p50:>9.1f}{p99:>9.1f}{statistics.fmean(values):>9.1f}"
            f"{p50 / base50:>8.2f}{p99 / base99:>8.2f}"
        )
    for note in notes:
        print(f"note: {note}")
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per target (default 5000)")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured requests per target first (default 500)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--no-proxy", action="store_true", help="skip the real proxy handler + redis-server target")
    parser.add_argument(
        "--max-ratio", type=float, default=None, help="exit 1 when a gateway's p50 exceeds this multiple of nginx's"
    )
    args = parser.parse_args(argv)
    if not (args.requests > 0 and args.warmup >= 1 and args.rounds > 0):
        parser.error("--requests and --rounds must be positive, --warmup at least 1")
    if not Path(NGINX).exists():
        print(f"bench_gateway: {NGINX} is missing (apt-get install -y nginx)", file=sys.stderr)
        return 2
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cachelab-bench-gw-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        stub_port = stack.enter_context(_stub(workdir))
        targets = [Target("nginx proxy_cache HIT", stack.enter_context(_nginx(workdir, stub_port)), True)]
        trivial = _trivial_template(workdir)
        gw_port = stack.enter_context(_gateway(workdir, "gateway-trivial", ["--template", str(trivial)]))
        targets.append(Target("gateway, constant handler", gw_port, True))
        if args.no_proxy:
            notes.append("proxy handler target skipped (--no-proxy)")
        elif redis_server_path() is None:
            notes.append("proxy handler target skipped: redis-server is not installed")
        else:
            redis_port = free_port()
            redis = start_redis_server(redis_port, workdir=workdir / "redis")
            stack.callback(stop, redis)
            proxy_args = [
                "--template", str(ROOT / "sam" / "template.yaml"),
                "--param", "RedisMode=external", "--param", f"RedisUrl=redis://{LOOPBACK}:{redis_port}/0",
            ]  # fmt: skip
            env = {"UPSTREAM_URL": f"http://{LOOPBACK}:{stub_port}"}
            proxy_port = stack.enter_context(_gateway(workdir, "gateway-proxy", proxy_args, env))
            targets.append(Target("gateway, proxy handler HIT (redis-server)", proxy_port, True))
            alone = Target("proxy handler alone, in-process HIT", 0, True, call=_handler_call(redis_port, stub_port))
            targets.append(alone)
        _prime(targets)
        _measure(targets, args.requests, args.warmup, args.rounds)
        ratios = _report(targets, args.requests, args.warmup, notes)
    if args.max_ratio is not None:
        over = {name: r for name, r in ratios.items() if r > args.max_ratio}
        if over:
            print(f"FAIL: p50 above {args.max_ratio}x nginx: {over}", file=sys.stderr)
            return 1
        print(f"OK: every gateway p50 within {args.max_ratio}x nginx's")
    return 0


def _prime(targets: list[Target]) -> None:
    """One unchecked request each: nginx and the proxy store the entry (a MISS), the gateway cold-starts."""
    for target in targets:
        if target.call is not None:
            continue  # the gateway-proxy target stored the entry in the same Redis
        conn = target.connect()
        try:
            conn.request("GET", PATH)
            conn.getresponse().read()
        finally:
            conn.close()


if __name__ == "__main__":
    sys.exit(main())
