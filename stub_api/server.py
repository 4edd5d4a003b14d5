"""The stub HTTP server (aiohttp): resources, the fault pipeline, stats and the admin API.

Every request outside `/__admin/` goes through `_fault_pipeline`: it is counted, gets the effective fault
settings for its route, then (in this order) is refused (mode error), held (mode timeout), dropped (mode
reset), delayed (latency model + `?delay_ms=`), possibly replaced by an injected error (`error_rate`),
and finally answered by its resource handler, with the configured `Cache-Control`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import signal
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources as importlib_resources
from typing import Any

from aiohttp import web

from stub_api.config import StubConfig
from stub_api.faults import MAX_LATENCY_MS, FaultError, FaultState, check_cache_control
from stub_api.resources import (
    DEFAULT_PNG_SIZE,
    MAX_BODY_BYTES,
    MAX_NAME_CHARS,
    MAX_PNG_SIZE,
    ItemStore,
    guess_age,
    http_date,
    json_bytes,
    not_modified,
    padded_json,
    page_of_items,
    png_image,
    strong_etag,
)

log = logging.getLogger("stub_api")
access_log = logging.getLogger("stub_api.access")

ADMIN_PREFIX = "/__admin"
MAX_DISTINCT_PATHS = 10_000
OTHER_PATHS = "(other)"
MAX_PAGE_SIZE = 100
SESSION_COOKIE = "stub_session"
JSON_TYPE = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(Exception):
    """Bad input from the client: answered with 400 and {"error": message}."""


class NotFound(Exception):
    """No such resource: answered with 404 and {"error": message}."""


# ---------------------------------------------------------------------------------------------- state


@dataclass
class Stats:
    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    since: float = field(default_factory=time.time)

    def begin(self, path: str) -> None:
        self.requests += 1
        key = path if path in self.by_path or len(self.by_path) < MAX_DISTINCT_PATHS else OTHER_PATHS
        self.by_path[key] = self.by_path.get(key, 0) + 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self, outcome: str) -> None:
        self.by_status[outcome] = self.by_status.get(outcome, 0) + 1
        self.in_flight -= 1

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": dict(self.by_status),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "since": round(self.since, 3),
        }


class StubState:
    """Everything mutable: faults, the seeded random source, item versions, stats."""

    def __init__(self, config: StubConfig) -> None:
        self.config = config
        self.items = ItemStore(config.items)
        self.faults = FaultState()
        self.rng = random.Random()
        self.stats = Stats()
        self.stopping = asyncio.Event()  # set on SIGTERM: held (timeout-mode) requests let go at once
        self._start_patch = dict(config.start_patch)
        self._start_patch.setdefault("seed", random.SystemRandom().randrange(1, 2**31))
        self.reset()

    def reset(self) -> None:
        """As if freshly started: start-state faults (outage windows re-anchored to now), version-1 items,
        zeroed stats, and the random source re-seeded. Requests still in flight stay in `in_flight` until
        they end, but their outcome is not counted in the new stats."""
        in_flight = self.stats.in_flight
        self.faults = FaultState().apply(self._start_patch, now_mono=time.monotonic(), now_wall=time.time())
        self.rng.seed(self.faults.seed)
        self.items.reset()
        self.stats = Stats(in_flight=in_flight)

    def apply_faults(self, patch: object) -> None:
        new = self.faults.apply(patch, now_mono=time.monotonic(), now_wall=time.time())
        if isinstance(patch, dict) and "seed" in patch:
            self.rng.seed(new.seed)
        self.faults = new


STATE = web.AppKey("stub_state", StubState)


# ---------------------------------------------------------------------------------------------- helpers


def json_response(obj: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json_bytes(obj), status=status, content_type=JSON_TYPE, charset="utf-8", headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": message}, status=status, headers=headers)


def _int_param(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
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


def _float_param(request: web.Request, name: str, lo: float, hi: float) -> float:
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


def _bytes_param(request: web.Request) -> int | None:
    return _int_param(request, "bytes", None, 0, MAX_BODY_BYTES)


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


def _drop_connection(request: web.Request, *, rst: bool) -> None:
    """Close the client's connection without an answer; with `rst`, as a TCP reset (SO_LINGER 0)."""
    transport = request.transport
    if transport is None:
        return
    if rst:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _await_cancellation() -> None:
    """After dropping the connection aiohttp cancels this handler; never linger more than a few seconds."""
    await asyncio.sleep(5.0)
    raise ConnectionAbortedError("connection dropped on purpose")


# ---------------------------------------------------------------------------------------------- resources


