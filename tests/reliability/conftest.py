"""The reliability suite's marker, the figures table of the fault suite, and where it is written."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachelab.chaos import Figures, Plan, table
from tests.reliability.support import EchoOrigin

FIGURES = pytest.StashKey[list[Figures]]()
PLAN = pytest.StashKey[Plan]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    rows = config.stash.get(FIGURES, [])
    if not rows:
        return
    plan = config.stash.get(PLAN, None)
    text = table(rows, plan)
    terminalreporter.write_sep("=", "reliability: faults under load")
    terminalreporter.write_line(text)
    out = os.environ.get("CACHELAB_CHAOS_OUT")
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "figures.md").write_text(text + "\n")
        (folder / "figures.json").write_text(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
        terminalreporter.write_line(f"written to {folder}/figures.md and figures.json")


@pytest.fixture
def origin() -> Iterator[EchoOrigin]:
    """An origin that answers with the exact request it received (a real HTTP server on loopback)."""
    server = EchoOrigin()
    yield server
    server.close()
