"""Cache keys: the canonical upstream target plus the allow-listed request headers, nothing else.

The canonical target (normalised path, query parameters sorted) is also exactly what is sent upstream, so two
requests share a key only if they make the same upstream request: parameter order cannot fragment the cache and
an unkeyed header cannot poison it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote_to_bytes

from proxy.http import Headers

KEY_PREFIX = "cl:1:"
MAX_PATH_BYTES = 2048
MAX_QUERY_BYTES = 8192
MAX_KEY_HEADER_BYTES = 4096
# Paths are kept readable in the index key up to this length; longer ones are cut (purges then err on the side
# of deleting more, never less).
INDEX_PATH_CHARS = 200
_PATH_SAFE = "/!$&'()*+,;=:@-._~"  # RFC 3986 pchar without "%"
_QUERY_SAFE = "!$'()*,;:@/?-._~"  # query chars minus the separators & = + that would change the meaning


class InvalidTarget(ValueError):
    """The request target cannot be cached or forwarded safely; the message says why (4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


_CANONICAL_PATH = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?")
_PLAIN_QUERY_PART = re.compile(r"[A-Za-z0-9._~-]*")


def normalize_path(raw: str) -> str:
    """Percent-decode, drop dot segments (RFC 3986 §5.2.4) and re-encode with one canonical spelling."""
    if len(raw) <= MAX_PATH_BYTES and _CANONICAL_PATH.fullmatch(raw) and "/." not in raw:
        return raw or "/"  # already canonical: the common case, kept cheap
    if not raw.startswith("/"):
        raw = "/" + raw
    decoded = unquote_to_bytes(raw)
    if len(decoded) > MAX_PATH_BYTES:
        raise InvalidTarget(f"path longer than {MAX_PATH_BYTES} bytes", status=414)
    segments: list[bytes] = []
    parts = decoded.split(b"/")[1:]
    for index, segment in enumerate(parts):
        last = index == len(parts) - 1
        if segment == b".":
            if last:
                segments.append(b"")
            continue
        if segment == b"..":
            if segments:
                segments.pop()
            if last:
                segments.append(b"")
            continue
        segments.append(segment)
    return "/" + "/".join(quote(s, safe=_PATH_SAFE) for s in segments)


def normalize_query(pairs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Sort the parameters by name, then value; order never matters to the key or the upstream."""
    size = sum(len(k) + len(v) + 2 for k, v in pairs)
    if size > MAX_QUERY_BYTES:
        raise InvalidTarget(f"query string longer than {MAX_QUERY_BYTES} bytes", status=414)
    return tuple(sorted(pairs))


MAX_QUERY_PARAMS = 256


def parse_query(raw: str) -> list[tuple[str, str]]:
    """Decode a raw query string into (name, value) pairs; bytes that are not UTF-8 survive the round trip."""
    if len(raw) > MAX_QUERY_BYTES * 3:
        raise InvalidTarget(f"query string longer than {MAX_QUERY_BYTES} bytes", status=414)
    try:
        return parse_qsl(raw, keep_blank_values=True, errors="surrogateescape", max_num_fields=MAX_QUERY_PARAMS)
    except ValueError:
        raise InvalidTarget(f"more than {MAX_QUERY_PARAMS} query parameters") from None


def split_target(target: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A path with an optional query, in canonical form."""
    path, _, query = target.partition("?")
    return normalize_path(path), normalize_query(parse_query(query))


def _q(value: str) -> str:
    if _PLAIN_QUERY_PART.fullmatch(value):
        return value
    return quote(value, safe=_QUERY_SAFE, errors="surrogateescape")


def canonical_target(path: str, query: tuple[tuple[str, str], ...]) -> str:
    if not query:
        return path
    return path + "?" + "&".join(f"{_q(k)}={_q(v)}" for k, v in query)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def index_path(path: str) -> str:
    return path if len(path) <= INDEX_PATH_CHARS else path[:INDEX_PATH_CHARS] + "~"


@dataclass(frozen=True)
class CacheKey:
    """Where one cached variant lives. All keys of one URI share a Redis Cluster hash slot ({uri})."""

    uri: str  # hex digest of the canonical target
    variant: str  # hex digest of the keyed header values, "0" when there are none
    path: str  # the canonical path, for prefix purges

    @property
    def entry(self) -> str:
        return f"{KEY_PREFIX}{{{self.uri}}}:e:{self.variant}"

    @property
    def lock(self) -> str:
        return f"{KEY_PREFIX}{{{self.uri}}}:l:{self.variant}"

    @property
    def outcome(self) -> str:
        return f"{KEY_PREFIX}{{{self.uri}}}:o:{self.variant}"

    @property
    def index(self) -> str:
        """A set of the URI's variants; its name carries the path so prefix purges can find it."""
        return index_key(self.uri, self.path)

    @property
    def short(self) -> str:
        """A short, non-reversible id for logs."""
        return f"{self.uri[:12]}.{self.variant[:4]}"


def index_key(uri: str, path: str) -> str:
    return f"{KEY_PREFIX}{{{uri}}}:i:{index_path(path)}"


def uri_digest(target: str) -> str:
    return hashlib.sha256(("GET " + target).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def key_for(
    path: str,
    query: tuple[tuple[str, str], ...],
    headers: Headers,
    key_headers: tuple[str, ...],
    target: str | None = None,
) -> CacheKey:
    """The key of a GET/HEAD request (HEAD is answered from the GET entry, RFC 9110 §9.3.2).

    `target` is canonical_target(path, query), when the caller has it already."""
    variant = "0"
    if key_headers:
        material = "\n".join(f"{name}:{' '.join((headers.get(name) or '').split())}" for name in key_headers)
        if len(material) > MAX_KEY_HEADER_BYTES:
            raise InvalidTarget("keyed request headers are too large", status=431)
        variant = hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return CacheKey(uri=uri_digest(target or canonical_target(path, query)), variant=variant, path=path)


def index_pattern(path: str, *, prefix: bool) -> str:
    """The SCAN MATCH pattern of the index keys of every URI whose path is `path` (or starts with it)."""
    if prefix or len(path) > INDEX_PATH_CHARS:
        return f"{KEY_PREFIX}{{*}}:i:{_glob_escape(path[:INDEX_PATH_CHARS])}*"
    return f"{KEY_PREFIX}{{*}}:i:{_glob_escape(path)}"
