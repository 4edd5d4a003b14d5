"""The stub's resources over real HTTP: age guesser, items, pages, body-size knob, PNG, cookie, echo, status."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from tests.stub_api.helpers import StubClient


def test_age_guess_is_deterministic_per_name(stub: StubClient) -> None:
    first = stub.get("/?name=michael")
    assert first.status == 200
    assert first.headers["Content-Type"] == "application/json; charset=utf-8"
    body = first.json()
    assert set(body) == {"count", "name", "age"}
    assert body["name"] == "michael"
    assert isinstance(body["age"], int)
    assert 18 <= body["age"] <= 90
    assert isinstance(body["count"], int)
    assert body["count"] > 0
    assert stub.get("/?name=michael").body == first.body
    ages = {stub.get(f"/?name=name{i}").json()["age"] for i in range(20)}
    assert len(ages) > 5, "different names should get different ages"


def test_age_guess_unicode_name_round_trips(stub: StubClient) -> None:
    reply = stub.get("/?name=Ren%C3%A9e")
    assert reply.status == 200
    assert reply.json()["name"] == "Renée"


def test_age_guess_empty_and_missing_name(stub: StubClient) -> None:
    empty = stub.get("/?name=")
    assert empty.status == 200
    assert empty.json() == {"count": 0, "name": "", "age": None}
    missing = stub.get("/")
    assert missing.status == 422
    assert missing.json() == {"error": "Missing 'name' parameter"}
    too_long = stub.get("/?name=" + "a" * 1001)
    assert too_long.status == 400
    assert "longer than 1000" in too_long.json()["error"]


def test_item_is_stable_and_versioned(stub: StubClient) -> None:
    reply = stub.get("/items/42")
    assert reply.status == 200
    item = reply.json()
    assert item["id"] == 42
    assert item["version"] == 1
    assert {"name", "price", "updated_at", "tags", "description"} <= set(item)
    assert stub.get("/items/42").body == reply.body
    names = {stub.get(f"/items/{i}").json()["name"] for i in range(1, 11)}
    assert len(names) > 3, "items differ from one another"

    bumped = stub.admin("POST", "items/42")
    assert bumped["version"] == 2
    assert bumped["updated_at"] > item["updated_at"]
    after = stub.get("/items/42")
    assert after.json() == bumped
    assert after.headers["ETag"] != reply.headers["ETag"]
    assert after.headers["Last-Modified"] != reply.headers["Last-Modified"]
    assert stub.admin("GET", "items/42") == bumped

    stub.reset()
    assert stub.get("/items/42").body == reply.body, "reset brings items back to version 1"


def test_item_errors(stub: StubClient) -> None:
    missing = stub.get("/items/1001")
    assert missing.status == 404
    assert missing.json() == {"error": "item 1001 not found (items are 1..1000)"}
    assert stub.get("/items/0").status == 404
    bad = stub.get("/items/abc")
    assert bad.status == 400
    assert "integer" in bad.json()["error"]
    assert stub.request("POST", "/__admin/items/5000").status == 404
    with_body = stub.request("POST", "/__admin/items/5", body=b'{"version": 9}')
    assert with_body.status == 400


def test_pagination(stub: StubClient) -> None:
    first = stub.get("/items?page=1&size=5").json()
    assert [i["id"] for i in first["items"]] == [1, 2, 3, 4, 5]
    assert (first["page"], first["size"], first["total"], first["pages"]) == (1, 5, 1000, 200)
    assert first["next"] == "/items?page=2&size=5"
    assert first["prev"] is None
    second = stub.get(first["next"]).json()
    assert [i["id"] for i in second["items"]] == [6, 7, 8, 9, 10]
    assert second["prev"] == "/items?page=1&size=5"
    last = stub.get("/items?page=200&size=5").json()
    assert [i["id"] for i in last["items"]] == [996, 997, 998, 999, 1000]
    assert last["next"] is None
    assert stub.get("/items?page=201&size=5").json()["items"] == []
    default = stub.get("/items").json()
    assert (default["page"], default["size"], len(default["items"])) == (1, 20, 20)
    assert second["items"][0] == stub.get("/items/6").json(), "page entries equal the single items"


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("page=0", "'page' must be between"),
        ("size=101", "'size' must be between"),
        ("size=x", "integer"),
        ("page=1.5", "integer"),
    ],
)
def test_pagination_bad_input(stub: StubClient, query: str, fragment: str) -> None:
    reply = stub.get(f"/items?{query}")
    assert reply.status == 400
    assert fragment in reply.json()["error"]


@pytest.mark.parametrize("path", ["/items/3", "/?name=x", "/items?size=2", "/echo", "/status/404"])
@pytest.mark.parametrize("size", [700, 4096, 1_000_003])
def test_bytes_knob_gives_exact_body_size(stub: StubClient, path: str, size: int) -> None:
    sep = "&" if "?" in path else "?"
    reply = stub.get(f"{path}{sep}bytes={size}")
    assert len(reply.body) == size
    json.loads(reply.body)  # still valid JSON


def test_bytes_knob_below_natural_size_and_bounds(stub: StubClient) -> None:
    natural = stub.get("/items/3").body
    assert stub.get("/items/3?bytes=10").body == natural
    for extra in (1, 5, 12, 13, 14):  # too little room for a padding field: trailing spaces instead
        padded = stub.get(f"/items/3?bytes={len(natural) + extra}").body
        assert len(padded) == len(natural) + extra
        assert json.loads(padded) == json.loads(natural) or "padding" in json.loads(padded)
    biggest = stub.get("/items/3?bytes=10485760")
    assert len(biggest.body) == 10 * 1024 * 1024
    for bad in ("10485761", "-1", "lots"):
        reply = stub.get(f"/items/3?bytes={bad}")
        assert reply.status == 400, bad
        assert "'bytes'" in reply.json()["error"]


@pytest.mark.parametrize("size", [1, 64, 300])
def test_png_is_a_valid_image(stub: StubClient, size: int) -> None:
    reply = stub.get(f"/image.png?size={size}")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "image/png"
    assert reply.body.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(reply.body)) as image:
        image.load()
        assert image.format == "PNG"
        assert image.size == (size, size)
        assert image.mode == "RGB"
    assert reply.headers["ETag"].startswith('"')
    assert stub.get(f"/image.png?size={size}").body == reply.body


def test_png_bad_size(stub: StubClient) -> None:
    for bad in ("0", "1025", "big"):
        assert stub.get(f"/image.png?size={bad}").status == 400


def test_session_sets_a_cookie(stub: StubClient) -> None:
    reply = stub.get("/session")
    assert reply.status == 200
    cookie = reply.headers["Set-Cookie"]
    token = reply.json()["session"]
    assert cookie.startswith(f"stub_session={token};")
    assert "HttpOnly" in cookie
    assert "Path=/" in cookie
    assert reply.json()["returning"] is False
    again = stub.get("/session", headers={"Cookie": f"stub_session={token}"})
    assert again.json()["returning"] is True
    assert again.json()["session"] != token


def test_echo_reports_the_request(stub: StubClient) -> None:
    reply = stub.get("/echo?a=1&a=2&b=x", headers={"X-Tenant": "acme", "Accept-Language": "de"})
    body = reply.json()
    assert body["method"] == "GET"
    assert body["path"] == "/echo"
    assert body["query"] == {"a": "1,2", "b": "x"}
    assert body["headers"]["X-Tenant"] == "acme"
    assert body["headers"]["Accept-Language"] == "de"


def test_status_route(stub: StubClient) -> None:
    reply = stub.get("/status/404")
    assert reply.status == 404
    assert reply.json() == {"status": 404, "message": "Not Found"}
    assert stub.get("/status/204").body == b""
    assert stub.get("/status/503").status == 503
    assert stub.get("/status/99").status == 400
    assert stub.get("/status/abc").status == 400


def test_unknown_route_and_method_answer_json(stub: StubClient) -> None:
    missing = stub.get("/nope")
    assert missing.status == 404
    assert missing.json() == {"error": "no such resource: /nope"}
    wrong = stub.request("DELETE", "/items/1")
    assert wrong.status == 405
    assert "not allowed" in wrong.json()["error"]
    assert "GET" in wrong.headers["Allow"]


def test_head_has_headers_without_body(stub: StubClient) -> None:
    get = stub.get("/items/9")
    head = stub.request("HEAD", "/items/9")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["ETag"] == get.headers["ETag"]
