"""Starting `cachelab gateway`: it says what configuration it needs, and never claims to listen when it does not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from cachelab import processes
from tests.gateway.support import BROKEN_TEMPLATE, FIXTURE_TEMPLATE, REAL_TEMPLATE, running_gateway

BANNER = "cachelab gateway: "


def cachelab_gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"UPSTREAM_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "-m", "cachelab", "gateway", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_templates_aws_defaults_are_refused_with_the_parameters_to_pass() -> None:
    port = processes.free_port()
    result = cachelab_gateway("--port", str(port), "--template", str(REAL_TEMPLATE))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""  # no "listening" banner
    assert "REDIS_URL resolves to 'rediss://${ReplicationGroup" in result.stderr
    assert "--param RedisMode=external --param RedisUrl=redis://127.0.0.1:6379/0" in result.stderr
    assert "or set REDIS_URL in the gateway's environment" in result.stderr
    assert "Traceback" not in result.stderr
    assert not processes.port_open(port)


def test_help_says_what_configuration_the_gateway_needs() -> None:
    result = cachelab_gateway("--help")
    assert result.returncode == 0
    assert "RedisMode=external" in result.stdout
    assert "REDIS_URL=redis://127.0.0.1:6379/0 UPSTREAM_URL=" in result.stdout
    assert "UPSTREAM_URL, REDIS_URL" in result.stdout


def test_a_taken_port_fails_before_any_banner() -> None:
    port = processes.free_port()
    with socket.socket() as taken:
        taken.bind((processes.LOOPBACK, port))
        taken.listen()
        result = cachelab_gateway("--port", str(port), "--template", str(FIXTURE_TEMPLATE))
    assert result.returncode == 2
    assert BANNER not in result.stdout
    assert result.stdout == ""
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "gateway_started" not in result.stderr


def test_warm_environments_that_fail_their_init_stop_the_gateway() -> None:
    port = processes.free_port()
    result = cachelab_gateway("--port", str(port), "--template", str(BROKEN_TEMPLATE), "--warm", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "gateway_started" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("cachelab gateway: error: 1 of 1 warm execution environments failed their init")
    assert "Runtime.ImportModuleError" in last
    assert not processes.port_open(port)


def test_the_banner_comes_once_the_gateway_listens(tmp_path: Path) -> None:
    with running_gateway(tmp_path, "--warm", "1") as gw:
        gw.wait_events("gateway_started", 1)
        text = gw.log.read_text()
        assert f"{BANNER}ProxyFunction (gwfixture.handler.lambda_handler" in text
        assert f"on http://127.0.0.1:{gw.port}/" in text
        assert gw.get("/echo").status == 200


def test_warm_environments_init_at_most_one_per_cpu_at_a_time(tmp_path: Path) -> None:
    """`--warm` starts its environments with at most os.cpu_count() inits running at once: on a laptop's few cores,
    twenty inits at once would each take ten times longer and overrun Lambda's 10 s init limit together."""
    init_log = tmp_path / "inits.log"
    cpus = os.cpu_count() or 1
    warm = cpus + 3
    with running_gateway(tmp_path, "--warm", str(warm), "--concurrency", str(warm), "--param", f"InitLog={init_log}"):
        events = [line.split() for line in init_log.read_text(encoding="utf-8").splitlines()]
    assert sorted(kind for kind, _, _ in events) == ["end"] * warm + ["start"] * warm
    running = most = 0
    for kind, _, _ in sorted(events, key=lambda event: (float(event[2]), event[0] == "start")):
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert 1 <= most <= cpus
