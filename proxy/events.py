"""Lambda event formats in and out: API Gateway REST (payload 1.0), HTTP API (2.0) and Function URLs (2.0)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeGuard

from proxy.http import CACHEABLE_METHODS, Headers, Request, Response
from proxy.keys import (
    InvalidTarget,
    encode_query,
    escape_decoded_path,
    normalize_path,
    normalize_query,
    parse_query,
    query_string,
    sendable_query,
)

MAX_HEADER_BYTES = 16 * 1024
_CONTROL = re.compile("[\r\n\0]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2: what a header name is made of
_TOKENS = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:,[!#$%&'*+.^_`|~0-9A-Za-z-]+)*")  # names joined with ","
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # JSON can carry a lone UTF-16 surrogate; no real request has one
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)


class BadEvent(ValueError):
    """The event is not one of the supported shapes, or carries invalid input; answered with a 4xx."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ParsedEvent(NamedTuple):
    request: Request
    version: str  # "1.0" (REST) or "2.0" (HTTP API, Function URL)


def parse_event(event: object) -> ParsedEvent:
    if not _is_map(event):
        raise BadEvent("the event is not a JSON object")
    try:
        if event.get("version") == "2.0":
            return ParsedEvent(_parse_v2(event), "2.0")
        if "httpMethod" in event:
            return ParsedEvent(_parse_v1(event), "1.0")
    except InvalidTarget as exc:
        raise BadEvent(str(exc), exc.status) from None
    except BadEvent:
        raise  # already says what is wrong, with its status (a ValueError, so before the catch-all below)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise BadEvent(f"malformed event: {type(exc).__name__}") from None
    raise BadEvent("unsupported event: expected an API Gateway (REST or HTTP API) or Function URL event")


def _parse_v1(event: Mapping[str, Any]) -> Request:
    method = _method(event.get("httpMethod"))
    headers = _headers_v1(event)
    names: list[str] = []
    values: list[str] = []
    multi = event.get("multiValueQueryStringParameters")
    single = event.get("queryStringParameters")
    if multi and _is_map(multi):
        for name, listed in multi.items():
            for value in listed or ():
                names.append(_text(name))
                values.append(_text(value))
    elif single and _is_map(single):
        for name, value in single.items():
            names.append(_text(name))
            values.append(_text(value))
    # API Gateway has decoded the parameters: encoded again, each reserved character in them is data.
    received = encode_query(names, values) if names else ()
    path = _text(event.get("path") or "/")
    if event.get("version") == "1.0":  # an HTTP API's payload 1.0: its path is decoded, like rawPath in 2.0
        path = escape_decoded_path(path)
    return Request(
        method,
        normalize_path(path),
        normalize_query(received),
        headers,
        _body(event),
        "" if method in CACHEABLE_METHODS else query_string(received),
    )


def _is_map(value: object) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or isinstance(value, Mapping)


def _parse_v2(event: Mapping[str, Any]) -> Request:
    http = event["requestContext"]["http"]
    method = _method(http.get("method"))
    single = event.get("headers") or {}
    names, values = list(single), list(single.values())
    cookies = event.get("cookies") or []
    if cookies:
        names.append("cookie")
        values.append("; ".join(_text(c) for c in cookies))
    raw_query = _text(event.get("rawQueryString") or "")
    return Request(
        method=method,
        path=normalize_path(_v2_path(event)),
        query=normalize_query(parse_query(raw_query)),
        headers=_checked_headers(names, values),
        body=_body(event),
        raw_query="" if method in CACHEABLE_METHODS else sendable_query(raw_query),
    )


def _v2_path(event: Mapping[str, Any]) -> str:
    """HTTP APIs hand over `rawPath` already percent-decoded, Function URLs as the client sent it (encoded); REST
    APIs' `path` is encoded too. A decoded path's literal "%" is escaped so the path is decoded exactly once."""
    raw = _text(event.get("rawPath") or event["requestContext"]["http"].get("path") or "/")
    domain = event["requestContext"].get("domainName")
    if isinstance(domain, str) and ".lambda-url." in domain:
        return raw
    return escape_decoded_path(raw)


