"""Running a long-lived `cachelab` command as a user does: read its output until a line, then press Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Session:
    """A `python -m cachelab ...` process in its own process group (as a terminal's foreground job), and its
    output (stdout and stderr together) so far."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def read_until(self, marker: str, timeout: float) -> None:
        """Collect output lines until one contains `marker`; AssertionError after `timeout` s or at the end."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if marker in line:
                return
        raise AssertionError(f"no {marker!r} within {timeout} s:\n{self.output}")

    def ctrl_c(self, timeout: float = 60) -> str:
        """What a terminal's Ctrl-C does (SIGINT to the foreground process group); waits for the exit and returns
        the whole output."""
        os.killpg(self.proc.pid, signal.SIGINT)
        rest, _ = self.proc.communicate(timeout=timeout)
        self.lines.append(rest)
        return self.output


@contextmanager
def cachelab_session(*args: str, env: dict[str, str] | None = None) -> Iterator[Session]:
    """`python -m cachelab ARGS` until the block ends; killed (the whole group) if it is still running then."""
    argv: Sequence[str] = [sys.executable, "-m", "cachelab", *args]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env
    )
    try:
        yield Session(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
