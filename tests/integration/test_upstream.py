"""The HTTP adapter (proxy/upstream.py) against a raw-socket origin that breaks HTTP/1.1 framing on purpose."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from proxy.http import Headers
from proxy.upstream import Urllib3Upstream

pytestmark = pytest.mark.unit

SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nsmuggled"


class FramingOrigin:
    """Answers its first request with `status` and a Content-Length, but sends that content only when the next
    request arrives on the same connection, so the content is there to be misread as the next answer. Every
    other request gets its own path back. Counts connections."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.connections = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        owed = b""
        buffer = b""
        with conn:
            conn.settimeout(10)
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    target = head.split(b" ")[1]
                    with self._lock:
                        self.requests += 1
                        first = self.requests == 1
                    if owed:  # the first answer's content, late: exactly what a desync would read
                        conn.sendall(owed)
                        owed = b""
                    if first:
                        reason = b"No Content" if self.status == 204 else b"Not Modified"
                        conn.sendall(
                            b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n\r\n" % (self.status, reason, len(SMUGGLED))
                        )
                        owed = SMUGGLED
                    else:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target))

    def close(self) -> None:
        self._server.close()


@pytest.fixture(params=[304, 204])
def framing_origin(request: pytest.FixtureRequest) -> Iterator[FramingOrigin]:
    origin = FramingOrigin(request.param)
    yield origin
    origin.close()


def test_content_sent_with_a_304_or_204_is_never_read_as_the_next_answer(framing_origin: FramingOrigin) -> None:
    """RFC 9112 §6.3: a 304 or 204 ends at its header section. An origin that sends content anyway must not
    desynchronise the pooled connection: the next request would read that content as its own answer (found by
    the hostile-origin property in tests/reliability as a 502 for a HEAD after a 304)."""
    upstream = Urllib3Upstream(framing_origin.url)
    try:
        first = upstream.send("GET", "/first", Headers(), b"", 5)
        assert (first.status, first.body) == (framing_origin.status, b"")
        second = upstream.send("GET", "/second", Headers(), b"", 5)
        assert (second.status, second.body) == (200, b"/second")
        assert framing_origin.connections == 2, "the connection after the body-less answer was not reused"
    finally:
        upstream.close()


def test_a_304_without_a_length_keeps_its_connection() -> None:
    """The common case costs nothing: a 304 that announces no content leaves the connection in the pool."""
    served: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            for status in (b"304 Not Modified", b"200 OK"):
                served.append(conn.recv(65536))
                body = b"" if status.startswith(b"304") else b"ok"
                length = b"" if status.startswith(b"304") else b"Content-Length: 2\r\n"
                conn.sendall(b"HTTP/1.1 " + status + b"\r\n" + length + b"\r\n" + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    upstream = Urllib3Upstream(f"http://127.0.0.1:{server.getsockname()[1]}")
    try:
        assert upstream.send("GET", "/a", Headers(), b"", 5).status == 304
        assert upstream.send("GET", "/b", Headers(), b"", 5).body == b"ok"  # one connection: accept() ran once
        assert len(served) == 2
    finally:
        upstream.close()
        server.close()
