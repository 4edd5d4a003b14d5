"""`cachelab load SCENARIO`: run one Locust scenario headless and write DIR/summary.json, CSV history and HTML.

The run itself is loadtests.runner's (Locust as a child process); this command reads and checks its flags, checks
the targets before starting, prints the run's progress lines and the summary table, and applies the --fail-*
thresholds (exit status 1 when one is missed, for CI).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cachelab.cli import CliError
from cachelab.commands import replay
from loadtests.options import add_cli_arguments, locust_knobs, misplaced
from loadtests.runner import (
    SCENARIOS,
    LoadError,
    LoadRun,
    Terminated,
    check_stub_admin,
    partial_results,
    probe,
    run_scenario,
)
from loadtests.summary import measured_nothing, thresholds_violated
from loadtests.summary_text import render_text
from loadtests.workload import parse_duration


@contextlib.contextmanager
def _load_errors() -> Iterator[None]:
    """The runner's errors as this command's (one line on stderr, exit status 2)."""
    try:
        yield
    except LoadError as exc:
        raise CliError(str(exc)) from None


def _check_url(name: str, url: str) -> str:
    if not re.match(r"^https?://[^/\s]+", url):
        raise CliError(f"{name} must be an http:// or https:// URL, got {url!r}")
    return url.rstrip("/")


def _default_out(scenario: str) -> Path:
    return Path("results") / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "load",
        help="run a Locust scenario headless; write summary.json, CSV history and the HTML report",
        description="Run one load-test scenario (loadtests/<scenario>.py) headless against --host and write "
        "DIR/summary.json, DIR/measurements.json, Locust's CSV files (DIR/locust_*.csv) and DIR/report.html. "
        "Scenario knobs not listed here can be given as CACHELAB_* environment variables or --locust-arg.",
    )
    parser.add_argument("scenario", choices=tuple(SCENARIOS), help="the scenario to run")
    parser.add_argument("log", nargs="?", type=Path, metavar="LOG", help="replay: the access log to replay")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--host", help="base URL of the proxy: the gateway, a LocalStack or AWS API URL")
    target.add_argument(
        "--stack", metavar="NAME", help="take the API URL from this CloudFormation stack's outputs (see --target)"
    )
    parser.add_argument(
        "--target",
        choices=("localstack", "aws"),
        default="localstack",
        help="with --stack: where the stack lives (default localstack)",
    )
    parser.add_argument("--region", help="with --stack: AWS region")
    parser.add_argument("--endpoint-url", help="with --stack --target localstack: LocalStack's endpoint")
    parser.add_argument("--users", "-u", type=int, default=10, help="concurrent users (default 10)")
    parser.add_argument("--spawn-rate", "-r", type=float, help="users started per second (default: all at once)")
    parser.add_argument(
        "--duration", "-t", help="length of the run, e.g. 30s, 2m (default 60s; replay: the log's span / --speed + 3s)"
    )
    parser.add_argument("--out", type=Path, help="output directory (default results/<time>-<scenario>/)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="load-generating Locust processes (default 1; N > 1 runs a master and N workers)",
    )
    add_cli_arguments(parser)  # the scenario options (loadtests.options): --stub-admin, --keys, --rate, ...
    parser.add_argument(
        "--locust-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra Locust argument, repeatable (e.g. --locust-arg=--expiry-gap=0.3)",
    )
    parser.add_argument("--fail-below-hit-ratio", type=float, metavar="X", help="exit 1 when hit_ratio < X")
    parser.add_argument(
        "--fail-below-cache-served-ratio", type=float, metavar="X", help="exit 1 when cache_served_ratio < X"
    )
    parser.add_argument("--fail-below-availability", type=float, metavar="X", help="exit 1 when availability < X")
    parser.add_argument("--fail-above-p95-ms", type=float, metavar="MS", help="exit 1 when latency p95_ms > MS")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary table")
    parser.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    replay.add_arguments(parser)
    # Locust (the load extra); --stack reads the stack's outputs with boto3 (the sam extra).
    parser.set_defaults(func=run, needs=lambda args: ("load", "sam") if args.stack else ("load",))


def _validate(args: argparse.Namespace) -> None:
    if args.users < 1:
        raise CliError(f"--users must be at least 1, got {args.users}")
    if args.spawn_rate is not None and args.spawn_rate <= 0:
        raise CliError(f"--spawn-rate must be positive, got {args.spawn_rate:g}")
    if args.processes < 1:
        raise CliError(f"--processes must be at least 1, got {args.processes}")
    replay.check(args)
    try:
        seconds = parse_duration(args.duration or "60s")
    except ValueError as exc:
        raise CliError(f"--duration: {exc}") from None
    if seconds < 1:
        raise CliError(f"--duration must be at least 1s, got {args.duration!r}")
    for name in ("fail_below_hit_ratio", "fail_below_cache_served_ratio", "fail_below_availability"):
        value = getattr(args, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise CliError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value:g}")
    problem = misplaced(vars(args), args.scenario)
    if problem is not None:
        raise CliError(problem)
    if args.scenario in ("outage", "stampede") and not args.stub_admin:
        raise CliError(f"the {args.scenario} scenario works through the stub's admin API: give --stub-admin URL")
    if args.scenario == "compare" and not (args.stub_admin or args.upstream):
        raise CliError("compare sends every request to the upstream too: give --upstream URL or --stub-admin URL")


def stack_api_url(stack: str, target: str, region: str | None, endpoint: str | None) -> str:
    """The API URL of a deployed stack, as `cachelab deploy` prints it."""
    from cachelab.commands.deploy import api_url, make_target, stack_outputs  # noqa: PLC0415 - boto3 is slow

    aws = make_target(target, region=region, endpoint=endpoint)
    url = api_url(aws, stack_outputs(aws, stack))
    if not url:
        raise CliError(f"stack {stack!r} has no ApiUrl output (nor ApiId and ApiStageName)")
    return url


def run(args: argparse.Namespace) -> int:
    _validate(args)
    prepared = replay.prepare(args) if args.scenario == "replay" else None  # the log is checked before any probe
    if args.stack:
        args.host = stack_api_url(args.stack, args.target, args.region, args.endpoint_url)
        print(f"cachelab load: target {args.host} (stack {args.stack})", file=sys.stderr)
    elif args.region or args.endpoint_url:
        raise CliError("--region and --endpoint-url apply with --stack only")
    host = _check_url("--host", args.host)
    stub_admin = _check_url("--stub-admin", args.stub_admin).removesuffix("/__admin") if args.stub_admin else None
    if args.upstream:
        _check_url("--upstream", args.upstream)
    with _load_errors():
        probe(host + "/", "target (--host)")
        if stub_admin:
            check_stub_admin(stub_admin)
    out = args.out if args.out is not None else _default_out(args.scenario)
    knobs = locust_knobs(vars(args), skip=("stub-admin",))  # the LoadRun carries the stub's URL, checked
    if prepared is not None:
        knobs.update(prepared.knobs)
        args.duration = prepared.duration
    load = LoadRun(
        scenario=args.scenario,
        host=host,
        out=out,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration=args.duration or "60s",
        stub_admin=stub_admin,
        processes=args.processes,
        knobs=knobs,
        locust_args=list(args.locust_arg),
    )
    show = None if args.quiet or args.json else _show_line
    try:
        with _load_errors():
            summary = run_scenario(load, show=show)
    except KeyboardInterrupt as exc:
        what = "stopped by SIGTERM" if isinstance(exc, Terminated) else "interrupted"
        print(f"cachelab load: {what}; {partial_results(out)}", file=sys.stderr)
        return 130
    comparison = replay.finish(summary, prepared, out / "summary.json") if prepared is not None else []
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(render_text(summary))
        print("\n".join(comparison))
        print(f"results: {out}/ (summary.json, measurements.json, locust_*.csv, report.html, locust.log)")
    nothing = measured_nothing(summary)
    if nothing is not None:
        raise CliError(f"the {args.scenario} run measured nothing: {nothing}")
    problems = thresholds_violated(
        summary,
        min_hit_ratio=args.fail_below_hit_ratio,
        min_cache_served_ratio=args.fail_below_cache_served_ratio,
        min_availability=args.fail_below_availability,
        max_p95_ms=args.fail_above_p95_ms,
    )
    for problem in problems:
        print(f"cachelab load: threshold missed: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _show_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
