"""One structured JSON line per request, which is also a CloudWatch Embedded Metric Format record.

EMF (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
turns the numeric fields named under `_aws.CloudWatchMetrics` into metrics; the other fields stay searchable in
Logs Insights. No bodies, no header values, no secrets: only the key's hash, statuses and timings.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import TextIO

from proxy.outcome import CacheStatus, Outcome

NAMESPACE = "cachelab"
SERVICE = "proxy"
_COUNTERS = {CacheStatus.HIT: "Hit", CacheStatus.MISS: "Miss", CacheStatus.STALE: "Stale", CacheStatus.BYPASS: "Bypass"}
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


_BASE_METRICS = [{"Name": name, "Unit": "Count"} for name in _COUNTERS.values()]
_WITH_LATENCY = [*_BASE_METRICS, {"Name": "UpstreamLatency", "Unit": "Milliseconds"}]
_TAIL = [{"Name": "UpstreamError", "Unit": "Count"}, {"Name": "Duration", "Unit": "Milliseconds"}]
# The counters of each cache status, and the metric directives, are the same on every line: encoded once.
_COUNTS = {
    status: ",".join(f'"{name}":{int(status == counted)}' for counted, name in _COUNTERS.items())
    for status in CacheStatus
}
_DIRECTIVES = {
    latency: json.dumps(
        [
            {
                "Namespace": NAMESPACE,
                "Dimensions": [["Service"]],
                "Metrics": [*(_WITH_LATENCY if latency else _BASE_METRICS), *_TAIL],
            }
        ],
        separators=(",", ":"),
    )
    for latency in (False, True)
}


class RequestLog:
    def __init__(self, stream: TextIO | None = None, level: str = "INFO") -> None:
        self._stream = stream
        self._level = _LEVELS.get(level, 20)
        self._info = self._level <= _LEVELS["INFO"]

    def record(self, *, request_id: str, method: str, outcome: Outcome, duration_ms: float) -> str:
        """Write the request's line (when INFO is on) and return it."""
        cache = outcome.cache
        latency = outcome.upstream_ms is not None
        failed = outcome.upstream_error is not None or (outcome.upstream_status or 0) >= 500
        # Hand-assembled for speed (this runs on every hit); every free-form value goes through json.dumps.
        line = (
            f'{{"_aws":{{"Timestamp":{int(time.time() * 1000)},"CloudWatchMetrics":{_DIRECTIVES[latency]}}},'
            f'"Service":"{SERVICE}","level":"INFO","message":"request","request_id":{_j(request_id)},'
            f'"method":{_j(method)},"key":{_j(outcome.key)},"cache":"{cache}","status":{outcome.response.status},'
            f'"upstream_status":{_j(outcome.upstream_status)},"upstream_error":{_j(outcome.upstream_error)},'
            f'"age":{"null" if outcome.age is None else outcome.age},"detail":{_j(outcome.detail)},{_COUNTS[cache]},'
            f'"UpstreamError":{int(failed)},"Duration":{round(duration_ms, 2)}'
            + (f',"UpstreamLatency":{round(outcome.upstream_ms or 0.0, 2)}}}' if latency else "}")
        )
        if self._info:
            self._emit(line + "\n")
        return line

    def event(self, level: str, message: str, **fields: object) -> None:
        if _LEVELS.get(level, 20) >= self._level:
            line = {"level": level, "message": message, "Service": SERVICE, **fields}
            self._emit(json.dumps(line, separators=(",", ":"), default=str) + "\n")

    def _emit(self, text: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(text)
        stream.flush()


_PLAIN = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII without '"' and '\': a JSON string as it is


def _j(value: object) -> str:
    """A JSON value: null, an integer, or a string (quoted as it is when it needs no escaping)."""
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return f'"{text}"' if text.isalnum() or _PLAIN.fullmatch(text) else json.dumps(text)
