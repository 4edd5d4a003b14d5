"""Fixtures: one long-lived stub process per test session (reset before each test), and fresh ones on demand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stub_api.helpers import StubClient, running_stub

SESSION_SEED = "1234"


@pytest.fixture(scope="session")
def stub_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubClient]:
    with running_stub(["--seed", SESSION_SEED], log_dir=tmp_path_factory.mktemp("stub")) as client:
        yield client


@pytest.fixture
def stub(stub_session: StubClient) -> StubClient:
    """The shared stub, back to its start state (POST /__admin/reset); fails loudly if it died."""
    assert stub_session.proc is not None
    assert stub_session.proc.poll() is None, f"the stub process died; see {stub_session.log}"
    stub_session.reset()
    return stub_session
