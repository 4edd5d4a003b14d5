"""Faults under steady load: the runner behind `make chaos` and the README's "Reliability" figures.

Each fault runs as the `outage` Locust scenario (warm-up, fault, recovery) against a native `Stack`. The scenario
starts and lifts its outage through the stub's admin API (`POST /__admin/faults {"mode": ...}`, from the Locust
master, exactly at the phase boundaries); here the scenario's `--stub-admin` is a `FaultRelay`, which starts or
lifts *any* `Fault` on that call (Redis killed, Redis paused, an upstream mode, added latency, a flapping
schedule) and passes every other admin call (the request counter) through to the real stub. So every fault gets
the scenario's phase timing, its `seen-key`/`new-key` groups and its per-second timeline, and `figures` turns one
run's summary.json into the row of the figures table.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cachelab import processes
from cachelab.commands.load import LoadRun, run_scenario
from cachelab.processes import LOOPBACK
from cachelab.stack import Service, Stack, StackConfig
from loadtests.summary_text import percent

FAULTS_PATH = "/__admin/faults"
_ADMIN_TIMEOUT = 5.0


class FaultError(RuntimeError):
    """A fault could not be started or lifted; the message says which and why."""


def _admin(base: str, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
    """One call to the stub's admin API; its JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - our own loopback stub
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=_ADMIN_TIMEOUT) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise FaultError(f"{method} {base}{path} answered {exc.code}: {exc.read()[:200]!r}") from None
    except (OSError, ValueError) as exc:
        raise FaultError(f"{method} {base}{path} failed: {exc}") from None


# ---------------------------------------------------------------------------------------------- faults


class Fault:
    """Something that goes wrong between `start()` and `stop()`. Both are idempotent; `stop()` always restores."""

    name = "none"
    description = "no fault (the baseline)"
    redis = False  # a Redis fault: the upstream is healthy, so no request may fail

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


class NoFault(Fault):
    pass


def _service(stack: Stack, name: str) -> Service:
    for service in stack.services:
        if service.name == name:
            return service
    raise FaultError(f"the stack runs no {name} service")


class RedisKill(Fault):
    """SIGKILL the stack's redis-server; `stop` starts a new one (empty: no persistence) on the same port."""

    name = "redis-kill"
    description = "Redis killed (SIGKILL), restarted empty"
    redis = True

    def __init__(self, stack: Stack) -> None:
        if stack.fake_redis:
            raise FaultError("the Redis faults need a real redis-server (apt-get install redis-server)")
        self.stack = stack

    def start(self) -> None:
        proc = _service(self.stack, "redis").proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        service = _service(self.stack, "redis")
        if service.proc.poll() is None:
            return
        proc = processes.start([str(a) for a in service.proc.args], log=service.log)  # type: ignore[union-attr]
        service.proc = proc
        try:
            processes.wait_for_port(self.stack.config.redis_port, proc=proc, timeout=15)
        except (RuntimeError, TimeoutError) as exc:
            raise FaultError(f"redis-server did not come back on port {self.stack.config.redis_port}: {exc}") from None


class RedisPause(Fault):
    """SIGSTOP the stack's redis-server (it accepts connections but never answers: a slow cache); SIGCONT."""

    name = "redis-pause"
    description = "Redis paused (SIGSTOP), then resumed"
    redis = True

    def __init__(self, stack: Stack) -> None:
        if stack.fake_redis:
            raise FaultError("the Redis faults need a real redis-server (apt-get install redis-server)")
        self.stack = stack
        self._paused: int | None = None

    def start(self) -> None:
        if self._paused is None:
            pid = _service(self.stack, "redis").proc.pid
            os.kill(pid, signal.SIGSTOP)
            self._paused = pid

    def stop(self) -> None:
        if self._paused is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._paused, signal.SIGCONT)
            self._paused = None


class StubFault(Fault):
    """A fault patch sent to the stub's admin API; `stop` sends the fields' values from before `start`."""

    def __init__(self, stub_url: str, name: str, description: str, patch: Mapping[str, Any]) -> None:
        self.stub_url = stub_url.rstrip("/")
        self.name = name
        self.description = description
        self.patch = dict(patch)
        self._undo: dict[str, Any] | None = None

    def current_patch(self) -> dict[str, Any]:
        return self.patch

    def start(self) -> None:
        if self._undo is not None:
            return
        before = _admin(self.stub_url, "GET", FAULTS_PATH)
        patch = self.current_patch()
        self._undo = {name: before.get(name) for name in patch if name != "outage"}
        if "outage" in patch:
            self._undo["outage"] = []
        _admin(self.stub_url, "POST", FAULTS_PATH, patch)

    def stop(self) -> None:
        if self._undo is None:
            return
        undo, self._undo = self._undo, None
        _admin(self.stub_url, "POST", FAULTS_PATH, undo)


