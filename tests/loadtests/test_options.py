"""The load options, declared once (loadtests.options), come out as they were before the table existed: the same
`cachelab load` flags and the same Locust options (names, defaults, types, environment variables, web UI fields) in
the same locustfiles. The expected lists below were taken from the code before the refactoring; a change to them
is a change to a user-facing interface."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from cachelab.cli import build_parser
from loadtests.options import CLI_OPTIONS, OPTIONS, defaults, find, locust_knobs, misplaced
from loadtests.runner import SCENARIOS

ALL = tuple(SCENARIOS.values())  # the locustfile modules

# `cachelab load`'s arguments: (option strings, dest, default, type, choices).
CLI: tuple[tuple[tuple[str, ...], str, Any, str | None, tuple[str, ...] | None], ...] = (
    ((), "scenario", None, None, ("steady", "stampede", "outage", "key-order", "compare", "replay")),
    ((), "log", None, "Path", None),
    (("--host",), "host", None, None, None),
    (("--stack",), "stack", None, None, None),
    (("--target",), "target", "localstack", None, ("localstack", "aws")),
    (("--region",), "region", None, None, None),
    (("--endpoint-url",), "endpoint_url", None, None, None),
    (("--stub-admin",), "stub_admin", None, None, None),
    (("--users", "-u"), "users", 10, "int", None),
    (("--spawn-rate", "-r"), "spawn_rate", None, "float", None),
    (("--duration", "-t"), "duration", None, None, None),
    (("--out",), "out", None, "Path", None),
    (("--processes",), "processes", 1, "int", None),
    (("--rate",), "rate", None, "float", None),
    (("--keys",), "keys", None, "int", None),
    (("--zipf-s",), "zipf_s", None, "float", None),
    (("--path-template",), "path_template", None, None, None),
    (("--upstream",), "upstream", None, None, None),
    (("--direct-share",), "direct_share", None, "float", None),
    (("--request-timeout",), "request_timeout", None, "float", None),
    (("--outage-mode",), "outage_mode", None, None, ("error", "timeout", "reset")),
    (("--phases",), "phases", None, None, None),
    (("--hot-path",), "hot_path", None, None, None),
    (("--hot-max-age",), "hot_max_age", None, "float", None),
    (("--hot-latency-ms",), "hot_latency_ms", None, "float", None),
    (("--locust-arg",), "locust_arg", [], None, None),
    (("--fail-below-hit-ratio",), "fail_below_hit_ratio", None, "float", None),
    (("--fail-below-cache-served-ratio",), "fail_below_cache_served_ratio", None, "float", None),
    (("--fail-below-availability",), "fail_below_availability", None, "float", None),
    (("--fail-above-p95-ms",), "fail_above_p95_ms", None, "float", None),
    (("--quiet", "-q"), "quiet", False, None, None),
    (("--json",), "json", False, None, None),
    (("--speed",), "speed", None, "float", None),
    (("--limit",), "limit", None, "int", None),
    (("--ttl",), "ttl", None, None, None),
    (("--swr",), "swr", None, None, None),
    (("--stale-if-error",), "stale_if_error", None, None, None),
    (("--negative-ttl",), "negative_ttl", None, None, None),
    (("--upstream-timeout",), "upstream_timeout", None, None, None),
    (("--key-headers",), "key_headers", None, None, None),
    (("--latency-ms",), "latency_ms", None, "float", None),
    (("--format",), "log_format", None, None, ("auto", "apigw-json", "clf", "combined", "har", "csv", "cachelab")),
    (("--log-host",), "log_host", None, None, None),
)

# The locustfiles' own options: (flag, environment variable, default, type, in the web UI, locustfiles).
LOCUST: tuple[tuple[str, str, Any, str | None, bool, tuple[str, ...]], ...] = (
    ("--stub-admin", "CACHELAB_STUB_ADMIN", "", None, True, ALL),
    ("--summary-json", "CACHELAB_SUMMARY_JSON", "", None, False, ALL),
    ("--duration", "CACHELAB_DURATION", "", None, True, ALL),
    ("--keys", "CACHELAB_KEYS", 1000, "int", True, ALL),
    ("--zipf-s", "CACHELAB_ZIPF_S", 1.0, "float", True, ALL),
    ("--rate", "CACHELAB_RATE", 0.0, "float", True, ALL),
    ("--request-timeout", "CACHELAB_REQUEST_TIMEOUT", 10.0, "float", True, ALL),
    ("--path-template", "CACHELAB_PATH", "/items/{key}", None, True, ALL),
    ("--upstream", "CACHELAB_UPSTREAM", "", None, True, ALL),
    ("--direct-share", "CACHELAB_DIRECT_SHARE", 0.0, "float", True, ALL),
    ("--progress", "CACHELAB_PROGRESS", 5.0, "float", True, ALL),
    ("--stub-poll", "CACHELAB_STUB_POLL", 0.5, "float", True, ALL),
    ("--outage-mode", "CACHELAB_OUTAGE_MODE", "error", None, True, ("outage",)),
    ("--phases", "CACHELAB_PHASES", "warmup=0.3,outage=0.4,recovery=0.3", None, True, ("outage",)),
    ("--hot-path", "CACHELAB_HOT_PATH", "/items/1", None, True, ("stampede",)),
    ("--hot-max-age", "CACHELAB_HOT_MAX_AGE", 0.0, "float", True, ("stampede",)),
    ("--hot-latency-ms", "CACHELAB_HOT_LATENCY_MS", 0.0, "float", True, ("stampede",)),
    ("--expiry-gap", "CACHELAB_EXPIRY_GAP", 0.5, "float", True, ("stampede",)),
    ("--key-order-path", "CACHELAB_KEY_ORDER_PATH", "/", None, True, ("key_order",)),
    ("--replay-log", "CACHELAB_REPLAY_LOG", "", None, True, ("replay",)),
    ("--replay-format", "CACHELAB_REPLAY_FORMAT", "auto", None, True, ("replay",)),
    ("--replay-speed", "CACHELAB_REPLAY_SPEED", 1.0, "float", True, ("replay",)),
    ("--replay-limit", "CACHELAB_REPLAY_LIMIT", 0, "int", True, ("replay",)),
    ("--replay-host", "CACHELAB_REPLAY_HOST", "", None, True, ("replay",)),
)


def _load_parser() -> argparse.ArgumentParser:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = subparsers.choices["load"]
    return parser


@pytest.mark.unit
def test_cachelab_load_has_the_flags_it_had() -> None:
    found = [
        (tuple(a.option_strings), a.dest, a.default, getattr(a.type, "__name__", None), tuple(a.choices or ()) or None)
        for a in _load_parser()._actions
        if a.dest != "help"
    ]
    assert sorted(found, key=lambda row: row[1]) == sorted(CLI, key=lambda row: row[1])  # --help's order may change


@pytest.mark.unit
def test_the_table_has_the_locust_options_there_were() -> None:
    assert [(o.flag, o.env_var, o.default) for o in OPTIONS] == [row[:3] for row in LOCUST]
    assert defaults() == {o.dest: o.default for o in OPTIONS}
    assert {o.flag for o in CLI_OPTIONS} <= {flags[0] for flags, *_ in CLI if flags}


# Imports one locustfile the way Locust does and prints the custom options of the parser Locust then builds.
_DUMP = """
import importlib, json, sys
importlib.import_module("loadtests." + sys.argv[1])
from locust.argument_parser import get_parser
parser = get_parser(default_config_files=[])
options = [a for a in parser._actions if (getattr(a, "env_var", None) or "").startswith("CACHELAB_")]
rows = [[a.option_strings[0], a.env_var, a.default, getattr(a.type, "__name__", None), a.include_in_web_ui]
        for a in options]
