"""CachingProxy (proxy/service.py) on virtual time: an in-memory store, a scripted upstream, no sockets, no sleeping.

Every Lambda execution environment is its own CachingProxy over one shared store and upstream, with the clock,
monotonic and sleep seams on one VirtualTime (tests/support/virtual_time.py): lock TTLs, polls, timeouts and the
Lambda deadline play out exactly, in milliseconds of real time, whatever else the machine is doing. Concurrent
environments are real threads whose waits are virtual. The store double is held to Redis's behaviour by the
store contract (tests/contract). Each test names the RFC section or the coalescing rule (proxy/service.py's
docstring) it checks; tests/integration covers the same paths with redis-server and a real HTTP origin.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from proxy.coalescing import LOCK_MARGIN_SECONDS, OUTCOME_TTL_SECONDS, POLL_MAX_SECONDS
from proxy.config import Policy, Settings
from proxy.http import Headers, Request
from proxy.keys import CacheKey, key_for, split_target
from proxy.outcome import Outcome
from proxy.service import DEADLINE_MARGIN_SECONDS, CachingProxy
from tests.support.memory_store import MemoryStore
from tests.support.scripted_upstream import ScriptedUpstream
from tests.support.virtual_time import VirtualTime

UPSTREAM_TIMEOUT = 5.0
LOCK_TTL = UPSTREAM_TIMEOUT + LOCK_MARGIN_SECONDS
POLICY = Policy(default_ttl=300, stale_while_revalidate=30, stale_if_error=600, negative_ttl=10, max_body_bytes=10_000)
JSON = ("content-type", "application/json")


@dataclass
class Answer:
    outcome: Outcome
    at: float  # virtual monotonic time the answer was ready

    @property
    def status(self) -> int:
        return self.outcome.response.status

    @property
    def cache(self) -> str:
        return self.outcome.cache

    @property
    def body(self) -> bytes:
        return self.outcome.response.body

    @property
    def params(self) -> dict[str, str | None]:
        """Cache-Status (RFC 9211) parameters of our cache: {"fwd": "stale", "collapsed": None, ...}."""
        value = self.outcome.response.headers.get("cache-status") or ""
        name, *params = [part.strip() for part in value.split(";")]
        assert name == "cachelab", value
        pairs = (p.partition("=") for p in params)
        return {k: (v if sep else None) for k, sep, v in pairs}

    @property
    def contacted_upstream(self) -> bool:
        """The documented rule: a forward ("fwd=") that was not collapsed into another environment's."""
        return "fwd" in self.params and "collapsed" not in self.params


@dataclass
class World:
    time: VirtualTime
    store: MemoryStore
    upstream: ScriptedUpstream
    settings: Settings

    def environment(self) -> CachingProxy:
        """One Lambda execution environment: its own CachingProxy, the shared store and upstream."""
        return CachingProxy(
            self.store,
            self.upstream,
            self.settings,
            clock=self.time.time,
            monotonic=self.time.monotonic,
            sleep=self.time.sleep,
        )

    def get(
        self,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        *,
        method: str = "GET",
        env: CachingProxy | None = None,
        deadline_in: float | None = None,
    ) -> Answer:
        path, query = split_target(target)
        proxy = env or self.environment()
        deadline = None if deadline_in is None else self.time.monotonic() + deadline_in
        outcome = proxy.handle(Request(method, path, query, Headers(headers or [])), "req-1", deadline)
        return Answer(outcome, self.time.monotonic())

    def key(self, target: str) -> CacheKey:
        path, query = split_target(target)
        return key_for(path, query, Headers(), ())


@pytest.fixture
def world() -> Iterator[World]:
    clock = VirtualTime()
    settings = Settings(upstream_url="http://upstream.invalid", upstream_timeout=UPSTREAM_TIMEOUT, policy=POLICY)
    upstream = ScriptedUpstream(clock.sleep, clock.monotonic)
    yield World(clock, MemoryStore(clock.monotonic), upstream, settings)
    assert upstream.pending == 0, "scripted upstream answers were never asked for"