def upstream_mode(stub_url: str, mode: str) -> StubFault:
    """The whole upstream in `mode`: error (HTTP 500), timeout (never answers), reset (TCP reset)."""
    what = {"error": "answers 500", "timeout": "never answers", "reset": "resets connections"}[mode]
    return StubFault(stub_url, f"upstream-{mode}", f"upstream {what}", {"mode": mode})


def upstream_slow(stub_url: str, latency_ms: float) -> StubFault:
    """Every upstream answer takes `latency_ms` (still inside the proxy's upstream timeout)."""
    patch = {"latency_model": "fixed", "latency_ms": latency_ms, "latency_p99_ms": None}
    return StubFault(stub_url, "upstream-slow", f"upstream answers in {latency_ms:g} ms", patch)


class Flapping(StubFault):
    """The upstream goes down (`mode`) for `down_s` out of every `period_s`, for `span_s` from `start`."""

    def __init__(self, stub_url: str, *, span_s: float, period_s: float = 1.0, down_s: float = 0.5,
                 mode: str = "error") -> None:  # fmt: skip
        description = f"upstream {mode} {down_s:g} s of every {period_s:g} s"
        super().__init__(stub_url, "upstream-flapping", description, {"outage": []})
        self.span_s, self.period_s, self.down_s, self.mode = span_s, period_s, down_s, mode

    def current_patch(self) -> dict[str, Any]:
        count = max(1, math.ceil(self.span_s / self.period_s))
        windows = [
            {"mode": self.mode, "start_s": round(i * self.period_s, 3), "duration_s": self.down_s} for i in range(count)
        ]
        return {"outage": windows}


# ---------------------------------------------------------------------------------------------- the relay


@dataclass
class RelayLog:
    started: list[float] = field(default_factory=list)  # unix times the fault was started
    stopped: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class FaultRelay:
    """An HTTP stand-in for the stub's admin API: `POST /__admin/faults` starts (any mode but "up") or lifts
    ("up") `fault`; every other request is passed through to the real stub at `stub_url`."""

    def __init__(self, stub_url: str, fault: Fault) -> None:
        self.stub_url = stub_url.rstrip("/")
        self.fault = fault
        self.log = RelayLog()
        self._lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                return

            def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                if self.command == "POST" and self.path.split("?")[0] == FAULTS_PATH:
                    status, body = relay.switch(data)
                    self._reply(status, body)
                    return
                status, body, content_type = relay.forward(self.command, self.path, data)
                self._reply(status, body, content_type)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def switch(self, data: bytes) -> tuple[int, bytes]:
        try:
            mode = json.loads(data or b"{}").get("mode")
        except (ValueError, AttributeError):
            return 400, b'{"error": "expected a JSON object"}'
        with self._lock:
            try:
                if mode == "up":
                    if self.log.started and len(self.log.stopped) < len(self.log.started):
                        self.fault.stop()
                        self.log.stopped.append(time.time())
                elif len(self.log.started) == len(self.log.stopped):
                    self.fault.start()
                    self.log.started.append(time.time())
            except (FaultError, OSError) as exc:
                self.log.errors.append(str(exc))
                return 500, json.dumps({"error": str(exc)}).encode()
        return 200, json.dumps({"mode": mode, "fault": self.fault.name}).encode()

    def forward(self, method: str, path: str, data: bytes) -> tuple[int, bytes, str]:
        request = urllib.request.Request(  # noqa: S310 - our own loopback stub
            self.stub_url + path, data=data or None, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=_ADMIN_TIMEOUT) as resp:  # noqa: S310
                return resp.status, resp.read(), resp.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "application/json")
        except OSError as exc:
            return 502, json.dumps({"error": f"stub unreachable: {exc}"}).encode(), "application/json"

    def close(self) -> None:
        """Stop serving, and lift the fault whatever happened."""
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            self.fault.stop()


@contextlib.contextmanager
def relaying(stub_url: str, fault: Fault) -> Iterator[FaultRelay]:
    relay = FaultRelay(stub_url, fault)
    try:
        yield relay
    finally:
        relay.close()


# ---------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Plan:
    """The load and phase lengths of every fault run."""

    warmup_s: float = 3.0
    fault_s: float = 3.0
    recovery_s: float = 7.0
    users: int = 10  # at most the gateway's concurrency, so a request never waits for a free environment
    rate: float = 150.0  # requests/s over all users
    keys: int = 200

    @property
    def duration_s(self) -> float:
        return self.warmup_s + self.fault_s + self.recovery_s


