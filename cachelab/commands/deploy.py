"""`cachelab deploy`: `sam build` + `sam deploy` of sam/template.yaml to LocalStack or to a real AWS account.

The template is deployed unchanged; parameters pick the environment. Parameter values come from
sam/samconfig.toml (`localstack` or `default` environment), overridden by `--param Name=Value`, and are all passed
explicitly to `sam deploy` (its `--parameter-overrides` replaces the file's list instead of merging with it).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cachelab.cli import CliError
from cachelab.gateway.settings import GatewayError
from cachelab.gateway.spec import parse_params as name_values

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

REPO = Path(__file__).resolve().parents[2]
SAM_DIR = REPO / "sam"
TEMPLATE = SAM_DIR / "template.yaml"
SAMCONFIG = SAM_DIR / "samconfig.toml"
LOCALSTACK_ENDPOINT = "http://localhost:4566"
LOCALSTACK_REGION = "us-east-1"
DEFAULT_STACK = "cachelab"
LOCALSTACK_KEY = "test"  # LocalStack accepts any credentials; these are its documented dummies
TARGETS = ("localstack", "aws")

# Approximate on-demand prices in us-east-1 (check https://aws.amazon.com/elasticache/pricing/ and
# https://aws.amazon.com/vpc/pricing/ for your region); printed before a deploy to AWS.
HOURLY_COSTS = {
    "nat": "NAT gateway: ~$0.045/h each (+ ~$0.045 per GB processed) and its public IPv4 address ~$0.005/h",
    "node": "ElastiCache {node}: per node-hour (cache.t4g.micro ~$0.016/h)",
    "serverless": "ElastiCache Serverless (Redis OSS): billed for at least 1 GB stored, ~$0.125/h (~$90/month), "
    "plus ~$0.0034 per million ECPUs",
}


# ---------------------------------------------------------------------------------------------- helpers
def read_template(template: Path = TEMPLATE) -> dict[str, Any]:
    """The template as SAM CLI reads it: the reader the local gateway resolves it with, too."""
    # SAM CLI takes a second to import: loaded here, so `cachelab --help` does not pay for it.
    from cachelab.gateway.spec import TemplateError  # noqa: PLC0415
    from cachelab.gateway.template import read_template as sam_read  # noqa: PLC0415

    try:
        return sam_read(template)
    except TemplateError as exc:
        raise CliError(str(exc)) from None


def template_parameters(template: Path = TEMPLATE) -> list[str]:
    """The parameter names the template declares, in its order."""
    return [str(name) for name in read_template(template).get("Parameters") or {}]


def template_runtime(template: Path = TEMPLATE) -> str:
    """The Python version of the template's functions ("3.13" for `Runtime: python3.13`): the Globals' runtime,
    else the first Python function's."""
    data = read_template(template)
    globals_ = (data.get("Globals") or {}).get("Function") or {}
    runtimes = [globals_.get("Runtime")]
    for resource in (data.get("Resources") or {}).values():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Function":
            runtimes.append((resource.get("Properties") or {}).get("Runtime"))
    for runtime in runtimes:
        if isinstance(runtime, str) and re.fullmatch(r"python\d+\.\d+", runtime):
            return runtime.removeprefix("python")
    raise CliError(f"{template} declares no python runtime")


def find_python(version: str) -> Path | None:
    """A working `pythonX.Y` for `sam build` (which needs the runtime's interpreter on PATH, without Docker):
    first on PATH (pyenv shims that cannot run it are skipped), then in pyenv's versions folder."""
    name = f"python{version}"
    candidates = [Path(d) / name for d in os.environ.get("PATH", "").split(os.pathsep) if d and "shims" not in d]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted((pyenv_root / "versions").glob(f"{version}*/bin/{name}"), reverse=True)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_sam(explicit: str | None = None) -> str:
    """The `sam` executable: --sam-cli, else on PATH, else next to this Python (the project's venv)."""
    if explicit is not None:
        found = shutil.which(explicit)
        if found is None:
            raise CliError(f"the AWS SAM CLI was not found at {explicit!r}")
        return found
    found = shutil.which("sam") or shutil.which("sam", path=str(Path(sys.executable).parent))
    if found is None:
        raise CliError(
            "the AWS SAM CLI (`sam`) is not installed: `pip install 'cachelab[sam]'` (or `make venv`), or see "
            "https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html"
        )
    return found


def samconfig(env_name: str, path: Path = SAMCONFIG) -> dict[str, dict[str, Any]]:
    """One environment of samconfig.toml: {"global": {...}, "deploy": {...}, ...} (the `parameters` tables)."""
    data = tomllib.loads(path.read_text())
    env = data.get(env_name)
    if not isinstance(env, dict):
        raise CliError(f"{path} has no [{env_name}.*] environment")
    return {command: dict(table.get("parameters", {})) for command, table in env.items() if isinstance(table, dict)}


