"""Carries out the core's decisions with a Store and an Upstream: lookups, coalesced fetches, stale answers.

Coalescing (one upstream request per key, whatever the number of concurrent Lambda environments): on a miss one
invocation takes a short Redis lock (SET NX PX) and fetches; the others poll the entry until it appears, serve a
stale copy where RFC 5861 allows, or take over once the lock expires, so a dead holder blocks nobody for longer
than the lock's TTL. A holder whose fetch fails leaves a short "outcome" marker, so the waiters answer at once
instead of queueing one by one behind an upstream that is down.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import NamedTuple

from proxy import answers, policy, validation
from proxy.coalescing import LOCK_MARGIN_SECONDS, Coalescing, OutcomeKind, WaitEnd
from proxy.config import Settings
from proxy.entry import Entry, decode_entry
from proxy.http import Headers, Request, Response
from proxy.keys import CacheKey, InvalidTarget, canonical_target, key_for, split_target
from proxy.outcome import CacheStatus, Outcome
from proxy.ports import Store, StoreUnavailable, Upstream, UpstreamError

DEADLINE_MARGIN_SECONDS = 0.25  # time kept back from the Lambda deadline to build and return the answer
API_GATEWAY_TIMEOUT_SECONDS = 29.0  # the longest any caller waits for us
# RFC 9211 fwd values that survive into the answers of collapsed waiters (else "uri-miss").
_REFRESH_REASONS = frozenset({"stale", "request"})


class _Fetched(NamedTuple):
    response: Response | None
    error: UpstreamError | None
    elapsed_ms: float
    request_time: float
    response_time: float


class CachingProxy:
    def __init__(
        self,
        store: Store,
        upstream: Upstream,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.settings = settings
        self.policy = settings.policy
        self.coalescing = Coalescing(store, clock=clock, monotonic=monotonic, sleep=sleep)
        self._clock = clock
        self._monotonic = monotonic

    # -- entry point -----------------------------------------------------------------------------------
    def handle(self, request: Request, request_id: str, deadline: float | None = None) -> Outcome:
        """Answer `request`; `deadline` is a monotonic time by which the answer must be ready (Lambda's)."""
        if deadline is None:
            deadline = self._monotonic() + API_GATEWAY_TIMEOUT_SECONDS
        if not request.method.isupper():
            request = request._replace(method=request.method.upper())
        return _Call(self, request, request_id, deadline).run()


class _Call:
    """One request being answered (keeps the per-request state out of the long-lived CachingProxy)."""

    __slots__ = ("deadline", "head", "key", "p", "request", "request_id", "target")

    def __init__(self, proxy: CachingProxy, request: Request, request_id: str, deadline: float) -> None:
        self.p = proxy
        self.request = request
        self.request_id = request_id
        self.deadline = deadline
        self.target = canonical_target(request.path, request.query)
        self.head = request.method == "HEAD"
        self.key: CacheKey | None = None

    def run(self) -> Outcome:
        method = self.request.method
        passing = policy.pass_through(method)
        if passing is not None:
            return self._pass_through(method, passing)
        self.key = key_for(
            self.request.path, self.request.query, self.request.headers, self.p.policy.key_headers, self.target
        )
        try:
            raw = self.p.store.get(self.key)
        except StoreUnavailable:
            return self._direct(None, CacheStatus.BYPASS, "redis-unavailable")
        decision = policy.lookup(method, self.request.headers, decode_entry(raw), self.p._clock())
        if decision.action is policy.Action.SERVE and decision.entry is not None:
            if decision.stale:
                return self._from_entry(decision.entry, CacheStatus.STALE, detail=decision.reason)
            return self._from_entry(decision.entry, CacheStatus.HIT)
        if decision.action is policy.Action.UNSATISFIABLE:
            message = "not cached (the request says only-if-cached)"
            return self._error(504, message, CacheStatus.MISS, None, detail=decision.reason)
        if not decision.store:
            return self._direct(decision, CacheStatus.MISS, "no-store")
        return self._coalesced(decision)

    # -- cacheable requests (proxy.coalescing) -----------------------------------------------------------
    def _coalesced(self, decision: policy.Lookup) -> Outcome:
        assert self.key is not None
        try:
            token = self.p.coalescing.try_lock(self.key, self._lock_ttl())
        except StoreUnavailable:
            return self._direct(decision, CacheStatus.BYPASS, "redis-unavailable")
        if token is not None:
            return self._refresh_holding_lock(decision, token)
        if decision.entry is not None and decision.stale_while_revalidate:
            return self._from_entry(decision.entry, CacheStatus.STALE, detail="stale-while-revalidate")
        return self._wait(decision)

    def _refresh_holding_lock(self, decision: policy.Lookup, token: str) -> Outcome:
        assert self.key is not None
        try:
            # One read (entry and outcome together) before fetching:
            # - another invocation may have stored the entry between our read and our lock: use it, don't refetch;
            # - a refresh of this key failed moments ago: serve the stale copy without asking the upstream again,
            #   so an outage costs the upstream one request per key per OUTCOME_TTL_SECONDS, not one per request.
            polled = self.p.coalescing.peek(self.key)
            now = self.p._clock()
            latest = decode_entry(polled.entry)
            if latest is not None and _newer(latest, decision) and policy.is_fresh(latest, now):
                return self._from_entry(latest, CacheStatus.HIT, fwd=_fwd(decision), collapsed=True)
            stale = decision.entry
            if (
                stale is not None
                and self.p.coalescing.failed_recently(polled)
                and policy.may_serve_stale_on_error(stale, now)
            ):
                return self._from_entry(stale, CacheStatus.STALE, fwd="stale", collapsed=True, detail="stale-if-error")
            return self._refresh(decision)
        finally:
            self.p.coalescing.unlock(self.key, token)

    def _refresh(self, decision: policy.Lookup) -> Outcome:
        """Fetch (or revalidate) and store; called only while holding the key's lock."""
        assert self.key is not None
        fwd = _fwd(decision)
        fetched = self._send("GET", self._upstream_headers(decision.conditional), b"")
        response = fetched.response
        if response is not None and response.status == 304 and decision.entry is not None:
            if validation.validates(decision.entry, response.headers):
                plan = policy.freshen(
                    decision.entry, response.headers, fetched.request_time, fetched.response_time, self.p.policy
                )
                self._put(plan)
                entry = plan.entry or decision.entry
                return self._from_entry(entry, CacheStatus.HIT, fwd=fwd, fetched=fetched, fwd_status=304)
            # RFC 9111 §4.3.4: a 304 naming another validator updates nothing: ask for the whole response.
            fetched = self._send("GET", self._upstream_headers(()), b"")
            response = fetched.response
        failure = self._failure_of(fetched)
        if failure is not None:
            self.p.coalescing.leave(self.key, OutcomeKind.ERROR, failure)
            return self._after_failure(decision, fetched, fwd)
        assert response is not None
        plan = policy.plan_store(
            request_headers=self.request.headers,
            status=response.status,
            response_headers=response.headers,
            body=response.body,
            request_time=fetched.request_time,
            response_time=fetched.response_time,
            policy=self.p.policy,
        )
        stored = self._put(plan)
        if not stored:
            self.p.coalescing.leave(self.key, OutcomeKind.PASS, response.status)
        return self._forwarded(response, CacheStatus.MISS, fwd, fetched, stored=stored, detail=plan.reason)

    def _wait(self, decision: policy.Lookup) -> Outcome:
        """Another invocation is fetching this key: wait for its entry instead of calling the upstream."""
        assert self.key is not None
        # Wait no longer than the lock can live, and keep time to fetch ourselves if the holder never delivers: a
        # whole upstream timeout, or half of what is left when the function's budget is shorter than that (with no
        # wait at all, a short budget would send every concurrent miss upstream).
        now = self.p._monotonic()
        own_fetch = min(self.p.settings.upstream_timeout + DEADLINE_MARGIN_SECONDS, (self.deadline - now) / 2)
        until = min(now + self._lock_ttl(), self.deadline - own_fetch)
        newer_than = decision.entry.response_time if decision.entry is not None else None
        waited = self.p.coalescing.wait(self.key, newer_than=newer_than, until=until, lock_ttl=self._lock_ttl())
        if waited.end is WaitEnd.STORED and waited.entry is not None:
            return self._from_entry(waited.entry, CacheStatus.HIT, fwd=_fwd(decision), collapsed=True)
        if waited.end is WaitEnd.FAILED:
            return self._collapsed_failure(decision, waited.status)
        if waited.end is WaitEnd.LOCKED:
            return self._refresh_holding_lock(decision, waited.token)
        if waited.end is WaitEnd.UNAVAILABLE:
            return self._direct(decision, CacheStatus.BYPASS, "redis-unavailable")
        if waited.end is WaitEnd.UNCACHEABLE:
            return self._direct(decision, CacheStatus.MISS, "uncacheable")  # everyone fetches for themselves
        return self._direct(decision, CacheStatus.MISS, "lock-wait-timeout")

    def _collapsed_failure(self, decision: policy.Lookup, status: int) -> Outcome:
        if decision.entry is not None and policy.may_serve_stale_on_error(decision.entry, self.p._clock()):
            return self._from_entry(
                decision.entry, CacheStatus.STALE, fwd="stale", collapsed=True, detail="stale-if-error"
            )
        message = "upstream timed out" if status == 504 else "upstream failed"
        return self._error(
            status, message, CacheStatus.MISS, _fwd(decision), detail="collapsed-failure", collapsed=True
        )

    def _direct(self, decision: policy.Lookup | None, cache: CacheStatus, detail: str) -> Outcome:
        """Fetch without the lock and without storing (Redis down, no-store request, uncacheable response)."""
        fetched = self._send("GET", self._upstream_headers(()), b"")
        fwd = "bypass" if cache == CacheStatus.BYPASS else _fwd(decision) if decision is not None else "uri-miss"
        if self._failure_of(fetched) is not None:
            return self._after_failure(decision, fetched, fwd, cache=cache)
        assert fetched.response is not None
        return self._forwarded(fetched.response, cache, fwd, fetched, stored=False, detail=detail)

    def _after_failure(
        self, decision: policy.Lookup | None, fetched: _Fetched, fwd: str, cache: CacheStatus = CacheStatus.MISS
    ) -> Outcome:
        entry = decision.entry if decision is not None else None
        if entry is not None and policy.may_serve_stale_on_error(entry, self.p._clock()):
            status = fetched.response.status if fetched.response is not None else None
            return self._from_entry(
                entry, CacheStatus.STALE, fwd="stale", fetched=fetched, fwd_status=status, detail="stale-if-error"
            )
        if fetched.response is not None:  # an upstream 5xx with nothing to fall back on: pass it on as it is
            return self._forwarded(fetched.response, cache, fwd, fetched, stored=False, detail="upstream-error")
        error = fetched.error
        assert error is not None
        if error.kind == "timeout":
            return self._error(504, "upstream timed out", cache, fwd, fetched=fetched, detail="upstream-timeout")
        message = "upstream unreachable" if error.kind == "connect" else f"upstream failed ({error.kind})"
        return self._error(502, message, cache, fwd, fetched=fetched, detail=f"upstream-{error.kind}")

    # -- other methods: forwarded as they are --------------------------------------------------------
    def _pass_through(self, method: str, decision: policy.Lookup) -> Outcome:
        headers = self.request.headers.end_to_end().without({"host"})
        raw = self.request.raw_query
        fetched = self._send(method, headers, self.request.body, target=f"{self.request.path}?{raw}" if raw else None)
        if fetched.response is None:
            assert fetched.error is not None
            status = 504 if fetched.error.kind == "timeout" else 502
            message = f"upstream failed ({fetched.error.kind})"
            return self._error(status, message, CacheStatus.BYPASS, "method", fetched=fetched)
        if decision.invalidate and fetched.response.status < 400:
            self._invalidate(fetched.response.headers)
        return self._forwarded(fetched.response, CacheStatus.BYPASS, "method", fetched, stored=False, detail="")

    def _invalidate(self, response_headers: Headers) -> None:
        """RFC 9111 §4.4: the target URI, and the same-origin URIs in Location and Content-Location."""
        key = key_for(self.request.path, self.request.query, Headers(), ())
        targets = [(key.uri, key.path)]
        base = self.p.settings.upstream_url
        for target in policy.invalidated_targets(response_headers, base + self.target, base):
            try:
                path, query = split_target(target)
            except InvalidTarget:
                continue
            other = key_for(path, query, Headers(), ())
            targets.append((other.uri, other.path))
        for uri, path in dict.fromkeys(targets):
            with contextlib.suppress(StoreUnavailable):
                self.p.store.delete_uri(uri, path)

    # -- building answers (proxy.answers) -----------------------------------------------------------
    def _from_entry(
        self,
        entry: Entry,
        cache: CacheStatus,
        *,
        fwd: str | None = None,
        fetched: _Fetched | None = None,
        fwd_status: int | None = None,
        collapsed: bool = False,
        detail: str | None = None,
    ) -> Outcome:
        """Answer from a stored entry. `fwd` is None for a plain hit, else why the upstream was involved (RFC 9211)."""
        response, age = answers.from_entry(
            entry,
            self.request.headers,
            now=self.p._clock(),
            cache=cache,
            head=self.head,
            fwd=fwd,
            fwd_status=fwd_status,
            collapsed=collapsed,
            detail=detail,
        )
        key = self.key.short if self.key is not None else None
        if fetched is None:
            return Outcome(response, cache, key, None, None, None, age, detail or fwd or "hit")
        error = fetched.error.kind if fetched.error is not None else None
        return Outcome(response, cache, key, fwd_status, fetched.elapsed_ms, error, age, detail or fwd or "hit")

    def _forwarded(
        self, response: Response, cache: CacheStatus, fwd: str, fetched: _Fetched, *, stored: bool, detail: str
    ) -> Outcome:
        age = policy.forwarded_age(response.headers, fetched.request_time, fetched.response_time, self.p._clock())
        answer = answers.forwarded(
            response, cache=cache, fwd=fwd, head=self.head, stored=stored, age=age, detail=detail
        )
        return Outcome(
            response=answer,
            cache=cache,
            key=self.key.short if self.key else None,
            upstream_status=response.status,
            upstream_ms=fetched.elapsed_ms,
            age=age,
            detail=detail,
        )

    def _error(
        self,
        status: int,
        message: str,
        cache: CacheStatus,
        fwd: str | None,
        *,
        fetched: _Fetched | None = None,
        detail: str = "",
        collapsed: bool = False,
    ) -> Outcome:
        response = answers.error(
            status, message, self.request_id, cache=cache, head=self.head, fwd=fwd, collapsed=collapsed, detail=detail
        )
        return Outcome(
            response=response,
            cache=cache,
            key=self.key.short if self.key else None,
            upstream_ms=fetched.elapsed_ms if fetched is not None else None,
            upstream_error=fetched.error.kind if fetched is not None and fetched.error is not None else None,
            detail=detail,
        )

    # -- plumbing --------------------------------------------------------------------------------------
    def _send(self, method: str, headers: Headers, body: bytes, *, target: str | None = None) -> _Fetched:
        """One upstream exchange within the deadline; a response without Date gets one (RFC 9110 §6.6.1)."""
        timeout = min(self.p.settings.upstream_timeout, self.deadline - self.p._monotonic() - DEADLINE_MARGIN_SECONDS)
        request_time = self.p._clock()
        started = self.p._monotonic()
        if timeout <= 0:
            late = UpstreamError("timeout", "no time left before the function's deadline")
            return _Fetched(None, late, 0.0, request_time, request_time)
        response: Response | None = None
        error: UpstreamError | None = None
        try:
            response = self.p.upstream.send(method, target or self.target, headers, body, timeout)
        except UpstreamError as exc:
            error = exc
        elapsed_ms = (self.p._monotonic() - started) * 1000
        response_time = self.p._clock()
        if response is not None and "date" not in response.headers:
            response = response._replace(headers=policy.with_date(response.headers, response_time))
        return _Fetched(response, error, elapsed_ms, request_time, response_time)

    @staticmethod
    def _failure_of(fetched: _Fetched) -> int | None:
        """The status a failed fetch stands for (RFC 5861 §4: 5xx, timeouts and connection errors), or None."""
        if fetched.error is not None:
            return 504 if fetched.error.kind == "timeout" else 502
        assert fetched.response is not None
        return fetched.response.status if fetched.response.status >= 500 else None

    def _upstream_headers(self, conditional: tuple[tuple[str, str], ...]) -> Headers:
        """Only keyed headers (and credentials) go upstream, so an unkeyed header can never shape a stored answer."""
        forwarded = [
            (name, value)
            for name, value in self.request.headers.items()
            if name in self.p.policy.key_headers or name in policy.FORWARDED_UNKEYED
        ]
        return Headers((*forwarded, *conditional))

    def _put(self, plan: policy.StorePlan) -> bool:
        if not plan.store or plan.entry is None or self.key is None:
            return False
        try:
            self.p.store.put(self.key, plan.entry.encode(), plan.redis_ttl)
        except StoreUnavailable:
            return False
        return True

    def _lock_ttl(self) -> float:
        return self.p.settings.upstream_timeout + LOCK_MARGIN_SECONDS


def _newer(entry: Entry, decision: policy.Lookup) -> bool:
    """Whether `entry` was fetched after the one the decision was made on."""
    return decision.entry is None or entry.response_time > decision.entry.response_time


def _fwd(decision: policy.Lookup) -> str:
    """The RFC 9211 fwd value of a fetch for `decision` (also reported by the waiters collapsed onto it)."""
    return decision.reason if decision.reason in _REFRESH_REASONS else "uri-miss"