async def age_guess(request: web.Request) -> web.StreamResponse:
    name = request.query.get("name")
    if name is None:
        return error_response(422, "Missing 'name' parameter")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"query parameter 'name' is longer than {MAX_NAME_CHARS} characters")
    body = padded_json(guess_age(name), _bytes_param(request))
    return validated_response(request, body, JSON_TYPE)


def _item_id(request: web.Request, store: ItemStore) -> int:
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
    current = store.get(_item_id(request, store))
    body = padded_json(current.to_json(), _bytes_param(request))
    return validated_response(request, body, JSON_TYPE, last_modified=current.updated_at)


async def item_list(request: web.Request) -> web.StreamResponse:
    store = request.app[STATE].items
    page = _int_param(request, "page", 1, 1, 10**9) or 1
    size = _int_param(request, "size", 20, 1, MAX_PAGE_SIZE) or 20
    obj, newest = page_of_items(store, page, size)
    body = padded_json(obj, _bytes_param(request))
    return validated_response(request, body, JSON_TYPE, last_modified=newest)


async def session(request: web.Request) -> web.StreamResponse:
    previous = request.cookies.get(SESSION_COOKIE)
    token = secrets.token_hex(8)
    response = json_response({"session": token, "returning": previous is not None})
    response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="Lax", max_age=3600)
    return response


async def image(request: web.Request) -> web.StreamResponse:
    size = _int_param(request, "size", DEFAULT_PNG_SIZE, 1, MAX_PNG_SIZE) or DEFAULT_PNG_SIZE
    return validated_response(request, png_image(size), "image/png")


async def echo(request: web.Request) -> web.StreamResponse:
    obj: dict[str, object] = {
        "method": request.method,
        "path": request.path,
        "query": {k: ",".join(request.query.getall(k)) for k in request.query},
        "headers": {k: ",".join(request.headers.getall(k)) for k in request.headers},
    }
    return web.Response(body=padded_json(obj, _bytes_param(request)), content_type=JSON_TYPE, charset="utf-8")


