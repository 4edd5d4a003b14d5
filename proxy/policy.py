"""The caching decision core: pure functions of (request, stored entry, now, policy), no I/O.

It follows RFC 9111 (HTTP Caching) for a *shared* cache, RFC 5861 for stale-while-revalidate and stale-if-error, and
RFC 9110 for the conditional requests a cache answers itself. The service only carries out what these functions
decide.
"""

from __future__ import annotations

import email.utils
import re
from enum import StrEnum
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit

from proxy.cache_control import NO_DIRECTIVES, CacheControl, parse_age, parse_http_date
from proxy.config import Policy
from proxy.entry import Entry
from proxy.http import CACHEABLE_METHODS, Headers
from proxy.validation import validators

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # RFC 9110 §9.2.1
# Statuses this proxy stores (a subset of the heuristically cacheable ones, RFC 9110 §15.1); 5xx never.
STORABLE_STATUSES = frozenset({200, 203, 300, 301, 404, 410})
NEGATIVE_STATUSES = frozenset({404, 410})
# Headers never stored with an entry: per-response or per-client fields, and Age which is recomputed. The origin's
# own Cache-Status is stored: answers keep it ahead of ours (RFC 9211 §2).
UNSTORED_HEADERS = frozenset({"set-cookie", "age", "x-cache"})
# Request headers the upstream sees, besides the keyed ones (every other request header is left out on GET/HEAD).
FORWARDED_UNKEYED = frozenset({"authorization"})
_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.1


class Action(StrEnum):
    PASS = "pass"  # noqa: S105 - not a password; not a cacheable request: forward it, don't look up or store
    SERVE = "serve"  # answer from the stored entry without contacting the upstream
    FETCH = "fetch"  # contact the upstream (a miss, or a revalidation of `entry`)
    UNSATISFIABLE = "unsatisfiable"  # only-if-cached and nothing usable is stored: 504 (RFC 9111 §5.2.1.7)


class Lookup(NamedTuple):
    action: Action
    reason: str  # RFC 9211 "fwd" value when forwarding ("method", "uri-miss", "stale", "request"), else why
    entry: Entry | None = None
    age: float = 0.0
    conditional: tuple[tuple[str, str], ...] = ()  # validators to send when revalidating (RFC 9111 §4.3.1)
    stale_while_revalidate: bool = False  # entry may be served STALE while another invocation refreshes it
    invalidate: bool = False  # unsafe method: invalidate the target's entries on a non-error answer (§4.4)
    store: bool = True  # false when the request says no-store (RFC 9111 §5.2.1.5)
    stale: bool = False  # SERVE of a stale entry the client accepts (max-stale, RFC 9111 §5.2.1.2)


class StorePlan(NamedTuple):
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
    passing = pass_through(method)
    if passing is not None:
        return passing
    request_cc = request_cache_control(request_headers)
    if entry is not None and request_cc is NO_DIRECTIVES and is_fresh(entry, now):
        return Lookup(Action.SERVE, "hit", entry, current_age(entry, now))  # the common case, decided at once
    store = not request_cc.has("no-store")
    # RFC 9111 §5.2.1.7: only a stored response, or a 504; the upstream is never contacted.
    only_if_cached = request_cc.has("only-if-cached")
    if entry is None:
        if only_if_cached:
            return Lookup(Action.UNSATISFIABLE, "only-if-cached", store=store)
        return Lookup(Action.FETCH, "uri-miss", store=store)
    age = current_age(entry, now)
    conditional = validators(entry)
    # RFC 9111 §5.2.1.4: a client's no-cache forbids answering without validation; max-age (§5.2.1.1) bounds the
    # age it accepts and min-fresh (§5.2.1.3) the freshness it still wants.
    max_age = request_cc.seconds("max-age")
    min_fresh = request_cc.seconds("min-fresh")
    if (
        request_cc.has("no-cache")
        or (max_age is not None and age > max_age)
        or (min_fresh is not None and entry.lifetime - age < min_fresh)
    ):
        if only_if_cached:
            return Lookup(Action.UNSATISFIABLE, "only-if-cached", entry=entry, age=age, store=store)
        return Lookup(Action.FETCH, "request", entry=entry, age=age, conditional=conditional, store=store)
    if is_fresh(entry, now):
        return Lookup(Action.SERVE, "hit", entry=entry, age=age, store=store)
    if _accepts_stale(request_cc, entry, now):
        return Lookup(Action.SERVE, "max-stale", entry=entry, age=age, store=store, stale=True)
    if only_if_cached:
        return Lookup(Action.UNSATISFIABLE, "only-if-cached", entry=entry, age=age, store=store)
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


