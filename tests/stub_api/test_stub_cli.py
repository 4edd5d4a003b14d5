"""`cachelab stub`, `python -m stub_api`, their flags and environment variables, and the Docker image recipe."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cachelab import processes
from stub_api.config import OPTIONS
from tests.stub_api.helpers import StubClient, running_stub, stub_env

REPO = Path(__file__).resolve().parents[2]
STUB_DIR = REPO / "stub_api"
CACHELAB = [str(Path(sys.executable).with_name("cachelab"))]
PYTHON_M = [sys.executable, "-m", "stub_api"]


def test_cachelab_stub_runs_the_server(tmp_path: Path) -> None:
    flags = ["--seed", "5", "--latency-ms", "30", "--cache-control", "max-age=7"]
    with running_stub(flags, log_dir=tmp_path, argv0=[*CACHELAB, "stub"]) as client:
        faults = client.admin("GET", "faults")
        assert (faults["seed"], faults["latency_ms"], faults["cache_control"]) == (5, 30.0, "max-age=7")
        reply = client.get("/items/1")
        assert reply.status == 200
        assert reply.elapsed >= 0.029
        assert reply.headers["Cache-Control"] == "max-age=7"
    assert client.log is not None
    assert f"listening on http://127.0.0.1:{client.port}" in client.log.read_text()


def test_environment_variables_configure_everything(tmp_path: Path) -> None:
    port = processes.free_port()
    env = stub_env(
        {
            "STUB_PORT": str(port),
            "STUB_SEED": "11",
            "STUB_MODE": "up",
            "STUB_LATENCY_MS": "15",
            "STUB_LATENCY_P99_MS": "25",
            "STUB_LATENCY_MODEL": "uniform",
            "STUB_ERROR_RATE": "0.1",
            "STUB_ERROR_STATUS": "429",
            "STUB_RETRY_AFTER_S": "4",
            "STUB_CACHE_CONTROL": "s-maxage=9",
            "STUB_TIMEOUT_CAP_S": "30",
            "STUB_ITEMS": "50",
            "STUB_ACCESS_LOG": "true",
            "STUB_HOST": "127.0.0.1",
            "STUB_FAULTS": json.dumps({"routes": {"/session": {"mode": "error"}}}),
        }
    )
    log = tmp_path / "env.log"
    with processes.running(PYTHON_M, port=port, env=env, log=log, health_url=f"http://127.0.0.1:{port}/__admin/health"):
        client = StubClient(port)
        faults = client.admin("GET", "faults")
        expected = {
            "seed": 11,
            "mode": "up",
            "latency_ms": 15.0,
            "latency_p99_ms": 25.0,
            "latency_model": "uniform",
            "error_rate": 0.1,
            "error_status": 429,
            "retry_after_s": 4,
            "cache_control": "s-maxage=9",
            "timeout_cap_s": 30.0,
            "routes": {"/session": {"mode": "error"}},
        }
        assert {k: faults[k] for k in expected} == expected
        assert client.request("GET", "/__admin/items/50").status == 200
        assert client.request("GET", "/__admin/items/51").status == 404, "STUB_ITEMS=50"
        assert client.get("/items/51").status in (404, 429)  # 429 when the 10 % error draw hits
        assert client.get("/session").status == 503
    lines = log.read_text().splitlines()
    assert sum('"GET /items/51"' in line for line in lines) == 1, "one access-log line per request"
    assert not any("/__admin/faults" in line for line in lines), "admin GETs are not logged"


def test_flags_beat_environment_and_faults_file(tmp_path: Path) -> None:
    faults_file = tmp_path / "faults.json"
    faults_file.write_text(json.dumps({"latency_ms": 99, "error_rate": 0.5, "cache_control": "no-store"}))
    env = {"STUB_LATENCY_MS": "15", "STUB_FAULTS": f"@{faults_file}"}
    with running_stub(["--latency-ms", "40"], env=env, log_dir=tmp_path) as client:
        faults = client.admin("GET", "faults")
        assert faults["latency_ms"] == 40.0, "flag > env var > --faults JSON"
        assert (faults["error_rate"], faults["cache_control"]) == (0.5, "no-store")


def test_access_log_is_off_by_default(tmp_path: Path) -> None:
    with running_stub([], log_dir=tmp_path) as client:
        client.get("/items/1")
        client.get("/nope")
    assert client.log is not None
    text = client.log.read_text()
    assert "/items/1" not in text
    assert "/nope" not in text


BAD_CONFIG = [
    (["--error-rate", "2"], {}, "invalid start state: error_rate must be >= 0 and <= 1, got 2.0"),
    (["--latency-ms", "abc"], {}, "--latency-ms='abc': expected a number"),
    (["--latency-ms", "-3"], {}, "latency_ms must be >= 0"),
    (["--mode", "sideways"], {}, "mode must be one of 'up', 'error', 'timeout', 'reset'"),
    (["--error-status", "404"], {}, "error_status must be one of 500, 502, 503, 429"),
    (["--faults", "{"], {}, "--faults: not valid JSON"),
    (["--faults", "[]"], {}, "--faults: must be a JSON object"),
    (["--faults", "@/nonexistent/faults.json"], {}, "--faults: cannot read /nonexistent/faults.json"),
    (["--faults", '{"outage": [{"mode": "error"}]}'], {}, "outage[0] needs 'start_s'"),
    (["--items", "0"], {}, "items must be between 1 and 1000000"),
    ([], {"STUB_ACCESS_LOG": "maybe"}, "STUB_ACCESS_LOG='maybe': expected 1/true/yes/on or 0/false/no/off"),
    ([], {"STUB_SEED": "x"}, "STUB_SEED='x': expected an integer"),
    ([], {"STUB_LATENCY_P99_MS": "5", "STUB_LATENCY_MS": "10"}, "latency_p99_ms (5) must be >= latency_ms (10)"),
]


@pytest.mark.parametrize("runner", ["cachelab", "python-m"])
@pytest.mark.parametrize(("flags", "env", "message"), BAD_CONFIG)
def test_bad_configuration_is_a_clear_error(runner: str, flags: list[str], env: dict[str, str], message: str) -> None:
    argv = [*CACHELAB, "stub"] if runner == "cachelab" else PYTHON_M
    port = processes.free_port()
    done = subprocess.run(
        [*argv, "--port", str(port), *flags], env=stub_env(env), capture_output=True, text=True, timeout=20, check=False
    )
    assert done.returncode == 2, done
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not processes.port_open(port)


@pytest.mark.parametrize("runner", ["cachelab", "python-m"])
def test_port_in_use_is_a_clear_error(runner: str) -> None:
    argv = [*CACHELAB, "stub"] if runner == "cachelab" else PYTHON_M
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*argv, "--port", str(port)], env=stub_env(), capture_output=True, text=True, timeout=20, check=False
        )
    assert done.returncode == 2, done
    assert f"{port}" in done.stderr
    assert "already in use" in done.stderr or "cannot listen" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_documents_every_environment_variable() -> None:
    done = subprocess.run([*CACHELAB, "stub", "--help"], capture_output=True, text=True, timeout=20, check=True)
    squashed = " ".join(done.stdout.split())
    for option in OPTIONS:
        assert option.flag in squashed, option
        assert f"[env {option.env}]" in squashed, option


def test_stops_cleanly_at_once_even_with_held_requests(tmp_path: Path) -> None:
    """A request held in timeout mode (up to timeout_cap_s, 300 s) must not keep the stub from stopping: SIGTERM
    lets it go. processes.stop escalates to SIGKILL after its timeout (a tenth of the cap), so a clean exit code
    is the proof; how fast it starts and stops is a figure for `make bench-stub`."""
    port = processes.free_port()
    proc = processes.start([*PYTHON_M, "--port", str(port)], env=stub_env(), log=tmp_path / "fast.log")
    try:
        processes.wait_for_http(f"http://127.0.0.1:{port}/__admin/health", timeout=60, proc=proc)
        client = StubClient(port)
        assert client.faults(mode="timeout")["timeout_cap_s"] == 300
        held = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.sendall(b"GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.wait_stats(lambda s: s["in_flight"] == 1, timeout=30)["in_flight"] == 1
        processes.stop(proc, timeout=30)
        assert proc.returncode == 0, "SIGTERM did not stop the stub: it was killed"
        held.close()
    finally:
        processes.stop(proc)


def test_stub_api_needs_nothing_but_aiohttp_from_this_repo() -> None:
    code = (
        "import sys, stub_api.__main__, stub_api.server; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'cachelab', 'proxy', 'loadtests', 'tests'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=True)
    assert done.stdout.strip() == "[]"


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = (STUB_DIR / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line and not line.startswith("#")
    ]


def test_dockerfile_recipe() -> None:
    steps = _dockerfile()
    assert steps[0] == ("FROM", "python:3.12-slim")
    for instruction, args in steps:
        if instruction == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (STUB_DIR / source).exists(), f"COPY {source}: not in the build context stub_api/"
    cmd = [json.loads(args) for instruction, args in steps if instruction == "CMD"]
    assert cmd == [["python", "-m", "stub_api"]]
    env = " ".join(args for instruction, args in steps if instruction == "ENV")
    assert "STUB_HOST=0.0.0.0" in env
    assert "STUB_PORT=8081" in env
    assert ("EXPOSE", "8081") in steps
    assert any(i == "HEALTHCHECK" and "/__admin/health" in a for i, a in steps)
    requirements = [
        line for line in (STUB_DIR / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")
    ]
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert requirements == extras["stub"], "the image installs what the `stub` extra declares"


def test_image_layout_runs_with_the_dockerfile_environment(tmp_path: Path) -> None:
    """What the image does, minus Docker: stub_api/ copied to /app/stub_api, `python -m stub_api` run from /app
    with the Dockerfile's ENV (loopback instead of 0.0.0.0 here), then its HEALTHCHECK command."""
    app = tmp_path / "app"
    shutil.copytree(STUB_DIR, app / "stub_api", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    where = subprocess.run(
        [sys.executable, "-c", "import stub_api; print(stub_api.__file__)"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert where.stdout.strip().startswith(str(app)), "the copy is what runs"
    port = processes.free_port()
    env = stub_env({"STUB_HOST": "127.0.0.1", "STUB_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    healthcheck = next(json.loads(a.split("CMD", 1)[1]) for i, a in _dockerfile() if i == "HEALTHCHECK")
    proc = processes.start([sys.executable, "-m", "stub_api"], env=env, cwd=app, log=tmp_path / "image.log")
    try:
        processes.wait_for_http(f"http://127.0.0.1:{port}/__admin/health", timeout=10, proc=proc)
        healthcheck[0] = sys.executable
        subprocess.run(healthcheck, env=env, timeout=10, check=True)
        assert StubClient(port).get("/image.png").status == 200, "static files and package data are in place"
        assert b"stub API control" in StubClient(port).get("/__admin/").body
    finally:
        processes.stop(proc)
