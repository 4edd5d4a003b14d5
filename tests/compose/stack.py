"""One compose project of this repository's compose.yaml, driven from the host with the docker CLI.

`ComposeStack` runs `docker compose -f compose.yaml -p PROJECT ...` with free loopback host ports (the file's own
knobs: LOCALSTACK_PORT, STUB_API_PORT, LOCUST_PORT, JUPYTER_PORT) and nothing else changed, logs every command
with its output, and finds what belongs to the project, including the Lambda containers LocalStack starts
outside compose (named after LocalStack's container: `PROJECT-localstack-1-lambda-...`). Used by
tests/compose/test_stack.py and bench/bench_compose.py.

Every wait here is bounded by a timeout taken from the configuration it waits on (compose.yaml's healthchecks,
the deploy's smoke timeout, the template's function timeout).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cachelab.commands.deploy import TEMPLATE, deploy_parameters
from cachelab.processes import LOOPBACK, free_ports
from tests.compose.support import load_compose, load_template

REPO = Path(__file__).resolve().parents[2]
PORT_VARIABLES = ("LOCALSTACK_PORT", "STUB_API_PORT", "LOCUST_PORT", "JUPYTER_PORT")
# Compose's own variables that would change which file, project or profiles a command means.
_COMPOSE_OVERRIDES = ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_PATH_SEPARATOR")


def _seconds(text: object) -> float:
    """A compose duration ("5s", "1m30s", "300ms") or a number, in seconds."""
    total, rest = 0.0, str(text).strip()
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)?", rest):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001, "": 1}[unit]
    return total


def _health_seconds(service: Mapping[str, Any]) -> float:
    """How long compose waits for a service to become healthy: start period, then retries x (interval + timeout)."""
    check = service["healthcheck"]
    return _seconds(check.get("start_period", 0)) + int(check["retries"]) * (
        _seconds(check["interval"]) + _seconds(check["timeout"])
    )


_COMPOSE = load_compose()
_DEPLOY = deploy_parameters("localstack", [])
_TEMPLATE_PARAMETERS = load_template(TEMPLATE)["Parameters"]


def template_value(name: str) -> float:
    """A template parameter as `docker compose up` deploys it (sam/samconfig.toml [localstack], else the default)."""
    return float(_DEPLOY.get(name, _TEMPLATE_PARAMETERS[name]["Default"]))


# The configuration every wait below is derived from.
UPSTREAM_TIMEOUT = template_value("UpstreamTimeoutSeconds")
FUNCTION_TIMEOUT = template_value("FunctionTimeoutSeconds")
LAMBDA_STARTUP = _seconds(_COMPOSE.environment("localstack")["LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT"])
SMOKE_SECONDS = _seconds(_COMPOSE.environment("deploy")["CACHELAB_SMOKE_TIMEOUT"])
LOCALSTACK_STOP_SECONDS = _seconds(_COMPOSE.service("localstack")["stop_grace_period"])
# A stack's first `up`: LocalStack becomes healthy, `deploy` runs `sam deploy` (bounded here by DEPLOY_SECONDS)
# and waits up to CACHELAB_SMOKE_TIMEOUT for the first proxied answer, then the Locust master becomes healthy.
DEPLOY_SECONDS = 300.0
UP_SECONDS = (
    _health_seconds(_COMPOSE.service("localstack"))
    + DEPLOY_SECONDS
    + SMOKE_SECONDS
    + _health_seconds(_COMPOSE.service("locust-master"))
)
# One request through API Gateway: a new Lambda container's start, then the function's whole run.
REQUEST_SECONDS = LAMBDA_STARTUP + FUNCTION_TIMEOUT + 10.0
# A cold `docker compose build` installs the SAM CLI, Locust and JupyterLab from PyPI.
BUILD_SECONDS = 1800.0
# `down`: LocalStack's stop_grace_period, then compose kills it; the others stop within their 10 s.
DOWN_SECONDS = LOCALSTACK_STOP_SECONDS + 10.0 + 30.0
ENGINE_SECONDS = 20.0


class ComposeError(RuntimeError):
    """A docker or docker compose command failed; the message has its command line and the end of its output."""


def docker_problem() -> str | None:
    """Why a compose stack cannot run on this machine, or None when the Docker engine answers and Compose v2 is
    installed."""
    if shutil.which("docker") is None:
        return "no `docker` command on PATH (Docker Engine or Docker Desktop with Compose v2 is needed)"

    def ask(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=ENGINE_SECONDS, check=False)

    try:
        engine = ask("version", "--format", "{{.Server.Version}}")  # needs the daemon, unlike `docker --version`
        if engine.returncode != 0:
            reason = (engine.stderr.strip().splitlines() or ["no output"])[-1]
            return f"the Docker engine does not answer: {reason}"
        compose = ask("compose", "version", "--short")
    except subprocess.TimeoutExpired as exc:
        return f"`{' '.join(map(str, exc.cmd))}` did not answer within {ENGINE_SECONDS:g} s"
    if compose.returncode != 0 or not compose.stdout.strip().lstrip("v").startswith("2."):
        return "Docker Compose v2 is not installed (`docker compose version` fails or is not 2.x)"
    return None


# ---------------------------------------------------------------------------------------------- HTTP
@dataclass(frozen=True)
class Answer:
    """One HTTP exchange as the client saw it: every header line kept, in order, duplicates included."""

    status: int | None  # None: no HTTP answer (the error says why)
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    elapsed: float = 0.0
    error: str | None = None

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def repeated(self) -> list[str]:
        """Header names that arrived more than once."""
        names = [key.lower() for key, _ in self.headers]
        return sorted({name for name in names if names.count(name) > 1})

    @property
    def x_cache(self) -> str | None:
        return self.header("X-Cache")

    @property
    def forwarded(self) -> bool:
        """The rule of docs/configuration.md: this request went upstream exactly when Cache-Status has `fwd=` and no
        `collapsed`."""
        status = self.header("Cache-Status") or ""
        return "fwd=" in status and "collapsed" not in status

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        if self.status is None:
            return f"no answer after {self.elapsed:.1f} s: {self.error}"
        shown = ", ".join(f"{k}: {v}" for k, v in self.headers if k.lower() in {"x-cache", "cache-status", "age"})
        return f"HTTP {self.status} after {self.elapsed:.1f} s [{shown}] {self.body[:200]!r}"


def http(method: str, url: str, *, timeout: float, body: Mapping[str, Any] | None = None) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
            return Answer(response.status, tuple(response.headers.items()), payload, time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        with exc:
            payload = exc.read()
        return Answer(exc.code, tuple(exc.headers.items()), payload, time.monotonic() - started)
    except (OSError, ValueError) as exc:
        return Answer(None, elapsed=time.monotonic() - started, error=str(getattr(exc, "reason", exc)))


def poll(
    probe: Callable[[], Answer], done: Callable[[Answer], bool], *, timeout: float, interval: float
) -> tuple[Answer, list[Answer]]:
    """Call `probe` until `done` says so or `timeout` seconds passed; the last answer and every answer seen."""
    deadline = time.monotonic() + timeout
    seen: list[Answer] = []
    for _ in range(int(timeout / interval) + 2):  # a bound on the loop besides the clock
        answer = probe()
        seen.append(answer)
        if done(answer) or time.monotonic() + interval > deadline:
            break
        time.sleep(interval)
    return seen[-1], seen


# ---------------------------------------------------------------------------------------------- the stack
@dataclass
class ComposeStack:
    project: str
    log: Path  # every command line and its output, appended
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # more of compose.yaml's knobs
    directory: Path = REPO  # where compose.yaml (and the build contexts) are
    mounted: set[str] = field(default_factory=set)  # volumes the project's containers were seen to mount

    @classmethod
    def create(cls, prefix: str, log_dir: Path, **env: str) -> ComposeStack:
        """A project named PREFIX-PID on four free loopback ports; `cleanup_stale(PREFIX)` finds it again."""
        ports = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True))
        project = f"{prefix}-{os.getpid()}"
        log_dir.mkdir(parents=True, exist_ok=True)
        return cls(project=project, log=log_dir / f"{project}.log", ports=ports, env=dict(env))

    # ------------------------------------------------------------------ commands
    def environment(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k not in _COMPOSE_OVERRIDES and k not in PORT_VARIABLES}
        return {**base, **{k: str(v) for k, v in self.ports.items()}, **self.env}

    def _write_log(self, text: str) -> None:
        with self.log.open("a", encoding="utf-8") as f:
            f.write(text)

    def run(
        self, argv: Sequence[str], *, timeout: float, check: bool = True, directory: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A docker command with the stack's environment; its output is logged (and returned)."""
        stamp = datetime.now().strftime("%H:%M:%S")
        self._write_log(f"\n[{stamp}] $ {' '.join(argv)}\n")
        started = time.monotonic()
        try:
            proc = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self.environment(),
                cwd=directory or self.directory,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = _text(exc.stdout) + _text(exc.stderr)
            self._write_log(out + f"\n[timed out after {timeout:g} s]\n")
            raise ComposeError(f"`{' '.join(argv)}` did not finish within {timeout:g} s:\n{_tail(out)}") from None
        self._write_log(
            proc.stdout + proc.stderr + f"[exit {proc.returncode} after {time.monotonic() - started:.1f} s]\n"
        )
        if check and proc.returncode != 0:
            raise ComposeError(
                f"`{' '.join(argv)}` failed with exit status {proc.returncode}:\n{_tail(proc.stdout + proc.stderr)}"
            )
        return proc

    def compose(
        self, *args: str, timeout: float, check: bool = True, directory: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        folder = directory or self.directory
        argv = ["docker", "compose", "-f", str(folder / "compose.yaml"), "-p", self.project, *args]
        return self.run(argv, timeout=timeout, check=check, directory=folder)

    def timed(self, *args: str, timeout: float, directory: Path | None = None) -> float:
        """Seconds a compose command took (it must succeed)."""
        started = time.monotonic()
        self.compose(*args, timeout=timeout, directory=directory)
        return time.monotonic() - started

    def up(self, *args: str, timeout: float = UP_SECONDS, directory: Path | None = None) -> float:
        """`docker compose up -d [ARGS]`: the seconds it took. Notes the volumes its containers mount."""
        took = self.timed("up", "-d", *args, timeout=timeout, directory=directory)
        self.remember_volumes()
        return took

    def remember_volumes(self) -> None:
        """Note every volume the project's containers mount now, named or anonymous (an image's VOLUME), so
        `leftovers` finds those without the project's label too."""
        label = f"label=com.docker.compose.project={self.project}"
        ids = self.run(["docker", "ps", "-aq", "--filter", label], timeout=60).stdout.split()
        if ids:
            template = '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}'
            self.mounted.update(self.run(["docker", "inspect", "-f", template, *ids], timeout=60).stdout.split())

    # ------------------------------------------------------------------ state
    def containers(self, *services: str) -> list[dict[str, Any]]:
        """`docker compose ps -a` of the project (or of some services) as dicts (Service, Name, State, Health,
        ExitCode, ...)."""
        out: str = self.compose("ps", "-a", "--format", "json", *services, timeout=60).stdout
        rows: list[dict[str, Any]] = []
        for line in out.splitlines():
            if not line.strip():
                continue
            parsed = json.loads(line)
            rows.extend(parsed if isinstance(parsed, list) else [parsed])
        return rows

    def state(self, service: str) -> dict[str, Any]:
        rows = self.containers(service)
        if len(rows) != 1:
            raise ComposeError(f"expected one {service} container, found {len(rows)}: {rows}")
        return rows[0]

    def lambda_prefix(self) -> str:
        """LocalStack names the Lambda containers it starts after its own container name."""
        return f"{self.project}-localstack-1-lambda-"

    def lambda_containers(self) -> list[str]:
        names = self.run(["docker", "ps", "-a", "--format", "{{.Names}}"], timeout=60).stdout.split()
        return sorted(name for name in names if name.startswith(self.lambda_prefix()))

    def leftovers(self) -> list[str]:
        """Every container (compose's and LocalStack's Lambda containers), network and volume of the project."""
        label = f"label=com.docker.compose.project={self.project}"
        found: list[str] = []
        containers = self.run(["docker", "ps", "-a", "--format", "{{.Names}}"], timeout=60).stdout.split()
        labelled = self.run(["docker", "ps", "-a", "--filter", label, "--format", "{{.Names}}"], timeout=60)
        mine = set(labelled.stdout.split()) | {c for c in containers if c.startswith(f"{self.project}-")}
        found += [f"container {name}" for name in sorted(mine)]
        networks = self.run(["docker", "network", "ls", "--format", "{{.Name}}"], timeout=60).stdout.split()
        found += [f"network {name}" for name in networks if name == self.project or name.startswith(f"{self.project}_")]
        self.remember_volumes()
        labelled = self.run(["docker", "volume", "ls", "--filter", label, "--format", "{{.Name}}"], timeout=60)
        existing = self.run(["docker", "volume", "ls", "--format", "{{.Name}}"], timeout=60).stdout.split()
        volumes = set(labelled.stdout.split()) | (self.mounted & set(existing))
        found += [f"volume {name}" for name in sorted(volumes)]
        return found

    def remove_everything(self) -> list[str]:
        """`down -v`, then whatever it left (Lambda containers, the network) removed by force; what was left."""
        self.compose("--profile", "jupyter", "down", "-v", "--remove-orphans", timeout=DOWN_SECONDS * 2, check=False)
        left = self.leftovers()
        for item in left:
            kind, name = item.split(" ", 1)
            command = {"container": ["rm", "-f"], "network": ["network", "rm"], "volume": ["volume", "rm", "-f"]}
            self.run(["docker", *command[kind], name], timeout=60, check=False)
        return left

    def logs(self, service: str, *, timestamps: bool = False) -> str:
        args = ["logs", "--no-color", "--no-log-prefix", *(["-t"] if timestamps else []), service]
        logs: str = self.compose(*args, timeout=60).stdout
        return logs

    def diagnostics(self, tail: int = 40) -> str:
        """The services' states and the end of each log, for a failure message."""
        parts = []
        try:
            for row in self.containers():
                parts.append(
                    f"{row.get('Service')}: {row.get('State')} {row.get('Health') or ''} exit={row.get('ExitCode')}"
                )
            logs = self.compose("logs", "--no-color", "--tail", str(tail), timeout=60, check=False).stdout
            parts.append(logs)
        except ComposeError as exc:
            parts.append(str(exc))
        return "\n".join(parts) + f"\n(every command and its output: {self.log})"

    # ------------------------------------------------------------------ what deploy published
    def api_url(self) -> str:
        """The deployed API as seen from the host: the last `API, from this host` line of the deploy log, on
        127.0.0.1 (the ports are published on IPv4 loopback only)."""
        urls = re.findall(r"API, from this host\s+(\S+)", self.logs("deploy"))
        if not urls:
            raise ComposeError(f"the deploy log has no 'API, from this host' line:\n{_tail(self.logs('deploy'))}")
        url: str = urls[-1]
        return url.replace("//localhost:", f"//{LOOPBACK}:").rstrip("/")

    def first_answer_at(self) -> datetime:
        """When the deploy service saw the first proxied answer (its `check: HTTP ...` line), on the engine's
        clock (the host's)."""
        lines = [line for line in self.logs("deploy", timestamps=True).splitlines() if "check: HTTP" in line]
        if not lines:
            raise ComposeError("the deploy log has no 'check: HTTP' line")
        stamp = lines[-1].split(" ", 1)[0]
        return parse_timestamp(stamp)

    @property
    def localstack(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['LOCALSTACK_PORT']}"

    @property
    def stub(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['STUB_API_PORT']}"


def parse_timestamp(stamp: str) -> datetime:
    """Docker's RFC 3339 timestamps have nanoseconds, which datetime cannot read: cut them to microseconds."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", stamp.strip())
    if match is None:
        raise ValueError(f"not a docker timestamp: {stamp!r}")
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}")


def cleanup_stale(prefix: str, log: Path) -> list[str]:
    """Remove what earlier runs named PREFIX-PID left behind when their process is gone (a killed test run)."""
    probe = ComposeStack(project=f"{prefix}-probe", log=log)
    names = probe.run(["docker", "ps", "-a", "--format", "{{.Names}}"], timeout=60).stdout.split()
    names += probe.run(["docker", "network", "ls", "--format", "{{.Name}}"], timeout=60).stdout.split()
    names += probe.run(["docker", "volume", "ls", "--format", "{{.Name}}"], timeout=60).stdout.split()
    pids = {int(m.group(1)) for n in names if (m := re.match(rf"{re.escape(prefix)}-(\d+)(?:[-_]|$)", n))}
    removed: list[str] = []
    for pid in sorted(pids):
        if pid == os.getpid() or _alive(pid):
            continue
        removed += ComposeStack(project=f"{prefix}-{pid}", log=log).remove_everything()
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
