"""Run one Locust scenario headless, as a child process, and return the summary.json it wrote.

Locust runs as a child process (`python -m locust -f loadtests/<scenario>.py --headless ...`), because importing
Locust monkey-patches the whole process with gevent. The locustfile itself computes summary.json when Locust
quits; this module starts it, streams its progress lines, stops it on time (or on Ctrl-C / SIGTERM, keeping what it
measured) and reads the summary. `cachelab load`, `cachelab demo`, the chaos harness and the benchmarks use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cachelab.processes import stop
from loadtests.summary_text import plural
from loadtests.workload import parse_duration
from stub_api import ADMIN_PREFIX
from stub_api.client import StubAdmin, StubAdminError

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


class LoadError(Exception):
    """A run that could not start or did not finish with a summary, or a target that is not what it should be."""


def locustfile(scenario: str) -> Path:
    """The locustfile of a scenario."""
    return Path(__file__).resolve().parent / f"{SCENARIOS[scenario]}.py"


@dataclass
class LoadRun:
    """Everything `run_scenario` needs; `cachelab load` fills it from its flags, `cachelab demo` from its plan."""

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


def _unreachable(what: str, url: str, reason: object) -> LoadError:
    return LoadError(f"cannot reach the {what} at {url}: {reason}")


def probe(url: str, what: str) -> None:
    """Fail fast with a clear message when `url` does not answer HTTP at all (any status is an answer)."""
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT):  # noqa: S310 - the caller checked the scheme
            return
    except urllib.error.HTTPError:
        return  # it answered
    except (OSError, ValueError) as exc:
        raise _unreachable(what, url, getattr(exc, "reason", exc)) from None


def check_stub_admin(base: str) -> None:
    """--stub-admin must be the stub itself: its /__admin/stats answers a stats object, and not through a cache
    (through the gateway the proxy would forward, and count, the admin calls as upstream traffic)."""
    url = base + ADMIN_PREFIX + "/stats"
    what = "stub admin API (--stub-admin)"
    try:
        StubAdmin(base, timeout=_PROBE_TIMEOUT).stats()
    except StubAdminError as exc:
        if exc.kind == "unreachable":
            raise _unreachable(what, url, exc.detail) from None
        if exc.kind == "refused":
            raise LoadError(f"the {what} at {base} is not the stub: GET {url} answered {exc.status}") from None
        if exc.detail.startswith("X-Cache"):
            raise LoadError(
                f"--stub-admin {base} answered through the proxy ({exc.detail}): that is the gateway, not the stub; "
                "give the stub's own URL (cachelab up prints it, e.g. http://127.0.0.1:8081)"
            ) from None
        raise LoadError(
            f"the {what} at {base} is not the stub: GET {url} did not answer the stub's stats object"
        ) from None


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


def tidy(line: str) -> str:
    """A Locust log line as a progress line: "[2026-01-01 10:00:00,123] host/INFO/cachelab.loadtests: message" ->
    "10:00:00 message" (other levels keep their name: "10:00:00 WARNING: message")."""
    match = re.match(r"^\[\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d),\d+\] [^/]*/(\w+)/[\w.]+: (.*)$", line)
    if match:
        level = "" if match.group(2) == "INFO" else f"{match.group(2)}: "
        line = f"{match.group(1)} {level}{match.group(3)}"
    return line


def _pump(stream: IO[bytes], log: IO[bytes], show: Callable[[str], None] | None) -> None:
    for raw in iter(stream.readline, b""):
        log.write(raw)
        log.flush()
        if show is not None:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if _SHOWN.search(line):
                show(tidy(line))


def run_scenario(run: LoadRun, *, show: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run Locust for `run`, wait for it, and return the summary it wrote (raises LoadError on failure).

    `show` receives the progress lines (phase changes, periodic figures, warnings) as they come, tidied (see tidy).
    Ctrl-C, or SIGTERM in the main thread (Terminated), stops Locust the way it stops itself and is raised again.
    """
    if run.scenario not in SCENARIOS:
        raise LoadError(f"unknown scenario {run.scenario!r}; choose one of {', '.join(SCENARIOS)}")
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
            raise LoadError(
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
        raise LoadError(
            f"Locust exited with status {proc.returncode} without writing {summary_path}; last lines of "
            f"{log_path}:\n  " + "\n  ".join(tail)
        )
    # Locust exits 1 whenever a request failed, which an outage run is about; only a crash is an error here.
    if proc.returncode not in (0, 1):
        raise LoadError(f"Locust exited with status {proc.returncode} (log: {log_path})")
    summary: dict[str, Any] = json.loads(summary_path.read_text())
    return summary
