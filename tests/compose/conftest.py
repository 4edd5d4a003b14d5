"""The compose stack tests report their figures (times, Lambda containers) with `record_property`; this prints
them after the run, also from xdist workers (the properties travel with the reports)."""

from __future__ import annotations

import pytest

STACK_TESTS = "tests/compose/test_stack.py::"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        f"{name}: {value}"
        for kind in ("passed", "failed")
        for report in terminalreporter.stats.get(kind, [])
        if getattr(report, "nodeid", "").startswith(STACK_TESTS) and getattr(report, "when", "") == "call"
        for name, value in report.user_properties
    ]
    if lines:
        terminalreporter.write_sep("-", "compose stack figures (reported, not asserted)")
        for line in lines:
            terminalreporter.write_line(line)
