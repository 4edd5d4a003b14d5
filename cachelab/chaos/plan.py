"""The plans of the fault suite (quick for `make test`, full for `make chaos`), the stack every fault runs against,
and the faults by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cachelab.chaos.faults import Fault, Flapping, NoFault, RedisKill, RedisPause, upstream_mode, upstream_slow
from cachelab.stack import Stack, StackConfig


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
    return StackConfig(
        stub_args=STUB_ARGS,
        gateway_env=dict(PROXY_ENV),
        concurrency=CONCURRENCY,
        warm=CONCURRENCY,
        workdir=workdir,
    ).with_free_ports()


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
