"""Event parsing and rendering for every supported format, on real sample events."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cachelab.events import build_event
from proxy.events import BadEvent, parse_event, render
from proxy.http import Headers, Response
from tests.support.events import load_event


def test_rest_sample_event() -> None:
    parsed = parse_event(load_event("rest_get.json"))
    assert parsed.version == "1.0"
    assert (parsed.request.method, parsed.request.path, parsed.request.query) == ("GET", "/items/42", (("foo", "bar"),))
    assert parsed.request.headers.get("accept-language") == "en-US,en;q=0.8"


def test_http_api_sample_event_keeps_repeated_parameters_and_cookies() -> None:
    parsed = parse_event(load_event("http_api_get.json"))
    assert parsed.version == "2.0"
    assert parsed.request.path == "/path/to/resource"
    assert parsed.request.query == (("parameter1", "value1"), ("parameter1", "value2"), ("parameter2", "value"))
    assert parsed.request.headers.get("cookie") == "cookie1; cookie2"
    assert parsed.request.body == b'{"test":"body"}'  # isBase64Encoded


def test_function_url_sample_event() -> None:
    parsed = parse_event(load_event("function_url_get.json"))
    assert (parsed.version, parsed.request.method, parsed.request.path) == ("2.0", "GET", "/my/path")


@pytest.mark.parametrize("fmt", ["rest", "http", "url"])
def test_built_events_have_the_shape_of_the_real_ones(fmt: str) -> None:
    sample = load_event({"rest": "rest_get.json", "http": "http_api_get.json", "url": "function_url_get.json"}[fmt])
    built = build_event("GET", "/a?x=1&x=2", [("Accept", "a")], event_format=fmt)
    essential = {
        "httpMethod",
        "path",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "requestContext",
        "body",
    }
    if fmt != "rest":
        essential = {"version", "rawPath", "rawQueryString", "headers", "requestContext", "isBase64Encoded"}
    assert essential <= set(sample)
    assert essential <= set(built)
    assert parse_event(built).request.query == (("x", "1"), ("x", "2"))


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "GET /",
        {},
        {"httpMethod": 7, "path": "/"},
        {"httpMethod": "G E T", "path": "/"},
        {"httpMethod": "GET", "path": "/", "headers": {"x": "a\r\nSet-Cookie: a=1"}},
        {"httpMethod": "GET", "path": "/", "body": "!!", "isBase64Encoded": True},
        {"httpMethod": "GET", "path": "/", "headers": {"x": "y" * 20000}},
        {"version": "2.0", "rawPath": "/"},
        {"version": "2.0", "requestContext": {"http": {"method": "GET"}}, "rawQueryString": "&".join(["a=1"] * 300)},
        {"httpMethod": "GET", "path": "/" + "a" * 3000},
    ],
)
def test_malformed_events_are_refused_with_a_4xx(event: Any) -> None:
    with pytest.raises(BadEvent) as info:
        parse_event(event)
    assert 400 <= info.value.status < 500


def test_binary_bodies_are_base64_and_text_is_not() -> None:
    png = Response(200, Headers([("content-type", "image/png")]), b"\x89PNG\r\n\x1a\n\x00")
    result = render(png, "1.0")
    assert result["isBase64Encoded"]
    assert base64.b64decode(result["body"]) == png.body
    text = render(Response(200, Headers([("content-type", "application/json")]), b'{"a":1}'), "1.0")
    assert text == {
        "statusCode": 200,
        "isBase64Encoded": False,
        "body": '{"a":1}',
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {"content-type": ["application/json"]},
    }


def test_v2_results_put_set_cookie_in_cookies() -> None:
    response = Response(200, Headers([("set-cookie", "a=1"), ("set-cookie", "b=2"), ("vary", "x"), ("vary", "y")]))
    result = render(response, "2.0")
    assert result["cookies"] == ["a=1", "b=2"]
    assert result["headers"] == {"vary": "x, y"}


@pytest.mark.parametrize(
    ("fmt", "raw_path", "expected"),
    [
        ("rest", "/a%20b/%2541", "/a%20b/%2541"),  # REST: encoded, decoded once: %25 stays a literal "%"
        ("http", "/100%/a b", "/100%25/a%20b"),  # HTTP API: rawPath arrives decoded; its "%" is a literal
        ("url", "/a%20b/%2541", "/a%20b/%2541"),  # Function URL: encoded, like REST
    ],
)
def test_each_format_decodes_the_path_exactly_once(fmt: str, raw_path: str, expected: str) -> None:
    event = build_event("GET", "/x", event_format=fmt)
    if fmt == "rest":
        event["path"] = raw_path
    else:
        event["rawPath"] = raw_path
    assert parse_event(event).request.path == expected
