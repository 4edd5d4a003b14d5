"""Every load option, declared once: its name, type, default, help and the scenarios it applies to.

The one table (OPTIONS) makes Locust's custom arguments (loadtests.locust_options, env var CACHELAB_<NAME> unless
an option names its own), the defaults a Locust process without parsed options reads, `cachelab load`'s scenario
flags (add_cli_arguments, misplaced) and their translation into Locust arguments (locust_knobs). Importing it
imports neither Locust nor gevent: `cachelab --help` builds its parser from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

Value = str | int | float


@dataclass(frozen=True)
class LoadOption:
    """One option of the locustfiles (`--name`), and perhaps of `cachelab load` too (`cli`)."""

    name: str  # the flag without its dashes: "zipf-s"
    type: type[str] | type[int] | type[float]
    default: Value
    help: str
    metavar: str = ""  # "": argparse's own (the dest in capitals)
    scenarios: tuple[str, ...] = ()  # the scenarios it applies to; (): every one
    # Registered in every locustfile although it applies to some: every summary's settings record it.
    everywhere: bool = False
    cli: bool = False  # a `cachelab load` flag too
    choices: tuple[str, ...] = ()  # checked by `cachelab load`'s parser (the locustfile checks the value itself)
    env: str = ""  # the environment variable, when not CACHELAB_<NAME>
    web_ui: bool = True  # a field of Locust's web UI form

    @property
    def flag(self) -> str:
        return "--" + self.name

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env_var(self) -> str:
        return self.env or "CACHELAB_" + self.dest.upper()

    @property
    def description(self) -> str:
        """The help text, saying which scenarios it applies to when not all."""
        return f"{'/'.join(self.scenarios)}: {self.help}" if self.scenarios else self.help

    def applies_to(self, scenario: str) -> bool:
        return not self.scenarios or scenario in self.scenarios

    def in_locustfile(self, scenario: str) -> bool:
        """Whether the locustfile of `scenario` takes this option."""
        return self.everywhere or self.applies_to(scenario)

    def text(self, value: Value) -> str:
        """`value` as a command-line argument."""
        return f"{value:g}" if isinstance(value, float) else str(value)

    def argparse_kwargs(self) -> dict[str, Any]:
        """`type` and `metavar` for add_argument, when not argparse's own (a string; the dest in capitals)."""
        kwargs: dict[str, Any] = {}
        if self.type is not str:
            kwargs["type"] = self.type
        if self.metavar:
            kwargs["metavar"] = self.metavar
        return kwargs


