"""The measurement model behind summary.json: the labels of one response, and `Measurements`, latency histograms
(loadtests.histogram) keyed by labels plus a per-second timeline. The figures they give: loadtests.figures.

Pure Python, no Locust import: Locust monkey-patches the process with gevent as soon as it is imported, and this
module is also used by `cachelab load`, the tests and the analysis package.

Every request a scenario makes becomes one `Sample`. Samples are aggregated in a `Measurements` object: a
log-bucketed latency histogram (1 % relative precision) per distinct label tuple, a count per (second, phase,
target, cache status, available) and the set of distinct resources per group. Measurements merge exactly (counts
add up), which is how the per-process recordings of a distributed run are combined on the Locust master.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from loadtests.histogram import Histogram

# Cache statuses the proxy sends in X-Cache, in report order.
CACHE_STATUSES: tuple[str, ...] = ("HIT", "MISS", "STALE", "BYPASS")
# A response without an X-Cache header (e.g. a direct upstream call, or an error page of API Gateway itself).
NONE = "NONE"
# No HTTP response at all: timeout, refused or reset connection.
NO_RESPONSE = "ERROR"
# An X-Cache value this kit does not know (kept bounded so labels cannot explode).
OTHER = "OTHER"

# Request outcomes. A 5xx is recorded as "http_<status>", a 4xx likewise; "ok" is any status below 400.
# 429 Too Many Requests (API Gateway's, or the local gateway's, throttle): the request was refused, not answered.
THROTTLED = 429
OK = "ok"
TIMEOUT = "timeout"
CONNECTION = "connection"
OTHER_ERROR = "other"

TARGET_PROXY = "proxy"
TARGET_UPSTREAM = "upstream"


def cache_status(x_cache: str | None) -> str:
    """The cache status of a response from its X-Cache header ("HIT from ..." style values are accepted)."""
    if x_cache is None:
        return NONE
    words = x_cache.strip().split()
    if not words:
        return NONE
    word = words[0].upper()
    return word if word in CACHE_STATUSES else OTHER


class CacheStatusInfo(NamedTuple):
    """What an RFC 9211 Cache-Status header says about forwarding: `fwd` ("" when not forwarded) and
    whether the request was collapsed into another one (so it cost no upstream request of its own)."""

    fwd: str
    collapsed: bool


def parse_cache_status(header: str | None) -> CacheStatusInfo:
    """Read `fwd=` and `collapsed` from the last (closest to the client) cache's entry of a Cache-Status header."""
    if not header:
        return CacheStatusInfo("", False)
    entry = header.split(",")[-1]
    fwd = ""
    collapsed = False
    for param in entry.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        name = name.strip().lower()
        if name == "fwd":
            fwd = value.strip().strip('"').lower()
        elif name == "collapsed":
            collapsed = value.strip() in ("", "?1")
    return CacheStatusInfo(fwd, collapsed)


def http_outcome(status: int) -> str:
    """The outcome label of an HTTP answer."""
    return OK if status < 400 else f"http_{status}"


def outcome_status(outcome: str) -> int | None:
    """The HTTP status of an "http_<status>" outcome, else None."""
    if outcome.startswith("http_"):
        return int(outcome[5:])
    return None


def is_available(outcome: str) -> bool:
    """Answered without a 5xx, a 429 throttle or a transport error (any other 4xx is an answer)."""
    status = outcome_status(outcome)
    if status is not None:
        return status < 500 and status != THROTTLED
    return outcome == OK


def is_error_status(status: int) -> bool:
    """A status counted in `errors.by_status`: a 5xx, or a 429 throttle."""
    return status >= 500 or status == THROTTLED


def is_failure(outcome: str) -> bool:
    """What Locust counts as a failure: any status >= 400 or a transport error."""
    return outcome != OK


def is_answered(outcome: str) -> bool:
    """An HTTP response arrived (any status)."""
    return outcome == OK or outcome.startswith("http_")


