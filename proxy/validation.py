"""Validation: the conditional requests a cache sends and answers (RFC 9110 §8.8, §13; RFC 9111 §4.3), pure."""

from __future__ import annotations

from proxy.cache_control import parse_http_date
from proxy.entry import Entry
from proxy.http import Headers

# RFC 9110 §15.4.5: the fields a 304 carries (those a 200 would have), plus Last-Modified to guide cache updates.
NOT_MODIFIED_HEADERS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified", "cache-status"}
)


def validators(entry: Entry) -> tuple[tuple[str, str], ...]:
    """RFC 9111 §4.3.1: If-None-Match from the ETag, else If-Modified-Since from Last-Modified."""
    if entry.etag:
        return (("if-none-match", entry.etag),)
    if entry.last_modified:
        return (("if-modified-since", entry.last_modified),)
    return ()


def validates(entry: Entry, not_modified_headers: Headers) -> bool:
    """RFC 9111 §4.3.4: whether a 304 received for our revalidation of `entry` identifies it for update.

    A strong ETag in the 304 must equal the stored one (strong comparison, RFC 9110 §8.8.3.2); a weak one must
    match it weakly; without an ETag, a Last-Modified in the 304 must equal the stored one. A 304 with no validator
    at all answers our conditional request for this very entry and is taken as identifying it (deliberately lenient:
    RFC 9110 §15.4.5 requires the ETag, many origins omit it). Otherwise the 304 updates nothing: the caller fetches
    the full response instead.
    """
    etag = not_modified_headers.get("etag")
    if etag is not None:
        stored = entry.etag
        if stored is None:
            return False
        etag, stored = etag.strip(), stored.strip()
        if not etag.startswith("W/"):
            return etag == stored  # a strong validator identifies only the same strong validator
        return etag.removeprefix("W/") == stored.removeprefix("W/")
    last_modified = not_modified_headers.get("last-modified")
    if last_modified is not None and entry.last_modified is not None:
        return last_modified.strip() == entry.last_modified.strip()
    return True


def not_modified(request_headers: Headers, entry: Entry) -> bool:
    """RFC 9110 §13.1.2, §13.1.3, §13.2.2 and RFC 9111 §4.3.2: whether a client's conditional GET/HEAD is answered
    304 from `entry`. If-None-Match (weak comparison) takes precedence; If-Modified-Since is evaluated only without
    it, against the stored Last-Modified, else Date, else the time the response was received. Only a stored 2xx
    answer is ever turned into a 304 (RFC 9110 §13.2.1)."""
    if not 200 <= entry.status < 300:
        return False
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        return entry.etag is not None and _etag_matches(if_none_match, entry.etag)
    since = parse_http_date(request_headers.get("if-modified-since"))
    if since is None:
        return False
    modified = parse_http_date(entry.last_modified) or parse_http_date(entry.headers.get("date"))
    return (modified if modified is not None else entry.response_time) <= since


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against each listed entity-tag, or "*"."""
    if if_none_match.strip() == "*":
        return True
    wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag.strip().removeprefix("W/") in wanted
