"""The template drives the gateway: SAM CLI's resolution, parameter and environment overrides, clear errors."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from samcli.commands._utils.template import get_template_data

from cachelab import processes
from cachelab.gateway.spec import TemplateError
from cachelab.gateway.template import load_function
from proxy.config import ENVIRONMENT_NAMES
from tests.gateway.support import FIXTURE_TEMPLATE, REAL_TEMPLATE, REPO, gateway_argv, running_gateway


def test_fixture_template_resolution() -> None:
    spec = load_function(FIXTURE_TEMPLATE, shell_env={})
    assert spec.logical_id == "ProxyFunction"  # the only function with REST API events (the other has SNS)
    assert spec.handler == "gwfixture.handler.lambda_handler"
    assert spec.runtime == "python3.11"
    assert spec.timeout_s == 2.0  # Globals Timeout: !Ref FunctionTimeout
    assert spec.memory_mb == 256
    assert spec.stage == "dev"
    assert spec.code_dir == spec.task_root == FIXTURE_TEMPLATE.parent / "code"
    assert [r.resource for r in spec.routes] == ["/", "/{proxy+}"]
    assert set(spec.binary_media_types) == {"application/octet-stream", "image/*"}
    env = spec.environment
    assert env["UPSTREAM_URL"] == "http://127.0.0.1:9/upstream"
    assert env["CACHE_TTL_SECONDS"] == "300"
    assert env["FIXTURE_STACK_REGION"] == "us-east-1"  # !Ref AWS::Region, resolved
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "ProxyFunction"
    assert "CACHE_KEY_HEADERS" not in env


def test_params_and_environment_override_the_template() -> None:
    spec = load_function(
        FIXTURE_TEMPLATE,
        params={"CacheTtlSeconds": "42", "UpstreamUrl": "http://param.invalid/", "FunctionTimeout": "5"},
        shell_env={"UPSTREAM_URL": "http://env.invalid/", "CACHE_KEY_HEADERS": "Accept", "HOME": "/root"},
        pass_env=ENVIRONMENT_NAMES,
    )
    env = spec.environment
    assert env["CACHE_TTL_SECONDS"] == "42"  # --param
    assert env["UPSTREAM_URL"] == "http://env.invalid/"  # the gateway's environment wins over --param
    assert env["CACHE_KEY_HEADERS"] == "Accept"  # a configuration name the template does not set
    assert "HOME" not in env  # only configuration names pass
    assert spec.timeout_s == 5.0
    assert spec.overridden_from_env == ("UPSTREAM_URL", "CACHE_KEY_HEADERS")


def test_template_routes_match_like_api_gateway() -> None:
    spec = load_function(FIXTURE_TEMPLATE, shell_env={})
    root = spec.match("GET", "/")
    assert root is not None
    assert root[0].resource == "/"
    assert root[1] == {}
    proxy = spec.match("POST", "/a/b")
    assert proxy is not None
    assert proxy[0].resource == "/{proxy+}"
    assert proxy[1] == {"proxy": "a/b"}
    assert spec.match("BREW", "/a") is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"NoSuchParam": "1"}, "unknown template parameter(s) NoSuchParam"),
        ({"CacheTtlSeconds": "soon"}, "--param CacheTtlSeconds=soon: must be a number"),
    ],
)
def test_bad_params_are_clear_errors(params: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_function(FIXTURE_TEMPLATE, params=params, shell_env={})


def test_function_choice() -> None:
    with pytest.raises(TemplateError, match="has no REST API"):
        load_function(FIXTURE_TEMPLATE, function="InvalidateFunction", shell_env={})
    with pytest.raises(TemplateError, match="is not in"):
        load_function(FIXTURE_TEMPLATE, function="Nope", shell_env={})


def test_environment_overrides_reach_the_handler(tmp_path: Path) -> None:
    env = {"UPSTREAM_URL": "http://from-env.invalid/", "CACHE_KEY_HEADERS": "Accept-Language",
           "HOME_SECRET_SHOULD_NOT_LEAK": "secret"}  # fmt: skip
    with running_gateway(tmp_path, "--param", "CacheTtlSeconds=7", "--param", "UpstreamUrl=http://p.invalid/",
                         env=env) as gw:  # fmt: skip
        seen = gw.echo()["env"]
    assert seen["UPSTREAM_URL"] == "http://from-env.invalid/"
    assert seen["CACHE_TTL_SECONDS"] == "7"
    assert seen["CACHE_KEY_HEADERS"] == "Accept-Language"
    assert seen["HOME_SECRET_SHOULD_NOT_LEAK"] is None  # environments get the Lambda environment, not ours
    started = list(gw.events("gateway_started"))
    assert started
    assert started[0]["parameters"] == {"CacheTtlSeconds": "7", "UpstreamUrl": "http://p.invalid/"}
    assert started[0]["env_overrides"] == ["UPSTREAM_URL", "CACHE_KEY_HEADERS"]


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "cachelab"), "gateway", *args], capture_output=True, text=True,
        timeout=timeout,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", "/nonexistent/template.yaml"], "template /nonexistent/template.yaml not found"),
        (["--template", str(FIXTURE_TEMPLATE), "--param", "Nope=1"], "unknown template parameter(s) Nope"),
        (["--template", str(FIXTURE_TEMPLATE), "--param", "novalue"], "--param expects Name=Value"),
        (["--template", str(FIXTURE_TEMPLATE), "--function", "InvalidateFunction"], "no REST API"),
    ],
)
def test_cli_errors_are_one_clear_line(args: list[str], message: str) -> None:
    result = _cli("--port", str(processes.free_port()), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_rejects_bad_numbers() -> None:
    result = _cli("--concurrency", "0")
    assert result.returncode == 2
    assert "expected a positive integer" in result.stderr


def test_taken_port_fails_fast(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw:
        started = time.monotonic()
        result = subprocess.run(gateway_argv(gw.port), capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2
        assert f"port {gw.port} on 127.0.0.1 is already in use" in result.stderr
        assert "Traceback" not in result.stderr
        assert time.monotonic() - started < 30


# ---- the real template (sam/template.yaml) ------------------------------------------------------------------------


def test_real_template_resolution() -> None:
    spec = load_function(
        REAL_TEMPLATE,
        params={"RedisMode": "external", "RedisUrl": "redis://127.0.0.1:6399/0"},
        shell_env={"UPSTREAM_URL": "http://127.0.0.1:1"},
        pass_env=ENVIRONMENT_NAMES,
    )
    data = get_template_data(str(REAL_TEMPLATE))
    defaults = {name: decl.get("Default") for name, decl in data["Parameters"].items()}
    declared_binary = data["Resources"]["ProxyApi"]["Properties"].get("BinaryMediaTypes") or []
    assert spec.logical_id == "ProxyFunction"
    assert spec.handler == "proxy.handler.lambda_handler"
    assert spec.runtime.startswith("python3.")
    # The template wins: timeout, memory and stage are its parameters' defaults.
    assert spec.timeout_s == float(defaults["FunctionTimeoutSeconds"])
    assert spec.memory_mb == int(defaults["FunctionMemoryMB"])
    assert spec.stage == defaults["StageName"]
    assert list(spec.binary_media_types) == [t.replace("~1", "/") for t in declared_binary]
    # sam build nests ../proxy as the package `proxy/`: running in place, the task root is the repository.
    assert spec.code_dir == REPO / "proxy"
    assert spec.task_root == REPO
    assert [r.resource for r in spec.routes] == ["/", "/{proxy+}"]
    env = spec.environment
    assert env["REDIS_URL"] == "redis://127.0.0.1:6399/0"
    assert env["UPSTREAM_URL"] == "http://127.0.0.1:1"
    # A non-integer Number default (0.25) must resolve: SAM CLI alone leaves its !Ref unresolved.
    assert env["REDIS_SOCKET_TIMEOUT_SECONDS"] == "0.25"
    assert set(ENVIRONMENT_NAMES) - {"REDIS_AUTH_SECRET_ARN"} <= set(env)


def test_real_template_parameter_constraints() -> None:
    with pytest.raises(TemplateError, match="must be one of elasticache, serverless, external"):
        load_function(REAL_TEMPLATE, params={"RedisMode": "memcached"}, shell_env={})
    with pytest.raises(TemplateError, match="must be at most 29"):
        load_function(REAL_TEMPLATE, params={"FunctionTimeoutSeconds": "60"}, shell_env={})
