"""The pure caching core against RFC 9111 (HTTP Caching) and RFC 5861 (stale-* extensions).

Each test names the section it checks. Times are plain numbers: no clock, no I/O.
"""

from __future__ import annotations

import pytest

from proxy import policy
from proxy.config import Policy
from proxy.entry import Entry
from proxy.http import Headers

NOW = 1_700_000_000.0
POLICY = Policy(default_ttl=300, stale_while_revalidate=30, stale_if_error=600, negative_ttl=10, max_body_bytes=100)
DATE = "Tue, 14 Nov 2023 22:13:20 GMT"  # == NOW


def plan(
    headers: list[tuple[str, str]],
    *,
    status: int = 200,
    body: bytes = b"x",
    request: list[tuple[str, str]] | None = None,
    pol: Policy = POLICY,
) -> policy.StorePlan:
    return policy.plan_store(
        request_headers=Headers(request or []),
        status=status,
        response_headers=Headers(headers),
        body=body,
        request_time=NOW,
        response_time=NOW,
        policy=pol,
    )


def entry(headers: list[tuple[str, str]], **kwargs: object) -> Entry:
    result = plan(headers, **kwargs)  # type: ignore[arg-type]
    assert result.entry is not None, result.reason
    return result.entry


class TestFreshnessLifetime:
    def test_s_maxage_wins_over_max_age_for_a_shared_cache(self) -> None:  # RFC 9111 §4.2.1, §5.2.2.10
        assert entry([("Cache-Control", "max-age=10, s-maxage=60")]).lifetime == 60

    def test_max_age_wins_over_expires(self) -> None:  # RFC 9111 §5.3: Expires ignored when max-age is present
        e = entry([("Cache-Control", "max-age=10"), ("Date", DATE), ("Expires", "Tue, 14 Nov 2023 23:13:20 GMT")])
        assert e.lifetime == 10

    def test_expires_minus_date(self) -> None:  # RFC 9111 §4.2.1
        assert entry([("Date", DATE), ("Expires", "Tue, 14 Nov 2023 22:14:20 GMT")]).lifetime == 60

    def test_invalid_expires_means_already_expired(self) -> None:  # RFC 9111 §5.3
        assert entry([("Date", DATE), ("Expires", "0")]).lifetime == 0

    def test_expires_is_relative_to_the_origin_date_so_clock_skew_does_not_matter(self) -> None:  # §4.2.1 note
        skewed_date = "Tue, 14 Nov 2023 20:13:20 GMT"  # origin clock two hours behind ours
        e = entry([("Date", skewed_date), ("Expires", "Tue, 14 Nov 2023 20:18:20 GMT")])
        assert e.lifetime == 300

    def test_heuristic_default_ttl_without_explicit_freshness(self) -> None:  # RFC 9111 §4.2.2
        assert entry([]).lifetime == POLICY.default_ttl

    @pytest.mark.parametrize("status", [404, 410])
    def test_negative_answers_get_the_short_negative_ttl(self, status: int) -> None:  # RFC 9111 §4.2.2
        assert entry([], status=status).lifetime == POLICY.negative_ttl

    def test_explicit_freshness_on_a_404_is_honoured(self) -> None:  # RFC 9111 §4.2.1
        assert entry([("Cache-Control", "max-age=120")], status=404).lifetime == 120

    def test_invalid_max_age_is_treated_as_stale(self) -> None:  # RFC 9111 §4.2.1 (most restrictive reading)
        assert entry([("Cache-Control", "max-age=soon")]).lifetime == 0

    def test_huge_delta_seconds_is_capped(self) -> None:  # RFC 9111 §1.2.2
        assert entry([("Cache-Control", "max-age=99999999999999999999")]).lifetime == 2_147_483_648


