"""Hostile requests over raw sockets through the local API Gateway (`cachelab gateway`, the proxy in its execution
environments) in front of an echo origin and a real redis-server.

Every request is sent twice, in two rounds, so a poisoned entry would show: each answer in the second round must be
byte-for-byte the first round's, now from the cache. Nothing may be a 5xx (the origin is healthy), the gateway must
stay up, and neither the proxy nor the gateway may log an unhandled error or a traceback.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachelab import processes
from cachelab.gateway.cli import command, health_url
from proxy.config import ENVIRONMENT_NAMES
from tests.conftest import RedisServer
from tests.reliability.support import UNHANDLED, EchoOrigin, RawResponse, Reply, raw_request

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]


@dataclass
class Gateway:
    port: int
    log: Path
    origin: EchoOrigin

    def send(self, data: bytes) -> RawResponse | None:
        return raw_request(self.port, data)

    def get(self, target: bytes, *headers: bytes) -> RawResponse:
        lines = [b"GET " + target + b" HTTP/1.1", b"Host: api.example", *headers, b"Connection: close", b"", b""]
        response = self.send(b"\r\n".join(lines))
        assert response is not None, f"no answer to {target[:80]!r}"
        return response

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def gateway(redis_session: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed: apt-get install redis-server")
    origin = EchoOrigin()
    logs = tmp_path_factory.mktemp("gateway")
    port = processes.free_port()
    env = {**os.environ, "UPSTREAM_URL": origin.url, "REDIS_URL": redis_session.url, "LOG_LEVEL": "INFO",
           "CACHE_MAX_BODY_BYTES": "65536"}  # fmt: skip
    argv = command(port, warm=2, pass_env=ENVIRONMENT_NAMES)
    try:
        with processes.running(argv, port=port, env=env, log=logs / "gateway.log", health_url=health_url(port)):
            yield Gateway(port, logs / "gateway.log", origin)
    finally:
        origin.close()


@pytest.fixture
def fresh(gateway: Gateway, redis_session: RedisServer) -> Gateway:
    redis_session.client().flushall()
    gateway.origin.script = None
    return gateway


# ---------------------------------------------------------------------------------------------- the catalogue
LONG = b"a" * 3000
HOSTILE: list[bytes] = [
    b"/items/1",
    b"/items/1?b=2&a=1",
    b"/items/1?a=1&b=2",
    b"/items/1?a=1&a=2",
    b"/items/1?a=2&a=1",
    b"/items/1?a=1&a=1",
    b"/items/1?a=&a",
    b"/items/1?a=1;b=2",
    b"/items/1?a=%zz&%=%&%%",
    b"/items/1?q=%ff%fe&r=%c3%a9&s=%e2%82",
    b"/items/1?a=%0d%0aSet-Cookie:%20stolen=1",
    b"/items/%0d%0aSet-Cookie:%20stolen=1",
    b"/items/../__admin/stats",
    b"/items/./1/..",
    b"/items/%2e%2e/%2E%2e/x",
    b"/items/..%2f..%2fetc%2fpasswd",
    b"/items/.%2e/.%2E/y",
    b"/items/%252e%252e/z",
    b"/%2f%2f/double",
    b"//host.example/x",
    b"/items/%00/nul",
    b"/items/%/bad",
    b"/items/%e2%28%a1",
    b"/items/\xff\xfe/raw-bytes",
    b"/items/\xc3\xa9/utf8",
    b"/items/a%20b/c+d",
    b"/items/~user/;params",
    b"/items/1#fragment",
    b"/" + LONG,
    b"/items/1?q=" + LONG,
    b"/items/1?q=" + LONG * 3,
    b"/items/1?" + b"&".join(b"p%d=1" % i for i in range(300)),
    b"/" + LONG * 25,
    b"http://evil.example/items/1",
]


def test_hostile_targets_get_their_own_answer_twice_and_never_a_5xx(fresh: Gateway) -> None:
    first = {target: fresh.get(target) for target in HOSTILE}
    second = {target: fresh.get(target) for target in HOSTILE}
    for target in HOSTILE:
        a, b = first[target], second[target]
        assert a.status < 500, (target, a.status, a.body[:200])
        assert b.status == a.status, target
        if a.status == 200:
            assert b.body == a.body, f"{target!r}: the cached answer is not the first answer"
            assert b.header("X-Cache") == "HIT", target
        assert a.header("Set-Cookie") is None
        assert b.header("Set-Cookie") is None
    # A few whose meaning is unambiguous: what the origin answered is the normalised request.
    assert first[b"/items/../__admin/stats"].body == b"/__admin/stats"
    assert first[b"/items/%2e%2e/%2E%2e/x"].body == b"/x"
    assert first[b"/items/..%2f..%2fetc%2fpasswd"].body == b"/items/..%2F..%2Fetc%2Fpasswd"  # %2F never climbs
    assert first[b"/items/1?b=2&a=1"].body == first[b"/items/1?a=1&b=2"].body == b"/items/1?a=1&b=2"
    assert first[b"/items/1?a=1&a=2"].body == b"/items/1?a=1&a=2"  # a repeated name keeps its values' order
    assert first[b"/items/1?a=2&a=1"].body == b"/items/1?a=2&a=1"
    assert first[b"/items/%/bad"].status == 400  # RFC 3986 §2.1: not percent-encoding
    assert first[b"/items/1#fragment"].body == b"/items/1"  # RFC 9110 §7.1: never part of the target
    assert first[b"/items/1?a=1&a=1"].body != first[b"/items/1?a=1&a=2"].body
    assert first[b"http://evil.example/items/1"].body == b"/items/1"
    assert first[b"/" + LONG].status == 414  # the proxy's 2 KiB path limit
    assert first[b"/items/1?q=" + LONG].status == 200  # 3000 bytes: within the 8 KiB query limit
    assert first[b"/items/1?q=" + LONG * 3].status == 414
    assert first[b"/" + LONG * 25].status == 431  # the gateway's 64 KiB request head
    for seen in fresh.origin.seen:  # what went upstream: printable ASCII, no dot segments, our own Host
        assert all(0x21 <= ord(c) <= 0x7E for c in seen.target), seen.target
        assert "/../" not in seen.target
        assert "/./" not in seen.target
        assert seen.headers["host"] == f"127.0.0.1:{fresh.origin.port}"
    assert "evil.example" not in "".join(s.target for s in fresh.origin.seen)


MALFORMED: list[tuple[bytes, set[int]]] = [
    (b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\rInjected: 1\r\nConnection: close\r\n\r\n", {400}),  # bare CR
    (b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\nInjected: 1\r\nConnection: close\r\n\r\n", {400}),  # bare LF
    (b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\x00\r\nConnection: close\r\n\r\n", {400}),  # NUL
    (b"GET /x HTTP/1.1\r\nHost: a\r\nX-\xe2\x82\xac: 1\r\nConnection: close\r\n\r\n", {400}),  # a name beyond ASCII
    (b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 17_000 + b"\r\nConnection: close\r\n\r\n", {431}),
    (b"GET /x HTTP/1.1\r\nHost: a\r\n" + b"X-Many: 1\r\n" * 8000 + b"Connection: close\r\n\r\n", {431}),
    (b"GET /x HTTP/1.1\r\nHost: a\r\n folded: 1\r\nConnection: close\r\n\r\n", {400}),
    (b"GET /x HTTP/9.9\r\nConnection: close\r\n\r\n", {400}),
    (b"GET  /x HTTP/1.1\r\nConnection: close\r\n\r\n", {400}),
    (b"G\xc3\x89T /x HTTP/1.1\r\nConnection: close\r\n\r\n", {400}),
    (b"GET x HTTP/1.1\r\nConnection: close\r\n\r\n", {400}),
    (b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd", {400}),
    (b"POST /x HTTP/1.1\r\nContent-Length: -1\r\nConnection: close\r\n\r\n", {400}),
    (
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: close\r\n\r\n0\r\n\r\n",
        {400, 501},
    ),
    (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n", {400}),
    (b"PURGE /items/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", {403}),  # not an API Gateway method
    (b"GET /items/1 HTTP/1.0\r\n\r\n", {200}),
    (b"\r\n\r\nGET /items/1 HTTP/1.1\r\nConnection: close\r\n\r\n", {200, 400}),
]


@pytest.mark.parametrize(("data", "statuses"), MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_malformed_requests_get_a_4xx_not_a_crash(fresh: Gateway, data: bytes, statuses: set[int]) -> None:
    response = fresh.send(data)
    assert response is not None
    assert response.status in statuses, (response.status, response.body[:200])
    assert response.header("Set-Cookie") is None
    assert response.header("Injected") is None


def test_huge_and_binary_origin_answers_pass_through_intact(fresh: Gateway) -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB of every byte value
    fresh.origin.script = lambda seen: (
        Reply(headers=[("Content-Type", "application/octet-stream"), ("Cache-Control", "max-age=60")], body=blob)
        if seen.target == "/blob"
        else Reply(headers=[("Content-Type", "image/png"), ("Cache-Control", "max-age=60")], body=blob[:30_000])
        if seen.target == "/small.png"
        else None
    )
    for _ in range(2):
        big = fresh.get(b"/blob")
        assert (big.status, big.body, big.header("X-Cache")) == (200, blob, "MISS")  # above CACHE_MAX_BODY_BYTES
    small = [fresh.get(b"/small.png") for _ in range(2)]
    assert [s.body for s in small] == [blob[:30_000]] * 2
    assert [s.header("X-Cache") for s in small] == ["MISS", "HIT"]


REQUEST_LINE_BYTES = [b"GET", b"HEAD", b"POST", b"PURGE", b" ", b"/", b"?", b"#", b"%", b"%2e", b"..", b"\r\n",
                      b"\n", b"\r", b"\x00", b"\xff", b"\xc3\xa9", b"HTTP/1.1", b"HTTP/1.0", b":", b"Host: a",
                      b"Content-Length: 5", b"Transfer-Encoding: chunked", b"a", b"=", b"&", b"\t", b"http://x"]  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(pieces=st.lists(st.sampled_from(REQUEST_LINE_BYTES), min_size=1, max_size=14))
def test_random_bytes_never_crash_the_gateway_or_the_proxy(fresh: Gateway, pieces: list[bytes]) -> None:
    data = b"".join(pieces) + b"\r\nConnection: close\r\n\r\n"
    response = fresh.send(data)
    if response is not None:  # a server may close on bytes it cannot frame as a request
        assert response.status < 500 or response.status in (501, 505), (data, response.status, response.body[:200])


def test_after_the_fuzz_the_gateway_is_healthy_and_nothing_crashed(gateway: Gateway) -> None:
    assert gateway.get(b"/__gateway/health").status == 200
    assert gateway.get(b"/items/after").status == 200
    logged = gateway.logged()
    assert UNHANDLED not in logged
    assert "Traceback" not in logged
    assert '"status":5' not in logged  # no request line of the proxy reports a 5xx
