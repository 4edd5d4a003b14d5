"""Fixtures of the template tests: one `sam build`, a moto server, `sam package` into it, and stacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from cachelab import processes
from cachelab.commands.deploy import find_python, template_runtime
from tests.sam.support import REGION, TEMPLATE, for_moto, load_template, translate

SAM = str(Path(sys.executable).parent / "sam")
MOTO_SERVER = str(Path(sys.executable).parent / "moto_server")


def runtime_python() -> Path:
    python = find_python(template_runtime())
    if python is None:
        pytest.fail(
            f"python{template_runtime()} (the template's runtime) is needed by `sam build` without Docker: "
            "install it with pyenv or put it on PATH"
        )
    return python


def sam_env(**extra: str) -> dict[str, str]:
    """A clean environment for `sam`: the runtime's interpreter on PATH, no telemetry, no real AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = os.pathsep.join([str(runtime_python().parent), str(Path(sys.executable).parent), env["PATH"]])
    env.update(SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION=REGION, **extra)
    return env


def run_sam(args: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 120) -> str:
    proc = subprocess.run(
        [SAM, *args], cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"sam {' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def sam_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` of the real template, in-process builders, no Docker; the build directory."""
    work = tmp_path_factory.mktemp("sam-build")
    build = work / "build"
    run_sam(
        ["build", "--template-file", str(TEMPLATE), "--build-dir", str(build), "--cache-dir", str(work / "cache")],
        cwd=work,
        env=sam_env(),
    )
    return build


# ---------------------------------------------------------------------------------------------- moto
@dataclass
class Moto:
    endpoint: str
    workdir: Path
    templates_bucket: str = "cachelab-templates"
    stacks: int = 0

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=30),
        )

    def aws_env(self) -> dict[str, str]:
        """The environment that points `sam` (boto3) at this moto server."""
        config = self.workdir / "aws-config"
        config.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
        return sam_env(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_CONFIG_FILE=str(config),
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """A moto server as a real process on a free loopback port. The endpoint's host is `localhost`, because
    moto's CloudFormation resolves S3 TemplateURLs only for that host."""
    workdir = tmp_path_factory.mktemp("moto")
    port = processes.free_port()
    with processes.running(
        [MOTO_SERVER, "-H", processes.LOOPBACK, "-p", str(port)], port=port, log=workdir / "moto.log"
    ):
        server = Moto(f"http://localhost:{port}", workdir)
        server.client("s3").create_bucket(Bucket=server.templates_bucket)
        yield server


@dataclass
class Packaged:
    template: dict[str, Any]
    bucket: str
    keys: dict[str, str] = field(default_factory=dict)  # function logical id -> S3 key of its zip


@pytest.fixture(scope="session")
def packaged(moto: Moto, sam_build: Path) -> Packaged:
    """`sam package` of the built template into moto's S3, exactly as `sam deploy` uploads it."""
    bucket = "cachelab-artifacts"
    moto.client("s3").create_bucket(Bucket=bucket)
    out = moto.workdir / "packaged.yaml"
    run_sam(
        ["package", "--template-file", str(sam_build / "template.yaml"), "--s3-bucket", bucket,
         "--s3-prefix", "cachelab", "--output-template-file", str(out)],
        cwd=moto.workdir,
        env=moto.aws_env(),
    )  # fmt: skip
    template = load_template(out)
    keys = {}
    for logical, resource in template["Resources"].items():
        uri = resource.get("Properties", {}).get("CodeUri")
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(uri, str):
            assert uri.startswith(f"s3://{bucket}/"), uri
            keys[logical] = uri.removeprefix(f"s3://{bucket}/")
    return Packaged(template, bucket, keys)


@dataclass
class Stack:
    name: str
    parameters: dict[str, str]
    translated: dict[str, Any]
    outputs: dict[str, str]
    physical: dict[str, str]  # logical id -> physical id


def create_stack(moto: Moto, template: Mapping[str, Any], parameters: Mapping[str, str]) -> Stack:
    """Translate with samtranslator, adapt for moto (tests/sam/support.py), upload, create, wait."""
    moto.stacks += 1
    name = f"cachelab-test-{moto.stacks}"
    translated = translate(template, parameters)
    key = f"{name}.json"
    moto.client("s3").put_object(Bucket=moto.templates_bucket, Key=key, Body=json.dumps(for_moto(translated)))
    cfn = moto.client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateURL=f"{moto.endpoint}/{moto.templates_bucket}/{key}",
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    deadline = time.monotonic() + 120  # moto is quick; a busy machine is not
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    listed = cfn.describe_stack_resources(StackName=name)["StackResources"]
    return Stack(
        name=name,
        parameters=dict(parameters),
        translated=translated,
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        # moto lists resources skipped by a false condition without ids, and some (permissions) without a physical id
        physical={r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in listed if "LogicalResourceId" in r},
    )
