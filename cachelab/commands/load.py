"""`cachelab load SCENARIO`: run one Locust scenario headless and write DIR/summary.json, CSV history and HTML.

Locust runs as a child process (`python -m locust -f loadtests/<scenario>.py --headless ...`), because importing
Locust monkey-patches the whole process with gevent. The locustfile itself computes summary.json when Locust
quits; this command checks the targets before starting, streams the run's progress lines, prints the summary
table and applies the --fail-* thresholds (exit status 1 when one is missed, for CI).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import loadtests
from cachelab.cli import CliError
from cachelab.commands import replay
from cachelab.processes import stop
from loadtests.summary import measured_nothing, thresholds_violated
from loadtests.summary_text import plural, render_text
from loadtests.workload import parse_duration

# Scenario name -> locustfile module in the loadtests package.
SCENARIOS: dict[str, str] = {
    "steady": "steady",
    "stampede": "stampede",
    "outage": "outage",
    "key-order": "key_order",
    "compare": "compare",
    "replay": "replay",
}
# Locust's own log lines worth showing while a run goes on (the rest goes to DIR/locust.log only).
_SHOWN = re.compile(r"cachelab\.loadtests|/(WARNING|ERROR|CRITICAL)/")
_PROBE_TIMEOUT = 5.0
# Time past the planned duration before the run is considered hung: start-up, the drain (bounded by the request
# timeout), Locust's shutdown and report writing.
_GRACE_SECONDS = 60.0
# After Ctrl-C: time Locust gets to stop its users, lift the faults and write its files.
_INTERRUPT_GRACE_SECONDS = 20.0
_RESULT_FILES = ("summary.json", "measurements.json", "report.html", "locust_stats.csv", "locust.log")


def locustfile(scenario: str) -> Path:
    """The locustfile of a scenario."""
    return Path(loadtests.__file__).resolve().parent / f"{SCENARIOS[scenario]}.py"


@dataclass
class LoadRun:
    """Everything `run_scenario` needs; the CLI fills it from its flags, `cachelab demo` from its plan."""

    scenario: str
    host: str
    out: Path
    users: int = 10
    spawn_rate: float | None = None  # default: all users within one second
    duration: str = "60s"
    stub_admin: str | None = None
    processes: int = 1
    knobs: dict[str, str] = field(default_factory=dict)  # extra locustfile options: {"--rate": "200", ...}
    locust_args: list[str] = field(default_factory=list)  # passed to Locust as they are
    env: dict[str, str] | None = None


def _check_url(name: str, url: str) -> str:
    if not re.match(r"^https?://[^/\s]+", url):
        raise CliError(f"{name} must be an http:// or https:// URL, got {url!r}")
    return url.rstrip("/")


def probe(url: str, what: str) -> None:
    """Fail fast with a clear message when `url` does not answer HTTP at all (any status is an answer)."""
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT):  # noqa: S310 - scheme checked by _check_url
            return
    except urllib.error.HTTPError:
        return  # it answered
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the {what} at {url}: {reason}") from None


def check_stub_admin(base: str) -> None:
    """--stub-admin must be the stub itself: its /__admin/stats answers a stats object, and not through a cache
    (through the gateway the proxy would forward, and count, the admin calls as upstream traffic)."""
    url = base + "/__admin/stats"
    what = "stub admin API (--stub-admin)"
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT) as resp:  # noqa: S310 - scheme checked
            headers, body = resp.headers, resp.read(100_000)
    except urllib.error.HTTPError as exc:
        raise CliError(f"the {what} at {base} is not the stub: GET {url} answered {exc.code}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the {what} at {url}: {reason}") from None
    if headers.get("X-Cache") or headers.get("Cache-Status"):
        raise CliError(
            f"--stub-admin {base} answered through the proxy (X-Cache: {headers.get('X-Cache')}): that is the "
            "gateway, not the stub; give the stub's own URL (cachelab up prints it, e.g. http://127.0.0.1:8081)"
        )
    try:
        stats = json.loads(body)
    except ValueError:
        stats = None
    if not isinstance(stats, dict) or not isinstance(stats.get("requests"), int):
        raise CliError(f"the {what} at {base} is not the stub: GET {url} did not answer the stub's stats object")


def locust_argv(run: LoadRun) -> list[str]:
    """The Locust command line of a run."""
    seconds = parse_duration(run.duration)
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile(run.scenario)),
        "--headless",
        "--host",
        run.host,
        "--users",
        str(run.users),
        "--spawn-rate",
        f"{run.spawn_rate if run.spawn_rate is not None else run.users:g}",
        "--run-time",
        f"{max(1, round(seconds))}s",
        "--csv",
        str(run.out / "locust"),
        "--csv-full-history",
        "--html",
        str(run.out / "report.html"),
        "--summary-json",
        str(run.out / "summary.json"),
        "--only-summary",
    ]
    if run.stub_admin:
        argv += ["--stub-admin", run.stub_admin]
    if run.processes > 1:
        argv += ["--processes", str(run.processes)]
    for flag, value in run.knobs.items():
        argv += [flag, value]
    return argv + list(run.locust_args)


def _pump(stream: IO[bytes], log: IO[bytes], show: Callable[[str], None] | None) -> None:
    for raw in iter(stream.readline, b""):
        log.write(raw)
        log.flush()
        if show is not None:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if _SHOWN.search(line):
                show(line)


def run_scenario(run: LoadRun, *, show: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run Locust for `run`, wait for it, and return the summary it wrote (raises CliError on failure).

    `show` receives the progress lines (phase changes, periodic figures, warnings) as they come.
    """
    if run.scenario not in SCENARIOS:
        raise CliError(f"unknown scenario {run.scenario!r}; choose one of {', '.join(SCENARIOS)}")
    run.out.mkdir(parents=True, exist_ok=True)
    (run.out / "summary.json").unlink(missing_ok=True)
    argv = locust_argv(run)
    env = dict(os.environ if run.env is None else run.env)
    env.setdefault("PYTHONUNBUFFERED", "1")
    previous = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (e.g. from `timeout` or a CI runner) stops Locust cleanly too, like Ctrl-C.
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return _run_locust(run, argv, env, show)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (the run stops and keeps what it measured), but named as what it was."""


def raise_terminated(signum: int, frame: object) -> None:
    """A SIGTERM handler: stop the way Ctrl-C does (see Terminated)."""
    raise Terminated


def _stop_interrupted(proc: subprocess.Popen[bytes], exc: KeyboardInterrupt) -> None:
    """Pass the interruption on to Locust (SIGINT for Ctrl-C, SIGTERM for SIGTERM), so the locustfile lifts its faults
    and writes the summary of what ran, and says which it was; then stop whatever is left. A second Ctrl-C stops
    at once."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.wait(timeout=_INTERRUPT_GRACE_SECONDS)
    stop(proc)