def fill(world: World, target: str, cache_control: str, body: bytes = b'{"v": 1}', **headers: str) -> Answer:
    """Store `target` through the proxy (one upstream request)."""
    extra = [(name.replace("_", "-"), value) for name, value in headers.items()]
    world.upstream.reply(200, [JSON, ("cache-control", cache_control), *extra], body)
    answer = world.get(target)
    assert answer.cache == "MISS", answer.params
    assert "stored" in answer.params, answer.params
    return answer


# ---------------------------------------------------------------------------------------------- hits
def test_a_miss_is_stored_then_hits_with_its_age(world: World) -> None:
    """RFC 9111 §4.2.3: Age is the corrected initial age (here the response delay) plus the resident time."""
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=60")], b'{"id": 1}', takes=0.4)
    first = world.get("/items/1")
    assert (first.cache, first.status, first.body) == ("MISS", 200, b'{"id": 1}')
    assert first.params["fwd"] == "uri-miss"
    assert "stored" in first.params
    world.time.advance(7)
    second = world.get("/items/1")
    assert (second.cache, second.body) == ("HIT", b'{"id": 1}')
    assert second.outcome.response.headers.get("age") == "7"  # 0.4 s response delay + 7 s resident
    assert "hit" in second.params
    assert world.upstream.count == 1


def test_head_is_answered_from_the_get_entry_without_a_body(world: World) -> None:
    """RFC 9110 §9.3.2: HEAD shares GET's entry; the answer carries no content."""
    fill(world, "/items/2", "max-age=60")
    head = world.get("/items/2", method="HEAD")
    assert (head.cache, head.status, head.body) == ("HIT", 200, b"")
    assert world.upstream.count == 1


def test_an_expired_entry_is_revalidated_and_freshened_by_a_304(world: World) -> None:
    """RFC 9111 §4.3.1 (If-None-Match from the stored ETag) and §4.3.4 (the 304's fields update the entry)."""
    fill(world, "/v", "max-age=10", etag='"v1"')
    world.time.advance(11)
    world.upstream.reply(304, [("etag", '"v1"'), ("cache-control", "max-age=100")], b"")
    renewed = world.get("/v")
    assert (renewed.cache, renewed.status, renewed.body) == ("HIT", 200, b'{"v": 1}')
    assert (renewed.params["fwd"], renewed.params["fwd-status"]) == ("stale", "304")
    assert world.upstream.sent[-1].headers.get("if-none-match") == '"v1"'
    world.time.advance(90)  # fresh for the 304's max-age=100, not the original 10
    assert world.get("/v").cache == "HIT"
    assert world.upstream.count == 2


def test_a_no_store_request_is_forwarded_without_lock_or_store(world: World) -> None:
    """RFC 9111 §5.2.1.5: no-store in the request: nothing of this exchange is stored."""
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=60")])
    answer = world.get("/ns", [("cache-control", "no-store")])
    assert answer.cache == "MISS"
    assert world.store.calls["try_lock"] == world.store.calls["put"] == 0
    assert world.store.get(world.key("/ns")) is None


def test_an_unsafe_method_passes_through_and_invalidates(world: World) -> None:
    """RFC 9111 §4.4: a non-error answer to an unsafe method invalidates the target URI's entries."""
    fill(world, "/items/9", "max-age=60")
    world.upstream.reply(204, [], b"")
    posted = world.get("/items/9", method="POST")
    assert (posted.cache, posted.status) == ("BYPASS", 204)
    assert world.upstream.sent[-1].method == "POST"
    assert world.store.get(world.key("/items/9")) is None


def test_redis_unavailable_answers_bypass_then_caches_again(world: World) -> None:
    world.store.down = True
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=60")])
    bypass = world.get("/r")
    assert (bypass.cache, bypass.status, bypass.params["fwd"]) == ("BYPASS", 200, "bypass")
    world.store.down = False
    fill(world, "/r", "max-age=60")
    assert world.get("/r").cache == "HIT"


