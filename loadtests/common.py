"""Locust glue shared by every scenario: options, per-request recording, phases, the stub's admin API, shapes.

How a run is measured (and why it stays right with --processes or compose workers):

* Every request fires Locust's `request` event; `_on_request` turns it into a `Sample` labelled with the phase
  (taken when the request *started*), the target (proxy or direct upstream), the scenario's group, the cache
  status from `X-Cache`, the outcome (ok, http_<status>, timeout, connection, other) and what `Cache-Status`
  says about forwarding. Samples go into this process's `Measurements`.
* Workers ship their measurements to the master inside Locust's own periodic worker report
  (`report_to_master` / `worker_report`), so a sample reaches the master in the same message as Locust's own
  statistics for that request, and at the end in an explicit drain message.
* Only the master (or the single local process) runs the `Controller`: it owns the clock, the phases, the
  stub's admin API (fault injection, stats polling) and, when Locust quits, writes summary.json.
* The end of a run is a drain, not a kill: the shape asks every process to stop issuing requests, waits until
  their in-flight requests have completed and their measurements arrived, then reads the stub's counter. So
  the stub's request count and the recorded responses cover exactly the same requests.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gevent
from locust import FastHttpUser, LoadTestShape, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.runners import STATE_INIT, STATE_STOPPED, MasterRunner, Runner, WorkerRunner

from loadtests.measurements import (
    NO_RESPONSE,
    TARGET_PROXY,
    TARGET_UPSTREAM,
    Measurements,
    Sample,
    SampleKey,
    cache_status,
    classify_exception,
    http_outcome,
    parse_cache_status,
)
from loadtests.summary import PhaseMark, RunRecord, StubPoint, build_summary, write_outputs
from loadtests.summary_text import progress_line, render_text
from loadtests.workload import PhaseSpec, Zipf, next_boundary, parse_duration, phase_at

log = logging.getLogger("cachelab.loadtests")

MSG_PHASE = "cachelab_phase"
MSG_DRAIN = "cachelab_drain"
MSG_DRAINED = "cachelab_drained"
REPORT_KEY = "cachelab"
DEFAULT_DURATION = "60s"
WORKER_REPORT_WAIT = 8.0  # > Locust's WORKER_REPORT_INTERVAL (3 s), with room for a loaded machine
CSV_WRITE_WAIT = 1.2  # > Locust's CSV_STATS_INTERVAL_SEC (1 s)


Listener = TypeVar("Listener", bound=Callable[..., Any])


def on(hook: Any) -> Callable[[Listener], Listener]:
    """Register a typed listener on a Locust event hook (its add_listener is untyped)."""

    def register(listener: Listener) -> Listener:
        hook.add_listener(listener)
        return listener

    return register


# ---------------------------------------------------------------------------------------------- options


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


# ---------------------------------------------------------------------------------------------- stub admin


class StubAdminError(RuntimeError):
    """The stub's admin API could not be reached or refused a request."""


