"""`cachelab load`: a real run with its files and thresholds, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cachelab import processes
from cachelab.commands import load
from tests.loadtests.conftest import Stack


def test_run_writes_every_file_and_applies_thresholds(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    rc = load.main(
        [
            "steady",
            "--host",
            stack.gateway_url,
            "--stub-admin",
            stack.stub_url + "/__admin/",
            "--users",
            "4",
            "--duration",
            "2s",
            "--keys",
            "50",
            "--out",
            str(out),
            "--fail-above-p95-ms",
            "0.001",
            "--fail-below-availability",
            "1.0",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 1, captured.err
    assert "threshold missed: latency p95_ms" in captured.err
    assert "availability" not in captured.err.split("threshold missed:", 2)[-1]  # availability 1.0 holds
    assert "cachelab steady: started" in captured.err  # progress lines are shown while it runs
    assert "scenario steady" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "steady"
    assert summary["users"] == 4
    assert summary["upstream_requests"] == summary["forwarded"] > 0
    for name in (
        "measurements.json",
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust_failures.csv",
        "report.html",
        "locust.log",
    ):
        assert (out / name).stat().st_size > 0, name
    assert "--csv-full-history" in (out / "locust.log").read_text().splitlines()[0]


def test_json_output_and_passing_thresholds(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = load.main(
        [
            "key-order",
            "--host",
            stack.gateway_url,
            "--users",
            "2",
            "--duration",
            "1s",
            "--keys",
            "20",
            "--out",
            str(tmp_path / "ko"),
            "--json",
            "--fail-below-availability",
            "0.99",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["scenario"] == "key-order"
    assert summary["upstream_requests"] is None  # no --stub-admin: no upstream count, and no guess either
    assert captured.err == ""  # --json prints nothing else


def test_invalid_scenario_knob_is_reported_from_the_locustfile(stack: Stack, tmp_path: Path) -> None:
    with pytest.raises(load.CliError, match=r"--keys must be at least 1"):
        load.run_scenario(
            load.LoadRun("steady", stack.gateway_url, tmp_path / "x", duration="1s", knobs={"--keys": "0"})
        )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["outage", "--host", "http://127.0.0.1:1"], "give --stub-admin"),
        (["stampede", "--host", "http://127.0.0.1:1"], "give --stub-admin"),
        (["compare", "--host", "http://127.0.0.1:1"], "give --upstream URL or --stub-admin"),
        (["steady", "--host", "ftp://x"], "must be an http:// or https:// URL"),
        (["steady", "--host", "http://127.0.0.1:1", "--outage-mode", "error"], "--outage-mode applies to outage"),
        (["key-order", "--host", "http://127.0.0.1:1", "--direct-share", "0.5"], "applies to steady and outage"),
        (["steady", "--host", "http://127.0.0.1:1", "--duration", "soon"], "not a duration"),
        (["steady", "--host", "http://127.0.0.1:1", "--duration", "0s"], "at least 1s"),
        (["steady", "--host", "http://127.0.0.1:1", "--users", "0"], "--users must be at least 1"),
        (["steady", "--host", "http://127.0.0.1:1", "--processes", "0"], "--processes must be at least 1"),
        (["steady", "--host", "http://127.0.0.1:1", "--fail-below-hit-ratio", "80"], "between 0 and 1"),
    ],
)
def test_bad_input_is_a_clear_error(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert load.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cachelab load: error: ")
    assert message in err
    assert "Traceback" not in err


def test_unreachable_targets_fail_fast(capsys: pytest.CaptureFixture[str]) -> None:
    port = processes.free_port()
    assert load.main(["steady", "--host", f"http://127.0.0.1:{port}"]) == 2
    assert f"cannot reach the target (--host) at http://127.0.0.1:{port}/" in capsys.readouterr().err


def test_unreachable_stub_admin_fails_fast(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    port = processes.free_port()
    rc = load.main(["steady", "--host", stack.gateway_url, "--stub-admin", f"http://127.0.0.1:{port}"])
    assert rc == 2
    assert "cannot reach the stub admin API (--stub-admin)" in capsys.readouterr().err


def test_unknown_scenario_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        load.main(["soak", "--host", "http://127.0.0.1:1"])
    assert exc.value.code == 2
    assert "invalid choice: 'soak'" in capsys.readouterr().err
