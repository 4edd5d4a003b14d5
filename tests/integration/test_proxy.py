"""The proxy end to end in-process: a real redis-server, a real HTTP origin on loopback, no mocks of our code."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from proxy.coalescing import OUTCOME_TTL_SECONDS
from proxy.http import Headers, Request
from proxy.keys import CacheKey, split_target
from proxy.outcome import Outcome
from proxy.service import CachingProxy
from proxy.store import CircuitBreaker, RedisStore, make_client
from proxy.upstream import Urllib3Upstream
from tests.conftest import RedisServer, make_settings
from tests.support.upstream import Origin, Reply, Seen

Factory = Callable[..., CachingProxy]


def get(proxy: CachingProxy, target: str, headers: list[tuple[str, str]] | None = None, method: str = "GET") -> Outcome:
    path, query = split_target(target)
    return proxy.handle(Request(method, path, query, Headers(headers or [])), "test-request")


def contacted_upstream(answer: Outcome) -> bool:
    """The documented rule: Cache-Status names a forward ("fwd=") that was not collapsed into another's."""
    status = answer.response.headers.get("cache-status") or ""
    return "fwd=" in status and "collapsed" not in status


def json_reply(data: object, cache_control: str | None = None, **extra: str) -> Reply:
    headers = [("Content-Type", "application/json")]
    if cache_control:
        headers.append(("Cache-Control", cache_control))
    headers.extend((name.replace("_", "-"), value) for name, value in extra.items())
    return Reply(body=json.dumps(data).encode(), headers=headers)


