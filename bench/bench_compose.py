"""The compose stack's figures: time from `docker compose up` to the first proxied answer, and HIT latency through
LocalStack's API Gateway next to the native gateway's (`cachelab gateway`), measured side by side in one run.

    python -m bench.bench_compose [--runs 3] [--requests 400] [--warmup 50] [--rounds 8]

Each run is one compose project (`cachelab-bench-PID`, free loopback ports, compose.yaml unchanged):
`docker compose up -d` timed (images built beforehand, not timed), the first proxied answer taken from the deploy
service's check (its log timestamp, the engine's clock), then sequential keep-alive GETs of one cached key from one
`http.client` connection per target, rounds interleaving LocalStack and the native gateway (redis-server, the stub
API and `cachelab gateway` on sam/template.yaml, started here) so machine noise falls on both. Then the Lambda
containers LocalStack started, `docker compose down -v` timed, and a check that nothing of the project is left.
Needs Docker with Compose v2 and redis-server. Every figure is printed per run, then min / median / max.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from bench.bench_gateway import _gateway, _percentile, _stub
from cachelab.processes import LOOPBACK, free_port, redis_server_path, start_redis_server, stop
from tests.compose.stack import BUILD_SECONDS, DOWN_SECONDS, ComposeStack, cleanup_stale, docker_problem

ROOT = Path(__file__).resolve().parents[1]
KEY = "/items/1"
PREFIX = "cachelab-bench"


@dataclass
class Target:
    name: str
    port: int
    path: str  # the request target of KEY through this gateway
    samples: list[float] = field(default_factory=list)  # milliseconds

    def get(self, conn: http.client.HTTPConnection) -> float:
        started = time.perf_counter()
        conn.request("GET", self.path)
        response = conn.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000.0
        if response.status != 200 or response.getheader("X-Cache") != "HIT":
            raise RuntimeError(f"{self.name}: expected 200 HIT, got {response.status} {response.getheader('X-Cache')}")
        return elapsed


def measure(targets: list[Target], requests: int, warmup: int, rounds: int) -> None:
    conns = {t.name: http.client.HTTPConnection(LOOPBACK, t.port, timeout=30) for t in targets}
    try:
        for target in targets:
            conn = conns[target.name]
            conn.request("GET", target.path)  # the entry is stored (a MISS the first time), the path warmed
            conn.getresponse().read()
            for _ in range(warmup):
                target.get(conn)
        for _ in range(rounds):
            for target in targets:
                target.samples.extend(target.get(conns[target.name]) for _ in range(max(1, requests // rounds)))
    finally:
        for conn in conns.values():
            conn.close()


@dataclass
class Run:
    up_s: float
    first_answer_s: float
    hit: dict[str, tuple[float, float]]  # target -> (p50 ms, p95 ms)
    containers: int
    down_s: float
    left: list[str]


def one_run(args: argparse.Namespace, workdir: Path, number: int) -> Run:
    stack = ComposeStack.create(PREFIX, workdir / "logs")
    stack.project = f"{stack.project}-{number}"
    with ExitStack() as cleanup:
        cleanup.callback(stack.remove_everything)
        started = datetime.now(UTC)
        up = stack.up()
        first = (stack.first_answer_at() - started).total_seconds()
        api = urlsplit(stack.api_url())

        stub_port = cleanup.enter_context(_stub(workdir))
        redis_port = free_port()
        redis = start_redis_server(redis_port, workdir=workdir / f"redis-{number}")
        cleanup.callback(stop, redis)
        params = [
            "--template", str(ROOT / "sam" / "template.yaml"), "--param", "RedisMode=external",
            "--param", f"RedisUrl=redis://{LOOPBACK}:{redis_port}/0",
            "--param", f"UpstreamUrl=http://{LOOPBACK}:{stub_port}",
        ]  # fmt: skip
        native = cleanup.enter_context(_gateway(workdir, f"gateway-{number}", params))
        targets = [
            Target("LocalStack API Gateway", api.port or 80, f"{api.path}{KEY}"),
            Target("cachelab gateway (native)", native, KEY),
        ]
        measure(targets, args.requests, args.warmup, args.rounds)
        containers = len(stack.lambda_containers())
        hit = {}
        for target in targets:
            values = sorted(target.samples)
            hit[target.name] = (_percentile(values, 0.50), _percentile(values, 0.95))
        down = stack.timed("--profile", "jupyter", "down", "-v", timeout=DOWN_SECONDS * 2)
        left = stack.leftovers()
    return Run(up, first, hit, containers, down, left)


def spread(values: list[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_compose", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="compose projects brought up one after another (3)")
    parser.add_argument("--requests", type=int, default=400, help="measured HITs per target and run (400)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured HITs per target first (50)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds (8)")
    args = parser.parse_args(argv)
    if not (args.runs > 0 and args.requests > 0 and args.warmup >= 0 and args.rounds > 0):
        parser.error("--runs, --requests and --rounds must be positive, --warmup not negative")
    problem = docker_problem()
    if problem is not None or redis_server_path() is None:
        print(f"bench_compose: {problem or 'redis-server is not installed'}", file=sys.stderr)
        return 2
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="cachelab-bench-compose-") as tmp:
        workdir = Path(tmp)
        cleanup_stale(PREFIX, workdir / "stale.log")
        builder = ComposeStack.create(PREFIX, workdir / "logs")
        print("building the images (not timed) ...", flush=True)
        builder.compose("build", timeout=BUILD_SECONDS)
        for number in range(1, args.runs + 1):
            run = one_run(args, workdir, number)
            runs.append(run)
            hits = "  ".join(f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms" for name, (p50, p95) in run.hit.items())
            print(
                f"run {number}: up -d {run.up_s:.1f} s, first proxied answer {run.first_answer_s:.1f} s after up; "
                f"{hits}; Lambda containers {run.containers}; down -v {run.down_s:.1f} s"
                + (f"; LEFT BEHIND: {run.left}" if run.left else ""),
                flush=True,
            )
    names = list(runs[0].hit)
    print(f"\n{len(runs)} runs, {args.requests} sequential keep-alive HITs per target and run; min / median / max")
    print(f"  docker compose up -d (images built)        {spread([r.up_s for r in runs])} s")
    print(f"  up -> first proxied answer                 {spread([r.first_answer_s for r in runs])} s")
    for name in names:
        print(f"  HIT p50, {name:<33} {spread([r.hit[name][0] for r in runs])} ms")
        print(f"  HIT p95, {name:<33} {spread([r.hit[name][1] for r in runs])} ms")
    ratio = [r.hit[names[0]][0] / r.hit[names[1]][0] for r in runs]
    print(f"  HIT p50 ratio, LocalStack / native         {spread(ratio)} x")
    print(f"  Lambda containers started                  {spread([float(r.containers) for r in runs])}")
    print(f"  docker compose down -v                     {spread([r.down_s for r in runs])} s")
    return 1 if any(r.left for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
