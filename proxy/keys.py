"""Request targets in canonical form, and the cache keys made from them.

The canonical target is exactly what a GET or HEAD sends upstream, so two requests share a key only when the origin
receives the same request: an unkeyed header cannot poison the cache, and only rewrites that the origin cannot tell
apart are made (RFC 3986 §6.2.2):

- percent-encoding is normalised: encoded unreserved characters are decoded (`%7E` -> `~`), the hex digits of every
  other escape are upper-cased, and characters that may not appear literally are encoded (a space -> `%20`);
  encoded reserved characters stay encoded (`%2F`, `%3F`, `%23`, `%26`, `%3D`, `%2B`: RFC 3986 §2.2), so `/a%2Fb`
  and `/a/b` are different resources;
- dot-segments are removed (RFC 3986 §5.2.4) from that form only: `%2E%2E` is `..`, `..%2F` is a name;
- query parameters are ordered by name; values of a repeated name keep their order; `?a` and `?a=` stay different,
  and `+` stays `+`. Empty `&&` pieces are dropped.

Invalid percent-encoding (`%` not followed by two hex digits) in an encoded path or query is refused (400).
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Callable
from typing import NamedTuple

from proxy.http import Headers, QueryParam

KEY_PREFIX = "cl:1:"
MAX_PATH_BYTES = 2048
MAX_QUERY_BYTES = 8192
MAX_QUERY_PARAMS = 256
MAX_KEY_HEADER_BYTES = 4096
# Paths are kept readable in the index key up to this length; longer ones are cut (purges then err on the side
# of deleting more, never less).
INDEX_PATH_CHARS = 200

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# RFC 3986 §3.3 pchar without pct-encoded, and §3.4 query (pchar, "/" and "?"), as regex character classes.
_PCHAR = r"A-Za-z0-9\-._~!$&'()*+,;=:@"
_QUERY_CHAR = _PCHAR + "/?"
# One escape (valid or not) or one character that may not appear literally.
_PATH_WORK = re.compile(r"%(?:[0-9A-Fa-f]{2})?|[^" + _PCHAR + "/]")
_QUERY_WORK = re.compile(r"%(?:[0-9A-Fa-f]{2})?|[^" + _QUERY_CHAR + "]")
_CANONICAL_PATH = re.compile(r"(?:/[A-Za-z0-9_~!$'()*+,;:@-][A-Za-z0-9._~!$&'()*+,;=:@-]*)*/?")


class InvalidTarget(ValueError):
    """The request target cannot be cached or forwarded safely; the message says why (4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _normalizer(pattern: re.Pattern[str], where: str) -> Callable[[str], str]:
    def fix(match: re.Match[str]) -> str:
        text = match.group(0)
        if text[0] == "%":
            if len(text) == 1:
                raise InvalidTarget(f"invalid percent-encoding in the {where} (a '%' not followed by two hex digits)")
            char = chr(int(text[1:], 16))
            return char if char in _UNRESERVED else text.upper()
        return _utf8_escapes(text, where)

    def normalize(text: str) -> str:
        return pattern.sub(fix, text) if pattern.search(text) else text

    return normalize


_normalize_path_text = _normalizer(_PATH_WORK, "path")
_normalize_query_text = _normalizer(_QUERY_WORK, "query")


def normalize_path(raw: str) -> str:
    """A percent-encoded path in canonical form: escapes normalised, then dot-segments removed (RFC 3986 §6.2.2)."""
    if len(raw) <= MAX_PATH_BYTES and _CANONICAL_PATH.fullmatch(raw):
        return raw or "/"  # already canonical: the common case, kept cheap
    if len(raw) > MAX_PATH_BYTES * 3:
        raise InvalidTarget(f"path longer than {MAX_PATH_BYTES} bytes", status=414)
    text = _normalize_path_text(raw if raw.startswith("/") else "/" + raw)
    if len(text) > MAX_PATH_BYTES * 3:
        raise InvalidTarget(f"path longer than {MAX_PATH_BYTES} bytes", status=414)
    segments: list[str] = []
    parts = text.split("/")[1:]
    for index, segment in enumerate(parts):
        last = index == len(parts) - 1
        if segment in (".", ".."):
            if segment == ".." and segments:
                segments.pop()
            if last:
                segments.append("")
            continue
        segments.append(segment)
    path = "/" + "/".join(segments)
    if _decoded_length(path) > MAX_PATH_BYTES:
        raise InvalidTarget(f"path longer than {MAX_PATH_BYTES} bytes", status=414)
    return path


def escape_decoded_path(decoded: str) -> str:
    """An already percent-decoded path (HTTP API events) as an encoded one: its "%" are literal characters."""
    return decoded.replace("%", "%25")


def parse_query(raw: str) -> tuple[QueryParam, ...]:
    """A raw (percent-encoded) query string as normalised parameters, in the order received."""
    if not raw:
        return ()
    if len(raw) > MAX_QUERY_BYTES * 3:
        raise InvalidTarget(f"query string longer than {MAX_QUERY_BYTES} bytes", status=414)
    pieces = [piece for piece in raw.split("&") if piece]
    if len(pieces) > MAX_QUERY_PARAMS:
        raise InvalidTarget(f"more than {MAX_QUERY_PARAMS} query parameters")
    params: list[QueryParam] = []
    for piece in pieces:
        name, equals, value = piece.partition("=")
        params.append((_normalize_query_text(name), _normalize_query_text(value) if equals else None))
    return tuple(params)


_QUERY_UNSENDABLE = re.compile(r"[^" + _QUERY_CHAR + "%]")


def sendable_query(raw: str) -> str:
    """A raw query string as received, only with the characters that may not appear literally encoded: what the
    methods forwarded as they are send upstream. Its escapes were checked by parse_query."""
    return _QUERY_UNSENDABLE.sub(lambda match: _utf8_escapes(match.group(0), "query"), raw)


def _utf8_escapes(text: str, where: str) -> str:
    try:
        return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidTarget(f"the {where} is not valid Unicode text") from None


def encode_query(names: list[str], values: list[str]) -> tuple[QueryParam, ...]:
    """Decoded parameters, as REST API events carry them, encoded: every reserved character in them is data."""
    if len(names) > MAX_QUERY_PARAMS:
        raise InvalidTarget(f"more than {MAX_QUERY_PARAMS} query parameters")
    joined = "&".join(names) + "&" + "&".join(values)
    if _UNRESERVED_RUN.fullmatch(joined) and joined.count("&") == 2 * len(names) - 1:  # nothing to encode
        return tuple(zip(names, values, strict=True))
    return tuple((_encode_component(name), _encode_component(value)) for name, value in zip(names, values, strict=True))


_UNRESERVED_RUN = re.compile(r"[A-Za-z0-9._~&-]*")  # ("&" only joins the components of encode_query's check)


def _encode_component(text: str) -> str:
    if "&" not in text and _UNRESERVED_RUN.fullmatch(text):
        return text
    return "".join(char if char in _UNRESERVED else _utf8_escapes(char, "query") for char in text)


def normalize_query(params: tuple[QueryParam, ...]) -> tuple[QueryParam, ...]:
    """Parameters ordered by name; the values of a repeated name keep their order (a stable sort)."""
    if len(params) < 2:
        if params and len(params[0][0]) + len(params[0][1] or "") > MAX_QUERY_BYTES:
            _check_query_size(params)
        return params
    _check_query_size(params)
    return tuple(sorted(params, key=_BY_NAME))


def _check_query_size(params: tuple[QueryParam, ...]) -> None:
    size = sum(len(name) + len(value or "") + 2 for name, value in params)
    if size > MAX_QUERY_BYTES and (size > MAX_QUERY_BYTES * 3 or _decoded_query_size(params) > MAX_QUERY_BYTES):
        raise InvalidTarget(f"query string longer than {MAX_QUERY_BYTES} bytes", status=414)


_BY_NAME = operator.itemgetter(0)


def query_string(params: tuple[QueryParam, ...]) -> str:
    return "&".join([name if value is None else f"{name}={value}" for name, value in params])


def canonical_target(path: str, query: tuple[QueryParam, ...]) -> str:
    return f"{path}?{query_string(query)}" if query else path


def split_target(target: str) -> tuple[str, tuple[QueryParam, ...]]:
    """A percent-encoded path with an optional query (and no fragment), in canonical form."""
    path, _, query = target.partition("?")
    return normalize_path(path), normalize_query(parse_query(query))


def _decoded_length(text: str) -> int:
    return len(text) - 2 * text.count("%")


def _decoded_query_size(params: tuple[QueryParam, ...]) -> int:
    return sum(_decoded_length(name) + _decoded_length(value or "") + 2 for name, value in params)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def index_path(path: str) -> str:
    return path if len(path) <= INDEX_PATH_CHARS else path[:INDEX_PATH_CHARS] + "~"


class CacheKey(NamedTuple):
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
    def variant_index(self) -> str:
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
    query: tuple[QueryParam, ...],
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
    return CacheKey(uri_digest(target or canonical_target(path, query)), variant, path)


def index_pattern(path: str, *, prefix: bool) -> str:
    """The SCAN MATCH pattern of the index keys of every URI whose path is `path` (or starts with it)."""
    if prefix or len(path) > INDEX_PATH_CHARS:
        return f"{KEY_PREFIX}{{*}}:i:{_glob_escape(path[:INDEX_PATH_CHARS])}*"
    return f"{KEY_PREFIX}{{*}}:i:{_glob_escape(path)}"
