"""A tiny HTTP server on loopback in a thread, answering GETs from a function: a peer that answers, but is not ours
(not the stub, not the gateway), for tests of the clients and probes that must tell the difference."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cachelab import processes

# path -> (status, headers, body)
Answer = Callable[[str], tuple[int, Mapping[str, str], bytes]]


@contextlib.contextmanager
def serving(answer: Answer) -> Iterator[str]:
    """Its base URL ("http://127.0.0.1:PORT") while the block runs; every GET answered by `answer(path)`."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            status, headers, body = answer(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((processes.LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{processes.LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
