"""`Gateway`: a local API Gateway REST API (Lambda proxy integration) in front of one SAM-defined function.

A small asyncio HTTP/1.1 server (keep-alive, pipelining, chunked request bodies, `Expect: 100-continue`) turns each
request into a REST proxy event, runs it in an execution environment from the pool, and turns the result back into
HTTP. API Gateway's own answers are mirrored: 403 {"message": "Missing Authentication Token"} for an unknown
resource or method, 413 for a payload over 10 MB, 429 when every environment stays busy (throttled), 502
{"message": "Internal server error"} for a handler error, a crash or a malformed result, and 504
{"message": "Endpoint request timed out"} past the function timeout or API Gateway's 29 s integration cap.

The warm path has no task switch: the HTTP protocol parses a request in `data_received`, writes the invocation to
an idle environment's socket, and the environment's reply, in its own `data_received`, writes the HTTP response.
Only cold starts and waits for a busy environment run as tasks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import marshal
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from cachelab.gateway import wire
from cachelab.gateway.environments import Environment, EnvironmentFailed, Pool
from cachelab.gateway.events import (
    CLOCK,
    MAX_PAYLOAD_BYTES,
    HttpRequest,
    HttpResponse,
    MalformedResult,
    build_event,
    error_response,
    new_request_id,
    result_to_response,
)
from cachelab.gateway.spec import FunctionSpec
from cachelab.processes import LOOPBACK, PortInUseError, ensure_port_free

API_TIMEOUT_S = 29.0  # API Gateway's maximum integration timeout
ADMIN_PREFIX = "/__gateway/"
_MAX_HEAD_BYTES = 64 * 1024
_IDLE_TIMEOUT_S = 120.0
_REASONS = {s.value: s.phrase for s in HTTPStatus}


def json_log(event: str, **fields: Any) -> None:
    """One JSON line on stderr: the gateway's structured log."""
    sys.stderr.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class GatewaySettings:
    host: str = LOOPBACK
    port: int = 3000
    concurrency: int = 10
    throttle_wait: float = 1.0  # seconds a request waits for a busy environment before 429
    api_timeout: float = API_TIMEOUT_S
    shutdown_grace: float = 2.0  # seconds in-flight requests get to finish on SIGTERM/SIGINT
    access_log: bool = False
    warm: int = 0  # environments started before listening (like provisioned concurrency)


