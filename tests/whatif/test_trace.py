"""From records to events: the proxy's own keys (proxy.keys), filters, and the reorder window."""

from __future__ import annotations

from whatif.parsers import Record, Rejected
from whatif.simulator import Event
from whatif.trace import Trace


def rec(line: int, time: float, target: str, method: str = "GET", **extra: object) -> Record:
    return Record(line, time, method, target, **extra)  # type: ignore[arg-type]


def events(trace: Trace, items: list[Record | Rejected]) -> list[Event]:
    return list(trace.events(items))


def test_keys_are_the_proxys_keys() -> None:
    trace = Trace(host="api.example.com")
    got = events(
        trace,
        [
            rec(1, 0.0, "/items?b=2&a=1"),
            rec(2, 1.0, "/items?a=1&b=2"),  # parameter order never fragments the cache
            rec(3, 2.0, "/x/../items?a=1&b=2"),  # dot segments removed (RFC 3986 §5.2.4)
            rec(4, 3.0, "https://API.example.com/items?a=1&b=2"),  # absolute form, our host (--log-host)
            rec(5, 4.0, "/items?a=1&b=3"),
            rec(6, 5.0, "/items?a=1&b=2", method="HEAD"),  # HEAD shares the GET entry (RFC 9110 §9.3.2)
        ],
    )
    keys = [e.key for e in got]
    assert len(set(keys[:4] + keys[5:])) == 1
    assert keys[4] != keys[0]
    assert keys[0].startswith("cl:1:{")  # the entry's Redis key, as proxy.keys.key_for builds it


def test_key_headers_split_variants() -> None:
    headers_a = (("Accept-Language", "de"),)
    headers_b = (("Accept-Language", "fr"),)
    items = [rec(1, 0.0, "/a", headers=headers_a), rec(2, 1.0, "/a", headers=headers_b)]
    assert len({e.key for e in events(Trace(), list(items))}) == 1
    assert len({e.key for e in events(Trace(key_headers=("accept-language",)), list(items))}) == 2


def test_methods_hosts_and_targets_left_out_are_counted_and_quoted() -> None:
    trace = Trace(host="api.example.com")
    got = events(
        trace,
        [
            rec(1, 0.0, "/a", method="POST"),
            rec(2, 0.0, "/a", method="DELETE"),
            rec(3, 0.0, "http://other.example/a"),
            rec(4, 0.0, "*"),
            rec(5, 0.0, "/" + "x" * 5000),
            Rejected(6, "unparsable", "garbage"),
            rec(7, 0.0, "/ok"),
        ],
    )
    assert len(got) == 1
    assert trace.problems.counts == {
        "not GET/HEAD": 2,
        "another host": 1,
        "invalid target": 2,
        "unparsable": 1,
    }
    text = "\n".join(trace.problems.lines())
    assert "2 not GET/HEAD (DELETE 1, POST 1)" in text
    assert "line 3: 'http://other.example/a': not api.example.com" in text
    assert "path longer than 2048 bytes" in text  # the proxy's own 414 reason


def test_the_first_absolute_url_names_the_host_when_none_is_given() -> None:
    trace = Trace(guess_host=True)  # HAR: every URL is absolute
    got = events(trace, [rec(1, 0.0, "https://API.example.com/a"), rec(2, 1.0, "https://cdn.example.net/b")])
    assert len(got) == 1
    assert trace.host == "api.example.com"
    assert trace.host_guessed
    access_log = Trace()  # in an access log an absolute-form target names a host the server does not serve
    assert events(access_log, [rec(1, 0.0, "http://evil.example/a"), rec(2, 1.0, "/b")])[0].time == 1.0
    assert "give --log-host" in access_log.problems.lines()[1]


def test_slightly_out_of_order_lines_are_put_back_in_order_far_ones_left_out() -> None:
    trace = Trace(reorder_seconds=5.0)
    got = events(trace, [rec(1, 10.0, "/a"), rec(2, 12.0, "/b"), rec(3, 9.0, "/c"), rec(4, 30.0, "/d"),
                         rec(5, 11.0, "/e")])  # fmt: skip
    assert [e.time for e in got] == [9.0, 10.0, 12.0, 30.0]
    assert trace.stats.reordered == 1
    assert trace.problems.counts == {"out of order": 1}
    assert trace.stats.requests == 4
    assert trace.stats.duration == 21.0
