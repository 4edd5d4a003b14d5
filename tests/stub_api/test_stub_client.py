"""stub_api.client.StubAdmin against a real stub process, and its errors against peers that are not the stub."""

from __future__ import annotations

import contextlib
import socket

import pytest

from cachelab import processes
from stub_api.client import StubAdmin, StubAdminError
from tests.stub_api.helpers import StubClient
from tests.support.loopback_http import serving


@pytest.fixture
def admin(stub: StubClient) -> StubAdmin:
    return StubAdmin(stub.url)


def test_health_stats_and_reset(admin: StubAdmin, stub: StubClient) -> None:
    assert admin.health() == {"status": "ok"}
    assert stub.get("/items/1").status == 200
    stats = admin.stats()
    assert stats["requests"] == 1
    assert stats["by_path"] == {"/items/1": 1}
    reset = admin.reset()
    assert reset["status"] == "reset"
    assert reset["stats"]["requests"] == 0
    assert admin.stats()["requests"] == 0


def test_a_fault_patch_merges_and_reads_back(admin: StubAdmin, stub: StubClient) -> None:
    state = admin.faults({"mode": "error", "routes": {"/items/{id}": {"cache_control": "max-age=5"}}})
    assert state["mode"] == "error"
    assert admin.fault_state() == state
    assert stub.get("/items/1").status == 503
    assert admin.faults({"mode": "up"})["routes"] == {"/items/{id}": {"cache_control": "max-age=5"}}
    assert stub.get("/items/1").headers["Cache-Control"] == "max-age=5"


def test_items_read_and_bump_without_counting_as_traffic(admin: StubAdmin) -> None:
    first = admin.item(3)
    bumped = admin.bump_item(3)
    assert bumped["version"] == first["version"] + 1
    assert admin.item(3) == bumped
    assert admin.stats()["requests"] == 0


@pytest.mark.parametrize("url", ["{u}", "{u}/", "{u}/__admin", "{u}/__admin/", "  {u}/  "])
def test_the_base_url_may_name_the_admin_prefix(stub: StubClient, url: str) -> None:
    admin = StubAdmin(url.format(u=stub.url))
    assert admin.base == stub.url
    assert admin.health_url == f"{stub.url}/__admin/health"
    assert admin.health() == {"status": "ok"}


def test_a_refused_patch_carries_the_status_and_the_stubs_message(admin: StubAdmin) -> None:
    with pytest.raises(StubAdminError) as caught:
        admin.faults({"mode": "sideways"})
    assert caught.value.kind == "refused"
    assert caught.value.status == 400
    assert "mode must be one of" in caught.value.detail
    assert "POST http://127.0.0.1" in str(caught.value)
    assert "/__admin/faults answered 400" in str(caught.value)


def test_an_unknown_item_is_refused_with_404(admin: StubAdmin) -> None:
    with pytest.raises(StubAdminError) as caught:
        admin.item(10**6)
    assert (caught.value.kind, caught.value.status) == ("refused", 404)


def test_a_closed_port_is_unreachable() -> None:
    port = processes.free_port()
    with pytest.raises(StubAdminError) as caught:
        StubAdmin(f"http://127.0.0.1:{port}", timeout=2).stats()
    assert (caught.value.kind, caught.value.status) == ("unreachable", None)


def test_a_peer_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (the backlog) but never reads nor answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        admin = StubAdmin(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.3)
        with pytest.raises(StubAdminError) as caught:
            admin.health()
    assert caught.value.kind == "unreachable"
    assert "timed out" in str(caught.value)


def peer(headers: dict[str, str], body: bytes) -> contextlib.AbstractContextManager[str]:
    """An HTTP server on loopback answering every GET with 200, `headers` and `body`: something that is not the stub."""
    return serving(lambda _path: (200, headers, body))


STATS = b'{"requests": 0}'


@pytest.mark.parametrize(
    ("headers", "body", "why"),
    [
        ({"X-Cache": "MISS"}, STATS, "through a cache (X-Cache: MISS)"),
        ({"Cache-Status": "cachelab; fwd=miss"}, STATS, "through a cache"),
        ({}, b"<html>hello</html>", "did not answer JSON"),
        ({}, b"[1, 2]", "did not answer a JSON object"),
        ({}, b'{"status": "ok"}', "did not answer the stub's stats object"),
    ],
)
def test_an_answer_that_is_not_the_stubs(headers: dict[str, str], body: bytes, why: str) -> None:
    with peer(headers, body) as url, pytest.raises(StubAdminError) as caught:
        StubAdmin(url, timeout=5).stats()
    assert (caught.value.kind, caught.value.status) == ("not-stub", 200)
    assert why in str(caught.value)


@pytest.mark.parametrize("url", ["127.0.0.1:8081", "ftp://127.0.0.1/", ""])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(StubAdminError) as caught:
        StubAdmin(url)
    assert caught.value.kind == "bad-url"


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout"):
        StubAdmin("http://127.0.0.1:1", timeout=0)
