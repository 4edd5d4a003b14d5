"""Running a real `python -m cachelab.gateway` process and talking HTTP to it, for the tests in this folder."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from cachelab import processes
from cachelab.gateway.cli import command, health_url
from proxy.config import ENVIRONMENT_NAMES

HERE = Path(__file__).resolve().parent
FIXTURE_TEMPLATE = HERE / "fixtures" / "template.yaml"
BROKEN_TEMPLATE = HERE / "fixtures" / "broken.yaml"
REPO = HERE.parents[1]
REAL_TEMPLATE = REPO / "sam" / "template.yaml"


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Gateway:
    """One gateway process: its port, its log (stdout and stderr), HTTP helpers with timeouts on every call."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | str | None = None,
        headers: Sequence[tuple[str, str]] | Mapping[str, str] = (),
        timeout: float = 15.0,
    ) -> Reply:
        conn = http.client.HTTPConnection(processes.LOOPBACK, self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            pairs = headers.items() if isinstance(headers, Mapping) else headers
            for name, value in pairs:
                conn.putheader(name, value)
            data = body.encode() if isinstance(body, str) else body
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def echo(self, path: str = "/echo", **kwargs: Any) -> dict[str, Any]:
        reply = self.request(kwargs.pop("method", "GET"), path, **kwargs)
        assert reply.status == 200, (reply.status, reply.body[:500])
        data: dict[str, Any] = reply.json()
        return data

    def stats(self) -> dict[str, Any]:
        reply = self.get("/__gateway/stats")
        assert reply.status == 200
        data: dict[str, Any] = reply.json()
        return data

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The gateway's JSON log lines so far (optionally only those with "event": name)."""
        found: list[dict[str, Any]] = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and (name is None or record.get("event") == name):
                    found.append(record)
        return found

    def wait_events(self, name: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll the log until at least `count` lines of event `name` are there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"fewer than {count} {name!r} log lines after {timeout} s: {self.events(name)}")

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)


def gateway_argv(port: int, *args: str, template: Path = FIXTURE_TEMPLATE) -> list[str]:
    return command(port, template=template, pass_env=ENVIRONMENT_NAMES, extra=args)


@contextlib.contextmanager
def running_gateway(
    log_dir: Path, *args: str, template: Path = FIXTURE_TEMPLATE, env: Mapping[str, str] | None = None
) -> Iterator[Gateway]:
    """A gateway on a free port until the block ends; SIGTERM, then SIGKILL, its whole process group."""
    port = processes.free_port()
    log = log_dir / f"gateway-{port}.log"
    child_env = {**os.environ, **(env or {})}
    proc = processes.start(gateway_argv(port, *args, template=template), env=child_env, log=log)
    try:
        processes.wait_for_http(health_url(port), timeout=30, proc=proc)
        yield Gateway(proc, port, log)
    finally:
        processes.stop(proc)


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


def wait_gone(pids: Sequence[int], timeout: float = 30.0) -> list[int]:
    """Poll until none of `pids` is alive; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if pid_alive(p)]
    return alive


def raw_exchange(port: int, data: bytes, *, expect_responses: int = 1, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until `expect_responses` complete responses arrived or the server closed."""
    with socket.create_connection((processes.LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_responses(sock, expect_responses, timeout=timeout)


def read_responses(sock: socket.socket, count: int, *, received: bytes = b"", timeout: float = 10.0) -> bytes:
    """Read from `sock` until `count` complete responses (after `received`) arrived or the peer closed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _complete(received) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def _complete(data: bytes) -> int:
    """How many complete (Content-Length framed) responses `data` holds."""
    count, position = 0, 0
    for _ in range(1000):
        head_end = data.find(b"\r\n\r\n", position)
        if head_end < 0:
            return count
        head = data[position:head_end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip() == "content-length":
                length = int(value.strip())
        end = head_end + 4 + length
        if head.startswith("http/1.1 100"):
            end = head_end + 4
        elif len(data) < end:
            return count
        else:
            count += 1
        position = end
    return count


def split_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Parse a stream of Content-Length framed responses: (status, lower-cased headers, body) each."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    position = 0
    for _ in range(1000):
        head_end = data.find(b"\r\n\r\n", position)
        if head_end < 0:
            return out
        lines = data[position:head_end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        out.append((status, headers, data[head_end + 4 : head_end + 4 + length]))
        position = head_end + 4 + length
    return out