def _headers_v1(event: Mapping[str, Any]) -> Headers:
    multi = event.get("multiValueHeaders")
    if multi and _is_map(multi):
        names: list[Any] = []
        values: list[Any] = []
        for name, listed in multi.items():
            for value in listed or ():
                names.append(name)
                values.append(value)
        return _checked_headers(names, values)
    single = event.get("headers") or {}
    return _checked_headers(list(single), list(single.values()))


def _checked_headers(names: list[Any], values: list[Any]) -> Headers:
    """Names must be tokens; no CR, LF or NUL anywhere; 16 KiB in all. Checked on the joined texts: one pass each."""
    try:
        joined_names, joined_values = ",".join(names), "\t".join(values)
    except TypeError:
        for text in (*names, *values):
            _text(text)  # says which is not a string
        raise
    if not (joined_names.isascii() and joined_values.isascii()):
        _text(joined_names)
        _text(joined_values)
    if (
        _CONTROL.search(joined_names)
        or _CONTROL.search(joined_values)
        or (names and not _TOKENS.fullmatch(joined_names))
    ):
        for name, value in zip(names, values, strict=True):
            if _CONTROL.search(name) or _CONTROL.search(value):
                raise BadEvent(f"header {name[:40]!r} contains a control character")
            if not _TOKEN.fullmatch(name):
                raise BadEvent(f"invalid header name {name[:40]!r}")
    if len(joined_names) + len(joined_values) - 2 * max(len(names) - 1, 0) > MAX_HEADER_BYTES:
        raise BadEvent("request headers too large", status=431)
    if not names:
        return Headers()
    return Headers.lowered(tuple(zip(joined_names.lower().split(","), values, strict=True)))


def _method(value: object) -> str:
    method = _text(value).upper()
    if not method.isalpha() or len(method) > 16:
        raise BadEvent(f"invalid HTTP method {method[:20]!r}")
    return method


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise BadEvent(f"expected a string, got {type(value).__name__}")
    if not value.isascii() and _SURROGATE.search(value):
        raise BadEvent("the event holds an unpaired UTF-16 surrogate (not valid Unicode text)")
    return value


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    text = _text(body)
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise BadEvent("body is marked isBase64Encoded but is not valid base64") from None
    return text.encode("utf-8", "surrogateescape")


def render(response: Response, version: str) -> dict[str, Any]:
    """The handler's result object for the event's format; binary bodies are base64 encoded.

    Payload 1.0 (REST API) puts each header name in exactly one of its two maps: a name with one value in
    `headers`, a name with several (two Set-Cookie, two Vary lines) in `multiValueHeaders`. API Gateway merges
    the two maps into one list (a pair present in both is kept once), while LocalStack appends a name's values
    from both: with every name in both maps, each header arrived twice through LocalStack. Disjoint maps give
    every header exactly once on both. Payload 2.0 joins repeated values with ", " and returns cookies apart."""
    headers: dict[str, str] = {}
    repeated: dict[str, list[str]] | None = None
    cookies: list[str] | None = None
    v2 = version == "2.0"
    for name, value in response.headers.items():
        if name not in headers:
            if v2 and name == "set-cookie":
                cookies = [value] if cookies is None else [*cookies, value]
                continue
            headers[name] = value
        elif v2:
            headers[name] = f"{headers[name]}, {value}"
        else:
            if repeated is None:
                repeated = {}
            repeated.setdefault(name, [headers[name]]).append(value)
    body, encoded = _encode_body(response, headers.get("content-type"), headers.get("content-encoding"))
    result: dict[str, Any] = {"statusCode": response.status, "isBase64Encoded": encoded, "body": body}
    if repeated:
        for name in repeated:
            del headers[name]
        result["multiValueHeaders"] = repeated
    result["headers"] = headers
    if cookies:
        result["cookies"] = cookies
    return result


def _encode_body(response: Response, content_type: str | None, encoding: str | None) -> tuple[str, bool]:
    if not response.body:
        return "", False
    content_type = (content_type or "").lower()
    textual = content_type.startswith(_TEXT_TYPES) or "+json" in content_type or "+xml" in content_type
    if textual and not (encoding and encoding.lower() != "identity"):
        try:
            return response.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(response.body).decode("ascii"), True
