"""loadtests.runner: the Locust command line of a run, its progress lines, what an interrupted run left, and its
errors (LoadError, which `cachelab load` turns into its exit status 2)."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachelab import processes
from loadtests.runner import (
    SCENARIOS,
    LoadError,
    LoadRun,
    check_stub_admin,
    locust_argv,
    locustfile,
    partial_results,
    probe,
    run_scenario,
    tidy,
)
from tests.support.loopback_http import serving


@pytest.mark.unit
def test_every_scenario_has_its_locustfile() -> None:
    for scenario in SCENARIOS:
        assert locustfile(scenario).is_file(), scenario


@pytest.mark.unit
def test_the_locust_command_line_of_a_run(tmp_path: Path) -> None:
    run = LoadRun("outage", "http://127.0.0.1:1", tmp_path, users=4, duration="1.4s", stub_admin="http://127.0.0.1:2",
                  processes=2, knobs={"--rate": "20"}, locust_args=["--expiry-gap=0.3"])  # fmt: skip
    argv = locust_argv(run)
    assert argv[:5] == [sys.executable, "-m", "locust", "-f", str(locustfile("outage"))]
    pairs = dict(itertools.pairwise(argv))
    assert pairs["--users"] == "4"
    assert pairs["--spawn-rate"] == "4"  # all users within a second
    assert pairs["--run-time"] == "1s"
    assert pairs["--summary-json"] == str(tmp_path / "summary.json")
    assert pairs["--stub-admin"] == "http://127.0.0.1:2"
    assert pairs["--processes"] == "2"
    assert argv[-3:] == ["--rate", "20", "--expiry-gap=0.3"]  # knobs, then Locust arguments as they are
    single = locust_argv(LoadRun("steady", "http://127.0.0.1:1", tmp_path, spawn_rate=2.5))
    assert "--processes" not in single
    assert "--stub-admin" not in single
    assert single[single.index("--spawn-rate") + 1] == "2.5"


@pytest.mark.unit
def test_progress_lines_are_tidied() -> None:
    assert tidy("[2026-01-01 10:00:00,123] host/INFO/cachelab.loadtests: cachelab steady: started") == (
        "10:00:00 cachelab steady: started"
    )
    assert tidy("[2026-01-01 10:00:01,5] host/WARNING/cachelab.loadtests: slow") == "10:00:01 WARNING: slow"
    assert tidy("Traceback (most recent call last):") == "Traceback (most recent call last):"


@pytest.mark.unit
def test_partial_results_name_what_an_interrupted_run_left(tmp_path: Path) -> None:
    assert partial_results(tmp_path) == f"no summary was written (Locust's log: {tmp_path / 'locust.log'})"
    (tmp_path / "summary.json").write_text(json.dumps({"duration_s": 12.4, "requests": 1}))
    (tmp_path / "locust.log").write_text("")
    assert partial_results(tmp_path) == (
        f"partial results of the first 12 s (1 request) in {tmp_path}/: summary.json, locust.log"
    )


@pytest.mark.unit
def test_an_unknown_scenario_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="unknown scenario 'soak'; choose one of steady, "):
        run_scenario(LoadRun("soak", "http://127.0.0.1:1", tmp_path))


@pytest.fixture
def not_the_stub() -> Iterator[str]:
    """An HTTP server on loopback that answers, but not as the stub does."""

    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        return (200, {}, b'{"hello": "world"}') if path == "/__admin/stats" else (404, {}, b"no")

    with serving(answer) as url:
        yield url


def test_probes_say_what_they_could_not_reach(not_the_stub: str) -> None:
    probe(not_the_stub + "/missing", "target (--host)")  # a 404 is an answer
    closed = f"http://{processes.LOOPBACK}:{processes.free_port()}"
    with pytest.raises(LoadError, match=rf"cannot reach the target \(--host\) at {closed}/: "):
        probe(closed + "/", "target (--host)")
    with pytest.raises(LoadError, match=r"cannot reach the stub admin API \(--stub-admin\) at .*/__admin/stats"):
        check_stub_admin(closed)
    with pytest.raises(LoadError, match="did not answer the stub's stats object"):
        check_stub_admin(not_the_stub)


def test_a_knob_the_locustfile_refuses_is_a_load_error_with_locusts_words(tmp_path: Path) -> None:
    closed = f"http://{processes.LOOPBACK}:{processes.free_port()}"  # the locustfile refuses before any request
    with pytest.raises(LoadError, match=r"(?s)Locust exited with status 2 without writing .*--keys must be at least 1"):
        run_scenario(LoadRun("steady", closed, tmp_path / "x", duration="1s", knobs={"--keys": "0"}))
