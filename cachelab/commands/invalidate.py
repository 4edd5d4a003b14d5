"""`cachelab invalidate PATH... [--prefix]`: delete cached entries now.

--target native (default) purges directly in Redis (the native sandbox's, or any REDIS_URL); --target localstack
or aws publishes the documented message to the stack's SNS topic, and the invalidation function purges.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cachelab.cli import CliError
from cachelab.commands.deploy import DEFAULT_STACK, LOCALSTACK_ENDPOINT, make_target, stack_outputs

if TYPE_CHECKING:
    from proxy.invalidate import Invalidation

TARGETS = ("native", "localstack", "aws")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "invalidate",
        help="delete cached entries: exact paths, or path prefixes with --prefix",
        description="Delete the cached entries of PATH (every query and header variant of a path without a "
        "query; just that URI when PATH has a query), or of every path starting with PATH with --prefix. "
        "--target native purges in Redis directly and prints how many entries were removed; --target "
        'localstack|aws publishes {"paths": [...]} or {"prefixes": [...]} to the stack\'s SNS topic '
        "(output InvalidationTopicArn) for the invalidation function.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="e.g. /items/1 (must start with '/')")
    parser.add_argument("--prefix", action="store_true", help="treat every PATH as a path prefix")
    parser.add_argument("--target", choices=TARGETS, default="native")
    parser.add_argument(
        "--redis-url",
        default=None,
        help=f"native: the Redis to purge (default: REDIS_URL, else {DEFAULT_REDIS_URL})",
    )
    parser.add_argument("--stack-name", default=DEFAULT_STACK, help="localstack|aws: the stack (default cachelab)")
    parser.add_argument("--topic-arn", default=None, help="localstack|aws: publish here instead of the stack's topic")
    parser.add_argument("--endpoint-url", default=None, help=f"localstack: endpoint (default {LOCALSTACK_ENDPOINT})")
    parser.add_argument("--region", default=None, help="localstack|aws: AWS region")
    # Publishing to SNS needs boto3 (the sam extra); purging a native Redis needs only the core install.
    parser.set_defaults(func=run, needs=lambda args: () if args.target == "native" else ("sam",))


def run(args: argparse.Namespace) -> int:
    from proxy.invalidate import InvalidMessage, make_invalidation  # noqa: PLC0415 - keep `cachelab --help` fast

    try:
        paths, prefixes = ([], args.paths) if args.prefix else (args.paths, [])
        invalidation = make_invalidation(paths, prefixes)
    except InvalidMessage as exc:
        raise CliError(str(exc)) from None
    if args.target == "native":
        return purge_native(args, invalidation)
    if args.redis_url is not None:
        raise CliError("--redis-url applies to --target native only")
    return publish(args, invalidation)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"


def purge_native(args: argparse.Namespace, invalidation: Invalidation) -> int:
    from proxy.config import ConfigError  # noqa: PLC0415
    from proxy.invalidate import apply, build_app  # noqa: PLC0415
    from proxy.ports import StoreUnavailable  # noqa: PLC0415
    from proxy.secrets import SecretError  # noqa: PLC0415

    if args.endpoint_url is not None or args.topic_arn is not None:
        raise CliError("--endpoint-url and --topic-arn apply to --target localstack|aws only")
    url = args.redis_url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    # The store reads the proxy's own configuration variables (REDIS_CLUSTER, REDIS_AUTH_SECRET_ARN, ...);
    # UPSTREAM_URL is required by that contract but unused for purging, and a CLI can afford a longer timeout.
    env = {"UPSTREAM_URL": "http://upstream.invalid", "REDIS_SOCKET_TIMEOUT_SECONDS": "5", **os.environ}
    env["REDIS_URL"] = url
    try:
        app = build_app(env)
    except (ConfigError, SecretError) as exc:
        raise CliError(str(exc)) from None
    try:
        result = apply(app.store, invalidation)
    except StoreUnavailable as exc:
        raise CliError(f"cannot purge in Redis at {_redacted(url)}: {exc}") from None
    finally:
        app.store.close()
    for target in result.rejected_targets:
        print(f"skipped {target}: not a valid request target")
    kind = "prefix" if invalidation.prefixes else "path"
    targets = ", ".join(invalidation.prefixes or invalidation.paths)
    entries = "entry" if result.purged == 1 else "entries"
    print(f"purged {result.purged} cached {entries} ({kind}: {targets}) in {_redacted(url)}")
    return 0


def publish(args: argparse.Namespace, invalidation: Invalidation) -> int:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    target = make_target(args.target, region=args.region, endpoint=args.endpoint_url)
    topic = args.topic_arn or stack_outputs(target, args.stack_name).get("InvalidationTopicArn")
    if not topic:
        raise CliError(f"stack {args.stack_name!r} has no InvalidationTopicArn output")
    try:
        answer = target.sns().publish(TopicArn=topic, Message=invalidation.to_message(), Subject="cachelab invalidate")
    except ClientError as exc:
        raise CliError(f"cannot publish to {topic}: {exc.response['Error'].get('Message')}") from None
    except BotoCoreError as exc:
        raise CliError(f"cannot reach SNS at {target.endpoint or 'AWS'}: {exc}") from None
    print(f"published {invalidation.to_message()} to {topic} (message id {answer.get('MessageId')})")
    print("the invalidation function deletes the matching entries asynchronously")
    return 0
