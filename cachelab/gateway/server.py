"""`Gateway`: a local API Gateway REST API (Lambda proxy integration) in front of one SAM-defined function.

An asyncio server on uvloop: `cachelab.gateway.protocol` parses HTTP/1.1 with httptools; each request becomes a
REST proxy event (`cachelab.gateway.events`), runs in an execution environment from the pool
(`cachelab.gateway.environments`), and the environment's rendered response goes back to the client. API Gateway's
own answers are mirrored: 403 {"message": "Missing Authentication Token"} for an unknown resource or method, 413
for a payload over 10 MB, 429 when every environment stays busy (throttled), 502 {"message": "Internal server
error"} for a handler error, a crash or a malformed result, and 504 {"message": "Endpoint request timed out"} past
the function timeout or API Gateway's 29 s integration cap.

The warm path has no task switch and builds nothing twice: the connection parses a request in `data_received`, the
gateway builds its event once and writes it, marshalled, to an idle environment's socket; the environment's reply,
in its own `data_received`, is already the HTTP response (status, header lines, body), which goes to the client
as it is, around the gateway's Date, Content-Length, x-amzn-RequestId and Connection fields. Only cold starts and
waits for a busy environment run as tasks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import marshal
import signal
import time
from collections.abc import Callable
from typing import Any

import uvloop

from cachelab.gateway import wire
from cachelab.gateway.environments import Environment, EnvironmentFailed, Payload, Pool
from cachelab.gateway.events import CLOCK, HttpRequest, build_event, new_request_id
from cachelab.gateway.protocol import HttpConnection
from cachelab.gateway.results import HttpResponse, error_response
from cachelab.gateway.settings import ADMIN_PREFIX, GatewaySettings, StartError, json_log
from cachelab.gateway.spec import FunctionSpec
from cachelab.processes import PortInUseError, ensure_port_free

_IDLE_TIMEOUT_S = 120.0
_RESULT_HEAD = wire.RESULT_HEAD


class _Invocation:
    """One request's trip through an environment, driven by callbacks (reply, exit, timeout)."""

    __slots__ = ("accept", "conn", "env", "event", "gateway", "request_id", "timer")

    def __init__(
        self, gateway: Gateway, conn: HttpConnection, request_id: str, accept: str | None, event: dict[str, Any]
    ) -> None:
        self.gateway = gateway
        self.conn = conn
        self.request_id = request_id
        self.accept = accept
        self.event = event
        self.env: Environment | None = None
        self.timer: asyncio.TimerHandle | None = None

    def start(self, env: Environment, api_deadline: float) -> None:
        """Send the invocation; the function's timeout counts from now (after a cold start's init)."""
        self.env = env
        gateway = self.gateway
        loop = gateway.loop
        timeout_s = gateway.spec.timeout_s
        self.timer = loop.call_at(min(loop.time() + timeout_s, api_deadline), self.on_timeout)
        deadline_ms = int((time.time() + timeout_s) * 1000)
        message = marshal.dumps((self.request_id, deadline_ms, self.accept, self.event))
        env.invoke(wire.frame(wire.INVOKE, message), self.on_reply, self.on_lost)

    def on_reply(self, kind: bytes, payload: Payload) -> None:
        gateway, env = self.gateway, self.env
        assert env is not None
        if kind == wire.RESULT:  # the client's answer first, the bookkeeping after
            status, head_size = _RESULT_HEAD.unpack_from(payload)
            head_end = _RESULT_HEAD.size + head_size
            self.conn.send(status, payload[_RESULT_HEAD.size : head_end], payload[head_end:])
        elif kind == wire.MALFORMED:
            gateway.stats["malformed"] += 1
            reason = bytes(payload).decode("utf-8", "replace")
            gateway.log("malformed_response", request_id=self.request_id, env=env.number, reason=reason)
            self.conn.respond(error_response(502, "Internal server error"))
        else:  # the handler raised, or its result cannot be serialised: the environment logged the error
            gateway.stats["errors"] += 1
            self.conn.respond(error_response(502, "Internal server error"))
        if self.timer is not None:
            self.timer.cancel()
        gateway.pool.release(env)
        gateway.invocation_done()

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
        self.connections: set[HttpConnection] = set()
        self.access_log = settings.access_log
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
                lambda: HttpConnection(self), self.settings.host, self.settings.port, reuse_address=True
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
            if not conn.busy and conn.transport is not None:
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
        return uvloop.run(self._run(on_listening))

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
            if not conn.busy and conn.last_active < limit and conn.transport is not None:
                conn.transport.close()
        self._sweeper = self.loop.call_later(_IDLE_TIMEOUT_S / 4, self._sweep)

    # ---- API Gateway + Lambda ------------------------------------------------------------------------------------

    def dispatch(self, request: HttpRequest, conn: HttpConnection) -> None:
        """Route one parsed request; `conn.send` or `conn.respond` is called exactly once, now or later."""
        path = request.path
        if path.startswith(ADMIN_PREFIX):
            conn.respond(self._admin(request))
            return
        matched = self.spec.match(request.method, path)
        if matched is None:
            self.stats["not_found"] += 1
            conn.respond(error_response(403, "Missing Authentication Token", "MissingAuthenticationTokenException"))
            return
        if self.closing:
            conn.respond(error_response(503, "Service Unavailable"))
            return
        route, path_parameters = matched
        conn.request_id = request_id = new_request_id()
        epoch_ms, request_time, _date = CLOCK.now()
        spec = self.spec
        event = build_event(
            request, resource=route.resource, path_parameters=path_parameters, stage=spec.stage,
            binary_media_types=spec.binary_media_types, request_id=request_id,
            server_port=self.settings.port, request_time_epoch=epoch_ms, request_time=request_time,
        )  # fmt: skip
        invocation = _Invocation(self, conn, request_id, request.header("Accept"), event)
        api_deadline = self.loop.time() + self.settings.api_timeout
        self.stats["requests"] += 1
        self.inflight += 1
        self._idle.clear()
        env = self.pool.take_idle()
        if env is not None:
            invocation.start(env, api_deadline)
            return
        task = self.loop.create_task(self._cold_path(invocation, api_deadline))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cold_path(self, invocation: _Invocation, api_deadline: float) -> None:
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
            invocation.start(lease, api_deadline)
            return
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
        invocation.start(env, api_deadline)

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
