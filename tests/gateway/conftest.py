"""Fixtures: one shared gateway on the fixture template for the tests that do not disturb it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.support import Gateway, running_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


@pytest.fixture
def gw(gateway: Gateway) -> Gateway:
    """The shared gateway, checked alive before each test."""
    assert gateway.proc.poll() is None, f"the gateway died: {gateway.log.read_text()[-2000:]}"
    return gateway
