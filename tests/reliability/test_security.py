"""Security checks: nobody can purge through the proxy's HTTP surface, and no secret reaches a log or an answer.

Purging is the invalidation function's job, reachable through SNS only (test_iam_policy.py): over HTTP, purge-like
methods and admin-looking paths are ordinary requests for the upstream to judge. Secrets (the Redis password in
REDIS_URL, a caller's bearer token, cookie and API key) must not appear in the proxy's log lines, the local
gateway's log and admin endpoints, or any answer, including the error answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from cachelab import processes
from cachelab.events import build_event
from cachelab.gateway.cli import command, health_url
from proxy.config import ENVIRONMENT_NAMES, ConfigError
from proxy.handler import build_app
from tests.reliability.support import EchoOrigin, LambdaApp, Reply, Seen, lambda_app, raw_request

pytestmark = [pytest.mark.redis_server]

REDIS_PASSWORD = "redis-pw-8f3a1c"
TOKEN = "tok-55e1b0d2"
COOKIE = "sess-9b7c4e"
API_KEY = "key-0d6a3f"
SECRETS = (REDIS_PASSWORD, TOKEN, COOKIE, API_KEY)
CALLER = [("Authorization", f"Bearer {TOKEN}"), ("Cookie", f"session={COOKIE}")]


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server that needs a password (as ElastiCache with an AUTH token does)."""
    port = processes.free_port()
    proc = processes.start_redis_server(
        port, workdir=tmp_path_factory.mktemp("locked-redis"), extra=("--requirepass", REDIS_PASSWORD)
    )
    yield port
    processes.stop(proc)


@pytest.fixture
def redis_url(locked_redis: int) -> str:
    client = redis.Redis(host="127.0.0.1", port=locked_redis, password=REDIS_PASSWORD, socket_timeout=2)
    client.flushall()
    client.close()
    return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{locked_redis}/0"


@pytest.fixture
def origin() -> Iterator[EchoOrigin]:
    server = EchoOrigin()
    yield server
    server.close()


