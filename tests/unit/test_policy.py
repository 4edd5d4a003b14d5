"""The pure caching core against RFC 9111 (HTTP Caching) and RFC 5861 (stale-* extensions).

Each test names the section it checks. Times are plain numbers: no clock, no I/O.
"""

from __future__ import annotations

import pytest

from proxy import policy, validation
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

    @pytest.mark.parametrize("vary", ["Accept-Encoding", "Accept-Language", "accept-encoding, User-Agent", "Cookie"])
    def test_vary_on_a_header_the_upstream_never_sees_from_clients_is_stored(self, vary: str) -> None:
        # RFC 9111 §4.1, matched on the request the proxy sends: it never forwards these (Accept-Encoding is always
        # its own "identity"), so every request of the key gets the very response the stored one is
        assert plan([("Vary", vary)]).store

    def test_vary_on_a_keyed_header_is_stored(self) -> None:  # RFC 9111 §4.1: the header is part of the key
        keyed = Policy(key_headers=("accept-language",))
        assert plan([("Vary", "Accept-Language")], pol=keyed).store

    def test_vary_on_authorization_is_not_stored(self) -> None:  # RFC 9111 §4.1: forwarded but not keyed
        result = plan([("Cache-Control", "public"), ("Vary", "Authorization")], request=[("Authorization", "a")])
        assert (result.store, result.reason) == (False, "vary-authorization")

    @pytest.mark.parametrize("vary", ['"accept"', "accept language", "a;b"])
    def test_a_malformed_vary_is_not_stored(self, vary: str) -> None:  # RFC 9110 §12.5.5: field names or "*"
        assert plan([("Vary", vary)]).reason == "vary-invalid"

    def test_large_bodies_pass_through_uncached(self) -> None:
        assert plan([], body=b"x" * 101).reason == "body too large"

    def test_no_cache_is_stored_but_never_fresh(self) -> None:  # RFC 9111 §5.2.2.4
        e = entry([("Cache-Control", "no-cache, max-age=60"), ("ETag", '"a"')])
        assert e.revalidate_always
        assert not policy.is_fresh(e, NOW)

    def test_hop_by_hop_and_per_response_headers_are_not_stored(self) -> None:  # RFC 9110 §7.6.1, RFC 9111 §3.1
        e = entry([("Connection", "x-trace"), ("X-Trace", "1"), ("Keep-Alive", "5"), ("Age", "3"), ("ETag", '"v"')])
        assert [name for name, _ in e.headers.items()] == ["etag", "date"]

    def test_a_response_without_date_is_stored_with_the_time_it_was_received(self) -> None:  # RFC 9110 §6.6.1
        assert entry([]).headers.get("date") == DATE
        assert entry([("Date", "Mon, 13 Nov 2023 00:00:00 GMT")]).headers.get("date") == "Mon, 13 Nov 2023 00:00:00 GMT"

    def test_expires_without_date_counts_from_the_time_received(self) -> None:  # RFC 9110 §6.6.1, RFC 9111 §4.2.1
        assert entry([("Expires", "Tue, 14 Nov 2023 22:14:20 GMT")]).lifetime == 60

    def test_the_origins_cache_status_is_stored(self) -> None:  # RFC 9211 §2: kept ahead of ours in every answer
        assert entry([("Cache-Status", "OriginCache; hit")]).headers.get("cache-status") == "OriginCache; hit"


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

    @pytest.mark.parametrize(
        ("stored", "received", "identified"),
        [
            ('"v1"', '"v1"', True),
            ('"v1"', '"v2"', False),  # a strong validator identifies only the same one
            ('W/"v1"', '"v1"', False),  # strong comparison: a weak stored tag never equals a strong one
            ('"v1"', 'W/"v1"', True),  # a weak validator matches weakly
            ('W/"v1"', 'W/"v2"', False),
        ],
    )
    def test_a_304_updates_only_the_entry_its_validator_names(  # RFC 9111 §4.3.4, RFC 9110 §8.8.3.2
        self, stored: str, received: str, identified: bool
    ) -> None:
        old = entry([("Cache-Control", "max-age=60"), ("ETag", stored)])
        assert validation.validates(old, Headers([("ETag", received)])) is identified

    def test_a_304_with_last_modified_must_match_the_stored_one(self) -> None:  # RFC 9111 §4.3.4
        old = entry([("Last-Modified", DATE)])
        assert validation.validates(old, Headers([("Last-Modified", DATE)]))
        assert not validation.validates(old, Headers([("Last-Modified", "Wed, 15 Nov 2023 00:00:00 GMT")]))

    def test_a_304_without_validators_answers_our_conditional_request(self) -> None:  # lenient, see validates()
        old = entry([("ETag", '"v1"')])
        assert validation.validates(old, Headers([("Cache-Control", "max-age=5")]))

    def test_a_304_with_an_etag_when_none_is_stored_names_something_else(self) -> None:  # RFC 9111 §4.3.4
        assert not validation.validates(entry([("Last-Modified", DATE)]), Headers([("ETag", '"v2"')]))


