"""`cachelab up`: the whole native stack until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from cachelab.cli import CliError
from cachelab.processes import PortInUseError
from cachelab.stack import DEFAULT_STUB_ARGS, Stack, StackConfig, StackError, needed_extras


def add_stack_arguments(parser: argparse.ArgumentParser, *, locust: bool = True) -> None:
    parser.add_argument("--redis-port", type=int, default=6379, help="Redis port (default 6379)")
    parser.add_argument("--stub-port", type=int, default=8081, help="stub API port (default 8081)")
    parser.add_argument("--gateway-port", type=int, default=3000, help="gateway (the proxy's API) port (default 3000)")
    if locust:
        parser.add_argument("--locust-port", type=int, default=8089, help="Locust web UI port (default 8089)")
        parser.add_argument("--no-locust", action="store_true", help="do not start the Locust web UI")
        parser.add_argument("--locustfile", default="steady", help="scenario the web UI runs (default steady)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="Name=Value", help="template parameter for the gateway"
    )
    parser.add_argument(
        "--stub-arg", action="append", default=None, metavar="ARG",
        help="one argument for the stub, repeatable, in order; replaces the defaults "
        f"({' '.join(DEFAULT_STUB_ARGS)}), e.g. --stub-arg --latency-ms --stub-arg 50",
    )  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=None, help="gateway execution environments")


def default_logs() -> Path:
    """Where `cachelab up` keeps the services' logs when --logs is not given (never deleted by cachelab)."""
    return Path(tempfile.gettempdir()) / f"cachelab-up-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def config_from_args(args: argparse.Namespace) -> StackConfig:
    return StackConfig(
        redis_port=args.redis_port,
        stub_port=args.stub_port,
        gateway_port=args.gateway_port,
        locust_port=None if getattr(args, "no_locust", True) else args.locust_port,
        locustfile=getattr(args, "locustfile", "steady"),
        stub_args=tuple(args.stub_arg) if args.stub_arg is not None else DEFAULT_STUB_ARGS,
        gateway_params=tuple(args.param),
        concurrency=args.concurrency,
        workdir=getattr(args, "logs", None) or default_logs(),
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="start Redis, the stub API, the gateway and the Locust web UI until Ctrl-C",
        description="Start the native stack (no Docker): redis-server (or an embedded fakeredis when it is not "
        "installed), the stub API, the local API Gateway serving the SAM-defined proxy, and the Locust web UI "
        "aimed at the gateway. Waits for each to be healthy, prints the URLs, and stops everything on Ctrl-C.",
    )
    add_stack_arguments(parser)
    parser.add_argument(
        "--logs", type=Path, default=None, metavar="DIR",
        help="folder for the services' logs, kept after exit (default: a new cachelab-up-<time> folder in the "
        "temp directory, printed at start and at exit)",
    )  # fmt: skip
    parser.set_defaults(func=run, needs=lambda args: needed_extras(locust=not args.no_locust))


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("cachelab up: starting the native stack ...", flush=True)
        config = config_from_args(args)
        try:
            with Stack(config) as stack:
                print("\ncachelab is up:\n" + stack.describe() + "\n\nCtrl-C stops everything.", flush=True)
                while not stop.wait(0.5):
                    for service in stack.services:
                        if service.proc.poll() is not None:
                            raise StackError(
                                f"{service.name} exited with status {service.proc.returncode}; see {service.log}"
                            )
                print("\ncachelab up: stopping ...", flush=True)
        except (StackError, PortInUseError) as exc:
            raise CliError(str(exc)) from None
        print(f"cachelab up: stopped; every port is free again. The logs stay in {config.workdir}/", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
