"""`cachelab deploy` and `cachelab invalidate` as a user runs them (subprocesses), against real Redis, a real HTTP
origin and a moto server; and their error paths (no LocalStack runs here, no sam, bad input)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cachelab import processes
from cachelab.cli import main
from cachelab.commands.deploy import LOCALSTACK_ENDPOINT, SAMCONFIG, TEMPLATE, cost_notice
from proxy.http import Headers, Request
from proxy.keys import split_target
from proxy.service import CachingProxy
from tests.conftest import RedisServer
from tests.sam.conftest import Moto
from tests.support.upstream import Origin, Reply

Factory = Callable[..., CachingProxy]


def cachelab(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cachelab", *args],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def assert_cli_error(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert text in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------------- invalidate
def cache_state(proxy: CachingProxy, target: str) -> str:
    path, query = split_target(target)
    return str(proxy.handle(Request("GET", path, query, Headers([])), "cli-test").cache)


@pytest.mark.redis_server
def test_invalidate_native_exact_path_then_prefix(
    proxy_factory: Factory, origin: Origin, redis_server: RedisServer
) -> None:
    for path in ("/items/1", "/items/2", "/other/1"):
        origin.routes[path] = Reply(body=b"{}")
    proxy = proxy_factory()
    targets = ["/items/1", "/items/1?v=2", "/items/2", "/other/1"]
    assert [cache_state(proxy, t) for t in targets] == ["MISS"] * 4

    proc = cachelab("invalidate", "/items/1", "--redis-url", redis_server.url)
    assert proc.returncode == 0, proc.stderr
    assert f"purged 2 cached entries (path: /items/1) in redis://127.0.0.1:{redis_server.port}" in proc.stdout
    assert [cache_state(proxy, t) for t in targets] == ["MISS", "MISS", "HIT", "HIT"]

    proc = cachelab("invalidate", "--prefix", "/items/", env={"REDIS_URL": redis_server.url})  # from REDIS_URL
    assert proc.returncode == 0, proc.stderr
    assert "purged 3 cached entries (prefix: /items/)" in proc.stdout
    assert [cache_state(proxy, t) for t in targets] == ["MISS", "MISS", "MISS", "HIT"]


def test_invalidate_rejects_bad_paths_and_flags() -> None:
    assert_cli_error(cachelab("invalidate", "items/1"), "path must start with '/'")
    assert_cli_error(cachelab("invalidate", "--prefix", "/a b"), "whitespace")
    assert_cli_error(
        cachelab("invalidate", "/x", "--target", "localstack", "--redis-url", "redis://h:1/0"),
        "--redis-url applies to --target native only",
    )
    assert_cli_error(cachelab("invalidate", "/x", "--redis-url", "http://h/"), "REDIS_URL must be a redis://")


def test_invalidate_native_with_redis_down_fails_clearly() -> None:
    port = processes.free_port()
    started = time.monotonic()
    proc = cachelab("invalidate", "/items/1", "--redis-url", f"redis://127.0.0.1:{port}/0")
    assert_cli_error(proc, f"cannot purge in Redis at redis://127.0.0.1:{port}")
    assert time.monotonic() - started < 30


def test_invalidate_localstack_unreachable_or_unknown_stack(moto: Moto) -> None:
    port = processes.free_port()
    proc = cachelab("invalidate", "/x", "--target", "localstack", "--endpoint-url", f"http://127.0.0.1:{port}")
    assert_cli_error(proc, f"cannot reach CloudFormation at http://127.0.0.1:{port}")
    proc = cachelab(
        "invalidate", "/x", "--target", "localstack", "--endpoint-url", moto.endpoint, "--stack-name", "nope"
    )
    assert_cli_error(proc, f"stack 'nope' not found at {moto.endpoint}")


# ---------------------------------------------------------------------------------------------- deploy
def test_deploy_dry_run_builds_then_deploys_with_samconfig_and_overrides() -> None:
    proc = cachelab("deploy", "--target", "localstack", "--dry-run", "--param", "CacheTtlSeconds=60")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("#")]
    assert f"AWS_ENDPOINT_URL={LOCALSTACK_ENDPOINT}" in proc.stdout
    build, deploy = (shlex.split(line) for line in lines)
    assert build[1:] == [
        "build", "--template-file", str(TEMPLATE), "--build-dir", str(TEMPLATE.parent / ".aws-sam" / "build"),
        "--config-file", str(SAMCONFIG), "--config-env", "localstack",
    ]  # fmt: skip
    assert deploy[1:6] == ["deploy", "--template-file", str(TEMPLATE.parent / ".aws-sam/build/template.yaml"),
                           "--stack-name", "cachelab"]  # fmt: skip
    assert deploy[deploy.index("--config-env") + 1] == "localstack"
    assert deploy[deploy.index("--region") + 1] == "us-east-1"
    overrides = deploy[deploy.index("--parameter-overrides") + 1 :]
    assert overrides == [
        "RedisMode=external", "RedisUrl=redis://redis:6379/0", "UpstreamUrl=http://stub-api:8081", "CacheTtlSeconds=60",
    ]  # fmt: skip


def test_deploy_dry_run_aws_and_delete() -> None:
    proc = cachelab("deploy", "--target", "aws", "--dry-run", "--stack-name", "mine", "--param", "MultiAZ=true")
    assert proc.returncode == 0, proc.stderr
    deploy = shlex.split(proc.stdout.splitlines()[-1])
    assert "AWS_ENDPOINT_URL" not in proc.stdout
    assert deploy[deploy.index("--config-env") + 1] == "default"
    assert deploy[deploy.index("--parameter-overrides") + 1 :] == ["RedisMode=elasticache", "MultiAZ=true"]

    proc = cachelab("deploy", "--target", "aws", "--delete", "--dry-run", "--stack-name", "mine")
    delete = shlex.split(proc.stdout.splitlines()[-1])
    assert delete[1:4] == ["delete", "--stack-name", "mine"]
    assert "--no-prompts" not in delete
    proc = cachelab("deploy", "--target", "localstack", "--delete", "--dry-run")
    assert shlex.split(proc.stdout.splitlines()[-1])[-1] == "--no-prompts"


def test_deploy_rejects_bad_parameters() -> None:
    assert_cli_error(cachelab("deploy", "--target", "aws", "--param", "Bogus=1"), "unknown template parameter 'Bogus'")
    assert_cli_error(cachelab("deploy", "--target", "aws", "--param", "MultiAZ"), "--param expects Name=Value")
    assert_cli_error(cachelab("deploy", "--target", "localstack", "--param", "RedisUrl="), "RedisMode=external needs")
    assert_cli_error(
        cachelab("deploy", "--target", "aws", "--endpoint-url", "http://x"), "--endpoint-url applies to --target"
    )


def test_deploy_localstack_not_running_fails_fast_and_clearly() -> None:
    endpoint = f"http://127.0.0.1:{processes.free_port()}"
    started = time.monotonic()
    proc = cachelab("deploy", "--target", "localstack", "--endpoint-url", endpoint)
    assert_cli_error(proc, f"LocalStack is not reachable at {endpoint}")
    assert "docker compose up -d localstack" in proc.stderr
    assert time.monotonic() - started < 20
    assert proc.stdout == ""  # nothing was built or deployed


def test_deploy_without_sam_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no sam next to "this" Python either
    assert main(["deploy", "--target", "localstack"]) == 2
    assert "the AWS SAM CLI (`sam`) is not installed" in capsys.readouterr().err
    assert main(["deploy", "--target", "aws", "--sam-cli", str(tmp_path / "sam")]) == 2
    assert "the AWS SAM CLI was not found at" in capsys.readouterr().err


def test_deploy_without_the_runtime_python(tmp_path: Path) -> None:
    env = {"PATH": str(Path(sys.executable).parent), "PYENV_ROOT": str(tmp_path), "HOME": str(tmp_path)}
    assert_cli_error(cachelab("deploy", "--target", "localstack", env=env), "sam build needs python3.13")


def test_cost_notice_lists_the_hourly_items() -> None:
    assert cost_notice({"RedisMode": "external"}) == []
    single = cost_notice({"RedisMode": "elasticache", "MultiAZ": "false"})
    assert single[0].startswith("1 x NAT gateway")
    assert single[1].startswith("1 x ElastiCache cache.t4g.micro")
    multi = cost_notice({"RedisMode": "elasticache", "MultiAZ": "true", "CacheNodeType": "cache.t4g.small"})
    assert multi[0].startswith("2 x NAT gateway")
    assert multi[1].startswith("2 x ElastiCache cache.t4g.small")
    assert "Serverless" in cost_notice({"RedisMode": "serverless"})[1]
