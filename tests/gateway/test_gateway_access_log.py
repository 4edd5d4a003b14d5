"""`--access-log`: one JSON `request` line per request the function served, with its id, status and duration."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.support import raw_exchange, running_gateway, split_responses


def test_access_log_lines(tmp_path: Path) -> None:
    with running_gateway(tmp_path, "--access-log") as gw:
        served = [gw.get("/echo?x=1"), gw.request("HEAD", "/cookies")]
        ((refused, _headers, _body),) = split_responses(raw_exchange(gw.port, b"GET /x HTTP/9.9\r\n\r\n"))
        served.append(gw.get("/echo?x=2"))  # logged after the refusal would have been
        lines = gw.wait_events("request", 3)
    assert refused == 400  # the gateway's own answer: no request line
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/echo", 200),
        ("HEAD", "/cookies", 201),
        ("GET", "/echo", 200),
    ]
    assert [line["request_id"] for line in lines] == [reply.headers["x-amzn-RequestId"] for reply in served]
    assert all(line["ms"] > 0 for line in lines)
