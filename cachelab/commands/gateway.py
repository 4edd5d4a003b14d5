"""`cachelab gateway`: a local API Gateway (REST API, Lambda proxy) for the proxy function of `sam/template.yaml`.

The gateway itself (`cachelab.gateway`) runs any SAM function; this command tells it what it cannot know about the
proxy: its configuration names (set in this command's environment, they override the template) and what to pass
when the template's defaults point at an ElastiCache endpoint that exists only in a deployed stack.
"""

from __future__ import annotations

import argparse

from cachelab.cli import CliError
from cachelab.gateway import cli as gateway_cli
from cachelab.gateway.settings import GatewayError
from proxy.config import ENVIRONMENT_NAMES

LOCAL_REDIS_PARAMS = "--param RedisMode=external --param RedisUrl=redis://127.0.0.1:6379/0"
DESCRIPTION = f"""\
A local API Gateway REST API (Lambda proxy integration) for the proxy Lambda of the SAM template: REST proxy
events, a Lambda-like context, the function timeout (504), a reserved-concurrency cap (429), cold starts in
separate worker processes.

Configuration: the function's environment comes from the template (--param Name=Value sets its parameters), and
the proxy's variables (UPSTREAM_URL, REDIS_URL, CACHE_TTL_SECONDS, ...) set in this command's environment win
over it. The template's defaults describe AWS (RedisMode=elasticache: an ElastiCache endpoint that exists only
in a deployed stack), so locally give the function a Redis, either way:

  cachelab gateway {LOCAL_REDIS_PARAMS}
  REDIS_URL=redis://127.0.0.1:6379/0 UPSTREAM_URL=http://127.0.0.1:8081 cachelab gateway

Without one the gateway refuses to start and names what is missing."""
HINTS = {"REDIS_URL": f"pass {LOCAL_REDIS_PARAMS}"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="serve the SAM-defined proxy Lambda behind a local API Gateway (no Docker)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gateway_cli.add_arguments(parser)
    parser.set_defaults(func=run, needs=lambda _args: ("sam",))


def run(args: argparse.Namespace) -> int:
    try:
        return gateway_cli.run(args, pass_env=ENVIRONMENT_NAMES, hints=HINTS)
    except GatewayError as exc:
        raise CliError(str(exc)) from None
