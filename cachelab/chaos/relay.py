"""The fault relay: an HTTP stand-in for the stub's admin API that starts and lifts any `Fault` on the outage
scenario's own calls.

The `outage` Locust scenario starts and lifts its outage with `POST /__admin/faults {"mode": ...}` exactly at its
phase boundaries. Given a `FaultRelay` as its `--stub-admin`, that call starts (any mode but "up") or lifts ("up")
the relay's fault instead, whatever it is (Redis killed, Redis paused, an upstream mode, added latency, a flapping
schedule); every other call (the request counter) passes through to the real stub unchanged.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cachelab.chaos.faults import Fault, FaultError
from cachelab.processes import LOOPBACK
from stub_api import ADMIN_PREFIX

FAULTS_PATH = f"{ADMIN_PREFIX}/faults"
_FORWARD_TIMEOUT = 5.0


@dataclass
class RelayLog:
    started: list[float] = field(default_factory=list)  # unix times the fault was started
    stopped: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class FaultRelay:
    """An HTTP stand-in for the stub's admin API: `POST /__admin/faults` starts (any mode but "up") or lifts
    ("up") `fault`; every other request is passed through to the real stub at `stub_url`."""

    def __init__(self, stub_url: str, fault: Fault) -> None:
        self.stub_url = stub_url.rstrip("/")
        self.fault = fault
        self.log = RelayLog()
        self._lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                return

            def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                if self.command == "POST" and self.path.split("?")[0] == FAULTS_PATH:
                    status, body = relay.switch(data)
                    self._reply(status, body)
                    return
                status, body, content_type = relay.forward(self.command, self.path, data)
                self._reply(status, body, content_type)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def switch(self, data: bytes) -> tuple[int, bytes]:
        try:
            mode = json.loads(data or b"{}").get("mode")
        except (ValueError, AttributeError):
            return 400, b'{"error": "expected a JSON object"}'
        with self._lock:
            try:
                if mode == "up":
                    if self.log.started and len(self.log.stopped) < len(self.log.started):
                        self.fault.stop()
                        self.log.stopped.append(time.time())
                elif len(self.log.started) == len(self.log.stopped):
                    self.fault.start()
                    self.log.started.append(time.time())
            except (FaultError, OSError) as exc:
                self.log.errors.append(str(exc))
                return 500, json.dumps({"error": str(exc)}).encode()
        return 200, json.dumps({"mode": mode, "fault": self.fault.name}).encode()

    def forward(self, method: str, path: str, data: bytes) -> tuple[int, bytes, str]:
        request = urllib.request.Request(  # noqa: S310 - our own loopback stub
            self.stub_url + path, data=data or None, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=_FORWARD_TIMEOUT) as resp:  # noqa: S310
                return resp.status, resp.read(), resp.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "application/json")
        except OSError as exc:
            return 502, json.dumps({"error": f"stub unreachable: {exc}"}).encode(), "application/json"

    def close(self) -> None:
        """Stop serving, and lift the fault whatever happened."""
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            self.fault.stop()


@contextlib.contextmanager
def relaying(stub_url: str, fault: Fault) -> Iterator[FaultRelay]:
    relay = FaultRelay(stub_url, fault)
    try:
        yield relay
    finally:
        relay.close()
