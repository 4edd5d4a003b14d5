"""The stub's mutable state: the fault settings, the seeded random source, item versions and the request stats.

One `StubState` per app (`app[STATE]`); `reset` brings it back to the start state (POST /__admin/reset).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from aiohttp import web

from stub_api.config import StubConfig
from stub_api.faults import FaultState
from stub_api.resources import ItemStore

MAX_DISTINCT_PATHS = 10_000
OTHER_PATHS = "(other)"


@dataclass
class Stats:
    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    since: float = field(default_factory=time.time)

    def begin(self, path: str) -> None:
        self.requests += 1
        key = path if path in self.by_path or len(self.by_path) < MAX_DISTINCT_PATHS else OTHER_PATHS
        self.by_path[key] = self.by_path.get(key, 0) + 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self, outcome: str) -> None:
        self.by_status[outcome] = self.by_status.get(outcome, 0) + 1
        self.in_flight -= 1

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": dict(self.by_status),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "since": round(self.since, 3),
        }


class StubState:
    """Everything mutable: faults, the seeded random source, item versions, stats."""

    def __init__(self, config: StubConfig) -> None:
        self.config = config
        self.items = ItemStore(config.items)
        self.faults = FaultState()
        self.rng = random.Random()
        self.stats = Stats()
        self.stopping = asyncio.Event()  # set on SIGTERM: held (timeout-mode) requests let go at once
        self._start_patch = dict(config.start_patch)
        self._start_patch.setdefault("seed", random.SystemRandom().randrange(1, 2**31))
        self.reset()

    def reset(self) -> None:
        """As if freshly started: start-state faults (outage windows re-anchored to now), version-1 items,
        zeroed stats, and the random source re-seeded. Requests still in flight stay in `in_flight` until
        they end, but their outcome is not counted in the new stats."""
        in_flight = self.stats.in_flight
        self.faults = FaultState().apply(self._start_patch, now_mono=time.monotonic(), now_wall=time.time())
        self.rng.seed(self.faults.seed)
        self.items.reset()
        self.stats = Stats(in_flight=in_flight)

    def apply_faults(self, patch: object) -> None:
        new = self.faults.apply(patch, now_mono=time.monotonic(), now_wall=time.time())
        if isinstance(patch, dict) and "seed" in patch:
            self.rng.seed(new.seed)
        self.faults = new


STATE = web.AppKey("stub_state", StubState)
