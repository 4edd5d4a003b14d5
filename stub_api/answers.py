"""Reading requests and writing answers: query parameters and JSON bodies checked (bad input is `BadRequest`, a
400), JSON and error answers, conditional (ETag / Last-Modified) answers, and handler errors turned into JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from stub_api.resources import MAX_BODY_BYTES, http_date, json_bytes, not_modified, strong_etag

JSON_TYPE = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(Exception):
    """Bad input from the client: answered with 400 and {"error": message}."""


class NotFound(Exception):
    """No such resource: answered with 404 and {"error": message}."""


def json_response(obj: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json_bytes(obj), status=status, content_type=JSON_TYPE, charset="utf-8", headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": message}, status=status, headers=headers)


def int_param(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"query parameter {name!r} must be between {lo} and {hi}, got {value}")
    return value


def float_param(request: web.Request, name: str, lo: float, hi: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be a number, got {raw[:40]!r}") from None
    if not lo <= value <= hi:  # also false for NaN
        raise BadRequest(f"query parameter {name!r} must be between {lo:g} and {hi:g}, got {raw[:40]!r}")
    return value


def bytes_param(request: web.Request) -> int | None:
    return int_param(request, "bytes", None, 0, MAX_BODY_BYTES)


def validated_response(
    request: web.Request, body: bytes, content_type: str, *, last_modified: datetime | None = None
) -> web.Response:
    """A 200 with a strong ETag (and Last-Modified), or a body-less 304 when the client's copy is current."""
    etag = strong_etag(body)
    headers = {"ETag": etag}
    if last_modified is not None:
        headers["Last-Modified"] = http_date(last_modified)
    if request.method in ("GET", "HEAD") and not_modified(
        etag, last_modified, request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since")
    ):
        return web.Response(status=304, headers=headers)
    response = web.Response(body=body, headers=headers)
    response.content_type = content_type
    if content_type == JSON_TYPE:
        response.charset = "utf-8"
    return response


async def json_body(request: web.Request, *, optional: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise BadRequest("request body is empty; send a JSON object")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None


async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response; HTTP exceptions and bad input become JSON errors."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return error_response(400, str(exc))
    except NotFound as exc:
        return error_response(404, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        messages = {
            404: f"no such resource: {request.path}",
            405: f"method {request.method} is not allowed on {request.path}",
        }
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, messages.get(exc.status, exc.reason or "error"), headers=headers)
