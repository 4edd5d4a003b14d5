"""The Lambda entry point: thin. Everything long-lived (Redis client, HTTP pool, breaker) is built once per
execution environment: during the init phase when running in Lambda, else on the first call."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

from proxy import answers
from proxy.config import Settings
from proxy.events import BadEvent, parse_event, render
from proxy.keys import InvalidTarget
from proxy.observability import RequestLog
from proxy.outcome import CacheStatus, Outcome
from proxy.secrets import read_auth_token
from proxy.service import API_GATEWAY_TIMEOUT_SECONDS, CachingProxy
from proxy.store import RedisStore
from proxy.upstream import Urllib3Upstream


class App(NamedTuple):
    settings: Settings
    proxy: CachingProxy
    log: RequestLog


def build_app(env: Mapping[str, str] | None = None) -> App:
    """Read the configuration (ConfigError names a bad variable) and create the clients, once."""
    settings = Settings.from_env(os.environ if env is None else env)
    log = RequestLog(level=settings.log_level)
    password = read_auth_token(settings.redis_auth_secret_arn) if settings.redis_auth_secret_arn else None
    store = RedisStore.from_settings(settings, password)
    problem = store.diagnose()
    if problem is not None:  # never fatal: the answers bypass the cache until Redis works (a secret may rotate)
        log.event(
            "WARNING" if problem.kind == "unreachable" else "ERROR",
            f"redis {problem.message} at init; answering without the cache (X-Cache: BYPASS) until it works",
            redis_problem=problem.kind,
        )
    upstream = Urllib3Upstream(settings.upstream_url)
    return App(settings, CachingProxy(store, upstream, settings), log)


_app: App | None = None


def get_app() -> App:
    global _app
    if _app is None:
        _app = build_app()
    return _app


def lambda_handler(event: object, context: Any = None) -> dict[str, Any]:
    started = time.monotonic()
    app = get_app()
    request_id = str(getattr(context, "aws_request_id", "") or uuid.uuid4())
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = remaining() / 1000 if callable(remaining) else API_GATEWAY_TIMEOUT_SECONDS
    version = "2.0" if (type(event) is dict or isinstance(event, Mapping)) and event.get("version") == "2.0" else "1.0"
    method = "-"
    try:
        parsed = parse_event(event)
        method = parsed.request.method
        outcome = app.proxy.handle(parsed.request, request_id, started + budget)
    except (BadEvent, InvalidTarget) as exc:
        outcome = _refused(exc.status, str(exc), request_id, "invalid-request")
    except Exception as exc:  # a bug must still answer in JSON, never with a stack trace to the client
        app.log.event("ERROR", "unhandled error", request_id=request_id, error=type(exc).__name__)
        outcome = _refused(500, "internal error", request_id, "internal-error")
    app.log.record(
        request_id=request_id, method=method, outcome=outcome, duration_ms=(time.monotonic() - started) * 1000
    )
    return render(outcome.response, version)


def _refused(status: int, message: str, request_id: str, detail: str) -> Outcome:
    """An answer of the handler's own: neither the cache nor the upstream was used."""
    response = answers.error(status, message, request_id, cache=CacheStatus.BYPASS, detail=detail)
    return Outcome(response, CacheStatus.BYPASS, detail="rejected")


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    _app = build_app()  # in Lambda's init phase: a configuration error stops the function here, by name
