"""The load options on Locust's side: its parser, the parsed values (or the defaults), and what they mean together."""

from __future__ import annotations

from typing import Any

from locust import events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

from loadtests.hooks import on
from loadtests.stub_admin import StubAdmin
from loadtests.workload import parse_duration

DEFAULT_DURATION = "60s"


@on(events.init_command_line_parser)
def _common_arguments(parser: LocustArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--stub-admin",
        env_var="CACHELAB_STUB_ADMIN",
        default="",
        metavar="URL",
        help="base URL of the stub API (its /__admin/ API): upstream request counts, fault injection",
    )
    add(
        "--summary-json",
        env_var="CACHELAB_SUMMARY_JSON",
        default="",
        metavar="PATH",
        help="write summary.json here (and measurements.json next to it) when Locust quits",
        include_in_web_ui=False,
    )
    add(
        "--duration",
        env_var="CACHELAB_DURATION",
        default="",
        metavar="TIME",
        help="length of the run when --run-time is not given (e.g. 60s, 2m); empty: until stopped",
    )
    add(
        "--keys", env_var="CACHELAB_KEYS", type=int, default=1000, metavar="N", help="size of the key space (keys 1..N)"
    )
    add(
        "--zipf-s",
        env_var="CACHELAB_ZIPF_S",
        type=float,
        default=1.0,
        metavar="S",
        help="Zipf exponent of the key popularity (0 = uniform)",
    )
    add(
        "--rate",
        env_var="CACHELAB_RATE",
        type=float,
        default=0.0,
        metavar="RPS",
        help="target request rate of the whole run, spread over all users (0 = as fast as the users go)",
    )
    add(
        "--request-timeout",
        env_var="CACHELAB_REQUEST_TIMEOUT",
        type=float,
        default=10.0,
        metavar="S",
        help="client-side connect and read timeout of each request",
    )
    add(
        "--path-template",
        env_var="CACHELAB_PATH",
        default="/items/{key}",
        metavar="TEMPLATE",
        help="request path of key {key}",
    )
    add(
        "--upstream",
        env_var="CACHELAB_UPSTREAM",
        default="",
        metavar="URL",
        help="base URL of the upstream for direct calls (compare, --direct-share); default: the --stub-admin URL",
    )
    add(
        "--direct-share",
        env_var="CACHELAB_DIRECT_SHARE",
        type=float,
        default=0.0,
        metavar="F",
        help="steady/outage: share of requests sent straight to the upstream, as a baseline (0..1)",
    )
    add(
        "--progress",
        env_var="CACHELAB_PROGRESS",
        type=float,
        default=5.0,
        metavar="S",
        help="log a progress line (phase, requests, hit ratio, availability) this often; 0 = never",
    )
    add(
        "--stub-poll",
        env_var="CACHELAB_STUB_POLL",
        type=float,
        default=0.5,
        metavar="S",
        help="how often the master polls the stub's /__admin/stats during the run",
    )


def options(env: Environment) -> Any:
    """The parsed options (custom ones included); an empty namespace when Locust has none (library use)."""
    return env.parsed_options if env.parsed_options is not None else _Defaults()


class _Defaults:
    stub_admin = ""
    summary_json = ""
    duration = ""
    keys = 1000
    zipf_s = 1.0
    rate = 0.0
    request_timeout = 10.0
    path_template = "/items/{key}"
    upstream = ""
    direct_share = 0.0
    progress = 5.0
    stub_poll = 0.5
    num_users = 1
    spawn_rate = 1.0
    run_time = None


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
