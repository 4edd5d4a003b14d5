"""The middleware every request goes through.

Every request outside `/__admin/` goes through `_fault_pipeline`: it is counted, gets the effective fault
settings for its route, then (in this order) is refused (mode error), held (mode timeout), dropped (mode
reset), delayed (latency model + `?delay_ms=`), possibly replaced by an injected error (`error_rate`),
and finally answered by its resource handler, with the configured `Cache-Control`. Admin requests are answered
directly, and not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from dataclasses import dataclass

from aiohttp import web

from stub_api import ADMIN_PREFIX
from stub_api.answers import BadRequest, Handler, answer, error_response, float_param
from stub_api.faults import MAX_LATENCY_MS, FaultError, check_cache_control
from stub_api.state import STATE

log = logging.getLogger("stub_api")
access_log = logging.getLogger("stub_api.access")


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


def _route_keys(request: web.Request) -> tuple[str, ...]:
    """The keys a `routes` override may use for this request: its exact path, then its route template."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else None
    return (request.path, canonical) if canonical and canonical != request.path else (request.path,)


@dataclass
class _Outcome:
    """The by_status key of a request: its status, or why no answer was sent."""

    key: str = "client_closed"
    latency_ms: float = 0.0


async def _fault_pipeline(request: web.Request, handler: Handler, outcome: _Outcome) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        delay_ms = float_param(request, "delay_ms", 0.0, MAX_LATENCY_MS)
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

    response = await answer(request, handler)
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
            response = await answer(request, handler)
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
