"""A scripted `proxy.upstream.Upstream` for unit tests: answers queued in advance, every request recorded.

An answer can take time (`takes`, slept on the test's virtual clock: longer than the timeout the proxy gave is a
timeout) and can fail like the real adapter does (UpstreamError "timeout", "connect", "protocol"). An unexpected
request (nothing queued) fails the test with what was asked.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from proxy.http import Headers, Response
from proxy.ports import UpstreamError


@dataclass(frozen=True)
class Sent:
    method: str
    target: str
    headers: Headers
    timeout: float
    at: float  # the virtual monotonic time it was sent


@dataclass(frozen=True)
class Step:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    error: str | None = None  # an UpstreamError kind instead of a response
    takes: float = 0.0


class ScriptedUpstream:
    def __init__(self, sleep: Callable[[float], None], monotonic: Callable[[], float]) -> None:
        self._sleep = sleep
        self._monotonic = monotonic
        self._steps: deque[Step] = deque()
        self._lock = threading.Lock()
        self.sent: list[Sent] = []

    def reply(
        self, status: int = 200, headers: list[tuple[str, str]] | None = None, body: bytes = b"{}", *, takes: float = 0
    ) -> ScriptedUpstream:
        """Queue one answer."""
        with self._lock:
            self._steps.append(Step(status, tuple(headers or []), body, takes=takes))
        return self

    def fail(self, kind: str = "connect", *, takes: float = 0) -> ScriptedUpstream:
        """Queue one failure of `kind` ("connect", "timeout", "protocol")."""
        with self._lock:
            self._steps.append(Step(error=kind, takes=takes))
        return self

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.sent)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._steps)

    def send(self, method: str, target: str, headers: Headers, body: bytes, timeout: float) -> Response:
        with self._lock:
            self.sent.append(Sent(method, target, headers, timeout, self._monotonic()))
            if not self._steps:
                raise AssertionError(f"unexpected upstream request {method} {target} (nothing scripted)")
            step = self._steps.popleft()
        if step.takes > timeout:
            self._sleep(timeout)
            raise UpstreamError("timeout", f"upstream timed out after {timeout:g} s")
        if step.takes:
            self._sleep(step.takes)
        if step.error is not None:
            raise UpstreamError(step.error, f"scripted {step.error} failure")
        return Response(step.status, Headers(step.headers), step.body)
