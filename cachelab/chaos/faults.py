"""The faults: something that goes wrong between `start()` and `stop()`.

Redis faults break the stack's redis-server through `Stack` (kill, pause/resume, restart); upstream faults are fault
patches sent to the stub's admin API (stub_api.client), undone with the values from before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from cachelab.stack import Stack, StackError
from stub_api.client import StubAdmin, StubAdminError


class FaultError(RuntimeError):
    """A fault could not be started or lifted; the message says which and why."""


class Fault:
    """Something that goes wrong between `start()` and `stop()`. Both are idempotent; `stop()` always restores.
    Both raise FaultError when they cannot do their part."""

    name = "none"
    description = "no fault (the baseline)"
    redis = False  # a Redis fault: the upstream is healthy, so no request may fail

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


class NoFault(Fault):
    pass


class _RedisFault(Fault):
    redis = True

    def __init__(self, stack: Stack) -> None:
        if stack.fake_redis:
            raise FaultError("the Redis faults need a real redis-server (apt-get install redis-server)")
        self.stack = stack

    def _on_redis(self, action: Callable[[str], None]) -> None:
        try:
            action("redis")
        except StackError as exc:
            raise FaultError(f"{self.name}: {exc}") from None


class RedisKill(_RedisFault):
    """SIGKILL the stack's redis-server; `stop` starts a new one (empty: no persistence) on the same port."""

    name = "redis-kill"
    description = "Redis killed (SIGKILL), restarted empty"

    def start(self) -> None:
        self._on_redis(self.stack.kill)

    def stop(self) -> None:
        self._on_redis(self._restart_when_gone)

    def _restart_when_gone(self, name: str) -> None:
        if not self.stack.alive(name):
            self.stack.restart(name)


class RedisPause(_RedisFault):
    """SIGSTOP the stack's redis-server (it accepts connections but never answers: a slow cache); SIGCONT."""

    name = "redis-pause"
    description = "Redis paused (SIGSTOP), then resumed"

    def start(self) -> None:
        self._on_redis(self.stack.pause)

    def stop(self) -> None:
        self._on_redis(self.stack.resume)


class StubFault(Fault):
    """A fault patch sent to the stub's admin API; `stop` sends the fields' values from before `start`."""

    def __init__(self, stub_url: str, name: str, description: str, patch: Mapping[str, Any]) -> None:
        self.stub = StubAdmin(stub_url)
        self.name = name
        self.description = description
        self.patch = dict(patch)
        self._undo: dict[str, Any] | None = None

    def current_patch(self) -> dict[str, Any]:
        return self.patch

    def start(self) -> None:
        if self._undo is not None:
            return
        try:
            before = self.stub.fault_state()
            patch = self.current_patch()
            undo = {name: before.get(name) for name in patch if name != "outage"}
            if "outage" in patch:
                undo["outage"] = []
            self.stub.faults(patch)
        except StubAdminError as exc:
            raise FaultError(f"{self.name}: {exc}") from None
        self._undo = undo

    def stop(self) -> None:
        if self._undo is None:
            return
        undo, self._undo = self._undo, None
        try:
            self.stub.faults(undo)
        except StubAdminError as exc:
            raise FaultError(f"{self.name}: {exc}") from None


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
