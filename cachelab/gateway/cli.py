"""`python -m cachelab.gateway` (and, through `cachelab gateway`, the proxy's local API Gateway): arguments,
template resolution, then `Gateway.run()`.

The gateway serves whichever function a SAM template defines: what it knows of that function's configuration is
passed in by its caller (`pass_env`: the variables whose value in the gateway's environment overrides the
template's; `hints`: what to say when a variable resolves to a resource of a deployed stack). Failures raise
`GatewayError`, which the command line prints as one line, exit status 2. The server (httptools, uvloop) and SAM
CLI are imported once the arguments are checked, so `--help` and the extras check need neither.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cachelab.extras import MissingExtras, require
from cachelab.gateway.settings import API_TIMEOUT_S, HEALTH_PATH, GatewayError, GatewaySettings, json_log
from cachelab.gateway.spec import FunctionSpec, parse_params, runtime_mismatch, unresolved_variables
from cachelab.processes import LOOPBACK, PortInUseError

DEFAULT_PORT = 3000  # as `sam local start-api`
DEFAULT_CONCURRENCY = 10
DEFAULT_TEMPLATE = Path("sam/template.yaml")
DESCRIPTION = """\
A local API Gateway REST API (Lambda proxy integration) for one function of a SAM template: REST proxy events, a
Lambda-like context, the function timeout (504), a reserved-concurrency cap (429), cold starts in separate worker
processes. The function's environment comes from the template (--param Name=Value sets its parameters); each
--pass-env NAME set in this command's environment overrides the template's value."""


def _default_template() -> Path:
    """sam/template.yaml under the working directory, else the one of the checkout this package runs from."""
    if DEFAULT_TEMPLATE.is_file():
        return DEFAULT_TEMPLATE
    return Path(__file__).resolve().parents[2] / DEFAULT_TEMPLATE


def command(
    port: int,
    *,
    host: str = LOOPBACK,
    template: Path | None = None,
    params: Mapping[str, str] | None = None,
    concurrency: int | None = None,
    warm: int | None = None,
    pass_env: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> list[str]:
    """The argv that runs a gateway in its own process (what `cachelab up` starts); it is healthy when
    `health_url(port)` answers 200. The values of the `pass_env` names go in its environment."""
    argv = [sys.executable, "-m", "cachelab.gateway", "--port", str(port), "--host", host]
    if template is not None:
        argv += ["--template", str(template)]
    for name, value in (params or {}).items():
        argv += ["--param", f"{name}={value}"]
    for name in pass_env:
        argv += ["--pass-env", name]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    if warm is not None:
        argv += ["--warm", str(warm)]
    return [*argv, *extra]


def health_url(port: int, host: str = LOOPBACK) -> str:
    return f"http://{host}:{port}{HEALTH_PATH}"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port (1-65535), got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected 0 to 3600 seconds, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, metavar="P", help=f"port to listen on (default {DEFAULT_PORT})"
    )
    parser.add_argument("--host", default=LOOPBACK, metavar="ADDR", help=f"address to listen on (default {LOOPBACK})")
    parser.add_argument(
        "--template", type=Path, default=None, metavar="PATH", help=f"the SAM template (default {DEFAULT_TEMPLATE})"
    )
    parser.add_argument(
        "--function",
        default=None,
        metavar="LOGICAL_ID",
        help="logical id of the function to serve (default: the only one with REST API events)",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="Name=Value",
        help="override a template parameter (repeatable), as `sam local --parameter-overrides`",
    )  # fmt: skip
    parser.add_argument(
        "--pass-env", action="append", default=[], metavar="NAME",
        help="a variable that, set in this command's environment, overrides the function's (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=_positive_int, default=None, metavar="N",
        help="execution environments at most, like reserved concurrency (default: the template's "
        f"ReservedConcurrentExecutions, else {DEFAULT_CONCURRENCY})",
    )  # fmt: skip
    parser.add_argument(
        "--throttle-wait", type=_seconds, default=1.0, metavar="S",
        help="seconds a request waits for a busy environment before 429 Too Many Requests (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--api-timeout", type=_seconds, default=API_TIMEOUT_S, metavar="S",
        help=f"API Gateway's integration timeout in seconds (default {API_TIMEOUT_S:.0f})",
    )  # fmt: skip
    parser.add_argument(
        "--warm", type=_positive_int, default=None, metavar="N",
        help="start N execution environments before listening, like provisioned concurrency (default: none; "
        "every environment starts on demand, a cold start)",
    )  # fmt: skip
    parser.add_argument("--access-log", action="store_true", help="one JSON line per request on stderr")


def run(args: argparse.Namespace, *, pass_env: Sequence[str] = (), hints: Mapping[str, str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT. `pass_env` adds to the --pass-env names; `hints` says, for a variable name, what
    to pass when it resolves to a resource of a deployed stack. GatewayError when the gateway cannot serve."""
    template = args.template if args.template is not None else _default_template()
    # SAM CLI takes ~0.6 s to import: loaded here, so other `cachelab` subcommands do not pay for it.
    load_function: Callable[..., FunctionSpec] = importlib.import_module("cachelab.gateway.template").load_function
    names = tuple(dict.fromkeys([*pass_env, *args.pass_env]))
    spec = load_function(
        template, function=args.function, params=parse_params(args.param), shell_env=os.environ, pass_env=names
    )
    unresolved = unresolved_variables(spec.environment)
    if unresolved:
        raise GatewayError(_unresolved_message(unresolved, hints or {}))
    concurrency = args.concurrency or spec.reserved_concurrency or DEFAULT_CONCURRENCY
    settings = GatewaySettings(
        host=args.host, port=args.port, concurrency=concurrency, throttle_wait=args.throttle_wait,
        api_timeout=args.api_timeout or API_TIMEOUT_S, access_log=args.access_log, warm=args.warm or 0,
    )  # fmt: skip
    mismatch = runtime_mismatch(spec.runtime)
    if mismatch is not None:
        json_log("runtime_mismatch", message=mismatch)
    from cachelab.gateway.server import Gateway  # noqa: PLC0415 - httptools and uvloop load once the arguments pass

    gateway = Gateway(spec, settings)

    def banner() -> None:  # once it listens: a gateway that failed to start never says it is on a URL
        print(
            f"cachelab gateway: {spec.logical_id} ({spec.handler}, {spec.runtime}, timeout {spec.timeout_s:g} s, "
            f"{spec.memory_mb} MB, concurrency {concurrency}) on {gateway.url}",
            flush=True,
        )

    try:
        return gateway.run(on_listening=banner)
    except PortInUseError as exc:
        raise GatewayError(str(exc)) from None


def _unresolved_message(unresolved: Mapping[str, str], hints: Mapping[str, str]) -> str:
    name, value = next(iter(unresolved.items()))
    others = f" (and {', '.join(list(unresolved)[1:])})" if len(unresolved) > 1 else ""
    hint = hints.get(name, "pass the template parameters that set it")
    return (
        f"{name}{others} resolves to {value!r}, a resource that exists only in a deployed stack, so every request "
        f"would fail; {hint}, or set {name} in the gateway's environment (see cachelab gateway --help)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cachelab.gateway",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        require(("sam",))
        return run(args)
    except (GatewayError, MissingExtras) as exc:
        print(f"cachelab gateway: error: {exc}", file=sys.stderr)
        return 2
