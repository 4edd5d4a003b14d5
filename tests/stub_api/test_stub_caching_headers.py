"""Cache-Control configuration, ETag / Last-Modified, and 304 answers to conditional requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from tests.stub_api.helpers import StubClient

RESOURCES = ["/?name=ada", "/items/5", "/items?page=2", "/image.png", "/session", "/echo"]


@pytest.mark.parametrize("path", RESOURCES)
def test_no_cache_control_by_default(stub: StubClient, path: str) -> None:
    reply = stub.get(path)
    assert reply.status == 200
    assert reply.headers.get("Cache-Control") is None


def test_global_cache_control(stub: StubClient) -> None:
    state = stub.faults(cache_control="public, max-age=60, stale-if-error=600")
    assert state["cache_control"] == "public, max-age=60, stale-if-error=600"
    for path in RESOURCES:
        assert stub.get(path).headers["Cache-Control"] == "public, max-age=60, stale-if-error=600", path
    stub.faults(cache_control=None)
    assert stub.get("/items/5").headers.get("Cache-Control") is None


@pytest.mark.parametrize(
    "value",
    [
        "max-age=60",
        "s-maxage=120, max-age=10",
        "no-store",
        "private, max-age=30",
        "max-age=5, stale-if-error=300",
        "no-cache",
        "max-age=0, must-revalidate, stale-while-revalidate=30",
    ],
)
def test_per_route_cache_control(stub: StubClient, value: str) -> None:
    stub.faults(routes={"/items/{id}": {"cache_control": value}, "/session": {"cache_control": "private"}})
    assert stub.get("/items/1").headers["Cache-Control"] == value
    assert stub.get("/items/999").headers["Cache-Control"] == value
    assert stub.get("/session").headers["Cache-Control"] == "private"
    assert stub.get("/items").headers.get("Cache-Control") is None, "the list route has no override"
    assert stub.get("/?name=x").headers.get("Cache-Control") is None


def test_exact_path_beats_template_and_empty_disables(stub: StubClient) -> None:
    stub.faults(
        cache_control="max-age=1",
        routes={"/items/{id}": {"cache_control": "max-age=60"}, "/items/7": {"cache_control": ""}},
    )
    assert stub.get("/items/6").headers["Cache-Control"] == "max-age=60"
    assert stub.get("/items/7").headers.get("Cache-Control") is None
    assert stub.get("/?name=x").headers["Cache-Control"] == "max-age=1"
    state = stub.faults(routes={"/items/7": None})
    assert set(state["routes"]) == {"/items/{id}"}
    assert stub.get("/items/7").headers["Cache-Control"] == "max-age=60"


def test_cc_query_knob_overrides_everything(stub: StubClient) -> None:
    stub.faults(routes={"/items/{id}": {"cache_control": "max-age=60"}})
    assert stub.get("/items/1?cc=no-store").headers["Cache-Control"] == "no-store"
    assert stub.get("/items/1?cc=s-maxage%3D30%2C%20max-age%3D0").headers["Cache-Control"] == "s-maxage=30, max-age=0"
    assert stub.get("/items/1?cc=").headers.get("Cache-Control") is None
    bad = stub.get("/items/1?cc=max-age%3D1%0D%0AX-Evil%3A%201")
    assert bad.status == 400
    assert "printable ASCII" in bad.json()["error"]


def test_etag_is_strong_and_if_none_match_gives_304(stub: StubClient) -> None:
    stub.faults(cache_control="max-age=60")
    first = stub.get("/items/11")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert not etag.startswith("W/")
    for header in (etag, f'"nope", {etag}', f"W/{etag}", "*"):
        again = stub.get("/items/11", headers={"If-None-Match": header})
        assert again.status == 304, header
        assert again.body == b""
        assert again.headers["ETag"] == etag
        assert again.headers["Cache-Control"] == "max-age=60"
        assert again.headers["Last-Modified"] == first.headers["Last-Modified"]
    assert stub.get("/items/11", headers={"If-None-Match": '"other"'}).status == 200


def test_if_modified_since(stub: StubClient) -> None:
    first = stub.get("/items/12")
    last_modified = first.headers["Last-Modified"]
    moment = parsedate_to_datetime(last_modified)
    assert moment == datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=12)
    assert first.json()["updated_at"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    same = stub.get("/items/12", headers={"If-Modified-Since": last_modified})
    assert same.status == 304
    assert same.body == b""
    later = format_datetime(moment + timedelta(days=1), usegmt=True)
    assert stub.get("/items/12", headers={"If-Modified-Since": later}).status == 304
    earlier = format_datetime(moment - timedelta(seconds=1), usegmt=True)
    assert stub.get("/items/12", headers={"If-Modified-Since": earlier}).status == 200
    assert stub.get("/items/12", headers={"If-Modified-Since": "not a date"}).status == 200


def test_if_none_match_wins_over_if_modified_since(stub: StubClient) -> None:
    first = stub.get("/items/13")
    reply = stub.get(
        "/items/13", headers={"If-None-Match": '"stale"', "If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert reply.status == 200


def test_update_invalidates_validators(stub: StubClient) -> None:
    first = stub.get("/items/14")
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    stub.admin("POST", "items/14")
    by_etag = stub.get("/items/14", headers={"If-None-Match": etag})
    assert by_etag.status == 200
    assert by_etag.json()["version"] == 2
    assert by_etag.headers["ETag"] != etag
    by_date = stub.get("/items/14", headers={"If-Modified-Since": last_modified})
    assert by_date.status == 200
    assert parsedate_to_datetime(by_date.headers["Last-Modified"]) > parsedate_to_datetime(last_modified)
    # two bumps within one second still move Last-Modified forward, so If-Modified-Since sees each of them
    second = stub.admin("POST", "items/14")
    third = stub.admin("POST", "items/14")
    assert third["version"] == second["version"] + 1
    assert third["updated_at"] > second["updated_at"]
    assert stub.get("/items/14", headers={"If-None-Match": by_etag.headers["ETag"]}).status == 200


def test_etag_differs_per_representation(stub: StubClient) -> None:
    plain = stub.get("/items/15").headers["ETag"]
    padded = stub.get("/items/15?bytes=5000").headers["ETag"]
    assert plain != padded
    assert stub.get("/items/15?bytes=5000", headers={"If-None-Match": padded}).status == 304


@pytest.mark.parametrize("path", ["/?name=ada", "/items?page=3", "/image.png?size=8"])
def test_other_resources_answer_conditional_requests(stub: StubClient, path: str) -> None:
    etag = stub.get(path).headers["ETag"]
    assert stub.get(path, headers={"If-None-Match": etag}).status == 304


def test_list_last_modified_is_newest_item(stub: StubClient) -> None:
    before = stub.get("/items?page=1&size=5")
    stub.admin("POST", "items/3")
    after = stub.get("/items?page=1&size=5", headers={"If-Modified-Since": before.headers["Last-Modified"]})
    assert after.status == 200
    assert after.headers["Last-Modified"] == stub.get("/items/3").headers["Last-Modified"]
