"""What answering one request produced: the response, and how it was made (for the log line and the metrics)."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from proxy.http import Response


class CacheStatus(StrEnum):
    """The X-Cache value of an answer."""

    HIT = "HIT"  # answered from a stored entry (also one just renewed by a 304, or fetched by another invocation)
    MISS = "MISS"  # looked up, not usable, fetched
    STALE = "STALE"  # a stale copy was served (stale-while-revalidate, stale-if-error, a client's max-stale)
    BYPASS = "BYPASS"  # the cache was not used (other methods, Redis down, a refused request)


class Outcome(NamedTuple):
    response: Response
    cache: CacheStatus
    key: str | None = None  # the cache key's short, non-reversible id
    upstream_status: int | None = None
    upstream_ms: float | None = None
    upstream_error: str | None = None
    age: int | None = None
    detail: str = ""
