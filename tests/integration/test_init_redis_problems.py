"""What is wrong with Redis is named at init: a bad database path stops the function, a wrong password or a database
the server does not have is logged as what it is (not "unreachable"), and the answers bypass the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from cachelab import processes
from proxy import handler
from proxy.config import ConfigError, Settings
from proxy.http import Request
from tests.conftest import RedisServer
from tests.support.upstream import Origin, Reply

pytestmark = pytest.mark.redis_server
SECRET = "not-the-password-4711"


def _url(server: RedisServer, *, userinfo: str = "", db: str = "/0") -> str:
    return f"redis://{userinfo}127.0.0.1:{server.port}{db}"


@pytest.fixture(scope="module")
def password_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server that requires the password "right-password"."""
    port = processes.free_port()
    server = processes.start_redis_server(
        port, workdir=tmp_path_factory.mktemp("redis-auth"), extra=["--requirepass", "right-password"]
    )
    yield port
    processes.stop(server)


def _init_lines(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{") and '"redis_problem"' in line]


@pytest.mark.parametrize("path", ["/abc", "/1/2", "/0x", "/-1", "/ 1"])
def test_a_database_path_that_is_not_a_number_is_rejected_at_init(path: str) -> None:
    with pytest.raises(ConfigError, match=r"REDIS_URL must end in a database number such as /0"):
        Settings.from_env({"UPSTREAM_URL": "http://127.0.0.1:9", "REDIS_URL": f"redis://127.0.0.1:6379{path}"})


@pytest.mark.parametrize("path", ["", "/", "/0", "/15"])
def test_database_numbers_and_no_path_are_accepted(path: str) -> None:
    settings = Settings.from_env({"UPSTREAM_URL": "http://127.0.0.1:9", "REDIS_URL": f"redis://127.0.0.1:6379{path}"})
    assert settings.redis_url.endswith(f"6379{path}")


def test_the_database_error_hides_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"UPSTREAM_URL": "http://127.0.0.1:9", "REDIS_URL": f"redis://u:{SECRET}@h:6379/x"})
    assert SECRET not in str(caught.value)
    assert "***@" in str(caught.value)


@pytest.mark.parametrize(
    "case",
    [
        ("open", f"u:{SECRET}@", "/0", "auth", "authentication failed"),  # no such ACL user: WRONGPASS
        ("password", f":{SECRET}@", "/0", "auth", "authentication failed"),  # wrong password: WRONGPASS
        ("password", "", "/0", "auth", "authentication failed"),  # none given: NOAUTH
        ("open", "", "/99", "database", "the database of REDIS_URL does not exist on this server"),
    ],
)
def test_redis_problems_are_named_at_init_and_answers_bypass_the_cache(
    redis_server: RedisServer,
    password_port: int,
    origin: Origin,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, str, str, str, str],
) -> None:
    server, userinfo, db, kind, words = case
    origin.routes["/a"] = Reply(body=b"a")
    port = redis_server.port if server == "open" else password_port
    url = f"redis://{userinfo}127.0.0.1:{port}{db}"
    app = handler.build_app({"UPSTREAM_URL": origin.url, "REDIS_URL": url})
    err = capsys.readouterr().err
    (line,) = _init_lines(err)
    assert line["level"] == "ERROR"
    assert line["redis_problem"] == kind
    assert words in str(line["message"])
    assert "unreachable" not in str(line["message"])
    assert SECRET not in err
    outcome = app.proxy.handle(Request("GET", "/a"), "r")
    assert (outcome.cache, outcome.response.status) == ("BYPASS", 200)


def test_an_unreachable_redis_says_why(origin: Origin, capsys: pytest.CaptureFixture[str]) -> None:
    port = processes.free_port()
    handler.build_app({"UPSTREAM_URL": origin.url, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    (line,) = _init_lines(capsys.readouterr().err)
    assert line["level"] == "WARNING"
    assert line["redis_problem"] == "unreachable"
    assert str(line["message"]).startswith("redis unreachable (ConnectionError: ")
    assert f"127.0.0.1:{port}" in str(line["message"])


def test_a_healthy_redis_logs_nothing_at_init(
    redis_server: RedisServer, origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    handler.build_app({"UPSTREAM_URL": origin.url, "REDIS_URL": redis_server.url})
    assert _init_lines(capsys.readouterr().err) == []


def test_cachelab_invoke_shows_the_wrong_password_as_such(redis_server: RedisServer, origin: Origin) -> None:
    origin.routes["/a"] = Reply(body=b"a")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "CACHE_"))},
        "UPSTREAM_URL": origin.url,
        "REDIS_URL": _url(redis_server, userinfo=f"u:{SECRET}@"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "cachelab", "invoke", "/a"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["headers"]["x-cache"] == "BYPASS"
    assert "redis authentication failed (AuthenticationError: " in result.stderr
    assert SECRET not in result.stderr + result.stdout