# fmt: off
OPTIONS: tuple[LoadOption, ...] = (
    # The options of every scenario.
    LoadOption("stub-admin", str, "", "base URL of the stub API (its /__admin/ API): upstream request counts; fault "
               "injection for outage and stampede", metavar="URL", cli=True),
    LoadOption("summary-json", str, "", "write summary.json here (and measurements.json next to it) when Locust quits",
               metavar="PATH", web_ui=False),
    LoadOption("duration", str, "", "length of the run when --run-time is not given (e.g. 60s, 2m); empty: until "
               "stopped", metavar="TIME"),
    LoadOption("keys", int, 1000, "size of the key space (keys 1..N)", metavar="N", cli=True),
    LoadOption("zipf-s", float, 1.0, "Zipf exponent of the key popularity (0 = uniform)", metavar="S", cli=True),
    LoadOption("rate", float, 0.0, "target request rate of the whole run, spread over all users (0 = as fast as the "
               "users go)", metavar="RPS", cli=True),
    LoadOption("request-timeout", float, 10.0, "client-side connect and read timeout of each request, in seconds",
               metavar="S", cli=True),
    LoadOption("path-template", str, "/items/{key}", "request path of key {key}", metavar="TEMPLATE",
               scenarios=("steady", "outage", "compare"), everywhere=True, cli=True, env="CACHELAB_PATH"),
    LoadOption("upstream", str, "", "base URL of the upstream for direct calls (compare, --direct-share); default: "
               "the --stub-admin URL", metavar="URL", cli=True),
    LoadOption("direct-share", float, 0.0, "share of requests sent straight to the upstream, as a baseline (0..1)",
               metavar="F", scenarios=("steady", "outage"), everywhere=True, cli=True),
    LoadOption("progress", float, 5.0, "log a progress line (phase, requests, hit ratio, availability) this often; "
               "0 = never", metavar="S"),
    LoadOption("stub-poll", float, 0.5, "how often the master polls the stub's /__admin/stats during the run",
               metavar="S"),
    # outage
    LoadOption("outage-mode", str, "error", "how the upstream fails during the outage phase: error | timeout | reset",
               scenarios=("outage",), cli=True, choices=("error", "timeout", "reset")),
    LoadOption("phases", str, "warmup=0.3,outage=0.4,recovery=0.3", "phase lengths: shares of the run time or "
               "durations, e.g. warmup=10s,outage=20s,recovery=10s", metavar="SPEC", scenarios=("outage",),
               cli=True),
    # stampede
    LoadOption("hot-path", str, "/items/1", "the one hot resource", metavar="PATH", scenarios=("stampede",), cli=True),
    LoadOption("hot-max-age", float, 0.0, "make the stub send Cache-Control: max-age=S on the hot path for the run "
               "(0 = leave the stub as is)", metavar="S", scenarios=("stampede",), cli=True),
    LoadOption("hot-latency-ms", float, 0.0, "make the stub answer the hot path this slowly for the run (0 = leave "
               "the stub as is)", metavar="MS", scenarios=("stampede",), cli=True),
    LoadOption("expiry-gap", float, 0.5, "upstream requests for the hot path closer than this belong to the same "
               "refill", metavar="S", scenarios=("stampede",)),
    # key-order
    LoadOption("key-order-path", str, "/", "path whose query parameters are shuffled", metavar="PATH",
               scenarios=("key-order",)),
    # replay
    LoadOption("replay-log", str, "", "the access log to replay", metavar="PATH", scenarios=("replay",)),
    LoadOption("replay-format", str, "auto", "its format", metavar="FORMAT", scenarios=("replay",)),
    LoadOption("replay-speed", float, 1.0, "replay X times faster than logged", metavar="X", scenarios=("replay",)),
    LoadOption("replay-limit", int, 0, "replay the first N requests (0: all)", metavar="N", scenarios=("replay",)),
    LoadOption("replay-host", str, "", "replay absolute URLs of this host (HAR: default the first host)",
               metavar="HOST", scenarios=("replay",)),
)
# fmt: on
CLI_OPTIONS: tuple[LoadOption, ...] = tuple(option for option in OPTIONS if option.cli)


def find(name: str) -> LoadOption:
    """The option named `name` ("zipf-s")."""
    for option in OPTIONS:
        if option.name == name:
            return option
    raise KeyError(f"no load option {name!r}")


def defaults() -> dict[str, Value]:
    """Every option's default, by dest."""
    return {option.dest: option.default for option in OPTIONS}


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """`cachelab load`'s flags for the options it offers. Their default is None (not given: the locustfile's own
    default applies), so each help text names the default."""
    for option in CLI_OPTIONS:
        parser.add_argument(
            option.flag, choices=option.choices or None, help=_with_default(option), **option.argparse_kwargs()
        )


def _with_default(option: LoadOption) -> str:
    """The help text with the default in it: "size of the key space (keys 1..N; default 1000)"."""
    text = option.description
    if option.default == "":
        return text
    default = option.text(option.default)
    return f"{text[:-1]}; default {default})" if text.endswith(")") else f"{text} (default {default})"


def misplaced(values: Mapping[str, object], scenario: str) -> str | None:
    """The first `cachelab load` option given (by dest; None: not given) that does not apply to `scenario`, said."""
    for option in CLI_OPTIONS:
        if values.get(option.dest) is not None and not option.applies_to(scenario):
            return f"{option.flag} applies to {' and '.join(option.scenarios)}, not to {scenario}"
    return None


def locust_knobs(values: Mapping[str, object], *, skip: Collection[str] = ()) -> dict[str, str]:
    """The Locust arguments of the `cachelab load` option values given (by dest; None: not given), but those named
    in `skip`: {"zipf_s": 1.2, "keys": None} -> {"--zipf-s": "1.2"}."""
    knobs: dict[str, str] = {}
    for option in CLI_OPTIONS:
        value = values.get(option.dest)
        if value is not None and option.name not in skip:
            assert isinstance(value, str | int | float)
            knobs[option.flag] = option.text(value)
    return knobs
