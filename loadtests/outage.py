"""outage: warm-up, then an upstream outage driven through the stub's admin API, then recovery.

    locust -f loadtests/outage.py --host http://127.0.0.1:3000 --headless -u 20 -r 20 -t 60s \\
        --stub-admin http://127.0.0.1:8081 --outage-mode error --phases warmup=0.3,outage=0.4,recovery=0.3

When the outage phase starts, the master (only) sends POST /__admin/faults {"mode": MODE} to the stub; when
recovery starts it sends {"mode": "up"} (and again at the end of the run, whatever happened). Requests are grouped
by whether this Locust process had already received a 2xx/3xx for their key during the run ("seen-key": the
cache has it) or not ("new-key": it may or may not be cached). A cache can keep seen keys available while the
upstream is down; a new key has nothing to fall back on unless another process or an earlier run cached it.

Knobs: --outage-mode CACHELAB_OUTAGE_MODE (error | timeout | reset), --phases CACHELAB_PHASES (shares of the run
time, or fixed durations such as warmup=10s,outage=20s,recovery=10s), and the steady knobs (--keys, --zipf-s,
--rate, --path-template, --direct-share). Without --run-time the run lasts --duration (default 60s).
Debug one user in-process: `python loadtests/outage.py --host URL`.
"""

from __future__ import annotations

from typing import Any

from locust.env import Environment

from loadtests.controller import Controller, Scenario
from loadtests.lifecycle import install
from loadtests.locust_options import DEFAULT_DURATION, options, run_seconds
from loadtests.options import find
from loadtests.recording import PROC
from loadtests.shape import RunShape
from loadtests.users import ZipfUser
from loadtests.workload import PhaseSpec, parse_duration, plan_phases

PHASES = ("warmup", "outage", "recovery")
MODES = find("outage-mode").choices
SEEN = "seen-key"
NEW = "new-key"


def _plan(env: Environment, seconds: float | None) -> list[PhaseSpec]:
    total = seconds if seconds else parse_duration(DEFAULT_DURATION)
    return plan_phases(str(options(env).phases), total, PHASES)


def _validate(env: Environment) -> list[str]:
    opts = options(env)
    problems: list[str] = []
    if opts.outage_mode not in MODES:
        problems.append(f"--outage-mode must be one of {', '.join(MODES)} (got {opts.outage_mode!r})")
    try:
        _plan(env, run_seconds(env))
    except ValueError as exc:
        problems.append(f"--phases: {exc}")
    if not opts.stub_admin:
        problems.append("the outage scenario drives the stub's admin API: give --stub-admin URL (CACHELAB_STUB_ADMIN)")
    return problems


def _on_phase(controller: Controller, old: str, new: str) -> None:
    """The outage starts once its label is in effect..."""
    assert controller.stub is not None
    if new == "outage":
        controller.stub.faults({"mode": options(controller.env).outage_mode})


def _before_phase(controller: Controller, old: str, new: str) -> None:
    """...and ends before the recovery label is."""
    assert controller.stub is not None
    if old == "outage":
        controller.stub.faults({"mode": "up"})


def _on_stop(controller: Controller) -> None:
    assert controller.stub is not None
    controller.stub.faults({"mode": "up"})


def _settings(env: Environment) -> dict[str, Any]:
    return {"outage_mode": options(env).outage_mode}


SCENARIO = Scenario(
    name="outage",
    phases=PHASES,
    plan=_plan,
    before_phase=_before_phase,
    on_phase=_on_phase,
    on_stop=_on_stop,
    needs_stub=True,
    validate=_validate,
    settings=_settings,
)
install(SCENARIO)


class OutageUser(ZipfUser):
    def group_for(self, resource: str) -> str:
        return SEEN if resource in PROC.ok_resources else NEW


class OutageShape(RunShape):
    pass


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(OutageUser)
