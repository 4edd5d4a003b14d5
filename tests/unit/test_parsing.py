"""Header parsing, configuration, entries and the circuit breaker."""

from __future__ import annotations

import pytest

from proxy.cache_control import CacheControl, parse_age, parse_http_date
from proxy.config import ENVIRONMENT_NAMES, ConfigError, Settings
from proxy.entry import CorruptEntry, Entry
from proxy.http import Headers
from proxy.store import CircuitBreaker


class TestCacheControl:
    def test_directives_are_case_insensitive_and_arguments_may_be_quoted(self) -> None:  # RFC 9111 §5.2
        cc = CacheControl.parse('Max-Age=60, no-cache="set-cookie", PUBLIC, ext="a, b"')
        assert cc.seconds("max-age") == 60
        assert cc.has("no-cache")
        assert cc.has("public")
        assert cc.directives["ext"] == "a, b"

    def test_first_occurrence_wins(self) -> None:  # RFC 9111 §4.2.1
        assert CacheControl.parse("max-age=5, max-age=500").seconds("max-age") == 5

    @pytest.mark.parametrize("value", ["", ",,,", "=", "max-age", "max-age=-1", "max-age=1e3", "\x00\x01"])
    def test_malformed_values_never_raise(self, value: str) -> None:
        cc = CacheControl.parse(value)
        assert cc.seconds("max-age") in (None, 0)

    def test_dates_and_ages(self) -> None:  # RFC 9110 §5.6.7, RFC 9111 §5.1
        assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
        assert parse_http_date("not a date") is None
        assert parse_http_date("0") is None
        assert parse_age("17") == 17
        assert parse_age("-3") == 0
        assert parse_age("x") == 0


class TestSettings:
    def test_environment_names_are_exactly_what_from_env_reads(self) -> None:
        class Recording(dict[str, str]):
            def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
                read.append(key)
                return super().get(key, default)

        read: list[str] = []
        Settings.from_env(Recording(UPSTREAM_URL="https://api.example.com"))
        assert sorted(set(read)) == sorted(ENVIRONMENT_NAMES)

    def test_defaults(self) -> None:
        s = Settings.from_env({"UPSTREAM_URL": "https://api.example.com/"})
        assert s.upstream_url == "https://api.example.com"
        assert s.redis_url == "redis://127.0.0.1:6379/0"
        assert (s.policy.default_ttl, s.policy.stale_while_revalidate, s.policy.stale_if_error) == (300, 30, 86400)
        assert (s.upstream_timeout, s.policy.max_body_bytes, s.redis_cluster) == (5, 1048576, False)

    @pytest.mark.parametrize(
        ("env", "named"),
        [
            ({}, "UPSTREAM_URL"),
            ({"UPSTREAM_URL": "ftp://x"}, "UPSTREAM_URL"),
            ({"UPSTREAM_URL": "http://"}, "UPSTREAM_URL"),
            ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
            ({"REDIS_URL": "redis://h:notaport"}, "REDIS_URL"),
            ({"CACHE_TTL_SECONDS": "-1"}, "CACHE_TTL_SECONDS"),
            ({"CACHE_TTL_SECONDS": "five"}, "CACHE_TTL_SECONDS"),
            ({"CACHE_STALE_IF_ERROR_SECONDS": "nan"}, "CACHE_STALE_IF_ERROR_SECONDS"),
            ({"UPSTREAM_TIMEOUT_SECONDS": "0"}, "UPSTREAM_TIMEOUT_SECONDS"),
            ({"CACHE_MAX_BODY_BYTES": "1.5"}, "CACHE_MAX_BODY_BYTES"),
            ({"REDIS_CLUSTER": "maybe"}, "REDIS_CLUSTER"),
            ({"CACHE_KEY_HEADERS": "accept,bad header"}, "CACHE_KEY_HEADERS"),
            ({"REDIS_AUTH_SECRET_ARN": "token123"}, "REDIS_AUTH_SECRET_ARN"),
        ],
    )
    def test_invalid_values_name_the_variable(self, env: dict[str, str], named: str) -> None:
        base = {"UPSTREAM_URL": "https://api.example.com"} if named != "UPSTREAM_URL" else {}
        with pytest.raises(ConfigError, match=named):
            Settings.from_env({**base, **env})


def test_entries_round_trip_and_corrupt_values_are_refused() -> None:
    entry = Entry(200, Headers([("content-type", "image/png")]), b"\x89PNG\x00\xff", 1.0, 2.0, 0.5, 60, 30, 600)
    assert Entry.decode(entry.encode()) == entry
    for raw in (b"", b"garbage", b"CL1\x00\x00\x00\x05{bad}", entry.encode()[:10]):
        with pytest.raises(CorruptEntry):
            Entry.decode(raw)


class TestCircuitBreaker:
    def test_opens_after_consecutive_failures_then_probes_once_and_closes(self) -> None:
        now = [0.0]
        breaker = CircuitBreaker(threshold=3, cooldown=1.0, clock=lambda: now[0])
        for _ in range(2):
            breaker.failure()
        assert breaker.allow()  # two failures: still closed
        breaker.failure()
        assert breaker.state == "open"
        assert not breaker.allow()
        now[0] = 1.0
        assert breaker.allow()  # the one probe
        assert not breaker.allow()  # nobody else while it runs
        breaker.success()
        assert breaker.state == "closed"
        assert breaker.allow()

    def test_a_failed_probe_doubles_the_cooldown(self) -> None:
        now = [0.0]
        breaker = CircuitBreaker(threshold=1, cooldown=1.0, max_cooldown=3.0, clock=lambda: now[0])
        breaker.failure()
        now[0] = 1.0
        assert breaker.allow()
        breaker.failure()
        now[0] = 2.5
        assert not breaker.allow()
        now[0] = 3.0
        assert breaker.allow()
        breaker.failure()
        now[0] = 5.9
        assert not breaker.allow()  # capped at 3 s
        now[0] = 6.0
        assert breaker.allow()
