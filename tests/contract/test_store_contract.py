"""One contract for the cache store, run against RedisStore on fakeredis and on a real redis-server, and against
the unit tests' in-memory store (tests/support/memory_store.py), so that double behaves as Redis does."""

from __future__ import annotations

import time
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from proxy.http import Headers
from proxy.keys import CacheKey, key_for, split_target
from proxy.ports import Store, StoreUnavailable
from proxy.store import RedisStore
from tests.conftest import RedisServer
from tests.support.memory_store import MemoryStore


@pytest.fixture(
    params=[
        "memory",
        "fakeredis",
        pytest.param("redis-server", marks=pytest.mark.redis_server),
    ]
)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    client: redis.Redis
    if request.param == "fakeredis":
        client = fakeredis.FakeRedis()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = server.client()
    yield RedisStore(client)
    client.close()


def pttl(store: Store, name: str) -> int:
    """Milliseconds left on a raw key (Redis PTTL)."""
    if isinstance(store, MemoryStore):
        return store.pttl(name)
    assert isinstance(store, RedisStore)
    return int(store.client.pttl(name))


def k(target: str, **headers: str) -> CacheKey:
    path, query = split_target(target)
    keyed = tuple(sorted(headers)) if headers else ()
    return key_for(path, query, Headers(list(headers.items())), keyed)


def test_get_of_a_missing_key_is_none(store: Store) -> None:
    assert store.get(k("/nothing")) is None


def test_put_then_get_round_trips_bytes_with_a_ttl(store: Store) -> None:
    key = k("/items/1")
    store.put(key, b"\x00\xffdata", ttl_seconds=30)
    assert store.get(key) == b"\x00\xffdata"
    assert 29_000 <= pttl(store, key.entry) <= 30_000
    assert 29_000 <= pttl(store, key.variant_index) <= 30_000


def test_entries_expire(store: Store) -> None:
    key = k("/short")
    store.put(key, b"x", ttl_seconds=0.05)
    deadline = time.monotonic() + 2
    while store.get(key) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.get(key) is None


def test_the_index_lives_as_long_as_its_longest_variant(store: Store) -> None:
    long_lived, short_lived = k("/v", **{"accept-language": "de"}), k("/v", **{"accept-language": "fr"})
    store.put(long_lived, b"de", ttl_seconds=100)
    store.put(short_lived, b"fr", ttl_seconds=10)
    assert pttl(store, long_lived.variant_index) > 90_000


def test_lock_is_exclusive_and_only_its_holder_releases_it(store: Store) -> None:
    key = k("/lock")
    assert store.try_lock(key, "a", 5)
    assert not store.try_lock(key, "b", 5)
    store.unlock(key, "b")  # not the holder: no effect
    assert store.poll(key).lock == "a"
    store.unlock(key, "a")
    assert store.poll(key).lock is None
    assert store.try_lock(key, "b", 5)


def test_a_dead_holders_lock_expires(store: Store) -> None:
    key = k("/dead")
    assert store.try_lock(key, "dead", 0.05)
    time.sleep(0.1)
    assert store.try_lock(key, "alive", 5)


def test_poll_reads_entry_lock_and_outcome_in_one_go(store: Store) -> None:
    key = k("/poll")
    store.put(key, b"e", 5)
    store.try_lock(key, "t", 5)
    store.set_outcome(key, b"o", 5)
    polled = store.poll(key)
    assert (polled.entry, polled.lock, polled.outcome) == (b"e", "t", b"o")


def test_delete_uri_removes_every_variant_of_one_uri_only(store: Store) -> None:
    de, fr, other = k("/p?a=1", **{"x": "de"}), k("/p?a=1", **{"x": "fr"}), k("/p?a=2", **{"x": "de"})
    for key in (de, fr, other):
        store.put(key, b"v", 60)
    assert store.delete_uri(de.uri, de.path) == 2
    assert store.get(de) is None
    assert store.get(fr) is None
    assert store.get(other) == b"v"


def test_purge_exact_uri_path_and_prefix(store: Store) -> None:
    targets = ["/items/1", "/items/1?fields=a", "/items/10", "/items/2", "/other", "/items"]
    for target in targets:
        store.put(k(target), target.encode(), 60)
    assert store.purge("/items/1?fields=a") == 1  # that exact URI
    assert store.get(k("/items/1")) is not None
    store.put(k("/items/1?fields=a"), b"again", 60)
    assert store.purge("/items/1") == 2  # the path, with every query
    assert store.get(k("/items/10")) is not None
    assert store.purge("/items/", prefix=True) == 2  # /items/10 and /items/2
    assert store.get(k("/items")) is not None
    assert store.get(k("/other")) is not None
    assert store.purge("/nothing/", prefix=True) == 0


def test_purge_matches_the_canonical_path(store: Store) -> None:
    store.put(k("/a b/c?y=2&x=1"), b"v", 60)
    assert store.purge("/a%20b/./c?x=1&y=2") == 1


def test_purge_treats_glob_characters_literally(store: Store) -> None:
    store.put(k("/a*"), b"v", 60)
    store.put(k("/ab"), b"v", 60)
    assert store.purge("/a*") == 1
    assert store.get(k("/ab")) == b"v"


def test_long_paths_are_purged_too(store: Store) -> None:
    long = "/" + "x" * 500
    store.put(k(long), b"v", 60)
    assert store.purge(long) == 1


def test_failures_raise_store_unavailable_and_open_the_breaker() -> None:
    store = RedisStore(fakeredis.FakeRedis(server=fakeredis.FakeServer()))
    store.client.connection_pool.connection_kwargs["server"].connected = False
    for _ in range(3):
        with pytest.raises(StoreUnavailable):
            store.get(k("/x"))
    assert store.breaker.state == "open"
    with pytest.raises(StoreUnavailable, match="breaker is open"):
        store.get(k("/x"))


def test_outcome_markers_expire(store: Store) -> None:
    key = k("/outcome")
    store.set_outcome(key, b"failed", 0.05)
    assert store.poll(key).outcome == b"failed"
    deadline = time.monotonic() + 2
    while store.poll(key).outcome is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.poll(key).outcome is None


def test_a_lock_taken_after_expiry_belongs_to_the_new_holder_only(store: Store) -> None:
    key = k("/takeover")
    assert store.try_lock(key, "old", 0.05)
    time.sleep(0.1)
    assert store.try_lock(key, "new", 5)
    store.unlock(key, "old")  # the old holder finishing late must not release the new holder's lock
    assert store.poll(key).lock == "new"
