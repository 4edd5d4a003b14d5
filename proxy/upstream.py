"""The HTTP adapter to the external API (`proxy.ports.Upstream`): one pooled urllib3 client, hard deadlines, no retries, no redirects."""

from __future__ import annotations

import socket
import time
from typing import Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from proxy.http import Headers, Response
from proxy.ports import UpstreamError

# Lambda's synchronous response payload limit is 6 MB: a larger upstream body cannot be answered anyway.
RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
USER_AGENT = "cachelab-proxy/0.1"
_CHUNK = 64 * 1024


class Urllib3Upstream:
    """Sends requests to `base_url` + target. Created once per execution environment; connections are reused."""

    def __init__(self, base_url: str, *, pool_size: int = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=pool_size, block=False, retries=False)

    def send(self, method: str, target: str, headers: Headers, body: bytes, timeout: float) -> Response:
        """Whole exchange bounded by `timeout` seconds (connect, headers and body together)."""
        deadline = time.monotonic() + timeout
        fields = urllib3.HTTPHeaderDict()
        for name, value in headers.items():
            fields.add(name, value if value.isascii() else _latin1(value))
        fields.setdefault("user-agent", USER_AGENT)
        fields.setdefault("accept-encoding", "identity")
        try:
            response = self._pool.request(
                method,
                self.base_url + target,
                headers=fields,
                body=body or None,
                timeout=urllib3.Timeout(total=timeout),
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=False,
            )
        except NewConnectionError as exc:  # a subclass of ConnectTimeoutError in urllib3: check it first
            raise UpstreamError("connect", f"upstream connection failed: {_reason(exc)}") from exc
        except (ConnectTimeoutError, ReadTimeoutError, TimeoutError) as exc:
            raise UpstreamError("timeout", f"upstream timed out after {timeout:g} s") from exc
        except (ProtocolError, HTTPError, OSError) as exc:
            if _is_timeout(exc):
                raise UpstreamError("timeout", f"upstream timed out after {timeout:g} s") from exc
            raise UpstreamError(
                "connect" if _is_connect(exc) else "protocol", f"upstream failed: {_reason(exc)}"
            ) from exc
        try:
            if _may_leave_stray_bytes(method, response.status, response.headers):
                response.close()  # never reused: the next request gets a new connection
                payload = b""
            else:
                payload = _read_body(response, deadline, timeout)
        finally:
            response.release_conn()
        return Response(
            status=response.status,
            headers=Headers((name, value) for name, value in response.headers.iteritems()),
            body=payload,
        )

    def close(self) -> None:
        self._pool.clear()


def _latin1(value: str) -> str:
    """A header value http.client can send (it encodes latin-1). API Gateway decodes header bytes as UTF-8, so a
    character beyond latin-1 goes as its UTF-8 bytes, the bytes the client sent, instead of raising."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("latin-1")
    return value


def _may_leave_stray_bytes(method: str, status: int, headers: Any) -> bool:
    """A response that has no content by definition (to HEAD, 1xx, 204, 304: RFC 9112 §6.3) but announces some.

    The client reads no body, so content that an origin sends anyway (a 304 with its body) would stay on the
    connection and be read as the answer to the *next* request on it: another URL's answer, a 502, or a response
    smuggled in that body. Such a connection is closed, never reused. (Content-Length on a 304 or a HEAD answer is
    legal; the cost is one new connection for those.)"""
    if method.upper() != "HEAD" and status not in (204, 304) and status >= 200:
        return False
    length = (headers.get("content-length") or "").strip()
    return length not in ("", "0") or "transfer-encoding" in headers


def _read_body(response: Any, deadline: float, timeout: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    sock = getattr(getattr(response, "connection", None), "sock", None)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            response.close()
            raise UpstreamError("timeout", f"upstream timed out after {timeout:g} s (while sending the body)")
        if sock is not None:
            sock.settimeout(remaining)  # every read ends by the overall deadline
        try:
            chunk = response.read(_CHUNK)
        except (ReadTimeoutError, TimeoutError) as exc:
            response.close()
            raise UpstreamError("timeout", f"upstream timed out after {timeout:g} s (while sending the body)") from exc
        except (ProtocolError, HTTPError, OSError) as exc:
            response.close()
            if _is_timeout(exc):
                raise UpstreamError("timeout", f"upstream timed out after {timeout:g} s") from exc
            raise UpstreamError("protocol", f"upstream body failed: {_reason(exc)}") from exc
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > RESPONSE_LIMIT_BYTES:
            response.close()
            raise UpstreamError("too-large", f"upstream body exceeds {RESPONSE_LIMIT_BYTES} bytes")
        chunks.append(chunk)


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, (TimeoutError, socket.timeout, ReadTimeoutError, ConnectTimeoutError)):
            return True
        seen = (
            seen.__cause__
            or seen.__context__
            or (seen.args[1] if len(seen.args) > 1 and isinstance(seen.args[1], BaseException) else None)
        )
    return False


def _is_connect(exc: BaseException) -> bool:
    text = repr(exc)
    return any(word in text for word in ("NewConnectionError", "ConnectionRefused", "Max retries exceeded"))


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)[:200]
