"""Hostile input through the Lambda handler (in-process, a real redis-server, a real HTTP origin): property-based.

The origin answers every request with the request-target it received, so any answer, fresh or cached, tells which
upstream request produced it. Properties, for whatever hypothesis generates (traversal, encoded slashes and dots,
invalid percent-encoding and UTF-8, control characters, duplicate and conflicting parameters, both event formats):

- the handler never fails with an unhandled exception (its catch-all logs "unhandled error"), and its result is
  a JSON-serialisable API Gateway response;
- with a healthy origin nothing is a 5xx;
- every answer is the origin's answer for *this* request (no cache poisoning or deception): its body decodes to the
  request's own path and parameters, judged by an independent model (RFC 3986 §5.2.4 dot-segment removal written
  out as the RFC states it, and a hand-made query split), whether it came from the origin or from the cache;
- origin answers with malformed Cache-Control, skewed or broken Date/Expires/Age, Set-Cookie, Vary, huge and
  binary bodies are passed on intact and cached only when they may be (Set-Cookie never is);
- an answer to a request with Authorization reaches another user only when the origin marked it shareable.
"""

from __future__ import annotations

import base64
import email.utils
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachelab.events import build_event
from proxy.cache_control import CacheControl
from proxy.entry import Entry
from proxy.events import BadEvent, parse_event
from tests.conftest import RedisServer
from tests.reliability.support import UNHANDLED, EchoOrigin, LambdaApp, Reply, Seen, lambda_app

pytestmark = [pytest.mark.redis_server]

MAX_BODY = 65_536  # CACHE_MAX_BODY_BYTES of the app under test: bodies above it pass through uncached
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def app(origin: EchoOrigin, redis_server: RedisServer) -> Iterator[LambdaApp]:
    env = {"UPSTREAM_URL": origin.url, "REDIS_URL": redis_server.url, "CACHE_MAX_BODY_BYTES": str(MAX_BODY)}
    with lambda_app(env) as made:
        yield made


# ---------------------------------------------------------------------------------------------- the model
Meaning = tuple[str, list[tuple[str, str | None]]]  # a target's canonical path and its parameters
UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
PCHAR = UNRESERVED | set("!$&'()*+,;=:@")  # RFC 3986 §3.3, without pct-encoded
QUERY_CHAR = PCHAR | set("/?")  # RFC 3986 §3.4


class Refused(Exception):
    """The model says the request must be refused (400): invalid percent-encoding (RFC 3986 §2.1)."""


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, step by step as the RFC writes it (the proxy uses a segment list instead)."""
    source, output = path, ""
    while source:
        if source.startswith("../"):
            source = source[3:]
        elif source.startswith("./"):
            source = source[2:]
        elif source.startswith("/./"):
            source = "/" + source[3:]
        elif source == "/.":
            source = "/"
        elif source.startswith("/../") or source == "/..":
            source = "/" + source[4:] if source.startswith("/../") else "/"
            output = output[: output.rfind("/")] if "/" in output else ""
        elif source in (".", ".."):
            source = ""
        else:
            start = 1 if source.startswith("/") else 0
            end = source.find("/", start)
            segment = source if end == -1 else source[:end]
            output += segment
            source = source[len(segment) :]
    return output


def normalize_escapes(text: str, allowed: set[str]) -> str:
    """RFC 3986 §6.2.2.1-2 written out character by character: %XX of an unreserved character decoded, other hex
    upper-cased, characters outside `allowed` encoded as UTF-8; a "%" without two hex digits is refused."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) < 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                raise Refused(text)
            decoded = chr(int(pair, 16))
            out.append(decoded if decoded in UNRESERVED else "%" + pair.upper())
            i += 3
            continue
        out.append(char if char in allowed else "".join(f"%{b:02X}" for b in char.encode()))
        i += 1
    return "".join(out)


def path_meaning(path: str) -> str:
    """Escapes normalised first, dot-segments removed from that form (RFC 3986 §6.2.2.3, §5.2.4): "/" is a
    separator only when it is a literal "/", so %2F never climbs a level."""
    if not path.startswith("/"):
        path = "/" + path
    return remove_dot_segments(normalize_escapes(path, PCHAR | {"/"}))