def test_miss_then_hit_with_age_and_cache_status(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/items/1"] = json_reply({"id": 1}, "max-age=60")
    proxy = proxy_factory()
    first, second = get(proxy, "/items/1"), get(proxy, "/items/1")
    assert (first.cache, second.cache) == ("MISS", "HIT")
    assert second.response.body == first.response.body == b'{"id": 1}'
    assert second.response.headers.get("x-cache") == "HIT"
    assert second.response.headers.get("age") == "0"
    assert second.response.headers.get("cache-status") or "".startswith("cachelab; hit; ttl=")
    assert first.response.headers.get("cache-status") == "cachelab; fwd=uri-miss; fwd-status=200; stored"
    assert origin.count() == 1


def test_parameter_order_shares_one_entry(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/search"] = json_reply({"ok": 1})
    proxy = proxy_factory()
    assert get(proxy, "/search?b=2&a=1").cache == "MISS"
    assert get(proxy, "/search?a=1&b=2").cache == "HIT"
    assert origin.seen[0].target == "/search?a=1&b=2"  # the canonical target is what the origin sees


def test_an_unkeyed_header_cannot_poison_the_cache(origin: Origin, proxy_factory: Factory) -> None:
    def reflect(seen: Seen) -> Reply:  # an origin that (wrongly) builds links from X-Forwarded-Host
        host = seen.headers.get("x-forwarded-host", "api.example.com")
        return json_reply({"link": f"https://{host}/items/1"})

    origin.routes["/items/1"] = reflect
    proxy = proxy_factory()
    attack = get(
        proxy, "/items/1", [("X-Forwarded-Host", "evil.example"), ("Cookie", "s=1"), ("X-Original-URL", "/admin")]
    )
    victim = get(proxy, "/items/1")
    assert b"evil" not in attack.response.body
    assert b"evil" not in victim.response.body
    assert victim.cache == "HIT"
    assert "x-forwarded-host" not in origin.seen[0].headers
    assert "cookie" not in origin.seen[0].headers


def test_keyed_headers_get_their_own_entries(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/greet"] = lambda seen: json_reply(
        {"lang": seen.headers.get("accept-language")}, vary="Accept-Language"
    )
    proxy = proxy_factory(CACHE_KEY_HEADERS="accept-language")
    assert get(proxy, "/greet", [("Accept-Language", "de")]).response.body == b'{"lang": "de"}'
    assert get(proxy, "/greet", [("Accept-Language", "fr")]).response.body == b'{"lang": "fr"}'
    hit = get(proxy, "/greet", [("Accept-Language", "de")])
    assert (hit.cache, hit.response.body) == ("HIT", b'{"lang": "de"}')


def test_expiry_then_revalidation_with_etag_renews_without_the_body(origin: Origin, proxy_factory: Factory) -> None:
    def versioned(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':  # renewed for a minute: the next GET is a HIT however slow
            return Reply(304, headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=60")], body=b"")
        return json_reply({"v": 1}, "max-age=1", ETag='"v1"')

    origin.routes["/v"] = versioned
    proxy = proxy_factory(CACHE_STALE_WHILE_REVALIDATE_SECONDS="0")
    assert get(proxy, "/v").cache == "MISS"
    time.sleep(1.1)
    renewed = get(proxy, "/v")
    assert renewed.cache == "HIT"
    assert renewed.response.body == b'{"v": 1}'
    assert "fwd=stale; fwd-status=304" in (renewed.response.headers.get("cache-status") or "")
    assert origin.seen[-1].headers.get("if-none-match") == '"v1"'
    assert get(proxy, "/v").cache == "HIT"
    assert origin.count() == 2


def test_stale_while_revalidate_serves_stale_while_another_refreshes(
    origin: Origin, proxy_factory: Factory, redis_server: RedisServer
) -> None:
    origin.routes["/swr"] = json_reply({"n": 1}, "max-age=1, stale-while-revalidate=30")
    proxy = proxy_factory()
    get(proxy, "/swr")
    time.sleep(1.1)
    path, query = split_target("/swr")
    from proxy.keys import key_for

    key = key_for(path, query, Headers(), ())
    assert proxy.store.try_lock(key, "another-environment", 5)  # someone else is refreshing right now
    stale = get(proxy, "/swr")
    assert stale.cache == "STALE"
    assert stale.response.status == 200
    assert "detail=stale-while-revalidate" in (stale.response.headers.get("cache-status") or "")
    assert origin.count() == 1


def test_upstream_down_serves_stale_for_every_cached_key(origin: Origin, proxy_factory: Factory) -> None:
    for i in range(5):
        origin.routes[f"/k/{i}"] = json_reply({"i": i}, "max-age=1")
    proxy = proxy_factory(UPSTREAM_TIMEOUT_SECONDS="1")
    for i in range(5):
        get(proxy, f"/k/{i}")
    time.sleep(1.1)
    origin.close()  # connection refused from now on
    answers = [get(proxy, f"/k/{i}") for i in range(5)]
    assert [a.cache for a in answers] == ["STALE"] * 5
    assert all(a.response.status == 200 for a in answers)
    assert answers[3].response.body == b'{"i": 3}'
    assert "detail=stale-if-error" in (answers[0].response.headers.get("cache-status") or "")
    uncached = get(proxy, "/never-cached")
    assert uncached.response.status == 502
    assert json.loads(uncached.response.body) == {
        "error": "upstream unreachable",
        "request_id": "test-request",
    }


@pytest.mark.parametrize("status", [500, 502, 503])
def test_upstream_5xx_counts_as_an_error_for_stale_if_error(
    origin: Origin, proxy_factory: Factory, status: int
) -> None:
    origin.routes["/e"] = json_reply({"ok": 1}, "max-age=1")
    proxy = proxy_factory()
    get(proxy, "/e")
    time.sleep(1.1)
    origin.routes["/e"] = Reply(status, body=b"down")
    stale = get(proxy, "/e")
    assert (stale.cache, stale.response.status, stale.response.body) == ("STALE", 200, b'{"ok": 1}')
    assert f"fwd-status={status}" in (stale.response.headers.get("cache-status") or "")


def test_upstream_5xx_without_a_cached_copy_passes_through_and_is_not_stored(
    origin: Origin, proxy_factory: Factory
) -> None:
    origin.routes["/boom"] = Reply(503, headers=[("Retry-After", "5")], body=b"busy")
    proxy = proxy_factory()
    first = get(proxy, "/boom")
    assert (first.response.status, first.response.body, first.response.headers.get("retry-after")) == (
        503,
        b"busy",
        "5",
    )
    get(proxy, "/boom")
    assert origin.count() == 2


def test_upstream_timeout_gives_504_within_the_timeout(origin: Origin, proxy_factory: Factory) -> None:
    """Cut off at the timeout, not when the origin answers: a generous bound (10x the timeout) tells them apart
    whatever the machine's load, because the origin would take 60 s."""
    origin.routes["/slow"] = Reply(delay=60.0)
    timeout = 0.5
    proxy = proxy_factory(UPSTREAM_TIMEOUT_SECONDS=str(timeout))
    started = time.monotonic()
    answer = get(proxy, "/slow")
    elapsed = time.monotonic() - started
    assert answer.response.status == 504
    assert json.loads(answer.response.body) == {"error": "upstream timed out", "request_id": "test-request"}
    assert 0.9 * timeout <= elapsed < 10 * timeout


def test_unreachable_upstream_gives_502(redis_server: RedisServer) -> None:
    from cachelab.processes import free_port
    from proxy.handler import build_app

    app = build_app({"UPSTREAM_URL": f"http://127.0.0.1:{free_port()}", "REDIS_URL": redis_server.url})
    answer = get(app.proxy, "/anything")
    assert answer.response.status == 502
    assert answer.cache == "MISS"
    assert json.loads(answer.response.body)["request_id"] == "test-request"


def test_100_concurrent_misses_reach_the_upstream_once(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/hot"] = Reply(body=b'{"hot": true}', delay=0.3)
    environments = [proxy_factory() for _ in range(100)]  # like 100 Lambda environments, each its own clients
    answers: list[Outcome] = []
    lock = threading.Lock()
    barrier = threading.Barrier(100, timeout=10)

    def call(proxy: CachingProxy) -> None:
        barrier.wait()
        answer = get(proxy, "/hot")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=call, args=(p,)) for p in environments]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(answers) == 100
    assert all(a.response.status == 200 and a.response.body == b'{"hot": true}' for a in answers)
    assert origin.count("/hot") == 1
    assert sum(contacted_upstream(a) for a in answers) == 1
    assert sorted({a.cache for a in answers}) == ["HIT", "MISS"]


def wait_for_lock_attempts(redis_server: RedisServer, count: int, timeout: float) -> None:
    """Until redis-server has seen `count` SET commands (each environment's SET NX of the key's lock) since its
    stats were reset: then every environment has asked for the lock and, but for one, waits for the holder."""
    deadline = time.monotonic() + timeout
    seen = 0
    with redis_server.client() as client:
        while time.monotonic() < deadline:
            seen = int(client.info("commandstats").get("cmdstat_set", {}).get("calls", 0))
            if seen >= count:
                return
            time.sleep(0.01)
    pytest.fail(f"starved: only {seen} of {count} concurrent requests asked for the lock within {timeout:g} s")


def test_concurrent_misses_on_a_down_upstream_fail_fast_together(
    origin: Origin, proxy_factory: Factory, redis_server: RedisServer
) -> None:
    """The waiters take the holder's failure (its outcome marker) instead of each asking the upstream in turn.
    The origin answers only once all 20 environments have asked for the lock, so none arrives after the failure
    (a request that arrives later, with nothing stale to serve, rightly asks the upstream itself). With a 13 s
    upstream timeout a waiter waits up to 14 s (the lock's TTL) for the holder: the 10 s allowed for everyone to
    ask runs out first, and a machine too busy for that is reported as such."""
    all_waiting = threading.Event()

    def held_until_all_wait(seen: Seen) -> Reply:
        all_waiting.wait(60)
        return Reply(503, body=b"down")

    origin.routes["/down"] = held_until_all_wait
    environments = [proxy_factory(UPSTREAM_TIMEOUT_SECONDS="13") for _ in range(20)]
    answers: list[Outcome] = []
    barrier = threading.Barrier(20, timeout=30)

    def call(proxy: CachingProxy) -> None:
        barrier.wait()
        answers.append(get(proxy, "/down"))

    with redis_server.client() as client:
        client.config_resetstat()
    threads = [threading.Thread(target=call, args=(p,)) for p in environments]
    for t in threads:
        t.start()
    try:
        wait_for_lock_attempts(redis_server, 20, timeout=10)
    finally:
        all_waiting.set()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 20
    assert all(a.response.status == 503 for a in answers)
    assert origin.count("/down") == 1  # the waiters took the holder's failure instead of queueing
    assert sum(contacted_upstream(a) for a in answers) == 1
    waiters = [a for a in answers if not contacted_upstream(a)]
    assert all("detail=collapsed-failure" in (a.response.headers.get("cache-status") or "") for a in waiters)


def test_a_dead_lock_holder_blocks_nobody_beyond_the_lock_expiry(origin: Origin, proxy_factory: Factory) -> None:
    """A crashed holder's lock expires and the waiter takes over: it fetches and stores (a waiter that gave up
    instead would fetch without storing, "lock-wait-timeout"). Its own wait limit is the 6 s lock TTL; the dead
    lock lives 1 s. Exact timings: tests/unit/test_service.py."""
    origin.routes["/orphan"] = json_reply({"ok": 1})
    proxy = proxy_factory(UPSTREAM_TIMEOUT_SECONDS="5")  # lock TTL, and the waiter's limit: 6 s
    from proxy.keys import key_for

    key = key_for("/orphan", (), Headers(), ())
    assert proxy.store.try_lock(key, "crashed-environment", 1.0)
    answer = get(proxy, "/orphan")
    assert (answer.response.status, answer.cache) == (200, "MISS")
    assert "stored" in (answer.response.headers.get("cache-status") or ""), answer.response.headers
    assert get(proxy, "/orphan").cache == "HIT"
    assert origin.count("/orphan") == 1


class CountingClient:
    """A redis-py client that counts what the store asks of it (every attribute it uses)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.uses = 0

    def __getattr__(self, name: str) -> Any:
        self.uses += 1
        return getattr(self.client, name)


def test_redis_down_bypasses_then_recovers(origin: Origin, redis_server: RedisServer) -> None:
    """Redis down: BYPASS answers; once the breaker is open no Redis call is even attempted (the breaker runs on
    a clock the test holds still, so no probe falls into the window); after the cool-down one probe closes it."""
    origin.routes["/r"] = json_reply({"r": 1})
    settings = make_settings(origin.url, redis_server.url)
    now = [0.0]
    client = CountingClient(make_client(settings))
    proxy = CachingProxy(
        RedisStore(client, CircuitBreaker(clock=lambda: now[0])), Urllib3Upstream(settings.upstream_url), settings
    )
    assert get(proxy, "/r").cache == "MISS"
    redis_server.stop()
    answers = [get(proxy, "/r") for _ in range(10)]
    assert all(a.cache == "BYPASS" and a.response.status == 200 for a in answers)
    assert proxy.store.breaker.state == "open"  # type: ignore[attr-defined]
    used = client.uses
    for _ in range(20):
        assert get(proxy, "/r").cache == "BYPASS"
    assert client.uses == used, "with the breaker open, Redis costs nothing per request"
    redis_server.restart()
    now[0] += 60  # past any cool-down: the next request probes Redis, finds it back, and closes the breaker
    deadline = time.monotonic() + 30
    statuses: list[str] = []
    while time.monotonic() < deadline:
        statuses.append(get(proxy, "/r").cache)
        if statuses[-1] == "HIT":
            break
        now[0] += 60
        time.sleep(0.1)
    assert statuses[-1] == "HIT", statuses
    client.client.close()


def test_client_no_cache_revalidates(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/nc"] = json_reply({"n": 1}, "max-age=60", ETag='"x"')
    proxy = proxy_factory()
    get(proxy, "/nc")
    forced = get(proxy, "/nc", [("Cache-Control", "no-cache")])
    assert origin.count() == 2
    assert origin.seen[-1].headers.get("if-none-match") == '"x"'
    assert forced.response.status == 200


def test_set_cookie_private_and_no_store_are_never_cached(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/cookie"] = Reply(headers=[("Set-Cookie", "sid=secret"), ("Cache-Control", "max-age=60")], body=b"c")
    origin.routes["/private"] = json_reply({}, "private, max-age=60")
    origin.routes["/nostore"] = json_reply({}, "no-store")
    proxy = proxy_factory()
    for path in ("/cookie", "/private", "/nostore"):
        get(proxy, path)
        again = get(proxy, path)
        assert again.cache == "MISS", path
    assert origin.count() == 6
    assert get(proxy, "/cookie").response.headers.get_all("set-cookie") == ["sid=secret"]


def test_authorization_responses_are_shared_only_when_public(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/me"] = json_reply({"user": "alice"}, "max-age=60")
    origin.routes["/pub"] = json_reply({"doc": 1}, "public, max-age=60")
    proxy = proxy_factory()
    get(proxy, "/me", [("Authorization", "Bearer alice")])
    assert get(proxy, "/me").cache == "MISS"  # alice's answer was not shared
    get(proxy, "/pub", [("Authorization", "Bearer alice")])
    assert get(proxy, "/pub").cache == "HIT"


def test_binary_bodies_round_trip_through_the_handler(origin: Origin, redis_server: RedisServer) -> None:
    import base64

    from cachelab.events import build_event
    from proxy import handler

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    origin.routes["/img.png"] = Reply(headers=[("Content-Type", "image/png")], body=png)
    handler._app = handler.build_app({"UPSTREAM_URL": origin.url, "REDIS_URL": redis_server.url})
    try:
        for expected in ("MISS", "HIT"):
            result = handler.lambda_handler(build_event("GET", "/img.png"))
            assert result["isBase64Encoded"]
            assert base64.b64decode(result["body"]) == png
            assert result["headers"]["x-cache"] == expected
        head = handler.lambda_handler(build_event("HEAD", "/img.png"))
        assert head["body"] == ""
        assert head["headers"]["x-cache"] == "HIT"
    finally:
        handler._app = None


def test_large_bodies_pass_through_uncached(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/big"] = Reply(body=b"x" * 2000)
    proxy = proxy_factory(CACHE_MAX_BODY_BYTES="1000")
    assert get(proxy, "/big").response.body == b"x" * 2000
    assert get(proxy, "/big").cache == "MISS"
    assert origin.count() == 2


def test_unsafe_methods_pass_through_and_invalidate(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/items/9"] = json_reply({"v": 1}, "max-age=60")
    proxy = proxy_factory()
    get(proxy, "/items/9")
    assert get(proxy, "/items/9").cache == "HIT"
    posted = get(proxy, "/items/9", method="POST")
    assert posted.cache == "BYPASS"
    assert origin.seen[-1].method == "POST"
    assert get(proxy, "/items/9").cache == "MISS"  # RFC 9111 §4.4


def test_purge_removes_entries(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/items/5"] = json_reply({"v": 1}, "max-age=60")
    proxy = proxy_factory()
    get(proxy, "/items/5")
    assert proxy.store.purge("/items/", prefix=True) == 1
    assert get(proxy, "/items/5").cache == "MISS"


def test_client_etag_gets_a_304_from_the_cache(origin: Origin, proxy_factory: Factory) -> None:
    origin.routes["/etag"] = json_reply({"v": 1}, "max-age=60", ETag='"abc"')
    proxy = proxy_factory()
    get(proxy, "/etag")
    answer = get(proxy, "/etag", [("If-None-Match", 'W/"abc"')])
    assert (answer.response.status, answer.response.body, answer.cache) == (304, b"", "HIT")


def test_an_entry_stored_between_our_read_and_our_lock_is_used_not_refetched(
    origin: Origin, proxy_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Race: our GET missed, then another environment stored the entry, then we took the lock."""
    origin.routes["/race"] = json_reply({"v": 1}, "max-age=60")
    other, proxy = proxy_factory(), proxy_factory()
    real_try_lock = proxy.store.try_lock

    def lock_after_the_other_stored(key: CacheKey, token: str, ttl: float) -> bool:
        assert get(other, "/race").cache == "MISS"  # the other environment fetches and stores in between
        return real_try_lock(key, token, ttl)

    monkeypatch.setattr(proxy.store, "try_lock", lock_after_the_other_stored)
    answer = get(proxy, "/race")
    assert answer.cache == "HIT"
    assert "collapsed" in (answer.response.headers.get("cache-status") or "")
    assert origin.count("/race") == 1


def test_during_an_outage_a_stale_key_costs_the_upstream_one_request_per_backoff(
    origin: Origin, proxy_factory: Factory
) -> None:
    """After a failed refresh the stale entry is served without asking the upstream again for
    OUTCOME_TTL_SECONDS. Checked from each request's own start and end times, so a slow machine (a request
    taking seconds) changes how many attempts there are, never whether the rule holds. Exact back-off on virtual
    time: tests/unit/test_service.py."""
    origin.routes["/o"] = json_reply({"o": 1}, "max-age=1")
    proxy = proxy_factory(CACHE_STALE_WHILE_REVALIDATE_SECONDS="0")
    get(proxy, "/o")
    time.sleep(1.1)
    origin.routes["/o"] = Reply(503, body=b"down")
    timed: list[tuple[float, float, Outcome]] = []
    for _ in range(10):
        started = time.monotonic()
        answer = get(proxy, "/o")
        timed.append((started, time.monotonic(), answer))
    assert [a.cache for _, _, a in timed] == ["STALE"] * 10
    assert all(a.response.body == b'{"o": 1}' for _, _, a in timed)
    assert contacted_upstream(timed[0][2])
    last_attempt = timed[0]
    for started, ended, answer in timed[1:]:
        if contacted_upstream(answer):  # allowed only once the last attempt's marker has aged out
            assert ended - last_attempt[0] >= OUTCOME_TTL_SECONDS
            last_attempt = (started, ended, answer)
        else:  # served from the marker: that needs a marker younger than OUTCOME_TTL_SECONDS
            assert started - last_attempt[1] <= OUTCOME_TTL_SECONDS
    attempts = sum(contacted_upstream(a) for _, _, a in timed)
    assert origin.count("/o") == 1 + attempts  # the fill, then one request per attempt
    time.sleep(OUTCOME_TTL_SECONDS + 0.1)
    assert contacted_upstream(get(proxy, "/o"))  # the back-off is over: one more attempt
    assert origin.count("/o") == 2 + attempts
