"""Cache keys and canonical targets: two requests share a key only when the origin receives the same request.

RFC 3986 §6.2.2 (syntax-based normalisation) is the only rewriting allowed: percent-encoding normalised, unreserved
characters decoded, dot-segments removed from that form; reserved characters stay encoded (§2.2).
"""

from __future__ import annotations

import pytest

from proxy.http import Headers
from proxy.keys import (
    InvalidTarget,
    canonical_target,
    encode_query,
    index_pattern,
    key_for,
    normalize_path,
    normalize_query,
    parse_query,
    sendable_query,
    split_target,
)


def key(target: str, headers: list[tuple[str, str]] | None = None, keyed: tuple[str, ...] = ()) -> str:
    path, query = split_target(target)
    return key_for(path, query, Headers(headers or []), keyed).entry


def canonical(target: str) -> str:
    return canonical_target(*split_target(target))


def test_parameter_names_in_any_order_share_a_key() -> None:
    assert key("/items?b=2&a=1") == key("/items?a=1&b=2")
    assert canonical("/items?b=2&a=1") == "/items?a=1&b=2"


def test_values_of_a_repeated_name_keep_their_order() -> None:  # a list is not a set: ?a=2&a=1 is another request
    assert canonical("/items?a=2&b=0&a=1") == "/items?a=2&a=1&b=0"
    assert key("/items?a=2&a=1") != key("/items?a=1&a=2")


def test_different_values_are_different_keys() -> None:
    assert key("/items?a=1") != key("/items?a=2")
    assert key("/items?a=1&a=2") != key("/items?a=1")


def test_a_bare_name_and_an_empty_value_stay_different() -> None:  # ?a and ?a= reach the origin as sent
    assert canonical("/s?a") == "/s?a"
    assert canonical("/s?a=") == "/s?a="
    assert key("/s?a") != key("/s?a=")


def test_plus_and_percent_20_are_not_rewritten() -> None:  # RFC 3986 §2.2: "+" is a sub-delim, not a space
    assert canonical("/s?q=a+b") == "/s?q=a+b"
    assert canonical("/s?q=a%20b") == "/s?q=a%20b"
    assert key("/s?q=a+b") != key("/s?q=a%20b")


def test_encoded_delimiters_in_the_query_stay_encoded() -> None:  # RFC 3986 §2.2: %26 is data, & a separator
    assert canonical("/s?q=a%26b%3Dc%23d%2B") == "/s?q=a%26b%3Dc%23d%2B"
    assert key("/s?q=a%26b") != key("/s?q=a&b")


def test_empty_pieces_are_dropped() -> None:
    assert canonical("/s?&a=1&&b=2&") == "/s?a=1&b=2"
    assert canonical("/s?") == "/s"


def test_unkeyed_headers_never_change_the_key() -> None:
    assert key("/x", [("X-Forwarded-Host", "evil.example"), ("Cookie", "a=1")]) == key("/x")


def test_allow_listed_headers_do() -> None:
    keyed = ("accept-language",)
    assert key("/x", [("Accept-Language", "de")], keyed) != key("/x", [("Accept-Language", "fr")], keyed)
    assert key("/x", [("Accept-Language", " de ")], keyed) == key("/x", [("accept-language", "de")], keyed)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/a/b", "/a/b"),
        ("/a/./b", "/a/b"),  # RFC 3986 §5.2.4
        ("/a/../b", "/b"),
        ("/../../etc/passwd", "/etc/passwd"),  # never above the root
        ("/a/..", "/"),
        ("/a/.", "/a/"),
        ("/%61%62%7e", "/ab~"),  # §6.2.2.2: unreserved characters decoded
        ("/%2e%2E/x", "/x"),  # ... so an encoded dot-segment is a dot-segment (§6.2.2.3 after §6.2.2.2)
        ("/a%2fb", "/a%2Fb"),  # §2.2: an encoded "/" is data, not a separator; §6.2.2.1: hex upper-cased
        ("/files/..%2Fadmin", "/files/..%2Fadmin"),  # not a dot-segment: the path never climbs
        ("/a%3Fb%23c", "/a%3Fb%23c"),  # encoded "?" and "#" stay in the path
        ("/a b", "/a%20b"),  # characters that may not appear literally are encoded
        ("/é", "/%C3%A9"),
        ("/%ff", "/%FF"),  # not UTF-8: kept byte for byte
        ("/a//b", "/a//b"),
        ("/;x=1,y@:", "/;x=1,y@:"),  # sub-delims, ":" and "@" are pchar
        ("items", "/items"),
        ("", "/"),
    ],
)
def test_paths_have_one_canonical_spelling(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


def test_an_encoded_slash_is_another_resource() -> None:  # RFC 3986 §2.2
    assert key("/a%2Fb") != key("/a/b")
    assert key("/a%2fb") == key("/a%2Fb")  # §6.2.2.1: case of the hex digits does not matter


@pytest.mark.parametrize("raw", ["/a%zz", "/a%", "/a%2"])
def test_invalid_percent_encoding_in_a_path_is_refused(raw: str) -> None:  # RFC 3986 §2.1
    with pytest.raises(InvalidTarget) as info:
        normalize_path(raw)
    assert info.value.status == 400


def test_invalid_percent_encoding_in_a_query_is_refused() -> None:
    with pytest.raises(InvalidTarget):
        parse_query("a=%zz")


def test_the_canonical_target_is_the_upstream_request() -> None:
    assert canonical("/s?q=a b&z=%2f&a&y=%7E") == "/s?a&q=a%20b&y=~&z=%2F"


def test_decoded_parameters_of_rest_events_are_encoded_as_data() -> None:
    # API Gateway REST decodes the query ("+" -> space, %2B -> "+"): every reserved character left in a value is data
    assert encode_query(["q"], ["a+b c&d=e#f%"]) == (("q", "a%2Bb%20c%26d%3De%23f%25"),)
    assert encode_query(["ünï"], ["x"]) == (("%C3%BCn%C3%AF", "x"),)
    assert encode_query(["a&b", "c"], ["1", "2"]) == (("a%26b", "1"), ("c", "2"))  # an "&" in a name is data too
    assert encode_query(["a", "b"], ["1", "2"]) == (("a", "1"), ("b", "2"))


def test_the_query_of_other_methods_is_forwarded_as_received() -> None:
    assert sendable_query("b=2&a=1&a=%7e&&c") == "b=2&a=1&a=%7e&&c"
    assert sendable_query("q=a b&r=é") == "q=a%20b&r=%C3%A9"  # only what cannot go on the wire is encoded


def test_crlf_cannot_survive_into_the_target() -> None:
    target = canonical("/x%0d%0aSet-Cookie:%20a=1?h=%0d%0a&i=\r\n")
    assert "\r" not in target
    assert "\n" not in target


def test_keys_are_bounded_in_length() -> None:
    long = "/" + "a" * 2000 + "?" + "&".join(f"p{i}=v" for i in range(200))
    assert len(key(long)) < 80


def test_oversized_targets_are_refused() -> None:
    with pytest.raises(InvalidTarget) as info:
        normalize_path("/" + "a" * 5000)
    assert info.value.status == 414
    with pytest.raises(InvalidTarget) as info:
        normalize_query((("a", "b" * 9000),))
    assert info.value.status == 414
    with pytest.raises(InvalidTarget) as info:
        parse_query("&".join(["a=1"] * 300))
    assert info.value.status == 400


def test_index_patterns_escape_glob_characters() -> None:
    assert index_pattern("/a*b", prefix=False).endswith(":i:/a\\*b")
    assert index_pattern("/items/", prefix=True).endswith(":i:/items/*")
