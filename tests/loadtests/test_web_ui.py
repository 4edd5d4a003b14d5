"""The scenarios in Locust's web UI (as `cachelab up` runs them): the shape takes the form's users and run time,
and /cachelab/summary serves the live summary."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cachelab import processes
from loadtests.runner import locustfile
from tests.loadtests.conftest import Stack

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]


RUN_TIME_S = 2.0
# Deadlines, generous on purpose (a busy machine is slow, not wrong): HTTP calls, and the run stopping by itself.
HTTP_TIMEOUT_S = 30
STOP_WITHIN_S = 10 * RUN_TIME_S + 30


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post_form(url: str, form: dict[str, str]) -> Any:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=HTTP_TIMEOUT_S) as resp:
        return json.loads(resp.read())


def test_web_ui_runs_the_shape_with_the_forms_figures_and_serves_the_summary(stack: Stack, tmp_path: Path) -> None:
    port = processes.free_port()
    ui = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile("steady")), "--host", stack.gateway_url,
            "--web-host", "127.0.0.1", "--web-port", str(port), "--stub-admin", stack.stub_url]  # fmt: skip
    with processes.running(argv, port=port, log=tmp_path / "locust.log", health_url=ui + "/", timeout=60):
        status, body = get(ui + "/cachelab/summary")
        assert (status, json.loads(body)) == (404, {"error": "no test has started yet"})
        form = {"user_count": "3", "spawn_rate": "3", "run_time": f"{RUN_TIME_S:g}s", "keys": "30"}
        started = post_form(ui + "/swarm", form)
        assert started["success"] is True
        deadline = time.monotonic() + STOP_WITHIN_S
        summary: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status, body = get(ui + "/stats/requests")
            if json.loads(body)["state"] == "stopped":
                status, body = get(ui + "/cachelab/summary")
                summary = json.loads(body)
                break
            time.sleep(0.3)
        assert summary, "the run did not stop by itself"
        assert summary["users"] == 3
        assert summary["settings"]["keys"] == 30
        # The form's run time, not the scenario's default: at least 2 s; a busy machine only makes it longer.
        assert RUN_TIME_S - 0.5 <= summary["duration_s"] < STOP_WITHIN_S
        assert summary["requests"] == summary["consistency"]["locust_requests"] > 0
        assert summary["upstream_requests"] == summary["forwarded"] > 0
        status, text = get(ui + "/cachelab/summary.txt")
        assert status == 200
        assert text.startswith("scenario steady")
