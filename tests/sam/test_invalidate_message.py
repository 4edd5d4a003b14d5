"""The invalidation message shape (proxy/invalidate.py): accepted, rejected, and never anything but InvalidMessage."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.invalidate import (
    MAX_TARGET_CHARS,
    MAX_TARGETS,
    Invalidation,
    InvalidMessage,
    make_invalidation,
    parse_message,
)

pytestmark = pytest.mark.unit


def test_paths_and_prefixes_are_parsed_in_order_without_duplicates() -> None:
    parsed = parse_message('{"paths": ["/items/1", "/items?page=2", "/items/1"], "prefixes": ["/users/"]}')
    assert parsed == Invalidation(paths=("/items/1", "/items?page=2"), prefixes=("/users/",))
    assert parse_message('{"prefixes": ["/"]}') == Invalidation(prefixes=("/",))


def test_round_trip_of_what_the_cli_publishes() -> None:
    invalidation = make_invalidation(["/a", "/b?x=1"], ["/c/"])
    assert json.loads(invalidation.to_message()) == {"paths": ["/a", "/b?x=1"], "prefixes": ["/c/"]}
    assert parse_message(invalidation.to_message()) == invalidation


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ('"/items/1"', "JSON object"),
        ("{}", "at least one target"),
        ('{"paths": [], "prefixes": []}', "at least one target"),
        ('{"paths": "/items/1"}', '"paths" must be a list'),
        ('{"prefixes": {"a": 1}}', '"prefixes" must be a list'),
        ('{"paths": [1]}', "must be a string"),
        ('{"paths": [null]}', "must be a string"),
        ('{"paths": ["items/1"]}', "must start with '/'"),
        ('{"paths": ["/a b"]}', "whitespace or control"),
        ('{"paths": ["/a\\u0000"]}', "whitespace or control"),
        ('{"path": ["/items/1"]}', "unknown field(s) 'path'"),
        (json.dumps({"paths": ["/" + "a" * MAX_TARGET_CHARS]}), "longer than"),
        (json.dumps({"paths": [f"/{i}" for i in range(MAX_TARGETS)], "prefixes": ["/x"]}), f"at most {MAX_TARGETS}"),
    ],
)
def test_bad_messages_say_what_is_wrong(message: str, reason: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(message)
    assert reason in str(caught.value)


def test_non_string_message_is_rejected() -> None:
    with pytest.raises(InvalidMessage):
        parse_message(None)
    with pytest.raises(InvalidMessage, match="too large"):
        parse_message("x" * 1_000_000)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        json_values.map(json.dumps),
        st.fixed_dictionaries({}, optional={"paths": json_values, "prefixes": json_values}).map(json.dumps),
    )
)
def test_any_input_is_parsed_or_rejected_with_invalid_message(message: str) -> None:
    try:
        parsed = parse_message(message)
    except InvalidMessage:
        return
    targets = parsed.paths + parsed.prefixes
    assert 0 < len(targets) <= MAX_TARGETS
    assert all(t.startswith("/") and len(t) <= MAX_TARGET_CHARS for t in targets)
