"""`cachelab up` keeps its logs where it said they are, and passes --stub-arg values that look like options."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cachelab import processes


@pytest.mark.slow
def test_up_keeps_its_log_folder_and_takes_stub_args_like_options() -> None:
    redis_port, stub_port, gateway_port = processes.free_ports(3)
    argv = [sys.executable, "-m", "cachelab", "up", "--no-locust", "--redis-port", str(redis_port),
            "--stub-port", str(stub_port), "--gateway-port", str(gateway_port),
            "--stub-arg", "--latency-ms", "--stub-arg", "50", "--stub-arg", "--seed", "--stub-arg", "3"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    lines: list[str] = []
    logs: Path | None = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        output = "".join(lines)
        assert "Ctrl-C stops everything" in output, output
        found = re.search(r"^  logs\s+(\S+)$", output, re.MULTILINE)
        assert found is not None, output
        logs = Path(found.group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{stub_port}/__admin/faults", timeout=10) as resp:
            faults = json.loads(resp.read())
        assert (faults["latency_ms"], faults["seed"]) == (50, 3)  # the stub got --latency-ms 50 --seed 3
        with urllib.request.urlopen(f"http://127.0.0.1:{gateway_port}/items/1", timeout=10) as resp:
            assert resp.status == 200
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert f"The logs stay in {logs}/" in rest
        for name in ("redis.log", "stub.log", "gateway.log"):
            assert (logs / name).is_file(), name
        assert "gateway_started" in (logs / "gateway.log").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if logs is not None:
            shutil.rmtree(logs, ignore_errors=True)
    for port in (redis_port, stub_port, gateway_port):
        processes.ensure_port_free(port)
