"""Answer building, pure: Cache-Status (RFC 9211), Age (RFC 9111 §5.1) and the cache's own 304s (RFC 9110 §15.4.5)."""

from __future__ import annotations

import re

import pytest

from proxy import answers, policy
from proxy.config import Policy
from proxy.entry import Entry
from proxy.http import Headers, Response
from proxy.outcome import CacheStatus

NOW = 1_700_000_000.0
# RFC 8941 sf-list of sf-items whose bare item is a token, parameters with token/integer/boolean values.
_TOKEN = r"[A-Za-z*][A-Za-z0-9!#$%&'*+.^_`|~:/-]*"
_MEMBER = rf"{_TOKEN}(?:;\s*[a-z*][a-z0-9_.*-]*(?:=(?:{_TOKEN}|-?\d+|\?[01]))?)*"
CACHE_STATUS = re.compile(rf"{_MEMBER}(?:,\s*{_MEMBER})*")


def stored(headers: list[tuple[str, str]], status: int = 200) -> Entry:
    plan = policy.plan_store(
        request_headers=Headers(),
        status=status,
        response_headers=Headers(headers),
        body=b"body",
        request_time=NOW,
        response_time=NOW,
        policy=Policy(),
    )
    assert plan.entry is not None
    return plan.entry


def test_a_hit_reports_hit_and_ttl() -> None:  # RFC 9211 §2.1, §2.4
    response, age = answers.from_entry(stored([("Cache-Control", "max-age=60")]), Headers(), now=NOW + 10,
                                       cache=CacheStatus.HIT, head=False)  # fmt: skip
    assert (age, response.headers.get("age"), response.headers.get("x-cache")) == (10, "10", "HIT")
    assert response.headers.get("cache-status") == "cachelab; hit; ttl=50"


def test_our_member_comes_after_the_origins() -> None:  # RFC 9211 §2: closest to the client last
    entry = stored([("Cache-Status", 'OriginCache; hit, "CDN"; fwd=uri-miss')])
    response, _ = answers.from_entry(entry, Headers(), now=NOW, cache=CacheStatus.HIT, head=False)
    assert response.headers.get_all("cache-status") == ['OriginCache; hit, "CDN"; fwd=uri-miss, cachelab; hit; ttl=300']
    passed = answers.forwarded(Response(200, Headers([("Cache-Status", "OriginCache; hit")])),
                               cache=CacheStatus.MISS, fwd="uri-miss", head=False, stored=True, age=None)  # fmt: skip
    assert passed.headers.get("cache-status") == "OriginCache; hit, cachelab; fwd=uri-miss; fwd-status=200; stored"


def test_forwarded_answers_carry_the_upstream_age_and_replace_our_own_fields() -> None:  # RFC 9111 §5.1
    upstream = Response(200, Headers([("Age", "100"), ("X-Cache", "HIT from elsewhere"), ("Connection", "close")]))
    passed = answers.forwarded(upstream, cache=CacheStatus.MISS, fwd="uri-miss", head=False, stored=False, age=101)
    assert passed.headers.get_all("age") == ["101"]
    assert passed.headers.get_all("x-cache") == ["MISS"]
    assert "connection" not in passed.headers


def test_a_first_hand_forwarded_answer_has_no_age() -> None:  # RFC 9111 §5.1
    passed = answers.forwarded(Response(200), cache=CacheStatus.MISS, fwd="uri-miss", head=False, stored=True, age=None)
    assert "age" not in passed.headers


@pytest.mark.parametrize("text", ["vary on unkeyed header x y", "status 201 is not stored", "9lives", "", 'a"b;c,d'])
def test_details_are_always_valid_tokens(text: str) -> None:  # RFC 9211 §2.8: detail is an sf-token or sf-string
    value = answers.cache_status(fwd="uri-miss", detail=text or "x")
    assert CACHE_STATUS.fullmatch(value), value


def test_the_cache_s_own_304_carries_only_the_fields_a_304_may() -> None:  # RFC 9110 §15.4.5
    entry = stored([("ETag", '"v1"'), ("Content-Type", "application/json"), ("Cache-Control", "max-age=60"),
                    ("X-Custom", "1"), ("Vary", "Accept")])  # fmt: skip
    response, _ = answers.from_entry(entry, Headers([("If-None-Match", '"v1"')]), now=NOW, cache=CacheStatus.HIT,
                                     head=False)  # fmt: skip
    assert response.status == 304
    assert response.body == b""
    names = [name for name, _ in response.headers.items()]
    assert names == ["etag", "cache-control", "vary", "date", "age", "x-cache", "cache-status"]


def test_the_proxy_s_own_errors_carry_a_cache_status() -> None:  # RFC 9211 §2: no hit, no fwd: neither happened
    refused = answers.error(400, "bad", "r1", cache=CacheStatus.BYPASS, detail="invalid-request")
    assert refused.headers.get("cache-status") == "cachelab; detail=invalid-request"
    assert refused.headers.get("cache-control") == "no-store"
    failed = answers.error(502, "down", "r2", cache=CacheStatus.MISS, fwd="uri-miss", detail="upstream-connect")
    assert failed.headers.get("cache-status") == "cachelab; fwd=uri-miss; detail=upstream-connect"