def query_meaning(raw: str) -> list[tuple[str, str | None]]:
    """A raw query's parameters: split on literal "&" and the first "=", escapes normalised, "a" and "a=" different,
    ordered by name with the values of one name in the order sent."""
    params: list[tuple[str, str | None]] = []
    for piece in raw.split("&"):
        if piece:
            name, equals, value = piece.partition("=")
            params.append(
                (normalize_escapes(name, QUERY_CHAR), normalize_escapes(value, QUERY_CHAR) if equals else None)
            )
    return sorted(params, key=lambda param: param[0])


def data(text: str) -> str:
    """A decoded parameter as the origin must receive it: every character but the unreserved ones is data."""
    return "".join(c if c in UNRESERVED else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def meaning_of_target(target: str) -> Meaning:
    """The meaning of a request-target the origin received (or echoed)."""
    path, _, query = target.partition("?")
    return path_meaning(path), query_meaning(query)


# ---------------------------------------------------------------------------------------------- strategies
PIECES = ["a", "b", "items", "7", ".", "..", "%2e", "%2E%2e", ".%2e", "%2f", "%2F", "%5c", "\\", "%00", "%0d%0a",
          "\r\n", "\t", " ", "%", "%z", "%zz", "%e2%82", "%ff", "%c3%a9", "é", "€", "😀", ";", "=", "&", "?", "#",
          "+", "%20", "*", "~", "[", "]", "@", ":", "!", "$", "'", "(", ")", ",", "%25", "%252e", "%3F", "%23"]  # fmt: skip
QUERY_PIECES = ["a", "b", "id", "1", "2", "=", "&", "&&", "+", "%2B", "%26", "%3D", "%", "%zz", "%ff", "%c3%a9", "é",
                "€", "%00", "%0d%0a", " ", ";", "..", "/", "%2f", "?", "#", "[]", "%5B%5D", "%7e", "%41"]  # fmt: skip
segment = st.lists(st.sampled_from(PIECES), max_size=4).map("".join)
raw_paths = st.lists(segment, max_size=6).map(lambda segs: "/" + "/".join(segs))
raw_queries = st.lists(st.sampled_from(QUERY_PIECES), max_size=10).map("".join)
plain_texts = st.lists(st.sampled_from([*QUERY_PIECES, "%25zz", "x"]), max_size=4).map("".join)


def expected(path: str, query: str | list[tuple[str, str]]) -> Meaning | None:
    """What a request must reach the origin as, or None when it must be refused with a 400."""
    try:
        if isinstance(query, str):
            return path_meaning(path), query_meaning(query)
        return path_meaning(path), sorted(((data(k), data(v)) for k, v in query), key=lambda param: param[0])
    except Refused:
        return None


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, Any], Meaning | None]:
    """A GET event in either format, and what it asks for (None: it must be refused)."""
    path = draw(raw_paths)
    if draw(st.booleans()):  # HTTP API / Function URL: the raw query string
        query = draw(raw_queries)
        fmt = draw(st.sampled_from(["http", "url"]))
        event = build_event("GET", "/", event_format=fmt)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["rawQueryString"] = query
        # An HTTP API hands rawPath over already decoded (a "%" in it is a literal); a Function URL, encoded.
        return event, expected(path.replace("%", "%25") if fmt == "http" else path, query)
    # REST: API Gateway has decoded the parameters; names repeat, values conflict
    params = draw(st.lists(st.tuples(plain_texts, plain_texts), max_size=6))
    multi: dict[str, list[str]] = {}
    for name, value in params:
        multi.setdefault(name, []).append(value)
    event = build_event("GET", "/", event_format="rest")
    event["path"] = path
    event["multiValueQueryStringParameters"] = multi or None
    event["queryStringParameters"] = {k: v[-1] for k, v in multi.items()} or None
    return event, expected(path, [(k, v) for k, values in multi.items() for v in values])


def answer_body(result: dict[str, Any]) -> bytes:
    body = result.get("body") or ""
    return base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")


def header(result: dict[str, Any], name: str) -> str | None:
    value: str | None = result.get("headers", {}).get(name)
    return value


