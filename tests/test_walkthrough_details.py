"""Small things a first-time user reads: `make help`'s columns, one-line notebook errors, singular counts."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from analysis import notebooks
from proxy.http import Request
from proxy.service import CachingProxy
from tests.conftest import RedisServer
from tests.support.upstream import Origin, Reply

REPO = Path(__file__).resolve().parents[1]


def test_make_help_lines_up_its_descriptions() -> None:
    out = subprocess.run(
        ["make", "-s", "-C", str(REPO), "help"], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("  make ")]
    assert len(lines) > 20
    starts = {re.match(r"  make \S+\s+", line).end() for line in lines}  # type: ignore[union-attr]
    assert len(starts) == 1, out.stdout
    assert any(line.split()[1] == "test-reliability" for line in lines)


def _failing_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [
        nbformat.v4.new_code_cell("runs = []", metadata={"tags": ["parameters"]}),  # type: ignore[no-untyped-call]
        nbformat.v4.new_code_cell("raise ValueError('the model predicts steady runs')"),  # type: ignore[no-untyped-call]
    ]
    nbformat.write(nb, str(path))  # type: ignore[no-untyped-call]


def test_a_failing_notebook_cell_is_one_plain_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fails.ipynb"
    _failing_notebook(path)
    out = tmp_path / "out.ipynb"
    assert notebooks.main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {path}: cell 1 failed: ValueError: the model predicts steady runs "
        f"(traceback in the executed copy {out})"
    ]
    assert "\x1b[" not in "".join(err)
    assert "Traceback" in out.read_text()  # the whole story stays in the executed copy


@pytest.mark.redis_server
def test_invalidate_says_1_cached_entry(
    proxy_factory: Callable[..., CachingProxy], origin: Origin, redis_server: RedisServer
) -> None:
    origin.routes["/items/1"] = Reply(body=b"{}")
    proxy_factory().handle(Request("GET", "/items/1"), "t")
    proc = subprocess.run(
        [sys.executable, "-m", "cachelab", "invalidate", "/items/1", "--redis-url", redis_server.url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("purged 1 cached entry (path: /items/1)")