# ---------------------------------------------------------------------------------------------- stale answers
def test_stale_while_revalidate_serves_stale_while_another_environment_refreshes(world: World) -> None:
    """RFC 5861 §3: within the window a stale entry is served while one refresh runs; only one runs."""
    fill(world, "/swr", "max-age=10, stale-while-revalidate=30", b'{"v": 1}')
    world.time.advance(15)
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=10")], b'{"v": 2}', takes=2.0)
    refresher = world.time.start(world.get, "/swr")  # takes the lock, then waits 2 s for the upstream
    world.time.advance(0.5)
    stale = world.get("/swr")
    assert (stale.cache, stale.status, stale.body) == ("STALE", 200, b'{"v": 1}')
    assert stale.params["detail"] == "stale-while-revalidate"
    assert stale.at == pytest.approx(15.5), "answered at once, not after the refresh"
    [refreshed] = world.time.join(refresher)
    assert (refreshed.cache, refreshed.body) == ("MISS", b'{"v": 2}')
    assert world.get("/swr").body == b'{"v": 2}'
    assert world.upstream.count == 2


def test_past_the_stale_while_revalidate_window_a_request_waits_for_the_refresh(world: World) -> None:
    """RFC 5861 §3: once the window has passed, the stale entry is not served without validation."""
    fill(world, "/late", "max-age=10, stale-while-revalidate=5")
    world.time.advance(20)
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=10")], b'{"v": 2}', takes=1.0)
    refresher = world.time.start(world.get, "/late")
    world.time.advance(0.2)
    waited = world.get("/late")
    assert (waited.cache, waited.body) == ("HIT", b'{"v": 2}')
    assert "collapsed" in waited.params
    assert 21.0 <= waited.at <= 21.0 + POLL_MAX_SECONDS + 1e-9
    world.time.join(refresher)
    assert world.upstream.count == 2


@pytest.mark.parametrize(
    ("failure", "fwd_status"),
    [(500, "500"), (502, "502"), (503, "503"), (504, "504"), ("connect", None), ("timeout", None), ("protocol", None)],
)
def test_stale_if_error_answers_with_the_stale_entry(world: World, failure: int | str, fwd_status: str | None) -> None:
    """RFC 5861 §4: a 5xx, a timeout or a connection failure while refreshing: the stale entry is served."""
    fill(world, "/sie", "max-age=10, stale-while-revalidate=0, stale-if-error=60", b'{"v": 1}')
    world.time.advance(30)
    if isinstance(failure, int):
        world.upstream.reply(failure, [JSON], b'{"error": "down"}')
    elif failure == "timeout":
        world.upstream.reply(200, [JSON], takes=60)  # longer than the 5 s upstream timeout
    else:
        world.upstream.fail(failure)
    stale = world.get("/sie")
    assert (stale.cache, stale.status, stale.body) == ("STALE", 200, b'{"v": 1}')
    assert (stale.params["fwd"], stale.params["detail"]) == ("stale", "stale-if-error")
    assert stale.params.get("fwd-status") == fwd_status
    if failure == "timeout":
        assert stale.at == pytest.approx(30 + UPSTREAM_TIMEOUT)


def test_past_the_stale_if_error_window_the_failure_is_passed_on(world: World) -> None:
    """RFC 5861 §4: only within stale-if-error; after it the upstream's 5xx (or our 502/504) is the answer."""
    fill(world, "/gone", "max-age=10, stale-while-revalidate=0, stale-if-error=60")
    world.time.advance(10 + 61)
    world.upstream.reply(503, [JSON, ("retry-after", "5")], b'{"error": "down"}')
    passed = world.get("/gone")
    assert (passed.cache, passed.status, passed.body) == ("MISS", 503, b'{"error": "down"}')
    assert passed.outcome.response.headers.get("retry-after") == "5"
    world.time.advance(OUTCOME_TTL_SECONDS)
    world.upstream.fail("connect")
    unreachable = world.get("/gone")
    assert unreachable.status == 502
    assert json.loads(unreachable.body)["error"] == "upstream unreachable"