def invoke(app: LambdaApp, method: str, target: str, headers: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    return app(build_event(method, target, headers))


# ---------------------------------------------------------------------------------------------- purges
PURGE_ATTEMPTS = [
    ("PURGE", "/items/1"),
    ("BAN", "/items/1"),
    ("DELETE", "/items/1"),
    ("POST", "/items/1"),
    ("GET", "/__admin/purge?target=/items/1"),
    ("POST", "/__admin/purge"),
    ("DELETE", "/__admin/cache"),
    ("POST", "/__admin/faults"),
    ("GET", "/purge/items/1"),
    ("GET", "/__gateway/stats"),
    ("DELETE", "/items/"),
    ("DELETE", "/"),
]


def test_purge_methods_and_admin_paths_are_forwarded_and_purge_nothing(origin: EchoOrigin, redis_url: str) -> None:
    def judge(seen: Seen) -> Reply | None:
        if seen.method in ("GET", "HEAD") and seen.target.startswith("/items/"):
            return None  # the echo, cacheable for 300 s
        if "authorization" not in seen.headers:
            return Reply(status=401, headers=[("Content-Type", "application/json")], body=b'{"error":"who?"}')
        return Reply(status=403, headers=[("Content-Type", "application/json")], body=b'{"error":"no"}')

    origin.script = judge
    cached = ["/items/1", "/items/1?x=1", "/items/2"]
    with lambda_app({"UPSTREAM_URL": origin.url, "REDIS_URL": redis_url}) as app:
        assert [invoke(app, "GET", t)["headers"]["x-cache"] for t in cached] == ["MISS"] * 3
        for method, target in PURGE_ATTEMPTS:
            for headers in ([], [("Authorization", "Bearer someone"), ("X-Purge", "1")]):
                answer = invoke(app, method, target, headers)
                assert answer["statusCode"] in (401, 403), (method, target, answer)  # the upstream's verdict
                assert origin.seen[-1].method == method  # forwarded as it came, not acted upon
                assert answer["headers"]["x-cache"] == ("MISS" if method == "GET" else "BYPASS")  # never stored
        assert [invoke(app, "GET", t)["headers"]["x-cache"] for t in cached] == ["HIT"] * 3
        assert origin.count(lambda s: s.method == "GET" and s.target.startswith("/items/")) == 3


def test_an_accepted_unsafe_request_invalidates_its_own_uri_only(origin: EchoOrigin, redis_url: str) -> None:
    """RFC 9111 §4.4: once the upstream accepts a DELETE/POST/PUT, the target URI's stored answers are stale.
    Nothing else is touched: not the same path with another query, not the paths below it."""
    origin.script = lambda seen: Reply(status=204, body=b"") if seen.method != "GET" else None
    cached = ["/items/1", "/items/1?x=1", "/items/10", "/items/1/parts", "/items"]
    with lambda_app({"UPSTREAM_URL": origin.url, "REDIS_URL": redis_url}) as app:
        for target in cached:
            invoke(app, "GET", target)
        assert invoke(app, "DELETE", "/items/1")["statusCode"] == 204
        assert invoke(app, "POST", "/items/")["statusCode"] == 204
        assert [invoke(app, "GET", t)["headers"]["x-cache"] for t in cached] == ["MISS", "HIT", "HIT", "HIT", "HIT"]


# ---------------------------------------------------------------------------------------------- secrets
def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_no_secret_in_the_proxys_logs_or_answers(origin: EchoOrigin, redis_url: str, locked_redis: int) -> None:
    def scripted(seen: Seen) -> Reply | None:
        if seen.target.startswith("/fail"):
            return Reply(status=503, headers=[("Content-Type", "text/plain")], body=b"down")
        if seen.target.startswith("/slow"):
            return Reply(body=b"late", delay=1.5)
        return Reply(headers=[("Content-Type", "text/plain")], body=b"ok")

    origin.script = scripted
    closed = processes.free_port()
    env = {"UPSTREAM_URL": origin.url, "REDIS_URL": redis_url, "UPSTREAM_TIMEOUT_SECONDS": "0.5", "LOG_LEVEL": "DEBUG"}
    wrong_password = redis_url.replace(REDIS_PASSWORD, "not-the-password")
    texts: list[str] = []
    variants = [
        env,
        {**env, "REDIS_URL": wrong_password},  # Redis refuses: every answer BYPASS
        {**env, "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{closed}/0"},  # Redis down at init
        {**env, "UPSTREAM_URL": f"http://127.0.0.1:{closed}"},  # the upstream refuses connections
    ]
    statuses: set[int] = set()
    for variant in variants:
        with lambda_app(variant) as app:
            for target in (f"/items/1?api_key={API_KEY}", "/fail", "/slow", "/items/2"):
                for method in ("GET", "POST"):
                    answer = invoke(app, method, target, CALLER)
                    statuses.add(answer["statusCode"])
                    texts.append(repr(answer))
            bad = invoke(app, "GET", "/items/3", [("Authorization", f"Bearer {TOKEN}\r\nX-Injected: 1")])
            statuses.add(bad["statusCode"])
            texts.extend([repr(bad), app.lines()])
    assert {200, 400, 502, 503, 504} <= statuses  # the error answers were all produced
    with pytest.raises(ConfigError) as caught:
        build_app({**env, "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:not-a-port/0"})
    texts.append(str(caught.value))
    assert leaks("\n".join(texts)) == []


def test_no_secret_in_the_gateways_log_admin_endpoints_or_init_errors(
    origin: EchoOrigin, redis_url: str, tmp_path: Path
) -> None:
    origin.script = lambda seen: Reply(headers=[("Content-Type", "text/plain")], body=b"ok")
    bodies: list[str] = []
    for name, url in (("good", redis_url), ("bad", f"redis://:{REDIS_PASSWORD}@127.0.0.1:99999/0")):
        port = processes.free_port()
        env = {**os.environ, "UPSTREAM_URL": origin.url, "REDIS_URL": url, "LOG_LEVEL": "DEBUG"}
        log = tmp_path / f"{name}.log"
        argv = command(port, pass_env=ENVIRONMENT_NAMES)
        with processes.running(argv, port=port, env=env, log=log, health_url=health_url(port)):
            for target in (f"/items/1?api_key={API_KEY}", "/__gateway/stats", "/__gateway/health"):
                lines = [f"GET {target} HTTP/1.1", "Host: a", f"Authorization: Bearer {TOKEN}",
                         f"Cookie: session={COOKIE}", "Connection: close", "", ""]  # fmt: skip
                answer = raw_request(port, "\r\n".join(lines).encode())
                assert answer is not None
                assert answer.status == (502 if name == "bad" and target.startswith("/items") else 200)
                bodies.append(repr(answer))
        assert leaks(log.read_text(errors="replace")) == [], name
        if name == "bad":
            assert "REDIS_URL" in log.read_text(errors="replace")  # the init error names the variable
    assert leaks("\n".join(bodies)) == []
