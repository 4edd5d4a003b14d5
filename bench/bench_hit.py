"""Micro-benchmark of the proxy's hot path: a warm cache hit through the whole Lambda handler against a bare
redis-py GET of the same entry, its stages, and the cold start. Run: `make bench`.

Everything is measured side by side in one run, against one local redis-server, in interleaved rounds so that machine
noise hits every figure alike:

- warm hit: `proxy.handler.lambda_handler` on a REST event of a fresh entry, and a bare `redis.Redis().get` of that
  entry (the round trip a hit cannot avoid), each call timed alone; their p50 ratio (target <= 1.5x);
- the hit's stages, each alone: event parse, key, GET (the store's), entry decode, decision and answer, render,
  log line; "other" is the handler minus their sum (the handler's own glue);
- cold start: a new interpreter that imports `proxy.handler` and builds the app (connecting to Redis), against one
  that only does `import redis, urllib3` (target <= 1.3x); and the peak RSS of an execution environment after
  serving warm hits, next to the bare imports'.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis

from cachelab import processes
from cachelab.events import build_event
from proxy import answers, handler, policy
from proxy.entry import Entry
from proxy.events import parse_event, render
from proxy.keys import canonical_target, key_for
from proxy.outcome import CacheStatus, Outcome

BODY = json.dumps({"id": 42, "name": "item 42", "tags": ["a", "b", "c"], "text": "x" * 900}).encode()
ROOT = Path(__file__).resolve().parents[1]
HIT_TARGET, COLD_TARGET = 1.5, 1.3
_BARE = "import redis, urllib3"
# The process's own peak RSS in KiB: VmHWM of /proc/self/status. Not getrusage's ru_maxrss: Linux carries that
# over from the process that spawned it (the bench itself, when subprocess forks it), so every child reported the
# bench's peak.
_PEAK_RSS = "[int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]"
_ENVIRONMENT_HITS = 1000
# A new execution environment: import, init (connect to Redis), then serve warm hits; prints its peak RSS in KiB.
_ENVIRONMENT = f"""
import types
from cachelab.events import build_event
import proxy.handler as h
app = h.get_app()
event = build_event("GET", "/items/42?a=1&b=2", [("Accept", "application/json")])
context = types.SimpleNamespace(aws_request_id="bench", get_remaining_time_in_millis=lambda: 29_000)
for _ in range({_ENVIRONMENT_HITS}):
    h.lambda_handler(event, context)
