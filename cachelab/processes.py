"""Starting, probing and stopping the local processes of the native sandbox (and of the tests)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


class PortInUseError(RuntimeError):
    """A port we were asked to listen on is already taken."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct ports that are free on `host` right now, in ascending order (bounded attempts)."""
    ports: set[int] = set()
    for _ in range(count * 20):
        ports.add(free_port(host))
        if len(ports) == count:
            return sorted(ports)
    raise RuntimeError(f"could not find {count} distinct free ports on {host}")


def ensure_port_free(port: int, host: str = LOOPBACK, *, what: str = "service") -> None:
    """Fail fast, with a clear message, when `port` is already taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: connections in TIME_WAIT do not make a port "in use", a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on {host} is already in use, so the {what} cannot start there; "
                f"stop whatever holds it or choose another port"
            ) from exc


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_for_port(
    port: int, host: str = LOOPBACK, *, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts connections on `port`; raise if `proc` dies first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with status {proc.returncode} before listening on {port}")
        if port_open(port, host):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:.0f} s")


def wait_for_http(url: str, *, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until `url` answers with a status below 500."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with status {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:  # noqa: S310 - our own loopback URL
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s (last: {last})")


def start(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, so `stop` can end it and everything it started."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    try:
        return subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log is not None and not isinstance(out, int):
            out.close()


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 5.0) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after `timeout` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


def start_redis_server(port: int, *, workdir: Path, extra: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """A throwaway redis-server on loopback: no persistence, no protected-mode surprises."""
    binary = redis_server_path()
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        LOOPBACK,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        *extra,
    ]
    proc = start(argv, log=workdir / f"redis-{port}.log")
    wait_for_port(port, proc=proc)
    return proc


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    *,
    port: int,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    health_url: str | None = None,
    timeout: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a child until the block ends; wait for its port (or health URL) first."""
    proc = start(argv, env=env, log=log)
    try:
        if health_url is not None:
            wait_for_http(health_url, timeout=timeout, proc=proc)
        else:
            wait_for_port(port, timeout=timeout, proc=proc)
        yield proc
    finally:
        stop(proc)
