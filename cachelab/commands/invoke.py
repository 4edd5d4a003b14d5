"""`cachelab invoke`: build an API Gateway / Function URL event and call the proxy handler in-process.

Like `sam local invoke`, without Docker. The proxy's configuration comes from the environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import types

from cachelab.cli import CliError
from cachelab.events import EVENT_FORMATS, build_event


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="call the proxy handler in-process with a built event and print its result",
        description="Build the event API Gateway would send for one request, call proxy.handler.lambda_handler "
        "in this process with the configuration from the environment (UPSTREAM_URL, REDIS_URL, ...), and print "
        "the handler's result object (statusCode, headers, body, isBase64Encoded) as JSON on stdout.",
    )
    parser.add_argument("target", metavar="PATH_WITH_QUERY", help="e.g. '/items/42?fields=name'")
    parser.add_argument("--method", "-X", default="GET", help="HTTP method (default GET)")
    parser.add_argument(
        "--header", "-H", action="append", default=[], metavar="'K: V'", help="a request header; repeatable"
    )
    parser.add_argument("--data", "-d", default=None, help="request body (for POST/PUT/PATCH)")
    parser.add_argument(
        "--event-format",
        choices=EVENT_FORMATS,
        default="rest",
        help="rest = API Gateway REST (payload 1.0, default), http = HTTP API (2.0), url = Function URL (2.0)",
    )
    parser.add_argument("--print-event", action="store_true", help="print the event on stderr too")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.target.startswith("/"):
        raise CliError(f"PATH_WITH_QUERY must start with '/', got {args.target!r}")
    headers: list[tuple[str, str]] = []
    for raw in args.header:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise CliError(f"--header must look like 'Name: value', got {raw!r}")
        headers.append((name.strip(), value.strip()))
    body = args.data.encode() if args.data is not None else b""
    event = build_event(args.method, args.target, headers, body, event_format=args.event_format)
    if args.print_event:
        print(json.dumps(event, indent=2), file=sys.stderr)

    from proxy.config import ConfigError  # noqa: PLC0415 - keep `cachelab --help` fast
    from proxy.handler import lambda_handler  # noqa: PLC0415

    context = types.SimpleNamespace(
        aws_request_id=event.get("requestContext", {}).get("requestId", "local"),
        function_name="cachelab-invoke",
        memory_limit_in_mb=512,
        get_remaining_time_in_millis=lambda: 29_000,
    )
    try:
        result = lambda_handler(event, context)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    print(json.dumps(result, indent=2))
    return 0
