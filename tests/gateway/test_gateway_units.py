"""In-process checks of the event builder (against SAM CLI's own model) and of the result validation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from samcli.local.apigw.route import Route as SamRoute
from samcli.local.events.api_event import ApiGatewayLambdaEvent, ContextIdentity, RequestContext

from cachelab.gateway.events import HttpRequest, build_event
from cachelab.gateway.results import MalformedResult, as_json, result_to_response
from cachelab.gateway.spec import Route

pytestmark = pytest.mark.unit

REQUESTS = [
    HttpRequest("GET", "/", "", [], b"", "127.0.0.1", "HTTP/1.1"),
    HttpRequest(
        "POST", "/items/7", "a=1&a=2&b=", [("Host", "h:1"), ("User-Agent", "ua"), ("Content-Type", "text/plain")],
        b"hello", "10.0.0.9", "HTTP/1.0",
    ),
    HttpRequest("PUT", "/blob", "", [("Content-Type", "application/octet-stream")], b"\x00\xff", "::1", "HTTP/1.1"),
]  # fmt: skip


def _sam_event(request: HttpRequest, mine: dict[str, Any]) -> dict[str, Any]:
    """What SAM CLI's model gives for the same request data."""
    ctx = mine["requestContext"]
    context = RequestContext(
        resource_path=ctx["resourcePath"], http_method=request.method, request_id=ctx["requestId"],
        stage=ctx["stage"], identity=ContextIdentity(source_ip=request.client_ip, user_agent=ctx["identity"]["userAgent"]),
        extended_request_id=ctx["extendedRequestId"], path=ctx["path"], protocol=request.protocol,
        domain_name=ctx["domainName"], request_time_epoch=ctx["requestTimeEpoch"], request_time=ctx["requestTime"],
    )  # fmt: skip
    event = ApiGatewayLambdaEvent(
        http_method=request.method, body=mine["body"], resource=mine["resource"], request_context=context,
        query_string_params=mine["queryStringParameters"],
        multi_value_query_string_params=mine["multiValueQueryStringParameters"], headers=mine["headers"],
        multi_value_headers=mine["multiValueHeaders"], path_parameters=mine["pathParameters"], path=request.path,
        is_base_64_encoded=mine["isBase64Encoded"], api_type=SamRoute.API,
    )  # fmt: skip
    result: dict[str, Any] = event.to_dict()
    return result


@pytest.mark.parametrize("request_", REQUESTS)
def test_event_matches_sam_cli_model(request_: HttpRequest) -> None:
    mine = build_event(
        request_, resource="/{proxy+}", path_parameters={"proxy": request_.path.lstrip("/")}, stage="Prod",
        binary_media_types=("application/octet-stream",), request_id="rid", server_port=3000,
        request_time_epoch=1_700_000_000_000, request_time="14/Nov/2023:22:13:20 +0000",
    )  # fmt: skip
    assert mine == _sam_event(request_, mine)
    assert list(mine) == list(_sam_event(request_, mine))  # same key order, too


