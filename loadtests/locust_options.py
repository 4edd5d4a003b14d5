"""The load options on Locust's side: its parser, the parsed values (or the defaults), and what they mean together."""

from __future__ import annotations

import argparse
from typing import Any

from locust import events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

from loadtests.hooks import on
from loadtests.options import OPTIONS, defaults
from loadtests.workload import parse_duration
from stub_api.client import StubAdmin

DEFAULT_DURATION = "60s"


def register_arguments(scenario: str) -> None:
    """Give Locust's parser the options of `scenario`'s locustfile (loadtests.options). Call once, at import."""

    @on(events.init_command_line_parser)
    def _arguments(parser: LocustArgumentParser) -> None:
        for option in OPTIONS:
            if option.in_locustfile(scenario):
                parser.add_argument(
                    option.flag,
                    env_var=option.env_var,
                    default=option.default,
                    help=option.description,
                    include_in_web_ui=option.web_ui,
                    **option.argparse_kwargs(),
                )


# What `options` reads of Locust's own options when a process has no parsed options (library use).
_LOCUST_DEFAULTS: dict[str, Any] = {"num_users": 1, "spawn_rate": 1.0, "run_time": None}


def options(env: Environment) -> Any:
    """The parsed options (custom ones included); the defaults when Locust has none (library use)."""
    if env.parsed_options is not None:
        return env.parsed_options
    return argparse.Namespace(**defaults(), **_LOCUST_DEFAULTS)


def run_seconds(env: Environment) -> float | None:
    """The planned length of the run: --run-time, else --duration / CACHELAB_DURATION, else None (until stopped)."""
    opts = options(env)
    run_time = getattr(opts, "run_time", None)
    if run_time:
        return float(run_time)
    duration = str(getattr(opts, "duration", "") or "")
    return parse_duration(duration) if duration else None


def upstream_base(env: Environment) -> str:
    """Where direct upstream calls go: --upstream, else the stub's base URL; "" when neither is given."""
    opts = options(env)
    if opts.upstream:
        return str(opts.upstream).rstrip("/")
    if opts.stub_admin:
        return StubAdmin.normalize(str(opts.stub_admin))
    return ""


def common_problems(env: Environment) -> list[str]:
    """Option values no scenario can run with, as messages."""
    opts = options(env)
    problems: list[str] = []
    if int(opts.keys) < 1:
        problems.append(f"--keys must be at least 1 (got {opts.keys})")
    if float(opts.zipf_s) < 0:
        problems.append(f"--zipf-s cannot be negative (got {opts.zipf_s})")
    if float(opts.rate) < 0:
        problems.append(f"--rate cannot be negative (got {opts.rate})")
    if float(opts.request_timeout) <= 0:
        problems.append(f"--request-timeout must be positive (got {opts.request_timeout})")
    if not 0.0 <= float(opts.direct_share) <= 1.0:
        problems.append(f"--direct-share must be between 0 and 1 (got {opts.direct_share})")
    if float(opts.direct_share) > 0 and not (opts.upstream or opts.stub_admin):
        problems.append("--direct-share needs --upstream or --stub-admin (where to send direct calls)")
    if "{key}" not in str(opts.path_template):
        problems.append(f"--path-template must contain {{key}} (got {opts.path_template!r})")
    for name in ("stub_admin", "upstream"):
        value = str(getattr(opts, name) or "")
        if value and not value.startswith(("http://", "https://")):
            problems.append(f"--{name.replace('_', '-')} must be an http:// or https:// URL (got {value!r})")
    if opts.duration:
        try:
            parse_duration(str(opts.duration))
        except ValueError as exc:
            problems.append(f"--duration: {exc}")
    return problems
