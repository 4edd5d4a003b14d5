"""A stored response: metadata and body in one Redis value, so a fresh hit is a single GET."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from proxy.http import Headers

_MAGIC = b"CL1"
_HEADER = struct.Struct(">3sI")


class CorruptEntry(ValueError):
    """A stored value that is not an entry of this version (treated as a miss, never served)."""


@dataclass(frozen=True)
class Entry:
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
        meta = json.dumps(
            {
                "s": self.status,
                "h": self.headers.items(),
                "rq": self.request_time,
                "rs": self.response_time,
                "ia": self.initial_age,
                "lt": self.lifetime,
                "swr": self.stale_while_revalidate,
                "sie": self.stale_if_error,
                "ra": self.revalidate_always,
                "mr": self.must_revalidate,
            },
            separators=(",", ":"),
        ).encode()
        return _HEADER.pack(_MAGIC, len(meta)) + meta + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        try:
            magic, size = _HEADER.unpack_from(raw)
            if magic != _MAGIC:
                raise CorruptEntry("unknown entry format")
            start = _HEADER.size
            meta = json.loads(raw[start : start + size])
            return cls(
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
