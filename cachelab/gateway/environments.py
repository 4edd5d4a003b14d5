"""Execution environments: one worker process each, started lazily, one invocation at a time, capped in number.

Like Lambda, an environment is created on demand (a cold start: a fresh interpreter imports the handler), then
reused for later invocations (warm: module globals survive). The pool caps the number of environments like reserved
concurrency; a request that finds them all busy waits up to `throttle_wait` seconds for one, then is throttled.
An environment that times out, crashes or fails its init is killed and forgotten: the next request cold-starts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, cast

from cachelab.gateway import wire
from cachelab.gateway.spec import FunctionSpec

INIT_TIMEOUT_S = 10.0  # Lambda's limit for the init phase
_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")

Logger = Callable[..., None]


class EnvironmentFailed(Exception):
    """The environment died or could not start; `error` is the Lambda error it reported, if any."""

    def __init__(self, message: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error

    def describe(self) -> str:
        """One line: the reported error's type and message (e.g. the proxy's ConfigError), else what happened."""
        if self.error:
            return f"{self.error.get('errorType', 'Error')}: {self.error.get('errorMessage', '')}"
        return str(self)


Payload = bytes | memoryview
FrameListener = Callable[[bytes, Payload], None]


class _Channel(asyncio.Protocol):
    """The gateway's end of an environment's socket: each frame goes to the current listener, no task switch.

    A frame that arrives whole in one read (a warm invocation's reply, the usual case) is handed over as a view of
    that read, not copied."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self.listener: FrameListener | None = None
        self.on_lost: Callable[[], None] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        size = wire.HEADER.size
        if not buffer and len(data) >= size:
            kind, length = wire.HEADER.unpack_from(data)
            if len(data) == size + length:
                self._deliver(kind, memoryview(data)[size:])
                return
        buffer += data
        while len(buffer) >= size:
            kind, length = wire.HEADER.unpack_from(buffer)
            if len(buffer) < size + length:
                break
            payload = bytes(buffer[size : size + length])
            del buffer[: size + length]
            self._deliver(kind, payload)

    def _deliver(self, kind: bytes, payload: Payload) -> None:
        listener = self.listener
        if listener is not None:  # else a late reply of an abandoned invocation: dropped
            self.listener = None
            self.on_lost = None
            listener(kind, payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        on_lost = self.on_lost
        self.listener = None
        self.on_lost = None
        if on_lost is not None:
            on_lost()

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.lost

    async def receive(self) -> tuple[bytes, bytes]:
        """The next frame (used for the init handshake); EnvironmentFailed if the worker exits first."""
        if not self.is_open:
            raise EnvironmentFailed("the environment exited")
        waiter: asyncio.Future[tuple[bytes, bytes]] = asyncio.get_running_loop().create_future()

        def on_frame(kind: bytes, payload: Payload) -> None:
            if not waiter.done():
                waiter.set_result((kind, bytes(payload)))

        def on_lost() -> None:
            if not waiter.done():
                waiter.set_exception(EnvironmentFailed("the environment exited during init"))

        self.listener, self.on_lost = on_frame, on_lost
        try:
            return await waiter
        finally:
            self.listener = self.on_lost = None


class Environment:
    """One execution environment (worker process)."""

    def __init__(self, number: int, process: asyncio.subprocess.Process, channel: _Channel) -> None:
        self.number = number
        self.process = process
        self.channel = channel
        self.invocations = 0
        self.pid = process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and self.channel.is_open

    def invoke(self, message: bytes, on_reply: FrameListener, on_lost: Callable[[], None]) -> None:
        """Send one invocation; exactly one of `on_reply(kind, payload)` or `on_lost()` follows, unless the
        caller abandons the invocation first (`abandon`)."""
        channel = self.channel
        if not channel.is_open or channel.transport is None:
            asyncio.get_running_loop().call_soon(on_lost)
            return
        self.invocations += 1
        channel.listener, channel.on_lost = on_reply, on_lost
        channel.transport.write(message)

    def abandon(self) -> None:
        self.channel.listener = self.channel.on_lost = None

    def kill(self) -> None:
        if self.channel.transport is not None:
            self.channel.transport.close()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float) -> None:
        """Close the socket (the worker exits when idle), SIGTERM, then SIGKILL; always reap."""
        if self.channel.transport is not None:
            self.channel.transport.close()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


# What acquire() returns when the caller may start a new environment (a cold start) in a free slot.
SPAWN = "spawn"


class Pool:
    """At most `concurrency` environments; idle ones are reused most-recently-used first, as Lambda does."""

    def __init__(self, spec: FunctionSpec, *, concurrency: int, throttle_wait: float, log: Logger) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.spec = spec
        self.concurrency = concurrency
        self.throttle_wait = throttle_wait
        self.log = log
        self.idle: list[Environment] = []
        self.busy: set[Environment] = set()
        self.slots = 0  # environments alive or starting
        self.waiters: collections.deque[asyncio.Future[Environment | str]] = collections.deque()
        self.numbers = 0
        self.stats = collections.Counter[str]()
        self.closed = False
        self._reaping: set[asyncio.Task[int]] = set()
        self._env = self._worker_environment()
        self._worker_args = [arg for media in spec.binary_media_types for arg in ("--binary-media-type", media)]

    def _worker_environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
        env.update(self.spec.environment)
        code = str(self.spec.task_root)
        env.update(
            {
                "_HANDLER": self.spec.handler,
                "LAMBDA_TASK_ROOT": code,
                "PYTHONPATH": code,
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "TZ": ":UTC",
            }
        )
        return env

    def take_idle(self) -> Environment | None:
        """A warm environment right away, or None (then `acquire` decides: cold start, wait or throttle)."""
        while self.idle:
            env = self.idle.pop()
            if env.alive:
                self.busy.add(env)
                return env
            self.log("env_recycled", env=env.number, pid=env.pid, reason="exited", invocations=env.invocations)
            self._reap(env)
            self.slots -= 1
        return None

    async def acquire(self) -> Environment | str | None:
        """An idle environment, SPAWN (a free slot: start one), or None when throttled."""
        while self.idle:
            env = self.idle.pop()
            if env.alive:
                self.busy.add(env)
                return env
            # It died while idle (killed from outside): its slot goes to this caller.
            self.log("env_recycled", env=env.number, pid=env.pid, reason="exited", invocations=env.invocations)
            self._reap(env)
            return SPAWN
        if self.slots < self.concurrency:
            self.slots += 1
            return SPAWN
        if self.throttle_wait <= 0:
            return None
        waiter: asyncio.Future[Environment | str] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(self.throttle_wait):
                return await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return waiter.result()  # handed over just as the wait ran out: take it, or it would leak
            return None
        finally:
            if waiter in self.waiters:
                self.waiters.remove(waiter)

    def _reap(self, env: Environment) -> None:
        env.kill()
        task = asyncio.get_running_loop().create_task(env.process.wait())
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    def _hand_over(self, lease: Environment | str) -> bool:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(lease)
                return True
        return False

    def release(self, env: Environment) -> None:
        """The invocation is over and the environment healthy: give it to a waiter or park it."""
        if self.closed:
            self.busy.discard(env)
            return
        if not self._hand_over(env):
            self.busy.discard(env)
            self.idle.append(env)

    def discard(self, env: Environment | None, reason: str) -> None:
        """Forget a dead or killed environment (or a failed start) and free its slot."""
        if env is not None:
            self.busy.discard(env)
            if env in self.idle:
                self.idle.remove(env)
            self._reap(env)
            self.log("env_recycled", env=env.number, pid=env.pid, reason=reason, invocations=env.invocations)
        if self.closed:
            self.slots -= 1
            return
        if not self._hand_over(SPAWN):
            self.slots -= 1

    async def prewarm(self, count: int) -> list[EnvironmentFailed]:
        """Start up to `count` environments now and park them idle (like provisioned concurrency).

        Returns the init failures (each logged, its slot left free); empty when every environment is ready.
        At most one init per CPU runs at a time: in Lambda each environment inits on its own machine, and here
        twenty inits sharing two cores would each take ten times longer and overrun INIT_TIMEOUT_S together.
        """
        count = min(count, self.concurrency - self.slots)
        self.slots += count
        cpus = asyncio.Semaphore(max(1, os.cpu_count() or 1))

        async def spawn_one() -> Environment:
            async with cpus:
                return await self.spawn(None)

        results = await asyncio.gather(*(spawn_one() for _ in range(count)), return_exceptions=True)
        failures: list[EnvironmentFailed] = []
        for result in results:
            if isinstance(result, Environment):
                self.busy.discard(result)
                self.release(result)
            else:
                self.discard(None, "init_failed")
                if not isinstance(result, EnvironmentFailed):
                    raise result
                failures.append(result)
        return failures

    async def spawn(self, request_id: str | None) -> Environment:
        """A cold start: a new worker process, ready (handler imported) within INIT_TIMEOUT_S."""
        if self.closed:
            raise EnvironmentFailed("the gateway is shutting down")
        self.numbers += 1
        number = self.numbers
        started = time.perf_counter()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cachelab.gateway.worker",
                "--fd", str(child.fileno()), "--parent-pid", str(os.getpid()), *self._worker_args,
                pass_fds=(child.fileno(),), env=self._env, cwd=self.spec.task_root,
                stdin=asyncio.subprocess.DEVNULL, stdout=sys.stderr.fileno(), stderr=None,
            )  # fmt: skip
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        try:
            _transport, channel = await asyncio.get_running_loop().create_unix_connection(_Channel, sock=parent)
        except BaseException:
            parent.close()
            process.kill()
            await process.wait()
            raise
        env = Environment(number, process, channel)
        try:
            async with asyncio.timeout(INIT_TIMEOUT_S):
                kind, payload = await channel.receive()
        except TimeoutError:
            env.kill()
            await process.wait()
            raise EnvironmentFailed(f"init did not finish within {INIT_TIMEOUT_S:.0f} s") from None
        except BaseException:
            env.kill()
            await process.wait()
            raise
        init_ms = (time.perf_counter() - started) * 1000.0
        if kind != wire.READY:
            env.kill()
            await process.wait()
            error = json.loads(payload) if kind == wire.INIT_ERROR else None
            self.stats["init_errors"] += 1
            self.log("init_error", env=number, init_ms=round(init_ms, 1), request_id=request_id, error=error)
            raise EnvironmentFailed("init failed", error)
        ready = json.loads(payload)
        self.stats["cold_starts"] += 1
        self.busy.add(env)
        self.log(
            "cold_start", function=self.spec.logical_id, env=number, pid=process.pid,
            init_ms=round(init_ms, 1), handler_import_ms=ready.get("import_ms"), request_id=request_id,
        )  # fmt: skip
        return env

    async def close(self, timeout: float = 2.0) -> None:
        """Stop every environment (idle and busy) and reap them."""
        self.closed = True
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(SPAWN)
        envs = list(self.idle) + list(self.busy)
        self.idle.clear()
        self.busy.clear()
        await asyncio.gather(*(env.stop(timeout) for env in envs), *self._reaping, return_exceptions=True)
