"""Builders of the Lambda events API Gateway (REST payload 1.0, HTTP API 2.0) and Function URLs send.

A REST event is built by the local gateway's own builder (`cachelab.gateway.events.build_event`), so `cachelab
invoke --event-format rest` sends what `cachelab gateway` sends for the same request; its defaults are those of
sam/template.yaml (tests hold the two equal).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from cachelab.gateway import events as rest

EVENT_FORMATS = ("rest", "http", "url")
STAGE = "api"  # sam/template.yaml: the StageName parameter's default
BINARY_MEDIA_TYPES = ("*/*",)  # sam/template.yaml: the API's BinaryMediaTypes
SERVER_PORT = 3000  # `cachelab gateway`'s default port (X-Forwarded-Port, and the domain name without a Host)


def build_event(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    event_format: str = "rest",
    source_ip: str = "127.0.0.1",
    stage: str = STAGE,
    binary_media_types: Sequence[str] = BINARY_MEDIA_TYPES,
    server_port: int = SERVER_PORT,
) -> dict[str, Any]:
    """An event for `method target` (target = path with an optional query), shaped as `event_format` sends it.

    `stage`, `binary_media_types` and `server_port` shape the REST event only (the API's, as the gateway has them).
    """
    headers = headers or []
    if event_format == "rest":  # what the gateway sends on an API whose routes are `/` and `/{proxy+}`
        path, raw_query = rest.split_target(target)
        request = rest.HttpRequest(method.upper(), path, raw_query, headers, body, source_ip, "HTTP/1.1")
        resource, path_parameters = ("/", {}) if path == "/" else ("/{proxy+}", {"proxy": unquote(path[1:])})
        epoch_ms, request_time, _date = rest.CLOCK.now()
        return rest.build_event(
            request, resource=resource, path_parameters=path_parameters, stage=stage,
            binary_media_types=binary_media_types, request_id=rest.new_request_id(), server_port=server_port,
            request_time_epoch=epoch_ms, request_time=request_time,
        )  # fmt: skip
    parts = urlsplit(target)
    path = parts.path or "/"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    request_id = str(uuid.uuid4())
    now_ms = int(time.time() * 1000)
    is_binary = bool(body) and not _is_utf8(body)
    body_text = base64.b64encode(body).decode() if is_binary else body.decode() if body else None
    if event_format not in EVENT_FORMATS:
        raise ValueError(f"unknown event format {event_format!r}: choose one of {', '.join(EVENT_FORMATS)}")
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        if name.lower() == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    domain = (
        "abcdefgh.lambda-url.us-east-1.on.aws"
        if event_format == "url"
        else "abcdefgh.execute-api.us-east-1.amazonaws.com"
    )
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.query,
        "headers": joined,
        "requestContext": {
            "domainName": domain,
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", "cachelab"),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": now_ms,
        },
        "isBase64Encoded": is_binary,
    }
    if cookies:
        event["cookies"] = cookies
    if pairs:
        query: dict[str, str] = {}
        for name, value in pairs:
            query[name] = f"{query[name]},{value}" if name in query else value
        event["queryStringParameters"] = query
    if body_text is not None:
        event["body"] = body_text
    return event


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
