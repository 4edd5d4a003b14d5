"""The proxy against a real local Redis Cluster (three masters on loopback), as ElastiCache Serverless runs only
in cluster mode: the store contract, MISS/HIT, coalescing and purges across hash slots, and shard failures.

The servers run with `cluster-require-full-coverage no`, so a dead shard does not stop the live ones.
"""

from __future__ import annotations

import collections
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachelab.events import build_event
from proxy.config import Settings
from proxy.http import Headers, Request
from proxy.invalidate import Invalidation, apply
from proxy.keys import CacheKey, key_for, split_target
from proxy.outcome import Outcome
from proxy.service import CachingProxy
from proxy.store import CircuitBreaker, RedisStore, make_client
from proxy.upstream import Urllib3Upstream
from tests.contract import test_store_contract as contract
from tests.reliability.support import EchoOrigin, LocalCluster, Reply, lambda_app

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

TARGETS = [f"/items/{i}" for i in range(45)]


def settings(cluster_url: str, upstream: str = "http://127.0.0.1:9") -> Settings:
    return Settings.from_env({"UPSTREAM_URL": upstream, "REDIS_URL": cluster_url, "REDIS_CLUSTER": "true"})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if shutil.which("redis-cli") is None or shutil.which("redis-server") is None:
        pytest.fail("redis-server and redis-cli are needed: apt-get install redis-server (it brings redis-tools)")
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    local.start()
    yield local
    local.stop()


@pytest.fixture
def healthy(cluster: LocalCluster) -> LocalCluster:
    """Every node up (a test may have killed or paused one), the cluster ok, no keys."""
    for port, proc in list(cluster.procs.items()):
        if proc.poll() is not None:
            cluster.restart(port)
        else:
            os.kill(proc.pid, signal.SIGCONT)
    cluster.wait_ok()
    cluster.flush()
    return cluster


@pytest.fixture
def store(healthy: LocalCluster) -> Iterator[RedisStore]:
    """The contract's `store`: a RedisStore on the cluster client the proxy makes (REDIS_CLUSTER=true)."""
    made = RedisStore(make_client(settings(healthy.url)))
    yield made
    made.client.close()


# The store contract (tests/contract), run again on the cluster client: each test below is the contract's own.
test_contract_get_of_a_missing_key_is_none = contract.test_get_of_a_missing_key_is_none
test_contract_put_then_get_round_trips_bytes_with_a_ttl = contract.test_put_then_get_round_trips_bytes_with_a_ttl
test_contract_the_index_lives_as_long_as_its_longest_variant = (
    contract.test_the_index_lives_as_long_as_its_longest_variant
)
test_contract_lock_is_exclusive_and_only_its_holder_releases_it = (
    contract.test_lock_is_exclusive_and_only_its_holder_releases_it
)
test_contract_poll_reads_entry_lock_and_outcome_in_one_go = contract.test_poll_reads_entry_lock_and_outcome_in_one_go
test_contract_delete_uri_removes_every_variant_of_one_uri_only = (
    contract.test_delete_uri_removes_every_variant_of_one_uri_only
)
test_contract_purge_exact_uri_path_and_prefix = contract.test_purge_exact_uri_path_and_prefix
test_contract_purge_treats_glob_characters_literally = contract.test_purge_treats_glob_characters_literally
test_contract_outcome_markers_expire = contract.test_outcome_markers_expire
test_contract_a_lock_taken_after_expiry_belongs_to_the_new_holder_only = (
    contract.test_a_lock_taken_after_expiry_belongs_to_the_new_holder_only
)


# ---------------------------------------------------------------------------------------------- the proxy
@pytest.fixture
def proxy(healthy: LocalCluster, origin: EchoOrigin) -> Iterator[CachingProxy]:
    config = settings(healthy.url, origin.url)
    made = CachingProxy(RedisStore.from_settings(config), Urllib3Upstream(config.upstream_url), config)
    yield made
    made.store.close()  # type: ignore[attr-defined]


def get(proxy: CachingProxy, target: str) -> Outcome:
    path, query = split_target(target)
    return proxy.handle(Request("GET", path, query, Headers()), "test")


def key(target: str) -> CacheKey:
    path, query = split_target(target)
    return key_for(path, query, Headers(), ())


def shard_of(proxy: CachingProxy, target: str) -> int:
    return int(proxy.store.client.get_node_from_key(key(target).entry).port)  # type: ignore[attr-defined]


def test_miss_then_hit_on_every_shard(proxy: CachingProxy, origin: EchoOrigin, healthy: LocalCluster) -> None:
    assert [get(proxy, t).cache for t in TARGETS] == ["MISS"] * len(TARGETS)
    answers = [get(proxy, t) for t in TARGETS]
    assert [a.cache for a in answers] == ["HIT"] * len(TARGETS)
    assert [a.response.body.decode() for a in answers] == TARGETS
    assert origin.count() == len(TARGETS)
    assert {shard_of(proxy, t) for t in TARGETS} == set(healthy.ports)  # the keys really live on every shard


def test_concurrent_misses_are_coalesced_on_a_cluster(proxy: CachingProxy, origin: EchoOrigin) -> None:
    origin.script = lambda seen: Reply(headers=[("Cache-Control", "max-age=60")], delay=0.3)
    answers: list[Outcome] = []
    lock = threading.Lock()

    def one() -> None:
        answer = get(proxy, "/hot")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(answers) == 20
    assert {a.response.status for a in answers} == {200}
    assert {a.response.body for a in answers} == {b"/hot"}
    assert origin.count() == 1


