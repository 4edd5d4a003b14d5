"""What the reliability tests share: an echo origin, a local Redis Cluster, the in-process Lambda app, raw HTTP."""

from __future__ import annotations

import contextlib
import io
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from cachelab import processes
from proxy import handler
from proxy.observability import RequestLog

UNHANDLED = "unhandled error"


# ---------------------------------------------------------------------------------------------- echo origin
@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None  # None: echo the request target
    delay: float = 0.0

    def __repr__(self) -> str:
        """Short, so a failing property prints a reproduction, not a 200 kB body: big bodies as a prefix and size."""
        body = self.body
        shown = repr(body) if body is None or len(body) <= 64 else f"{body[:16]!r} + ... ({len(body)} bytes)"
        return f"Reply(status={self.status}, headers={self.headers!r}, body={shown}, delay={self.delay})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # what hypothesis prints a falsifying example with
        printer.text(repr(self))


@dataclass
class Seen:
    method: str
    target: str  # the request-target exactly as received (latin-1 decoded bytes)
    headers: dict[str, str]


class _QuietServer(ThreadingHTTPServer):
    """A client that drops its connection (the proxy giving up on a body, a closed pool) is not an error here."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class EchoOrigin:
    """An HTTP origin whose default answer is the request-target it received (text/plain, Cache-Control
    max-age=300), so a test can tell which upstream request produced any answer, even one served from the cache.
    `script(seen)` may return another Reply (status, headers, body) for a request."""

    def __init__(self) -> None:
        self.script: Callable[[Seen], Reply | None] | None = None
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: object) -> None:
                return

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                # The request line's target: http.server rewrites a leading "//" of self.path to "/".
                target = self.requestline.split(" ")[1] if self.requestline.count(" ") == 2 else self.path
                seen = Seen(self.command, target, {k.lower(): v for k, v in self.headers.items()})
                with origin._lock:
                    origin.seen.append(seen)
                reply = (origin.script(seen) if origin.script else None) or Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                body = target.encode("latin-1") if reply.body is None else reply.body
                headers = reply.headers or [("Content-Type", "text/plain"), ("Cache-Control", "max-age=300")]
                self.send_response_only(reply.status)  # no automatic Date or Server: exactly the reply
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):  # any method at all: PURGE, BAN, ...
                    return self._answer
                raise AttributeError(name)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def count(self, predicate: Callable[[Seen], bool] | None = None) -> int:
        with self._lock:
            return sum(1 for s in self.seen if predicate is None or predicate(s))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------- the Lambda app
@dataclass
class LambdaApp:
    """proxy.handler.lambda_handler with its app built from `env`, its log lines captured in `log`."""

    app: handler.App
    log: io.StringIO

    def __call__(self, event: object) -> dict[str, Any]:
        return handler.lambda_handler(event, None)

    def lines(self) -> str:
        return self.log.getvalue()


@contextlib.contextmanager
def lambda_app(env: Mapping[str, str]) -> Iterator[LambdaApp]:
    """Install an app built by the real build_app (real clients) as the handler's execution environment."""
    app = handler.build_app(dict(env))
    buffer = io.StringIO()
    app = app._replace(log=RequestLog(stream=buffer, level=app.settings.log_level))
    previous = handler._app
    handler._app = app
    try:
        yield LambdaApp(app, buffer)
    finally:
        handler._app = previous
        app.proxy.store.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- raw HTTP
@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def raw_request(port: int, data: bytes, *, timeout: float = 15.0) -> RawResponse | None:
    """Send `data` as it is on a fresh connection; the first complete response (None when the server closed
    without one). The response needs a Content-Length (every one from the gateway has one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)  # no half-close: a server may take EOF for the client going away
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            parsed = _parse_response(b"".join(chunks))
            if parsed is not None:
                return parsed
    return _parse_response(b"".join(chunks))


def _parse_response(data: bytes) -> RawResponse | None:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if match is None:
        raise AssertionError(f"not an HTTP response: {lines[0]!r}")
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
    if length is None or len(rest) < length:
        return None
    return RawResponse(int(match.group(1)), headers, rest[:length])


# ---------------------------------------------------------------------------------------------- Redis Cluster
CLUSTER_OPTIONS = (
    "--cluster-enabled", "yes",
    "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", "1000",
    # A shard down must not stop the others (the default, "yes", answers CLUSTERDOWN for every key).
    "--cluster-require-full-coverage", "no",
)  # fmt: skip


class LocalCluster:
    """Three (or more) redis-server masters on loopback joined with `redis-cli --cluster create`."""

    def __init__(self, workdir: Path, ports: list[int] | None = None, size: int = 3) -> None:
        self.workdir = workdir
        self.ports = ports or _distinct_ports(size)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        try:
            for port in self.ports:
                self._start_node(port)
            argv = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                    "--cluster-replicas", "0", "--cluster-yes"]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0 or "All 16384 slots covered" not in done.stdout:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}")
            self.wait_ok()
        except BaseException:
            self.stop()
            raise

    def _start_node(self, port: int) -> None:
        folder = self.workdir / str(port)
        self.procs[port] = processes.start_redis_server(port, workdir=folder, extra=CLUSTER_OPTIONS)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every running node reports cluster_state:ok and all slots ok."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                states = []
                for port, proc in self.procs.items():
                    if proc.poll() is None:
                        with contextlib.closing(self.node(port)) as client:
                            info = client.cluster("info")
                        states.append(info.get("cluster_state") == "ok" and int(info["cluster_slots_ok"]) == 16384)
                if states and all(states):
                    return
                last = states
            except (redis.RedisError, OSError) as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"the cluster did not become ok within {timeout:.0f} s (last: {last})")

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait(timeout=10)

    def restart(self, port: int) -> None:
        """The killed node again, with its nodes.conf: it rejoins the cluster with its slots (its data is gone)."""
        self._start_node(port)
        self.wait_ok()

    def flush(self) -> None:
        for port, proc in self.procs.items():
            if proc.poll() is None:
                with contextlib.closing(self.node(port)) as client:
                    client.flushall()

    def stop(self) -> None:
        for proc in self.procs.values():
            processes.stop(proc)


def _distinct_ports(n: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free too."""
    ports: set[int] = set()
    for _ in range(500):
        if len(ports) == n:
            return sorted(ports)
        port = processes.free_port()
        if port + 10000 > 65535 or port in ports:
            continue
        try:
            processes.ensure_port_free(port + 10000)
        except processes.PortInUseError:
            continue
        ports.add(port)
    raise RuntimeError(f"found no {n} free ports with free cluster bus ports")
