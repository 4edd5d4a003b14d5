"""Framing between the gateway and an execution environment, over the socketpair the environment inherits.

A frame is a 1-byte kind, a 4-byte big-endian length, then the payload. Each side serialises what it sends once:
the gateway marshals the event it built, the environment renders its handler's result as the HTTP response
(status, header lines, body) that the gateway writes to the client around its own Date, Content-Length,
x-amzn-RequestId and Connection fields, without decoding or re-encoding anything.

Kept free of imports beyond the standard library: the worker (inside every execution environment) imports it.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">cI")
RESULT_HEAD = struct.Struct(">HI")  # the RESULT payload starts with (status, length of the header lines)

READY = b"R"  # worker -> gateway, once: init done; JSON {"import_ms": float, "pid": int}
INIT_ERROR = b"X"  # worker -> gateway, once: the handler could not be loaded; JSON Lambda error, then exit
INVOKE = b"I"  # gateway -> worker: marshal of (request_id, deadline_ms, accept, event); the event is JSON-shaped
RESULT = b"O"  # worker -> gateway: RESULT_HEAD, then the header lines ("Name: value\r\n" each), then the body
MALFORMED = b"M"  # worker -> gateway: the result is not a proxy integration response; UTF-8 text saying why
ERROR = b"E"  # worker -> gateway: JSON Lambda error {"errorMessage", "errorType", "requestId", "stackTrace"}


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def result_parts(status: int, head: bytes, body: bytes) -> list[bytes]:
    """A RESULT frame as parts for one scatter-gather send (the body is not copied into a new buffer)."""
    return [HEADER.pack(RESULT, RESULT_HEAD.size + len(head) + len(body)), RESULT_HEAD.pack(status, len(head)), head,
            body]  # fmt: skip
