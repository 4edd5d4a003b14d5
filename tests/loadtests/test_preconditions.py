"""Scenarios make their own preconditions true, or say loudly that they could not measure what they are for.

Against the real native stack (redis-server, stub, gateway with CACHE_TTL_SECONDS=300, the `cachelab up` default),
in the order the quick start of docs/experiments.md runs them: entries cached by an earlier run are still fresh.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from cachelab import processes
from cachelab.cli import main as cachelab
from loadtests.runner import LoadRun, run_scenario
from tests.loadtests.conftest import Stack

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.headers["X-Cache"])


def test_stampede_measures_refills_even_when_its_hot_path_is_already_cached(stack: Stack, tmp_path: Path) -> None:
    # What `cachelab load steady` leaves behind: /items/1 cached for 300 s.
    assert [_get(stack.gateway_url + "/items/1") for _ in range(2)] == ["MISS", "HIT"]
    load = LoadRun(
        "stampede",
        stack.gateway_url,
        tmp_path / "stampede",
        users=10,
        duration="4s",
        stub_admin=stack.stub_url,
        knobs={"--hot-max-age": "1", "--hot-latency-ms": "100"},
    )
    s = run_scenario(load)
    st = s["stampede"]
    assert st["hot_path"] == "/items/1"
    assert st["expiries"] >= 2, st  # the cold fill of this run's own key, then refills
    assert st["max_upstream_requests_per_expiry"] == 1
    assert s["by_cache_status"]["MISS"]["count"] == 1
    assert s["settings"]["hot_target"].startswith("/items/1?cachelab_run=")
    assert not [note for note in s["notes"] if "measured" in note or "never expired" in note]


def test_a_second_stampede_starts_cold_too(stack: Stack, tmp_path: Path) -> None:
    fills = []
    for attempt in range(2):
        load = LoadRun("stampede", stack.gateway_url, tmp_path / str(attempt), users=5, duration="2s",
                       stub_admin=stack.stub_url)  # fmt: skip
        s = run_scenario(load)
        fills.append(s["stampede"]["upstream_requests_per_expiry"])
        assert any("never expired" in note for note in s["notes"])  # a 300 s TTL: only the cold fill, said so
    assert [len(per_fill) for per_fill in fills] == [1, 1]  # each run filled its own key from cold
    assert all(per_fill[0] >= 1 for per_fill in fills)


def test_a_stampede_the_stub_never_sees_fails_loudly(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = processes.free_port()
    other = f"http://127.0.0.1:{port}"  # a stub the proxy does not fetch from
    argv = [sys.executable, "-m", "stub_api", "--port", str(port)]
    with processes.running(argv, port=port, log=tmp_path / "other.log", health_url=other + "/__admin/health"):
        rc = cachelab(["load", "stampede", "--host", stack.gateway_url, "--stub-admin", other, "--users", "3",
                       "--duration", "2s", "--out", str(tmp_path / "s")])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 2
    assert "cachelab load: error: the stampede run measured nothing: the stub saw no request for the hot path" in (
        captured.err
    )
    assert "note: the stub saw no request for the hot path /items/1" in captured.out


def test_an_outage_that_no_cached_key_could_notice_says_so(stack: Stack, tmp_path: Path) -> None:
    # Cached for 300 s before the run: the warm-up, the outage and the recovery all answer HIT.
    for key in range(1, 6):
        _get(f"{stack.gateway_url}/items/{key}")
    load = LoadRun("outage", stack.gateway_url, tmp_path / "outage", users=4, duration="4s",
                   stub_admin=stack.stub_url, knobs={"--keys": "5", "--rate": "40"})  # fmt: skip
    s = run_scenario(load)
    outage = s["phases"][1]
    assert outage["by_cache_status"]["STALE"]["count"] == 0
    (note,) = [n for n in s["notes"] if "invisible" in n]
    assert "CacheTtlSeconds=10" in note
    summary = json.loads((tmp_path / "outage" / "summary.json").read_text())
    assert summary["notes"] == s["notes"]


def test_an_outage_with_expiring_entries_has_no_such_note(stack: Stack, tmp_path: Path) -> None:
    stack.faults({"cache_control": "max-age=1"})
    load = LoadRun("outage", stack.gateway_url, tmp_path / "outage", users=4, duration="5s",
                   stub_admin=stack.stub_url, knobs={"--keys": "5", "--rate": "40"})  # fmt: skip
    s = run_scenario(load)
    assert s["phases"][1]["by_cache_status"]["STALE"]["count"] > 0
    assert not [n for n in s["notes"] if "invisible" in n]


def test_stub_admin_pointing_at_the_gateway_is_rejected(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    before = stack.upstream_count()
    rc = cachelab(["load", "steady", "--host", stack.gateway_url, "--stub-admin", stack.gateway_url])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"--stub-admin {stack.gateway_url} answered through the proxy (X-Cache: " in err
    assert "give the stub's own URL" in err
    assert stack.upstream_count() - before <= 1  # the one probe, nothing more