def classify_exception(exc: BaseException | None) -> str:
    """timeout | connection | other, for a request that got no HTTP response.

    Judged by the exception's class hierarchy, by name where the class belongs to gevent or geventhttpclient
    (gevent.Timeout is not a TimeoutError; importing gevent here would monkey-patch nothing but cost a lot).
    """
    for _ in range(5):  # geventhttpclient wraps the cause: RetriesExceeded(url, n, original=timeout(...))
        inner = getattr(exc, "original", None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    if exc is None:
        return OTHER_ERROR
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or names & {"Timeout", "ConnectionTimeout", "ReadTimeout"}:
        return TIMEOUT
    if isinstance(exc, OSError) or names & {
        "HTTPConnectionClosed",
        "HTTPParseError",
        "BadStatusLine",
        "ConnectionError",
    }:
        return CONNECTION  # refused, reset, aborted, broken pipe, closed before a complete response
    return OTHER_ERROR


class SampleKey(NamedTuple):
    phase: str
    target: str  # "proxy" or "upstream" (direct calls of the compare scenario)
    group: str  # scenario-specific cohort ("" when unused): ordered/shuffled, warm/cold, ...
    cache: str  # HIT | MISS | STALE | BYPASS | NONE | ERROR | OTHER
    outcome: str  # ok | http_<status> | timeout | connection | other
    fwd: str  # Cache-Status fwd= value, "" when the proxy did not forward
    collapsed: bool  # Cache-Status says the request was collapsed into another one


class TimelineKey(NamedTuple):
    second: int  # unix second in which the response completed
    phase: str
    target: str
    cache: str
    available: bool


@dataclass(frozen=True)
class Sample:
    end: float  # unix time the response completed (or failed)
    ms: float
    key: SampleKey
    resource: str | None = None  # a stable id of the requested resource, for distinct-key counts


@dataclass
class Measurements:
    hist: dict[SampleKey, Histogram] = field(default_factory=dict)
    timeline: dict[TimelineKey, int] = field(default_factory=dict)
    resources: dict[str, set[str]] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        key = sample.key
        hist = self.hist.get(key)
        if hist is None:
            hist = self.hist[key] = Histogram()
        hist.add(sample.ms)
        tkey = TimelineKey(int(sample.end), key.phase, key.target, key.cache, is_available(key.outcome))
        self.timeline[tkey] = self.timeline.get(tkey, 0) + 1
        if sample.resource is not None:
            self.resources.setdefault(key.group, set()).add(sample.resource)

    def merge(self, other: Measurements) -> None:
        for key, hist in other.hist.items():
            mine = self.hist.get(key)
            if mine is None:
                mine = self.hist[key] = Histogram()
            mine.merge(hist)
        for tkey, count in other.timeline.items():
            self.timeline[tkey] = self.timeline.get(tkey, 0) + count
        for group, ids in other.resources.items():
            self.resources.setdefault(group, set()).update(ids)

    @property
    def requests(self) -> int:
        return sum(h.count for h in self.hist.values())

    def empty(self) -> bool:
        return not self.hist

    def to_wire(self) -> dict[str, Any]:
        """A msgpack/JSON-friendly form (lists only, no tuple keys)."""
        return {
            "hist": [[list(k), h.to_wire()] for k, h in self.hist.items()],
            "timeline": [[list(k), c] for k, c in self.timeline.items()],
            "resources": {g: sorted(ids) for g, ids in self.resources.items()},
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Measurements:
        m = cls()
        for key, hist in data.get("hist", []):
            m.hist[
                SampleKey(str(key[0]), str(key[1]), str(key[2]), str(key[3]), str(key[4]), str(key[5]), bool(key[6]))
            ] = Histogram.from_wire(hist)
        for key, count in data.get("timeline", []):
            tkey = TimelineKey(int(key[0]), str(key[1]), str(key[2]), str(key[3]), bool(key[4]))
            m.timeline[tkey] = m.timeline.get(tkey, 0) + int(count)
        for group, ids in data.get("resources", {}).items():
            m.resources[str(group)] = {str(i) for i in ids}
        return m


@dataclass(frozen=True)
class Burst:
    start: float  # unix time of the first observation that saw the counter grow
    end: float
    requests: int


def bursts(trace: Iterable[tuple[float, int]], gap_s: float) -> list[Burst]:
    """Group the growth of a monotonic counter (polled as (time, value) pairs) into bursts.

    Growth observed within `gap_s` of the previous growth belongs to the same burst. Used by the stampede
    scenario: each burst of upstream requests for the hot key is one expiry of its cache entry.
    """
    out: list[Burst] = []
    previous: tuple[float, int] | None = None
    for t, value in trace:
        if previous is not None and value > previous[1]:
            delta = value - previous[1]
            if out and t - out[-1].end <= gap_s:
                last = out[-1]
                out[-1] = Burst(last.start, t, last.requests + delta)
            else:
                out.append(Burst(t, t, delta))
        # A drop means the counter was reset (stub /__admin/reset): growth is measured from the new value.
        previous = (t, value)
    return out
