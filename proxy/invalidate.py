"""The invalidation Lambda (`proxy.invalidate.lambda_handler`), subscribed to the stack's SNS topic.

A publisher announces "these resources changed" with one SNS message whose body is a JSON object:

    {"paths": ["/items/1", "/items?page=2"], "prefixes": ["/items/"]}

- `paths`: cached entries of exactly these targets are deleted. A path without a query deletes that path under
  every query string and header variant; a path with a query deletes just that URI (all header variants).
- `prefixes`: every cached entry whose path starts with the prefix is deleted (`"/"` deletes everything).
- Both keys are optional but at least one target must be given; no other keys are allowed. Each target is a string
  starting with "/", at most MAX_TARGET_CHARS characters, without whitespace or control characters; at most
  MAX_TARGETS targets per message.

A malformed message is logged and dropped: the handler returns normally, so it is never redelivered. When Redis is
unreachable the handler raises, and Lambda's asynchronous retries (bounded by the template's EventInvokeConfig:
two retries, one hour) try again before the message is dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from proxy.config import Settings
from proxy.keys import InvalidTarget
from proxy.observability import RequestLog
from proxy.secrets import read_auth_token
from proxy.store import RedisStore

MAX_TARGETS = 100
MAX_TARGET_CHARS = 2048
FIELDS = ("paths", "prefixes")


class InvalidMessage(ValueError):
    """The message does not follow the documented shape; the text says what is wrong."""


class Invalidation(NamedTuple):
    paths: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def to_message(self) -> str:
        """The SNS message body for this invalidation (what `cachelab invalidate --target ...` publishes)."""
        body: dict[str, list[str]] = {}
        if self.paths:
            body["paths"] = list(self.paths)
        if self.prefixes:
            body["prefixes"] = list(self.prefixes)
        return json.dumps(body, separators=(",", ":"))


def check_target(value: object, field: str = "path") -> str:
    """One path or prefix, as the message and the CLI accept it."""
    if not isinstance(value, str):
        raise InvalidMessage(f"{field} must be a string, not {type(value).__name__}")
    if not value.startswith("/"):
        raise InvalidMessage(f"{field} must start with '/': {value[:80]!r}")
    if len(value) > MAX_TARGET_CHARS:
        raise InvalidMessage(f"{field} is longer than {MAX_TARGET_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidMessage(f"{field} must not contain whitespace or control characters: {value[:80]!r}")
    return value


def make_invalidation(paths: Sequence[object], prefixes: Sequence[object]) -> Invalidation:
    """Check every target and drop duplicates (order kept)."""
    if len(paths) + len(prefixes) == 0:
        raise InvalidMessage('give at least one target in "paths" or "prefixes"')
    if len(paths) + len(prefixes) > MAX_TARGETS:
        raise InvalidMessage(f"at most {MAX_TARGETS} targets per message, got {len(paths) + len(prefixes)}")
    checked_paths = tuple(dict.fromkeys(check_target(p, "path") for p in paths))
    checked_prefixes = tuple(dict.fromkeys(check_target(p, "prefix") for p in prefixes))
    return Invalidation(checked_paths, checked_prefixes)


def parse_message(text: object) -> Invalidation:
    """The SNS message body, parsed and checked; InvalidMessage says what is wrong."""
    if not isinstance(text, str):
        raise InvalidMessage("the SNS message must be a string holding a JSON object")
    if len(text) > MAX_TARGETS * (MAX_TARGET_CHARS + 16) + 64:
        raise InvalidMessage("the message is too large")
    try:
        body = json.loads(text)
    except ValueError:
        raise InvalidMessage("the message is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidMessage('the message must be a JSON object like {"paths": ["/items/1"]}')
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidMessage(f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: paths, prefixes")
    lists: dict[str, list[object]] = {}
    for field in FIELDS:
        value = body.get(field, [])
        if not isinstance(value, list):
            raise InvalidMessage(f'"{field}" must be a list of strings')
        lists[field] = value
    return make_invalidation(lists["paths"], lists["prefixes"])


class Result(NamedTuple):
    purged: int
    rejected_targets: tuple[str, ...] = ()


def apply(store: RedisStore, invalidation: Invalidation) -> Result:
    """Delete the matching entries; raises proxy.store.StoreUnavailable when Redis cannot be reached."""
    purged = 0
    rejected: list[str] = []
    for targets, prefix in ((invalidation.paths, False), (invalidation.prefixes, True)):
        for target in targets:
            try:
                purged += store.purge(target, prefix=prefix)
            except InvalidTarget:
                rejected.append(target)
    return Result(purged, tuple(rejected))


class App(NamedTuple):
    store: RedisStore
    log: RequestLog


def build_app(env: Mapping[str, str] | None = None) -> App:
    settings = Settings.from_env(os.environ if env is None else env)
    password = read_auth_token(settings.redis_auth_secret_arn) if settings.redis_auth_secret_arn else None
    return App(RedisStore.from_settings(settings, password), RequestLog(level=settings.log_level))


_app: App | None = None


def get_app() -> App:
    global _app
    if _app is None:
        _app = build_app()
    return _app


def _messages(event: object) -> list[object] | None:
    """The SNS message bodies of an SNS event, or None when the event is not one."""
    if not isinstance(event, Mapping):
        return None
    records = event.get("Records")
    if not isinstance(records, list):
        return None
    messages: list[object] = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        messages.append(sns.get("Message") if isinstance(sns, Mapping) else None)
    return messages


def lambda_handler(event: object, context: Any = None) -> dict[str, Any]:
    """Returns {"messages", "rejected", "purged"}; raises only when Redis is unreachable (bounded retries)."""
    app = get_app()
    request_id = str(getattr(context, "aws_request_id", "") or "-")
    messages = _messages(event)
    if messages is None:
        app.log.event("WARNING", "invalidation dropped: not an SNS event", request_id=request_id)
        return {"messages": 0, "rejected": 1, "purged": 0}
    rejected = 0
    purged = 0
    for index, message in enumerate(messages):
        try:
            invalidation = parse_message(message)
        except InvalidMessage as exc:
            rejected += 1
            app.log.event(
                "WARNING", "invalidation dropped: bad message", request_id=request_id, record=index, error=str(exc)
            )
            continue
        result = apply(app.store, invalidation)
        purged += result.purged
        if result.rejected_targets:
            app.log.event(
                "WARNING", "invalidation targets skipped", request_id=request_id, targets=list(result.rejected_targets)
            )
        app.log.event(
            "INFO",
            "invalidated",
            request_id=request_id,
            paths=list(invalidation.paths),
            prefixes=list(invalidation.prefixes),
            purged=result.purged,
        )
    return {"messages": len(messages), "rejected": rejected, "purged": purged}


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    _app = build_app()  # Lambda's init phase: a configuration error stops the function here, by name
