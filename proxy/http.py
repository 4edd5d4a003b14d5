"""Plain HTTP value types shared by the core and the adapters (no I/O here)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

# RFC 9110 §7.6.1: connection-specific fields a proxy must not forward; plus framing fields the
# Lambda integration recomputes.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


class Headers:
    """An ordered, case-insensitive, multi-valued header list. Names are kept lower-case."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple((k.lower(), v) for k, v in items)
        self._index: dict[str, str] | None = None

    @classmethod
    def lowered(cls, items: tuple[tuple[str, str], ...]) -> Headers:
        """From items whose names are already lower-case (hot paths: stored entries, our own additions)."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._index = None
        return headers

    def get(self, name: str) -> str | None:
        """All values of `name` joined with ", " (RFC 9110 §5.3), or None."""
        index = self._index
        if index is None:  # built on the first lookup: one pass, then every lookup is a dict access
            index = {}
            for key, value in self._items:
                index[key] = f"{index[key]}, {value}" if key in index else value
            self._index = index
        return index.get(name) if name.islower() else index.get(name.lower())

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self._items if k == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> tuple[tuple[str, str], ...]:
        return self._items

    def without(self, names: Iterable[str]) -> Headers:
        drop = {n.lower() for n in names}
        return Headers.lowered(tuple((k, v) for k, v in self._items if k not in drop))

    def plus(self, *items: tuple[str, str]) -> Headers:
        """These headers followed by `items` (names already lower-case)."""
        return Headers.lowered(self._items + items)

    def end_to_end(self) -> Headers:
        """Drop hop-by-hop fields, including those the Connection field names (RFC 9110 §7.6.1)."""
        listed = {t.strip().lower() for v in self.get_all("connection") for t in v.split(",")}
        return self.without(HOP_BY_HOP | listed)

    def replace(self, name: str, value: str) -> Headers:
        return Headers((*self.without([name]).items(), (name.lower(), value)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


# One query parameter, percent-encoded in canonical form (proxy.keys): (name, value), value None for a bare `?name`.
QueryParam = tuple[str, str | None]


NO_HEADERS = Headers()

# The value types of the request path are NamedTuples: immutable, and built in a fraction of a frozen dataclass's
# time (one of each is made per request).


# The methods answered from the cache (RFC 9111 §2, §3; HEAD from the GET entry, RFC 9110 §9.3.2).
CACHEABLE_METHODS = frozenset({"GET", "HEAD"})


class Request(NamedTuple):
    """A client request after event parsing: path and query are in canonical form (proxy.keys), the parameters
    ordered by name; `raw_query` is the query as received, for the methods that are forwarded as they are (empty for
    GET and HEAD, which send the canonical query)."""

    method: str  # upper-case
    path: str
    query: tuple[QueryParam, ...] = ()
    headers: Headers = NO_HEADERS
    body: bytes = b""
    raw_query: str = ""


class Response(NamedTuple):
    status: int
    headers: Headers = NO_HEADERS
    body: bytes = b""