parsed = parser.parse_args(["-f", sys.argv[1] + ".py"])
print(json.dumps({"rows": rows, "zipf_s": parsed.zipf_s, "keys": parsed.keys}))
"""


def test_every_locustfile_has_the_options_it_had() -> None:
    env = {**os.environ, "CACHELAB_ZIPF_S": "1.25", "CACHELAB_KEYS": "77"}
    procs = {
        module: subprocess.Popen(
            [sys.executable, "-c", _DUMP, module], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for module in ALL
    }
    for module, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        dump = json.loads(out)
        expected = [[flag, env_var, default, kind, web_ui] for flag, env_var, default, kind, web_ui, files in LOCUST
                    if module in files]  # fmt: skip
        assert dump["rows"] == expected, module
        assert (dump["zipf_s"], dump["keys"]) == (1.25, 77), module  # the environment variables reach the options


@pytest.mark.unit
def test_cachelab_load_values_become_locust_arguments() -> None:
    argv = ["outage", "--host", "http://h", "--stub-admin", "http://s", "--zipf-s", "1.20", "--keys", "5",
            "--outage-mode", "reset", "--phases", "warmup=1s,outage=2s,recovery=1s"]  # fmt: skip
    args = _load_parser().parse_args(argv)
    assert locust_knobs(vars(args), skip=("stub-admin",)) == {
        "--zipf-s": "1.2",
        "--keys": "5",
        "--outage-mode": "reset",
        "--phases": "warmup=1s,outage=2s,recovery=1s",
    }
    assert locust_knobs(vars(args))["--stub-admin"] == "http://s"
    assert misplaced(vars(args), "outage") is None
    assert misplaced(vars(args), "steady") == "--outage-mode applies to outage, not to steady"
    assert misplaced({"direct_share": 0.5}, "compare") == "--direct-share applies to steady and outage, not to compare"
    assert misplaced({"path_template": "/x/{key}"}, "compare") is None


@pytest.mark.unit
def test_an_option_that_applies_to_some_scenarios_says_so() -> None:
    direct_share = find("direct-share")
    assert direct_share.description.startswith("steady/outage: ")
    assert direct_share.in_locustfile("compare")  # every summary records it, so every locustfile takes it
    assert not direct_share.applies_to("compare")
    assert not find("expiry-gap").in_locustfile("steady")
    with pytest.raises(KeyError, match="no load option 'no-such-option'"):
        find("no-such-option")
