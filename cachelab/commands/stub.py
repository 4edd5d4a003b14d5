"""`cachelab stub`: run the steerable external API (stub_api) in the foreground."""

from __future__ import annotations

import argparse

from cachelab.cli import CliError
from cachelab.processes import PortInUseError, ensure_port_free
from stub_api.config import ConfigError, add_arguments, config_from_args


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stub",
        help="run the slow, flaky, steerable external API (control page at /__admin/)",
        description="Run the stub external API until Ctrl-C. Every flag has a matching environment variable "
        "(shown in brackets); a flag wins over its variable.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run, needs=lambda _args: ("stub",))


def run(args: argparse.Namespace) -> int:
    # aiohttp is imported only when the stub really starts, so `cachelab --help` stays quick.
    from stub_api import server  # noqa: PLC0415

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    if config.port != 0:
        try:
            ensure_port_free(config.port, config.host, what="stub API")
        except PortInUseError as exc:
            raise CliError(str(exc)) from exc
        except OSError as exc:
            raise CliError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from exc
    try:
        return server.run(config)
    except OSError as exc:
        raise CliError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from exc
