"""`cachelab demo`: a guided one-minute experiment on the native stack, with a printed summary.

Warm-up under steady Zipf traffic, an upstream outage (the stub answers 503 to everything), recovery: the `outage`
Locust scenario with a share of requests sent straight to the upstream for comparison. Writes
results/<timestamp>/ (summary.json, Locust CSV and HTML, PNG charts) and tears the stack down.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cachelab.cli import CliError
from cachelab.commands.up import add_stack_arguments
from cachelab.processes import PortInUseError
from cachelab.stack import DEFAULT_STUB_ARGS, Stack, StackConfig, StackError, needed_extras
from loadtests.runner import LoadError, LoadRun, Terminated, partial_results, raise_terminated, run_scenario
from loadtests.summary_text import percent, plural, throttled
from loadtests.workload import parse_duration

PHASE_SHARES = (("warmup", 0.45), ("outage", 0.30), ("recovery", 0.25))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="a guided one-minute experiment on the native stack with a printed summary",
        description="Start the native stack, run warm-up (steady Zipf traffic) → upstream outage → recovery with "
        "Locust, print hit ratio, latency per cache status against direct upstream calls, upstream requests saved "
        "and availability during the outage, write results/<timestamp>/, and stop everything.",
    )
    add_stack_arguments(parser, locust=False)
    parser.add_argument("--duration", default="60s", help="length of the experiment (default 60s)")
    parser.add_argument("--users", type=int, default=20, help="concurrent Locust users (default 20)")
    parser.add_argument("--rate", type=float, default=100.0, help="target requests/s (default 100)")
    parser.add_argument("--keys", type=int, default=200, help="key-space size (default 200)")
    parser.add_argument("--zipf-s", type=float, default=1.1, help="Zipf exponent of key popularity (default 1.1)")
    parser.add_argument("--ttl", type=float, default=30.0, help="the proxy's CACHE_TTL_SECONDS (default 30)")
    parser.add_argument(
        "--outage-mode", choices=("error", "timeout", "reset"), default="error", help="how the upstream fails"
    )
    parser.add_argument("--direct-share", type=float, default=0.1, help="share of requests sent to the upstream")
    parser.add_argument("--out", type=Path, default=None, help="results directory (default results/<timestamp>/)")
    parser.set_defaults(func=run, needs=lambda _args: needed_extras(locust=True))


def run(args: argparse.Namespace) -> int:
    try:
        total = parse_duration(args.duration)
    except ValueError as exc:
        raise CliError(f"--duration: {exc}") from None
    if total < 10:
        raise CliError("--duration must be at least 10s: the experiment has three phases")
    out = args.out or Path("results") / time.strftime("%Y%m%d-%H%M%S")
    phases = ",".join(f"{name}={round(total * share, 1)}s" for name, share in PHASE_SHARES)
    config = StackConfig(
        redis_port=args.redis_port,
        stub_port=args.stub_port,
        gateway_port=args.gateway_port,
        locust_port=None,
        stub_args=tuple(args.stub_arg) if args.stub_arg is not None else DEFAULT_STUB_ARGS,
        gateway_params=tuple(args.param),
        gateway_env={"CACHE_TTL_SECONDS": str(args.ttl)},
        # One execution environment per user, so cache hits never queue behind slow misses.
        concurrency=args.concurrency or args.users,
        warm=args.concurrency or args.users,
        workdir=out / "logs",  # kept with the results: a service that failed to start is explained there
    )
    print("cachelab demo: caching a slow, flaky API from Lambda, measured.\n")
    print("Step 1/3: starting the native stack (no Docker)")
    measuring = False
    previous = signal.signal(signal.SIGTERM, raise_terminated)  # SIGTERM stops the demo as cleanly as Ctrl-C
    try:
        with Stack(config) as stack:
            print(
                f"\nStep 2/3: {total:.0f} s of Locust traffic through the proxy ({plural(args.users, 'user')}, "
                f"~{args.rate:.0f} req/s, {args.keys} Zipf keys, s={args.zipf_s}, TTL {args.ttl:g} s), "
                f"{args.direct_share:.0%} sent straight to the upstream for comparison:"
            )
            for name, share in PHASE_SHARES:
                print(
                    f"  {name:<9} {total * share:5.1f} s"
                    + ("  (the stub answers " + args.outage_mode + ")" if name == "outage" else "")
                )
            load = LoadRun(
                scenario="outage",
                host=stack.gateway_url,
                out=out,
                users=args.users,
                duration=f"{total:g}s",
                stub_admin=stack.stub_url,
                knobs={
                    "--rate": str(args.rate),
                    "--keys": str(args.keys),
                    "--zipf-s": str(args.zipf_s),
                    "--outage-mode": args.outage_mode,
                    "--phases": phases,
                    "--direct-share": str(args.direct_share),
                },
            )
            measuring = True
            summary = run_scenario(load, show=lambda line: print("  " + line, flush=True))
    except (StackError, PortInUseError, LoadError) as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt as exc:
        what = "stopped by SIGTERM" if isinstance(exc, Terminated) else "interrupted"
        written = partial_results(out) if measuring else "nothing was measured yet"
        print(f"\ncachelab demo: {what}; the stack is stopped (logs: {out / 'logs'}/); {written}", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("\nStep 3/3: the stack is stopped. Summary:\n")
    print(render_demo_summary(summary))
    charts = write_charts(out)
    print(
        f"\nresults: {out}/ (summary.json, Locust CSV history, report.html"
        f"{', ' + ', '.join(charts) if charts else ''}, logs/)"
    )
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def render_demo_summary(summary: Mapping[str, Any]) -> str:
    """The demo's table: what a newcomer wants to know, from summary.json."""
    proxy = summary["targets"].get("proxy", summary)
    direct = summary["targets"].get("upstream")
    phases = {phase["name"]: phase for phase in summary["phases"]}
    outage = phases.get("outage", {})
    cached = outage.get("groups", {}).get("seen-key", {})
    lines = [
        f"{'':<26}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}",
    ]
    for status in ("HIT", "MISS", "STALE"):
        fig = proxy["by_cache_status"][status]
        lines.append(
            f"{'proxy, ' + status:<26}{fig['count']:>8}{_ms(fig['p50_ms']):>10}{_ms(fig['p95_ms']):>10}{_ms(fig['p99_ms']):>10}"
        )
    if direct is not None:
        lat = direct["latency"]
        lines.append(
            f"{'direct upstream calls':<26}{direct['requests']:>8}{_ms(lat['p50_ms']):>10}{_ms(lat['p95_ms']):>10}{_ms(lat['p99_ms']):>10}"
        )
    answered = int(proxy["answered"])
    via_proxy = int(summary.get("upstream_requests_via_proxy") or proxy.get("forwarded") or 0)
    saved = answered - via_proxy
    steady = [phase.get("targets", {}).get("proxy", phase) for name, phase in phases.items() if name != "outage"]
    steady_answered = sum(int(p["answered"]) for p in steady)
    steady_hits = sum(int(p["by_cache_status"]["HIT"]["count"]) for p in steady)
    lines += [
        "",
        f"hit ratio, steady traffic           {percent(steady_hits / steady_answered if steady_answered else None)}"
        "   (HIT / answered in warm-up and recovery)",
        f"hit ratio, whole run                {percent(proxy['hit_ratio'])}   served from cache (HIT + STALE) {percent(proxy['cache_served_ratio'])}",
        f"upstream requests saved             {saved:,} of {answered:,} proxy answers ({percent(saved / answered if answered else None)})",
        f"availability during the outage      cached keys {percent(cached.get('availability'))}, "
        f"all proxy requests {percent(outage.get('availability'))}",
        f"availability over the whole run     proxy {percent(summary['availability'])}"
        + (f", direct upstream calls {percent(direct['availability'])}" if direct is not None else ""),
    ]
    per_phase = "  ".join(f"{name} {percent(phase['hit_ratio'])}" for name, phase in phases.items())
    lines.append(f"hit ratio per phase                 {per_phase}")
    if throttled(summary):
        lines.append(f"throttled (429)                     {plural(throttled(summary), 'request')} (not available)")
    lines += [
        "",
        "availability: the share of proxy requests answered without a 5xx, a 429 throttle or a transport error,",
        "as in the progress lines, charts/outage_timeline.png and summary.json (direct calls have their own figure).",
    ]
    lines.extend(f"note: {note}" for note in summary.get("notes", []))
    return "\n".join(lines)


def write_charts(out: Path) -> list[str]:
    """PNG charts in <out>/charts/ (analysis.charts); returns their paths relative to `out`."""
    from analysis import charts  # noqa: PLC0415 - matplotlib is slow to import: only when charts are drawn

    return [str(path.relative_to(out)) for path in charts.write_charts(out)]