def test_a_failed_refresh_is_retried_once_per_backoff_not_per_request(world: World) -> None:
    """The failure marker: after a failed refresh the stale entry is served without asking the upstream again
    until OUTCOME_TTL_SECONDS have passed, so an outage costs one upstream request per key per back-off."""
    fill(world, "/o", "max-age=10, stale-while-revalidate=0", b'{"o": 1}')
    world.time.advance(11)
    world.upstream.reply(503, [], b"down")
    answers = []
    for _ in range(10):
        answers.append(world.get("/o"))
        world.time.advance(OUTCOME_TTL_SECONDS / 20)
    assert [a.cache for a in answers] == ["STALE"] * 10
    assert all(a.body == b'{"o": 1}' for a in answers)
    assert [a.contacted_upstream for a in answers] == [True] + [False] * 9
    world.time.advance(OUTCOME_TTL_SECONDS)
    world.upstream.reply(503, [], b"down")
    assert world.get("/o").contacted_upstream
    assert world.upstream.count == 3  # the fill, then one attempt per back-off


# ---------------------------------------------------------------------------------------------- coalescing
def run_together(world: World, target: str, count: int) -> list[Answer]:
    """`count` environments ask for `target` at the same instant."""
    tasks = [world.time.start(world.get, target) for _ in range(count)]
    answers: list[Answer] = world.time.join(*tasks)
    return answers


def test_concurrent_misses_reach_the_upstream_once(world: World) -> None:
    """One lock holder fetches; the others poll the entry and answer from it (collapsed)."""
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=60")], b'{"hot": 1}', takes=0.3)
    answers = run_together(world, "/hot", 20)
    assert all((a.status, a.body) == (200, b'{"hot": 1}') for a in answers)
    assert world.upstream.count == 1
    assert sum(a.contacted_upstream for a in answers) == 1
    assert sorted(a.cache for a in answers) == ["HIT"] * 19 + ["MISS"]
    assert all("collapsed" in a.params for a in answers if a.cache == "HIT")
    assert max(a.at for a in answers) <= 0.3 + POLL_MAX_SECONDS, "waiters answer within one poll of the fill"


def test_waiters_take_the_holders_failure_instead_of_queueing(world: World) -> None:
    """The failure marker: a holder whose fetch failed tells the waiters, who answer at once."""
    world.upstream.reply(503, [JSON], b'{"error": "down"}', takes=0.3)
    answers = run_together(world, "/down", 20)
    assert all(a.status == 503 for a in answers)
    assert world.upstream.count == 1
    assert sum(a.contacted_upstream for a in answers) == 1
    collapsed = [a for a in answers if not a.contacted_upstream]
    assert all(a.params["detail"] == "collapsed-failure" for a in collapsed)
    assert json.loads(collapsed[0].body)["error"] == "upstream failed"
    assert max(a.at for a in answers) <= 0.3 + POLL_MAX_SECONDS


def test_waiters_serve_stale_when_the_holders_refresh_fails(world: World) -> None:
    """RFC 5861 §4 for the waiters too: the holder's failure plus a stale entry is a STALE answer for everyone."""
    fill(world, "/s", "max-age=10, stale-while-revalidate=0", b'{"s": 1}')
    world.time.advance(11)
    world.upstream.reply(500, [], b"boom", takes=0.3)
    answers = run_together(world, "/s", 10)
    assert [(a.cache, a.body) for a in answers] == [("STALE", b'{"s": 1}')] * 10
    assert world.upstream.count == 2  # the fill and one refresh


def test_an_uncacheable_answer_lets_every_waiter_fetch_its_own(world: World) -> None:
    """The "pass" marker: a response that may not be stored cannot be shared, so waiters stop waiting."""
    for _ in range(3):
        world.upstream.reply(200, [JSON, ("cache-control", "private")], b'{"mine": 1}', takes=0.3)
    answers = run_together(world, "/private", 3)
    assert all((a.cache, a.status) == ("MISS", 200) for a in answers)
    assert world.upstream.count == 3
    assert max(a.at for a in answers) <= 2 * 0.3 + POLL_MAX_SECONDS, "no waiter sat out the lock's TTL"


def test_a_dead_lock_holder_blocks_nobody_beyond_the_lock_ttl(world: World) -> None:
    """A holder that crashed never unlocks: its lock expires after LOCK_TTL and a waiter takes over."""
    assert world.store.try_lock(world.key("/orphan"), "crashed-environment", LOCK_TTL)
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=60")])
    answer = world.get("/orphan")
    assert (answer.cache, answer.status) == ("MISS", 200)
    assert "stored" in answer.params, "the waiter took the lock over and stored the entry"
    assert LOCK_TTL <= answer.at <= LOCK_TTL + POLL_MAX_SECONDS
    assert world.get("/orphan").cache == "HIT"


