"""A stored response: metadata and body in one Redis value, so a fresh hit is a single GET.

The value is laid out for a hit, which needs everything but decodes it without a parser:

    "CL2" | flags u8 | status u16 | request_time, response_time, initial_age, lifetime, swr, sie: 6 x f64
          | header block length u32 | header block | body

The header block is the stored fields as UTF-8, "name NUL value NUL name NUL value" (names lower-case). A field
holding a NUL (no valid HTTP field does) makes the block JSON instead (flag 4). Values of the earlier layout
("CL1", JSON metadata) still decode, so entries stored before an upgrade stay usable until they expire.
"""

from __future__ import annotations

import json
import struct
from typing import NamedTuple

from proxy.http import Headers

_MAGIC = b"CL2"
_LAYOUT = struct.Struct(">3sBH6dI")
_REVALIDATE_ALWAYS, _MUST_REVALIDATE, _JSON_HEADERS = 1, 2, 4
_V1_MAGIC = b"CL1"
_V1_HEADER = struct.Struct(">3sI")


class CorruptEntry(ValueError):
    """A stored value that is not an entry of this version (treated as a miss, never served)."""


class Entry(NamedTuple):
    status: int
    headers: Headers
    body: bytes
    request_time: float  # when the request that produced it was sent (RFC 9111 §4.2.3)
    response_time: float  # when its response was received
    initial_age: float  # corrected_initial_age (RFC 9111 §4.2.3)
    lifetime: float  # freshness lifetime (RFC 9111 §4.2.1)
    stale_while_revalidate: float  # seconds past expiry it may be served while one refresh runs (RFC 5861 §3)
    stale_if_error: float  # seconds past expiry it may be served when the upstream fails (RFC 5861 §4)
    revalidate_always: bool = False  # response no-cache (RFC 9111 §5.2.2.4)
    # must-revalidate, proxy-revalidate, or s-maxage (RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.10): once stale, never
    # served without a successful validation, whatever a client's max-stale says (only the origin's own explicit
    # stale-* directives still apply, RFC 5861)
    must_revalidate: bool = False

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    def encode(self) -> bytes:
        flags = (_REVALIDATE_ALWAYS if self.revalidate_always else 0) | (
            _MUST_REVALIDATE if self.must_revalidate else 0
        )
        items = self.headers.items()
        if any("\0" in name or "\0" in value for name, value in items):
            block = json.dumps(items, separators=(",", ":")).encode()
            flags |= _JSON_HEADERS
        else:
            block = "\0".join(f"{name}\0{value}" for name, value in items).encode("utf-8", "surrogateescape")
        head = _LAYOUT.pack(
            _MAGIC,
            flags,
            self.status,
            self.request_time,
            self.response_time,
            self.initial_age,
            self.lifetime,
            self.stale_while_revalidate,
            self.stale_if_error,
            len(block),
        )
        return head + block + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        if raw[:3] != _MAGIC:
            return _decode_v1(raw)
        try:
            _, flags, status, rq, rs, ia, lt, swr, sie, size = _LAYOUT.unpack_from(raw)
            start = _LAYOUT.size
            end = start + size
            if len(raw) < end:
                raise CorruptEntry("truncated entry")
            block = raw[start:end].decode("utf-8", "surrogateescape")
            if flags & _JSON_HEADERS:
                items = tuple((str(k), str(v)) for k, v in json.loads(block))
            elif block:
                parts = block.split("\0")
                items = tuple(zip(parts[::2], parts[1::2], strict=True))
            else:
                items = ()
        except CorruptEntry:
            raise
        except (struct.error, ValueError, TypeError) as exc:
            raise CorruptEntry(f"unreadable entry: {exc}") from None
        return cls(
            status,
            Headers.lowered(items),
            raw[end:],
            rq,
            rs,
            ia,
            lt,
            swr,
            sie,
            bool(flags & _REVALIDATE_ALWAYS),
            bool(flags & _MUST_REVALIDATE),
        )


def _decode_v1(raw: bytes) -> Entry:
    """The earlier layout: "CL1" | u32 length | JSON metadata | body."""
    try:
        magic, size = _V1_HEADER.unpack_from(raw)
        if magic != _V1_MAGIC:
            raise CorruptEntry("unknown entry format")
        start = _V1_HEADER.size
        meta = json.loads(raw[start : start + size])
        return Entry(
            status=int(meta["s"]),
            headers=Headers.lowered(tuple((str(k), str(v)) for k, v in meta["h"])),
            body=bytes(raw[start + size :]),
            request_time=float(meta["rq"]),
            response_time=float(meta["rs"]),
            initial_age=float(meta["ia"]),
            lifetime=float(meta["lt"]),
            stale_while_revalidate=float(meta["swr"]),
            stale_if_error=float(meta["sie"]),
            revalidate_always=bool(meta["ra"]),
            must_revalidate=bool(meta.get("mr", False)),
        )
    except CorruptEntry:
        raise
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"unreadable entry: {exc}") from None


def decode_entry(raw: bytes | None) -> Entry | None:
    """A stored value as an entry; None when nothing is stored or the value is not an entry of this version."""
    if raw is None:
        return None
    try:
        return Entry.decode(raw)
    except CorruptEntry:
        return None
