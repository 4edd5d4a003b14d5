"""Command-line flags and environment variables of the stub (shared by `cachelab stub` and `python -m stub_api`).

Every flag has an environment variable (for compose); a flag wins over its variable, the variable over the
default. The fault flags build the *start state* (what `POST /__admin/reset` returns to): first the JSON of
`--faults` / STUB_FAULTS, then the single-field flags on top of it. This module does not import aiohttp, so
the CLI stays quick to load.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stub_api.faults import ERROR_STATUSES, LATENCY_MODELS, MODES, FaultError, FaultState

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081
DEFAULT_ITEMS = 1000
MAX_ITEMS = 1_000_000


class ConfigError(ValueError):
    """A flag or environment variable with a value the stub cannot use."""


@dataclass(frozen=True)
class Option:
    flag: str
    env: str
    metavar: str
    help: str
    kind: str  # "str" | "int" | "float" | "bool"
    fault_field: str | None = None  # the fault-state field this option sets, if any

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("--host", "STUB_HOST", "ADDR", f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 in Docker)", "str"),
    Option("--port", "STUB_PORT", "PORT", f"TCP port to listen on (default {DEFAULT_PORT}; 0 = any free port)", "int"),
    Option(
        "--seed",
        "STUB_SEED",
        "N",
        "seed of the latency and error draws (default: a random seed, shown in "
        "GET /__admin/faults); the same seed and request sequence give the same latencies and errors",
        "int",
        "seed",
    ),
    Option("--mode", "STUB_MODE", "MODE", f"whole-service mode: {' | '.join(MODES)} (default up)", "str", "mode"),
    Option(
        "--latency-ms",
        "STUB_LATENCY_MS",
        "MS",
        "median latency added to every answer (default 0)",
        "float",
        "latency_ms",
    ),
    Option(
        "--latency-p99-ms",
        "STUB_LATENCY_P99_MS",
        "MS",
        "99th-percentile latency; given alone it selects the log-normal model",
        "float",
        "latency_p99_ms",
    ),
    Option(
        "--latency-model",
        "STUB_LATENCY_MODEL",
        "MODEL",
        f"{' | '.join(LATENCY_MODELS)} (default fixed, or lognormal when --latency-p99-ms is given)",
        "str",
        "latency_model",
    ),
    Option(
        "--error-rate",
        "STUB_ERROR_RATE",
        "RATE",
        "share of answers replaced by --error-status, 0..1 (default 0)",
        "float",
        "error_rate",
    ),
    Option(
        "--error-status",
        "STUB_ERROR_STATUS",
        "STATUS",
        f"status of injected errors: {' | '.join(map(str, ERROR_STATUSES))} (default 500)",
        "int",
        "error_status",
    ),
    Option(
        "--retry-after-s",
        "STUB_RETRY_AFTER_S",
        "S",
        "Retry-After of injected 429/503 answers (default 1)",
        "int",
        "retry_after_s",
    ),
    Option(
        "--cache-control",
        "STUB_CACHE_CONTROL",
        "VALUE",
        "Cache-Control sent on every resource answer (default: none)",
        "str",
        "cache_control",
    ),
    Option(
        "--timeout-cap-s",
        "STUB_TIMEOUT_CAP_S",
        "S",
        "in timeout mode, drop the connection after this long if the client is still waiting (default 300)",
        "float",
        "timeout_cap_s",
    ),
    Option(
        "--faults",
        "STUB_FAULTS",
        "JSON|@FILE",
        "a whole fault patch as in POST /__admin/faults (routes, outage windows relative to start-up, ...); "
        "the single-field flags above apply on top of it",
        "str",
    ),
    Option("--items", "STUB_ITEMS", "N", f"number of items behind /items (default {DEFAULT_ITEMS})", "int"),
    Option(
        "--access-log",
        "STUB_ACCESS_LOG",
        "",
        "log one line per request on stdout (default off; STUB_ACCESS_LOG=1|true|yes|on)",
        "bool",
    ),
)


@dataclass(frozen=True)
class StubConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    items: int = DEFAULT_ITEMS
    access_log: bool = False
    start_patch: Mapping[str, object] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for option in OPTIONS:
        help_text = f"{option.help} [env {option.env}]"
        if option.kind == "bool":
            parser.add_argument(
                option.flag, dest=option.dest, action="store_const", const="1", default=None, help=help_text
            )
        else:
            parser.add_argument(option.flag, dest=option.dest, metavar=option.metavar, default=None, help=help_text)


def build_parser(prog: str = "python -m stub_api") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A slow, flaky, steerable external API for cache experiments (control page: /__admin/).",
    )
    add_arguments(parser)
    return parser


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/true/yes/on or 0/false/no/off")


_CONVERTERS: dict[str, Callable[[str], object]] = {
    "str": str,
    "int": lambda text: int(text.strip()),
    "float": lambda text: float(text.strip()),
    "bool": _parse_bool,
}


def _load_faults_json(text: str, where: str) -> dict[str, object]:
    source = text
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from exc
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: must be a JSON object such as "
            '{"mode": "up", "outage": [{"mode": "error", "start_s": 30, "duration_s": 20}]}'
        )
    return value


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> StubConfig:
    """Resolve flags, then environment variables, then defaults; validate the start state. Raises ConfigError."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    patch: dict[str, object] = {}
    for option in OPTIONS:
        flag_value = getattr(args, option.dest, None)
        if flag_value is not None:
            raw, where = str(flag_value), option.flag
        elif env.get(option.env) is not None:
            raw, where = env[option.env], option.env
        else:
            continue
        if option.flag == "--faults":
            patch = {**_load_faults_json(raw, where), **patch}
            continue
        try:
            value = _CONVERTERS[option.kind](raw)
        except ValueError as exc:
            expected = {"int": "an integer", "float": "a number"}.get(option.kind, "a valid value")
            detail = str(exc) if option.kind == "bool" else f"expected {expected}"
            raise ConfigError(f"{where}={raw!r}: {detail}") from exc
        if option.fault_field is not None:
            patch[option.fault_field] = value
        else:
            values[option.dest] = value

    port = values.get("port", DEFAULT_PORT)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {port}")
    items = values.get("items", DEFAULT_ITEMS)
    if not isinstance(items, int) or not 1 <= items <= MAX_ITEMS:
        raise ConfigError(f"items must be between 1 and {MAX_ITEMS}, got {items}")
    host = str(values.get("host", DEFAULT_HOST)).strip()
    if not host:
        raise ConfigError("host must not be empty")
    try:
        FaultState().apply(patch, now_mono=time.monotonic(), now_wall=time.time())
    except FaultError as exc:
        raise ConfigError(f"invalid start state: {exc}") from exc
    return StubConfig(
        host=host, port=port, items=items, access_log=bool(values.get("access_log", False)), start_patch=patch
    )
