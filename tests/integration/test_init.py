"""Init-time behaviour of the handler: light cold start, AUTH token from Secrets Manager, config errors by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cachelab import processes
from proxy import handler
from proxy.config import ConfigError
from tests.support.upstream import Origin, Reply


def test_cold_start_does_not_import_boto3() -> None:
    code = "import sys, proxy.handler; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))))"
    out = subprocess.run(
        [sys.executable, "-c", "import json;" + code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_LAMBDA")},
    )
    assert json.loads(out.stdout) == []


def test_a_config_error_stops_the_function_at_init_by_name() -> None:
    """In Lambda (AWS_LAMBDA_FUNCTION_NAME set) the module builds everything at import: a bad value fails there."""
    env = {
        **os.environ,
        "AWS_LAMBDA_FUNCTION_NAME": "proxy",
        "UPSTREAM_URL": "https://api.example.com",
        "CACHE_TTL_SECONDS": "-5",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import proxy.handler"], capture_output=True, text=True, timeout=30, env=env, check=False
    )
    assert result.returncode != 0
    assert "ConfigError: CACHE_TTL_SECONDS must be >= 0" in result.stderr


def test_redis_auth_token_is_read_from_secrets_manager_once(
    tmp_path: Path, origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = processes.free_port()
    server = processes.start_redis_server(port, workdir=tmp_path, extra=["--requirepass", "s3cret-token"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    origin.routes["/a"] = Reply(body=b"a")
    try:
        with mock_aws():
            arn = boto3.client("secretsmanager").create_secret(
                Name="redis-auth", SecretString=json.dumps({"token": "s3cret-token"})
            )["ARN"]
            app = handler.build_app(
                {"UPSTREAM_URL": origin.url, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "REDIS_AUTH_SECRET_ARN": arn}
            )
        from proxy.http import Request

        assert app.proxy.handle(Request("GET", "/a"), "r").cache == "MISS"
        assert app.proxy.handle(Request("GET", "/a"), "r").cache == "HIT"  # authenticated reads and writes
    finally:
        processes.stop(server)


def test_build_app_names_the_bad_variable() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        handler.build_app({"UPSTREAM_URL": "https://api.example.com", "REDIS_URL": "memcached://x"})