def parse_params(pairs: Sequence[str], known: Sequence[str]) -> dict[str, str]:
    """`Name=Value` strings (read as `cachelab gateway --param` reads them), checked against the template's names."""
    try:
        params = name_values(pairs)
    except GatewayError as exc:
        raise CliError(str(exc)) from None
    for name in params:
        if name not in known:
            raise CliError(f"unknown template parameter {name!r}; the template declares: {', '.join(known)}")
    return params


def deploy_parameters(env_name: str, overrides: Sequence[str]) -> dict[str, str]:
    known = template_parameters()
    config = samconfig(env_name).get("deploy", {})
    params = parse_params(shlex.split(str(config.get("parameter_overrides", ""))), known)
    params.update(parse_params(overrides, known))
    return params


def check_reachable(endpoint: str, *, timeout: float = 3.0) -> None:
    """Fail with a clear message when nothing answers HTTP at `endpoint` (any HTTP status counts as up)."""
    url = endpoint.rstrip("/") + "/_localstack/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - a user-given http(s) endpoint
            return
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            f"LocalStack is not reachable at {endpoint} ({reason}); start it first "
            f"(`docker compose up -d localstack`) or pass --endpoint-url"
        ) from None


@dataclass(frozen=True)
class AwsTarget:
    """Where the AWS APIs are: LocalStack (endpoint set) or a real account (endpoint None)."""

    name: str
    region: str | None
    endpoint: str | None = None

    def environment(self, base: Mapping[str, str], workdir: Path) -> dict[str, str]:
        """The environment for `sam` and boto3: for LocalStack, its endpoint, dummy credentials and path-style
        S3 addressing (bucket.localhost does not resolve everywhere)."""
        env = dict(base)
        env.setdefault("SAM_CLI_TELEMETRY", "0")
        if self.region:
            env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = self.region
        if self.endpoint is None:
            return env
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
            env.pop(name, None)
        config = workdir / "aws-config"
        config.write_text(f"[default]\nregion = {self.region}\ns3 =\n    addressing_style = path\n")
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID=LOCALSTACK_KEY,
            AWS_SECRET_ACCESS_KEY=LOCALSTACK_KEY,
            AWS_CONFIG_FILE=str(config),
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        return env

    def _options(self) -> dict[str, Any]:
        from botocore.config import Config  # noqa: PLC0415 - botocore comes with the `sam` extra

        options: dict[str, Any] = {
            "region_name": self.region,
            "config": Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"}),
        }
        if self.endpoint is not None:
            options.update(
                endpoint_url=self.endpoint, aws_access_key_id=LOCALSTACK_KEY, aws_secret_access_key=LOCALSTACK_KEY
            )
        return options

    def cloudformation(self) -> CloudFormationClient:
        import boto3  # noqa: PLC0415 - keep `cachelab --help` fast

        return boto3.client("cloudformation", **self._options())

    def sns(self) -> Any:
        import boto3  # noqa: PLC0415

        return boto3.client("sns", **self._options())


def make_target(name: str, *, region: str | None, endpoint: str | None) -> AwsTarget:
    if name == "localstack":
        return AwsTarget(name, region or LOCALSTACK_REGION, endpoint or LOCALSTACK_ENDPOINT)
    if endpoint is not None:
        raise CliError("--endpoint-url applies to --target localstack only")
    config_region = samconfig("default").get("global", {}).get("region")
    return AwsTarget(
        name, region or config_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )


def stack_outputs(target: AwsTarget, stack_name: str) -> dict[str, str]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    where = target.endpoint or f"AWS ({target.region or 'default region'})"
    try:
        stacks = target.cloudformation().describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise CliError(f"stack {stack_name!r} not found at {where}: {exc.response['Error'].get('Message')}") from None
    except BotoCoreError as exc:
        raise CliError(f"cannot reach CloudFormation at {where}: {exc}") from None
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in stacks[0].get("Outputs", [])}


def api_url(target: AwsTarget, outputs: Mapping[str, str]) -> str:
    """The URL clients call. LocalStack serves REST APIs under /restapis/<id>/<stage>/_user_request_/."""
    if target.endpoint is not None and "ApiId" in outputs and "ApiStageName" in outputs:
        return f"{target.endpoint.rstrip('/')}/restapis/{outputs['ApiId']}/{outputs['ApiStageName']}/_user_request_/"
    return outputs.get("ApiUrl", "")


def cost_notice(params: Mapping[str, str]) -> list[str]:
    mode = params.get("RedisMode", "elasticache")
    if mode == "external":
        return []
    multi = params.get("MultiAZ", "false") == "true"
    nats = 2 if multi else 1
    lines = [f"{nats} x {HOURLY_COSTS['nat']}"]
    if mode == "serverless":
        lines.append(HOURLY_COSTS["serverless"])
    else:
        node = params.get("CacheNodeType", "cache.t4g.micro")
        lines.append(f"{2 if multi else 1} x " + HOURLY_COSTS["node"].format(node=node))
    return lines


