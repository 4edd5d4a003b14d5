"""cachelab.chaos's upstream faults against a real stub process: each starts its patch and undoes exactly it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cachelab import chaos, processes
from stub_api.client import StubAdmin
from tests.stub_api.helpers import StubClient, running_stub


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubClient]:
    with running_stub(["--latency-ms", "20", "--latency-p99-ms", "80", "--seed", "7"],
                      log_dir=tmp_path_factory.mktemp("stub")) as client:  # fmt: skip
        yield client


@pytest.fixture
def admin(stub: StubClient) -> StubAdmin:
    made = StubAdmin(stub.url)
    made.reset()
    return made


def test_a_slow_upstream_is_undone_to_the_latency_model_before(admin: StubAdmin) -> None:
    before = admin.fault_state()
    fault = chaos.upstream_slow(admin.base, 400)
    fault.start()
    fault.start()  # idempotent: the undo is still the state from before the first start
    during = admin.fault_state()
    assert (during["latency_model"], during["latency_ms"], during["latency_p99_ms"]) == ("fixed", 400, None)
    fault.stop()
    fault.stop()
    assert admin.fault_state() == before


def test_an_upstream_mode_and_flapping_windows_are_lifted(admin: StubAdmin, stub: StubClient) -> None:
    mode = chaos.upstream_mode(admin.base, "error")
    mode.start()
    assert stub.get("/items/1").status == 503
    mode.stop()
    assert stub.get("/items/1").status == 200
    flapping = chaos.Flapping(admin.base, span_s=2.0)
    flapping.start()
    assert [w["start_s"] for w in admin.fault_state()["outage"]] == [0.0, 1.0]
    flapping.stop()
    assert admin.fault_state()["outage"] == []


def test_a_stub_that_is_gone_is_a_fault_error() -> None:
    port = processes.free_port()
    fault = chaos.upstream_mode(f"http://127.0.0.1:{port}", "timeout")
    with pytest.raises(chaos.FaultError, match=f"upstream-timeout: GET http://127.0.0.1:{port}/__admin/faults failed"):
        fault.start()
