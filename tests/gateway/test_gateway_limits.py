"""Function timeout (504, environment recycled), the concurrency cap (429), cold starts, clean shutdown."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from tests.gateway.support import BROKEN_TEMPLATE, Gateway, Reply, running_gateway, wait_gone


def _concurrently(gw: Gateway, paths: list[str], timeout: float = 30.0) -> list[Reply]:
    """Fire the requests at once (a barrier lines the threads up) and collect every reply."""
    barrier = threading.Barrier(len(paths))
    replies: list[Reply | BaseException | None] = [None] * len(paths)

    def fire(index: int, path: str) -> None:
        try:
            barrier.wait(timeout=timeout)
            replies[index] = gw.get(path, timeout=timeout)
        except BaseException as exc:
            replies[index] = exc

    threads = [threading.Thread(target=fire, args=(i, p)) for i, p in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout + 5)
    assert all(isinstance(r, Reply) for r in replies), replies
    return [r for r in replies if isinstance(r, Reply)]


def test_timeout_is_504_and_the_environment_is_recycled(gw: Gateway) -> None:
    warm = gw.echo()
    cold_starts = len(gw.events("cold_start"))
    started = time.monotonic()
    reply = gw.get("/sleep?s=30")  # the fixture's Timeout is 2 s
    elapsed = time.monotonic() - started
    assert reply.status == 504
    assert reply.json() == {"message": "Endpoint request timed out"}
    assert 1.5 <= elapsed < 15
    timeout = [e for e in gw.wait_events("timeout", 1) if e["request_id"] == reply.headers["x-amzn-RequestId"]]
    assert timeout
    assert timeout[0]["message"] == "Task timed out after 2.00 seconds"
    recycled = gw.wait_events("env_recycled", 1)
    assert any(e["reason"] == "timeout" and e["pid"] == warm["pid"] for e in recycled)
    assert wait_gone([warm["pid"]]) == []  # killed, not left sleeping
    after = gw.echo()  # a fresh environment: a cold start
    assert after["pid"] != warm["pid"]
    assert after["invocations"] == 1
    assert len(gw.wait_events("cold_start", cold_starts + 1)) == cold_starts + 1


def test_api_gateway_timeout_caps_the_function_timeout(tmp_path: Path) -> None:
    """The 1 s integration cap, not the function's 30 s timeout: 10x the cap tells them apart on any machine."""
    with running_gateway(tmp_path, "--api-timeout", "1", "--param", "FunctionTimeout=30") as gw:
        started = time.monotonic()
        reply = gw.get("/sleep?s=60", timeout=60)
        assert reply.status == 504
        assert reply.json() == {"message": "Endpoint request timed out"}
        assert 1.0 <= time.monotonic() - started < 10