async def status(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["code"]
    if not raw.isdigit() or not 200 <= int(raw) <= 599:
        raise BadRequest(f"status code must be an integer between 200 and 599, got {raw[:40]!r}")
    code = int(raw)
    if code in (204, 304):
        return web.Response(status=code)
    reason = web.Response(status=code).reason
    body = padded_json({"status": code, "message": reason}, _bytes_param(request))
    return web.Response(status=code, body=body, content_type=JSON_TYPE, charset="utf-8")


# ---------------------------------------------------------------------------------------------- admin


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


async def _json_body(request: web.Request, *, optional: bool = False) -> Any:
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


async def admin_post_faults(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    patch = await _json_body(request)
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
    return json_response(store.get(_item_id(request, store)).to_json())


async def admin_bump_item(request: web.Request) -> web.StreamResponse:
    store = request.app[STATE].items
    item_id = _item_id(request, store)
    body = await _json_body(request, optional=True)
    if body != {}:
        raise BadRequest("POST /__admin/items/{id} takes no body (or an empty JSON object); it bumps the version")
    return json_response(store.bump(item_id, datetime.now(UTC)).to_json())


# ---------------------------------------------------------------------------------------------- pipeline


def _route_keys(request: web.Request) -> tuple[str, ...]:
    """The keys a `routes` override may use for this request: its exact path, then its route template."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else None
    return (request.path, canonical) if canonical and canonical != request.path else (request.path,)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
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


@dataclass
class _Outcome:
    """The by_status key of a request: its status, or why no answer was sent."""

    key: str = "client_closed"
    latency_ms: float = 0.0


async def _fault_pipeline(request: web.Request, handler: Handler, outcome: _Outcome) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        delay_ms = _float_param(request, "delay_ms", 0.0, MAX_LATENCY_MS)
        cc_query = request.query.get("cc")
        cc_override = None if cc_query is None else check_cache_control(cc_query, "query parameter 'cc'")
    except (BadRequest, FaultError) as exc:
        return error_response(400, str(exc))
    effective = state.faults.effective(_route_keys(request), time.monotonic())

    if effective.mode == "error":
        return error_response(
            503,
            "service unavailable (the stub is in mode 'error')",
            headers={"Retry-After": str(effective.retry_after_s)},
        )
    if effective.mode == "timeout":
        outcome.key = "timeout"
        # Cancelled as soon as the client gives up; otherwise wait for the cap (or the server stopping).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.stopping.wait(), effective.timeout_cap_s)
        _drop_connection(request, rst=False)
        await _await_cancellation()
    if effective.mode == "reset":
        outcome.key = "reset"
        _drop_connection(request, rst=True)
        await _await_cancellation()

    latency_ms = effective.latency.sample_ms(state.rng) + delay_ms
    fail = state.rng.random() < effective.error_rate
    outcome.latency_ms = latency_ms
    if latency_ms > 0:
        await asyncio.sleep(latency_ms / 1000.0)
    latency_header = {"X-Stub-Latency-Ms": f"{latency_ms:.1f}"}
    if fail:
        headers = dict(latency_header)
        if effective.error_status in (429, 503):
            headers["Retry-After"] = str(effective.retry_after_s)
        return error_response(
            effective.error_status, f"injected error (error_rate {effective.error_rate:g})", headers=headers
        )

    response = await _answer(request, handler)
    response.headers.update(latency_header)
    cache_control = effective.cache_control if cc_override is None else cc_override
    if cache_control and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = cache_control
    return response


@web.middleware
async def stub_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        try:
            response = await _answer(request, handler)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("admin request %s %s failed", request.method, path)
            return error_response(500, "internal error in the stub (see its log)")
        if access_log.isEnabledFor(logging.INFO) and request.method != "GET":
            access_log.info('%s "%s %s" %s admin', request.remote, request.method, request.path_qs, response.status)
        return response

    state = request.app[STATE]
    stats = state.stats
    stats.begin(path)
    outcome = _Outcome()
    started = time.monotonic()
    try:
        response = await _fault_pipeline(request, handler, outcome)
        outcome.key = str(response.status)
        return response
    except web.HTTPException as exc:  # redirects and the like pass through
        outcome.key = str(exc.status)
        raise
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("request %s %s failed", request.method, path)
        outcome.key = "500"
        return error_response(500, "internal error in the stub (see its log)")
    finally:
        if state.stats is stats:
            stats.end(outcome.key)
        else:  # begun before a reset: still leaves the in-flight count, not counted otherwise
            state.stats.in_flight -= 1
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                '%s "%s %s" %s %.1fms (latency %.1fms)',
                request.remote,
                request.method,
                request.path_qs,
                outcome.key,
                (time.monotonic() - started) * 1000,
                outcome.latency_ms,
            )


# ---------------------------------------------------------------------------------------------- app


def create_app(config: StubConfig) -> web.Application:
    app = web.Application(middlewares=[stub_middleware], client_max_size=1024 * 1024)
    app[STATE] = StubState(config)
    app.router.add_get("/", age_guess)
    app.router.add_get("/items", item_list)
    app.router.add_get("/items/{id}", item)
    app.router.add_get("/session", session)
    app.router.add_get("/image.png", image)
    app.router.add_get("/echo", echo)
    app.router.add_get("/status/{code}", status)
    app.router.add_get(ADMIN_PREFIX, admin_redirect)
    app.router.add_get(f"{ADMIN_PREFIX}/", admin_page)
    app.router.add_get(f"{ADMIN_PREFIX}/health", admin_health)
    app.router.add_get(f"{ADMIN_PREFIX}/openapi.json", admin_openapi)
    app.router.add_get(f"{ADMIN_PREFIX}/stats", admin_stats)
    app.router.add_get(f"{ADMIN_PREFIX}/faults", admin_get_faults)
    app.router.add_post(f"{ADMIN_PREFIX}/faults", admin_post_faults)
    app.router.add_post(f"{ADMIN_PREFIX}/reset", admin_reset)
    app.router.add_get(f"{ADMIN_PREFIX}/items/{{id}}", admin_get_item)
    app.router.add_post(f"{ADMIN_PREFIX}/items/{{id}}", admin_bump_item)
    return app


async def serve(config: StubConfig) -> None:
    """Listen until SIGTERM or SIGINT. Prints one line with the URL once the port is open."""
    app = create_app(config)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, backlog=1024)
        await site.start()
        port = config.port
        for address in runner.addresses:
            port = int(address[1])
        seed = app[STATE].faults.seed
        print(
            f"stub_api listening on http://{config.host}:{port} (seed {seed}; control page "
            f"http://{config.host}:{port}{ADMIN_PREFIX}/)",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        app[STATE].stopping.set()
    finally:
        await runner.cleanup()


def run(config: StubConfig) -> int:
    """Run the server in the foreground; returns the exit status. Raises OSError when it cannot listen."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s")
    if config.access_log:
        access_log.setLevel(logging.INFO)
    asyncio.run(serve(config))
    return 0
