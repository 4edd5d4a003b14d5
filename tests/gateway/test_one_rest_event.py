"""One REST event: what `cachelab invoke --event-format rest` builds is what the gateway sends for the same request
(raw bytes on a socket, so both sides see exactly the same header fields), and invoke's defaults are those of
sam/template.yaml."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cachelab import events
from cachelab.gateway.cli import DEFAULT_PORT
from cachelab.gateway.template import load_function
from tests.gateway.support import FIXTURE_TEMPLATE, REAL_TEMPLATE, Gateway, raw_exchange, split_responses

REQUESTS: list[tuple[str, str, list[tuple[str, str]], bytes]] = [
    ("GET", "/", [("Host", "api.example")], b""),
    (
        "GET",
        "/echo/a%20b/c?x=1&x=2&empty=&plus=a+b",
        [("Host", "h"), ("X-Multi", "one"), ("X-Multi", "two"), ("User-Agent", "ua/1"), ("Accept", "*/*")],
        b"",
    ),
    ("GET", "/items/7#fragment", [("X-Forwarded-For", "10.1.2.3"), ("X-Amzn-Trace-Id", "Root=1-abc")], b""),
    ("POST", "/echo", [("Host", "h"), ("Content-Type", "application/json")], '{"name": "caf\u00e9"}'.encode()),
    ("PUT", "/upload", [("Content-Type", "application/octet-stream")], bytes(range(256))),
    ("PATCH", "/text", [("Content-Type", "text/plain")], b"\xff\xfe not utf-8"),
]

# Fields that differ from one request to the next, whoever builds the event.
_PER_REQUEST = ("requestId", "extendedRequestId", "requestTimeEpoch", "requestTime")


def _comparable(event: dict[str, Any], *, traced: bool) -> dict[str, Any]:
    """The event less what is new on every request: the ids, the time, and a trace id the client did not send."""
    event = copy.deepcopy(event)
    for name in _PER_REQUEST:
        event["requestContext"].pop(name)
    if not traced:
        assert event["headers"].pop("X-Amzn-Trace-Id").startswith("Root=1-")
        assert event["multiValueHeaders"].pop("X-Amzn-Trace-Id")[0].startswith("Root=1-")
    return event


def _through_the_gateway(gw: Gateway, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> Any:
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    ((status, _headers, reply),) = split_responses(raw_exchange(gw.port, data))
    assert status == 200, reply[:300]
    return json.loads(reply)["event"]


@pytest.mark.parametrize(("method", "target", "headers", "body"), REQUESTS, ids=[r[1] for r in REQUESTS])
def test_invoke_builds_the_event_the_gateway_sends(
    gw: Gateway, method: str, target: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    sent = _through_the_gateway(gw, method, target, headers, body)
    wire_headers = [*headers, *([("Content-Length", str(len(body)))] if body else [])]
    spec = load_function(FIXTURE_TEMPLATE, shell_env={})
    built = events.build_event(
        method, target, wire_headers, body, event_format="rest", stage=spec.stage,
        binary_media_types=spec.binary_media_types, server_port=gw.port,
    )  # fmt: skip
    traced = any(name == "X-Amzn-Trace-Id" for name, _ in headers)
    assert _comparable(built, traced=traced) == _comparable(sent, traced=traced)
    assert list(built) == list(sent)  # the same key order, too


def test_invokes_defaults_are_the_templates() -> None:
    spec = load_function(REAL_TEMPLATE, params={"RedisMode": "external", "RedisUrl": "redis://127.0.0.1:1/0"})
    assert spec.stage == events.STAGE
    assert spec.binary_media_types == events.BINARY_MEDIA_TYPES
    assert [route.resource for route in spec.routes] == ["/", "/{proxy+}"]
    assert events.SERVER_PORT == DEFAULT_PORT
    built = events.build_event("POST", "/items/1?a=1", [("Content-Type", "application/json")], b"{}")
    assert built["requestContext"]["stage"] == spec.stage
    assert built["isBase64Encoded"] is True  # BinaryMediaTypes */*: the API hands every typed body over in base64
