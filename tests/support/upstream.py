"""A small scriptable HTTP origin for the proxy's integration tests: real sockets, real HTTP, exact control.

Each route answers what the test put in `routes`; every request received is recorded (path, query and headers).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("Content-Type", "application/json")])
    body: bytes = b'{"ok": true}'
    delay: float = 0.0
    date: bool = True  # False: no Date header (http.server adds one otherwise)


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]


class Origin:
    def __init__(self) -> None:
        self.routes: dict[str, Callable[[Seen], Reply] | Reply] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._closing = threading.Event()  # ends every reply's delay at once
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with origin._lock:
                    origin._connections.add(self.connection)

            def finish(self) -> None:
                with origin._lock:
                    origin._connections.discard(self.connection)
                super().finish()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                with origin._lock:
                    origin.seen.append(seen)
                route = origin.routes.get(self.path.split("?")[0], Reply(404, body=b'{"error":"no route"}'))
                reply = route(seen) if callable(route) else route
                if reply.delay and origin._closing.wait(reply.delay):
                    return  # closed while delaying: no answer
                if reply.date:
                    self.send_response(reply.status)
                else:
                    self.send_response_only(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for s in self.seen if path is None or s.target.split("?")[0] == path)

    def close(self) -> None:
        """Stop listening and cut the kept-alive connections too: from now on, connections are refused. Replies
        still being delayed end at once, unanswered."""
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