def checked(app: LambdaApp, event: object) -> dict[str, Any]:
    """One invocation, with the properties every invocation must have."""
    before = len(app.lines())
    result = app(event)
    json.dumps(result)  # what API Gateway receives must be JSON
    assert UNHANDLED not in app.lines()[before:], app.lines()[before:]
    assert isinstance(result["statusCode"], int)
    for name, value in (result.get("headers") or {}).items():
        assert "\r" not in name + value
        assert "\n" not in name + value
    return result


# ---------------------------------------------------------------------------------------------- properties
def test_the_model_agrees_with_rfc_3986_examples() -> None:
    """The model itself: the examples of RFC 3986 §5.2.4, §5.4.2 and §6.2.2."""
    assert remove_dot_segments("/a/b/c/./../../g") == "/a/g"
    assert remove_dot_segments("mid/content=5/../6") == "mid/6"
    assert remove_dot_segments("/a/b/c/../../../g") == "/g"
    assert remove_dot_segments("/a/b/c/../../../../g") == "/g"
    assert remove_dot_segments("/a/b/c/.") == "/a/b/c/"
    assert remove_dot_segments("/a/b/c/..") == "/a/b/"
    assert path_meaning("/%7Euser/%2e%2E/a%2fb") == "/a%2Fb"  # §6.2.2: example.com/%7Efoo == example.com/~foo
    assert query_meaning("b=2&a=1&&a=%7e+x&c") == [("a", "1"), ("a", "~+x"), ("b", "2"), ("c", None)]
    assert expected("/a%zz", "") is None


@settings(FUZZ, max_examples=500)
@given(first=requests(), second=requests())
def test_every_answer_is_the_origins_answer_for_that_very_request(
    app: LambdaApp,
    origin: EchoOrigin,
    first: tuple[dict[str, Any], Meaning | None],
    second: tuple[dict[str, Any], Meaning | None],
) -> None:
    for round_ in range(2):
        for event, wanted in (first, second):
            result = checked(app, event)
            if wanted is None:
                assert result["statusCode"] == 400, result
                assert "percent-encoding" in json.loads(result["body"])["error"]
                continue
            assert result["statusCode"] == 200, result
            got = meaning_of_target(answer_body(result).decode("latin-1"))
            assert got == wanted, f"served {got} for a request meaning {wanted}"
            if round_ == 1:
                assert header(result, "x-cache") == "HIT"  # and the cache works for every spelling
    with origin._lock:
        for seen in origin.seen[-4:]:  # what went upstream is a clean, canonical request-target
            assert all(0x21 <= ord(c) <= 0x7E for c in seen.target), seen.target
            assert "/../" not in seen.target
            assert "/./" not in seen.target


# Any text, lone UTF-16 surrogates included (JSON can carry "\ud800"; no real request has one).
any_text = st.text(st.characters(categories=["L", "N", "P", "S", "Z", "Cc", "Cs"]), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)
EVENT_KEYS = ["version", "httpMethod", "path", "rawPath", "rawQueryString", "headers", "multiValueHeaders",
              "queryStringParameters", "multiValueQueryStringParameters", "requestContext", "body",
              "isBase64Encoded", "cookies"]  # fmt: skip


