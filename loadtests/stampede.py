"""stampede: many users on one hot key across repeated expiries; counts upstream requests per expiry.

    locust -f loadtests/stampede.py --host http://127.0.0.1:3000 --headless -u 50 -r 50 -t 30s \\
        --stub-admin http://127.0.0.1:8081 --hot-path /items/1 --hot-max-age 2 --hot-latency-ms 200

Every user requests the hot path back to back (or at --rate). The master polls the stub's /__admin/stats every
0.1 s and groups the growth of the hot path's upstream count into bursts: each burst is one refill of the cache
entry after it expired (the first one is the cold fill). A cache that collapses concurrent refills shows one
upstream request per refill however many users wait.

The scenario makes its own precondition true: it requests `<hot path>?cachelab_run=<id of this test>`, a cache key no
other run or scenario uses, so the entry starts cold whatever is cached already (the stub ignores the parameter and
counts the request under the hot path). A run in which the stub saw no request for the hot path measured nothing,
and says so (`cachelab load` exits 2).

The entry's lifetime comes from the stack (CACHE_TTL_SECONDS) or, with --hot-max-age N, from a Cache-Control
max-age=N the stub sends on the hot path (set through POST /__admin/faults "routes" at the start, removed at the
end); --hot-latency-ms makes the upstream slow on that path so concurrent misses overlap.

Knobs: --hot-path CACHELAB_HOT_PATH, --hot-max-age CACHELAB_HOT_MAX_AGE, --hot-latency-ms CACHELAB_HOT_LATENCY_MS,
--expiry-gap CACHELAB_EXPIRY_GAP (seconds of quiet that separate two refills, default 0.5).
Debug one user in-process: `python loadtests/stampede.py --host URL`.
"""

from __future__ import annotations

from typing import Any

from locust import task
from locust.env import Environment

from loadtests.controller import Controller, Scenario
from loadtests.lifecycle import install
from loadtests.locust_options import options
from loadtests.shape import RunShape
from loadtests.users import CacheLabUser, run_id

SCENARIO_NAME = "stampede"
RUN_PARAMETER = "cachelab_run"


def _hot_path(env: Environment) -> str:
    return str(options(env).hot_path)


def hot_target(env: Environment) -> str:
    """What the users request: the hot path, under a cache key of this run only."""
    return f"{_hot_path(env)}?{RUN_PARAMETER}={run_id(env)}"


def _route_override(env: Environment) -> dict[str, Any]:
    opts = options(env)
    override: dict[str, Any] = {}
    if float(opts.hot_max_age) > 0:
        override["cache_control"] = f"max-age={float(opts.hot_max_age):g}"
    if float(opts.hot_latency_ms) > 0:
        override["latency_ms"] = float(opts.hot_latency_ms)
    return override


def _on_start(controller: Controller) -> None:
    assert controller.stub is not None
    override = _route_override(controller.env)
    if override:
        controller.stub.faults({"routes": {_hot_path(controller.env): override}})


def _on_stop(controller: Controller) -> None:
    assert controller.stub is not None
    if _route_override(controller.env):
        controller.stub.faults({"routes": {_hot_path(controller.env): None}})


def _validate(env: Environment) -> list[str]:
    opts = options(env)
    problems: list[str] = []
    if not str(opts.hot_path).startswith("/"):
        problems.append(f"--hot-path must start with / (got {opts.hot_path!r})")
    if "?" in str(opts.hot_path):
        problems.append("--hot-path is a path without a query string (the stub counts requests by path)")
    if float(opts.hot_max_age) < 0 or float(opts.hot_latency_ms) < 0:
        problems.append("--hot-max-age and --hot-latency-ms cannot be negative")
    if float(opts.expiry_gap) <= 0:
        problems.append(f"--expiry-gap must be positive (got {opts.expiry_gap})")
    if (float(opts.hot_max_age) > 0 or float(opts.hot_latency_ms) > 0) and not opts.stub_admin:
        problems.append("--hot-max-age and --hot-latency-ms configure the stub: give --stub-admin URL")
    return problems


def _settings(env: Environment) -> dict[str, Any]:
    opts = options(env)
    return {
        "hot_path": opts.hot_path,
        "hot_target": hot_target(env),
        "hot_max_age": opts.hot_max_age,
        "hot_latency_ms": opts.hot_latency_ms,
    }


SCENARIO = Scenario(
    name=SCENARIO_NAME,
    phases=("stampede",),
    on_start=_on_start,
    on_stop=_on_stop,
    needs_stub=True,
    hot_path=_hot_path,
    expiry_gap_s=lambda env: float(options(env).expiry_gap),
    validate=_validate,
    settings=_settings,
    poll_interval=0.1,
)
install(SCENARIO)


class StampedeUser(CacheLabUser):
    @task
    def hot(self) -> None:
        path = _hot_path(self.environment)
        self.fetch(hot_target(self.environment), name=path, resource=path)


class StampedeShape(RunShape):
    pass


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(StampedeUser)
