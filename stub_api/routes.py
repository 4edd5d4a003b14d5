"""The stub's resources, as aiohttp handlers: what a request outside /__admin/ gets once the fault pipeline
(stub_api.pipeline) lets it through."""

from __future__ import annotations

import secrets

from aiohttp import web

from stub_api.answers import (
    JSON_TYPE,
    BadRequest,
    NotFound,
    bytes_param,
    error_response,
    int_param,
    json_response,
    validated_response,
)
from stub_api.resources import (
    DEFAULT_PNG_SIZE,
    MAX_NAME_CHARS,
    MAX_PNG_SIZE,
    ItemStore,
    guess_age,
    padded_json,
    page_of_items,
    png_image,
)
from stub_api.state import STATE

MAX_PAGE_SIZE = 100
SESSION_COOKIE = "stub_session"


async def age_guess(request: web.Request) -> web.StreamResponse:
    name = request.query.get("name")
    if name is None:
        return error_response(422, "Missing 'name' parameter")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"query parameter 'name' is longer than {MAX_NAME_CHARS} characters")
    body = padded_json(guess_age(name), bytes_param(request))
    return validated_response(request, body, JSON_TYPE)


def path_item_id(request: web.Request, store: ItemStore) -> int:
    raw = request.match_info["id"]
    try:
        item_id = int(raw)
    except ValueError:
        raise BadRequest(f"item id must be an integer, got {raw[:40]!r}") from None
    if not store.exists(item_id):
        raise NotFound(f"item {item_id} not found (items are 1..{store.count})")
    return item_id


async def item(request: web.Request) -> web.StreamResponse:
    store = request.app[STATE].items
    current = store.get(path_item_id(request, store))
    body = padded_json(current.to_json(), bytes_param(request))
    return validated_response(request, body, JSON_TYPE, last_modified=current.updated_at)


async def item_list(request: web.Request) -> web.StreamResponse:
    store = request.app[STATE].items
    page = int_param(request, "page", 1, 1, 10**9) or 1
    size = int_param(request, "size", 20, 1, MAX_PAGE_SIZE) or 20
    obj, newest = page_of_items(store, page, size)
    body = padded_json(obj, bytes_param(request))
    return validated_response(request, body, JSON_TYPE, last_modified=newest)


async def session(request: web.Request) -> web.StreamResponse:
    previous = request.cookies.get(SESSION_COOKIE)
    token = secrets.token_hex(8)
    response = json_response({"session": token, "returning": previous is not None})
    response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="Lax", max_age=3600)
    return response


async def image(request: web.Request) -> web.StreamResponse:
    size = int_param(request, "size", DEFAULT_PNG_SIZE, 1, MAX_PNG_SIZE) or DEFAULT_PNG_SIZE
    return validated_response(request, png_image(size), "image/png")


async def echo(request: web.Request) -> web.StreamResponse:
    obj: dict[str, object] = {
        "method": request.method,
        "path": request.path,
        "query": {k: ",".join(request.query.getall(k)) for k in request.query},
        "headers": {k: ",".join(request.headers.getall(k)) for k in request.headers},
    }
    return web.Response(body=padded_json(obj, bytes_param(request)), content_type=JSON_TYPE, charset="utf-8")


async def status(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["code"]
    if not raw.isdigit() or not 200 <= int(raw) <= 599:
        raise BadRequest(f"status code must be an integer between 200 and 599, got {raw[:40]!r}")
    code = int(raw)
    if code in (204, 304):
        return web.Response(status=code)
    reason = web.Response(status=code).reason
    body = padded_json({"status": code, "message": reason}, bytes_param(request))
    return web.Response(status=code, body=body, content_type=JSON_TYPE, charset="utf-8")
