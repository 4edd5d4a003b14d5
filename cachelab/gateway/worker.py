"""One execution environment: a Lambda-like Python runtime in its own process.

The gateway starts `python -m cachelab.gateway.worker --fd N --parent-pid P [--binary-media-type T ...]` with the
function's resolved Lambda environment (template variables, AWS_* variables, `_HANDLER`, `LAMBDA_TASK_ROOT`) and
the code directory as the working directory. The worker imports the handler once (the init phase, timed), then
serves invocations one at a time over the socket `N` (see `cachelab.gateway.wire`): module globals (clients,
circuit breakers, caches) live as long as the environment, exactly as they do in Lambda. The handler's stdout and
stderr are the function's logs.

Each result is checked and rendered here, once, as the HTTP response API Gateway would send
(`cachelab.gateway.results`): the gateway writes those bytes as they are.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import marshal
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO

from cachelab.gateway import wire
from cachelab.gateway.results import MalformedResult, as_json, render_head, result_to_response

Handler = Callable[[Any, "LambdaContext"], Any]

_PR_SET_PDEATHSIG = 1


class LambdaContext:
    """The attributes and methods of the AWS Lambda Python runtime's context object."""

    def __init__(self, request_id: str, deadline_ms: int, static: StaticContext) -> None:
        self.aws_request_id = request_id
        self.function_name = static.function_name
        self.function_version = static.function_version
        self.invoked_function_arn = static.invoked_function_arn
        self.memory_limit_in_mb = static.memory_limit_in_mb
        self.log_group_name = static.log_group_name
        self.log_stream_name = static.log_stream_name
        self.identity: object | None = None
        self.client_context: object | None = None
        self.tenant_id: str | None = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg: str) -> None:
        sys.stdout.write(msg)


class StaticContext:
    """The context attributes that do not change between invocations, read once from the environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        name = env.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        region = env.get("AWS_REGION", "us-east-1")
        account = env.get("AWS_ACCOUNT_ID", "123456789012")
        self.function_name = name
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
        # A string, as in the real runtime (it reads AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{name}")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "$LATEST")


class HandlerLoadError(Exception):
    """The handler named by `_HANDLER` cannot be loaded; `error_type` is the Lambda runtime's error type."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def load_handler(spec: str) -> Handler:
    """`package.module.function` -> the function, with the Lambda runtime's error types on failure."""
    module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise HandlerLoadError("Runtime.MalformedHandlerName", f"Bad handler '{spec}': not enough values to unpack")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerLoadError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise HandlerLoadError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from exc
    except Exception as exc:  # an exception raised by the module's init code: Lambda reports its own type
        raise HandlerLoadError(type(exc).__name__, str(exc)) from exc
    handler = getattr(module, attr, None)
    if handler is None or not callable(handler):
        raise HandlerLoadError("Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_name}'")
    return handler  # type: ignore[no-any-return]


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this environment when the gateway dies, even in the middle of an invocation."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the gateway died before prctl took effect
        os._exit(1)


def _error(exc: BaseException, error_type: str, request_id: str | None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type,
        "requestId": request_id or "",
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _send(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(wire.frame(kind, payload))


def _send_parts(sock: socket.socket, parts: list[bytes]) -> None:
    """One scatter-gather send; the rest (a payload larger than the socket buffer) with sendall."""
    sent = sock.sendmsg(parts)
    total = sum(len(part) for part in parts)
    if sent < total:
        sock.sendall(b"".join(parts)[sent:])


def _read_exact(rfile: BinaryIO, size: int) -> bytes | None:
    data = rfile.read(size)
    return data if len(data) == size else None


def _report(sock: socket.socket, exc: BaseException, error_type: str, request_id: str, message: str = "") -> None:
    """A function error: logged as the Lambda runtime logs it, and sent to the gateway (which answers 502)."""
    error = _error(exc, error_type, request_id)
    if message:
        error["errorMessage"] = message
    print(json.dumps({"level": "ERROR", **error}), file=sys.stderr, flush=True)
    _send(sock, wire.ERROR, json.dumps(error).encode())


def serve(sock: socket.socket, handler: Handler, binary_media_types: Sequence[str] = ()) -> int:
    """Answer invocations until the gateway closes the socket."""
    rfile = sock.makefile("rb")
    static = StaticContext(os.environ)
    while True:
        header = _read_exact(rfile, wire.HEADER.size)
        if header is None:
            return 0
        _kind, size = wire.HEADER.unpack(header)
        payload = _read_exact(rfile, size)
        if payload is None:
            return 0
        # The only peer is the gateway that started us, over a private socketpair.
        request_id, deadline_ms, accept, event = marshal.loads(payload)  # noqa: S302
        try:
            result = handler(event, LambdaContext(request_id, deadline_ms, static))
        except Exception as exc:
            _report(sock, exc, type(exc).__name__, request_id)
            continue
        try:
            response = result_to_response(as_json(result), binary_media_types=binary_media_types, accept=accept)
        except MalformedResult as exc:
            _send(sock, wire.MALFORMED, str(exc).encode("utf-8", "replace"))
            continue
        except (TypeError, ValueError, RecursionError) as exc:  # json.dumps: not serialisable as Lambda does
            _report(sock, exc, "Runtime.MarshalError", request_id, f"Unable to marshal response: {exc}")
            continue
        _send_parts(sock, wire.result_parts(response.status, render_head(response.headers), response.body))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cachelab.gateway.worker")
    parser.add_argument("--fd", type=int, required=True, help="the socket inherited from the gateway")
    parser.add_argument("--parent-pid", type=int, required=True, help="the gateway's pid")
    parser.add_argument(
        "--binary-media-type", action="append", default=[], help="the API's BinaryMediaTypes (repeatable)"
    )
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches the whole process group: the gateway decides when environments stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(args.parent_pid)
    sock = socket.socket(fileno=args.fd)
    started = time.perf_counter()
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except HandlerLoadError as exc:
        error = _error(exc, exc.error_type, None)
        print(json.dumps({"level": "ERROR", **error}), file=sys.stderr, flush=True)
        _send(sock, wire.INIT_ERROR, json.dumps(error).encode())
        return 1
    import_ms = (time.perf_counter() - started) * 1000.0
    _send(sock, wire.READY, json.dumps({"import_ms": round(import_ms, 3), "pid": os.getpid()}).encode())
    try:
        return serve(sock, handler, args.binary_media_type)
    except (BrokenPipeError, ConnectionResetError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
