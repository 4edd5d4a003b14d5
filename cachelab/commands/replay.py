"""`cachelab load replay LOG`: the replay-specific part of `cachelab load` (plan, run length, prediction).

The run itself is loadtests/replay.py under Locust, like every scenario; before it, the log is read here once to
refuse a log with nothing to replay (exit 2) and to size the run; after it, `whatif`'s prediction for the same
requests at the same (scaled) times is set against the measured figures and added to summary.json ("whatif").
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachelab.cli import CliError
from cachelab.commands.whatif import add_policy_arguments, sim_config
from whatif.replay import Planned, compare, lines, plan, predict
from whatif.simulator import SimConfig

TAIL_SECONDS = 3.0  # the run lasts the replay's span plus this (the last answers and the drain)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speed", type=float, metavar="X", help="replay: X times faster than logged (default 1)")
    parser.add_argument("--limit", type=int, metavar="N", help="replay: the first N requests of the log only")
    group = parser.add_argument_group("replay: the stack's proxy settings, for the prediction")
    add_policy_arguments(
        group,  # type: ignore[arg-type]  # an argument group takes the same add_argument calls
        ttl_help="replay: the stack's CACHE_TTL_SECONDS (default 300)",
        what="replay: ",
    )


REPLAY_DESTS = ("speed", "limit", "ttl", "swr", "stale_if_error", "negative_ttl", "upstream_timeout", "key_headers",
                "latency_ms", "log_format", "log_host")  # fmt: skip


def check(args: argparse.Namespace) -> None:
    """Flags that only replay takes, and what replay needs."""
    if args.scenario != "replay":
        if args.log is not None:
            raise CliError(f"a LOG is for `cachelab load replay LOG`, not for {args.scenario}")
        given = [d for d in REPLAY_DESTS if getattr(args, d) is not None]
        if given:
            raise CliError(f"--{given[0].replace('_', '-').replace('log-format', 'format')} applies to replay only")
        return
    if args.log is None:
        raise CliError("replay needs the access log: cachelab load replay LOG --host URL")
    if args.speed is not None and not (math.isfinite(args.speed) and args.speed > 0):
        raise CliError(f"--speed must be a positive number, got {args.speed:g}")
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    if args.processes != 1:
        raise CliError("replay runs in one Locust process (the log's order is one schedule): drop --processes")


@dataclass(frozen=True)
class Prepared:
    planned: list[Planned]
    config: SimConfig  # the stack's settings, for the prediction
    knobs: dict[str, str]  # the locustfile's options
    duration: str  # the run's length


def prepare(args: argparse.Namespace) -> Prepared:
    """The replay plan, the prediction's settings, the locustfile's knobs and the run length."""
    from whatif.run import WhatifError, requests_of  # noqa: PLC0415 - the cost model needs the load extra

    config = sim_config(args, ttl_default="300")
    if len(config.ttls) != 1:
        raise CliError("replay: --ttl is the stack's one CACHE_TTL_SECONDS, e.g. --ttl 60")
    try:
        _, _, records = requests_of(args.log, args.log_format or "auto", host=args.log_host)
        planned = plan(records, speed=args.speed or 1.0, limit=args.limit)
    except WhatifError as exc:
        raise CliError(str(exc)) from None
    if not planned:
        raise CliError(f"{args.log}: no GET/HEAD request to replay (see `cachelab whatif {args.log}` for why)")
    knobs = {
        "--replay-log": str(Path(args.log).resolve()),
        "--replay-format": args.log_format or "auto",
        "--replay-speed": f"{args.speed or 1.0:g}",
        "--replay-limit": str(args.limit or 0),
    }
    if args.log_host:
        knobs["--replay-host"] = args.log_host
    duration = args.duration or f"{math.ceil(planned[-1].offset + TAIL_SECONDS)}s"
    return Prepared(planned, config, knobs, duration)


def finish(summary: dict[str, Any], prepared: Prepared, summary_path: Path) -> list[str]:
    """Predict the replay, add the comparison to summary.json; returns the lines to print."""
    replay = (summary.get("settings") or {}).get("replay") or {}
    sent = int(replay.get("sent", len(prepared.planned)))
    [predicted] = predict(prepared.planned[:sent], prepared.config)  # what was sent, when the run cut it short
    comparison = compare(summary, predicted, len(prepared.planned))
    comparison["sent_requests"] = sent
    comparison["max_lag_s"] = replay.get("max_lag_s")
    summary["whatif"] = comparison
    if summary_path.exists():
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return lines(comparison)
