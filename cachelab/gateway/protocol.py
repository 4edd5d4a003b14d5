"""The HTTP/1.1 side of the gateway: one `HttpConnection` per client connection, parsed by httptools (llhttp).

llhttp frames each request (Content-Length, chunked bodies with extensions and trailers, pipelining) and refuses
what would let two parsers disagree about where a request ends (RFC 9112 §6.3: Transfer-Encoding with
Content-Length, conflicting or malformed Content-Length; bare CR or LF, obs-fold, whitespace before a colon). On top
of it the gateway keeps its own limits and answers, as API Gateway would:
- 431 for a request head over 64 KiB, 413 for a body over 10 MB (API Gateway's payload limit);
- 400 for what llhttp refuses, for a request line whose parts are not separated by exactly one space (llhttp takes
  several; RFC 9112 §3 lets a recipient, but the first hop refusing them leaves no room for two hops to disagree),
  for a version other than HTTP/1.0 and HTTP/1.1, and for a target neither in origin nor in absolute form;
- 501 for a transfer coding other than chunked;
- 403 {"message": "Missing Authentication Token"} for a method llhttp does not know (API Gateway's answer to a
  method no route accepts).
After any of these the connection closes: the rest of its stream cannot be trusted. `Expect: 100-continue` gets its
interim answer once the request is next in line and its body has not arrived yet.

Requests are answered one at a time, in order: pipelined ones wait parsed in a queue, and reading pauses while they
do or while the client does not read its answers.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol, cast

import httptools

from cachelab.gateway.events import CLOCK, HttpRequest, split_target
from cachelab.gateway.results import HttpResponse, error_response, render_head
from cachelab.gateway.settings import MAX_PAYLOAD_BYTES
from cachelab.processes import LOOPBACK

MAX_HEAD_BYTES = 64 * 1024
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2
_VERSIONS = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_STATUS_LINES: dict[int, bytes] = {}  # status -> its status line (statuses are 100-599: bounded)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n".encode()
    return line


class Host(Protocol):
    """What a connection needs from the gateway that serves it."""

    closing: bool
    connections: set[HttpConnection]
    stats: collections.Counter[str]
    access_log: bool
    log: Callable[..., None]

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def dispatch(self, request: HttpRequest, conn: HttpConnection) -> None:
        """Serve `request`; `conn.send` or `conn.respond` is called exactly once, now or later."""


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A request the gateway answers itself without reading any further: status, message, x-amzn-ErrorType."""

    status: int
    message: str
    error_type: str | None = None


class _Refused(Exception):
    """Raised from a parser callback: stops llhttp, and the connection answers `refusal`, then closes."""

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.refusal = _Refusal(status, message, error_type)


