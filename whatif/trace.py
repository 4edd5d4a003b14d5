"""Records -> simulator events: the proxy's cache key, the method and host filters, a short reorder window.

Pure (no I/O). Everything left out is counted in `Problems`, with the first few lines quoted.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from proxy.http import CACHEABLE_METHODS, Headers
from proxy.keys import InvalidTarget, canonical_target, key_for, split_target
from whatif.parsers import Parsed, Record, Rejected
from whatif.simulator import Event, is_failure, origin_status

REORDER_SECONDS = 5.0  # lines up to this much out of order are put back in order (logs written at completion)
QUOTED = 3  # examples kept per kind of problem
_KEY_MEMO = 50_000  # canonical keys remembered per raw target (cleared when full: memory stays bounded)
_KEY_MEMO_TARGET = 512  # longer targets are keyed every time rather than remembered

# Kinds of problems, in the order the report lists them.
KINDS: tuple[str, ...] = (
    "unparsable",
    "mixed formats",
    "not GET/HEAD",
    "another host",
    "invalid target",
    "out of order",
    "no key",
)


@dataclass
class Problems:
    """Counts per kind, and the first QUOTED lines of each."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)  # the methods left out, counted
    hosts: dict[str, int] = field(default_factory=dict)  # other hosts, counted (at most 20 kept)

    def add(self, kind: str, line: int, text: str, reason: str = "") -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < QUOTED:
            examples.append((line, text[:200], reason))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        out: list[str] = []
        for kind in sorted(self.counts, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
            extra = ""
            if kind == "not GET/HEAD" and self.methods:
                extra = " (" + ", ".join(f"{m} {n}" for m, n in sorted(self.methods.items())) + ")"
            if kind == "another host" and self.hosts:
                extra = " (" + ", ".join(f"{h} {n}" for h, n in sorted(self.hosts.items())) + ")"
            out.append(f"{self.counts[kind]} {kind}{extra}")
            for line, text, reason in self.examples.get(kind, []):
                out.append(f"    line {line}: {text!r}" + (f": {reason}" if reason else ""))
        return out

    def to_json(self) -> dict[str, object]:
        return {
            kind: {
                "count": count,
                "examples": [{"line": n, "text": t, "reason": r} for n, t, r in self.examples.get(kind, [])],
            }
            for kind, count in self.counts.items()
        }


@dataclass
class TraceStats:
    """What the usable part of the log looks like."""

    lines: int = 0  # lines (HAR: entries) read
    requests: int = 0  # GET/HEAD requests simulated
    first: float = math.inf
    last: float = -math.inf
    recorded_failures: int = 0  # requests whose recorded status is a 5xx
    latencies: int = 0  # requests with a recorded latency
    latency_sum: float = 0.0
    sizes: int = 0  # requests with a recorded response size
    size_sum: float = 0.0
    reordered: int = 0  # lines put back in order within REORDER_SECONDS

    @property
    def duration(self) -> float:
        return max(0.0, self.last - self.first) if self.requests else 0.0

    @property
    def mean_latency(self) -> float | None:
        return self.latency_sum / self.latencies if self.latencies else None

    @property
    def mean_size(self) -> float | None:
        return self.size_sum / self.sizes if self.sizes else None


class Trace:
    """Turns parsed lines into time-ordered `Event`s (see `events`); collects `problems` and `stats`."""

    def __init__(
        self,
        *,
        key_headers: tuple[str, ...] = (),
        host: str | None = None,
        guess_host: bool = False,
        reorder_seconds: float = REORDER_SECONDS,
    ) -> None:
        self.key_headers = tuple(sorted({h.strip().lower() for h in key_headers if h.strip()}))
        self.host = host.lower() if host else None
        self.guess_host = guess_host  # HAR: every URL is absolute, take the first one's host
        self.host_guessed = False  # the host was taken from the first absolute URL
        self.reorder_seconds = reorder_seconds
        self.problems = Problems()
        self.stats = TraceStats()
        self._memo: dict[str, str] = {}
        self._pending: deque[Event] = deque()
        self._emitted = -math.inf
        self._newest = -math.inf

    # -- keys ----------------------------------------------------------------------------------------------
    def target_of(self, record: Record) -> str | None:
        """The request target (path and query) the proxy would see, or None when the record is left out."""
        target = record.target
        if target.startswith(("http://", "https://", "//")):
            parts = urlsplit(target)
            host = (parts.hostname or "").lower()
            if self.host is None and self.guess_host:
                self.host = host
                self.host_guessed = True
            if host != self.host:
                reason = f"not {self.host}" if self.host else "an absolute URL (give --log-host to accept its host)"
                self.problems.add("another host", record.line, target, reason)
                if len(self.problems.hosts) < 20 or host in self.problems.hosts:
                    self.problems.hosts[host] = self.problems.hosts.get(host, 0) + 1
                return None
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not target.startswith("/"):
            self.problems.add("invalid target", record.line, target, "not a path (/...) or an http(s) URL")
            return None
        return target.partition("#")[0]

    def key_of(self, record: Record, target: str) -> str | None:
        """The proxy's cache key (its entry's Redis key) for the record."""
        if not self.key_headers:
            found = self._memo.get(target)
            if found is not None:
                return found
        try:
            path, query = split_target(target)
            key = key_for(path, query, Headers(record.headers), self.key_headers, canonical_target(path, query))
        except InvalidTarget as exc:
            self.problems.add("invalid target", record.line, target, str(exc))
            return None
        if not self.key_headers and len(target) <= _KEY_MEMO_TARGET:
            if len(self._memo) >= _KEY_MEMO:
                self._memo.clear()
            self._memo[target] = key.entry
        return key.entry

    def event_of(self, record: Record) -> Event | None:
        if record.method not in CACHEABLE_METHODS:  # HEAD is answered from the GET entry
            self.problems.add("not GET/HEAD", record.line, f"{record.method} {record.target}")
            self.problems.methods[record.method] = self.problems.methods.get(record.method, 0) + 1
            return None
        if record.key is not None:
            key: str | None = "h:" + record.key  # the proxy's own key hash (cachelab lines)
        elif not record.target:
            self.problems.add("no key", record.line, "", "neither a URL nor a key")
            return None
        else:
            target = self.target_of(record)
            key = None if target is None else self.key_of(record, target)
        if key is None:
            return None
        return Event(record.time, key, origin_status(record.status), record.latency)

    # -- ordering ------------------------------------------------------------------------------------------
    def events(self, parsed: Iterable[Parsed]) -> Iterator[Event]:
        """Usable events in time order; lines more than reorder_seconds out of order are left out."""
        stats = self.stats
        pending = self._pending
        window = self.reorder_seconds
        for item in parsed:
            stats.lines += 1
            if type(item) is not Record:
                if isinstance(item, Rejected):
                    self.problems.add(item.kind, item.line, item.text, item.reason)
                continue
            when = item.time
            if when < self._newest - window or when < self._emitted or not math.isfinite(when):
                self.problems.add(
                    "out of order", item.line, f"{item.method} {item.target or item.key}",
                    f"{self._newest - when:.3f} s before a later line",
                )  # fmt: skip
                continue
            event = self.event_of(item)
            if event is None:
                continue
            self._count(item)
            if when < self._newest:  # put back in order (rare: a linear scan from the end is fine)
                stats.reordered += 1
                position = len(pending)
                while position > 0 and pending[position - 1].time > when:
                    position -= 1
                pending.insert(position, event)
                continue
            self._newest = when
            pending.append(event)
            horizon = when - window
            while pending[0].time <= horizon:
                ready = pending.popleft()
                self._emitted = ready.time
                yield ready
        while pending:
            ready = pending.popleft()
            self._emitted = ready.time
            yield ready

    def _count(self, record: Record) -> None:
        stats = self.stats
        stats.requests += 1
        stats.first = min(stats.first, record.time)
        stats.last = max(stats.last, record.time)
        if record.status is not None and is_failure(record.status):
            stats.recorded_failures += 1
        if record.latency is not None:
            stats.latencies += 1
            stats.latency_sum += record.latency
        if record.size is not None:
            stats.sizes += 1
            stats.size_sum += record.size
