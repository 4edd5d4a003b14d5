"""scripts/test-under-load.sh: the CPU hogs run while the command runs and are gone after it, whatever happened."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "test-under-load.sh"
# What the command under load sees of the hogs: the script's other children, and theirs (stress-ng's workers),
# listed into $1 once there are at least $2 (stress-ng forks its workers a moment after it starts).
LIST_HOGS = (
    "for _ in $(seq 200); do"
    " for p in $(pgrep -P $PPID); do [ $p != $$ ] && echo $p && pgrep -P $p; done > $1.part;"
    ' [ "$(wc -l < $1.part)" -ge $2 ] && break; sleep 0.05;'
    " done; mv $1.part $1"
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


@pytest.fixture(params=["python", "stress-ng"])
def tool(request: pytest.FixtureRequest) -> str:
    if request.param == "stress-ng" and shutil.which("stress-ng") is None:
        pytest.skip("stress-ng is not installed (make test-under-load installs it)")
    return str(request.param)


# Exec the script with SIGINT at its default, as from a terminal: a test run started in the background of a
# non-interactive shell inherits SIGINT ignored, and a shell cannot trap a signal ignored on entry.
WITH_DEFAULT_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])",
]


def under_load(tool: str, listed: Path, then: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the script with two hogs, running a command that lists them into `listed`
    (once all are there: stress-ng's parent and two workers, or two busy loops), then runs `then`."""
    expected = "3" if tool == "stress-ng" else "2"
    argv = [*WITH_DEFAULT_SIGINT, str(SCRIPT), "sh", "-c", f"{LIST_HOGS}; {then}", "sh", str(listed), expected]
    return argv, {**os.environ, "LOAD_HOGS": "2", "LOAD_WITH": tool}


def test_the_hogs_compete_during_the_command_and_stop_when_it_fails(tool: str, tmp_path: Path) -> None:
    listed = tmp_path / "hogs"
    argv, env = under_load(tool, listed, "exit 3")
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stdout + done.stderr  # the command's exit code
    assert f"2 CPU hogs ({tool}" in done.stdout
    hogs = [int(p) for p in listed.read_text().split()]
    assert len(hogs) >= (3 if tool == "stress-ng" else 2), hogs  # stress-ng: its parent and two workers
    assert wait_gone(hogs) == [], "hogs left running"


def test_ctrl_c_stops_the_command_and_the_hogs(tool: str, tmp_path: Path) -> None:
    listed = tmp_path / "hogs"
    argv, env = under_load(tool, listed, "sleep 60")
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while not listed.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        hogs = [int(p) for p in listed.read_text().split()]
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert len(hogs) >= (3 if tool == "stress-ng" else 2), hogs
    assert wait_gone(hogs) == [], "hogs left running after Ctrl-C"