@st.composite
def mangled_events(draw: st.DrawFn) -> object:
    """A real event with fields replaced by anything JSON can hold, or removed; sometimes not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    headers = [("Accept", "*/*"), *draw(st.lists(st.tuples(any_text, any_text), max_size=3))]
    event: dict[str, Any] = build_event(
        draw(st.sampled_from(["GET", "HEAD", "POST", "get", "PURGE"])),
        "/items/1?a=1",
        [(name, value) for name, value in headers if name],
        event_format=draw(st.sampled_from(["rest", "http", "url"])),
    )
    for key in draw(st.lists(st.sampled_from(EVENT_KEYS), max_size=4, unique=True)):
        if draw(st.booleans()):
            event.pop(key, None)
        else:
            event[key] = draw(json_values)
    if draw(st.booleans()) and isinstance(event.get("requestContext"), dict):
        event["requestContext"]["http"] = draw(json_values)
    return event


@settings(max_examples=1000, deadline=None)
@given(event=mangled_events())
def test_parse_event_returns_a_request_or_refuses_with_a_4xx(event: object) -> None:
    try:
        parsed = parse_event(event)
    except BadEvent as exc:
        status = exc.status
    else:
        status = 200
        request = parsed.request
        assert request.path.startswith("/")
        assert request.method.isalpha()
        names = [name for name, _ in request.query]
        assert names == sorted(names)  # ordered by name (the values of one name keep their order)
    assert 200 <= status < 500


@settings(FUZZ, max_examples=300)
@given(event=mangled_events())
def test_the_handler_answers_any_event_without_a_5xx(app: LambdaApp, event: object) -> None:
    result = checked(app, event)
    assert result["statusCode"] < 500, result


# -- origin answers --------------------------------------------------------------------------------------
DIRECTIVES = ["max-age=300", "max-age=0", "max-age=-1", "max-age=abc", 'max-age="60"', "max-age=99999999999999",
              "s-maxage=60", "s-maxage=0", "public", "private", 'private="set-cookie"', "no-store", "no-cache",
              'no-cache="set-cookie"', "must-revalidate", "proxy-revalidate", "stale-while-revalidate=5",
              "stale-if-error=abc", "immutable", "max-age", "=", ",", ";", 'foo="no-store"', "MAX-AGE=5",
              "No-Store", "max-age=5, max-age=0", "\t", "x" * 300]  # fmt: skip
STATUSES = [200, 200, 200, 203, 204, 206, 300, 301, 302, 304, 400, 404, 410, 429, 500, 502, 503]
CONTENT_TYPES = ["application/json", "text/plain; charset=utf-8", "application/octet-stream", "image/png", None]


@st.composite
def http_dates(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:  # a valid date, skewed by up to ten years either way
        return email.utils.formatdate(time.time() + draw(st.integers(-315_360_000, 315_360_000)), usegmt=True)
    if choice == 1:
        return draw(st.sampled_from(["0", "-1", "yesterday", "Thu, 01 Jan 1970 00:00:00 GMT", "",
                                     "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 99 Foo 2024 99:99:99 GMT"]))  # fmt: skip
    return email.utils.formatdate(time.time() + draw(st.integers(-120, 120)), usegmt=True)


@st.composite
def origin_replies(draw: st.DrawFn) -> Reply:
    headers: list[tuple[str, str]] = []
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers.append(("Content-Type", content_type))
    if draw(st.booleans()):
        headers.append(("Cache-Control", ", ".join(draw(st.lists(st.sampled_from(DIRECTIVES), max_size=4)))))
    for name in ("Date", "Expires", "Last-Modified"):
        if draw(st.booleans()):
            headers.append((name, draw(http_dates())))
    if draw(st.booleans()):
        headers.append(("Age", draw(st.sampled_from(["0", "30", "-5", "abc", "99999999999999", "1, 2"]))))
    if draw(st.integers(0, 3)) == 0:
        headers.append(("Set-Cookie", draw(st.sampled_from(["sid=secret; HttpOnly", "a=b", "SID=x; Max-Age=60"]))))
    if draw(st.integers(0, 4)) == 0:
        headers.append(("Vary", draw(st.sampled_from(["*", "Accept-Encoding", "Cookie", "", "accept, *"]))))
    if draw(st.booleans()):
        headers.append(("ETag", draw(st.sampled_from(['"v1"', 'W/"v1"', "no-quotes", '""']))))
    size = draw(st.sampled_from([0, 1, 100, 5000, MAX_BODY, MAX_BODY + 1, 200_000]))
    body = draw(st.binary(min_size=min(size, 64), max_size=64)) * (size // 64 + 1)
    return Reply(status=draw(st.sampled_from(STATUSES)), headers=headers, body=body[:size])


def http_time(value: str | None) -> float | None:
    parsed = email.utils.parsedate_tz(value or "")
    if parsed is None or parsed[9] is None:
        return None
    try:
        return float(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError):
        return None


def lifetime(fields: dict[str, str], received: float) -> float:
    """RFC 9111 §4.2.1 freshness lifetime as far as it can be zero: s-maxage, max-age, Expires minus Date (an
    invalid one counts as zero; a missing one is the time received, RFC 9110 §6.6.1), else a positive default. A
    directive present with an invalid value is zero."""
    cc = CacheControl.parse(fields.get("cache-control"))
    if cc.has("no-cache"):
        return 0.0  # RFC 9111 §5.2.2.4: never fresh without revalidation
    for directive in ("s-maxage", "max-age"):
        if cc.has(directive):
            return float(cc.seconds(directive) or 0)
    if "expires" in fields:
        expires = http_time(fields["expires"])
        date = http_time(fields["date"]) if "date" in fields else received
        return 0.0 if expires is None or date is None else max(0.0, expires - date)
    return 300.0


def _stored_entries(client: redis.Redis) -> list[Entry]:
    values = [client.get(key) for key in client.scan_iter(match="cl:1:*:e:*", count=1000)]
    return [Entry.decode(value) for value in values if isinstance(value, bytes)]


@settings(FUZZ, max_examples=300)
@given(reply=origin_replies(), head=st.booleans())
def test_origin_answers_pass_intact_and_are_cached_only_when_they_may_be(
    app: LambdaApp, origin: EchoOrigin, redis_server: RedisServer, reply: Reply, head: bool
) -> None:
    path = f"/r/{uuid.uuid4().hex}"
    origin.script = lambda seen: reply if seen.target.startswith(path) else None
    event = build_event("GET", path)
    sent = time.time()
    first = checked(app, event)
    assert first["statusCode"] == reply.status
    if reply.status not in (204, 304):
        assert answer_body(first) == reply.body
    if head:
        head_answer = checked(app, build_event("HEAD", path))
        assert head_answer["statusCode"] == reply.status
        assert answer_body(head_answer) == b""
    second = checked(app, event)
    cached = header(second, "x-cache") in ("HIT", "STALE")
    fields = {name.lower(): value for name, value in reply.headers}
    cc = CacheControl.parse(fields.get("cache-control"))
    if cached:
        assert second["statusCode"] == reply.status
        assert answer_body(second) == (b"" if reply.status in (204, 304) else reply.body)
        assert "set-cookie" not in second.get("headers", {})
        assert not second.get("cookies")
        assert int(header(second, "age") or "0") >= 0
        # never stored: the cases RFC 9111 §3 (and this proxy's stricter rules) exclude
        assert "set-cookie" not in fields
        assert not cc.has("no-store")
        assert not cc.has("private")
        assert "*" not in (fields.get("vary") or "")
        assert reply.status in (200, 203, 300, 301, 404, 410)
        assert len(reply.body or b"") <= MAX_BODY
    if header(second, "x-cache") == "HIT":
        assert lifetime(fields, sent) > 0, "an answer without freshness was served as fresh"
    upstream = origin.count(lambda s: s.target.startswith(path))
    assert upstream == 1 if cached else upstream >= 2
    for entry in _stored_entries(redis_server.client()):
        assert "set-cookie" not in entry.headers


# -- credentials --------------------------------------------------------------------------------------------
@FUZZ
@given(directives=st.lists(st.sampled_from(DIRECTIVES), max_size=4))
def test_an_answer_to_one_user_reaches_another_only_when_marked_shareable(
    app: LambdaApp, origin: EchoOrigin, directives: list[str]
) -> None:
    path = f"/me/{uuid.uuid4().hex}"
    cache_control = ", ".join(directives)

    def per_user(seen: Seen) -> Reply | None:
        if not seen.target.startswith(path):
            return None
        body = f"account of {seen.headers.get('authorization', 'nobody')}".encode()
        return Reply(headers=[("Content-Type", "text/plain"), ("Cache-Control", cache_control)], body=body)

    origin.script = per_user
    answers = [
        checked(app, build_event("GET", path, [("Authorization", "Bearer alice")])),
        checked(app, build_event("GET", path, [("Authorization", "Bearer bob")])),
        checked(app, build_event("GET", path)),
    ]
    cc = CacheControl.parse(cache_control)
    shareable = cc.has("public") or cc.has("s-maxage") or cc.has("must-revalidate")  # RFC 9111 §3.5
    bodies = [answer_body(a) for a in answers]
    if not shareable:
        assert bodies == [b"account of Bearer alice", b"account of Bearer bob", b"account of nobody"]
    assert bodies[0] == b"account of Bearer alice"  # the first answer is always the user's own


# -- explicit regressions found by the properties ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "headers"),
    [("GET", [("Authorization", "Bearer €uro")]), ("POST", [("X-Note", "price in €")]), ("DELETE", [("X", "😀")])],
)
def test_header_values_beyond_latin_1_are_forwarded_not_a_500(
    app: LambdaApp, origin: EchoOrigin, method: str, headers: list[tuple[str, str]]
) -> None:
    """API Gateway hands over header values decoded as UTF-8; http.client only encodes latin-1, so a forwarded
    value such as "€" raised UnicodeEncodeError: an unhandled error and a 500. The origin now gets its UTF-8."""
    result = checked(app, build_event(method, "/utf8", headers))
    assert result["statusCode"] == 200
    name, value = headers[0]
    assert origin.seen[-1].headers[name.lower()].encode("latin-1") == value.encode("utf-8")


@pytest.mark.parametrize(
    "event",
    [
        {**build_event("POST", "/x"), "multiValueHeaders": {"X-€": ["1"]}},
        {**build_event("POST", "/x", event_format="http"), "headers": {" X": "1"}},
        {**build_event("DELETE", "/x"), "multiValueHeaders": {"X Y": ["1"]}},
    ],
)
def test_header_names_that_are_not_tokens_are_refused_with_a_400(app: LambdaApp, event: dict[str, Any]) -> None:
    """A header name outside RFC 9110's token characters cannot be forwarded (http.client raised on it, a 500)."""
    result = checked(app, event)
    assert result["statusCode"] == 400
    assert "header" in json.loads(result["body"])["error"]


