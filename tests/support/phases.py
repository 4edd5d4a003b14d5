"""Failures at a phase boundary of a load run, from its measurements.json.

A request is labelled with the phase in effect when it was sent, and the outage scenario starts its fault just
after the outage label takes effect. A warm-up request still in flight at that moment can meet the fault: on a
quiet machine that is a few milliseconds of requests, on a busy one much more. So "no failure in the warm-up"
is checked as: none that completed in a whole second before the next phase began, and at most one per user
(each user has one request in flight) completing after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from loadtests.summary import load_record


@dataclass(frozen=True)
class BoundaryFailures:
    before: int  # unavailable answers completed in whole seconds before the next phase began
    across: int  # unavailable answers completed later: in flight when it began

    def check(self, users: int) -> None:
        assert self.before == 0, f"{self.before} failures well before the phase ended"
        assert self.across <= users, f"{self.across} failures across the boundary, more than one per user ({users})"


def boundary_failures(out: Path, phase: str, next_phase: str, *, target: str | None = None) -> BoundaryFailures:
    """Unavailable answers labelled `phase` (to `target` when given: "proxy", "upstream") around the start of
    `next_phase`, from out/measurements.json."""
    record = load_record(out / "measurements.json")
    start = math.floor(next(mark.start for mark in record.phases if mark.name == next_phase))
    before = across = 0
    for key, count in record.measurements.timeline.items():
        if key.phase != phase or key.available or (target is not None and key.target != target):
            continue
        if key.second < start:
            before += count
        else:
            across += count
    return BoundaryFailures(before, across)
