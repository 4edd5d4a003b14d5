"""Simulated time for CachingProxy's clock/monotonic/sleep seams: waits take no real time, and threads too.

`VirtualTime.sleep` never blocks for real: the simulated clock jumps to the earliest wake-up as soon as every
thread it knows of is asleep (or done). So one thread runs a request with polls and timeouts in microseconds, and
several threads started with `start` interleave like concurrent Lambda environments: each runs for real until it
sleeps, and time moves only when all of them wait. Threads woken at the same instant really run concurrently, so
the tests that use them check properties that must hold whatever the order (one upstream request, every answer
200), not one lucky schedule.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WALL_START = 1_700_000_000.0  # what time.time() says at virtual monotonic 0
STUCK_SECONDS = 30.0  # a thread blocked this long for real (not in sleep) is a bug in the test: fail loudly


@dataclass(order=True)
class _Sleeper:
    wake: float
    seq: int
    released: bool = field(default=False, compare=False)


@dataclass
class Task:
    """A function running in its own thread on virtual time; `join` collects its result or its exception."""

    thread: threading.Thread
    result: Any = None
    error: BaseException | None = None


class VirtualTime:
    def __init__(self, wall_start: float = WALL_START) -> None:
        self.wall_start = wall_start
        self._now = 0.0
        self._cond = threading.Condition()
        self._awake = 1  # the thread that made us (the test) is running
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self.sleeps: list[float] = []  # every sleep requested, in order

    # -- the seams ----------------------------------------------------------------------------------
    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def time(self) -> float:
        return self.wall_start + self.monotonic()

    def sleep(self, seconds: float) -> None:
        with self._cond:
            self.sleeps.append(seconds)
            sleeper = _Sleeper(self._now + max(0.0, seconds), next(self._seq))
            heapq.heappush(self._sleepers, sleeper)
            self._awake -= 1
            self._advance()
            self._wait_for(lambda: sleeper.released)

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass (the test's thread sleeps; started tasks run meanwhile)."""
        self.sleep(seconds)

    # -- concurrency ----------------------------------------------------------------------------------
    def start(self, fn: Callable[..., Any], *args: Any) -> Task:
        """Run fn(*args) in a new thread on this virtual time."""

        def body() -> None:
            try:
                task.result = fn(*args)
            except BaseException as exc:  # handed to join()
                task.error = exc
            finally:
                with self._cond:
                    self._awake -= 1
                    self._advance()

        task = Task(threading.Thread(target=body, daemon=True))
        with self._cond:
            self._awake += 1
        task.thread.start()
        return task

    def join(self, *tasks: Task) -> list[Any]:
        """Wait (in virtual time) until every task is done; their results, or the first task's exception."""
        with self._cond:
            self._awake -= 1
            self._advance()
        try:
            for task in tasks:
                task.thread.join(STUCK_SECONDS)
                if task.thread.is_alive():
                    raise AssertionError(f"a task is still running after {STUCK_SECONDS:g} real seconds")
        finally:
            with self._cond:
                self._awake += 1
        for task in tasks:
            if task.error is not None:
                raise task.error
        return [task.result for task in tasks]

    # -- internals ------------------------------------------------------------------------------------
    def _advance(self) -> None:
        """With every thread asleep, jump to the earliest wake-up and release everyone due then."""
        if self._awake > 0 or not self._sleepers:
            return
        self._now = max(self._now, self._sleepers[0].wake)
        while self._sleepers and self._sleepers[0].wake <= self._now:
            heapq.heappop(self._sleepers).released = True
            self._awake += 1
        self._cond.notify_all()

    def _wait_for(self, predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + STUCK_SECONDS
        while not predicate():
            if not self._cond.wait(timeout=max(0.0, deadline - time.monotonic())) and time.monotonic() >= deadline:
                raise AssertionError(f"virtual time stuck for {STUCK_SECONDS:g} real seconds (a thread never slept)")
