"""`cachelab gateway`: a local API Gateway (REST API, Lambda proxy) for the function of `sam/template.yaml`."""

from __future__ import annotations

import argparse

from cachelab.gateway.cli import add_arguments, run


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="serve the SAM-defined proxy Lambda behind a local API Gateway (no Docker)",
        description="A local API Gateway REST API for the proxy Lambda, driven by the SAM template: REST proxy "
        "events, a Lambda-like context, function timeout (504), reserved-concurrency cap (429), cold starts "
        "in separate worker processes.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run, needs=lambda _args: ("sam",))
