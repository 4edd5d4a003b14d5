"""Ctrl-C during `cachelab load` (and `cachelab demo`): said to be an interruption, the faults lifted, and what was
written is named."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from cachelab import processes
from tests.loadtests.conftest import Stack
from tests.support.commands import cachelab_session

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]


def test_ctrl_c_during_a_load_run_is_an_interruption_with_partial_results(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with cachelab_session("load", "outage", "--host", stack.gateway_url, "--stub-admin", stack.stub_url,
                          "--users", "3", "--duration", "40s", "--phases", "warmup=2s,outage=30s,recovery=8s",
                          "--out", str(out)) as session:  # fmt: skip
        session.read_until("phase outage at", 30)
        deadline = time.monotonic() + 10  # the fault starts right after the phase's label
        while stack.admin("GET", "/__admin/faults")["mode"] != "error" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stack.admin("GET", "/__admin/faults")["mode"] == "error"
        output = session.ctrl_c()
        proc = session.proc
    assert proc.returncode == 130, output
    assert "interrupted (Ctrl-C), stopping the run" in output
    assert "SIGTERM" not in output
    said = re.search(
        r"cachelab load: interrupted; partial results of the first (\d+) s \((\d+) requests?\) in (\S+)/", output
    )
    assert said is not None, output
    assert said.group(3) == str(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"] == int(said.group(2)) > 0
    assert [p["name"] for p in summary["phases"]] == ["warmup", "outage"]
    assert stack.admin("GET", "/__admin/faults")["mode"] == "up"  # the fault was lifted


def test_ctrl_c_during_the_demo_stops_the_stack_and_names_the_partial_results(tmp_path: Path) -> None:
    ports = processes.free_ports(3)
    out = tmp_path / "demo"
    with cachelab_session("demo", "--duration", "40s", "--users", "4", "--rate", "40", "--redis-port", str(ports[0]),
                          "--stub-port", str(ports[1]), "--gateway-port", str(ports[2]),
                          "--out", str(out)) as session:  # fmt: skip
        session.read_until("phase outage at", 90)
        output = session.ctrl_c()
        proc = session.proc
    assert proc.returncode == 130, output
    progress = [line for line in output.splitlines() if "cachelab outage:" in line]
    assert progress, output
    for line in progress:  # tidy, as `cachelab load` prints them: "  10:00:00 cachelab outage: ..."
        assert re.match(r"^  \d\d:\d\d:\d\d (WARNING: )?cachelab", line), line
    assert "interrupted (Ctrl-C), stopping the run" in output
    assert "SIGTERM" not in output
    assert re.search(
        rf"cachelab demo: interrupted; the stack is stopped \(logs: {re.escape(str(out))}/logs/\); partial results "
        rf"of the first \d+ s \(\d+ requests\) in {re.escape(str(out))}/: summary.json",
        output,
    ), output
    assert (out / "summary.json").is_file()
    assert (out / "logs" / "gateway.log").is_file()
    for port in ports:
        processes.ensure_port_free(port)