class TestStorability:
    @pytest.mark.parametrize("status", [200, 203, 300, 301, 404, 410])
    def test_listed_statuses_are_stored(self, status: int) -> None:  # RFC 9111 §3, RFC 9110 §15.1
        assert plan([], status=status).store

    @pytest.mark.parametrize("status", [201, 302, 500, 502, 503, 504])
    def test_other_statuses_and_every_5xx_are_not(self, status: int) -> None:  # RFC 9111 §3
        assert not plan([("Cache-Control", "max-age=60")], status=status).store

    @pytest.mark.parametrize("directive", ["no-store", "private", 'private="x"', "No-Store"])
    def test_no_store_and_private_are_not_stored_by_a_shared_cache(self, directive: str) -> None:  # §5.2.2.5, §5.2.2.7
        assert not plan([("Cache-Control", f"max-age=60, {directive}")]).store

    def test_set_cookie_is_never_stored(self) -> None:
        assert plan([("Cache-Control", "public, max-age=60"), ("Set-Cookie", "id=1")]).reason == "set-cookie"

    def test_authorization_requests_are_stored_only_when_the_origin_allows_sharing(self) -> None:  # RFC 9111 §3.5
        auth = [("Authorization", "Bearer t")]
        assert not plan([("Cache-Control", "max-age=60")], request=auth).store
        assert plan([("Cache-Control", "public, max-age=60")], request=auth).store
        assert plan([("Cache-Control", "s-maxage=60")], request=auth).store
        assert plan([("Cache-Control", "must-revalidate, max-age=60")], request=auth).store

    def test_vary_star_is_never_stored(self) -> None:  # RFC 9111 §4.1
        assert not plan([("Vary", "*")]).store

    def test_vary_on_an_unkeyed_header_is_not_stored(self) -> None:  # RFC 9111 §4.1: we could not match it
        assert not plan([("Vary", "Accept-Language")]).store
        keyed = Policy(key_headers=("accept-language",))
        assert plan([("Vary", "Accept-Language")], pol=keyed).store

    def test_large_bodies_pass_through_uncached(self) -> None:
        assert plan([], body=b"x" * 101).reason == "body too large"

    def test_no_cache_is_stored_but_never_fresh(self) -> None:  # RFC 9111 §5.2.2.4
        e = entry([("Cache-Control", "no-cache, max-age=60"), ("ETag", '"a"')])
        assert e.revalidate_always
        assert not policy.is_fresh(e, NOW)

    def test_hop_by_hop_and_per_response_headers_are_not_stored(self) -> None:  # RFC 9110 §7.6.1, RFC 9111 §3.1
        e = entry([("Connection", "x-trace"), ("X-Trace", "1"), ("Keep-Alive", "5"), ("Age", "3"), ("ETag", '"v"')])
        assert [name for name, _ in e.headers.items()] == ["etag"]


class TestAge:
    def test_age_counts_upstream_age_delay_and_residence(self) -> None:  # RFC 9111 §4.2.3
        result = policy.plan_store(
            request_headers=Headers(),
            status=200,
            response_headers=Headers([("Age", "20")]),
            body=b"",
            request_time=NOW - 2,
            response_time=NOW,
            policy=POLICY,
        )
        assert result.entry is not None
        assert result.entry.initial_age == 22
        assert policy.current_age(result.entry, NOW + 10) == 32

    @pytest.mark.parametrize("date", ["Tue, 14 Nov 2023 20:13:20 GMT", "Tue, 14 Nov 2023 23:13:20 GMT", "garbage"])
    def test_origin_clock_skew_in_date_adds_no_age(self, date: str) -> None:  # §4.2.3 apparent_age, not counted
        assert entry([("Date", date), ("Cache-Control", "max-age=60")]).initial_age == 0


