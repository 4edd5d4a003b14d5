"""HTTP request -> API Gateway REST proxy event (payload 1.0), and Lambda result -> HTTP response.

The event has exactly the shape of SAM CLI's event model (`samcli.local.events.api_event`, what `sam local
start-api` sends), built without its Flask request plumbing or per-request objects; the unit tests hold the two
equal. The result is checked the way a REST API's Lambda proxy
integration checks it: anything malformed becomes 502 {"message": "Internal server error"}.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request and Lambda's synchronous response limits
_ALLOWED_RESULT_KEYS = frozenset(
    {"statusCode", "body", "headers", "multiValueHeaders", "isBase64Encoded", "base64Encoded", "cookies"}
)
# Headers a Lambda result cannot set directly: API Gateway remaps them to X-Amzn-Remapped-<name>.
_REMAPPED = frozenset(
    {"connection", "content-length", "date", "keep-alive", "server", "trailer", "transfer-encoding", "upgrade"}
)


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str  # as the client sent it (percent-encoded), without the query string
    query: str  # raw query string, without '?'
    headers: list[tuple[str, str]]  # as received, in order, names with their original case
    body: bytes
    client_ip: str
    protocol: str  # e.g. "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """The last value of header `name` (case-insensitive), or None."""
        lowered = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == lowered:
                found = value
        return found


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedResult(ValueError):
    """The Lambda result is not a valid proxy integration response (API Gateway answers 502)."""


def error_response(status: int, message: str, error_type: str | None = None) -> HttpResponse:
    headers = [("Content-Type", "application/json")]
    if error_type is not None:
        headers.append(("x-amzn-ErrorType", error_type))
    return HttpResponse(status, headers, json.dumps({"message": message}).encode())


class _Clock:
    """requestTime is formatted once per second, not once per request."""

    def __init__(self) -> None:
        self._second = -1
        self._request_time = ""
        self._http_date = ""

    def now(self) -> tuple[int, str, str]:
        now = time.time()
        second = int(now)
        if second != self._second:
            tm = time.gmtime(second)
            self._request_time = time.strftime("%d/%b/%Y:%H:%M:%S +0000", tm)
            self._http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", tm)
            self._second = second
        return int(now * 1000), self._request_time, self._http_date


CLOCK = _Clock()


def media_type_matches(media_type: str | None, patterns: Sequence[str]) -> bool:
    """`image/png` matches `image/png`, `image/*` and `*/*` (parameters after ';' are ignored)."""
    if not media_type or not patterns:
        return False
    bare = media_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(bare, p.lower()) for p in patterns)


def build_event(
    request: HttpRequest,
    *,
    resource: str,
    path_parameters: dict[str, str],
    stage: str,
    binary_media_types: Sequence[str],
    request_id: str,
    server_port: int,
    request_time_epoch: int,
    request_time: str,
) -> dict[str, Any]:
    """The REST API Lambda proxy event (payload 1.0) for `request`."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    lowered = {name.lower(): name for name in headers}
    forwarded = lowered.get("x-forwarded-for")
    if forwarded is not None:
        chain = f"{headers[forwarded]}, {request.client_ip}"
        headers[forwarded] = chain
        multi_headers[forwarded] = [chain]
    else:
        headers["X-Forwarded-For"] = request.client_ip
        multi_headers["X-Forwarded-For"] = [request.client_ip]
    for name, value in (("X-Forwarded-Port", str(server_port)), ("X-Forwarded-Proto", "http")):
        if name.lower() not in lowered:
            headers[name] = value
            multi_headers[name] = [value]
    if "x-amzn-trace-id" not in lowered:
        trace = f"Root=1-{request_time_epoch // 1000:08x}-{request_id.replace('-', '')[:24]}"
        headers["X-Amzn-Trace-Id"] = trace
        multi_headers["X-Amzn-Trace-Id"] = [trace]

    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    if request.query:
        for key, value in parse_qsl(request.query, keep_blank_values=True):
            query[key] = value
            multi_query.setdefault(key, []).append(value)

    raw = request.body
    content_type = headers.get(lowered["content-type"]) if "content-type" in lowered else None
    is_base64 = False
    body: str | None = None
    if raw:
        if media_type_matches(content_type, binary_media_types):
            is_base64 = True
        else:
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:
                is_base64 = True
        if is_base64:
            body = base64.b64encode(raw).decode("ascii")

    user_agent = headers.get(lowered["user-agent"]) if "user-agent" in lowered else None
    host = headers.get(lowered["host"]) if "host" in lowered else None
    # Field for field what SAM CLI's ApiGatewayLambdaEvent(api_type=Route.API).to_dict() produces (the unit tests
    # check it against that model); written out as a literal because it is on every request's path.
    return {
        "httpMethod": request.method,
        "body": body or None,
        "resource": resource,
        "requestContext": {
            "resourceId": "123456",
            "apiId": "1234567890",
            "resourcePath": resource,
            "httpMethod": request.method,
            "requestId": request_id,
            "accountId": "123456789012",
            "stage": stage,
            "identity": {
                "apiKey": None,
                "userArn": None,
                "cognitoAuthenticationType": None,
                "caller": None,
                "userAgent": user_agent,
                "user": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationProvider": None,
                "sourceIp": request.client_ip,
                "accountId": None,
            },
            "extendedRequestId": request_id,
            "path": f"/{stage}{request.path}",
            "protocol": request.protocol,
            "domainName": host or f"127.0.0.1:{server_port}",
            "requestTimeEpoch": request_time_epoch,
            "requestTime": request_time,
        },
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "path": request.path,
        "isBase64Encoded": is_base64,
    }


def new_request_id() -> str:
    """A random (version 4) UUID string, as API Gateway's request ids are; cheaper than str(uuid.uuid4())."""
    h = bytearray(os.urandom(16))
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


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
        for name, value in single.items():
            wire_name, is_type = _header_name(name)
            pair = (wire_name, _header_value(name, value))
            if not multi or pair not in headers:  # API Gateway merges both maps without duplicating a pair
                headers.append(pair)
                if is_type and content_type is None:
                    content_type = pair[1]
    if headers and _BAD_VALUE.search("".join([value for _, value in headers])):
        raise MalformedResult("a header value has a line break or a NUL")
    if content_type is None:
        content_type = "application/json"
        headers.append(("Content-Type", content_type))
    payload = body.encode("utf-8") if body else b""
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