class TestRequestDirectives:
    FRESH = [("Cache-Control", "max-age=60")]

    def lookup(self, request_cc: str, response: list[tuple[str, str]], at: float) -> policy.Lookup:
        return policy.lookup("GET", Headers([("Cache-Control", request_cc)]), entry(response), NOW + at)

    def test_only_if_cached_with_nothing_stored_is_unsatisfiable(self) -> None:  # RFC 9111 §5.2.1.7
        decision = policy.lookup("GET", Headers([("Cache-Control", "only-if-cached")]), None, NOW)
        assert decision.action is policy.Action.UNSATISFIABLE

    def test_only_if_cached_with_a_fresh_entry_serves_it(self) -> None:  # RFC 9111 §5.2.1.7
        assert self.lookup("only-if-cached", self.FRESH, 10).action is policy.Action.SERVE

    def test_only_if_cached_never_revalidates_a_stale_entry(self) -> None:  # RFC 9111 §5.2.1.7
        assert self.lookup("only-if-cached", self.FRESH, 70).action is policy.Action.UNSATISFIABLE

    def test_only_if_cached_with_max_stale_serves_stale(self) -> None:  # RFC 9111 §5.2.1.7 with §5.2.1.2
        decision = self.lookup("only-if-cached, max-stale", self.FRESH, 70)
        assert (decision.action, decision.stale) == (policy.Action.SERVE, True)

    def test_min_fresh_wants_that_much_freshness_left(self) -> None:  # RFC 9111 §5.2.1.3
        assert self.lookup("min-fresh=20", self.FRESH, 30).action is policy.Action.SERVE  # 30 s left
        decision = self.lookup("min-fresh=20", self.FRESH, 45)  # 15 s left
        assert (decision.action, decision.reason) == (policy.Action.FETCH, "request")

    def test_max_stale_without_a_value_accepts_any_staleness(self) -> None:  # RFC 9111 §5.2.1.2
        decision = self.lookup("max-stale", self.FRESH, 10_000)
        assert (decision.action, decision.stale, decision.reason) == (policy.Action.SERVE, True, "max-stale")

    def test_max_stale_with_a_value_bounds_the_staleness(self) -> None:  # RFC 9111 §5.2.1.2
        assert self.lookup("max-stale=10", self.FRESH, 69).action is policy.Action.SERVE
        assert self.lookup("max-stale=10", self.FRESH, 71).action is policy.Action.FETCH

    @pytest.mark.parametrize("directive", ["must-revalidate", "proxy-revalidate", "no-cache"])
    def test_max_stale_never_overrides_the_origin(self, directive: str) -> None:  # RFC 9111 §5.2.2.2, §5.2.2.8
        assert (
            self.lookup("max-stale", [("Cache-Control", f"max-age=60, {directive}")], 70).action is policy.Action.FETCH
        )

    def test_max_stale_never_overrides_s_maxage(self) -> None:  # RFC 9111 §5.2.2.10: s-maxage implies proxy-revalidate
        assert self.lookup("max-stale", [("Cache-Control", "s-maxage=60")], 70).action is policy.Action.FETCH