# ---------------------------------------------------------------------------------------------- the command
def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="sam build + sam deploy of sam/template.yaml to LocalStack or AWS; prints the API URL",
        description="Build and deploy sam/template.yaml unchanged. --target localstack deploys to LocalStack "
        f"({LOCALSTACK_ENDPOINT}, RedisMode=external); --target aws to the account of your AWS credentials "
        "(RedisMode=elasticache by default: a VPC, NAT gateway(s) and ElastiCache that cost money by the hour). "
        "Parameters come from sam/samconfig.toml and --param. --delete removes the stack (sam delete).",
    )
    parser.add_argument("--target", choices=TARGETS, required=True)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter (repeatable), e.g. --param MultiAZ=true",
    )
    parser.add_argument("--stack-name", default=None, help="CloudFormation stack (default: samconfig, cachelab)")
    parser.add_argument("--region", default=None, help=f"AWS region (LocalStack: {LOCALSTACK_REGION})")
    parser.add_argument("--endpoint-url", default=None, help=f"LocalStack endpoint (default {LOCALSTACK_ENDPOINT})")
    parser.add_argument("--build-dir", type=Path, default=SAM_DIR / ".aws-sam" / "build", help="sam build output")
    parser.add_argument("--no-build", action="store_true", help="deploy the last build as it is")
    parser.add_argument("--delete", action="store_true", help="delete the stack instead (sam delete)")
    parser.add_argument("--yes", action="store_true", help="no confirmation prompts (changeset, delete)")
    parser.add_argument("--dry-run", action="store_true", help="print the sam commands instead of running them")
    parser.add_argument("--sam-cli", default=None, metavar="PATH", help="the sam executable (default: on PATH)")
    parser.set_defaults(func=run, needs=lambda _args: ("sam",))


def run(args: argparse.Namespace) -> int:
    env_name = "localstack" if args.target == "localstack" else "default"
    target = make_target(args.target, region=args.region, endpoint=args.endpoint_url)
    config = samconfig(env_name)
    stack = args.stack_name or config.get("global", {}).get("stack_name") or DEFAULT_STACK
    params = deploy_parameters(env_name, args.param)
    if params.get("RedisMode") == "external" and not params.get("RedisUrl"):
        raise CliError("RedisMode=external needs --param RedisUrl=redis://HOST:PORT/0")
    sam = find_sam(args.sam_cli)
    common = ["--config-file", str(SAMCONFIG), "--config-env", env_name]
    region = ["--region", target.region] if target.region else []

    commands: list[list[str]] = []
    if args.delete:
        commands.append([sam, "delete", "--stack-name", stack, *common, *region])
        if args.yes or target.endpoint is not None:
            commands[-1].append("--no-prompts")
    else:
        if not args.no_build:
            commands.append(
                [sam, "build", "--template-file", str(TEMPLATE), "--build-dir", str(args.build_dir), *common]
            )
        deploy = [sam, "deploy", "--template-file", str(args.build_dir / "template.yaml"), "--stack-name", stack]
        deploy += [*common, *region, "--parameter-overrides", *(f"{k}={v}" for k, v in params.items())]
        if args.yes:
            deploy.append("--no-confirm-changeset")
        commands.append(deploy)

    python = find_python(template_runtime())
    if python is None and not args.delete and not args.no_build:
        raise CliError(
            f"sam build needs python{template_runtime()} (the template's runtime) on PATH, without Docker; "
            "install it (e.g. `pyenv install 3.13`) or put its folder first on PATH"
        )

    if args.dry_run:
        if target.endpoint is not None:
            print(f"# with AWS_ENDPOINT_URL={target.endpoint} and dummy credentials")
        for command in commands:
            print(shlex.join(command))
        return 0

    if target.endpoint is not None:
        check_reachable(target.endpoint)
    elif not args.delete:
        notice = cost_notice(params)
        if notice:
            print("This stack costs money by the hour while it exists (approximate, us-east-1):", file=sys.stderr)
            for line in notice:
                print(f"  - {line}", file=sys.stderr)
            print(f"Remove it with: cachelab deploy --target aws --delete --stack-name {stack}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="cachelab-deploy-") as workdir:
        env = target.environment(os.environ, Path(workdir))
        if python is not None:
            env["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", "")])
        for command in commands:
            print(f"$ {shlex.join(command)}", file=sys.stderr)
            status = subprocess.run(command, cwd=SAM_DIR, env=env, check=False).returncode
            if status != 0:
                raise CliError(f"`sam {command[1]}` failed with status {status} (its output is above)")

    if args.delete:
        print(f"stack {stack} deleted")
        return 0
    outputs = stack_outputs(target, stack)
    print(f"API URL: {api_url(target, outputs)}")
    for key in ("FunctionName", "InvalidationTopicArn", "RedisEndpoint"):
        if key in outputs:
            print(f"{key}: {outputs[key]}")
    return 0