def test_invalidation_purges_across_shards(proxy: CachingProxy, origin: EchoOrigin) -> None:
    for target in [*TARGETS, "/other/1"]:
        get(proxy, target)
    result = apply(proxy.store, Invalidation(prefixes=("/items/",)))  # type: ignore[arg-type]
    assert result.purged == len(TARGETS)
    assert {get(proxy, t).cache for t in TARGETS} == {"MISS"}
    assert get(proxy, "/other/1").cache == "HIT"


# ---------------------------------------------------------------------------------------------- failures
def wait_until_cached(proxy: CachingProxy, targets: list[str], timeout: float = 45.0) -> None:
    """Request `targets` until each answers HIT (breakers close after their cool-down; bounded)."""
    deadline = time.monotonic() + timeout
    pending = list(targets)
    while pending and time.monotonic() < deadline:
        pending = [t for t in pending if get(proxy, t).cache != "HIT"]
        if pending:
            time.sleep(0.2)
    assert not pending, f"still not cached after {timeout:.0f} s: {pending[:5]}"


def test_a_dead_shard_bypasses_its_own_keys_only_then_recovers(proxy: CachingProxy, healthy: LocalCluster) -> None:
    for target in TARGETS:
        get(proxy, target)
    victim = healthy.ports[1]  # not the node of REDIS_URL
    on_victim = [t for t in TARGETS if shard_of(proxy, t) == victim]
    elsewhere = [t for t in TARGETS if t not in on_victim]
    assert on_victim
    assert elsewhere
    healthy.kill(victim)
    seen: collections.Counter[tuple[bool, str, int]] = collections.Counter()
    rng = random.Random(7)
    for _ in range(4):  # random order: dead-shard keys in a row must not trip the live shards' breakers
        for target in rng.sample(TARGETS, len(TARGETS)):
            answer = get(proxy, target)
            seen[(target in on_victim, answer.cache, answer.response.status)] += 1
    assert seen == {(True, "BYPASS", 200): 4 * len(on_victim), (False, "HIT", 200): 4 * len(elsewhere)}

    healthy.restart(victim)  # back with its slots, without its data
    wait_until_cached(proxy, on_victim)
    assert {get(proxy, t).cache for t in elsewhere} == {"HIT"}


def test_a_hung_shard_costs_its_keys_a_few_timeouts_then_nothing(healthy: LocalCluster, origin: EchoOrigin) -> None:
    """A paused shard: its keys answer BYPASS, the others HIT, and its breaker opens after 3 failed calls, so
    it costs a handful of socket timeouts, not one per key. The breakers run on a clock the test holds still
    (no probe during the pause); the bound is what one timeout per key would have cost, with 150 keys
    (about 50 on the paused shard): 10 times what the breaker costs, so a busy machine cannot blur the two."""
    config = settings(healthy.url, origin.url)
    now = [0.0]
    proxy = CachingProxy(
        RedisStore(make_client(config), CircuitBreaker(clock=lambda: now[0])),
        Urllib3Upstream(config.upstream_url),
        config,
    )
    targets = [f"/items/{i}" for i in range(150)]
    try:
        for target in targets:
            get(proxy, target)
        victim = healthy.ports[2]
        on_victim = [t for t in targets if shard_of(proxy, t) == victim]
        elsewhere = [t for t in targets if t not in on_victim]
        one_timeout_per_key = len(on_victim) * config.redis_socket_timeout
        assert one_timeout_per_key >= 10 * 3 * config.redis_socket_timeout
        os.kill(healthy.procs[victim].pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            answers = {t: get(proxy, t) for t in targets}
            elapsed = time.monotonic() - started
        finally:
            os.kill(healthy.procs[victim].pid, signal.SIGCONT)
        assert {answers[t].response.status for t in targets} == {200}
        assert {answers[t].cache for t in on_victim} == {"BYPASS"}
        assert {answers[t].cache for t in elsewhere} == {"HIT"}
        assert elapsed < one_timeout_per_key, elapsed
        now[0] += 60  # past the cool-down: the next call probes the shard, finds it back and closes the breaker
        wait_until_cached(proxy, on_victim)
    finally:
        proxy.store.client.close()  # type: ignore[attr-defined]


def test_a_cold_start_with_the_cluster_down_answers_then_caches(tmp_path: Path, origin: EchoOrigin) -> None:
    """The cluster client connects when it is made: made at init, an unreachable cluster failed the function's
    init (every request a 502). Now the function starts, answers BYPASS, and uses the cluster once it is up."""
    later = LocalCluster(tmp_path / "later")  # its ports are chosen, nothing listens on them yet
    env = {"UPSTREAM_URL": origin.url, "REDIS_URL": later.url, "REDIS_CLUSTER": "true"}
    event = build_event("GET", "/items/42")
    try:
        with lambda_app(env) as app:
            first = app(event)
            assert first["statusCode"] == 200
            assert first["headers"]["x-cache"] == "BYPASS"
            later.start()
            deadline = time.monotonic() + 45
            caches: list[str] = []
            while time.monotonic() < deadline and caches[-2:] != ["MISS", "HIT"]:
                caches.append(app(event)["headers"]["x-cache"])
                time.sleep(0.1)
            assert caches[-2:] == ["MISS", "HIT"], caches
            assert "unhandled error" not in app.lines()
    finally:
        later.stop()
