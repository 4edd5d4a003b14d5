"""Each log format, on the small generated sample logs in tests/whatif/samples/ (real-looking, with bad lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whatif import parsers
from whatif.parsers import Ignored, Record, Rejected, detect, parse_har, parse_lines

SAMPLES = Path(__file__).resolve().parent / "samples"
START = 1_735_725_600.0  # 2025-01-01T10:00:00Z, the samples' first second


def parsed(name: str, fmt: str) -> list[parsers.Parsed]:
    text = (SAMPLES / name).read_text()
    if fmt == "har":
        return list(parse_har(json.loads(text)))
    return list(parse_lines(text.splitlines(), fmt))


def records(items: list[parsers.Parsed]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def rejected(items: list[parsers.Parsed]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for item in items:
        if isinstance(item, Rejected):
            kinds[item.kind] = kinds.get(item.kind, 0) + 1
    return kinds


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("access.clf.log", "clf"),
        ("access.combined.log", "combined"),
        ("apigw.jsonl", "apigw-json"),
        ("trace.csv", "csv"),
        ("capture.har", "har"),
        ("proxy.jsonl", "cachelab"),
    ],
)
def test_each_sample_is_detected_as_its_format(name: str, fmt: str) -> None:
    assert detect((SAMPLES / name).read_text()[:65536]) == fmt


def test_common_log_format() -> None:
    items = parsed("access.clf.log", "clf")
    got = records(items)
    assert len(got) == 60
    assert not rejected(items)
    first = got[0]
    assert (first.time, first.method, first.target, first.status, first.size) == (START, "GET", "/items/6", 200, 1122)
    assert any("?" in r.target for r in got)  # query strings are kept as sent
    assert {r.status for r in got} == {200, 404, 503}


def test_combined_log_format_with_bad_lines() -> None:
    items = parsed("access.combined.log", "combined")
    got = records(items)
    # 60 generated lines + an absolute URL, a DELETE, an old line and two spellings of one query (checked later)
    assert len(got) == 65
    assert rejected(items) == {"unparsable": 2, "mixed formats": 1}
    mixed = next(i for i in items if isinstance(i, Rejected) and i.kind == "mixed formats")
    assert mixed.reason == "looks like apigw-json, not combined"
    assert any(r.target == "http://evil.example/items/1" for r in got)
    assert any(r.method == "DELETE" for r in got)


def test_clf_time_zones() -> None:  # the offset is part of the time (RFC 3339-like numeric offsets)
    assert parsers.clf_time("01/Jan/2025:11:00:00 +0100") == START
    assert parsers.clf_time("01/Jan/2025:05:00:00 -0500") == START
    with pytest.raises(ValueError, match="CLF"):
        parsers.clf_time("2025-01-01 10:00:00")


def test_api_gateway_access_log_json() -> None:
    items = parsed("apigw.jsonl", "apigw-json")
    got = records(items)
    assert len(got) == 60
    assert not rejected(items)
    first = got[0]
    assert first.target == "/items/6"  # the stage prefix ($context.stage) is removed from $context.path
    assert first.time == START + 0.325  # $context.requestTimeEpoch, in ms
    assert first.latency == pytest.approx(0.056)  # $context.integrationLatency, in ms
    assert first.status == 200
    assert first.size == 1122
    assert all("?" not in r.target for r in got)  # API Gateway logs have no query string


def test_api_gateway_request_time_without_epoch() -> None:
    line = '{"requestTime":"01/Jan/2025:10:00:00 +0000","httpMethod":"GET","path":"/a","status":"-"}'
    [record] = list(parse_lines([line], "apigw-json"))
    assert isinstance(record, Record)
    assert (record.time, record.status) == (START, None)
    [bad] = list(parse_lines(['{"requestTime":"01/Jan/2025:10:00:00 +0000","routeKey":"GET /a"}'], "apigw-json"))
    assert isinstance(bad, Rejected)
    assert "path" in bad.reason


def test_csv_with_header_iso_times_and_bad_rows() -> None:
    items = parsed("trace.csv", "csv")
    got = records(items)
    assert isinstance(items[0], Ignored)  # the header line
    assert len(got) == 63
    assert rejected(items) == {"unparsable": 1}
    iso = next(r for r in got if r.target == "/items/1?b=2&a=1")
    assert iso.time == START + 2.5
    assert got[0].time == START + 0.325
    assert got[0].latency == pytest.approx(0.0563)


def test_csv_without_header_and_millisecond_times() -> None:
    rows = ["1735725600000,GET,/a", "1735725600.5,get,/b,404,12.5"]
    got = records(list(parse_lines(rows, "csv")))
    assert [(r.time, r.method, r.status, r.latency) for r in got] == [
        (START, "GET", None, None),
        (START + 0.5, "GET", 404, 0.0125),
    ]


def test_har_entries_in_start_order_with_headers() -> None:
    items = parsed("capture.har", "har")
    got = records(items)
    assert len(got) == 25
    assert [r.time for r in got] == sorted(r.time for r in got)
    assert got[0].target == "https://api.example.com/items/6"
    assert ("Accept", "application/json") in got[0].headers
    assert got[0].latency == pytest.approx(0.0563)  # timings.wait
    assert got[0].time == START + 0.325  # startedDateTime
    with pytest.raises(parsers.FormatError, match=r"log\.entries"):
        list(parse_har({"not": "a har"}))


def test_the_proxys_own_log_lines_carry_the_key_hash() -> None:
    items = parsed("proxy.jsonl", "cachelab")
    got = records(items)
    assert len(got) == 30
    assert sum(isinstance(i, Ignored) for i in items) == 2  # Lambda's START line and a proxy warning
    first = got[0]
    assert first.key == "d5484475169c.0"
    assert first.target == ""
    # logged when answered: the arrival is the log time minus the request's duration
    assert first.time == pytest.approx(START + 0.322, abs=0.001)  # the Lambda answered 3 ms after the upstream
    assert first.latency == pytest.approx(0.0563)
    hit = got[1]
    assert hit.status == 200
    assert hit.latency is None  # a HIT: no upstream status, the answer's status


def test_proxy_log_lines_straight_from_request_log() -> None:
    """The format is read from what proxy.observability.RequestLog writes today (not a copy of it)."""
    from proxy.http import Response
    from proxy.observability import RequestLog
    from proxy.outcome import CacheStatus, Outcome

    line = RequestLog().record(
        request_id="r", method="GET", outcome=Outcome(Response(503), CacheStatus.STALE, "abc.0", upstream_status=503,
                                                      upstream_ms=12.0), duration_ms=15.0,
    )  # fmt: skip
    assert parsers.classify_line(line) == "cachelab"
    [record] = list(parse_lines([line], "cachelab"))
    assert isinstance(record, Record)
    assert (record.key, record.status, record.latency) == ("abc.0", 503, 0.012)


def test_unknown_format_and_empty_log() -> None:
    with pytest.raises(parsers.FormatError, match="unknown log format"):
        detect("hello world\nthis is not a log\n")
    with pytest.raises(parsers.FormatError, match="empty"):
        detect("\n\n")
