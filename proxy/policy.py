"""The caching decision core: pure functions of (request, stored entry, now, policy), no I/O.

It follows RFC 9111 (HTTP Caching) for a *shared* cache and RFC 5861 for stale-while-revalidate and
stale-if-error. The handler only carries out what these functions decide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from proxy.cache_control import CacheControl, parse_age, parse_http_date
from proxy.config import Policy
from proxy.entry import Entry
from proxy.http import Headers

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # RFC 9110 §9.2.1
# Statuses this proxy stores (a subset of the heuristically cacheable ones, RFC 9110 §15.1); 5xx never.
STORABLE_STATUSES = frozenset({200, 203, 300, 301, 404, 410})
NEGATIVE_STATUSES = frozenset({404, 410})
# Headers never stored with an entry: per-response or per-client fields, and Age which is recomputed.
UNSTORED_HEADERS = frozenset({"set-cookie", "age", "x-cache", "cache-status"})


class Action(StrEnum):
    PASS = "pass"  # noqa: S105 - not a password; not a cacheable request: forward it, don't look up or store
    SERVE = "serve"  # answer from the stored entry without contacting the upstream
    FETCH = "fetch"  # contact the upstream (a miss, or a revalidation of `entry`)


@dataclass(frozen=True)
class Lookup:
    action: Action
    reason: str  # RFC 9211 "fwd" value when forwarding ("method", "uri-miss", "stale", "request", ...)
    entry: Entry | None = None
    age: float = 0.0
    conditional: tuple[tuple[str, str], ...] = ()  # validators to send when revalidating (RFC 9111 §4.3.1)
    stale_while_revalidate: bool = False  # entry may be served STALE while another invocation refreshes it
    invalidate: bool = False  # unsafe method: invalidate the target's entries on a non-error answer (§4.4)
    store: bool = True  # false when the request says no-store (RFC 9111 §5.2.1.5)


@dataclass(frozen=True)
class StorePlan:
    store: bool
    reason: str  # why not, when store is False (for Cache-Status detail and logs)
    entry: Entry | None = None
    redis_ttl: float = 0.0  # how long Redis keeps the value: freshness plus the longest stale window


def current_age(entry: Entry, now: float) -> float:
    """RFC 9111 §4.2.3: corrected_initial_age plus resident_time."""
    return entry.initial_age + max(0.0, now - entry.response_time)


def staleness(entry: Entry, now: float) -> float:
    """Seconds past the end of freshness (negative while fresh)."""
    return current_age(entry, now) - entry.lifetime


def is_fresh(entry: Entry, now: float) -> bool:
    """RFC 9111 §4.2: fresh while its age is below its freshness lifetime; no-cache is never fresh (§5.2.2.4)."""
    return not entry.revalidate_always and current_age(entry, now) < entry.lifetime


def lookup(method: str, request_headers: Headers, entry: Entry | None, now: float) -> Lookup:
    """What to do with a request, given the stored entry for its key (None when nothing is stored)."""
    method = method.upper()
    if method not in CACHEABLE_METHODS:
        return Lookup(Action.PASS, "method", invalidate=method not in SAFE_METHODS)
    request_cc = _request_cache_control(request_headers)
    store = not request_cc.has("no-store")
    if entry is None:
        return Lookup(Action.FETCH, "uri-miss", store=store)
    age = current_age(entry, now)
    conditional = validators(entry)
    # RFC 9111 §5.2.1.4: a client's no-cache forbids answering without validation; so does max-age=0 (§5.2.1.1).
    max_age = request_cc.seconds("max-age")
    if request_cc.has("no-cache") or (max_age is not None and age > max_age):
        return Lookup(Action.FETCH, "request", entry=entry, age=age, conditional=conditional, store=store)
    if is_fresh(entry, now):
        return Lookup(Action.SERVE, "hit", entry=entry, age=age, store=store)
    swr = not entry.revalidate_always and staleness(entry, now) <= entry.stale_while_revalidate
    return Lookup(
        Action.FETCH,
        "stale",
        entry=entry,
        age=age,
        conditional=conditional,
        stale_while_revalidate=swr,
        store=store,
    )


def may_serve_stale_on_error(entry: Entry, now: float) -> bool:
    """RFC 5861 §4: stale-if-error, where an error is a 5xx, a timeout or a connection failure."""
    return not entry.revalidate_always and staleness(entry, now) <= entry.stale_if_error


def validators(entry: Entry) -> tuple[tuple[str, str], ...]:
    """RFC 9111 §4.3.1: If-None-Match from the ETag, else If-Modified-Since from Last-Modified."""
    if entry.etag:
        return (("if-none-match", entry.etag),)
    if entry.last_modified:
        return (("if-modified-since", entry.last_modified),)
    return ()


def plan_store(
    *,
    request_headers: Headers,
    status: int,
    response_headers: Headers,
    body: bytes,
    request_time: float,
    response_time: float,
    policy: Policy,
) -> StorePlan:
    """RFC 9111 §3: whether a response to a GET may be stored by a shared cache, and as what entry."""
    cc = CacheControl.parse(response_headers.get("cache-control"))
    if status not in STORABLE_STATUSES:
        return StorePlan(False, f"status {status} is not stored")
    if cc.has("no-store"):
        return StorePlan(False, "no-store")  # §5.2.2.5
    if cc.has("private"):
        return StorePlan(False, "private")  # §5.2.2.7: shared caches must not store
    if "set-cookie" in response_headers:
        return StorePlan(False, "set-cookie")  # a per-client response, never shared
    if "authorization" in request_headers and not (cc.has("public") or cc.has("s-maxage") or cc.has("must-revalidate")):
        return StorePlan(False, "authorization")  # §3.5
    vary = {v.strip().lower() for v in (response_headers.get("vary") or "").split(",") if v.strip()}
    if "*" in vary:
        return StorePlan(False, "vary-star")  # §4.1: never matches
    unkeyed = vary - set(policy.key_headers)
    if unkeyed:
        return StorePlan(False, f"vary on unkeyed header {sorted(unkeyed)[0]}")
    if len(body) > policy.max_body_bytes:
        return StorePlan(False, "body too large")
    lifetime = freshness_lifetime(cc, response_headers, status, policy)
    swr, sie = stale_windows(cc, policy)
    initial_age = corrected_initial_age(response_headers, request_time, response_time)
    entry = Entry(
        status=status,
        headers=response_headers.end_to_end().without(UNSTORED_HEADERS),
        body=body,
        request_time=request_time,
        response_time=response_time,
        initial_age=initial_age,
        lifetime=lifetime,
        stale_while_revalidate=swr,
        stale_if_error=sie,
        revalidate_always=cc.has("no-cache"),
    )
    ttl = redis_ttl(entry, policy)
    if ttl <= 0:
        return StorePlan(False, "already expired")
    return StorePlan(True, "stored", entry=entry, redis_ttl=ttl)


def freshness_lifetime(cc: CacheControl, headers: Headers, status: int, policy: Policy) -> float:
    """RFC 9111 §4.2.1: s-maxage, then max-age, then Expires minus Date, then a heuristic (§4.2.2)."""
    for directive in ("s-maxage", "max-age"):
        seconds = cc.seconds(directive)
        if seconds is not None:
            return float(seconds)
    if "expires" in headers:
        expires = parse_http_date(headers.get("expires"))
        date = parse_http_date(headers.get("date"))
        if expires is None:
            return 0.0  # §5.3: an invalid Expires (e.g. "0") means already expired
        if date is None:
            return 0.0  # without Date the difference is meaningless; treat as stale, revalidate
        return max(0.0, expires - date)
    if status in NEGATIVE_STATUSES:
        return policy.negative_ttl
    return policy.default_ttl


def stale_windows(cc: CacheControl, policy: Policy) -> tuple[float, float]:
    """How long past expiry the entry may be served stale, per RFC 5861, as (while-revalidate, if-error).

    must-revalidate, proxy-revalidate (§5.2.2.2, §5.2.2.8) and no-cache forbid stale answers. s-maxage implies
    proxy-revalidate for a shared cache (§5.2.2.10), so the configured defaults do not apply, but explicit
    stale-* directives from the origin still do: RFC 5861 applies them "regardless of other freshness information".
    """
    if cc.has("must-revalidate") or cc.has("proxy-revalidate") or cc.has("no-cache"):
        return 0.0, 0.0
    explicit_swr = cc.seconds("stale-while-revalidate")
    explicit_sie = cc.seconds("stale-if-error")
    if cc.has("s-maxage"):
        return float(explicit_swr or 0), float(explicit_sie or 0)
    swr = float(explicit_swr) if explicit_swr is not None else policy.stale_while_revalidate
    sie = float(explicit_sie) if explicit_sie is not None else policy.stale_if_error
    return swr, sie


def corrected_initial_age(headers: Headers, request_time: float, response_time: float) -> float:
    """RFC 9111 §4.2.3 corrected_age_value: the upstream's Age plus the response delay.

    Deliberate deviation: the apparent age (our clock minus the origin's Date) is not counted. Between an origin
    and this proxy it measures clock skew, not caching, and one origin with a slow clock would make every answer
    stale on arrival. Varnish and nginx make the same choice. Expires is still read relative to Date (§4.2.1).
    """
    response_delay = max(0.0, response_time - request_time)
    return parse_age(headers.get("age")) + response_delay


def redis_ttl(entry: Entry, policy: Policy) -> float:
    """Redis keeps an entry while it is fresh or may still be served stale or revalidated.

    Entries with a validator are kept one default TTL past their last use for a cheap 304 revalidation.
    """
    remaining = entry.lifetime - entry.initial_age
    keep = max(entry.stale_while_revalidate, entry.stale_if_error)
    if entry.etag or entry.last_modified:
        keep = max(keep, policy.default_ttl)
    return remaining + keep


def freshen(
    entry: Entry, response_headers: Headers, request_time: float, response_time: float, policy: Policy
) -> StorePlan:
    """RFC 9111 §4.3.4: a 304 updates the stored headers and freshness; the stored body is kept."""
    incoming = response_headers.end_to_end().without(UNSTORED_HEADERS)
    names = {name for name, _ in incoming.items()}
    merged = Headers((*entry.headers.without(names).items(), *incoming.items()))
    plan = plan_store(
        request_headers=Headers(),
        status=entry.status,
        response_headers=merged,
        body=entry.body,
        request_time=request_time,
        response_time=response_time,
        policy=policy,
    )
    if plan.entry is not None:
        return replace(plan, entry=replace(plan.entry, body=entry.body))
    return plan


def _request_cache_control(headers: Headers) -> CacheControl:
    value = headers.get("cache-control")
    if value is None and "no-cache" in (headers.get("pragma") or "").lower():
        return CacheControl({"no-cache": None})  # RFC 9111 §5.4: Pragma only without Cache-Control
    return CacheControl.parse(value)
