"""The admin API's handlers (/__admin/...): the control page, health, the OpenAPI document, stats, the fault state,
reset, and item versions. The routes are the stub's contract (stub_api.client is their client)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from importlib import resources as importlib_resources

from aiohttp import web

from stub_api import ADMIN_PREFIX
from stub_api.answers import JSON_TYPE, BadRequest, json_body, json_response
from stub_api.faults import FaultError
from stub_api.routes import path_item_id
from stub_api.state import STATE


async def admin_page(request: web.Request) -> web.StreamResponse:
    html = importlib_resources.files("stub_api").joinpath("static/index.html").read_bytes()
    return web.Response(body=html, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})


async def admin_redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{ADMIN_PREFIX}/")


async def admin_health(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})


async def admin_openapi(request: web.Request) -> web.StreamResponse:
    document = importlib_resources.files("stub_api").joinpath("openapi.json").read_bytes()
    return web.Response(body=document, content_type=JSON_TYPE, charset="utf-8")


async def admin_stats(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[STATE].stats.to_json(), headers={"Cache-Control": "no-store"})


async def admin_get_faults(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return json_response(state.faults.to_json(time.monotonic()), headers={"Cache-Control": "no-store"})


async def admin_post_faults(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    patch = await json_body(request)
    try:
        state.apply_faults(patch)
    except FaultError as exc:
        raise BadRequest(str(exc)) from None
    return json_response(state.faults.to_json(time.monotonic()))


async def admin_reset(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.reset()
    return json_response(
        {"status": "reset", "faults": state.faults.to_json(time.monotonic()), "stats": state.stats.to_json()}
    )


async def admin_get_item(request: web.Request) -> web.StreamResponse:
    store = request.app[STATE].items
    return json_response(store.get(path_item_id(request, store)).to_json())


async def admin_bump_item(request: web.Request) -> web.StreamResponse:
    store = request.app[STATE].items
    item_id = path_item_id(request, store)
    body = await json_body(request, optional=True)
    if body != {}:
        raise BadRequest("POST /__admin/items/{id} takes no body (or an empty JSON object); it bumps the version")
    return json_response(store.bump(item_id, datetime.now(UTC)).to_json())
