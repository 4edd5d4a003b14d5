"""`cachelab gateway`: a local API Gateway (REST API, Lambda proxy) for the function of `sam/template.yaml`."""

from __future__ import annotations

import argparse

from cachelab.gateway.cli import DESCRIPTION, add_arguments, run


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="serve the SAM-defined proxy Lambda behind a local API Gateway (no Docker)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run, needs=lambda _args: ("sam",))
