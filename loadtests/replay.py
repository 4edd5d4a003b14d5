"""replay: an access log's GET/HEAD requests at the log's own timing (or --replay-speed times faster).

    locust -f loadtests/replay.py --host http://127.0.0.1:3000 --headless -u 50 -r 50 -t 65s \\
        --stub-admin http://127.0.0.1:8081 --replay-log access.log --replay-speed 10

The log is read with the `whatif` parsers (any format but the proxy's own, which has no URLs), filtered as
`cachelab whatif` filters it (methods, hosts, bad lines) and sent in time order: each user takes the next request,
sleeps until its time and sends it, so concurrent requests of the log stay concurrent as long as there are enough
users (--users). The summary's settings.replay says how many were sent and how late the latest one started.
`cachelab load replay LOG` runs this, then compares the measured upstream requests with `whatif`'s prediction.

Knobs: --replay-log CACHELAB_REPLAY_LOG, --replay-format CACHELAB_REPLAY_FORMAT (auto), --replay-speed
CACHELAB_REPLAY_SPEED (1), --replay-limit CACHELAB_REPLAY_LIMIT (0: all), --replay-host CACHELAB_REPLAY_HOST
(absolute URLs of this host are replayed).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gevent
from locust import constant, events, task
from locust.env import Environment

from loadtests.controller import CONTROLLER, Scenario
from loadtests.hooks import on
from loadtests.lifecycle import install
from loadtests.locust_options import options
from loadtests.recording import PROC
from loadtests.shape import RunShape
from loadtests.users import CacheLabUser
from whatif.replay import LATE_SECONDS, Planned, plan
from whatif.run import WhatifError, requests_of

SCENARIO_NAME = "replay"
LEAD_SECONDS = 0.5  # the first request leaves this long after the test starts (users are spawned by then)


class _Replay:
    schedule: list[Planned] = []
    next_index = 0
    started = 0.0  # monotonic time of offset 0
    max_lag = 0.0
    error = ""


REPLAY = _Replay()


def load_plan(env: Environment) -> list[Planned]:
    """The log's requests to replay, as `cachelab load replay` predicts them."""
    opts = options(env)
    fmt, _, records = requests_of(
        Path(str(opts.replay_log)), str(opts.replay_format or "auto"), host=str(opts.replay_host or "") or None
    )
    del fmt
    limit = int(opts.replay_limit) or None
    return plan(records, speed=float(opts.replay_speed), limit=limit)


def _validate(env: Environment) -> list[str]:
    opts = options(env)
    if not opts.replay_log:
        return ["--replay-log is required: the access log to replay"]
    if float(opts.replay_speed) <= 0:
        return [f"--replay-speed must be positive (got {opts.replay_speed})"]
    if int(opts.replay_limit) < 0:
        return [f"--replay-limit cannot be negative (got {opts.replay_limit})"]
    try:
        REPLAY.schedule = load_plan(env)
    except (WhatifError, ValueError) as exc:
        return [str(exc)]
    if not REPLAY.schedule:
        return [f"{opts.replay_log}: no GET/HEAD request to replay"]
    return []


def _settings(env: Environment) -> dict[str, Any]:
    opts = options(env)
    return {
        "replay_log": str(opts.replay_log),
        "replay_speed": float(opts.replay_speed),
        "replay_planned": len(REPLAY.schedule),
        "replay_span_s": REPLAY.schedule[-1].offset if REPLAY.schedule else 0.0,
    }


@on(events.test_start)
def _start(environment: Environment, **_kwargs: Any) -> None:
    REPLAY.next_index = 0
    REPLAY.max_lag = 0.0
    REPLAY.started = time.monotonic() + LEAD_SECONDS


@on(events.test_stop)
def _stop(environment: Environment, **_kwargs: Any) -> None:
    if CONTROLLER:
        record = CONTROLLER[0].record
        sent = min(REPLAY.next_index, len(REPLAY.schedule))
        record.settings["replay"] = {
            "planned": len(REPLAY.schedule),
            "sent": sent,
            "max_lag_s": round(REPLAY.max_lag, 4),
        }
        if sent < len(REPLAY.schedule):
            CONTROLLER[0].note(f"replay: sent {sent} of {len(REPLAY.schedule)} requests before the run ended")
        if REPLAY.max_lag > LATE_SECONDS:
            CONTROLLER[0].note(
                f"replay: a request started up to {REPLAY.max_lag:.3f} s late; more --users keep the log's concurrency"
            )


SCENARIO = Scenario(name=SCENARIO_NAME, phases=("replay",), validate=_validate, settings=_settings)
install(SCENARIO)


class ReplayUser(CacheLabUser):
    wait_time = constant(0)

    @task
    def replay(self) -> None:
        index = REPLAY.next_index
        if PROC.draining or index >= len(REPLAY.schedule):
            gevent.sleep(0.2)  # nothing left: idle until the shape ends the run
            return
        REPLAY.next_index = index + 1
        item = REPLAY.schedule[index]
        delay = REPLAY.started + item.offset - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        else:
            REPLAY.max_lag = max(REPLAY.max_lag, -delay)
        self.fetch(item.target, name="replay", resource=item.target)


class ReplayShape(RunShape):
    pass


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(ReplayUser)
