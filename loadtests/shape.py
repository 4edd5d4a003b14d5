"""RunShape: the load shape every scenario uses (users, phases, and the drain that ends the run)."""

from __future__ import annotations

import gevent
from locust import LoadTestShape
from locust.runners import STATE_INIT, STATE_STOPPED, Runner

from loadtests.controller import CONTROLLER
from loadtests.locust_options import options
from loadtests.workload import next_boundary, phase_at


class RunShape(LoadTestShape):
    """Holds --users at --spawn-rate for the planned run time, moves through the scenario's phases, and ends
    the run with a drain (see Controller.finish). Without a planned duration it runs until stopped."""

    abstract = True
    use_common_options = True

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
        elapsed = float(self.get_run_time())  # type: ignore[no-untyped-call]  # Locust's, unannotated
        boundary = next_boundary(controller.plan, elapsed)
        if boundary is not None and boundary - elapsed < 1.0:
            # Ticks come once a second; sleep to the boundary so phases and the end are on time.
            gevent.sleep(max(0.0, boundary - elapsed))
            elapsed = max(float(self.get_run_time()), boundary)  # type: ignore[no-untyped-call]
        name = phase_at(controller.plan, elapsed)
        if name is None:
            controller.finish(drain=True)
            return None
        controller.transition(name)
        return users, rate
