"""The native stack: Redis, the stub API, the local gateway and (optionally) the Locust web UI, as child processes.

Used by `cachelab up` (until Ctrl-C) and `cachelab demo` (for one experiment). Every process runs in its own process
group on a loopback port, logs to `<workdir>/<name>.log`, and is stopped (SIGTERM, then SIGKILL) in reverse order.
A given workdir is kept (up and demo keep their logs for the user); without one, a temporary folder is removed.

A running stack can also break and mend one service by name, which is how the fault suite (cachelab.chaos) takes
Redis away: `kill` (SIGKILL), `pause`/`resume` (SIGSTOP/SIGCONT: it accepts connections but never answers) and
`restart` (the same command line again, on the same port, waited for as at start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cachelab import processes
from cachelab.gateway.cli import command as gateway_command
from cachelab.gateway.cli import health_url as gateway_health_url
from cachelab.processes import LOOPBACK
from proxy.config import ENVIRONMENT_NAMES
from stub_api.client import StubAdmin

# A slow, slightly heavy-tailed upstream by default: what makes caching worth it.
DEFAULT_STUB_ARGS = ("--latency-ms", "120", "--latency-p99-ms", "600", "--seed", "7")
FAKE_REDIS_WARNING = (
    "warning: redis-server is not installed, so Redis is an embedded fakeredis server: everything works, but "
    "latency figures are not representative (apt-get install redis-server for real ones)"
)


def needed_extras(*, locust: bool) -> tuple[str, ...]:
    """The extras (cachelab.extras) a stack needs: the stub, the gateway (SAM CLI), Locust for the web UI or a run,
    and the embedded Redis when redis-server is not installed."""
    extras = ["stub", "sam", *(["load"] if locust else [])]
    if processes.redis_server_path() is None:
        extras.append("fakeredis")
    return tuple(extras)


class StackError(RuntimeError):
    """A service could not start; the message says which and where its log is."""


@dataclass
class StackConfig:
    redis_port: int = 6379
    stub_port: int = 8081
    gateway_port: int = 3000
    locust_port: int | None = 8089  # None: no Locust web UI
    locustfile: str = "steady"
    stub_args: tuple[str, ...] = DEFAULT_STUB_ARGS
    gateway_params: tuple[str, ...] = ()
    gateway_env: dict[str, str] = field(default_factory=dict)
    gateway_args: tuple[str, ...] = ()  # more `cachelab gateway` flags, e.g. ("--throttle-wait", "30")
    concurrency: int | None = None
    warm: int | None = None  # gateway environments started before it listens (no cold starts in measurements)
    workdir: Path | None = None  # the services' logs, kept; None: a temporary folder, removed at stop

    def with_free_ports(self) -> StackConfig:
        """This stack on loopback ports free right now, without the Locust web UI (for tests and experiments)."""
        redis_port, stub_port, gateway_port = processes.free_ports(3)
        return dataclasses.replace(
            self, redis_port=redis_port, stub_port=stub_port, gateway_port=gateway_port, locust_port=None
        )


@dataclass(frozen=True)
class Launch:
    """How a service starts and when it is up: what `Stack.restart` runs again."""

    argv: tuple[str, ...]
    port: int
    health: str | None  # a URL that answers below 500 once the service is up; None: its port accepting connections
    env: dict[str, str] | None = None
    timeout: float = 30.0


@dataclass
class Service:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    launch: Launch


class Stack:
    def __init__(self, config: StackConfig, *, echo: bool = True) -> None:
        self.config = config
        self.echo = echo
        self.services: list[Service] = []
        self._paused: set[str] = set()
        self.fake_redis = processes.redis_server_path() is None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = config.workdir or Path(self._make_tmp())

    def _make_tmp(self) -> str:
        self._tmp = tempfile.TemporaryDirectory(prefix="cachelab-stack-")
        return self._tmp.name

    # -- URLs --------------------------------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        return f"redis://{LOOPBACK}:{self.config.redis_port}/0"

    @property
    def stub_url(self) -> str:
        return f"http://{LOOPBACK}:{self.config.stub_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{LOOPBACK}:{self.config.gateway_port}"

    @property
    def locust_url(self) -> str | None:
        return f"http://{LOOPBACK}:{self.config.locust_port}" if self.config.locust_port else None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        config = self.config
        ports = [("Redis", config.redis_port), ("stub API", config.stub_port), ("gateway", config.gateway_port)]
        if config.locust_port:
            ports.append(("Locust web UI", config.locust_port))
        seen: set[int] = set()
        for what, port in ports:  # all checked before anything starts: fail fast, leave nothing behind
            if port in seen:
                raise StackError(f"port {port} is given to two services; choose distinct ports")
            seen.add(port)
            processes.ensure_port_free(port, what=what)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_redis()
            self._start_stub()
            self._start_gateway()
            if config.locust_port:
                self._start_locust()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for service in reversed(self.services):
            self._continue(service)  # a paused process would only end at SIGKILL
            processes.stop(service.proc)
        self.services.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- services ------------------------------------------------------------------------------------------
    def _python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def _launch(
        self,
        name: str,
        argv: list[str],
        url: str,
        port: int,
        *,
        health: str | None,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Service:
        launch = Launch(tuple(argv), port, health, env, timeout)
        log = self.workdir / f"{name}.log"
        started = time.monotonic()
        service = Service(name, url, processes.start(launch.argv, env=env, log=log), log, launch)
        self.services.append(service)
        self._wait_up(service)
        if self.echo:
            print(f"  {name:<10} ready in {time.monotonic() - started:4.1f} s  {url}", flush=True)
        return service

    def _wait_up(self, service: Service) -> None:
        launch = service.launch
        try:
            if launch.health is not None:
                processes.wait_for_http(launch.health, timeout=launch.timeout, proc=service.proc)
            else:
                processes.wait_for_port(launch.port, timeout=launch.timeout, proc=service.proc)
        except (RuntimeError, TimeoutError) as exc:
            tail = _tail(service.log)
            raise StackError(
                f"{service.name} did not become healthy: {exc}\n--- last lines of {service.log} ---\n{tail}"
            ) from None

    # -- one service at a time -------------------------------------------------------------------------------
    def service(self, name: str) -> Service:
        """The running stack's service `name` (redis, stub, gateway, locust)."""
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(s.name for s in self.services) or "none (the stack is not running)"
        raise StackError(f"the stack runs no {name!r} service; it runs {known}")

    def alive(self, name: str) -> bool:
        """Whether service `name`'s process has not exited (a paused one is alive)."""
        return self.service(name).proc.poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL service `name` and everything it started; waits until it is gone. Nothing when already gone."""
        service = self.service(name)
        self._paused.discard(name)
        if service.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.proc.pid, signal.SIGKILL)
            service.proc.wait(timeout=10)

    def pause(self, name: str) -> None:
        """SIGSTOP service `name`: its port still accepts connections, but nothing answers until `resume`."""
        service = self.service(name)
        if service.proc.poll() is not None:
            raise StackError(f"{name} is not running (exit status {service.proc.returncode}); it cannot be paused")
        os.killpg(service.proc.pid, signal.SIGSTOP)
        self._paused.add(name)

    def resume(self, name: str) -> None:
        """SIGCONT service `name` after `pause`. Nothing when it is not paused."""
        self._continue(self.service(name))

    def _continue(self, service: Service) -> None:
        if service.name in self._paused:
            self._paused.discard(service.name)
            if service.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.proc.pid, signal.SIGCONT)

    def restart(self, name: str) -> None:
        """Stop service `name` (if it runs) and start it again as it was first started (same command, port and
        environment; its log continues); returns once it is up, as `start` waits. A restarted Redis is empty."""
        service = self.service(name)
        self._continue(service)
        processes.stop(service.proc)
        service.proc = processes.start(service.launch.argv, env=service.launch.env, log=service.log)
        self._wait_up(service)

    def _start_redis(self) -> None:
        port = str(self.config.redis_port)
        if self.fake_redis:
            print(FAKE_REDIS_WARNING, file=sys.stderr, flush=True)
            argv = self._python("-m", "cachelab.fakeredis_server", "--port", port)
        else:
            binary = processes.redis_server_path()
            assert binary is not None
            argv = [binary, "--port", port, "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
                    "--dir", str(self.workdir)]  # fmt: skip
        self._launch("redis", argv, self.redis_url, self.config.redis_port, health=None)

    def _start_stub(self) -> None:
        argv = self._python("-m", "stub_api", "--host", LOOPBACK, "--port", str(self.config.stub_port),
                            *self.config.stub_args)  # fmt: skip
        health = StubAdmin(self.stub_url).health_url
        self._launch("stub", argv, self.stub_url, self.config.stub_port, health=health)

    def _start_gateway(self) -> None:
        env = {**os.environ, "UPSTREAM_URL": self.stub_url, "REDIS_URL": self.redis_url, **self.config.gateway_env}
        params = [arg for param in self.config.gateway_params for arg in ("--param", param)]  # the gateway checks them
        params += self.config.gateway_args
        argv = gateway_command(
            self.config.gateway_port, concurrency=self.config.concurrency, warm=self.config.warm,
            pass_env=ENVIRONMENT_NAMES, extra=params,
        )  # fmt: skip
        health = gateway_health_url(self.config.gateway_port)
        self._launch("gateway", argv, self.gateway_url, self.config.gateway_port, health=health, env=env, timeout=60.0)

    def _start_locust(self) -> None:
        import loadtests  # noqa: PLC0415 - only to find the locustfiles

        locustfile = Path(loadtests.__file__).resolve().parent / f"{self.config.locustfile}.py"
        env = {**os.environ, "CACHELAB_STUB_ADMIN": self.stub_url}
        argv = self._python("-m", "locust", "-f", str(locustfile), "--host", self.gateway_url,
                            "--web-host", LOOPBACK, "--web-port", str(self.config.locust_port))  # fmt: skip
        assert self.locust_url is not None
        self._launch(
            "locust", argv, self.locust_url, self.config.locust_port or 0, health=self.locust_url, env=env, timeout=60.0
        )

    def describe(self) -> str:
        rows = [("Redis", self.redis_url + ("  (embedded fakeredis)" if self.fake_redis else "")),
                ("stub API", f"{self.stub_url}   control page {StubAdmin(self.stub_url).page_url}"),
                ("proxy (gateway)", f"{self.gateway_url}   try: curl -i {self.gateway_url}/items/1")]  # fmt: skip
        if self.locust_url:
            rows.append(("Locust web UI", self.locust_url))
        rows.append(("logs", str(self.workdir)))
        return "\n".join(f"  {name:<16} {value}" for name, value in rows)


def _tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


@contextlib.contextmanager
def running(config: StackConfig, *, echo: bool = True) -> Iterator[Stack]:
    stack = Stack(config, echo=echo)
    with stack:
        yield stack
