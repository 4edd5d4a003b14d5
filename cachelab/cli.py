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
COMMANDS: tuple[str, ...] = ("invoke", "stub", "gateway", "up", "demo", "load", "deploy", "invalidate", "whatif")


# Options whose values are arguments for another program (`--stub-arg --latency-ms --stub-arg 50`). argparse takes a
# value that starts with "-" for an option of ours, so `--stub-arg X` is read as `--stub-arg=X`, whatever X is.
PASS_THROUGH_OPTIONS: tuple[str, ...] = ("--stub-arg", "--locust-arg")


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


def join_pass_through(argv: Sequence[str]) -> list[str]:
    """`--stub-arg X` -> `--stub-arg=X` for every PASS_THROUGH_OPTIONS option (up to a `--`)."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            out.extend(argv[index:])
            break
        if arg in PASS_THROUGH_OPTIONS and index + 1 < len(argv):
            out.append(f"{arg}={argv[index + 1]}")
            index += 2
            continue
        out.append(arg)
        index += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_pass_through(sys.argv[1:] if argv is None else argv))
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