class TestClientConditionals:
    """What the cache answers a conditional GET with (RFC 9110 §13.1, §13.2.2; RFC 9111 §4.3.2)."""

    LM = "Tue, 14 Nov 2023 20:00:00 GMT"

    def not_modified(self, request: list[tuple[str, str]], response: list[tuple[str, str]], status: int = 200) -> bool:
        return validation.not_modified(Headers(request), entry(response, status=status))

    def test_if_none_match_uses_weak_comparison(self) -> None:  # RFC 9110 §13.1.2
        assert self.not_modified([("If-None-Match", 'W/"a", "v1"')], [("ETag", '"v1"')])
        assert self.not_modified([("If-None-Match", '"v1"')], [("ETag", 'W/"v1"')])
        assert self.not_modified([("If-None-Match", "*")], [("ETag", '"v1"')])
        assert not self.not_modified([("If-None-Match", '"v2"')], [("ETag", '"v1"')])

    def test_if_modified_since_equal_to_last_modified_is_not_modified(self) -> None:  # RFC 9110 §13.1.3
        assert self.not_modified([("If-Modified-Since", self.LM)], [("Last-Modified", self.LM)])
        assert self.not_modified([("If-Modified-Since", DATE)], [("Last-Modified", self.LM)])  # later than it
        assert not self.not_modified(
            [("If-Modified-Since", "Tue, 14 Nov 2023 19:59:59 GMT")], [("Last-Modified", self.LM)]
        )

    def test_if_modified_since_without_last_modified_uses_date(self) -> None:  # RFC 9111 §4.3.2
        assert self.not_modified([("If-Modified-Since", DATE)], [("Date", DATE)])
        assert not self.not_modified([("If-Modified-Since", self.LM)], [("Date", DATE)])

    def test_if_none_match_takes_precedence(self) -> None:  # RFC 9110 §13.2.2, §13.1.3
        request = [("If-None-Match", '"v2"'), ("If-Modified-Since", DATE)]
        assert not self.not_modified(request, [("ETag", '"v1"'), ("Last-Modified", self.LM)])

    def test_an_invalid_if_modified_since_is_ignored(self) -> None:  # RFC 9110 §13.1.3
        assert not self.not_modified([("If-Modified-Since", "yesterday")], [("Last-Modified", self.LM)])

    def test_only_2xx_answers_become_304(self) -> None:  # RFC 9110 §13.2.1
        assert not self.not_modified([("If-None-Match", "*")], [("ETag", '"v1"')], status=404)


class TestAgeAndDate:
    def test_a_forwarded_answer_keeps_the_upstream_age_plus_its_time_with_us(self) -> None:  # RFC 9111 §5.1, §4.2.3
        assert policy.forwarded_age(Headers([("Age", "100")]), NOW - 1, NOW, NOW + 0.5) == 101

    def test_a_first_hand_answer_gets_no_age(self) -> None:  # RFC 9111 §5.1: Age implies it came from a cache
        assert policy.forwarded_age(Headers(), NOW - 1, NOW, NOW) is None

    def test_date_is_added_only_when_missing(self) -> None:  # RFC 9110 §6.6.1
        assert policy.with_date(Headers(), NOW).get("date") == DATE
        assert policy.with_date(Headers([("Date", "x")]), NOW).get("date") == "x"


class TestInvalidation:
    BASE = "https://api.example.com/v1"

    def targets(self, *headers: tuple[str, str], request: str = "/items") -> list[str]:
        return policy.invalidated_targets(Headers(list(headers)), self.BASE + request, self.BASE)

    def test_location_and_content_location_of_the_same_origin(self) -> None:  # RFC 9111 §4.4
        found = self.targets(
            ("Location", "/v1/items/7"), ("Content-Location", "https://api.example.com/v1/items/7?x=1")
        )
        assert found == ["/items/7", "/items/7?x=1"]

    def test_relative_references_resolve_against_the_target(self) -> None:  # RFC 3986 §5.2
        assert self.targets(("Location", "items/8"), request="/items/") == ["/items/items/8"]

    @pytest.mark.parametrize(
        "location", ["https://other.example/v1/items/7", "http://api.example.com/v1/items/7", "/v2/items/7", "/v10"]
    )
    def test_other_origins_and_paths_outside_the_upstream_are_never_invalidated(self, location: str) -> None:  # §4.4
        assert self.targets(("Location", location)) == []

    def test_only_unsafe_methods_invalidate(self) -> None:  # RFC 9111 §4.4, RFC 9110 §9.2.1
        assert [m for m in ("GET", "HEAD", "OPTIONS", "TRACE", "POST", "PUT", "PATCH", "DELETE") if policy.invalidates(m)] == [
            "POST", "PUT", "PATCH", "DELETE"
        ]  # fmt: skip
