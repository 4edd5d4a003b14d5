"""`cachelab up` as a user runs it: real processes, HTTP through the gateway, Ctrl-C, nothing left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from cachelab import processes


def _listening(port: int) -> bool:
    return processes.port_open(port)


def _children_alive(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()


@pytest.mark.slow
def test_up_serves_through_the_gateway_and_stops_cleanly_on_ctrl_c() -> None:
    redis_port, stub_port, gateway_port, locust_port = processes.free_ports(4)
    argv = [sys.executable, "-m", "cachelab", "up", "--redis-port", str(redis_port), "--stub-port", str(stub_port),
            "--gateway-port", str(gateway_port), "--locust-port", str(locust_port)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        assert any("Ctrl-C stops everything" in line for line in lines), "".join(lines)
        output = "".join(lines)
        for port in (redis_port, stub_port, gateway_port, locust_port):
            assert f":{port}" in output
            assert _listening(port)
        gateway = f"http://127.0.0.1:{gateway_port}"
        first = _get(f"{gateway}/items/3?b=2&a=1")
        second = _get(f"{gateway}/items/3?a=1&b=2")
        assert (first[0], first[1]["x-cache"]) == (200, "MISS")
        assert (second[0], second[1]["x-cache"], second[2]) == (200, "HIT", first[2])
        assert _get(f"http://127.0.0.1:{locust_port}/")[0] == 200
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert "every port is free again" in rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for port in (redis_port, stub_port, gateway_port, locust_port):
        processes.ensure_port_free(port)  # raises if anything still listens
        assert _children_alive(f"--port {port}") == []


def test_a_taken_port_fails_fast_with_a_clear_message_and_starts_nothing() -> None:
    redis_port, stub_port, gateway_port = processes.free_ports(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", gateway_port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "cachelab", "up", "--no-locust", "--redis-port", str(redis_port),
             "--stub-port", str(stub_port), "--gateway-port", str(gateway_port)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"port {gateway_port} on 127.0.0.1 is already in use, so the gateway cannot start" in result.stderr
    assert "Traceback" not in result.stderr
    assert not _listening(redis_port)  # checked before anything started, not found out after
    assert not _listening(stub_port)