@pytest.mark.parametrize(
    ("event", "status", "message"),
    [
        (build_event("GET", "/x", [("X-Big", "v" * 17_000)]), 431, "request headers too large"),
        (build_event("GET", "/x", [("X-A", "1\r\nX-Injected: 1")], event_format="http"), 400, "control character"),
        (build_event("GET", "/x", [("X-A", "1\nSet-Cookie: a=b")]), 400, "control character"),
    ],
)
def test_header_problems_keep_their_status_and_message(
    app: LambdaApp, origin: EchoOrigin, event: dict[str, Any], status: int, message: str
) -> None:
    """The parser's own refusals (431 for oversized headers, CR/LF injection) were swallowed into a generic
    400 "malformed event: BadEvent"."""
    result = checked(app, event)
    assert result["statusCode"] == status
    assert message in json.loads(result["body"])["error"]
    assert origin.count() == 0


@pytest.mark.parametrize(
    "event",
    [
        {**build_event("GET", "/x", event_format="http"), "rawQueryString": "a=\ud800"},
        {**build_event("GET", "/x"), "multiValueQueryStringParameters": {"\udfff": ["1"]}},
        {**build_event("GET", "/x"), "path": "/\ud800"},
        {**build_event("GET", "/x"), "multiValueHeaders": {"Authorization": ["\ud800"]}},
    ],
)
def test_lone_surrogates_in_an_event_are_refused_with_a_400(app: LambdaApp, event: dict[str, Any]) -> None:
    """JSON can carry a lone UTF-16 surrogate ("\\ud800"); no valid request has one. It raised
    UnicodeEncodeError deep in the key or the upstream call (a 500); now the event is refused."""
    result = checked(app, event)
    assert result["statusCode"] == 400


def test_a_body_over_lambdas_limit_is_a_502_and_a_binary_body_round_trips(app: LambdaApp, origin: EchoOrigin) -> None:
    blob = bytes(range(256)) * 8192  # 2 MiB of binary: above CACHE_MAX_BODY_BYTES, below the 6 MB response cap
    huge = b"x" * (7 * 1024 * 1024)
    origin.script = lambda seen: (
        Reply(headers=[("Content-Type", "application/octet-stream")], body=blob)
        if seen.target == "/blob"
        else Reply(body=huge)
        if seen.target == "/huge"
        else None
    )
    for _ in range(2):
        result = checked(app, build_event("GET", "/blob"))
        assert (result["statusCode"], result["isBase64Encoded"], header(result, "x-cache")) == (200, True, "MISS")
        assert answer_body(result) == blob
    result = checked(app, build_event("GET", "/huge"))
    assert result["statusCode"] == 502  # an upstream failure: the answer could not be returned through Lambda
    assert json.loads(result["body"])["error"].startswith("upstream failed")
