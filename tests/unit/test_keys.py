"""Cache keys: order-independent, canonical, bounded, and blind to unkeyed headers."""

from __future__ import annotations

import pytest

from proxy.http import Headers
from proxy.keys import (
    InvalidTarget,
    canonical_target,
    index_pattern,
    key_for,
    normalize_path,
    normalize_query,
    split_target,
)


def key(target: str, headers: list[tuple[str, str]] | None = None, keyed: tuple[str, ...] = ()) -> str:
    path, query = split_target(target)
    return key_for(path, query, Headers(headers or []), keyed).entry


def test_query_parameter_order_never_fragments_the_cache() -> None:
    assert key("/items?b=2&a=1&a=0") == key("/items?a=0&a=1&b=2")


def test_different_values_are_different_keys() -> None:
    assert key("/items?a=1") != key("/items?a=2")
    assert key("/items?a=1&a=2") != key("/items?a=1")


def test_unkeyed_headers_never_change_the_key() -> None:
    assert key("/x", [("X-Forwarded-Host", "evil.example"), ("Cookie", "a=1")]) == key("/x")


def test_allow_listed_headers_do() -> None:
    keyed = ("accept-language",)
    assert key("/x", [("Accept-Language", "de")], keyed) != key("/x", [("Accept-Language", "fr")], keyed)
    assert key("/x", [("Accept-Language", " de ")], keyed) == key("/x", [("accept-language", "de")], keyed)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/a/b", "/a/b"),
        ("/a/./b", "/a/b"),
        ("/a/../b", "/b"),
        ("/../../etc/passwd", "/etc/passwd"),  # RFC 3986 §5.2.4: never above the root
        ("/%61%62", "/ab"),  # unreserved characters decoded (RFC 3986 §6.2.2.2)
        ("/a%2fb", "/a/b"),
        ("/a b", "/a%20b"),
        ("/%ff", "/%FF"),  # not UTF-8: kept byte for byte
        ("/a/..", "/"),
        ("items", "/items"),
    ],
)
def test_paths_have_one_canonical_spelling(raw: str, canonical: str) -> None:
    assert normalize_path(raw) == canonical


def test_the_key_is_the_upstream_request() -> None:
    path, query = split_target("/s?q=a b&z=%2F&a")
    assert canonical_target(path, query) == "/s?a=&q=a%20b&z=/"


def test_crlf_cannot_survive_into_the_target() -> None:
    path, query = split_target("/x%0d%0aSet-Cookie:%20a=1?h=%0d%0a")
    assert "\r" not in canonical_target(path, query)
    assert "\n" not in canonical_target(path, query)


def test_keys_are_bounded_in_length() -> None:
    long = "/" + "a" * 2000 + "?" + "&".join(f"p{i}=v" for i in range(200))
    assert len(key(long)) < 80


def test_oversized_targets_are_refused() -> None:
    with pytest.raises(InvalidTarget) as info:
        normalize_path("/" + "a" * 5000)
    assert info.value.status == 414
    with pytest.raises(InvalidTarget):
        normalize_query([("a", "b" * 9000)])


def test_index_patterns_escape_glob_characters() -> None:
    assert index_pattern("/a*b", prefix=False).endswith(":i:/a\\*b")
    assert index_pattern("/items/", prefix=True).endswith(":i:/items/*")
