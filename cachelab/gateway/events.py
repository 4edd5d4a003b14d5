"""HTTP request -> API Gateway REST proxy event (payload 1.0): the one builder, used by the gateway and by
`cachelab invoke --event-format rest`.

The event has exactly the shape of SAM CLI's event model (`samcli.local.events.api_event`, what `sam local
start-api` sends), built without its Flask request plumbing or per-request objects; the unit tests hold the two
equal. (The way back, result -> HTTP response, is `cachelab.gateway.results`.)
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cachelab.gateway.results import media_type_matches


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


def split_target(target: str) -> tuple[str, str]:
    """The path of a request target as the client sent it (still percent-encoded, as a REST API's `path` is) and
    its raw query. A fragment is not part of a request target (RFC 9110 §7.1): one sent anyway is dropped. The
    absolute form (`http://host/path`) gives its path. ValueError for any other form (`*`, authority form)."""
    target = target.partition("#")[0]
    if not target.startswith("/"):
        if not target.startswith(("http://", "https://")):
            raise ValueError("malformed request target")
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    raw_path, _, query = target.partition("?")
    return raw_path, query


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