class StubAdmin:
    """The stub's admin API (stub contract: /__admin/stats, /__admin/faults)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.base = self.normalize(url)
        self.timeout = timeout

    @staticmethod
    def normalize(url: str) -> str:
        """The stub's base URL from "http://h:p", "http://h:p/" or "http://h:p/__admin[/]"."""
        base = url.strip().rstrip("/")
        base = base.removesuffix("/__admin")
        if not base.startswith(("http://", "https://")):
            raise StubAdminError(f"stub admin URL must start with http:// or https:// (got {url!r})")
        return base

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL scheme is checked in normalize()
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                if resp.headers.get("X-Cache"):  # the gateway, not the stub: its answers would be the proxy's
                    raise StubAdminError(f"{self.base} answered through the proxy (X-Cache): it is not the stub")
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise StubAdminError(f"{method} {self.base}{path} answered {exc.code}: {detail}") from None
        except (OSError, ValueError) as exc:
            raise StubAdminError(f"{method} {self.base}{path} failed: {exc}") from None

    def stats(self) -> dict[str, Any]:
        result = self._call("GET", "/__admin/stats")
        if not isinstance(result, dict) or not isinstance(result.get("requests"), int):
            raise StubAdminError(f"{self.base}/__admin/stats did not answer a stats object")
        return result

    def faults(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        result = self._call("POST", "/__admin/faults", patch)
        return result if isinstance(result, dict) else {}


# ---------------------------------------------------------------------------------------------- per process


@dataclass
class ProcessState:
    """What each Locust process (worker or local) keeps while its users run."""

    recorder: Measurements = field(default_factory=Measurements)
    phase: str = "run"
    draining: bool = False
    in_flight: int = 0
    ok_resources: set[str] = field(default_factory=set)  # resources answered 2xx-3xx earlier in this process
    zipf: dict[tuple[int, float], Zipf] = field(default_factory=dict)

    def reset(self, first_phase: str) -> None:
        self.recorder = Measurements()
        self.phase = first_phase
        self.draining = False
        self.in_flight = 0
        self.ok_resources = set()


PROC = ProcessState()
ENV: list[Environment] = []  # the process's Environment, captured at init (the quit event does not carry it)


def zipf_for(env: Environment) -> Zipf:
    """This process's Zipf sampler for --keys / --zipf-s (the CDF is built once per process)."""
    opts = options(env)
    key = (int(opts.keys), float(opts.zipf_s))
    sampler = PROC.zipf.get(key)
    if sampler is None:
        sampler = PROC.zipf[key] = Zipf(*key)
    return sampler


def _on_request(
    *,
    response_time: float,
    response: Any = None,
    context: Mapping[str, Any] | None = None,
    exception: BaseException | None = None,
    **_kwargs: Any,
) -> None:
    ctx = context or {}
    status = int(getattr(response, "status_code", 0) or 0) if response is not None else 0
    if status > 0:
        headers = getattr(response, "headers", None) or {}
        cache = cache_status(headers.get("X-Cache"))
        outcome = http_outcome(status)
        info = parse_cache_status(headers.get("Cache-Status"))
    else:
        cache = NO_RESPONSE
        outcome = classify_exception(exception)
        info = parse_cache_status(None)
    key = SampleKey(
        phase=str(ctx.get("phase", PROC.phase)),
        target=str(ctx.get("target", TARGET_PROXY)),
        group=str(ctx.get("group", "")),
        cache=cache,
        outcome=outcome,
        fwd=info.fwd,
        collapsed=info.collapsed,
    )
    resource = ctx.get("resource")
    PROC.recorder.add(
        Sample(time.time(), float(response_time or 0.0), key, None if resource is None else str(resource))
    )


on(events.request)(_on_request)


@on(events.reset_stats)
def _on_reset_stats() -> None:
    PROC.recorder = Measurements()


@on(events.report_to_master)
def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    if not PROC.recorder.empty():
        data[REPORT_KEY] = PROC.recorder.to_wire()
        PROC.recorder = Measurements()


@on(events.worker_report)
def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    payload = data.get(REPORT_KEY)
    if payload:
        PROC.recorder.merge(Measurements.from_wire(payload))


# ---------------------------------------------------------------------------------------------- scenarios


Hook = Callable[["Controller"], None]


@dataclass
class Scenario:
    """What a locustfile tells the controller: its name, phases and master-side hooks."""

    name: str
    phases: tuple[str, ...] = ("run",)
    # The phase plan: a function of (environment, run seconds) returning phase durations; None = one phase.
    plan: Callable[[Environment, float | None], list[PhaseSpec]] | None = None
    on_start: Hook | None = None  # on the master, when the test starts (after the first stub snapshot)
    # At each boundary: before_phase runs before the new label is in effect, on_phase after it (controller, old,
    # new). So a fault started in on_phase and lifted in before_phase covers exactly the requests labelled with
    # its phase (give or take the requests in flight).
    before_phase: Callable[[Controller, str, str], None] | None = None
    on_phase: Callable[[Controller, str, str], None] | None = None
    on_stop: Hook | None = None  # on the master, after the drain (always runs, also on Ctrl-C)
    needs_stub: bool = False
    hot_path: Callable[[Environment], str] | None = None  # stampede: the path whose upstream count is traced
    expiry_gap_s: Callable[[Environment], float] | None = None
    settings: Callable[[Environment], dict[str, Any]] | None = None
    validate: Callable[[Environment], list[str]] | None = None  # scenario-specific option problems
    poll_interval: float | None = None  # stub stats polling, when finer than --stub-poll is needed


class Controller:
    """The master's (or the local process's) view of the run: clock, phases, stub, drain, summary."""

    def __init__(self, env: Environment, scenario: Scenario) -> None:
        self.env = env
        self.scenario = scenario
        opts = options(env)
        self.stub = StubAdmin(opts.stub_admin) if opts.stub_admin else None
        self.hot_path = scenario.hot_path(env) if scenario.hot_path else None
        self.record = RunRecord(
            scenario=scenario.name, host=str(env.host or ""), started=time.time(), ended=0.0, measurements=PROC.recorder
        )
        self.plan: list[PhaseSpec] = []
        self.phase = scenario.phases[0]
        self.finished = False
        self.drained: set[str] = set()
        self._poller: gevent.Greenlet | None = None
        self._progress_greenlet: gevent.Greenlet | None = None
        self._stub_error_logged = False

    # -- stub
    def note(self, message: str) -> None:
        log.warning(message)
        self.record.notes.append(message)

    def stub_point(self) -> StubPoint | None:
        if self.stub is None:
            return None
        try:
            stats = self.stub.stats()
        except StubAdminError as exc:
            if not self._stub_error_logged:
                self.note(f"stub admin unavailable: {exc}")
                self._stub_error_logged = True
            return None
        hot = None
        if self.hot_path is not None:
            hot = int(stats.get("by_path", {}).get(self.hot_path, 0))
        return StubPoint(time.time(), int(stats["requests"]), hot)

    def _poll(self, interval: float) -> None:
        while True:
            point = self.stub_point()
            if point is not None:
                self.record.stub_trace.append(point)
            gevent.sleep(interval)

    def _progress(self, interval: float) -> None:
        while True:
            gevent.sleep(interval)
            upstream = None
            if self.record.stub_trace and self.record.upstream_start is not None:
                upstream = self.record.stub_trace[-1].requests - self.record.upstream_start
            line = progress_line(PROC.recorder, self.phase, upstream)
            log.info("cachelab %s: %.0f s, %s", self.scenario.name, self.elapsed(), line)

    # -- lifecycle
    def start(self) -> None:
        env = self.env
        opts = options(env)
        runner = env.runner
        total = run_seconds(env)
        self.plan = (
            self.scenario.plan(env, total) if self.scenario.plan else ([PhaseSpec(self.phase, total)] if total else [])
        )
        self.record.users = int(getattr(opts, "num_users", 0) or 0) or None
        self.record.workers = len(runner.clients) if isinstance(runner, MasterRunner) else 0
        self.record.hot_path = self.hot_path
        self.record.expiry_gap_s = self.scenario.expiry_gap_s(env) if self.scenario.expiry_gap_s else None
        self.record.settings = {
            "keys": opts.keys,
            "zipf_s": opts.zipf_s,
            "rate": opts.rate,
            "path_template": opts.path_template,
            "request_timeout": opts.request_timeout,
            "direct_share": opts.direct_share,
            "run_seconds": total,
            "phases": [{"name": p.name, "seconds": round(p.seconds, 3)} for p in self.plan],
            **(self.scenario.settings(env) if self.scenario.settings else {}),
        }
        if self.stub is None and self.scenario.needs_stub:
            self.note(
                f"the {self.scenario.name} scenario needs --stub-admin (CACHELAB_STUB_ADMIN); "
                "it runs, but without fault injection or upstream counts"
            )
        if self.scenario.on_start is not None and self.stub is not None:
            self.scenario.on_start(self)
        point = self.stub_point()
        now = time.time()
        self.record.started = now
        if point is not None:
            self.record.upstream_start = point.requests
            self.record.stub_trace.append(point)
        self.record.phases = [PhaseMark(self.phase, now, self.record.upstream_start)]
        if self.stub is not None:
            interval = float(opts.stub_poll)
            if self.scenario.poll_interval is not None:
                interval = min(interval, self.scenario.poll_interval)
            self._poller = gevent.spawn(self._poll, max(0.05, interval))
        if float(opts.progress) > 0:
            self._progress_greenlet = gevent.spawn(self._progress, float(opts.progress))
        log.info(
            "cachelab %s: started (%s)",
            self.scenario.name,
            ", ".join(f"{p.name} {p.seconds:.1f} s" for p in self.plan) or "until stopped",
        )

    def elapsed(self) -> float:
        return time.time() - self.record.started

    def transition(self, new: str) -> None:
        """Move to phase `new`: label it (master and workers), snapshot the stub, run the scenario's hook."""
        old = self.phase
        if new == old:
            return
        self._hook(self.scenario.before_phase, old, new)
        point = self.stub_point()
        self.phase = new
        PROC.phase = new
        self.record.phases.append(PhaseMark(new, time.time(), None if point is None else point.requests))
        runner = self.env.runner
        if isinstance(runner, MasterRunner):
            runner.send_message(MSG_PHASE, {"name": new})
            gevent.sleep(0.05)  # let the workers switch labels before the phase's fault starts
        log.info("cachelab %s: phase %s at %.1f s", self.scenario.name, new, self.elapsed())
        self._hook(self.scenario.on_phase, old, new)

    def _hook(self, hook: Callable[[Controller, str, str], None] | None, old: str, new: str) -> None:
        if hook is not None and self.stub is not None:
            try:
                hook(self, old, new)
            except StubAdminError as exc:
                self.note(f"phase {new}: {exc}")

    def finish(self, *, drain: bool) -> None:
        """End the measurement: drain the users (when asked), take the last stub snapshot, run on_stop."""
        if self.finished:
            return
        self.finished = True
        runner = self.env.runner
        timeout = float(options(self.env).request_timeout) + 5.0
        if drain:
            if isinstance(runner, MasterRunner):
                expected = {c.id for c in runner.clients.all}
                runner.send_message(MSG_DRAIN, {})
                deadline = time.monotonic() + timeout
                while not expected <= self.drained and time.monotonic() < deadline:
                    gevent.sleep(0.05)
                missing = expected - self.drained
                if missing:
                    self.note(f"{len(missing)} worker(s) did not confirm the drain within {timeout:.0f} s")
            else:
                PROC.draining = True
                _wait_in_flight(timeout)
        self.record.ended = time.time()
        if drain:
            self._let_locust_catch_up()
        for greenlet in (self._poller, self._progress_greenlet):
            if greenlet is not None:
                greenlet.kill(block=True)
        self._poller = self._progress_greenlet = None
        point = self._settled_point()
        if point is not None:
            self.record.upstream_end = point.requests
            self.record.stub_trace.append(point)
        if self.scenario.on_stop is not None and self.stub is not None:
            try:
                self.scenario.on_stop(self)
            except StubAdminError as exc:
                self.note(f"cleanup: {exc}")
        log.info(
            "cachelab %s: measurement finished after %.1f s",
            self.scenario.name,
            self.record.ended - self.record.started,
        )

    def _let_locust_catch_up(self) -> None:
        """Wait until Locust's own statistics hold every recorded request, then for its CSV writer to run.

        Workers send Locust's statistics every 3 s, and Locust rewrites its CSV files once a second but not at
        exit, so without this wait the last seconds of a run would be missing from locust_stats.csv.
        """
        stats = self.env.stats
        if stats is not None:
            deadline = time.monotonic() + WORKER_REPORT_WAIT
            while stats.total.num_requests < PROC.recorder.requests and time.monotonic() < deadline:
                gevent.sleep(0.1)
            if stats.total.num_requests != PROC.recorder.requests:
                self.note(f"Locust counted {stats.total.num_requests} requests, the recorder {PROC.recorder.requests}")
        if getattr(options(self.env), "csv_prefix", None):
            gevent.sleep(CSV_WRITE_WAIT)

    def _settled_point(self) -> StubPoint | None:
        """The stub's counter once it stopped moving (requests the proxy still had in flight included)."""
        point = self.stub_point()
        for _ in range(20):
            if point is None:
                return None
            gevent.sleep(0.1)
            nxt = self.stub_point()
            if nxt is not None and nxt.requests == point.requests:
                return nxt
            point = nxt
        return point

    def snapshot(self) -> dict[str, Any]:
        """The summary so far (the web UI's /cachelab/summary while a test runs, and after)."""
        record = self.record
        stats = self.env.stats
        live = dataclasses.replace(
            record,
            measurements=PROC.recorder,
            ended=record.ended or time.time(),
            locust_requests=int(stats.total.num_requests) if stats is not None else None,
            locust_failures=int(stats.total.num_failures) if stats is not None else None,
        )
        return build_summary(live)

    def write(self) -> dict[str, Any] | None:
        """Build the summary (and write it when --summary-json is set); print its table."""
        stats = self.env.stats
        self.record.measurements = PROC.recorder
        if stats is not None:
            self.record.locust_requests = int(stats.total.num_requests)
            self.record.locust_failures = int(stats.total.num_failures)
        if not self.record.ended:
            self.record.ended = time.time()
        path = str(options(self.env).summary_json or "")
        if path:
            summary = write_outputs(self.record, Path(path))
            log.info("cachelab %s: wrote %s", self.scenario.name, path)
        else:
            summary = build_summary(self.record)
        print("\n" + render_text(summary) + "\n", flush=True)
        return summary


def _wait_in_flight(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while PROC.in_flight > 0 and time.monotonic() < deadline:
        gevent.sleep(0.02)


CONTROLLER: list[Controller] = []  # set on the master / local process while a test runs


def install(scenario: Scenario) -> None:
    """Wire a scenario into Locust's events. Call once at the top level of its locustfile."""

    @on(events.init)
    def _init(environment: Environment, **_kwargs: Any) -> None:
        ENV[:] = [environment]
        # Workers take the master's options with every spawn message, so only the master (or the single local
        # process) judges them; a compose worker may well have none of its own.
        worker = isinstance(environment.runner, WorkerRunner)
        problems = [] if worker else common_problems(environment)
        if scenario.validate is not None and not problems and not worker:
            problems = scenario.validate(environment)
        if problems:
            for problem in problems:
                log.error("cachelab %s: %s", scenario.name, problem)
            sys.exit(2)
        PROC.reset(scenario.phases[0])
        runner = environment.runner
        if environment.web_ui is not None:
            _add_web_routes(environment)
        opts = environment.parsed_options
        if not worker and opts is not None and getattr(opts, "headless", False):
            _stop_cleanly_on_sigterm(environment)
        if isinstance(runner, WorkerRunner):
            runner.register_message(MSG_PHASE, _on_phase_message)
            runner.register_message(MSG_DRAIN, _on_drain_message, concurrent=True)
        elif isinstance(runner, MasterRunner):
            runner.register_message(MSG_DRAINED, _on_drained_message)

    @on(events.test_start)
    def _test_start(environment: Environment, **_kwargs: Any) -> None:
        PROC.reset(scenario.phases[0])
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            return
        if runner is not None and environment.parsed_options is not None:
            # The master's total user count and this test's id reach the workers with the spawn message (custom
            # options), so every process of a run requests the same run-scoped keys (see run_id).
            environment.parsed_options.cachelab_total_users = int(runner.target_user_count or 0)
            environment.parsed_options.cachelab_run_id = uuid.uuid4().hex[:12]
        controller = Controller(environment, scenario)
        CONTROLLER[:] = [controller]
        controller.start()

    @on(events.test_stop)
    def _test_stop(environment: Environment, **_kwargs: Any) -> None:
        if CONTROLLER and not isinstance(environment.runner, WorkerRunner):
            CONTROLLER[0].finish(drain=False)  # already drained when the shape ended the run

    @on(events.quit)
    def _quit(exit_code: int, **_kwargs: Any) -> None:
        if CONTROLLER and ENV and not isinstance(ENV[0].runner, WorkerRunner):
            CONTROLLER[0].write()


def _stop_cleanly_on_sigterm(environment: Environment) -> None:
    """A headless Locust with a load shape installs its own SIGTERM handler only after the shape has finished, so
    until then SIGTERM (from `timeout`, CI, `cachelab load`) would kill it on the spot: no fault lifted, no summary.
    Quit the runner instead; Locust then writes its reports and the summary as usual. Ctrl-C (SIGINT, which
    `cachelab load` passes on) takes the same way, and each says which it was."""

    def stopper(why: str) -> Callable[[], None]:
        def stop_run() -> None:
            log.warning("cachelab: %s, stopping the run (the summary covers what ran so far)", why)
            runner = environment.runner
            if runner is not None:
                gevent.spawn(runner.quit)

        return stop_run

    handlers = [
        gevent.signal_handler(signal.SIGTERM, stopper("SIGTERM")),
        gevent.signal_handler(signal.SIGINT, stopper("interrupted (Ctrl-C)")),
    ]

    def cancel(**_kwargs: Any) -> None:  # Locust's own handlers take over once the run has stopped
        for handler in handlers:
            handler.cancel()

    on(events.test_stop)(cancel)


def _add_web_routes(environment: Environment) -> None:
    """GET /cachelab/summary (JSON) and /cachelab/summary.txt on Locust's web UI: the live summary.json."""
    from flask import Response, jsonify  # noqa: PLC0415 - Flask comes with Locust's web UI

    web_ui: Any = environment.web_ui
    app = web_ui.app

    def current() -> dict[str, Any] | None:
        return CONTROLLER[0].snapshot() if CONTROLLER else None

    def summary_json() -> Any:
        summary = current()
        if summary is None:
            return jsonify({"error": "no test has started yet"}), 404
        return jsonify(summary)

    def summary_text() -> Any:
        summary = current()
        text = "no test has started yet\n" if summary is None else render_text(summary) + "\n"
        return Response(text, status=404 if summary is None else 200, mimetype="text/plain")

    protect = web_ui.auth_required_if_enabled
    app.add_url_rule("/cachelab/summary", "cachelab_summary", protect(summary_json))
    app.add_url_rule("/cachelab/summary.txt", "cachelab_summary_text", protect(summary_text))


def _on_phase_message(environment: Environment, msg: Any, **_kwargs: Any) -> None:
    PROC.phase = str(msg.data["name"])


def _on_drain_message(environment: Environment, msg: Any, **_kwargs: Any) -> None:
    PROC.draining = True
    _wait_in_flight(float(options(environment).request_timeout) + 2.0)
    runner = environment.runner
    payload = PROC.recorder.to_wire()
    PROC.recorder = Measurements()
    if isinstance(runner, WorkerRunner):
        runner.send_message(MSG_DRAINED, {"client_id": runner.client_id, REPORT_KEY: payload})


def _on_drained_message(environment: Environment, msg: Any, **_kwargs: Any) -> None:
    data = msg.data or {}
    payload = data.get(REPORT_KEY)
    if payload:
        PROC.recorder.merge(Measurements.from_wire(payload))
    if CONTROLLER:
        CONTROLLER[0].drained.add(str(data.get("client_id", msg.node_id)))


# ---------------------------------------------------------------------------------------------- users


_LOCAL_RUN_ID = uuid.uuid4().hex[:12]  # library use without a master (run_single_user)


def run_id(env: Environment) -> str:
    """An id of this test, the same in every process of it: a scenario that needs a cache entry nothing else has
    touched (stampede) puts it in its request's query, where it becomes part of the proxy's cache key."""
    return str(getattr(options(env), "cachelab_run_id", "") or _LOCAL_RUN_ID)


def total_users(env: Environment) -> int:
    """Users of the whole run (all processes), for spreading --rate over them."""
    opts = options(env)
    total = int(getattr(opts, "cachelab_total_users", 0) or 0)
    if total <= 0 and env.runner is not None:
        total = int(getattr(env.runner, "target_user_count", 0) or env.runner.user_count or 0)
    return max(1, total)


def paced(user: CacheLabUser) -> float:
    """wait_time: each user sends rate / users requests per second (no pacing when --rate is 0)."""
    rate = float(options(user.environment).rate)
    if PROC.draining:
        return 0.2
    if rate <= 0:
        return 0.0
    interval = total_users(user.environment) / rate
    now = time.monotonic()
    nxt = user.next_at + interval if user.next_at else now + user.rng.random() * interval
    if nxt < now - interval:  # fell behind (slow responses): do not burst to catch up
        nxt = now
    user.next_at = nxt
    return max(0.0, nxt - now)


class CacheLabUser(FastHttpUser):
    """A FastHttpUser that labels its requests for the recorder and stops issuing them during the drain."""

    abstract = True
    wait_time = paced
    group: ClassVar[str] = ""
    # One request at a time per user. It also bounds geventhttpclient's silent resends of an idempotent request
    # whose connection closed before any response (pool size + 1 attempts): at most two extra attempts, which
    # only happen against a server that resets connections (a direct call during a "reset" outage).
    concurrency = 1

    def __init__(self, environment: Environment) -> None:
        timeout = float(options(environment).request_timeout)
        self.network_timeout = timeout
        self.connection_timeout = timeout
        super().__init__(environment)
        self.rng = random.Random()
        self.next_at = 0.0

    def context(self) -> dict[str, Any]:
        return {"phase": PROC.phase}

    def key_path(self, key: int) -> str:
        return str(options(self.environment).path_template).replace("{key}", str(key))

    @property
    def key_label(self) -> str:
        """The request name in Locust's statistics: the path template with [key] for the key."""
        return str(options(self.environment).path_template).replace("{key}", "[key]")

    def fetch(
        self,
        url: str,
        *,
        name: str,
        target: str = TARGET_PROXY,
        group: str | None = None,
        resource: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """GET url; the HTTP status, 0 on a transport error, -1 when draining (nothing sent)."""
        if PROC.draining:
            gevent.sleep(0.2)
            return -1
        PROC.in_flight += 1
        try:
            response = self.client.get(
                url,
                name=name,
                headers=dict(headers) if headers else None,
                context={"target": target, "group": self.group if group is None else group, "resource": resource},
            )
            status = int(getattr(response, "status_code", 0) or 0)
        finally:
            PROC.in_flight -= 1
        if 200 <= status < 400 and resource is not None:
            PROC.ok_resources.add(resource)
        return status


class ZipfUser(CacheLabUser):
    """GETs --path-template for Zipf-distributed keys; --direct-share of them straight to the upstream."""

    abstract = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.keys = zipf_for(environment)
        self.direct_share = float(options(environment).direct_share)
        self.upstream = upstream_base(environment)

    def group_for(self, resource: str) -> str:
        return self.group

    @task
    def get_key(self) -> None:
        key = self.keys.sample()
        resource = str(key)
        path = self.key_path(key)
        if self.direct_share > 0 and self.rng.random() < self.direct_share:
            self.fetch(
                self.upstream + path, name="direct " + self.key_label, target=TARGET_UPSTREAM, group="", resource=None
            )
        else:
            self.fetch(path, name=self.key_label, group=self.group_for(resource), resource=resource)


# ---------------------------------------------------------------------------------------------- shapes


class RunShape(LoadTestShape):
    """Holds --users at --spawn-rate for the planned run time, moves through the scenario's phases, and ends
    the run with a drain (see Controller.finish). Without a planned duration it runs until stopped."""

    abstract = True
    use_common_options = True

    def elapsed(self) -> float:
        return time.perf_counter() - float(self.start_time)

    def tick(self) -> tuple[int, float] | None:
        runner: Runner | None = self.runner
        if runner is None:
            return None
        env = runner.environment
        opts = options(env)
        users = int(getattr(opts, "num_users", None) or 1)
        rate = float(getattr(opts, "spawn_rate", None) or users)
        controller = CONTROLLER[0] if CONTROLLER else None
        if controller is None or runner.state in (STATE_INIT, STATE_STOPPED):
            return users, rate  # (re)starting: test_start creates the run's controller
        if controller.finished:
            return None
        if not controller.plan:
            return users, rate
        elapsed = self.elapsed()
        boundary = next_boundary(controller.plan, elapsed)
        if boundary is not None and boundary - elapsed < 1.0:
            # Ticks come once a second; sleep to the boundary so phases and the end are on time.
            gevent.sleep(max(0.0, boundary - elapsed))
            elapsed = max(self.elapsed(), boundary)
        name = phase_at(controller.plan, elapsed)
        if name is None:
            controller.finish(drain=True)
            return None
        controller.transition(name)
        return users, rate