class HttpConnection(asyncio.Protocol):
    """One client connection. httptools calls the `on_*` methods while `data_received` feeds it."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.loop = host.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client_ip = LOOPBACK
        self.last_active = self.loop.time()
        self.closed = False
        self.queue: collections.deque[tuple[HttpRequest, bool] | _Refusal] = collections.deque()
        # The request in flight (dispatched, not answered yet).
        self.busy = False
        self.keep_alive = True
        self.head_only = False
        self.request_id = ""
        self.started = 0.0
        self.request: HttpRequest | None = None
        # Reading: paused while requests wait in the queue, while the client does not read, and for good once
        # the stream cannot be trusted.
        self._reading_paused = False
        self._writing_blocked = False
        self._stopped = False
        # The request being parsed.
        self._in_head = False
        self._url: list[bytes] = []
        self._headers: list[tuple[str, str]] = []
        self._head_size = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._transfer_encoding: str | None = None
        self._content_length = 0
        self._expects_continue = False
        self._continue_owed = False
        self._keep_alive = True
        self._method = ""
        self._path = ""
        self._query = ""
        self._version = ""
        # What was read since the last request line found (see on_headers_complete), for the request-line check.
        self._raw = bytearray()
        self._cursor = 0
        self._stalled = 0  # bytes read in later reads while the same head stayed incomplete
        self._completed = 0  # requests completed during the current read

    # -- asyncio.Protocol --------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = str(peer[0])
        self.host.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.host.connections.discard(self)

    def pause_writing(self) -> None:
        self._writing_blocked = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_blocked = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        self.last_active = self.loop.time()
        was_in_head = self._in_head
        self._raw += data
        self._completed = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # the request is complete; what follows it is not HTTP/1.1
            self._stop_after_last()
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Refused):
                raise
            self._refuse(exc.__context__.refusal)
        except httptools.HttpParserInvalidMethodError:
            self._refuse(self._unknown_method())
        except httptools.HttpParserError as exc:
            self._refuse(_Refusal(400, f"malformed request: {exc}"))
        else:
            if self._in_head:
                self._stalled = self._stalled + len(data) if was_in_head and not self._completed else 0
                if self._stalled > MAX_HEAD_BYTES:  # a field that never ends: llhttp would buffer it forever
                    self._refuse(_Refusal(431, "Request Header Fields Too Large"))
        if self._in_head:
            del self._raw[: self._cursor]
        else:
            self._raw.clear()
        self._cursor = 0
        self._next()

    # -- httptools callbacks -----------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_head = True
        self._url = []
        self._headers = []
        self._head_size = 0
        self._body = []
        self._body_size = 0
        self._transfer_encoding = None
        self._content_length = 0
        self._expects_continue = False

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > MAX_HEAD_BYTES:
            raise _Refused(431, "Request Header Fields Too Large")
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:  # a trailer field of a chunked body: read, counted, ignored
            self._count_body(len(name) + len(value))
            return
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD_BYTES:
            raise _Refused(431, "Request Header Fields Too Large")
        field = name.decode("latin-1")
        text = value.decode("latin-1").strip(" \t")
        lowered = field.lower()
        if lowered == "transfer-encoding":
            coding = self._transfer_encoding
            self._transfer_encoding = text if coding is None else f"{coding}, {text}"
        elif lowered == "content-length":
            self._content_length = int(text)  # llhttp took only digits, and one value
        elif lowered == "expect":
            self._expects_continue = text.lower() == "100-continue"
        self._headers.append((field, text))

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self.parser
        version = _VERSIONS.get(parser.get_http_version())
        if version is None:
            raise _Refused(400, "unsupported HTTP version")
        method = parser.get_method()
        url = b"".join(self._url)
        line = b"%s %s %s\r\n" % (method, url, version)
        found = self._raw.find(line, self._cursor)
        if found < 0:
            raise _Refused(400, "malformed request line")
        self._cursor = found + len(line)
        coding = self._transfer_encoding
        if coding is not None and coding.lower() != "chunked":
            raise _Refused(501, "unsupported Transfer-Encoding")
        if self._content_length > MAX_PAYLOAD_BYTES:
            raise _Refused(413, "Request Too Long")
        try:
            self._path, self._query = split_target(url.decode("latin-1"))
        except ValueError as exc:
            raise _Refused(400, str(exc)) from None
        self._method = method.decode("ascii")
        self._version = version.decode("ascii")
        self._keep_alive = parser.should_keep_alive()
        self._continue_owed = self._expects_continue and (coding is not None or self._content_length > 0)

    def on_body(self, body: bytes) -> None:
        self._continue_owed = False  # the client sent its body anyway (RFC 9110 §10.1.1)
        self._count_body(len(body))
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._continue_owed = False
        request = HttpRequest(
            self._method, self._path, self._query, self._headers, b"".join(self._body), self.client_ip, self._version
        )
        self.queue.append((request, self._keep_alive))
        self._completed += 1

    def _count_body(self, size: int) -> None:
        self._body_size += size
        if self._body_size > MAX_PAYLOAD_BYTES:
            raise _Refused(413, "Request Too Long")

    # -- requests in order -------------------------------------------------------------------------------------------
    def _unknown_method(self) -> _Refusal:
        """A method llhttp does not know: API Gateway's 403 when it is a method (an RFC 9110 token), else 400. The
        token is read only when the request began this read and no other request did (else where is unknown)."""
        if not self._completed:
            method = bytes(self._raw).lstrip(b"\r\n").split(b" ", 1)[0]
            if _TOKEN.fullmatch(method):
                return _Refusal(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        return _Refusal(400, "malformed request line")

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer `refusal` once the requests before it are answered, then close; read nothing more."""
        self._stopped = True
        self._continue_owed = False
        self.queue.append(refusal)
        self._update_reading()

    def _stop_after_last(self) -> None:
        self._stopped = True
        if self.queue and not isinstance(last := self.queue[-1], _Refusal):
            self.queue[-1] = (last[0], False)
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        pause = self._stopped or self._writing_blocked or bool(self.queue)
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _next(self) -> None:
        """Dispatch the next parsed request if none is in flight."""
        if self.busy or self.closed:
            return
        if not self.queue:
            self._update_reading()
            if self._continue_owed and self.transport is not None:
                self._continue_owed = False
                self.transport.write(_CONTINUE)
            return
        item = self.queue.popleft()
        self.busy = True
        self.request_id = ""
        if isinstance(item, _Refusal):
            self.keep_alive, self.head_only, self.request = False, False, None
            if item.status == 403:
                self.host.stats["not_found"] += 1
            self.respond(error_response(item.status, item.message, item.error_type))
        else:
            request, self.keep_alive = item
            self.head_only = request.method == "HEAD"
            self.request = request
            if self.host.access_log:
                self.started = time.perf_counter()
            self.host.dispatch(request, self)
        if self.queue:  # a client pipelining ahead of us: read on once these are answered
            self._update_reading()

    # -- answers -----------------------------------------------------------------------------------------------------
    def respond(self, response: HttpResponse) -> None:
        """Answer the request in flight with one of the gateway's own responses."""
        self.send(response.status, render_head(response.headers), response.body)

    def send(self, status: int, head: bytes | memoryview, body: bytes | memoryview) -> None:
        """Answer the request in flight: `head` is its header lines (each with its CRLF), `body` its content (bytes
        or a memoryview); the gateway adds Date, Content-Length, x-amzn-RequestId and Connection."""
        if not self.busy:
            return
        self.busy = False
        transport = self.transport
        if self.closed or transport is None:
            return
        host = self.host
        keep_alive = self.keep_alive and not host.closing
        parts: list[bytes | memoryview] = [status_line(status), head, b"Date: ", CLOCK.now()[2].encode(),
                                           b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n"]  # fmt: skip
        if self.request_id:
            parts += (b"x-amzn-RequestId: ", self.request_id.encode(), b"\r\n")
        parts.append(b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n")
        if not self.head_only:
            parts.append(body)
        transport.write(b"".join(parts))
        if host.access_log and self.request_id and self.request is not None:
            host.log(
                "request", request_id=self.request_id, method=self.request.method, path=self.request.path,
                status=status, ms=round((time.perf_counter() - self.started) * 1000.0, 3),
            )  # fmt: skip
        self.request = None
        if not keep_alive:
            self._stopped = True
            transport.close()
            return
        self.last_active = self.loop.time()
        if self.queue:
            self.loop.call_soon(self._next)  # not recursively: a pipelined burst must not grow the stack
        else:
            self._next()
