"""The master's (or the single local process's) view of a run: clock, phases, the stub's admin API, drain, summary.

Only the master (or the single local process) runs the `Controller`: it owns the clock, the phases, the stub's admin
API (fault injection, stats polling) and, when Locust quits, writes summary.json. The end of a run is a drain, not a
kill: the shape asks every process to stop issuing requests, waits until their in-flight requests have completed and
their measurements arrived, then reads the stub's counter. So the stub's request count and the recorded responses
cover exactly the same requests.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import MasterRunner

from loadtests.locust_options import options, run_seconds
from loadtests.recording import MSG_DRAIN, MSG_PHASE, PROC, wait_in_flight
from loadtests.summary import PhaseMark, RunRecord, StubPoint, build_summary, write_outputs
from loadtests.summary_text import progress_line, render_text
from loadtests.workload import PhaseSpec
from stub_api.client import StubAdmin, StubAdminError

log = logging.getLogger("cachelab.loadtests")

WORKER_REPORT_WAIT = 8.0  # > Locust's WORKER_REPORT_INTERVAL (3 s), with room for a loaded machine
CSV_WRITE_WAIT = 1.2  # > Locust's CSV_STATS_INTERVAL_SEC (1 s)


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
                wait_in_flight(timeout)
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


CONTROLLER: list[Controller] = []  # set on the master / local process while a test runs
