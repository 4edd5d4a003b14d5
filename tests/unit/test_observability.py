"""The per-request log line: valid JSON, a valid CloudWatch EMF record, and nothing secret in it."""

from __future__ import annotations

import io
import json

import pytest

from proxy.http import Headers, Response
from proxy.observability import RequestLog
from proxy.outcome import CacheStatus, Outcome


@pytest.mark.parametrize("upstream_ms", [None, 12.345])
def test_the_line_is_an_emf_record(upstream_ms: float | None) -> None:
    stream = io.StringIO()
    outcome = Outcome(
        Response(200, Headers(), b"secret body"),
        CacheStatus.MISS,
        key="abc.0",
        upstream_status=200,
        upstream_ms=upstream_ms,
    )
    RequestLog(stream=stream).record(request_id='id-"1"', method="GET", outcome=outcome, duration_ms=3.14159)
    line = json.loads(stream.getvalue())
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "cachelab"
    assert directive["Dimensions"] == [["Service"]]
    for metric in directive["Metrics"]:  # every declared metric is a number on the line (EMF spec)
        assert isinstance(line[metric["Name"]], (int, float)), metric
    assert ("UpstreamLatency" in line) is (upstream_ms is not None)
    assert (line["Miss"], line["Hit"], line["request_id"], line["Duration"]) == (1, 0, 'id-"1"', 3.14)
    assert line["Service"] == "proxy"
    assert "secret body" not in stream.getvalue()


def test_levels_silence_request_lines() -> None:
    stream = io.StringIO()
    log = RequestLog(stream=stream, level="WARNING")
    log.record(request_id="x", method="GET", outcome=Outcome(Response(200), CacheStatus.HIT), duration_ms=1)
    log.event("INFO", "quiet")
    log.event("WARNING", "loud", detail="d")
    assert [json.loads(x)["message"] for x in stream.getvalue().splitlines()] == ["loud"]