# ---------------------------------------------------------------------------------------------- the deadline
def test_no_time_left_before_the_deadline_is_a_504_without_an_upstream_request(world: World) -> None:
    answer = world.get("/late", deadline_in=DEADLINE_MARGIN_SECONDS - 0.05)
    assert answer.status == 504
    assert json.loads(answer.body)["error"] == "upstream timed out"
    assert world.upstream.count == 0


def test_the_upstream_timeout_is_cut_to_the_time_left(world: World) -> None:
    """The function's deadline bounds the upstream call: the proxy answers its own 504 before Lambda cuts it off."""
    world.upstream.reply(200, [JSON], takes=60)
    answer = world.get("/slow", deadline_in=3.0)
    assert answer.status == 504
    assert world.upstream.sent[0].timeout == pytest.approx(3.0 - DEADLINE_MARGIN_SECONDS)
    assert answer.at == pytest.approx(3.0 - DEADLINE_MARGIN_SECONDS)


def test_a_waiter_stops_waiting_in_time_to_fetch_before_its_deadline(world: World) -> None:
    """A waiter keeps time for its own fetch: a whole upstream timeout (plus margin), or half of what is left when
    that is less; it waits until then at most."""
    assert world.store.try_lock(world.key("/stuck"), "slow-environment", LOCK_TTL)
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=60")], takes=0.1)
    deadline_in = 8.0  # the lock outlives the wait
    answer = world.get("/stuck", deadline_in=deadline_in)
    assert (answer.cache, answer.status) == ("MISS", 200)
    assert answer.params["detail"] == "lock-wait-timeout"
    gave_up = world.upstream.sent[0].at
    kept = min(UPSTREAM_TIMEOUT + DEADLINE_MARGIN_SECONDS, deadline_in / 2)
    assert deadline_in - kept <= gave_up <= deadline_in - kept + POLL_MAX_SECONDS
    assert answer.at < deadline_in


def test_with_a_budget_shorter_than_the_upstream_timeout_waiters_still_wait(world: World) -> None:
    """A function timeout below the upstream timeout (2 s against 5 s) must not switch coalescing off: waiters keep
    half of their time for a fetch of their own and wait the other half for the holder."""
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=60")], b'{"hot": 1}', takes=0.3)
    tasks = [world.time.start(functools.partial(world.get, "/short", deadline_in=2.0)) for _ in range(20)]
    answers: list[Answer] = world.time.join(*tasks)
    assert all((a.status, a.body) == (200, b'{"hot": 1}') for a in answers)
    assert world.upstream.count == 1
    assert sorted(a.cache for a in answers) == ["HIT"] * 19 + ["MISS"]


def test_a_waiter_whose_wait_ends_as_the_lock_expires_takes_it_over(world: World) -> None:
    """The wait is bounded by the lock's TTL: a waiter that reaches that bound finds the dead holder's lock gone and
    takes it (and stores what it fetches) instead of fetching without the lock."""
    assert world.store.try_lock(world.key("/expiring"), "crashed-environment", LOCK_TTL)
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=60")])
    answer = world.get("/expiring", deadline_in=LOCK_TTL + UPSTREAM_TIMEOUT + 1.0)
    assert "stored" in answer.params, answer.params
    assert world.get("/expiring").cache == "HIT"


def test_waiters_collapsed_on_a_stale_refresh_report_fwd_stale(world: World) -> None:
    """RFC 9211 §2.2: they went forward (through the holder) because the entry was stale, not because it was missing."""
    fill(world, "/refresh", "max-age=10, stale-while-revalidate=0")
    world.time.advance(11)
    world.upstream.reply(200, [JSON, ("cache-control", "max-age=60")], takes=0.3)
    answers = run_together(world, "/refresh", 5)
    assert world.upstream.count == 2
    assert [a.params["fwd"] for a in answers] == ["stale"] * 5
    assert sum("collapsed" in a.params for a in answers) == 4
