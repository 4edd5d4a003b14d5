"""Expensive session fixtures made once per test run, however many xdist workers ask for them.

With `pytest -n 3 --dist loadfile` every worker that runs a file using a session fixture makes its own copy:
three workers each running a minute of load on a two-core machine is the busy machine the suite must survive,
not a way to test it. `once_per_run` lets the first worker make the value while the others wait on a file lock,
then every worker reads it (JSON) from the run's shared temporary folder.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from typing import Any

import pytest


def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[], Any]) -> Any:
    """`make()` (a JSON-serialisable value) once per pytest run; without xdist, simply `make()`."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make()
    root = tmp_path_factory.getbasetemp().parent  # this run's folder, shared by its workers
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if make() raises
        done = root / f"{name}.json"
        if done.exists():
            return json.loads(done.read_text())
        value = make()
        done.write_text(json.dumps(value))
        return value
