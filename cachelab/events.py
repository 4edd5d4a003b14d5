"""Builders of the Lambda events API Gateway (REST payload 1.0, HTTP API 2.0) and Function URLs send."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

EVENT_FORMATS = ("rest", "http", "url")


def build_event(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    event_format: str = "rest",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An event for `method target` (target = path with an optional query), shaped as `event_format` sends it."""
    parts = urlsplit(target)
    path = parts.path or "/"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    headers = headers or []
    request_id = str(uuid.uuid4())
    now_ms = int(time.time() * 1000)
    is_binary = bool(body) and not _is_utf8(body)
    body_text = base64.b64encode(body).decode() if is_binary else body.decode() if body else None
    if event_format == "rest":
        multi_q: dict[str, list[str]] = {}
        for name, value in pairs:
            multi_q.setdefault(name, []).append(value)
        multi_h: dict[str, list[str]] = {}
        for name, value in headers:
            multi_h.setdefault(name, []).append(value)
        return {
            "resource": "/{proxy+}" if path != "/" else "/",
            "path": path,
            "httpMethod": method.upper(),
            "headers": {name: values[-1] for name, values in multi_h.items()} or None,
            "multiValueHeaders": multi_h or None,
            "queryStringParameters": {name: values[-1] for name, values in multi_q.items()} or None,
            "multiValueQueryStringParameters": multi_q or None,
            "pathParameters": {"proxy": path.lstrip("/")} if path != "/" else None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/{proxy+}" if path != "/" else "/",
                "httpMethod": method.upper(),
                "path": f"/Prod{path}",
                "stage": "Prod",
                "requestId": request_id,
                "requestTimeEpoch": now_ms,
                "identity": {"sourceIp": source_ip, "userAgent": dict(headers).get("User-Agent", "cachelab")},
                "protocol": "HTTP/1.1",
            },
            "body": body_text,
            "isBase64Encoded": is_binary,
        }
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
