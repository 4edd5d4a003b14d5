"""Lambda proxy results -> HTTP responses, as a REST API's Lambda proxy integration maps them.

Runs inside every execution environment (the worker renders its handler's result once, and the gateway writes the
bytes it gets), so it imports nothing beyond the standard library. A malformed result (`MalformedResult`) becomes
API Gateway's 502 {"message": "Internal server error"}.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import math
import re
from collections.abc import Iterable, Sequence

_ALLOWED_RESULT_KEYS = frozenset(
    {"statusCode", "body", "headers", "multiValueHeaders", "isBase64Encoded", "base64Encoded", "cookies"}
)
# Headers a Lambda result cannot set directly: API Gateway remaps them to X-Amzn-Remapped-<name>.
_REMAPPED = frozenset(
    {"connection", "content-length", "date", "keep-alive", "server", "trailer", "transfer-encoding", "upgrade"}
)
_MAX_JSON_DEPTH = 32


class HttpResponse:
    """Status, header fields in order, body. (A plain class: `dataclasses` would add ~10 ms to every cold start.)"""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"HttpResponse({self.status!r}, {self.headers!r}, {self.body!r})"


class MalformedResult(ValueError):
    """The Lambda result is not a valid proxy integration response (API Gateway answers 502)."""


def error_response(status: int, message: str, error_type: str | None = None) -> HttpResponse:
    """One of API Gateway's own answers: JSON {"message": ...}, with its x-amzn-ErrorType when it has one."""
    headers = [("Content-Type", "application/json")]
    if error_type is not None:
        headers.append(("x-amzn-ErrorType", error_type))
    return HttpResponse(status, headers, json.dumps({"message": message}).encode())


def render_head(headers: Sequence[tuple[str, str]]) -> bytes:
    """Header fields as they go on the wire, each line with its CRLF."""
    return "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("utf-8")


def media_type_matches(media_type: str | None, patterns: Sequence[str]) -> bool:
    """`image/png` matches `image/png`, `image/*` and `*/*` (parameters after ';' are ignored)."""
    if not media_type or not patterns:
        return False
    bare = media_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(bare, p.lower()) for p in patterns)


def as_json(result: object) -> object:
    """The result as API Gateway receives it: serialised to JSON by the Lambda runtime, then parsed.

    A result made only of dicts with string keys, lists, strings, finite numbers, booleans and None comes back as it
    went (what a proxy handler returns), so it is returned as it is and the round trip is skipped. TypeError or
    ValueError when the result cannot be serialised (the runtime's Runtime.MarshalError).
    """
    if _json_identity(result, 0):
        return result
    return json.loads(json.dumps(result))


def _json_identity(value: object, depth: int) -> bool:
    """Whether json.loads(json.dumps(value)) == value, down to the types (leaves checked inline: a proxy result's
    headers are dozens of strings)."""
    kind = type(value)
    if kind is dict:
        items: Iterable[object] = value.values()  # type: ignore[attr-defined]
        if not all(type(key) is str for key in value):  # type: ignore[attr-defined]
            return False
    elif kind is list:
        items = value  # type: ignore[assignment]
    else:
        return _json_scalar(value)
    if depth >= _MAX_JSON_DEPTH:
        return False
    for item in items:
        leaf = type(item)
        if leaf is str or leaf is int or leaf is bool or item is None:
            continue
        if not _json_identity(item, depth + 1):
            return False
    return True


def _json_scalar(value: object) -> bool:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    return kind is float and math.isfinite(value)  # type: ignore[arg-type]


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field name
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_NAMES: dict[str, tuple[str, bool]] = {}  # checked header name -> (name on the wire, is Content-Type)


def _header_value(name: object, value: object) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise MalformedResult(f"header {name!r} has a non-scalar value {value!r}")


def _header_name(name: str) -> tuple[str, bool]:
    known = _NAMES.get(name)
    if known is not None:
        return known
    if type(name) is not str or not _TOKEN.fullmatch(name):
        raise MalformedResult(f"invalid header name {name!r}")
    lowered = name.lower()
    checked = (f"X-Amzn-Remapped-{name}" if lowered in _REMAPPED else name, lowered == "content-type")
    if len(_NAMES) < 4096:  # header names repeat from one response to the next
        _NAMES[name] = checked
    return checked


def result_to_response(result: object, *, binary_media_types: Sequence[str], accept: str | None) -> HttpResponse:
    """A Lambda proxy integration result -> the HTTP response API Gateway sends; MalformedResult if invalid."""
    if type(result) is not dict:
        raise MalformedResult(f"the result is a {type(result).__name__}, not an object")
    if not result.keys() <= _ALLOWED_RESULT_KEYS:
        raise MalformedResult(f"unexpected keys {sorted(set(result) - _ALLOWED_RESULT_KEYS)}")
    status = result.get("statusCode")
    if type(status) is not int:
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        else:
            raise MalformedResult(f"statusCode must be an integer from 100 to 599, not {status!r}")
    if not 100 <= status <= 599:
        raise MalformedResult(f"statusCode must be an integer from 100 to 599, not {status!r}")
    body = result.get("body")
    if body is not None and type(body) is not str:
        raise MalformedResult(f"body must be a string or null, not {type(body).__name__}")
    encoded = result.get("base64Encoded", result.get("isBase64Encoded", False))
    if type(encoded) is not bool:
        if isinstance(encoded, str) and encoded.lower() in ("true", "false"):
            encoded = encoded.lower() == "true"
        elif encoded is None:
            encoded = False
        else:
            raise MalformedResult(f"isBase64Encoded must be a boolean, not {encoded!r}")

    headers: list[tuple[str, str]] = []
    content_type: str | None = None
    multi = result.get("multiValueHeaders")
    if multi is not None:
        if type(multi) is not dict:
            raise MalformedResult("multiValueHeaders must be an object")
        for name, values in multi.items():
            if type(values) is not list:
                raise MalformedResult(f"multiValueHeaders[{name!r}] must be a list")
            wire_name, is_type = _header_name(name)
            for value in values:
                text = _header_value(name, value)
                headers.append((wire_name, text))
                if is_type and content_type is None:
                    content_type = text
    single = result.get("headers")
    if single is not None:
        if type(single) is not dict:
            raise MalformedResult("headers must be an object")
        merged = set(headers)  # API Gateway merges both maps without duplicating a pair
        for name, value in single.items():
            wire_name, is_type = _header_name(name)
            pair = (wire_name, _header_value(name, value))
            if pair not in merged:
                headers.append(pair)
                if is_type and content_type is None:
                    content_type = pair[1]
    if headers and _BAD_VALUE.search("".join([value for _, value in headers])):
        raise MalformedResult("a header value has a line break or a NUL")
    if content_type is None:
        content_type = "application/json"
        headers.append(("Content-Type", content_type))
    try:
        payload = body.encode("utf-8") if body else b""
    except UnicodeEncodeError as exc:  # a lone surrogate: not text JSON can carry
        raise MalformedResult(f"body is not valid text: {exc}") from None
    if (
        encoded
        and body
        and (media_type_matches(content_type, binary_media_types) or media_type_matches(accept, binary_media_types))
    ):
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedResult(f"body is not valid base64: {exc}") from exc
    return HttpResponse(status, headers, payload)
