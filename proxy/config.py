"""The proxy's configuration: environment variables, parsed and checked once at init.

Invalid values stop the function at init with a message naming the variable (see docs/configuration.md, "Configuration").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

# Every variable Settings.from_env reads: the configuration contract shared by the template, compose and native runs.
ENVIRONMENT_NAMES: tuple[str, ...] = (
    "UPSTREAM_URL",
    "REDIS_URL",
    "REDIS_CLUSTER",
    "REDIS_AUTH_SECRET_ARN",
    "CACHE_TTL_SECONDS",
    "CACHE_STALE_WHILE_REVALIDATE_SECONDS",
    "CACHE_STALE_IF_ERROR_SECONDS",
    "UPSTREAM_TIMEOUT_SECONDS",
    "CACHE_MAX_BODY_BYTES",
    "CACHE_KEY_HEADERS",
    "CACHE_NEGATIVE_TTL_SECONDS",
    "REDIS_SOCKET_TIMEOUT_SECONDS",
    "LOG_LEVEL",
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 §5.1 token
_USERINFO = re.compile(r"//.*@")  # user:password@ of a URL, up to the last "@" (a raw "@" or "/" in it too)


class ConfigError(ValueError):
    """A configuration variable is missing or invalid; the message names it."""


class Policy(NamedTuple):
    """The caching-policy knobs the pure core needs (a subset of Settings, free of I/O concerns)."""

    default_ttl: float = 300.0
    stale_while_revalidate: float = 30.0
    stale_if_error: float = 86400.0
    negative_ttl: float = 10.0
    max_body_bytes: int = 1_048_576
    key_headers: tuple[str, ...] = ()


class Settings(NamedTuple):
    upstream_url: str
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False
    redis_auth_secret_arn: str | None = None
    redis_socket_timeout: float = 0.25
    upstream_timeout: float = 5.0
    log_level: str = "INFO"
    policy: Policy = Policy()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        upstream = env.get("UPSTREAM_URL", "").strip()
        if not upstream:
            raise ConfigError(
                "UPSTREAM_URL is required: the base URL of the external API, e.g. https://api.example.com"
            )
        _check_url("UPSTREAM_URL", upstream, ("http", "https"))
        redis_url = env.get("REDIS_URL", "").strip() or "redis://127.0.0.1:6379/0"
        _check_url("REDIS_URL", redis_url, ("redis", "rediss"))
        _check_redis_database(redis_url)
        policy = Policy(
            default_ttl=_number(env, "CACHE_TTL_SECONDS", 300.0, minimum=0.0),
            stale_while_revalidate=_number(env, "CACHE_STALE_WHILE_REVALIDATE_SECONDS", 30.0, minimum=0.0),
            stale_if_error=_number(env, "CACHE_STALE_IF_ERROR_SECONDS", 86400.0, minimum=0.0),
            negative_ttl=_number(env, "CACHE_NEGATIVE_TTL_SECONDS", 10.0, minimum=0.0),
            max_body_bytes=int(_number(env, "CACHE_MAX_BODY_BYTES", 1_048_576, minimum=0, integer=True)),
            key_headers=_header_list(env, "CACHE_KEY_HEADERS"),
        )
        level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, not {level!r}")
        secret = env.get("REDIS_AUTH_SECRET_ARN", "").strip() or None
        if secret is not None and not secret.startswith("arn:"):
            raise ConfigError(f"REDIS_AUTH_SECRET_ARN must be a Secrets Manager ARN (arn:...), not {secret!r}")
        return cls(
            upstream_url=upstream.rstrip("/"),
            redis_url=redis_url,
            redis_cluster=_boolean(env, "REDIS_CLUSTER", default=False),
            redis_auth_secret_arn=secret,
            redis_socket_timeout=_number(env, "REDIS_SOCKET_TIMEOUT_SECONDS", 0.25, minimum=0.001, maximum=60),
            upstream_timeout=_number(env, "UPSTREAM_TIMEOUT_SECONDS", 5.0, minimum=0.01, maximum=900),
            log_level=level,
            policy=policy,
        )


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    shown = _USERINFO.sub("//***@", value)  # messages name the URL, never its credentials
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:  # its text may quote a part of the credentials
        raise ConfigError(f"{name} is not a valid URL: {shown!r} (invalid host or port)") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL with a host, not {shown!r}")
    if name == "UPSTREAM_URL" and (parts.query or parts.fragment):
        raise ConfigError(f"UPSTREAM_URL must not carry a query or fragment: {shown!r}")
    del port


def _check_redis_database(value: str) -> None:
    """The path of a Redis URL is the database number (redis-py would read /abc as database 0 and /1/2 as 12)."""
    if not re.fullmatch(r"/?|/\d+", urlsplit(value).path):
        shown = _USERINFO.sub("//***@", value)
        raise ConfigError(f"REDIS_URL must end in a database number such as /0 (or have no path): {shown!r}")


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float,
    maximum: float | None = None,
    integer: bool = False,
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(int(raw)) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, not {raw!r}") from None
    if math.isnan(value) or value < minimum or (maximum is not None and value > maximum):  # NaN fails too
        bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
        raise ConfigError(f"{name} must be {bound}, not {raw!r}")
    return value


def _boolean(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"true", "1", "yes"}:
        return True
    if raw in {"false", "0", "no"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _header_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    names = [part.strip().lower() for part in env.get(name, "").split(",") if part.strip()]
    for header in names:
        if not _HEADER_NAME.match(header):
            raise ConfigError(f"{name} holds an invalid header name: {header!r}")
    return tuple(sorted(set(names)))