def pass_through(method: str) -> Lookup | None:
    """The decision for a method that is never answered from the cache, nor stored (forwarded as it is); None for
    GET and HEAD (RFC 9111 §2, §3; HEAD is answered from the GET entry, RFC 9110 §9.3.2)."""
    if method.upper() in CACHEABLE_METHODS:
        return None
    return Lookup(Action.PASS, "method", invalidate=invalidates(method))


def invalidates(method: str) -> bool:
    """RFC 9111 §4.4: a non-error answer to an unsafe method invalidates the target URI's stored responses."""
    return method.upper() not in SAFE_METHODS


def _accepts_stale(request_cc: CacheControl, entry: Entry, now: float) -> bool:
    """RFC 9111 §5.2.1.2 max-stale: the client accepts a stale response, up to the given seconds past expiry (any,
    without a value), unless the origin forbade serving it stale (§4.2.4: must-revalidate, proxy-revalidate,
    s-maxage, no-cache)."""
    if not request_cc.has("max-stale") or entry.revalidate_always or entry.must_revalidate:
        return False
    if request_cc.directives["max-stale"] is None:
        return True
    limit = request_cc.seconds("max-stale")
    return limit is not None and staleness(entry, now) <= limit


def may_serve_stale_on_error(entry: Entry, now: float) -> bool:
    """RFC 5861 §4: stale-if-error, where an error is a 5xx, a timeout or a connection failure."""
    return not entry.revalidate_always and staleness(entry, now) <= entry.stale_if_error


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
    response_headers = with_date(response_headers, response_time)
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
    vary = vary_problem(response_headers, policy.key_headers)
    if vary is not None:
        return StorePlan(False, vary)
    if len(body) > policy.max_body_bytes:
        return StorePlan(False, "body too large")
    lifetime = freshness_lifetime(cc, response_headers, status, policy)
    swr, sie = stale_windows(cc, policy)
    initial_age = corrected_initial_age(response_headers, request_time, response_time)
    entry = Entry(
        status=status,
        headers=stored_headers(response_headers),
        body=body,
        request_time=request_time,
        response_time=response_time,
        initial_age=initial_age,
        lifetime=lifetime,
        stale_while_revalidate=swr,
        stale_if_error=sie,
        revalidate_always=cc.has("no-cache"),
        must_revalidate=cc.has("must-revalidate") or cc.has("proxy-revalidate") or cc.has("s-maxage"),
    )
    ttl = redis_ttl(entry, policy)
    if ttl <= 0:
        return StorePlan(False, "already expired")
    return StorePlan(True, "stored", entry=entry, redis_ttl=ttl)


def stored_headers(response_headers: Headers) -> Headers:
    """The fields an entry keeps: end-to-end, none of UNSTORED_HEADERS; the origin's Cache-Status, when it sent one,
    last and in one field (so an answer finds it without a lookup)."""
    kept = response_headers.end_to_end().without(UNSTORED_HEADERS)
    cache_status = kept.get("cache-status")
    if cache_status is None:
        return kept
    return kept.without(("cache-status",)).plus(("cache-status", cache_status))