print({_PEAK_RSS})
"""


class _Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "max-age=3600")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        return


class _Discard(io.StringIO):
    """Where the log lines go: the line is still built and written, the terminal's cost is left out."""

    def write(self, text: str) -> int:
        return len(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--per-round", type=int, default=500, help="calls per round and figure (default 500)")
    parser.add_argument("--cold-runs", type=int, default=15, help="interpreters started per cold-start figure")
    args = parser.parse_args(argv)
    if processes.redis_server_path() is None:
        print("redis-server is not installed (make tools)", file=sys.stderr)
        return 1
    origin = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    port = processes.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = processes.start_redis_server(port, workdir=Path(tmp))
        try:
            upstream = f"http://127.0.0.1:{origin.server_address[1]}"
            _warm(args, upstream, port)
            _cold(args, upstream, port)
        finally:
            processes.stop(server)
            origin.shutdown()
    return 0


def _warm(args: argparse.Namespace, upstream: str, port: int) -> None:
    app = handler.build_app({"UPSTREAM_URL": upstream, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    app.log._stream = _Discard()
    handler._app = app
    event = build_event("GET", "/items/42?b=2&a=1", [("Accept", "application/json")])
    context = types.SimpleNamespace(aws_request_id="bench", get_remaining_time_in_millis=lambda: 29_000)
    first = handler.lambda_handler(event, context)
    warm = handler.lambda_handler(event, context)
    assert (first["headers"]["x-cache"], warm["headers"]["x-cache"]) == ("MISS", "HIT"), (first, warm)
    request = parse_event(event).request
    key = key_for(request.path, request.query, request.headers, (), canonical_target(request.path, request.query))
    raw = app.proxy.store.get(key)
    assert raw is not None
    entry = Entry.decode(raw)
    now = time.time()
    response, age = answers.from_entry(entry, request.headers, now=now, cache=CacheStatus.HIT, head=False)
    outcome = Outcome(response, CacheStatus.HIT, key.short, None, None, None, age, "hit")
    bare = redis.Redis(host="127.0.0.1", port=port)
    assert bare.get(key.entry) == raw

    def decide_and_answer() -> None:
        decision = policy.lookup("GET", request.headers, entry, now)
        assert decision.entry is not None
        answers.from_entry(decision.entry, request.headers, now=now, cache=CacheStatus.HIT, head=False)

    figures: dict[str, Callable[[], object]] = {
        "bare redis-py GET": lambda: bare.get(key.entry),
        "warm-hit handler call": lambda: handler.lambda_handler(event, context),
        "event parse": lambda: parse_event(event),
        "key": lambda: key_for(
            request.path, request.query, request.headers, (), canonical_target(request.path, request.query)
        ),
        "GET (the store's)": lambda: app.proxy.store.get(key),
        "entry decode": lambda: Entry.decode(raw),
        "decision and answer": decide_and_answer,
        "render": lambda: render(response, "1.0"),
        "log line": lambda: app.log.record(request_id="bench", method="GET", outcome=outcome, duration_ms=1.0),
    }
    samples: dict[str, list[float]] = {name: [] for name in figures}
    clock = time.perf_counter
    for _ in range(args.rounds):
        for name, call in figures.items():
            durations = samples[name]
            for _ in range(args.per_round):
                started = clock()
                call()
                durations.append(clock() - started)
    median = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    p90 = {name: statistics.quantiles(values, n=10)[-1] * 1e6 for name, values in samples.items()}
    get, hit = median["bare redis-py GET"], median["warm-hit handler call"]
    stages = list(figures)[2:]
    print(f"warm hit: {len(BODY)} B JSON body; {args.rounds} rounds x {args.per_round} calls each, interleaved")
    print("  (each call timed alone; p50 and p90 of all calls: a shared machine preempts a few, the p50 is the call)")
    print(f"  bare redis-py GET         : {get:8.1f} us p50 {p90['bare redis-py GET']:8.1f} us p90")
    print(f"  warm-hit handler call     : {hit:8.1f} us p50 {p90['warm-hit handler call']:8.1f} us p90")
    print(f"  ratio handler / GET (p50) : {hit / get:8.2f} x   (target <= {HIT_TARGET} x)")
    print("  the hit's stages, each alone (p50):")
    for name in stages:
        print(f"    {name:23s} : {median[name]:8.1f} us")
    rest = hit - sum(median[name] for name in stages)
    print(f"    {'other':23s} : {rest:8.1f} us (the handler's glue, and what the stages cost together, not alone)")


def _timed_run(argv: list[str], env: dict[str, str], *, timeout: float) -> float:
    """Seconds from start to exit of a child, woken by its pidfd the moment it exits. (subprocess.run with a timeout
    polls with sleeps of up to 50 ms, which made every figure a multiple of 50 ms.)"""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT)
    pidfd = os.pidfd_open(proc.pid)
    try:
        exited, _, _ = select.select([pidfd], [], [], timeout)
        elapsed = time.perf_counter() - started
    finally:
        os.close(pidfd)
    if not exited:
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError(f"{argv[-1]!r} did not finish within {timeout:g} s")
    if proc.wait(timeout=10) != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return elapsed


def _cold(args: argparse.Namespace, upstream: str, port: int) -> None:
    env = {**os.environ, "UPSTREAM_URL": upstream, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    init = "import proxy.handler as h; h.get_app()"
    times: dict[str, list[float]] = {"bare": [], "init": []}
    for _ in range(args.cold_runs):
        for name, code in (("bare", _BARE), ("init", init)):
            times[name].append(_timed_run([sys.executable, "-c", code], env, timeout=60.0))
    bare, init_s = statistics.median(times["bare"]), statistics.median(times["init"])
    rss = {
        name: int(
            subprocess.run(
                [sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=120, capture_output=True, text=True
            ).stdout.split()[-1]
        )
        for name, code in (
            ("bare", f"{_BARE}; print({_PEAK_RSS})"),
            ("environment", _ENVIRONMENT),
        )
    }
    print(f"cold start: {args.cold_runs} new interpreters each, interleaved (medians)")
    print(f"  python -c '{_BARE}'   : {bare * 1000:8.1f} ms")
    print(f"  import proxy.handler + init : {init_s * 1000:8.1f} ms")
    print(f"  ratio init / bare imports   : {init_s / bare:8.2f} x   (target <= {COLD_TARGET} x)")
    print(f"  peak RSS, bare imports      : {rss['bare'] / 1024:8.1f} MiB")
    print(
        f"  peak RSS, an environment    : {rss['environment'] / 1024:8.1f} MiB (init and {_ENVIRONMENT_HITS:,} warm hits)"
    )


if __name__ == "__main__":
    sys.exit(main())
