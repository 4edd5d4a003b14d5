"""Micro-benchmark: a warm cache hit through the whole Lambda handler vs a bare redis-py GET of the same entry.

Both run side by side in one process against the same local redis-server, interleaved in rounds so that machine
noise hits both alike. Prints per-call medians and the ratio (target: <= 1.5x). Run: `make bench`.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis

from cachelab import processes
from cachelab.events import build_event
from proxy import handler
from proxy.http import Headers
from proxy.keys import key_for, split_target

BODY = json.dumps({"id": 42, "name": "item 42", "tags": ["a", "b", "c"], "text": "x" * 900}).encode()


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=500)
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
            return _run(args, f"http://127.0.0.1:{origin.server_address[1]}", port)
        finally:
            processes.stop(server)
            origin.shutdown()


def _run(args: argparse.Namespace, upstream: str, port: int) -> int:
    app = handler.build_app({"UPSTREAM_URL": upstream, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    app.log._stream = io.StringIO()  # keep the log line's cost, drop the terminal's
    handler._app = app
    event = build_event("GET", "/items/42?b=2&a=1", [("Accept", "application/json")])
    context = types.SimpleNamespace(aws_request_id="bench", get_remaining_time_in_millis=lambda: 29_000)
    first = handler.lambda_handler(event, context)
    warm = handler.lambda_handler(event, context)
    assert (first["headers"]["x-cache"], warm["headers"]["x-cache"]) == ("MISS", "HIT"), (first, warm)
    path, query = split_target("/items/42?a=1&b=2")
    entry_key = key_for(path, query, Headers(), ()).entry
    bare = redis.Redis(host="127.0.0.1", port=port)
    assert bare.get(entry_key) is not None
    hit_times: list[float] = []
    get_times: list[float] = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for _ in range(args.per_round):
            bare.get(entry_key)
        get_times.append((time.perf_counter() - started) / args.per_round)
        started = time.perf_counter()
        for _ in range(args.per_round):
            handler.lambda_handler(event, context)
        hit_times.append((time.perf_counter() - started) / args.per_round)
        app.log._stream = io.StringIO()
    hit, get = statistics.median(hit_times) * 1e6, statistics.median(get_times) * 1e6
    print(f"entry: {len(BODY)} B JSON body; {args.rounds} rounds x {args.per_round} calls each, interleaved")
    print(f"  bare redis-py GET      : {get:8.1f} us/call (median of rounds)")
    print(f"  warm-hit handler call  : {hit:8.1f} us/call (event parse, key, GET, decode, render, log line)")
    print(f"  ratio handler / GET    : {hit / get:8.2f} x   (target <= 1.5 x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
