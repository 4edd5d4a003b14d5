"""cachelab.chaos without load: the fault relay's protocol, the flapping schedule, and the figures' arithmetic."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from cachelab import chaos
from stub_api.client import StubAdmin
from tests.reliability.support import EchoOrigin

pytestmark = pytest.mark.unit


class Counting(chaos.Fault):
    name = "counting"
    description = "counts its starts and stops"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")


@pytest.fixture
def stub() -> Iterator[EchoOrigin]:
    server = EchoOrigin()
    yield server
    server.close()


def test_the_relay_starts_and_lifts_its_fault_once_and_passes_the_rest_to_the_stub(stub: EchoOrigin) -> None:
    fault = Counting()
    with chaos.relaying(stub.url, fault) as relay:
        admin = StubAdmin(relay.url)  # what the outage scenario calls it with
        assert admin.faults({"mode": "timeout"}) == {"mode": "timeout", "fault": "counting"}
        admin.faults({"mode": "error"})  # already on: no second start
        admin.faults({"mode": "up"})
        admin.faults({"mode": "up"})  # the scenario lifts it again at the end
        with urllib.request.urlopen(relay.url + "/__admin/stats?x=1", timeout=5) as resp:
            assert resp.read() == b"/__admin/stats?x=1"  # the echo stub: the call went through unchanged
        assert (len(relay.log.started), len(relay.log.stopped)) == (1, 1)
    assert fault.calls == ["start", "stop", "stop"]  # closing the relay lifts the fault whatever happened
    assert [s.target for s in stub.seen] == ["/__admin/stats?x=1"]


def test_flapping_covers_the_fault_phase_with_outage_windows() -> None:
    flapping = chaos.Flapping("http://127.0.0.1:9", span_s=3.2, period_s=1.0, down_s=0.5)
    assert flapping.current_patch() == {
        "outage": [{"mode": "error", "start_s": float(i), "duration_s": 0.5} for i in range(4)]
    }


def row(phase: str, hit: int, miss: int, bypass: int = 0) -> dict[str, Any]:
    counts = {"HIT": hit, "MISS": miss, "STALE": 0, "BYPASS": bypass}
    answered = sum(counts.values())
    return {"phase": phase, "requests": answered, "by_cache_status": counts, "hit_ratio": hit / answered}


def test_recovery_is_counted_in_whole_seconds_against_the_seconds_before_the_fault() -> None:
    timeline = [row("warmup", 50, 50), row("warmup", 90, 10), row("warmup", 80, 20), row("warmup", 10, 0, 90),
                row("outage", 0, 0, 100), row("recovery", 10, 20, 70), row("recovery", 50, 50),
                row("recovery", 76, 24), row("recovery", 90, 10)]  # fmt: skip
    before, seconds = chaos.recovery_seconds(timeline)
    assert before == 0.85  # the two whole warm-up seconds before the one the fault cut into
    assert seconds == 3  # 0.76 >= 0.85 - 0.1 in the third recovery second
    assert chaos.recovery_seconds(timeline[:-2]) == (0.85, None)


def test_the_table_has_one_row_per_fault() -> None:
    figures = chaos.Figures(
        fault="redis-kill", description="Redis killed", requests=10, fault_requests=4, errors_5xx=0, fault_5xx=0,
        transport_errors=0, cached_availability=1.0, uncached_availability=0.5, cached_failures=0, p99_ms=12.3,
        baseline_p99_ms=10.0, added_p99_ms=2.3, hit_ratio_before=0.9, recovery_s=2, bypass_at_end=0,
        by_cache_status={"BYPASS": 4},
    )  # fmt: skip
    text = chaos.table([figures], chaos.PROFILES["quick"])
    assert "| Redis killed | 10 | 4 | 0 | 100.0% | 50.0% | 12 (10) | +2 | ≤ 2 s | BYPASS 4 |" in text
    assert text.startswith("10 users at 150 req/s")


def test_an_unknown_fault_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="choose one of none, upstream-error"):
        chaos.make_fault("meteor", None, chaos.PROFILES["quick"])  # type: ignore[arg-type]
