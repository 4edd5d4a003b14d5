"""Framing between the gateway and an execution environment: a 1-byte kind, a 4-byte length, then the payload.

Kept free of imports beyond the standard library: the worker (inside every execution environment) imports it.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">cI")

READY = b"R"  # worker -> gateway, once: init done; JSON {"import_ms": float}
INIT_ERROR = b"X"  # worker -> gateway, once: the handler could not be loaded; JSON Lambda error, then exit
INVOKE = b"I"  # gateway -> worker: marshal of (request_id, deadline_ms, event); the event is JSON-shaped data
RESULT = b"O"  # worker -> gateway: the handler's result, JSON-encoded as Lambda does
ERROR = b"E"  # worker -> gateway: JSON Lambda error {"errorMessage", "errorType", "requestId", "stackTrace"}


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload
