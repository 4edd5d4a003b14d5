"""HTTP -> REST proxy event -> handler -> HTTP, through a real gateway process and its worker environments."""

from __future__ import annotations

import base64
import time

import pytest

from tests.gateway.support import Gateway


def test_event_shape_round_trip(gw: Gateway) -> None:
    before = int(time.time() * 1000)
    reply = gw.request(
        "GET",
        "/echo/a%20b/c?x=1&x=2&empty=&plus=a+b",
        headers=[("X-Multi", "one"), ("X-Multi", "two"), ("User-Agent", "gateway-test"), ("Accept", "*/*")],
    )
    after = int(time.time() * 1000)
    assert reply.status == 200
    data = reply.json()
    event, context = data["event"], data["context"]
    assert event["httpMethod"] == "GET"
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == "/echo/a%20b/c"  # REST APIs pass the path percent-encoded, as the client sent it
    assert event["pathParameters"] == {"proxy": "echo/a b/c"}
    assert event["queryStringParameters"] == {"x": "2", "empty": "", "plus": "a b"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "empty": [""], "plus": ["a b"]}
    assert event["headers"]["X-Multi"] == "two"
    assert event["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    assert event["headers"]["User-Agent"] == "gateway-test"
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["headers"]["X-Forwarded-Port"] == str(gw.port)
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["stageVariables"] is None
    ctx = event["requestContext"]
    assert ctx["stage"] == "dev"  # the fixture's StageName parameter
    assert ctx["resourcePath"] == "/{proxy+}"
    assert ctx["httpMethod"] == "GET"
    assert ctx["path"] == "/dev/echo/a%20b/c"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["userAgent"] == "gateway-test"
    assert ctx["protocol"] == "HTTP/1.1"
    assert before <= ctx["requestTimeEpoch"] <= after
    # One request id everywhere: the event, the Lambda context, the response header.
    assert ctx["requestId"] == context["aws_request_id"] == reply.headers["x-amzn-RequestId"]


def test_root_resource_has_no_path_parameters(gw: Gateway) -> None:
    event = gw.echo("/")["event"]
    assert event["resource"] == "/"
    assert event["path"] == "/"
    assert event["pathParameters"] is None
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_text_body_is_passed_as_is(gw: Gateway) -> None:
    body = '{"name": "caf\u00e9"}'
    event = gw.echo("/echo", method="POST", body=body, headers={"Content-Type": "application/json"})["event"]
    assert event["httpMethod"] == "POST"
    assert event["body"] == body
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("application/octet-stream", bytes(range(256))),  # a BinaryMediaTypes entry of the template
        ("image/webp", b"RIFF\x00\x00WEBP"),  # matches image/* although it is valid UTF-8
        ("text/plain", b"\xff\xfe not utf-8"),  # not a binary media type, but not text either
    ],
)
def test_binary_body_is_base64(gw: Gateway, content_type: str, payload: bytes) -> None:
    event = gw.echo("/upload", method="PUT", body=payload, headers={"Content-Type": content_type})["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_lambda_context_and_environment(gw: Gateway) -> None:
    data = gw.echo()
    context = data["context"]
    assert context["function_name"] == "ProxyFunction"
    assert context["function_version"] == "$LATEST"
    assert context["memory_limit_in_mb"] == "256"  # a string, as in the real runtime
    assert context["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:ProxyFunction"
    assert context["log_group_name"] == "/aws/lambda/ProxyFunction"
    # The function timeout is the fixture's FunctionTimeout parameter (2 s): the deadline counts down from it.
    assert 0 < context["remaining_ms"] <= 2000
    env = data["env"]
    assert env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "2"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["_HANDLER"] == "gwfixture.handler.lambda_handler"
    assert data["cwd"] == env["LAMBDA_TASK_ROOT"]
    assert env["LAMBDA_TASK_ROOT"].endswith("tests/gateway/fixtures/code")


def test_binary_response_is_decoded(gw: Gateway) -> None:
    reply = gw.get("/binary", headers={"Accept": "image/png"})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "image/png"
    assert reply.body == bytes(range(256))


def test_multi_value_response_headers(gw: Gateway) -> None:
    reply = gw.get("/cookies")
    assert reply.status == 201
    assert reply.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert reply.headers.get_all("X-Single") == ["one"]  # in both maps, sent once
    assert reply.headers["Content-Type"] == "text/plain"
    assert reply.body == b"cookies"


def test_head_has_headers_but_no_body(gw: Gateway) -> None:
    reply = gw.request("HEAD", "/cookies")
    assert reply.status == 201
    assert reply.headers["Content-Length"] == "7"
    assert reply.body == b""


@pytest.mark.parametrize("kind", ["string", "dictbody", "extrakey", "badstatus", "nostatus", "badheader",
                                  "badbase64", "notjson"])  # fmt: skip
def test_malformed_result_is_502(gw: Gateway, kind: str) -> None:
    reply = gw.get(f"/malformed?kind={kind}", headers={"Accept": "image/png"})
    assert reply.status == 502
    assert reply.json() == {"message": "Internal server error"}
    assert reply.headers["Content-Type"] == "application/json"


def test_malformed_result_is_logged(gw: Gateway) -> None:
    request_id = gw.get("/malformed?kind=dictbody").headers["x-amzn-RequestId"]
    logged = [e for e in gw.wait_events("malformed_response", 1) if e.get("request_id") == request_id]
    assert logged
    assert "body must be a string" in logged[0]["reason"]


def test_function_error_is_502_and_the_environment_stays_warm(gw: Gateway) -> None:
    first = gw.echo()
    reply = gw.get("/raise")
    assert reply.status == 502
    assert reply.json() == {"message": "Internal server error"}
    after = gw.echo()
    assert after["pid"] == first["pid"]
    assert after["invocations"] == first["invocations"] + 2


def test_crash_is_502_and_the_next_request_is_a_cold_start(gw: Gateway) -> None:
    before = gw.echo()
    cold_starts = len(gw.events("cold_start"))
    reply = gw.get("/exit")
    assert reply.status == 502
    assert reply.json() == {"message": "Internal server error"}
    after = gw.echo()
    assert after["pid"] != before["pid"]
    assert after["invocations"] == 1
    assert len(gw.wait_events("cold_start", cold_starts + 1)) == cold_starts + 1


def test_unknown_method_is_missing_authentication_token(gw: Gateway) -> None:
    reply = gw.request("BREW", "/coffee")
    assert reply.status == 403
    assert reply.json() == {"message": "Missing Authentication Token"}


def test_stats_endpoint(gw: Gateway) -> None:
    gw.echo()
    stats = gw.stats()
    assert stats["function"] == "ProxyFunction"
    assert stats["concurrency"] == 10
    assert stats["environments"]["total"] >= 1
    assert stats["counters"]["requests"] >= 1
    assert stats["counters"]["cold_starts"] >= 1
    assert gw.get("/__gateway/nope").status == 404