# quick: every fault in about two minutes (`make test`); full: the README's figures (`make chaos`).
PROFILES: dict[str, Plan] = {
    "quick": Plan(),
    "full": Plan(warmup_s=8.0, fault_s=8.0, recovery_s=12.0),
}
# The stack every fault runs against: a fast, slightly heavy-tailed upstream; entries fresh for 2 s (so they go
# stale during every fault and stale-if-error is what keeps cached keys available); a 1 s upstream timeout.
STUB_ARGS = ("--latency-ms", "20", "--latency-p99-ms", "80", "--seed", "7")
PROXY_ENV = {"CACHE_TTL_SECONDS": "2", "UPSTREAM_TIMEOUT_SECONDS": "1", "LOG_LEVEL": "INFO"}
CONCURRENCY = 10
SLOW_MS = 400.0  # the slow upstream: well inside the 1 s timeout
FAULT_NAMES = (
    "none",
    "upstream-error",
    "upstream-timeout",
    "upstream-reset",
    "upstream-slow",
    "upstream-flapping",
    "redis-pause",
    "redis-kill",
)


def stack_config(workdir: Path) -> StackConfig:
    """Free loopback ports, no Locust web UI, every gateway environment started before the first request."""
    redis_port, stub_port, gateway_port = processes.free_ports(3)
    return StackConfig(
        redis_port=redis_port,
        stub_port=stub_port,
        gateway_port=gateway_port,
        locust_port=None,
        stub_args=STUB_ARGS,
        gateway_env=dict(PROXY_ENV),
        concurrency=CONCURRENCY,
        warm=CONCURRENCY,
        workdir=workdir,
    )


def make_fault(name: str, stack: Stack, plan: Plan) -> Fault:
    if name == "none":
        return NoFault()
    if name == "redis-kill":
        return RedisKill(stack)
    if name == "redis-pause":
        return RedisPause(stack)
    if name == "upstream-slow":
        return upstream_slow(stack.stub_url, SLOW_MS)
    if name == "upstream-flapping":
        return Flapping(stack.stub_url, span_s=plan.fault_s)
    if name.startswith("upstream-"):
        return upstream_mode(stack.stub_url, name.removeprefix("upstream-"))
    raise ValueError(f"unknown fault {name!r}; choose one of {', '.join(FAULT_NAMES)}")


def reset(stack: Stack) -> None:
    """A healthy stub with zeroed counters and an empty cache."""
    _admin(stack.stub_url, "POST", "/__admin/reset")
    redis = _service(stack, "redis")
    if redis.proc.poll() is None:
        import redis as redis_py  # noqa: PLC0415 - only the runner needs a Redis client

        client = redis_py.Redis(host=LOOPBACK, port=stack.config.redis_port, socket_timeout=5)
        try:
            client.flushall()
        finally:
            client.close()


def run_fault(stack: Stack, fault: Fault, plan: Plan, out: Path) -> tuple[dict[str, Any], RelayLog]:
    """One outage-scenario run with `fault` during its outage phase; summary.json and the relay's log."""
    reset(stack)
    phases = f"warmup={plan.warmup_s:g}s,outage={plan.fault_s:g}s,recovery={plan.recovery_s:g}s"
    with relaying(stack.stub_url, fault) as relay:
        load = LoadRun(
            scenario="outage",
            host=stack.gateway_url,
            out=out,
            users=plan.users,
            duration=f"{plan.duration_s:g}s",
            stub_admin=relay.url,
            knobs={"--phases": phases, "--rate": f"{plan.rate:g}", "--keys": str(plan.keys), "--progress": "0"},
        )
        summary = run_scenario(load)
    if relay.log.errors:
        raise FaultError(f"{fault.name}: " + "; ".join(relay.log.errors))
    return summary, relay.log


# ---------------------------------------------------------------------------------------------- figures

# The hit ratio counts as recovered once a second's hit ratio is back within this much of the level before.
RECOVERY_TOLERANCE = 0.1