class TestLookup:
    def test_only_get_and_head_are_cacheable(self) -> None:  # RFC 9111 §2, §3
        assert policy.lookup("POST", Headers(), None, NOW).action is policy.Action.PASS
        assert policy.lookup("HEAD", Headers(), None, NOW).action is policy.Action.FETCH

    @pytest.mark.parametrize(
        ("method", "invalidates"), [("POST", True), ("PUT", True), ("DELETE", True), ("OPTIONS", False)]
    )
    def test_unsafe_methods_invalidate(self, method: str, invalidates: bool) -> None:  # RFC 9111 §4.4
        assert policy.lookup(method, Headers(), None, NOW).invalidate is invalidates

    def test_fresh_entry_is_served(self) -> None:  # RFC 9111 §4.2
        e = entry([("Cache-Control", "max-age=60")])
        decision = policy.lookup("GET", Headers(), e, NOW + 59)
        assert decision.action is policy.Action.SERVE
        assert decision.age == 59

    def test_stale_entry_within_swr_is_refreshed_with_stale_allowed(self) -> None:  # RFC 5861 §3
        e = entry([("Cache-Control", "max-age=60, stale-while-revalidate=10"), ("ETag", '"v1"')])
        decision = policy.lookup("GET", Headers(), e, NOW + 65)
        assert decision.action is policy.Action.FETCH
        assert decision.stale_while_revalidate
        assert decision.conditional == (("if-none-match", '"v1"'),)  # RFC 9111 §4.3.1
        assert not policy.lookup("GET", Headers(), e, NOW + 71).stale_while_revalidate

    def test_last_modified_validator_when_there_is_no_etag(self) -> None:  # RFC 9111 §4.3.1
        e = entry([("Last-Modified", DATE), ("Cache-Control", "max-age=1")])
        assert policy.lookup("GET", Headers(), e, NOW + 5).conditional == (("if-modified-since", DATE),)

    def test_client_no_cache_forces_revalidation(self) -> None:  # RFC 9111 §5.2.1.4
        e = entry([("Cache-Control", "max-age=60")])
        decision = policy.lookup("GET", Headers([("Cache-Control", "no-cache")]), e, NOW + 1)
        assert decision.action is policy.Action.FETCH
        assert decision.reason == "request"

    def test_pragma_no_cache_counts_only_without_cache_control(self) -> None:  # RFC 9111 §5.4
        e = entry([("Cache-Control", "max-age=60")])
        assert policy.lookup("GET", Headers([("Pragma", "no-cache")]), e, NOW + 1).action is policy.Action.FETCH
        both = Headers([("Pragma", "no-cache"), ("Cache-Control", "max-age=100")])
        assert policy.lookup("GET", both, e, NOW + 1).action is policy.Action.SERVE

    def test_client_max_age(self) -> None:  # RFC 9111 §5.2.1.1
        e = entry([("Cache-Control", "max-age=60")])
        assert (
            policy.lookup("GET", Headers([("Cache-Control", "max-age=5")]), e, NOW + 10).action is policy.Action.FETCH
        )

    def test_client_no_store_still_reads_but_never_writes(self) -> None:  # RFC 9111 §5.2.1.5
        assert not policy.lookup("GET", Headers([("Cache-Control", "no-store")]), None, NOW).store


class TestStaleness:
    def test_stale_if_error_window(self) -> None:  # RFC 5861 §4
        e = entry([("Cache-Control", "max-age=60")])
        assert policy.may_serve_stale_on_error(e, NOW + 60 + 600)
        assert not policy.may_serve_stale_on_error(e, NOW + 60 + 601)

    def test_explicit_stale_if_error_overrides_the_default(self) -> None:  # RFC 5861 §4
        e = entry([("Cache-Control", "max-age=60, stale-if-error=5")])
        assert not policy.may_serve_stale_on_error(e, NOW + 66)

    @pytest.mark.parametrize("directive", ["must-revalidate", "proxy-revalidate", "no-cache"])
    def test_revalidate_directives_forbid_stale_answers(self, directive: str) -> None:  # RFC 9111 §4.2.4, §5.2.2.2
        e = entry([("Cache-Control", f"max-age=60, {directive}")])
        assert e.stale_while_revalidate == 0
        assert not policy.may_serve_stale_on_error(e, NOW + 61)

    def test_s_maxage_implies_proxy_revalidate_unless_stale_is_explicit(self) -> None:  # §5.2.2.10, RFC 5861
        assert entry([("Cache-Control", "s-maxage=60")]).stale_if_error == 0
        assert entry([("Cache-Control", "s-maxage=60, stale-if-error=100")]).stale_if_error == 100

    def test_redis_keeps_the_entry_through_its_stale_window(self) -> None:
        result = plan([("Cache-Control", "max-age=60")])
        assert result.redis_ttl == 60 + 600


class TestRevalidation:
    def test_304_freshens_headers_and_keeps_the_body(self) -> None:  # RFC 9111 §4.3.4
        old = entry([("Cache-Control", "max-age=60"), ("ETag", '"v1"'), ("X-Kept", "yes")], body=b"body")
        renewed = policy.freshen(
            old, Headers([("Cache-Control", "max-age=120"), ("ETag", '"v1"')]), NOW + 100, NOW + 100, POLICY
        )
        assert renewed.entry is not None
        assert renewed.entry.body == b"body"
        assert renewed.entry.lifetime == 120
        assert renewed.entry.headers.get("x-kept") == "yes"
        assert policy.is_fresh(renewed.entry, NOW + 150)