def partial_results(out: Path) -> str:
    """What an interrupted run left in `out`, in words."""
    summary_path = out / "summary.json"
    if not summary_path.exists():
        return f"no summary was written (Locust's log: {out / 'locust.log'})"
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError) as exc:
        return f"{summary_path} could not be read ({exc})"
    files = [name for name in _RESULT_FILES if (out / name).exists()]
    return (
        f"partial results of the first {summary['duration_s']:.0f} s ({plural(summary['requests'], 'request')}) "
        f"in {out}/: {', '.join(files)}"
    )


def _run_locust(
    run: LoadRun, argv: list[str], env: dict[str, str], show: Callable[[str], None] | None
) -> dict[str, Any]:
    seconds = parse_duration(run.duration)
    log_path = run.out / "locust.log"
    summary_path = run.out / "summary.json"
    with open(log_path, "wb") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        assert proc.stdout is not None
        pump = threading.Thread(target=_pump, args=(proc.stdout, log, show), daemon=True)
        pump.start()
        try:
            proc.wait(timeout=seconds + _GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            stop(proc)
            raise CliError(
                f"Locust did not finish within {seconds + _GRACE_SECONDS:.0f} s; stopped it (log: {log_path})"
            ) from None
        except KeyboardInterrupt as exc:
            _stop_interrupted(proc, exc)
            raise
        except BaseException:
            stop(proc)
            raise
        finally:
            pump.join(timeout=5)
    if not summary_path.exists():
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise CliError(
            f"Locust exited with status {proc.returncode} without writing {summary_path}; last lines of "
            f"{log_path}:\n  " + "\n  ".join(tail)
        )
    # Locust exits 1 whenever a request failed, which an outage run is about; only a crash is an error here.
    if proc.returncode not in (0, 1):
        raise CliError(f"Locust exited with status {proc.returncode} (log: {log_path})")
    summary: dict[str, Any] = json.loads(summary_path.read_text())
    return summary


# Flags that only some scenarios understand.
_SCENARIO_FLAGS: dict[str, tuple[str, ...]] = {
    "outage_mode": ("outage",),
    "phases": ("outage",),
    "hot_path": ("stampede",),
    "hot_max_age": ("stampede",),
    "hot_latency_ms": ("stampede",),
    "direct_share": ("steady", "outage"),
    "path_template": ("steady", "outage", "compare"),
}


def _default_out(scenario: str) -> Path:
    return Path("results") / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}"


