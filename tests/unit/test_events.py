"""Event parsing and rendering for every supported format, on real sample events."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cachelab.events import build_event
from cachelab.gateway.results import result_to_response
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
    }


# ---------------------------------------------------------------------------------------------- 1.0 header maps
# A payload 1.0 result may carry `headers` (one value per name) and `multiValueHeaders` (a list per name). Two
# readers of the same result, modelled here as they are documented and as they are written:
def merged_like_api_gateway(result: dict[str, Any]) -> list[tuple[str, str]]:
    """API Gateway (REST, Lambda proxy integration output format): "If you specify values for both headers and
    multiValueHeaders, API Gateway merges them into a single list. If the same key-value pair is specified in
    both, only the values from multiValueHeaders will appear in the merged list." """
    pairs = [
        (name.lower(), value) for name, values in (result.get("multiValueHeaders") or {}).items() for value in values
    ]
    single = [(name.lower(), value) for name, value in (result.get("headers") or {}).items()]
    return pairs + [pair for pair in single if pair not in pairs]


def merged_like_localstack(result: dict[str, Any]) -> list[tuple[str, str]]:
    """LocalStack 4.14 (`_merge_lambda_response_headers` of its REST API Lambda integration): a name in both maps
    gets the multiValueHeaders values followed by the headers value, so a pair present in both arrives twice."""
    merged: dict[str, list[str]] = {name.lower(): [value] for name, value in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        merged[name.lower()] = [*values, *merged.get(name.lower(), [])]
    return [(name, value) for name, values in merged.items() for value in values]


def as_received(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Each name's values in order: what a client can tell apart (the order between names is not specified)."""
    received: dict[str, list[str]] = {}
    for name, value in pairs:
        received.setdefault(name.lower(), []).append(value)
    return received


PROXY_ANSWER = Headers(
    [
        ("content-type", "application/json"),
        ("etag", '"v1"'),
        ("vary", "accept"),
        ("vary", "accept-language"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("age", "0"),
        ("x-cache", "HIT"),
        ("cache-status", "cachelab; hit; ttl=299"),
    ]
)


def test_v1_results_put_each_header_name_in_exactly_one_map() -> None:
    result = render(Response(200, PROXY_ANSWER, b"{}"), "1.0")
    assert result["headers"] == {
        "content-type": "application/json",
        "etag": '"v1"',
        "age": "0",
        "x-cache": "HIT",
        "cache-status": "cachelab; hit; ttl=299",
    }
    assert result["multiValueHeaders"] == {"vary": ["accept", "accept-language"], "set-cookie": ["a=1", "b=2"]}
    assert not set(result["headers"]) & set(result["multiValueHeaders"])


def test_v1_results_without_repeated_names_have_no_multi_value_map() -> None:
    result = render(Response(502, Headers([("content-type", "application/json"), ("x-cache", "MISS")]), b"{}"), "1.0")
    assert "multiValueHeaders" not in result
    assert result["headers"] == {"content-type": "application/json", "x-cache": "MISS"}


@pytest.mark.parametrize("merge", [merged_like_api_gateway, merged_like_localstack])
def test_v1_results_give_every_header_exactly_once_through_either_gateway(merge: Any) -> None:
    result = render(Response(200, PROXY_ANSWER, b"{}"), "1.0")
    assert as_received(merge(result)) == as_received(list(PROXY_ANSWER.items()))


def test_the_old_rendering_doubled_every_header_through_localstack() -> None:
    """The models tell the renderings apart: both maps carrying every name is right on API Gateway only."""
    both = {"headers": {"x-cache": "MISS"}, "multiValueHeaders": {"x-cache": ["MISS"]}}
    assert merged_like_api_gateway(both) == [("x-cache", "MISS")]
    assert merged_like_localstack(both) == [("x-cache", "MISS"), ("x-cache", "MISS")]


def test_the_local_gateway_reads_v1_results_as_api_gateway_does() -> None:
    result = render(Response(200, PROXY_ANSWER, b"{}"), "1.0")
    answer = result_to_response(result, binary_media_types=["*/*"], accept=None)
    assert Counter((name.lower(), value) for name, value in answer.headers) == Counter(PROXY_ANSWER.items())


_NAMES = st.sampled_from(["x-cache", "vary", "set-cookie", "etag", "link", "x-a"])
_VALUES = st.text(alphabet="abc=;, 01", min_size=0, max_size=6)


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=12))
def test_any_header_list_survives_both_merges_unchanged(items: list[tuple[str, str]]) -> None:
    result = render(Response(200, Headers(items), b""), "1.0")
    expected = as_received(items)
    assert as_received(merged_like_api_gateway(result)) == expected
    assert as_received(merged_like_localstack(result)) == expected


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


@pytest.mark.parametrize("fmt", ["http", "url"])
def test_payload_2_0_keeps_the_raw_query_for_forwarding(fmt: str) -> None:
    """Unsafe methods forward the query as received (only what cannot go on the wire is encoded)."""
    request = parse_event(build_event("POST", "/p?z=1&a=2&b&a=%7e1+x", event_format=fmt)).request
    assert request.raw_query == "z=1&a=2&b&a=%7e1+x"
    assert request.query == (("a", "2"), ("a", "~1+x"), ("b", None), ("z", "1"))  # the key's canonical form


def test_rest_events_rebuild_the_query_from_decoded_parameters() -> None:
    """REST events carry decoded parameters grouped by name: each reserved character in them is data."""
    event = build_event("POST", "/p?z=1&q=a%2Bb+c", event_format="rest")
    request = parse_event(event).request
    assert request.raw_query == "z=1&q=a%2Bb%20c"
    assert request.query == (("q", "a%2Bb%20c"), ("z", "1"))


def test_decoded_paths_of_http_apis_are_escaped_once() -> None:
    """HTTP APIs hand over rawPath (2.0) and path (1.0) percent-decoded: a "%" or "?" in them is a literal."""
    v2 = build_event("GET", "/", event_format="http")
    v2["rawPath"] = "/a%b?c"
    assert parse_event(v2).request.path == "/a%25b%3Fc"
    v1 = {**build_event("GET", "/", event_format="rest"), "version": "1.0", "path": "/50%/off"}
    assert parse_event(v1).request.path == "/50%25/off"
    rest = {**build_event("GET", "/", event_format="rest"), "path": "/a%2Fb"}  # REST: still encoded
    assert parse_event(rest).request.path == "/a%2Fb"


def test_function_urls_keep_encoded_reserved_characters() -> None:  # RFC 3986 §2.2
    event = build_event("GET", "/files/..%2Fadmin", event_format="url")
    assert parse_event(event).request.path == "/files/..%2Fadmin"
