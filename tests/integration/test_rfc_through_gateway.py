"""RFC 9111 / 9110 / 9211 / 3986 cases end to end: client -> `cachelab gateway` (the template's proxy function in its
own process) -> a scripted origin, with a real redis-server. Each test shows what the origin received.

The origin is scripted per test on paths of its own (a fresh prefix each), so tests never share cache entries.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from cachelab import processes
from tests.gateway.support import REAL_TEMPLATE, Gateway, Reply, raw_exchange, running_gateway, split_responses
from tests.support.upstream import Origin, Seen
from tests.support.upstream import Reply as OriginReply

pytestmark = pytest.mark.redis_server

JSON = [("Content-Type", "application/json")]


@pytest.fixture(scope="module")
def scripted() -> Iterator[Origin]:
    origin = Origin()
    yield origin
    origin.close()


@pytest.fixture(scope="module")
def gateway(scripted: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if processes.redis_server_path() is None:
        pytest.fail("redis-server is not installed (make tools)")
    workdir = tmp_path_factory.mktemp("rfc")
    redis_port = processes.free_port()
    redis = processes.start_redis_server(redis_port, workdir=workdir / "redis")
    try:
        with running_gateway(
            workdir,
            "--param", "RedisMode=external",
            "--param", f"RedisUrl=redis://{processes.LOOPBACK}:{redis_port}/0",
            "--param", "CacheTtlSeconds=60",
            "--param", "CacheStaleWhileRevalidateSeconds=0",
            "--param", "UpstreamTimeoutSeconds=5",
            "--warm", "4",  # concurrent requests meet warm execution environments, not cold starts
            template=REAL_TEMPLATE,
            env={"UPSTREAM_URL": scripted.url},
        ) as gw:  # fmt: skip
            yield gw
    finally:
        processes.stop(redis)


@pytest.fixture
def base() -> str:
    """A path prefix of this test's own."""
    return f"/t{uuid.uuid4().hex[:12]}"


def route(origin: Origin, path: str, reply: OriginReply | Callable[[Seen], OriginReply]) -> None:
    origin.routes[path] = reply


def received(origin: Origin, prefix: str) -> list[Seen]:
    with origin._lock:
        return [seen for seen in origin.seen if seen.target.startswith(prefix)]


def cache_status(reply: Reply) -> str:
    return reply.headers.get("Cache-Status") or ""


