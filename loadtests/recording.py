"""What each Locust process (worker or local) keeps while its users run, and how its measurements reach the master.

Every request fires Locust's `request` event; `_on_request` turns it into a `Sample` labelled with the phase (taken
when the request *started*), the target (proxy or direct upstream), the scenario's group, the cache status from
`X-Cache`, the outcome (ok, http_<status>, timeout, connection, other) and what `Cache-Status` says about forwarding.
Samples go into this process's `Measurements`. Workers ship them to the master inside Locust's own periodic worker
report (`report_to_master` / `worker_report`), so a sample reaches the master in the same message as Locust's own
statistics for that request, and at the end in an explicit drain message (MSG_DRAIN / MSG_DRAINED).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust import events

from loadtests.hooks import on
from loadtests.measurements import (
    NO_RESPONSE,
    TARGET_PROXY,
    Measurements,
    Sample,
    SampleKey,
    cache_status,
    classify_exception,
    http_outcome,
    parse_cache_status,
)
from loadtests.workload import Zipf

MSG_PHASE = "cachelab_phase"
MSG_DRAIN = "cachelab_drain"
MSG_DRAINED = "cachelab_drained"
REPORT_KEY = "cachelab"


@dataclass
class ProcessState:
    """What each Locust process (worker or local) keeps while its users run."""

    recorder: Measurements = field(default_factory=Measurements)
    phase: str = "run"
    draining: bool = False
    in_flight: int = 0
    ok_resources: set[str] = field(default_factory=set)  # resources answered 2xx-3xx earlier in this process
    zipf: dict[tuple[int, float], Zipf] = field(default_factory=dict)

    def reset(self, first_phase: str) -> None:
        self.recorder = Measurements()
        self.phase = first_phase
        self.draining = False
        self.in_flight = 0
        self.ok_resources = set()


PROC = ProcessState()


def _on_request(
    *,
    response_time: float,
    response: Any = None,
    context: Mapping[str, Any] | None = None,
    exception: BaseException | None = None,
    **_kwargs: Any,
) -> None:
    ctx = context or {}
    status = int(getattr(response, "status_code", 0) or 0) if response is not None else 0
    if status > 0:
        headers = getattr(response, "headers", None) or {}
        cache = cache_status(headers.get("X-Cache"))
        outcome = http_outcome(status)
        info = parse_cache_status(headers.get("Cache-Status"))
    else:
        cache = NO_RESPONSE
        outcome = classify_exception(exception)
        info = parse_cache_status(None)
    key = SampleKey(
        phase=str(ctx.get("phase", PROC.phase)),
        target=str(ctx.get("target", TARGET_PROXY)),
        group=str(ctx.get("group", "")),
        cache=cache,
        outcome=outcome,
        fwd=info.fwd,
        collapsed=info.collapsed,
    )
    resource = ctx.get("resource")
    PROC.recorder.add(
        Sample(time.time(), float(response_time or 0.0), key, None if resource is None else str(resource))
    )


on(events.request)(_on_request)


@on(events.reset_stats)
def _on_reset_stats() -> None:
    PROC.recorder = Measurements()


@on(events.report_to_master)
def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    if not PROC.recorder.empty():
        data[REPORT_KEY] = PROC.recorder.to_wire()
        PROC.recorder = Measurements()


@on(events.worker_report)
def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    payload = data.get(REPORT_KEY)
    if payload:
        PROC.recorder.merge(Measurements.from_wire(payload))


def wait_in_flight(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while PROC.in_flight > 0 and time.monotonic() < deadline:
        gevent.sleep(0.02)
