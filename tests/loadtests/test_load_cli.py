"""`cachelab load`: a real run with its files and thresholds, and clear errors for bad input."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from cachelab import processes
from cachelab.cli import main as cachelab
from tests.loadtests.conftest import Stack


@pytest.mark.redis_server
def test_run_writes_every_file_and_applies_thresholds(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    rc = cachelab(
        [
            "load",
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


@pytest.mark.redis_server
def test_json_output_and_passing_thresholds(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cachelab(
        [
            "load",
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


@pytest.mark.redis_server
def test_invalid_scenario_knob_is_reported_from_the_locustfile(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cachelab(["load", "steady", "--host", stack.gateway_url, "--duration", "1s", "--keys", "0",
                   "--out", str(tmp_path / "x")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "ERROR: cachelab steady: --keys must be at least 1 (got 0)\n" in err  # shown as it happened
    assert "cachelab load: error: Locust exited with status 2 without writing " in err


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
    assert cachelab(["load", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cachelab load: error: ")
    assert message in err
    assert "Traceback" not in err


def test_unreachable_targets_fail_fast(capsys: pytest.CaptureFixture[str]) -> None:
    port = processes.free_port()
    assert cachelab(["load", "steady", "--host", f"http://127.0.0.1:{port}"]) == 2
    assert f"cannot reach the target (--host) at http://127.0.0.1:{port}/" in capsys.readouterr().err


@pytest.mark.redis_server
def test_unreachable_stub_admin_fails_fast(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    port = processes.free_port()
    rc = cachelab(["load", "steady", "--host", stack.gateway_url, "--stub-admin", f"http://127.0.0.1:{port}"])
    assert rc == 2
    assert "cannot reach the stub admin API (--stub-admin)" in capsys.readouterr().err


def test_unknown_scenario_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cachelab(["load", "soak", "--host", "http://127.0.0.1:1"])
    assert exc.value.code == 2
    assert "invalid choice: 'soak'" in capsys.readouterr().err


STACK_TEMPLATE = """
Resources:
  Topic:
    Type: AWS::SNS::Topic
Outputs:
  ApiId:
    Value: abc123
  ApiStageName:
    Value: api
  ApiUrl:
    Value: https://abc123.execute-api.us-east-1.amazonaws.com/api/
"""


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server (real process) standing in for LocalStack's CloudFormation, with one stack deployed."""
    port = processes.free_port()
    argv = [str(Path(sys.executable).parent / "moto_server"), "-H", processes.LOOPBACK, "-p", str(port)]
    endpoint = f"http://localhost:{port}"
    with processes.running(argv, port=port, log=tmp_path_factory.mktemp("moto") / "moto.log"):
        cfn = boto3.client(
            "cloudformation",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        cfn.create_stack(StackName="cachelab-load", TemplateBody=STACK_TEMPLATE)
        yield endpoint


def test_stack_outputs_give_the_target(moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cachelab(
        [
            "load",
            "steady",
            "--stack",
            "cachelab-load",
            "--target",
            "localstack",
            "--endpoint-url",
            moto_endpoint,
            "--region",
            "us-east-1",
            "--users",
            "1",
            "--duration",
            "1s",
            "--out",
            str(tmp_path / "s"),
        ]
    )
    err = capsys.readouterr().err
    url = f"{moto_endpoint}/restapis/abc123/api/_user_request_"
    assert f"target {url}/ (stack cachelab-load)" in err
    assert rc == 0, err
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["host"] == url
    assert summary["requests"] > 0  # moto answers 404 to these, which proves they went there


def test_missing_stack_is_a_clear_error(moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cachelab(["load", "steady", "--stack", "nope", "--endpoint-url", moto_endpoint, "--region", "us-east-1"])
    assert rc == 2
    assert "stack 'nope' not found" in capsys.readouterr().err


def test_stack_flags_need_a_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert cachelab(["load", "steady", "--host", "http://127.0.0.1:1", "--endpoint-url", "http://x"]) == 2
    assert "apply with --stack only" in capsys.readouterr().err