def vary_problem(response_headers: Headers, key_headers: tuple[str, ...]) -> str | None:
    """RFC 9111 §4.1: why a response's Vary prevents sharing it, or None.

    Vary is matched on the request this proxy sends upstream, which holds only the keyed headers (part of the key),
    Authorization, and fixed values of its own (`Accept-Encoding: identity`, its User-Agent): every other header of
    the client's is left out, so every request of one key reaches the origin with the same value for it, and a
    response varying on it is the one every such request gets. What cannot be matched: `*`, a header that is
    forwarded but not keyed (Authorization), and a malformed Vary.
    """
    members = [member.strip().lower() for value in response_headers.get_all("vary") for member in value.split(",")]
    members = [member for member in members if member]
    if "*" in members:
        return "vary-star"
    if not all(_FIELD_NAME.fullmatch(member) for member in members):
        return "vary-invalid"
    if any(member in FORWARDED_UNKEYED and member not in key_headers for member in members):
        return "vary-authorization"
    return None


def freshness_lifetime(cc: CacheControl, headers: Headers, status: int, policy: Policy) -> float:
    """RFC 9111 §4.2.1: s-maxage, then max-age, then Expires minus Date, then a heuristic (§4.2.2).

    A response without Date has been given one by `with_date`, so Expires then counts from the time it was received
    (RFC 9110 §6.6.1). The heuristic is the configured CACHE_TTL_SECONDS (CACHE_NEGATIVE_TTL_SECONDS for 404/410), not a
    fraction of the time since Last-Modified: choosing it is what this proxy is configured for (RFC 9111 §4.2.2
    leaves the heuristic to the cache)."""
    for directive in ("s-maxage", "max-age"):
        seconds = cc.seconds(directive)
        if seconds is not None:
            return float(seconds)
    if "expires" in headers:
        expires = parse_http_date(headers.get("expires"))
        if expires is None:
            return 0.0  # §5.3: an invalid Expires (e.g. "0") means already expired
        date = parse_http_date(headers.get("date"))
        if date is None:
            return 0.0  # an invalid Date: nothing to count from; stale, revalidate
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


def forwarded_age(headers: Headers, request_time: float, response_time: float, now: float) -> int | None:
    """RFC 9111 §5.1, §4.2.3: the Age of an answer passed on from the upstream. Only when the upstream sent one (a
    cache before it): a first-hand response carries none. It grows by the response delay and the time with us."""
    if "age" not in headers:
        return None
    return int(corrected_initial_age(headers, request_time, response_time) + max(0.0, now - response_time))


def with_date(headers: Headers, received: float) -> Headers:
    """RFC 9110 §6.6.1: a recipient with a clock adds a Date to a response that has none, when it caches or
    forwards it: the time the response was received."""
    if "date" in headers:
        return headers
    return headers.plus(("date", email.utils.formatdate(received, usegmt=True)))


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
    """RFC 9111 §4.3.4: a 304 updates the stored headers and freshness; the stored body is kept.

    Call it only for a 304 that `validates` the entry."""
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
        return plan._replace(entry=plan.entry._replace(body=entry.body))
    return plan


def invalidated_targets(location_headers: Headers, request_url: str, upstream_base: str) -> list[str]:
    """RFC 9111 §4.4: besides the target URI, the URIs in Location and Content-Location of a non-error answer to an
    unsafe request, when they have the same origin (RFC 9110 §4.3.1) as the target, i.e. they lie under the
    upstream's base URL. Returned as targets relative to that base (the proxy's own paths)."""
    base = urlsplit(upstream_base)
    prefix = base.path.rstrip("/")
    found: list[str] = []
    for name in ("location", "content-location"):
        value = location_headers.get(name)
        if not value or "," in value:
            continue
        url = urlsplit(urljoin(request_url, value.strip()))
        if (url.scheme, url.netloc.lower()) != (base.scheme, base.netloc.lower()):
            continue
        if prefix and not (url.path == prefix or url.path.startswith(prefix + "/")):
            continue
        target = (url.path[len(prefix) :] or "/") + (f"?{url.query}" if url.query else "")
        if target not in found:
            found.append(target)
    return found


def request_cache_control(headers: Headers) -> CacheControl:
    """The request's Cache-Control directives (NO_DIRECTIVES when it has none)."""
    value = headers.get("cache-control")
    if value is None:
        pragma = headers.get("pragma")
        if pragma is not None and "no-cache" in pragma.lower():
            return CacheControl({"no-cache": None})  # RFC 9111 §5.4: Pragma only without Cache-Control
    return CacheControl.parse(value)
