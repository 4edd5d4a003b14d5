"""The replay plan, its prediction and comparison (pure), and `cachelab load replay`'s refusals (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachelab.cli import main
from tests.whatif.test_parsers import SAMPLES
from whatif.parsers import Record
from whatif.replay import compare, lines, plan, predict
from whatif.simulator import SimConfig


def test_plan_scales_time_and_keeps_order_and_limit() -> None:
    records = [Record(2, 110.0, "GET", "/b"), Record(1, 100.0, "GET", "/a", 503, 0.2), Record(3, 120.0, "GET", "/c")]
    planned = plan(records, speed=10.0, limit=2)
    assert [(p.offset, p.target, p.status, p.latency) for p in planned] == [
        (0.0, "/a", 503, 0.2),
        (1.0, "/b", 200, None),
    ]
    with pytest.raises(ValueError, match="speed"):
        plan(records, speed=0.0)


def test_prediction_and_comparison() -> None:
    records = [Record(i, float(i), "GET", "/a?y=1&x=2" if i % 2 else "/a?x=2&y=1") for i in range(10)]
    [predicted] = predict(plan(records), SimConfig(ttls=(5.0,), stale_while_revalidate=0.0))
    assert predicted.upstream_requests == 2  # one key whatever the parameter order: fetched at 0 s and 5 s
    summary = {"requests": 10, "upstream_requests_via_proxy": 3, "hit_ratio": 0.8}
    comparison = compare(summary, predicted, 10)
    assert comparison["difference"] == 1
    assert comparison["within_refresh_tolerance"] is False  # nothing landed during a refresh: 1 is too many
    assert "DIFFERS" in "\n".join(lines(comparison))
    headers_only = compare({"requests": 10, "expected_upstream_requests": 2}, predicted, 10)
    assert headers_only["measured_from"] == "headers"
    assert "agrees" in "\n".join(lines(headers_only))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "--host", "http://127.0.0.1:9"], "replay needs the access log"),
        (["steady", "LOG", "--host", "http://127.0.0.1:9"], "a LOG is for `cachelab load replay LOG`"),
        (["steady", "--speed", "2", "--host", "http://127.0.0.1:9"], "--speed applies to replay only"),
        (["replay", "LOG", "--speed", "0", "--host", "http://127.0.0.1:9"], "--speed must be a positive number"),
        (["replay", "LOG", "--processes", "2", "--host", "http://127.0.0.1:9"], "one Locust process"),
        (["replay", str(SAMPLES / "proxy.jsonl"), "--host", "http://127.0.0.1:9"], "not replayed"),
        (["replay", "POSTS", "--host", "http://127.0.0.1:9"], "no GET/HEAD request to replay"),
        (["replay", "LOG", "--ttl", "1,2", "--host", "http://127.0.0.1:9"], "one CACHE_TTL_SECONDS"),
    ],
)
def test_load_replay_refuses_bad_input_with_a_message(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything is contacted (nothing listens on port 9)."""
    posts = tmp_path / "posts.csv"
    posts.write_text("1735725600,POST,/a\n1735725601,POST,/b\n")
    args = [str(SAMPLES / "trace.csv") if a == "LOG" else str(posts) if a == "POSTS" else a for a in args]
    assert main(["load", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
