"""The stub's resources: deterministic items, the age guesser, a generated PNG, and HTTP validators.

Pure functions and one small in-memory store, no I/O: everything the handlers need to build a body, its
strong `ETag` and its `Last-Modified`, and to decide whether a conditional request deserves a 304.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_PNG_SIZE = 1024
DEFAULT_PNG_SIZE = 64
MAX_NAME_CHARS = 1000
ITEM_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

_ADJECTIVES = (
    "amber",
    "brisk",
    "calm",
    "dusty",
    "eager",
    "faded",
    "gentle",
    "hollow",
    "ivory",
    "jolly",
    "keen",
    "lunar",
    "misty",
    "noble",
    "olive",
    "plain",
    "quiet",
    "rusty",
    "silver",
    "tidy",
    "urban",
    "vivid",
)
_NOUNS = (
    "anchor",
    "bottle",
    "candle",
    "drum",
    "easel",
    "fiddle",
    "globe",
    "hammer",
    "inkwell",
    "jacket",
    "kettle",
    "lantern",
    "mirror",
    "notebook",
    "orchid",
    "pillow",
    "quilt",
    "radio",
    "saddle",
    "teapot",
)
_TAGS = ("new", "sale", "eco", "gift", "bulk", "limited", "classic", "handmade")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def json_bytes(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------------------------- items


@dataclass(frozen=True)
class Item:
    id: int
    version: int
    updated_at: datetime

    def to_json(self) -> dict[str, object]:
        h = _digest(f"item:{self.id}")
        name = f"{_ADJECTIVES[h[0] % len(_ADJECTIVES)]} {_NOUNS[h[1] % len(_NOUNS)]}"
        price_cents = 100 + int.from_bytes(_digest(f"price:{self.id}:{self.version}")[:4], "big") % 99_900
        tags = sorted({_TAGS[b % len(_TAGS)] for b in h[2:5]})
        return {
            "id": self.id,
            "version": self.version,
            "name": name,
            "price": round(price_cents / 100, 2),
            "currency": "EUR",
            "tags": tags,
            "stock": h[5] % 200,
            "description": f"The {name} no. {self.id}, revision {self.version}.",
            "updated_at": self.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


class ItemStore:
    """Items 1..count: version 1 at a fixed, per-id time, until `bump` makes a new version now."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._bumped: dict[int, Item] = {}

    def exists(self, item_id: int) -> bool:
        return 1 <= item_id <= self.count

    def get(self, item_id: int) -> Item:
        bumped = self._bumped.get(item_id)
        if bumped is not None:
            return bumped
        return Item(item_id, 1, ITEM_EPOCH + timedelta(minutes=item_id))

    def bump(self, item_id: int, now: datetime) -> Item:
        """A new version; its time is now, and always at least a second after the previous version's
        (Last-Modified has one-second resolution, so If-Modified-Since must see the change)."""
        current = self.get(item_id)
        stamp = now.astimezone(UTC).replace(microsecond=0)
        stamp = max(stamp, current.updated_at + timedelta(seconds=1))
        item = Item(item_id, current.version + 1, stamp)
        self._bumped[item_id] = item
        return item

    def reset(self) -> None:
        self._bumped.clear()


def page_of_items(store: ItemStore, page: int, size: int) -> tuple[dict[str, object], datetime | None]:
    """The JSON of one page of items, and the newest `updated_at` on it (None for an empty page)."""
    pages = math.ceil(store.count / size)
    first = (page - 1) * size + 1
    items = [store.get(i) for i in range(first, min(first + size, store.count + 1))]
    body: dict[str, object] = {
        "items": [item.to_json() for item in items],
        "page": page,
        "size": size,
        "total": store.count,
        "pages": pages,
        "next": f"/items?page={page + 1}&size={size}" if page < pages else None,
        "prev": f"/items?page={page - 1}&size={size}" if 1 < page <= pages + 1 else None,
    }
    newest = max((item.updated_at for item in items), default=None)
    return body, newest


# ---------------------------------------------------------------------------------------------- age guesser


def guess_age(name: str) -> dict[str, object]:
    """The age-guessing API: a stable guess per name; an empty name has no guess (as the real API)."""
    if not name:
        return {"count": 0, "name": name, "age": None}
    h = _digest("age:" + name.strip().lower())
    return {"count": 1 + int.from_bytes(h[:4], "big") % 250_000, "name": name, "age": 18 + h[4] % 73}


# ---------------------------------------------------------------------------------------------- bodies


@functools.lru_cache(maxsize=1)
def _filler_source() -> bytes:
    """MAX_BODY_BYTES of deterministic, barely compressible ASCII (base64 of a SHAKE-256 stream)."""
    raw = hashlib.shake_256(b"cachelab stub padding").digest(MAX_BODY_BYTES * 3 // 4 + 3)
    return base64.b64encode(raw)[:MAX_BODY_BYTES]


def padded_json(obj: dict[str, object], pad_to: int | None) -> bytes:
    """`obj` as JSON, exactly `pad_to` bytes long when that is larger than the natural size.

    The extra bytes go into a `"padding"` string field; when even an empty padding field would be too
    long, trailing spaces (still valid JSON) make up the difference.
    """
    body = json_bytes(obj)
    if pad_to is None or pad_to <= len(body):
        return body
    need = pad_to - len(json_bytes({**obj, "padding": ""}))
    if need < 0:
        return body + b" " * (pad_to - len(body))
    return json_bytes({**obj, "padding": _filler_source()[:need].decode()})


@functools.lru_cache(maxsize=8)
def png_image(size: int) -> bytes:
    """A valid size x size RGB PNG (a colour gradient), built with zlib only."""
    red = bytes(x * 255 // max(1, size - 1) for x in range(size))
    rows = []
    for y in range(size):
        row = bytearray(3 * size)
        row[0::3] = red
        row[1::3] = bytes([y * 255 // max(1, size - 1)]) * size
        row[2::3] = bytes([(y * 7) % 256]) * size
        rows.append(b"\x00" + bytes(row))  # filter type 0 (None) for each scanline

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------------------------- validators


def strong_etag(body: bytes) -> str:
    """A strong validator: the quoted hash of the exact bytes (so it changes with the item's version)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _etag_list(header: str) -> list[str]:
    tags = []
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag:
            tags.append(tag)
    return tags


def not_modified(
    etag: str, last_modified: datetime | None, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """RFC 9110 section 13.2.2 for GET/HEAD: If-None-Match (weak comparison) wins over If-Modified-Since,
    which is ignored when it is not a valid HTTP date."""
    if if_none_match is not None:
        tags = _etag_list(if_none_match)
        return "*" in tags or etag in tags
    if if_modified_since is None or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= since
