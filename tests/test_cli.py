"""The `cachelab` command line as users run it: a real subprocess, real Redis, a real origin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cachelab.cli import COMMANDS
from tests.conftest import RedisServer
from tests.support.upstream import Origin, Reply


def cachelab(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"UPSTREAM_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "-m", "cachelab", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_subcommand_has_help(command: str | None) -> None:
    result = cachelab(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: cachelab" in result.stdout


def test_invoke_prints_the_handler_result(origin: Origin, redis_server: RedisServer) -> None:
    origin.routes["/items/7"] = Reply(
        headers=[("Content-Type", "application/json"), ("Cache-Control", "max-age=60")], body=b'{"id": 7}'
    )
    env = {"UPSTREAM_URL": origin.url, "REDIS_URL": redis_server.url}
    for expected in ("MISS", "HIT"):
        result = cachelab("invoke", "/items/7?b=1&a=2", "--header", "Accept: application/json", env=env)
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert set(out) >= {"statusCode", "headers", "body", "isBase64Encoded"}
        assert (out["statusCode"], out["body"], out["headers"]["x-cache"]) == (200, '{"id": 7}', expected)
        assert '"message":"request"' in result.stderr  # the log line goes to stderr, stdout stays pure JSON
    assert origin.seen[0].target == "/items/7?a=2&b=1"


@pytest.mark.parametrize("fmt", ["http", "url"])
def test_invoke_other_event_formats(origin: Origin, redis_server: RedisServer, fmt: str) -> None:
    origin.routes["/c"] = Reply(headers=[("Set-Cookie", "a=1"), ("Content-Type", "text/plain")], body=b"c")
    env = {"UPSTREAM_URL": origin.url, "REDIS_URL": redis_server.url}
    result = cachelab("invoke", "/c", "--event-format", fmt, env=env)
    out = json.loads(result.stdout)
    assert out["cookies"] == ["a=1"]
    assert "multiValueHeaders" not in out


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["invoke", "/x"], {}, "UPSTREAM_URL is required"),
        (["invoke", "/x"], {"UPSTREAM_URL": "http://127.0.0.1:9", "CACHE_TTL_SECONDS": "soon"}, "CACHE_TTL_SECONDS"),
        (["invoke", "x"], {"UPSTREAM_URL": "http://127.0.0.1:9"}, "must start with '/'"),
        (["invoke", "/x", "-H", "no-colon"], {"UPSTREAM_URL": "http://127.0.0.1:9"}, "--header"),
    ],
)
def test_invoke_errors_are_one_clear_line(args: list[str], env: dict[str, str], message: str) -> None:
    result = cachelab(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
