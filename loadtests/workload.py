"""Workload generators shared by the scenarios: Zipf-distributed keys, phase plans, key-order variations.

Pure Python (no Locust import), so it is unit-tested directly.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
import uuid
from dataclasses import dataclass


class Zipf:
    """Keys 1..n drawn with P(k) proportional to 1 / k**s (s = 0 is uniform; web caches see s around 0.6-1.2)."""

    def __init__(self, n: int, s: float, rng: random.Random | None = None) -> None:
        if n < 1:
            raise ValueError(f"the key space needs at least one key (got {n})")
        if s < 0:
            raise ValueError(f"the Zipf exponent cannot be negative (got {s})")
        self.n = n
        self.s = s
        self.rng = rng or random.Random()
        weights = [math.pow(k, -s) for k in range(1, n + 1)]
        total = sum(weights)
        self.probabilities = [w / total for w in weights]
        self.cdf = list(itertools.accumulate(self.probabilities))
        self.cdf[-1] = 1.0

    def sample(self) -> int:
        return min(bisect.bisect_left(self.cdf, self.rng.random()), self.n - 1) + 1

    def probability(self, key: int) -> float:
        return self.probabilities[key - 1]

    def expected_distinct(self, draws: int) -> float:
        """How many distinct keys `draws` independent samples touch, on average (cold-cache misses)."""
        return float(sum(1.0 - math.exp(draws * math.log1p(-p)) for p in self.probabilities if p < 1.0)) + sum(
            1.0 for p in self.probabilities if p >= 1.0
        )


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    seconds: float


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds of "90", "90s", "1.5m", "2h", "250ms"."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 60s, 2m, 1h)")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def plan_phases(spec: str, total_seconds: float, names: tuple[str, ...]) -> list[PhaseSpec]:
    """Phase durations from "warmup=0.3,outage=0.4,recovery=0.3" (shares of `total_seconds`, scaled to sum 1)
    or "warmup=10s,outage=20s,recovery=10s" (fixed durations). Every name in `names` must be given, in order."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    given: list[tuple[str, str]] = []
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"phase {part!r} needs a value: name=share or name=seconds")
        given.append((name.strip(), value.strip()))
    if tuple(n for n, _ in given) != names:
        raise ValueError(f"phases must be {', '.join(names)} in this order (got {', '.join(n for n, _ in given)})")
    shares: list[float] = []
    durations: list[float] = []
    for name, value in given:
        try:
            shares.append(float(value))
            continue
        except ValueError:
            pass
        try:
            durations.append(parse_duration(value))
        except ValueError:
            raise ValueError(f"phase {name}: {value!r} is neither a share (0.4) nor a duration (20s)") from None
    if shares and durations:
        raise ValueError("give every phase as a share or every phase as a duration, not a mix")
    if durations:
        out = [PhaseSpec(n, d) for (n, _), d in zip(given, durations, strict=True)]
    else:
        if any(s < 0 or not math.isfinite(s) for s in shares) or sum(shares) <= 0:
            raise ValueError(f"phase shares must be finite, >= 0 and not all zero: {spec!r}")
        total = sum(shares)
        out = [PhaseSpec(n, total_seconds * s / total) for (n, _), s in zip(given, shares, strict=True)]
    if any(p.seconds <= 0 for p in out):
        raise ValueError(f"every phase needs a positive duration: {spec!r}")
    return out


def phase_at(plan: list[PhaseSpec], elapsed: float) -> str | None:
    """The phase running `elapsed` seconds into the plan; None once the plan is over."""
    end = 0.0
    for phase in plan:
        end += phase.seconds
        if elapsed < end:
            return phase.name
    return None


def next_boundary(plan: list[PhaseSpec], elapsed: float) -> float | None:
    """When (seconds into the plan) the next phase starts or the plan ends, after `elapsed`; None when over."""
    end = 0.0
    for phase in plan:
        end += phase.seconds
        if elapsed < end:
            return end
    return None


# The query parameters of one key-order resource, in their canonical (ordered) spelling. The first one names the
# resource; the others are constant per resource, so every permutation is the same upstream request.
def key_order_params(key: int) -> list[tuple[str, str]]:
    return [("name", f"item-{key}"), ("fields", "id,name,price"), ("lang", "en"), ("page", "1"), ("view", "full")]


def query_string(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in params)


def shuffled(params: list[tuple[str, str]], rng: random.Random) -> list[tuple[str, str]]:
    out = list(params)
    rng.shuffle(out)
    return out


_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
)


def irrelevant_headers(rng: random.Random) -> dict[str, str]:
    """Headers that vary per request but must not enter the cache key (with the default CACHE_KEY_HEADERS)."""
    return {
        "User-Agent": rng.choice(_AGENTS),
        "X-Request-Id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "X-Amzn-Trace-Id": f"Root=1-{rng.getrandbits(32):08x}-{rng.getrandbits(96):024x}",
        "X-Forwarded-For": f"198.51.100.{rng.randrange(1, 255)}",
    }
