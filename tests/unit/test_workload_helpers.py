"""The load-driven tests' own helpers (tests/support/workload.py): a check that cannot fail is a defect."""

from __future__ import annotations

import pytest

from tests.support.workload import StarvedRun, at_least, missing, with_workload


def test_a_run_with_its_workload_is_used_as_it_is() -> None:
    runs: list[int] = []

    def run(attempt: int) -> int:
        runs.append(attempt)
        return attempt

    assert with_workload(run, lambda n: None, gentler="slower") == 0
    assert runs == [0]


def test_a_starved_run_is_rerun_once_gentler_and_says_so() -> None:
    with pytest.warns(StarvedRun, match=r"rerun slower: the first run came out short \(too few\)"):
        assert with_workload(lambda n: n, lambda n: "too few" if n == 0 else None, gentler="slower") == 1


def test_starved_twice_fails_naming_the_starvation_and_both_shortfalls() -> None:
    with pytest.raises(pytest.fail.Exception) as failed, pytest.warns(StarvedRun):
        with_workload(lambda n: n * 10, lambda n: at_least("requests", n, 100), gentler="at half the rate")
    message = str(failed.value)
    assert message.startswith("starved: ")
    assert "requests: 0, needs at least 100" in message
    assert "rerun at half the rate: requests: 10, needs at least 100" in message


def test_missing_joins_every_shortfall() -> None:
    assert missing(None, None) is None
    assert missing(at_least("a", 1, 2), None, at_least("b", 0, 1)) == "a: 1, needs at least 2; b: 0, needs at least 1"