class StartError(RuntimeError):
    """The gateway cannot start (e.g. a warm environment failed its init); nothing is listening."""


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """Request line and header fields of one request head (without the final CRLF CRLF)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if not method.isascii() or not method.isalpha() or version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(400, "malformed request line")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or line[0] in " \t" or name[-1] in " \t":
            raise _BadRequest(400, "malformed header field")
        headers.append((name, value.strip(" \t")))
    return method, target, version, headers


def _split_target(target: str) -> tuple[str, str]:
    """The path as the client sent it (still percent-encoded, as a REST API's `path` is) and the raw query. A
    fragment is not part of a request target (RFC 9110 §7.1): a client that sends one anyway has it dropped."""
    target = target.partition("#")[0]
    if not target.startswith("/"):
        if not target.startswith(("http://", "https://")):
            raise _BadRequest(400, "malformed request target")
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    raw_path, _, query = target.partition("?")
    return raw_path, query


def _parse_chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """(body, end offset) of a complete chunked body starting at `start`, None while incomplete."""
    chunks: list[bytes] = []
    total = 0
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _BadRequest(400, "malformed chunk size") from None
        position = line_end + 2
        if size == 0:
            while True:  # trailer fields, ignored, up to the empty line
                line_end = buffer.find(b"\r\n", position)
                if line_end < 0:
                    return None
                empty = line_end == position
                position = line_end + 2
                if empty:
                    return b"".join(chunks), position
        total += size
        if total > MAX_PAYLOAD_BYTES:
            raise _BadRequest(413, "Request Too Long")
        if len(buffer) < position + size + 2:
            return None
        chunks.append(bytes(buffer[position : position + size]))
        position += size + 2


@dataclass(slots=True)
class _Pending:
    """A request being served on a connection: what the response needs besides its body."""

    keep_alive: bool
    head_only: bool
    request_id: str = ""
    started: float = 0.0
    method: str = ""
    path: str = ""


class _HttpConnection(asyncio.Protocol):
    """One client connection: parses requests (one at a time, pipelined ones queue in the buffer)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.pending: _Pending | None = None
        self.closed = False
        self.client_ip = LOOPBACK
        self.last_active = 0.0
        self.continued = False  # 100 Continue sent for the request at the head of the buffer
        self.paused = False  # reading paused: the client is far ahead, or not reading our answers

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = str(peer[0])
        self.last_active = self.gateway.loop.time()
        self.gateway.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gateway.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.last_active = self.gateway.loop.time()
        if self.pending is None:
            self._next()
        elif len(self.buffer) > _MAX_HEAD_BYTES + MAX_PAYLOAD_BYTES and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()  # a pipelining client far ahead of us

    def pause_writing(self) -> None:
        if self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed and self.paused:
            self.paused = False
            self.transport.resume_reading()

    # -- requests
    def _next(self) -> None:
        """Parse the next complete request from the buffer, if any, and dispatch it."""
        if self.pending is not None or self.closed:
            return
        buffer = self.buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buffer) > _MAX_HEAD_BYTES:
                self._fail(431, "Request Header Fields Too Large")
            elif buffer.startswith(b"\r\n"):
                del buffer[:2]  # stray CRLF between requests (RFC 9112 2.2)
            return
        if head_end > _MAX_HEAD_BYTES:
            self._fail(431, "Request Header Fields Too Large")
            return
        try:
            method, target, version, headers = _parse_head(bytes(buffer[:head_end]).lstrip(b"\r\n"))
            path, query = _split_target(target)
            parsed = self._body(headers, head_end + 4)
        except _BadRequest as exc:
            self._fail(exc.status, str(exc))
            return
        if parsed is None:
            return  # the body is still arriving
        body, end, connection = parsed
        del buffer[:end]
        self.continued = False
        if version == "HTTP/1.1":
            keep_alive = connection is None or "close" not in connection
        else:
            keep_alive = connection is not None and "keep-alive" in connection
        self.pending = _Pending(keep_alive, method == "HEAD")
        request = HttpRequest(method, path, query, headers, body, self.client_ip, version)
        self.gateway.dispatch(request, self)

    def _body(self, headers: list[tuple[str, str]], start: int) -> tuple[bytes, int, str | None] | None:
        connection = chunked = expect = length = None
        for name, value in headers:
            lowered = name.lower()
            if lowered == "connection":
                connection = value.lower()
            elif lowered == "content-length":
                if length is not None and length != value:
                    raise _BadRequest(400, "conflicting Content-Length")
                length = value
            elif lowered == "transfer-encoding":
                chunked = value.lower()
            elif lowered == "expect":
                expect = value.lower()
        buffer = self.buffer
        if chunked is not None:
            if chunked != "chunked" or length is not None:
                raise _BadRequest(501, "unsupported Transfer-Encoding")
            self._continue(expect)
            found = _parse_chunked(buffer, start)
            if found is None:
                return None
            return found[0], found[1], connection
        if length is None:
            return b"", start, connection
        if not length.isdigit():
            raise _BadRequest(400, "malformed Content-Length")
        size = int(length)
        if size > MAX_PAYLOAD_BYTES:
            raise _BadRequest(413, "Request Too Long")
        if len(buffer) < start + size:
            if size:
                self._continue(expect)
            return None
        return bytes(buffer[start : start + size]), start + size, connection

    def _continue(self, expect: str | None) -> None:
        if expect == "100-continue" and not self.continued and self.transport is not None:
            self.continued = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _fail(self, status: int, message: str) -> None:
        """Answer a request we cannot parse, then close: the rest of the stream cannot be trusted."""
        self.pending = _Pending(keep_alive=False, head_only=False)
        self.respond(error_response(status, message))

    def respond(self, response: HttpResponse) -> None:
        """Send the response of the pending request, then serve the next one (or close)."""
        pending = self.pending
        self.pending = None
        if pending is None or self.closed or self.transport is None:
            return
        gateway = self.gateway
        keep_alive = pending.keep_alive and not gateway.closing
        self.transport.write(_serialize(response, pending.request_id, keep_alive, pending.head_only))
        if gateway.settings.access_log and pending.request_id:
            gateway.log(
                "request", request_id=pending.request_id, method=pending.method, path=pending.path,
                status=response.status, ms=round((time.perf_counter() - pending.started) * 1000.0, 3),
            )  # fmt: skip
        if not keep_alive:
            self.transport.close()
            return
        self.last_active = gateway.loop.time()
        if self.paused and len(self.buffer) <= _MAX_HEAD_BYTES + MAX_PAYLOAD_BYTES:
            self.paused = False
            self.transport.resume_reading()
        if self.buffer:
            gateway.loop.call_soon(self._next)  # not recursively: a pipelined burst must not grow the stack