def test_event_values() -> None:
    mine = build_event(
        REQUESTS[1], resource="/items/{id}", path_parameters={"id": "7"}, stage="api", binary_media_types=(),
        request_id="rid", server_port=3000, request_time_epoch=1, request_time="t",
    )  # fmt: skip
    assert mine["queryStringParameters"] == {"a": "2", "b": ""}
    assert mine["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert mine["body"] == "hello"
    assert mine["requestContext"]["domainName"] == "h:1"
    assert mine["requestContext"]["path"] == "/api/items/7"
    assert mine["headers"]["X-Forwarded-For"] == "10.0.0.9"
    assert mine["multiValueHeaders"]["X-Forwarded-Port"] == ["3000"]


def test_forwarded_for_is_appended() -> None:
    request = HttpRequest("GET", "/", "", [("X-Forwarded-For", "1.2.3.4")], b"", "127.0.0.1", "HTTP/1.1")
    mine = build_event(
        request, resource="/", path_parameters={}, stage="s", binary_media_types=(), request_id="r",
        server_port=1, request_time_epoch=1, request_time="t",
    )  # fmt: skip
    assert mine["headers"]["X-Forwarded-For"] == "1.2.3.4, 127.0.0.1"


def test_result_headers_are_merged_and_remapped() -> None:
    response = result_to_response(
        {
            "statusCode": 200,
            "headers": {"X-One": "1", "Content-Length": "999", "Server": "upstream", "X-Num": 5, "X-Flag": True},
            "multiValueHeaders": {"X-One": ["1", "1b"], "Set-Cookie": ["a=1", "b=2"]},
            "body": "ok",
        },
        binary_media_types=(),
        accept=None,
    )
    assert response.status == 200
    assert response.body == b"ok"
    assert response.headers == [
        ("X-One", "1"), ("X-One", "1b"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
        ("X-Amzn-Remapped-Content-Length", "999"), ("X-Amzn-Remapped-Server", "upstream"), ("X-Num", "5"),
        ("X-Flag", "true"), ("Content-Type", "application/json"),
    ]  # fmt: skip


def test_base64_body_is_decoded_only_for_binary_media_types() -> None:
    body = base64.b64encode(b"\x89PNG").decode()
    result = {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "isBase64Encoded": True, "body": body}
    decoded = result_to_response(result, binary_media_types=("image/*",), accept=None)
    assert decoded.body == b"\x89PNG"
    by_accept = result_to_response(result, binary_media_types=("application/x-bin",), accept="application/x-bin")
    assert by_accept.body == b"\x89PNG"
    as_text = result_to_response(result, binary_media_types=(), accept=None)
    assert as_text.body == body.encode()  # a REST API without BinaryMediaTypes passes it through


@pytest.mark.parametrize(
    "result",
    [
        [],
        "text",
        {"statusCode": 200, "extra": 1},
        {"statusCode": True},
        {"statusCode": 99},
        {"statusCode": 600},
        {"body": "no status"},
        {"statusCode": 200, "body": 5},
        {"statusCode": 200, "isBase64Encoded": "maybe"},
        {"statusCode": 200, "headers": []},
        {"statusCode": 200, "headers": {"X": {"nested": 1}}},
        {"statusCode": 200, "headers": {"Bad Name": "x"}},
        {"statusCode": 200, "headers": {"X": "line\r\nbreak"}},
        {"statusCode": 200, "multiValueHeaders": {"X": "not a list"}},
    ],
)
def test_malformed_results(result: object) -> None:
    with pytest.raises(MalformedResult):
        result_to_response(result, binary_media_types=(), accept=None)


def test_string_status_code_is_accepted() -> None:
    assert result_to_response({"statusCode": "204"}, binary_media_types=(), accept=None).status == 204


def test_route_matching_prefers_literal_segments() -> None:
    routes = sorted(
        [Route.build("/{proxy+}", ["GET"]), Route.build("/items/{id}", ["GET"]), Route.build("/items/new", ["GET"])],
        key=lambda r: r.specificity,
        reverse=True,
    )
    assert [r.resource for r in routes] == ["/items/new", "/items/{id}", "/{proxy+}"]
    assert routes[1].match("/items/42") == {"id": "42"}
    assert routes[1].match("/items/42/x") is None
    assert routes[2].match("/a/b/c") == {"proxy": "a/b/c"}
    assert routes[2].match("/") is None


@pytest.mark.parametrize(
    ("result", "unchanged"),
    [
        ({"statusCode": 200, "headers": {"a": "b"}, "multiValueHeaders": {"a": ["b"]}, "n": [1, 2.5, None]}, True),
        ({"statusCode": 200, "headers": (("a", "b"),)}, False),  # a tuple becomes a list
        ({"statusCode": 200, "headers": {1: "one"}}, False),  # a key becomes a string
        ({"statusCode": 200.0, "body": float("nan")}, False),  # NaN is not equal to itself
    ],
)
def test_results_are_seen_as_lambda_serialises_them(result: dict[str, Any], unchanged: bool) -> None:
    """A JSON round trip that changes nothing is skipped; any other result is what the runtime's JSON says."""
    seen = as_json(result)
    assert json.dumps(seen) == json.dumps(result)
    assert (seen is result) is unchanged
    if not unchanged:
        assert seen == json.loads(json.dumps(result)) or "NaN" in json.dumps(result)


@pytest.mark.parametrize("result", [{"body": object()}, {"body": b"bytes"}, {"statusCode": {1, 2}}])
def test_results_json_cannot_carry_are_marshal_errors(result: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        as_json(result)