@dataclass(frozen=True)
class Figures:
    """One row of the reliability table (the fault phase unless said otherwise)."""

    fault: str
    description: str
    requests: int  # the whole run
    fault_requests: int
    errors_5xx: int  # the whole run
    fault_5xx: int
    transport_errors: int  # the whole run: timeouts, resets, refused connections seen by the client
    cached_availability: float | None  # seen-key: keys this run had already been answered
    uncached_availability: float | None  # new-key
    cached_failures: int  # seen-key answers with a status >= 400 (or none at all)
    p99_ms: float | None
    baseline_p99_ms: float | None
    added_p99_ms: float | None
    hit_ratio_before: float | None  # the two whole seconds before the fault
    recovery_s: int | None  # whole seconds into the recovery phase until the hit ratio was back; None: never
    bypass_at_end: int  # BYPASS answers in the last two seconds of the run (the cache back in use: 0)
    by_cache_status: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _phase(summary: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for phase in summary["phases"]:
        if phase["name"] == name:
            found: Mapping[str, Any] = phase
            return found
    raise KeyError(f"summary has no phase {name!r}")


def _errors_5xx(figs: Mapping[str, Any]) -> int:
    return sum(int(v) for status, v in figs["errors"]["by_status"].items() if int(status) >= 500)


def _group(phase: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    group: Mapping[str, Any] | None = phase.get("groups", {}).get(name)
    return group


def recovery_seconds(timeline: Sequence[Mapping[str, Any]]) -> tuple[float | None, int | None]:
    """(hit ratio over the two whole seconds before the fault, whole seconds into the recovery phase until a
    second's hit ratio is back within RECOVERY_TOLERANCE of it; None when it never is)."""
    warm = [row for row in timeline if row["phase"] == "warmup" and row["hit_ratio"] is not None]
    tail = warm[-3:-1]  # the last warm-up second is cut by the fault's start
    answered = sum(sum(row["by_cache_status"].values()) for row in tail)
    hits = sum(row["by_cache_status"]["HIT"] for row in tail)
    if not answered:
        return None, None
    before = hits / answered
    recovery = [row for row in timeline if row["phase"] == "recovery"]
    for index, row in enumerate(recovery):
        if row["hit_ratio"] is not None and row["hit_ratio"] >= before - RECOVERY_TOLERANCE:
            return round(before, 4), index + 1
    return round(before, 4), None


def figures(fault: Fault, summary: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> Figures:
    phase = _phase(summary, "outage")
    seen, new = _group(phase, "seen-key"), _group(phase, "new-key")
    p99 = phase["latency"]["p99_ms"]
    base = _phase(baseline, "outage")["latency"]["p99_ms"] if baseline is not None else None
    before, recovery = recovery_seconds(summary["timeline"])
    last = [row for row in summary["timeline"] if row["requests"]][-2:]
    errors = summary["errors"]
    return Figures(
        fault=fault.name,
        description=fault.description,
        requests=int(summary["requests"]),
        fault_requests=int(phase["requests"]),
        errors_5xx=_errors_5xx(summary),
        fault_5xx=_errors_5xx(phase),
        transport_errors=int(errors["timeout"]) + int(errors["connection"]) + int(errors["other"]),
        cached_availability=seen["availability"] if seen else None,
        uncached_availability=new["availability"] if new else None,
        cached_failures=int(seen["failures"]) if seen else 0,
        p99_ms=p99,
        baseline_p99_ms=base,
        added_p99_ms=None if p99 is None or base is None else round(p99 - base, 2),
        hit_ratio_before=before,
        recovery_s=recovery,
        bypass_at_end=sum(int(row["by_cache_status"]["BYPASS"]) for row in last),
        by_cache_status={k: int(v["count"]) for k, v in phase["by_cache_status"].items() if v["count"]},
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(rows: Sequence[Figures], plan: Plan | None = None) -> str:
    """The figures as a Markdown table (what the README's "Reliability" section shows)."""
    lines = []
    if plan is not None:
        lines.append(
            f"{plan.users} users at {plan.rate:g} req/s over {plan.keys} Zipf keys; warm-up {plan.warmup_s:g} s, "
            f"fault {plan.fault_s:g} s, recovery {plan.recovery_s:g} s"
        )
        lines.append("")
    lines.append(
        "| fault | requests | in fault | 5xx | cached keys available | uncached keys available "
        "| p99 ms (baseline) | added p99 ms | hit ratio back after | served in fault |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        recovered = "never" if r.recovery_s is None else f"≤ {r.recovery_s} s"
        if r.fault == "none":
            recovered = "-"
        served = " ".join(f"{k} {v}" for k, v in sorted(r.by_cache_status.items()))
        lines.append(
            f"| {r.description} | {r.requests} | {r.fault_requests} | {r.errors_5xx} | {percent(r.cached_availability)} "
            f"| {percent(r.uncached_availability)} | {_ms(r.p99_ms)} ({_ms(r.baseline_p99_ms)}) "
            f"| {'-' if r.added_p99_ms is None else f'{r.added_p99_ms:+.0f}'} | {recovered} | {served} |"
        )
    return "\n".join(lines)
