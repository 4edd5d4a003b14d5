"""`install(scenario)`: wires a scenario into Locust's events, the same in every locustfile.

How a run is measured (and why it stays right with --processes or compose workers):

* Every process records its requests (loadtests.recording); workers ship their measurements to the master with
  Locust's own worker reports, and at the end in an explicit drain message.
* Only the master (or the single local process) runs the `Controller` (loadtests.controller): it owns the clock,
  the phases, the stub's admin API and, when Locust quits, writes summary.json.
* The end of a run is a drain, not a kill (see RunShape and Controller.finish), so the stub's request count and the
  recorded responses cover exactly the same requests.

Also here: the option checks at start-up, SIGTERM / Ctrl-C during a headless run, and the web UI's live summary.
"""

from __future__ import annotations

import logging
import signal
import sys
import uuid
from collections.abc import Callable
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests.controller import CONTROLLER, Controller, Scenario
from loadtests.hooks import on
from loadtests.locust_options import common_problems, options, register_arguments
from loadtests.measurements import Measurements
from loadtests.recording import MSG_DRAIN, MSG_DRAINED, MSG_PHASE, PROC, REPORT_KEY, wait_in_flight
from loadtests.summary_text import render_text

log = logging.getLogger("cachelab.loadtests")

ENV: list[Environment] = []  # the process's Environment, captured at init (the quit event does not carry it)


def install(scenario: Scenario) -> None:
    """Wire a scenario into Locust's events, its options (loadtests.options) included. Call once at the top level
    of its locustfile."""
    register_arguments(scenario.name)

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
    wait_in_flight(float(options(environment).request_timeout) + 2.0)
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
