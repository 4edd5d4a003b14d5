"""`cachelab whatif` as a user runs it: tables, whatif.json, the chart, and clear errors (exit 2) on bad input."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from cachelab.cli import main
from tests.whatif.test_parsers import SAMPLES


def whatif(tmp_path: Path, *args: str) -> int:
    return main(["whatif", *args, "--out", str(tmp_path / "out"), "--no-progress"])


@pytest.mark.parametrize(
    "name", ["access.clf.log", "access.combined.log", "apigw.jsonl", "trace.csv", "capture.har", "proxy.jsonl"]
)
def test_every_sample_format(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert whatif(tmp_path, str(SAMPLES / name), "--ttl", "1,10,60") == 0
    data = json.loads((tmp_path / "out" / "whatif.json").read_text())
    assert [r["ttl_s"] for r in data["results"]] == [1.0, 10.0, 60.0]
    assert data["trace"]["requests"] > 0
    ratios = [r["saved_share"] for r in data["results"]]
    assert ratios == sorted(ratios)  # a longer TTL never costs more upstream requests on these traces
    assert (tmp_path / "out" / "whatif.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Traceback" not in capsys.readouterr().err


def test_table_json_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert whatif(tmp_path, str(SAMPLES / "access.combined.log"), "--ttl", "10,1m", "--swr", "0") == 0
    out = capsys.readouterr().out
    assert "hit ratio" in out
    assert "USD/month" in out
    assert "1 not GET/HEAD (DELETE 1)" in out
    assert "1 another host (evil.example 1)" in out
    assert "line 14: 'http://evil.example/items/1': an absolute URL (give --log-host to accept its host)" in out
    assert "1 out of order" in out
    assert "1 mixed formats" in out
    data = json.loads((tmp_path / "out" / "whatif.json").read_text())
    assert data["schema"] == "cachelab.whatif/1"
    assert data["format"] == "combined"
    assert data["settings"]["stale_while_revalidate_s"] == 0.0
    assert data["settings"]["host"] is None
    result = data["results"][1]
    assert result["ttl_s"] == 60.0
    assert result["requests"] == data["trace"]["requests"] == 62
    assert result["upstream_requests"] + result["saved"] == result["requests"]
    assert set(result["monthly_cost"]) >= {"total_usd", "without_cache_usd", "items_usd"}
    assert result["worst_minute"]["upstream_requests"] >= 1
    assert data["problems"]["another host"]["examples"][0]["line"] == 14


def test_prices_file_changes_the_cost(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"prices": {"upstream_per_call": 0.01}, "deployment": {"cache_nodes": 2}}))
    assert whatif(tmp_path, str(SAMPLES / "trace.csv"), "--ttl", "60", "--prices", str(prices)) == 0
    cost = json.loads((tmp_path / "out" / "whatif.json").read_text())["results"][0]["monthly_cost"]
    assert cost["items_usd"]["upstream calls"] > 0
    assert cost["items_usd"]["elasticache nodes"] == pytest.approx(2 * 730 * 0.016, abs=0.01)


def test_gzip_logs_are_read(tmp_path: Path) -> None:
    packed = tmp_path / "access.log.gz"
    with open(SAMPLES / "access.clf.log", "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert whatif(tmp_path, str(packed), "--ttl", "60") == 0
    assert json.loads((tmp_path / "out" / "whatif.json").read_text())["trace"]["requests"] == 60


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("hello\nworld\n", (), "unknown log format"),
        ("", (), "is empty"),
        ('1.2.3.4 - - [01/Jan/2025:10:00:00 +0000] "POST /a HTTP/1.1" 201 0\n', (), "nothing usable"),
        ("1735725600,GET,/a\n", ("--format", "clf"), "nothing usable"),
        ("1735725600,GET,/a\n", ("--ttl", "ten"), "--ttl"),
        ("1735725600,GET,/a\n", ("--key-headers", "bad header"), "--key-headers"),
        ('{"log": 1}\n', (), "no log.entries"),
        ("{not json\n", ("--format", "har"), "not a readable HAR"),
    ],
)
def test_bad_input_is_a_message_and_exit_2(
    content: str, args: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log"
    log.write_text(content)
    assert whatif(tmp_path, str(log), *args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_log_and_bad_prices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert whatif(tmp_path, str(tmp_path / "nope.log")) == 2
    assert "cannot read" in capsys.readouterr().err
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"lambda_per_million": 1}))
    assert whatif(tmp_path, str(SAMPLES / "trace.csv"), "--prices", str(prices)) == 2
    assert "unknown price field(s): lambda_per_million" in capsys.readouterr().err
    prices.write_text("{")
    assert whatif(tmp_path, str(SAMPLES / "trace.csv"), "--prices", str(prices)) == 2
    assert "not JSON" in capsys.readouterr().err


def test_progress_bar_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["whatif", str(SAMPLES / "trace.csv"), "--out", str(tmp_path / "out"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "whatif trace.csv [" in err
    assert "100%" in err
