"""Lambda event formats in and out: API Gateway REST (payload 1.0), HTTP API (2.0) and Function URLs (2.0)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.http import Headers, Request, Response
from proxy.keys import InvalidTarget, normalize_path, normalize_query, parse_query

MAX_HEADER_BYTES = 16 * 1024
_CONTROL = re.compile("[\r\n\0]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2: what a header name is made of
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


@dataclass(frozen=True)
class ParsedEvent:
    request: Request
    version: str  # "1.0" (REST) or "2.0" (HTTP API, Function URL)


def parse_event(event: object) -> ParsedEvent:
    if not isinstance(event, Mapping):
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
    pairs: list[tuple[str, str]] = []
    multi = event.get("multiValueQueryStringParameters")
    single = event.get("queryStringParameters")
    if isinstance(multi, Mapping):
        for name, values in multi.items():
            for value in values or []:
                pairs.append((_text(name), _text(value)))
    elif isinstance(single, Mapping):
        pairs.extend((_text(k), _text(v)) for k, v in single.items())
    return Request(
        method=method,
        path=normalize_path(_text(event.get("path") or "/")),
        query=normalize_query(pairs),
        headers=headers,
        body=_body(event),
    )


def _parse_v2(event: Mapping[str, Any]) -> Request:
    http = event["requestContext"]["http"]
    method = _method(http.get("method"))
    items: list[tuple[str, str]] = []
    for name, value in (event.get("headers") or {}).items():
        items.append((_text(name), _text(value)))
    cookies = event.get("cookies") or []
    if cookies:
        items.append(("cookie", "; ".join(_text(c) for c in cookies)))
    return Request(
        method=method,
        path=normalize_path(_v2_path(event)),
        query=normalize_query(parse_query(_text(event.get("rawQueryString") or ""))),
        headers=_checked_headers(items),
        body=_body(event),
    )


def _v2_path(event: Mapping[str, Any]) -> str:
    """HTTP APIs hand over `rawPath` already percent-decoded, Function URLs as the client sent it (encoded); REST
    APIs' `path` is encoded too. A decoded path's literal "%" is escaped so the path is decoded exactly once."""
    raw = _text(event.get("rawPath") or event["requestContext"]["http"].get("path") or "/")
    domain = event["requestContext"].get("domainName")
    if isinstance(domain, str) and ".lambda-url." in domain:
        return raw
    return raw.replace("%", "%25")


def _headers_v1(event: Mapping[str, Any]) -> Headers:
    items: list[tuple[str, str]] = []
    multi = event.get("multiValueHeaders")
    if isinstance(multi, Mapping) and multi:
        for name, values in multi.items():
            items.extend((_text(name), _text(v)) for v in values or [])
    else:
        items.extend((_text(k), _text(v)) for k, v in (event.get("headers") or {}).items())
    return _checked_headers(items)


def _checked_headers(items: list[tuple[str, str]]) -> Headers:
    size = 0
    for name, value in items:
        size += len(name) + len(value)
        if _CONTROL.search(name) or _CONTROL.search(value):
            raise BadEvent(f"header {name[:40]!r} contains a control character")
        if not _TOKEN.fullmatch(name):
            raise BadEvent(f"invalid header name {name[:40]!r}")
    if size > MAX_HEADER_BYTES:
        raise BadEvent("request headers too large", status=431)
    return Headers(items)


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
    every header exactly once on both."""
    body, encoded = _encode_body(response)
    result: dict[str, Any] = {"statusCode": response.status, "isBase64Encoded": encoded, "body": body}
    if version == "2.0":
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in response.headers.items():
            if name == "set-cookie":
                cookies.append(value)
            else:
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        result["headers"] = headers
        if cookies:
            result["cookies"] = cookies
        return result
    multi: dict[str, list[str]] = {}
    for name, value in response.headers.items():
        multi.setdefault(name, []).append(value)
    result["headers"] = {name: values[0] for name, values in multi.items() if len(values) == 1}
    repeated = {name: values for name, values in multi.items() if len(values) > 1}
    if repeated:
        result["multiValueHeaders"] = repeated
    return result


def _encode_body(response: Response) -> tuple[str, bool]:
    if not response.body:
        return "", False
    content_type = (response.headers.get("content-type") or "").lower()
    textual = content_type.startswith(_TEXT_TYPES) or "+json" in content_type or "+xml" in content_type
    encoding = response.headers.get("content-encoding")
    if textual and not (encoding and encoding.lower() != "identity"):
        try:
            return response.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(response.body).decode("ascii"), True