def test_cold_start_log_line(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw:
        assert gw.events("cold_start") == []  # environments start lazily
        first = gw.get("/echo")
        (cold,) = gw.wait_events("cold_start", 1)
        assert cold["request_id"] == first.headers["x-amzn-RequestId"]
        assert cold["function"] == "ProxyFunction"
        assert cold["init_ms"] > 0
        assert cold["handler_import_ms"] >= 0
        assert cold["pid"] == first.json()["pid"]
        second = gw.echo()
        assert second["pid"] == cold["pid"]  # warm: no second cold start
        assert second["invocations"] == 2
        assert len(gw.events("cold_start")) == 1


def test_warm_environments_start_before_the_first_request(tmp_path: Path) -> None:
    with running_gateway(tmp_path, "--warm", "2") as gw:
        colds = gw.events("cold_start")  # logged before the port opened
        assert len(colds) == 2
        assert all(c["request_id"] is None for c in colds)
        assert gw.stats()["environments"] == {"total": 2, "busy": 0, "idle": 2}
        pids = {c["pid"] for c in colds}
        assert {r.json()["pid"] for r in _concurrently(gw, ["/echo", "/echo"])} <= pids
        assert len(gw.events("cold_start")) == 2


def test_concurrency_cap_throttles_with_429(tmp_path: Path) -> None:
    with running_gateway(tmp_path, "--concurrency", "2", "--throttle-wait", "0.2") as gw:
        replies = _concurrently(gw, ["/sleep?s=1.5"] * 4)
        statuses = sorted(r.status for r in replies)
        assert statuses == [200, 200, 429, 429]
        throttled = [r for r in replies if r.status == 429]
        assert all(r.json() == {"message": "Too Many Requests"} for r in throttled)
        served = {r.json()["pid"] for r in replies if r.status == 200}
        assert len(served) == 2  # each environment serves one request at a time
        stats = gw.stats()
        assert stats["counters"]["throttled"] == 2
        assert stats["counters"]["cold_starts"] == 2
        assert stats["environments"]["total"] == 2


def test_busy_environment_is_waited_for_within_throttle_wait(tmp_path: Path) -> None:
    with running_gateway(tmp_path, "--concurrency", "1", "--throttle-wait", "20") as gw:
        replies = _concurrently(gw, ["/sleep?s=0.3"] * 3)
        assert [r.status for r in replies] == [200, 200, 200]
        assert len({r.json()["pid"] for r in replies}) == 1  # one environment served all three, in turn
        assert len(gw.events("cold_start")) == 1


def test_init_failure_is_502_and_retried_on_the_next_request(tmp_path: Path) -> None:
    with running_gateway(tmp_path, template=BROKEN_TEMPLATE) as gw:
        for attempt in (1, 2):
            reply = gw.get("/anything")
            assert reply.status == 502
            assert reply.json() == {"message": "Internal server error"}
            errors = gw.wait_events("init_error", attempt)
            assert errors[-1]["error"]["errorType"] == "Runtime.ImportModuleError"
        assert gw.stats()["environments"]["total"] == 0


def _worker_pids(gw: Gateway, count: int) -> list[int]:
    replies = _concurrently(gw, ["/sleep?s=0.5"] * count)
    assert [r.status for r in replies] == [200] * count, (
        [(r.status, r.body[:300]) for r in replies],
        gw.log.read_text(encoding="utf-8", errors="replace")[-3000:],
    )
    pids = sorted({r.json()["pid"] for r in replies})
    assert len(pids) == count
    return pids


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown_leaves_no_environment(tmp_path: Path, signum: int) -> None:
    with running_gateway(tmp_path) as gw:
        pids = _worker_pids(gw, 3)
        gw.signal(signum)
        assert gw.proc.wait(timeout=15) == 0
        assert wait_gone(pids) == []
        assert gw.events("gateway_stopped")


def test_shutdown_during_a_request_answers_it_and_stops_its_environment(tmp_path: Path) -> None:
    """SIGTERM while the handler runs: it waits for a file the test writes only once the gateway has logged that
    it is stopping with the request in flight, so the order holds whatever the machine's speed; the request then
    finishes within the 2 s shutdown grace."""
    go = tmp_path / "go"
    with running_gateway(tmp_path) as gw:
        result: list[Reply] = []
        thread = threading.Thread(target=lambda: result.append(gw.get(f"/wait?file={go}&s=30", timeout=60)))
        thread.start()
        (cold,) = gw.wait_events("cold_start", 1, timeout=60)
        pid = cold["pid"]
        deadline = time.monotonic() + 60
        while gw.stats()["environments"]["busy"] != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        gw.signal(signal.SIGTERM)
        (stopping,) = gw.wait_events("gateway_stopping", 1, timeout=60)
        assert stopping["inflight"] == 1
        go.touch()
        assert gw.proc.wait(timeout=30) == 0
        thread.join(timeout=30)
        assert result
        assert (result[0].status, result[0].json()["waited"]) == (200, True)
        assert result[0].headers["Connection"] == "close"
        assert wait_gone([pid]) == []


def test_killed_gateway_takes_its_environments_along(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw:
        pids = _worker_pids(gw, 2)
        gw.signal(signal.SIGKILL)  # no chance to clean up: the environments die with their parent
        assert gw.proc.wait(timeout=10) == -signal.SIGKILL
        assert wait_gone(pids) == []
