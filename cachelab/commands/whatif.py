"""`cachelab whatif LOG`: what the proxy would have done with your traffic, per TTL (see the whatif package)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import TextIO

from cachelab.cli import CliError
from loadtests.workload import parse_duration
from proxy.config import ConfigError, Settings
from whatif.parsers import FORMATS
from whatif.simulator import SimConfig

DEFAULT_TTLS = "10,30,60,120,300,600,1800,3600"


class ProgressBar:
    """A one-line progress bar on a terminal (at most five updates a second)."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.started = time.monotonic()
        self._shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._shown < 0.2 and done < total:
            return
        self._shown = now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed / 1e6
        if total > 0:
            share = min(1.0, done / total)
            bar = "#" * int(share * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {share:4.0%} {rate:6.1f} MB/s {elapsed:5.1f} s")
        else:
            self.stream.write(f"\r{self.label} {done / 1e6:,.1f} MB {rate:6.1f} MB/s {elapsed:5.1f} s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def parse_ttls(text: str) -> tuple[float, ...]:
    """ "10,30,5m,1h" -> (10.0, 30.0, 300.0, 3600.0), sorted, without duplicates."""
    values: set[float] = set()
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            values.add(parse_duration(part))
        except ValueError:
            raise CliError(f"--ttl: {part.strip()!r} is not a number of seconds (e.g. 10,30,60,5m,1h)") from None
    if not values:
        raise CliError("--ttl needs at least one TTL, e.g. --ttl 10,60,300")
    return tuple(sorted(values))


def seconds(flag: str, text: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError:
        raise CliError(f"{flag}: {text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise CliError(f"{flag} must be finite")
    return value


# The proxy's own defaults (proxy.config), as the flags spell them.
POLICY_DEFAULTS: dict[str, str] = {
    "swr": "30",
    "stale_if_error": "86400",
    "negative_ttl": "10",
    "upstream_timeout": "5",
}
DEFAULT_LATENCY_MS = 100.0


def _flag(args: argparse.Namespace, name: str) -> str:
    value = getattr(args, name)
    return POLICY_DEFAULTS[name] if value is None else str(value)


def sim_config(args: argparse.Namespace, *, ttl_default: str = DEFAULT_TTLS) -> SimConfig:
    """The proxy settings under test, from the flags shared by `whatif` and `load replay`."""
    try:
        env = {"UPSTREAM_URL": "http://upstream.invalid", "CACHE_KEY_HEADERS": args.key_headers or ""}
        key_headers = Settings.from_env(env).policy.key_headers  # parsed exactly as the proxy parses it
    except ConfigError as exc:
        raise CliError(f"--key-headers: {str(exc).split(': ', 1)[-1]}") from None
    timeout = seconds("--upstream-timeout", _flag(args, "upstream_timeout"))
    if timeout <= 0:
        raise CliError("--upstream-timeout must be positive")
    latency_ms = DEFAULT_LATENCY_MS if args.latency_ms is None else float(args.latency_ms)
    if not math.isfinite(latency_ms) or latency_ms < 0:
        raise CliError("--latency-ms must be a number >= 0")
    return SimConfig(
        ttls=parse_ttls(args.ttl or ttl_default),
        stale_while_revalidate=seconds("--swr", _flag(args, "swr")),
        stale_if_error=seconds("--stale-if-error", _flag(args, "stale_if_error")),
        negative_ttl=seconds("--negative-ttl", _flag(args, "negative_ttl")),
        upstream_timeout=timeout,
        latency=latency_ms / 1000.0,
        key_headers=key_headers,
    )


def add_policy_arguments(parser: argparse.ArgumentParser, *, ttl_help: str, what: str = "") -> None:
    """The proxy settings a simulation runs with (shared with `cachelab load replay`; defaults: the proxy's)."""
    parser.add_argument("--ttl", metavar="S[,S...]", help=ttl_help)
    parser.add_argument("--swr", metavar="S", help=f"{what}CACHE_STALE_WHILE_REVALIDATE_SECONDS (default 30)")
    parser.add_argument("--stale-if-error", metavar="S", help=f"{what}CACHE_STALE_IF_ERROR_SECONDS (default 86400)")
    parser.add_argument("--negative-ttl", metavar="S", help=f"{what}CACHE_NEGATIVE_TTL_SECONDS (default 10)")
    parser.add_argument("--upstream-timeout", metavar="S", help=f"{what}UPSTREAM_TIMEOUT_SECONDS (default 5)")
    parser.add_argument(
        "--key-headers", metavar="NAMES", help=f"{what}CACHE_KEY_HEADERS: request headers in the key, comma-separated"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        metavar="MS",
        help=f"{what}upstream latency of requests whose log line records none (default {DEFAULT_LATENCY_MS:g})",
    )
    parser.add_argument(
        "--format", dest="log_format", choices=("auto", *FORMATS), help="the log's format (default auto)"
    )
    parser.add_argument(
        "--log-host",
        metavar="HOST",
        help="take absolute URLs for this host as the proxy's own (default: none; HAR: the first host seen)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "whatif",
        help="predict hit ratio, upstream savings and monthly cost per TTL from an access log",
        description="Run an access log through the proxy's own caching decisions (its keys, TTLs, stale windows "
        "and coalescing of concurrent misses) at the recorded times, for every TTL at once, and print per TTL "
        "the hit ratio, upstream requests saved, the worst minute, STALE answers and the monthly cost. Writes "
        "DIR/whatif.json and DIR/whatif.png.",
    )
    parser.add_argument("log", type=Path, metavar="LOG", help="the access log (plain or gzip)")
    add_policy_arguments(
        parser, ttl_help=f"TTLs to compare, seconds (30s, 5m, 1h also work), comma-separated (default {DEFAULT_TTLS})"
    )
    parser.add_argument(
        "--prices", type=Path, metavar="FILE", help="JSON: unit prices and deployment (docs/experiments.md)"
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="output directory (default results/<time>-whatif/)")
    parser.add_argument("--json", action="store_true", help="print whatif.json instead of the table")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show the progress bar")
    # The cost model and the chart need numpy and matplotlib (the load extra).
    parser.set_defaults(func=run, needs=lambda args: ("load",))


def run(args: argparse.Namespace) -> int:
    from whatif.report import PricesError, chart, cost_inputs  # noqa: PLC0415 - needs the load extra
    from whatif.run import WhatifError, analyse  # noqa: PLC0415

    config = sim_config(args)
    costs = None
    if args.prices is not None:
        try:
            costs = cost_inputs(json.loads(args.prices.read_text()))
        except OSError as exc:
            raise CliError(f"--prices: cannot read {args.prices}: {exc.strerror or exc}") from None
        except ValueError as exc:  # PricesError or bad JSON
            kind = "" if isinstance(exc, PricesError) else "not JSON: "
            raise CliError(f"--prices {args.prices}: {kind}{exc}") from None
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(sys.stderr, f"whatif {args.log.name}") if show else None
    try:
        report = analyse(args.log, config, fmt=args.log_format or "auto", host=args.log_host, costs=costs, progress=bar)
    except WhatifError as exc:
        raise CliError(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    out = args.out if args.out is not None else Path("results") / f"{time.strftime('%Y%m%d-%H%M%S')}-whatif"
    out.mkdir(parents=True, exist_ok=True)
    from analysis.charts import save  # noqa: PLC0415 - matplotlib is slow to import: only when drawing

    data = report.to_json()
    (out / "whatif.json").write_text(json.dumps(data, indent=2) + "\n")
    save(chart(report.results, report.costs, title=f"{args.log.name}: {report.stats.requests:,} requests"),
         out / "whatif.png")  # fmt: skip
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(report.text())
        print(f"wrote {out}/whatif.json and {out}/whatif.png ({report.elapsed_s:.1f} s)")
    return 0
