"""The one `cachelab` command line: each subcommand lives in its own module under cachelab.commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cachelab.extras import MissingExtras, require

# Subcommand modules, in the order `cachelab --help` lists them. Each exposes `register(subparsers)` that adds its
# parser and sets `func(args) -> int` and, when the command needs optional dependencies, `needs(args)` -> the
# extras to check before `func` runs (cachelab.extras). Command modules import nothing optional at the top.
COMMANDS: tuple[str, ...] = ("invoke", "stub", "gateway", "up", "demo", "load", "deploy", "invalidate")


class CliError(Exception):
    """A user-facing error: printed as one line on stderr, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cachelab",
        description="Learn, test and ship API caching for serverless backends.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"cachelab.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        needs = getattr(args, "needs", None)
        if needs is not None:
            require(needs(args))
        return int(args.func(args))
    except (CliError, MissingExtras) as exc:
        print(f"cachelab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