def _knobs(args: argparse.Namespace) -> dict[str, str]:
    mapping: Mapping[str, str] = {
        "rate": "--rate",
        "keys": "--keys",
        "zipf_s": "--zipf-s",
        "path_template": "--path-template",
        "upstream": "--upstream",
        "direct_share": "--direct-share",
        "request_timeout": "--request-timeout",
        "outage_mode": "--outage-mode",
        "phases": "--phases",
        "hot_path": "--hot-path",
        "hot_max_age": "--hot-max-age",
        "hot_latency_ms": "--hot-latency-ms",
    }
    return {
        flag: f"{value:g}" if isinstance(value, float) else str(value)
        for dest, flag in mapping.items()
        if (value := getattr(args, dest)) is not None
    }


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
    parser.add_argument(
        "--stub-admin",
        metavar="URL",
        help="base URL of the stub API: counts upstream requests; drives outage and stampede",
    )
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
    parser.add_argument("--rate", type=float, help="target requests/s of the whole run (default: unpaced)")
    parser.add_argument("--keys", type=int, help="key-space size (default 1000)")
    parser.add_argument("--zipf-s", type=float, help="Zipf exponent of key popularity (default 1.0)")
    parser.add_argument("--path-template", help="request path with {key} (default /items/{key})")
    parser.add_argument("--upstream", help="upstream base URL for direct calls (default: --stub-admin)")
    parser.add_argument("--direct-share", type=float, help="steady/outage: share of requests sent to the upstream")
    parser.add_argument("--request-timeout", type=float, help="client timeout per request in seconds (default 10)")
    parser.add_argument("--outage-mode", choices=("error", "timeout", "reset"), help="outage: how the upstream fails")
    parser.add_argument("--phases", help="outage: phase lengths, e.g. warmup=0.3,outage=0.4,recovery=0.3")
    parser.add_argument("--hot-path", help="stampede: the hot resource (default /items/1)")
    parser.add_argument("--hot-max-age", type=float, help="stampede: stub sends Cache-Control max-age=S on it")
    parser.add_argument("--hot-latency-ms", type=float, help="stampede: stub answers the hot path this slowly")
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
    for dest, scenarios in _SCENARIO_FLAGS.items():
        if getattr(args, dest) is not None and args.scenario not in scenarios:
            flag = "--" + dest.replace("_", "-")
            raise CliError(f"{flag} applies to {' and '.join(scenarios)}, not to {args.scenario}")
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
    probe(host + "/", "target (--host)")
    if stub_admin:
        check_stub_admin(stub_admin)
    out = args.out if args.out is not None else _default_out(args.scenario)
    knobs = _knobs(args)
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


def tidy(line: str) -> str:
    """A Locust log line as a progress line: "[2026-01-01 10:00:00,123] host/INFO/cachelab.loadtests: message" ->
    "10:00:00 message" (other levels keep their name: "10:00:00 WARNING: message")."""
    match = re.match(r"^\[\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d),\d+\] [^/]*/(\w+)/[\w.]+: (.*)$", line)
    if match:
        level = "" if match.group(2) == "INFO" else f"{match.group(2)}: "
        line = f"{match.group(1)} {level}{match.group(3)}"
    return line


def _show_line(line: str) -> None:
    print(tidy(line), file=sys.stderr, flush=True)
