"""`cachelab up` keeps its logs where it said they are, and passes --stub-arg values that look like options."""

from __future__ import annotations

import re
import shutil
import urllib.request
from pathlib import Path

import pytest

from cachelab import processes
from stub_api.client import StubAdmin
from tests.support.commands import cachelab_session


@pytest.mark.slow
def test_up_keeps_its_log_folder_and_takes_stub_args_like_options() -> None:
    redis_port, stub_port, gateway_port = processes.free_ports(3)
    logs: Path | None = None
    try:
        with cachelab_session("up", "--no-locust", "--redis-port", str(redis_port), "--stub-port", str(stub_port),
                              "--gateway-port", str(gateway_port), "--stub-arg", "--latency-ms", "--stub-arg", "50",
                              "--stub-arg", "--seed", "--stub-arg", "3") as session:  # fmt: skip
            session.read_until("Ctrl-C stops everything", 90)
            found = re.search(r"^  logs\s+(\S+)$", session.output, re.MULTILINE)
            assert found is not None, session.output
            logs = Path(found.group(1))
            faults = StubAdmin(f"http://127.0.0.1:{stub_port}", timeout=10).fault_state()
            assert (faults["latency_ms"], faults["seed"]) == (50, 3)  # the stub got --latency-ms 50 --seed 3
            with urllib.request.urlopen(f"http://127.0.0.1:{gateway_port}/items/1", timeout=10) as resp:
                assert resp.status == 200
            output = session.ctrl_c(timeout=30)
            assert session.proc.returncode == 0, output
        assert f"The logs stay in {logs}/" in output
        for name in ("redis.log", "stub.log", "gateway.log"):
            assert (logs / name).is_file(), name
        assert "gateway_started" in (logs / "gateway.log").read_text()
    finally:
        if logs is not None:
            shutil.rmtree(logs, ignore_errors=True)
    for port in (redis_port, stub_port, gateway_port):
        processes.ensure_port_free(port)
