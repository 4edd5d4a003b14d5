"""A latency histogram: log buckets within 1 % of the true value, exact merges (the per-process recordings of a
distributed run add up on the Locust master), nearest-rank percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any


class Histogram:
    """A log-bucketed latency histogram: every value is kept within 1 % of its true value; merges are exact."""

    GROWTH = 1.01
    MIN_MS = 0.001
    _LOG_GROWTH = math.log(GROWTH)

    __slots__ = ("buckets", "count", "max_ms", "min_ms", "total_ms")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total_ms = 0.0
        self.min_ms = math.inf
        self.max_ms = 0.0

    @classmethod
    def bucket_of(cls, ms: float) -> int:
        if ms <= cls.MIN_MS:
            return 0
        return int(math.log(ms / cls.MIN_MS) / cls._LOG_GROWTH)

    @classmethod
    def value_of(cls, bucket: int) -> float:
        """The bucket's representative value: the geometric middle of its bounds."""
        if bucket == 0:
            return cls.MIN_MS
        return float(cls.MIN_MS * math.exp(cls._LOG_GROWTH * (bucket + 0.5)))

    def add(self, ms: float, count: int = 1) -> None:
        ms = max(0.0, float(ms))
        bucket = self.bucket_of(ms)
        self.buckets[bucket] = self.buckets.get(bucket, 0) + count
        self.count += count
        self.total_ms += ms * count
        self.min_ms = min(self.min_ms, ms)
        self.max_ms = max(self.max_ms, ms)

    def merge(self, other: Histogram) -> None:
        for bucket, count in other.buckets.items():
            self.buckets[bucket] = self.buckets.get(bucket, 0) + count
        self.count += other.count
        self.total_ms += other.total_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_ms = max(self.max_ms, other.max_ms)

    def cumulative(self) -> Iterator[tuple[float, int]]:
        """(value, values so far) per bucket in ascending order, each value clamped to the exact min and max."""
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            yield min(max(self.value_of(bucket), self.min_ms), self.max_ms), seen

    def percentile(self, q: float) -> float | None:
        """The nearest-rank q-quantile (0 < q <= 1), clamped to the exact min and max; None when empty."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        return next((value for value, seen in self.cumulative() if seen >= rank), self.max_ms)

    @property
    def mean(self) -> float | None:
        return self.total_ms / self.count if self.count else None

    def to_wire(self) -> list[Any]:
        return [
            self.count,
            self.total_ms,
            self.min_ms if self.count else 0.0,
            self.max_ms,
            [[b, c] for b, c in self.buckets.items()],
        ]

    @classmethod
    def from_wire(cls, data: list[Any]) -> Histogram:
        hist = cls()
        hist.count = int(data[0])
        hist.total_ms = float(data[1])
        hist.min_ms = float(data[2]) if hist.count else math.inf
        hist.max_ms = float(data[3])
        hist.buckets = {int(b): int(c) for b, c in data[4]}
        return hist


def quantile_exact(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank quantile of raw values (the reference the histogram is tested against)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]
