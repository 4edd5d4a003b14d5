"""The HTTP/1.1 side of the gateway, byte for byte: keep-alive, pipelining, chunked bodies, bad requests."""

from __future__ import annotations

import json
import socket

from cachelab import processes
from tests.gateway.support import Gateway, raw_exchange, read_responses, split_responses


def _request(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


def test_pipelined_requests_are_answered_in_order(gw: Gateway) -> None:
    data = raw_exchange(gw.port, _request("/echo?n=1") + _request("/cookies") + _request("/echo?n=3"),
                        expect_responses=3)  # fmt: skip
    replies = split_responses(data)
    assert [status for status, _, _ in replies] == [200, 201, 200]
    assert json.loads(replies[0][2])["event"]["queryStringParameters"] == {"n": "1"}
    assert json.loads(replies[2][2])["event"]["queryStringParameters"] == {"n": "3"}
    assert all(headers["connection"] == "keep-alive" for _, headers, _ in replies)


def test_keep_alive_connection_serves_many_requests(gw: Gateway) -> None:
    with socket.create_connection((processes.LOOPBACK, gw.port), timeout=10) as sock:
        for n in range(5):
            sock.sendall(_request(f"/echo?n={n}"))
            ((status, _headers, body),) = split_responses(read_responses(sock, 1))
            assert status == 200
            assert json.loads(body)["event"]["queryStringParameters"] == {"n": str(n)}


def test_connection_close_is_honoured(gw: Gateway) -> None:
    data = raw_exchange(gw.port, _request("/echo", "Connection: close\r\n"), expect_responses=2)
    replies = split_responses(data)
    assert len(replies) == 1  # then the server closed the connection
    assert replies[0][1]["connection"] == "close"


def test_chunked_request_body(gw: Gateway) -> None:
    request = (
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: ignored\r\n\r\n"
    )
    ((status, _headers, body),) = split_responses(raw_exchange(gw.port, request))
    assert status == 200
    assert json.loads(body)["event"]["body"] == "hello, world"


def test_expect_100_continue(gw: Gateway) -> None:
    with socket.create_connection((processes.LOOPBACK, gw.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"ping")
        received = read_responses(sock, 1, received=interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :])
    ((status, _headers, body),) = split_responses(received)
    assert status == 200
    assert json.loads(body)["event"]["body"] == "ping"


def test_malformed_request_line_is_400_json(gw: Gateway) -> None:
    ((status, headers, body),) = split_responses(raw_exchange(gw.port, b"NONSENSE\r\n\r\n"))
    assert status == 400
    assert headers["connection"] == "close"
    assert "message" in json.loads(body)


def test_body_over_10_mb_is_413(gw: Gateway) -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10485761\r\n\r\n"
    ((status, _headers, body),) = split_responses(raw_exchange(gw.port, request))
    assert status == 413
    assert json.loads(body) == {"message": "Request Too Long"}


def test_oversized_head_is_431(gw: Gateway) -> None:
    request = b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    ((status, _headers, _body),) = split_responses(raw_exchange(gw.port, request))
    assert status == 431


def test_unsupported_transfer_encoding_is_501(gw: Gateway) -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"
    ((status, _headers, _body),) = split_responses(raw_exchange(gw.port, request))
    assert status == 501