# -- defect 1: encoded reserved characters ---------------------------------------------------------------------
def test_an_encoded_slash_never_climbs_a_level(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 3986 §2.2, §6.2.2: `..%2Fadmin` is a segment name, not a dot-segment; %2F reaches the origin encoded."""
    route(scripted, f"{base}/files/..%2Fadmin", OriginReply(body=b'{"file": true}', headers=JSON))
    route(scripted, "/admin", OriginReply(body=b'{"admin": true}', headers=JSON))
    reply = gateway.get(f"{base}/files/..%2Fadmin")
    assert reply.status == 200
    assert reply.body == b'{"file": true}'
    assert [seen.target for seen in received(scripted, base)] == [f"{base}/files/..%2Fadmin"]
    assert not received(scripted, "/admin")


def test_a_percent_2f_b_and_a_slash_b_are_different_resources(gateway: Gateway, scripted: Origin, base: str) -> None:
    route(scripted, f"{base}/a%2Fb", OriginReply(body=b'"encoded"', headers=JSON))
    route(scripted, f"{base}/a/b", OriginReply(body=b'"two segments"', headers=JSON))
    assert gateway.get(f"{base}/a%2fb").body == b'"encoded"'  # §6.2.2.1: the same as %2F
    assert gateway.get(f"{base}/a/b").body == b'"two segments"'
    assert gateway.get(f"{base}/a%2Fb").headers["X-Cache"] == "HIT"
    assert [seen.target for seen in received(scripted, base)] == [f"{base}/a%2Fb", f"{base}/a/b"]


def test_unreserved_escapes_and_dot_segments_are_normalised(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 3986 §6.2.2.2-3: /x/%7Eu/../%61 is /x/a, one entry, and the origin gets the normal form."""
    route(scripted, f"{base}/a", OriginReply(headers=JSON))
    assert gateway.get(f"{base}/%7Eu/../%61").headers["X-Cache"] == "MISS"
    assert gateway.get(f"{base}/a").headers["X-Cache"] == "HIT"
    assert [seen.target for seen in received(scripted, base)] == [f"{base}/a"]


def test_invalid_percent_encoding_is_refused_with_a_cache_status(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 3986 §2.1; the proxy's own 4xx carries its Cache-Status member (RFC 9211 §2), neither hit nor fwd."""
    reply = gateway.get(f"{base}/a%zz")
    assert reply.status == 400
    assert "percent-encoding" in reply.json()["error"]
    assert cache_status(reply) == "cachelab; detail=invalid-request"
    assert received(scripted, base) == []


# -- defect 2: repeated parameters and other rewrites ---------------------------------------------------------
def test_repeated_parameters_keep_their_order(gateway: Gateway, scripted: Origin, base: str) -> None:
    """Sorting by name is fine; the values of one name are a list: ?a=2&a=1 is not ?a=1&a=2."""
    route(scripted, f"{base}/r", lambda seen: OriginReply(body=seen.target.encode(), headers=JSON))
    first = gateway.get(f"{base}/r?b=x&a=2&a=1")
    second = gateway.get(f"{base}/r?a=1&a=2")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "MISS")
    assert first.body == f"{base}/r?a=2&a=1&b=x".encode()
    assert second.body == f"{base}/r?a=1&a=2".encode()
    assert gateway.get(f"{base}/r?a=2&b=x&a=1").headers["X-Cache"] == "HIT"  # only the names moved
    assert len(received(scripted, base)) == 2


def test_reserved_characters_in_values_stay_data(gateway: Gateway, scripted: Origin, base: str) -> None:
    """API Gateway (REST) decodes the query ("+" -> space, %2B -> "+"); each character left is data for the origin."""
    route(scripted, f"{base}/q", OriginReply(headers=JSON))
    gateway.get(f"{base}/q?q=a%2Bb+c%26d%3De%23f")
    assert [seen.target for seen in received(scripted, base)] == [f"{base}/q?q=a%2Bb%20c%26d%3De%23f"]


def test_unsafe_methods_forward_the_query_as_received(gateway: Gateway, scripted: Origin, base: str) -> None:
    """Not sorted for POST. (REST events group the parameters by name: interleaved names cannot be restored.)"""
    route(scripted, f"{base}/p", OriginReply(status=201, headers=JSON))
    reply = gateway.request("POST", f"{base}/p?z=1&a=2&a=1", body=b"{}", headers={"Content-Type": "application/json"})
    assert reply.status == 201
    assert [seen.target for seen in received(scripted, base)] == [f"{base}/p?z=1&a=2&a=1"]


# -- defect 3: Age ------------------------------------------------------------------------------------------------
def test_the_upstream_age_is_kept_on_every_answer(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9111 §4.2.3, §5.1: a response 100 s old stays at least 100 s old, so downstream caches don't keep it
    longer than the origin allowed."""
    route(scripted, f"{base}/aged", OriginReply(headers=[*JSON, ("Age", "100"), ("Cache-Control", "max-age=300")]))
    miss = gateway.get(f"{base}/aged")
    hit = gateway.get(f"{base}/aged")
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("MISS", "HIT")
    assert int(miss.headers["Age"]) >= 100
    assert int(hit.headers["Age"]) >= 100
    assert "ttl=19" in cache_status(hit) or "ttl=20" in cache_status(hit)  # 300 - 100 - time with us


def test_a_first_hand_miss_carries_no_age(gateway: Gateway, scripted: Origin, base: str) -> None:  # RFC 9111 §5.1
    route(scripted, f"{base}/new", OriginReply(headers=JSON))
    miss = gateway.get(f"{base}/new")
    assert miss.headers["X-Cache"] == "MISS"
    assert miss.headers.get("Age") is None
    assert gateway.get(f"{base}/new").headers.get("Age") is not None  # answered from the cache: it has one


# -- defect 4: a 304 naming another validator -----------------------------------------------------------------------
def test_a_304_with_another_strong_etag_fetches_the_full_response(
    gateway: Gateway, scripted: Origin, base: str
) -> None:
    """RFC 9111 §4.3.4: a 304 whose strong validator differs from the stored one updates nothing."""
    calls: list[str | None] = []

    def origin(seen: Seen) -> OriginReply:
        calls.append(seen.headers.get("if-none-match"))
        if len(calls) == 1:
            return OriginReply(headers=[*JSON, ("ETag", '"v1"'), ("Cache-Control", "max-age=1")], body=b'"v1"')
        if seen.headers.get("if-none-match"):
            return OriginReply(status=304, headers=[("ETag", '"v2"'), ("Cache-Control", "max-age=60")], body=b"")
        return OriginReply(headers=[*JSON, ("ETag", '"v2"'), ("Cache-Control", "max-age=60")], body=b'"v2"')

    route(scripted, f"{base}/doc", origin)
    assert gateway.get(f"{base}/doc").body == b'"v1"'
    time.sleep(1.2)  # the entry is stale (max-age=1), and no stale-while-revalidate window is configured
    refreshed = gateway.get(f"{base}/doc")
    assert (refreshed.status, refreshed.body, refreshed.headers["ETag"]) == (200, b'"v2"', '"v2"')
    assert calls == [None, '"v1"', None]  # the revalidation, then the full request
    hit = gateway.get(f"{base}/doc")
    assert (hit.headers["X-Cache"], hit.body, hit.headers["ETag"]) == ("HIT", b'"v2"', '"v2"')


def test_a_304_with_the_same_etag_freshens_the_entry(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9111 §4.3.4: the stored body is kept, its headers and freshness updated."""

    def origin(seen: Seen) -> OriginReply:
        if seen.headers.get("if-none-match") == '"v1"':
            return OriginReply(status=304, headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=60")], body=b"")
        return OriginReply(headers=[*JSON, ("ETag", '"v1"'), ("Cache-Control", "max-age=1")], body=b'"v1"')

    route(scripted, f"{base}/same", origin)
    gateway.get(f"{base}/same")
    time.sleep(1.2)
    renewed = gateway.get(f"{base}/same")
    assert (renewed.status, renewed.body, renewed.headers["X-Cache"]) == (200, b'"v1"', "HIT")
    assert "fwd=stale; fwd-status=304" in cache_status(renewed)
    assert len(received(scripted, base)) == 2


# -- defect 5: request directives and conditionals ------------------------------------------------------------------
def test_only_if_cached_with_nothing_stored_is_a_504_without_the_origin(
    gateway: Gateway, scripted: Origin, base: str
) -> None:  # RFC 9111 §5.2.1.7
    route(scripted, f"{base}/cold", OriginReply(headers=JSON))
    reply = gateway.get(f"{base}/cold", headers={"Cache-Control": "only-if-cached"})
    assert reply.status == 504
    assert reply.headers["Content-Type"] == "application/json"
    assert "only-if-cached" in cache_status(reply)
    assert "fwd=" not in cache_status(reply)
    assert received(scripted, base) == []
    gateway.get(f"{base}/cold")
    cached = gateway.get(f"{base}/cold", headers={"Cache-Control": "only-if-cached"})
    assert (cached.status, cached.headers["X-Cache"]) == (200, "HIT")
    assert len(received(scripted, base)) == 1


def test_min_fresh_asks_the_origin_when_too_little_freshness_is_left(
    gateway: Gateway, scripted: Origin, base: str
) -> None:  # RFC 9111 §5.2.1.3
    route(scripted, f"{base}/mf", OriginReply(headers=[*JSON, ("Cache-Control", "max-age=30")]))
    gateway.get(f"{base}/mf")
    assert gateway.get(f"{base}/mf", headers={"Cache-Control": "min-fresh=10"}).headers["X-Cache"] == "HIT"
    reply = gateway.get(f"{base}/mf", headers={"Cache-Control": "min-fresh=60"})
    assert "fwd=request" in cache_status(reply)
    assert len(received(scripted, base)) == 2


def test_if_modified_since_equal_to_last_modified_is_a_304(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9110 §13.1.3: not modified since that date; answered by the cache with the fields a 304 carries."""
    last_modified = "Tue, 14 Nov 2023 20:00:00 GMT"
    route(scripted, f"{base}/lm", OriginReply(headers=[*JSON, ("Last-Modified", last_modified)]))
    gateway.get(f"{base}/lm")
    reply = gateway.get(f"{base}/lm", headers={"If-Modified-Since": last_modified})
    assert (reply.status, reply.body, reply.headers["X-Cache"]) == (304, b"", "HIT")
    assert reply.headers["Last-Modified"] == last_modified  # (API Gateway itself adds a Content-Type)
    older = gateway.get(f"{base}/lm", headers={"If-Modified-Since": "Tue, 14 Nov 2023 19:00:00 GMT"})
    assert older.status == 200
    assert len(received(scripted, base)) == 1


# -- the edges -------------------------------------------------------------------------------------------------------
def test_vary_accept_encoding_is_cached(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9111 §4.1 on the forwarded request: the proxy always asks for identity, whatever the client accepts."""
    route(scripted, f"{base}/v", OriginReply(headers=[*JSON, ("Vary", "Accept-Encoding")]))
    gateway.get(f"{base}/v", headers={"Accept-Encoding": "gzip"})
    hit = gateway.get(f"{base}/v", headers={"Accept-Encoding": "br"})
    assert hit.headers["X-Cache"] == "HIT"
    assert hit.headers["Vary"] == "Accept-Encoding"  # downstream caches still see it
    assert [seen.headers.get("accept-encoding") for seen in received(scripted, base)] == ["identity"]


def test_a_malformed_vary_is_not_stored_and_says_so_in_a_valid_token(
    gateway: Gateway, scripted: Origin, base: str
) -> None:  # RFC 9110 §12.5.5, RFC 9211 §2.8
    route(scripted, f"{base}/bad-vary", OriginReply(headers=[*JSON, ("Vary", '"accept language"')]))
    reply = gateway.get(f"{base}/bad-vary")
    assert cache_status(reply).endswith("detail=vary-invalid")
    assert gateway.get(f"{base}/bad-vary").headers["X-Cache"] == "MISS"


def test_a_date_is_added_when_the_origin_sends_none(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9110 §6.6.1 (API Gateway remaps a function's Date to X-Amzn-Remapped-Date and sets its own)."""
    route(scripted, f"{base}/nodate", OriginReply(headers=JSON, date=False))
    for reply in (gateway.get(f"{base}/nodate"), gateway.get(f"{base}/nodate")):
        assert reply.headers["X-Amzn-Remapped-Date"].endswith(" GMT")


def test_the_origins_cache_status_members_come_first(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9211 §2: members in order from the origin's side to the client's."""
    route(scripted, f"{base}/cs", OriginReply(headers=[*JSON, ("Cache-Status", "OriginCache; hit; ttl=30")]))
    miss = gateway.get(f"{base}/cs")
    hit = gateway.get(f"{base}/cs")
    assert cache_status(miss) == "OriginCache; hit; ttl=30, cachelab; fwd=uri-miss; fwd-status=200; stored"
    assert cache_status(hit).startswith("OriginCache; hit; ttl=30, cachelab; hit; ttl=")


def test_waiters_collapsed_on_a_stale_refresh_report_fwd_stale(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9211 §2.2: the request went forward because the entry was stale, also for those that waited for it.

    The refresh is held back long enough for the other requests to queue behind it; on a machine too busy for that
    (none of them arrived while it ran), the round is tried again with a longer hold, then the test says so."""
    for hold in (2.0, 6.0):
        path = f"{base}/slow{int(hold)}"
        calls: list[int] = []

        def origin(seen: Seen, hold: float = hold, calls: list[int] = calls) -> OriginReply:
            calls.append(1)
            if len(calls) == 1:
                return OriginReply(headers=[*JSON, ("Cache-Control", "max-age=1")])
            return OriginReply(headers=[*JSON, ("Cache-Control", "max-age=60")], delay=hold)

        route(scripted, path, origin)
        gateway.get(path)
        time.sleep(1.2)
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda _, path=path: gateway.get(path, timeout=30), range(4)))
        assert all(reply.status == 200 for reply in replies)
        statuses = [cache_status(reply) for reply in replies]
        assert len(calls) == 2, statuses  # one refresh for all four
        collapsed = [status for status in statuses if "collapsed" in status]
        assert all("fwd=stale" in status for status in collapsed), statuses
        if collapsed:
            return
    pytest.fail(f"no request arrived while the refresh ran for {hold} s (machine too busy?): {statuses}")


def test_location_of_a_successful_post_is_invalidated(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9111 §4.4: the target URI, and the same-origin URIs in Location and Content-Location."""
    route(scripted, f"{base}/things/9", OriginReply(headers=JSON))
    route(scripted, f"{base}/things/9/summary", OriginReply(headers=JSON))
    route(scripted, f"{base}/things/", OriginReply(status=201, headers=[*JSON, ("Location", f"{base}/things/9"),
                                                                      ("Content-Location", "9/summary")]))  # fmt: skip
    for path in ("/things/9", "/things/9/summary"):
        gateway.get(base + path)
        assert gateway.get(base + path).headers["X-Cache"] == "HIT"
    assert gateway.request("POST", f"{base}/things/", body=b"{}").status == 201
    for path in ("/things/9", "/things/9/summary"):
        assert gateway.get(base + path).headers["X-Cache"] == "MISS", path


def test_a_fragment_never_reaches_the_origin(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9110 §7.1: a fragment is not part of the target; a raw "#" from a client is dropped with it."""
    route(scripted, f"{base}/f", OriginReply(headers=JSON))
    data = f"GET {base}/f?a=1#frag HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    ((status, _, _),) = split_responses(raw_exchange(gateway.port, data))
    assert status == 200
    assert [seen.target for seen in received(scripted, base)] == [f"{base}/f?a=1"]


def test_the_heuristic_freshness_is_the_configured_ttl(gateway: Gateway, scripted: Origin, base: str) -> None:
    """RFC 9111 §4.2.2 leaves the heuristic to the cache: CACHE_TTL_SECONDS (60 here), not 10 % of the time since a
    Last-Modified of two years ago (which would be about 73 days)."""
    route(scripted, f"{base}/h", OriginReply(headers=[*JSON, ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")]))
    gateway.get(f"{base}/h")
    hit = gateway.get(f"{base}/h")
    assert hit.headers["X-Cache"] == "HIT"
    ttl = int(cache_status(hit).rsplit("ttl=", 1)[1].split(";")[0])
    assert 0 < ttl <= 60
