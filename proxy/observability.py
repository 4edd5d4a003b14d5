"""One structured JSON line per request, which is also a CloudWatch Embedded Metric Format record.

EMF (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
turns the numeric fields named under `_aws.CloudWatchMetrics` into metrics; the other fields stay searchable in
Logs Insights. No bodies, no header values, no secrets: only the key's hash, statuses and timings.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from proxy.service import CacheStatus, Outcome

NAMESPACE = "cachelab"
SERVICE = "proxy"
_COUNTERS = {CacheStatus.HIT: "Hit", CacheStatus.MISS: "Miss", CacheStatus.STALE: "Stale", CacheStatus.BYPASS: "Bypass"}
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class RequestLog:
    def __init__(self, stream: TextIO | None = None, level: str = "INFO") -> None:
        self._stream = stream
        self._level = _LEVELS.get(level, 20)

    def record(self, *, request_id: str, method: str, outcome: Outcome, duration_ms: float) -> dict[str, object]:
        metrics: dict[str, float] = {name: float(outcome.cache == status) for status, name in _COUNTERS.items()}
        definitions = [{"Name": name, "Unit": "Count"} for name in _COUNTERS.values()]
        if outcome.upstream_ms is not None:
            metrics["UpstreamLatency"] = round(outcome.upstream_ms, 2)
            definitions.append({"Name": "UpstreamLatency", "Unit": "Milliseconds"})
        upstream_failed = outcome.upstream_error is not None or (outcome.upstream_status or 0) >= 500
        metrics["UpstreamError"] = float(upstream_failed)
        definitions.append({"Name": "UpstreamError", "Unit": "Count"})
        metrics["Duration"] = round(duration_ms, 2)
        definitions.append({"Name": "Duration", "Unit": "Milliseconds"})
        line: dict[str, object] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Service"]], "Metrics": definitions}],
            },
            "Service": SERVICE,
            "level": "INFO",
            "message": "request",
            "request_id": request_id,
            "method": method,
            "key": outcome.key,
            "cache": outcome.cache,
            "status": outcome.response.status,
            "upstream_status": outcome.upstream_status,
            "upstream_error": outcome.upstream_error,
            "age": outcome.age,
            "detail": outcome.detail,
            **metrics,
        }
        if self._level <= _LEVELS["INFO"]:
            self._write(line)
        return line

    def event(self, level: str, message: str, **fields: object) -> None:
        if _LEVELS.get(level, 20) >= self._level:
            self._write({"level": level, "message": message, "Service": SERVICE, **fields})

    def _write(self, line: dict[str, object]) -> None:
        stream = self._stream or sys.stderr
        stream.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        stream.flush()
