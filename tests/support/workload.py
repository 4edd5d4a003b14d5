"""Load-driven tests check that their run produced the workload their assertions need, and say so when not.

A load run on a busy machine can come out as a different workload: too few requests, a generator that fell
behind its rate, a system under test too starved to answer in time. Asserting on such a run fails with
something like "10 == 0" and says nothing about the code. So each load-driven test states what its run must
have produced (`shortfall` returns what is missing, or None), and `with_workload` runs it, reruns once gentler
(the test's `run(attempt)` decides how: a lower rate, a longer run), and otherwise fails with a message that
names the starvation and both shortfalls.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


class StarvedRun(UserWarning):
    """A load run came out short of its workload and was run again gentler (listed in pytest's warnings)."""


def with_workload(run: Callable[[int], T], shortfall: Callable[[T], str | None], *, gentler: str) -> T:
    """`run(0)`; if `shortfall` finds the workload missing, `run(1)` (`gentler` says how it differs); the first
    run whose workload is complete, else a failure naming the starvation."""
    first = run(0)
    missing = shortfall(first)
    if missing is None:
        return first
    warnings.warn(StarvedRun(f"rerun {gentler}: the first run came out short ({missing})"), stacklevel=2)
    second = run(1)
    missing_again = shortfall(second)
    if missing_again is None:
        return second
    pytest.fail(
        f"starved: the load run did not produce the workload this test checks ({missing}); rerun {gentler}: "
        f"{missing_again}. The machine is too busy for this test to say anything about the code "
        "(or the code cannot sustain even the gentler load: see the run's summary).",
        pytrace=False,
    )


def at_least(what: str, have: float, need: float) -> str | None:
    """A shortfall message when `have` < `need`."""
    return None if have >= need else f"{what}: {have:g}, needs at least {need:g}"


def missing(*shortfalls: str | None) -> str | None:
    """Every shortfall found, joined; None when there is none."""
    found = [s for s in shortfalls if s is not None]
    return "; ".join(found) if found else None