def _serialize(response: HttpResponse, request_id: str, keep_alive: bool, head_only: bool) -> bytes:
    body = response.body
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}"]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    lines.append(f"Date: {CLOCK.now()[2]}")
    lines.append(f"Content-Length: {len(body)}")
    if request_id:
        lines.append(f"x-amzn-RequestId: {request_id}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return head if head_only or not body else head + body


class _Invocation:
    """One request's trip through an environment, driven by callbacks (reply, exit, timeout)."""

    __slots__ = ("accept", "cold", "conn", "env", "gateway", "request_id", "timer")

    def __init__(self, gateway: Gateway, conn: _HttpConnection, request_id: str, accept: str | None) -> None:
        self.gateway = gateway
        self.conn = conn
        self.request_id = request_id
        self.accept = accept
        self.env: Environment | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.cold = False

    def start(self, env: Environment, message: bytes, api_deadline: float) -> None:
        self.env = env
        gateway = self.gateway
        loop = gateway.loop
        deadline = min(loop.time() + gateway.spec.timeout_s, api_deadline)
        self.timer = loop.call_at(deadline, self.on_timeout)
        env.invoke(message, self.on_reply, self.on_lost)

    def on_reply(self, kind: bytes, payload: bytes) -> None:
        gateway, env = self.gateway, self.env
        assert env is not None
        if self.timer is not None:
            self.timer.cancel()
        gateway.pool.release(env)
        if kind != wire.RESULT:
            gateway.stats["errors"] += 1
            self.finish(error_response(502, "Internal server error"))
            return
        try:
            response = result_to_response(
                json.loads(payload), binary_media_types=gateway.spec.binary_media_types, accept=self.accept
            )
        except MalformedResult as exc:
            gateway.stats["malformed"] += 1
            gateway.log("malformed_response", request_id=self.request_id, env=env.number, reason=str(exc))
            response = error_response(502, "Internal server error")
        self.finish(response)

    def on_lost(self) -> None:
        gateway, env = self.gateway, self.env
        assert env is not None
        if self.timer is not None:
            self.timer.cancel()
        gateway.stats["errors"] += 1
        gateway.log("env_exited", env=env.number, request_id=self.request_id, returncode=env.process.returncode)
        gateway.pool.discard(env, "exited")
        self.finish(error_response(502, "Internal server error"))

    def on_timeout(self) -> None:
        gateway, env = self.gateway, self.env
        assert env is not None
        env.abandon()
        timeout_s = gateway.spec.timeout_s
        gateway.stats["timeouts"] += 1
        gateway.log(
            "timeout", function=gateway.spec.logical_id, env=env.number, request_id=self.request_id,
            timeout_s=timeout_s, message=f"Task timed out after {timeout_s:.2f} seconds",
        )  # fmt: skip
        gateway.pool.discard(env, "timeout")
        self.finish(error_response(504, "Endpoint request timed out"))

    def finish(self, response: HttpResponse) -> None:
        self.gateway.invocation_done()
        self.conn.respond(response)


class Gateway:
    """Serve one function of a SAM template over HTTP, as API Gateway's REST API proxy integration does.

    Use `run()` (blocking, stops on SIGTERM/SIGINT) or, inside an event loop, `await start()`, then
    `await close()`.
    """

    def __init__(self, spec: FunctionSpec, settings: GatewaySettings, *, log: Callable[..., None] = json_log) -> None:
        self.spec = spec
        self.settings = settings
        self.log = log
        self.pool = Pool(spec, concurrency=settings.concurrency, throttle_wait=settings.throttle_wait, log=log)
        self.stats = collections.Counter[str]()
        self.connections: set[_HttpConnection] = set()
        self.closing = False
        self.inflight = 0
        self._server: asyncio.Server | None = None
        self._idle = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._started = time.time()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the gateway is not started"
        return self._loop

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}/"

    async def start(self) -> None:
        """Check the port, start the `warm` environments, then listen. StartError when a warm environment fails
        its init: a gateway that would answer every request 502 does not start."""
        self._loop = asyncio.get_running_loop()
        ensure_port_free(self.settings.port, self.settings.host, what="gateway")
        if self.settings.warm:
            failures = await self.pool.prewarm(self.settings.warm)
            self.log("prewarmed", requested=self.settings.warm, ready=self.settings.warm - len(failures))
            if failures:
                raise StartError(
                    f"{len(failures)} of {self.settings.warm} warm execution environments failed their init "
                    f"({failures[0].describe()}); not starting"
                )
        try:
            self._server = await self._loop.create_server(
                lambda: _HttpConnection(self), self.settings.host, self.settings.port, reuse_address=True
            )
        except OSError as exc:
            raise PortInUseError(
                f"the gateway cannot listen on {self.settings.host}:{self.settings.port}: {exc}"
            ) from exc
        self._idle.set()
        self._sweeper = self._loop.call_later(_IDLE_TIMEOUT_S / 4, self._sweep)

    async def close(self) -> None:
        """Stop listening, let in-flight requests finish (up to the grace period), stop every environment."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):  # idle keep-alive connections go now, busy ones after their answer
            if conn.pending is None and conn.transport is not None:
                conn.transport.close()
        if self.inflight:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.shutdown_grace):
                    await self._idle.wait()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pool.close()

    def run(self, on_listening: Callable[[], None] | None = None) -> int:
        """Serve until SIGTERM or SIGINT, then shut down cleanly (no environment left behind). `on_listening` runs
        once the gateway listens (not when it fails to start)."""
        return asyncio.run(self._run(on_listening))

    async def _run(self, on_listening: Callable[[], None] | None) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await self.start()
        except BaseException:
            await self.close()  # the warm environments that did start
            raise
        self.announce()
        if on_listening is not None:
            on_listening()
        await stop.wait()
        self.log("gateway_stopping", inflight=self.inflight, environments=self.pool.slots)
        await self.close()
        self.log("gateway_stopped")
        return 0

    def announce(self) -> None:
        spec = self.spec
        self.log(
            "gateway_started", url=self.url, function=spec.logical_id, handler=spec.handler, runtime=spec.runtime,
            timeout_s=spec.timeout_s, memory_mb=spec.memory_mb, concurrency=self.settings.concurrency,
            stage=spec.stage, routes=[r.resource for r in spec.routes], template=str(spec.template),
            parameters=dict(spec.parameters), env_overrides=list(spec.overridden_from_env),
        )  # fmt: skip

    def _sweep(self) -> None:
        """Close keep-alive connections idle for longer than _IDLE_TIMEOUT_S."""
        limit = self.loop.time() - _IDLE_TIMEOUT_S
        for conn in list(self.connections):
            if conn.pending is None and conn.last_active < limit and conn.transport is not None:
                conn.transport.close()
        self._sweeper = self.loop.call_later(_IDLE_TIMEOUT_S / 4, self._sweep)

    # ---- API Gateway + Lambda ------------------------------------------------------------------------------------

    def dispatch(self, request: HttpRequest, conn: _HttpConnection) -> None:
        """Route one parsed request; `conn.respond` is called exactly once, now or later."""
        if request.path.startswith(ADMIN_PREFIX):
            conn.respond(self._admin(request))
            return
        matched = self.spec.match(request.method, request.path)
        if matched is None:
            self.stats["not_found"] += 1
            conn.respond(error_response(403, "Missing Authentication Token", "MissingAuthenticationTokenException"))
            return
        if self.closing:
            conn.respond(error_response(503, "Service Unavailable"))
            return
        route, path_parameters = matched
        request_id = new_request_id()
        pending = conn.pending
        assert pending is not None
        pending.request_id = request_id
        if self.settings.access_log:
            pending.started, pending.method, pending.path = time.perf_counter(), request.method, request.path
        epoch_ms, request_time, _date = CLOCK.now()
        event = build_event(
            request, resource=route.resource, path_parameters=path_parameters, stage=self.spec.stage,
            binary_media_types=self.spec.binary_media_types, request_id=request_id,
            server_port=self.settings.port, request_time_epoch=epoch_ms, request_time=request_time,
        )  # fmt: skip
        self.stats["requests"] += 1
        self.inflight += 1
        self._idle.clear()
        invocation = _Invocation(self, conn, request_id, request.header("Accept"))
        api_deadline = self.loop.time() + self.settings.api_timeout
        env = self.pool.take_idle()
        if env is not None:
            invocation.start(env, self._message(request_id, event), api_deadline)
            return
        task = self.loop.create_task(self._cold_path(invocation, event, api_deadline))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _message(self, request_id: str, event: dict[str, Any]) -> bytes:
        deadline_ms = int(time.time() * 1000 + self.spec.timeout_s * 1000)
        return wire.frame(wire.INVOKE, marshal.dumps((request_id, deadline_ms, event)))

    async def _cold_path(self, invocation: _Invocation, event: dict[str, Any], api_deadline: float) -> None:
        """No idle environment: wait for one (up to throttle_wait), or start one in a free slot."""
        request_id = invocation.request_id
        try:
            lease = await self.pool.acquire()
        except asyncio.CancelledError:
            invocation.finish(error_response(503, "Service Unavailable"))
            raise
        if lease is None:
            self.stats["throttled"] += 1
            self.log("throttled", request_id=request_id, concurrency=self.settings.concurrency)
            invocation.finish(error_response(429, "Too Many Requests", "TooManyRequestsException"))
            return
        if isinstance(lease, Environment):
            invocation.start(lease, self._message(request_id, event), api_deadline)
            return
        invocation.cold = True
        try:
            async with asyncio.timeout_at(api_deadline):
                env = await self.pool.spawn(request_id)
        except TimeoutError:
            self.pool.discard(None, "init_timeout")
            self.stats["timeouts"] += 1
            invocation.finish(error_response(504, "Endpoint request timed out"))
            return
        except EnvironmentFailed as exc:
            self.pool.discard(None, "init_failed")
            self.stats["errors"] += 1
            if exc.error is None:
                self.log("init_error", request_id=request_id, message=str(exc))
            invocation.finish(error_response(502, "Internal server error"))
            return
        except asyncio.CancelledError:
            self.pool.discard(None, "shutdown")
            invocation.finish(error_response(503, "Service Unavailable"))
            raise
        invocation.start(env, self._message(request_id, event), api_deadline)

    def invocation_done(self) -> None:
        self.inflight -= 1
        if not self.inflight:
            self._idle.set()

    def _admin(self, request: HttpRequest) -> HttpResponse:
        name = request.path[len(ADMIN_PREFIX) :]
        if request.method not in ("GET", "HEAD") or name not in ("health", "stats"):
            return error_response(404, f"unknown gateway endpoint {request.path}; try {ADMIN_PREFIX}stats")
        body: dict[str, Any] = {"status": "ok", "function": self.spec.logical_id}
        if name == "stats":
            pool = self.pool
            body.update(
                uptime_s=round(time.time() - self._started, 3),
                concurrency=self.settings.concurrency,
                environments={"total": pool.slots, "busy": len(pool.busy), "idle": len(pool.idle)},
                counters={
                    key: self.stats[key] + pool.stats[key]
                    for key in ("requests", "cold_starts", "init_errors", "throttled", "timeouts", "errors",
                                "malformed", "not_found")
                },
            )  # fmt: skip
        return HttpResponse(200, [("Content-Type", "application/json")], json.dumps(body).encode())
