"""Building the proxy's answers, pure: headers, Cache-Status (RFC 9211), Age, and 304s to conditional requests.

Three kinds of answer: from a stored entry, the upstream's response passed on, and an error of the proxy's own.
Each carries `X-Cache` and a `Cache-Status` member named `cachelab`, after the upstream's own members (RFC 9211 §2).
"""

from __future__ import annotations

import json
import re

from proxy import policy, validation
from proxy.entry import Entry
from proxy.http import Headers, Response
from proxy.outcome import CacheStatus

CACHE_NAME = "cachelab"
# Fields of the upstream's answer that are ours to set.
OWN_HEADERS = frozenset({"age", "x-cache", "cache-status"})
_NOT_TOKEN = re.compile(r"[^A-Za-z0-9!#$%&'*+.^_`|~:/-]+")  # RFC 8941 §3.3.4 sf-token characters


def cache_status(
    *,
    hit: bool = False,
    fwd: str | None = None,
    fwd_status: int | None = None,
    stored: bool = False,
    collapsed: bool = False,
    ttl: int | None = None,
    detail: str | None = None,
    upstream: str | None = None,
) -> str:
    """The Cache-Status field value: the upstream's members, then ours (RFC 9211 §2)."""
    params = [CACHE_NAME]
    if hit:
        params.append("hit")
    if fwd is not None:
        params.append(f"fwd={fwd}")
        if fwd_status is not None:
            params.append(f"fwd-status={fwd_status}")
        if stored:
            params.append("stored")
        if collapsed:
            params.append("collapsed")
    if ttl is not None:
        params.append(f"ttl={ttl}")
    if detail:
        params.append(f"detail={detail_token(detail)}")
    member = "; ".join(params)
    return f"{upstream}, {member}" if upstream else member


def detail_token(text: str) -> str:
    """Free text as an RFC 8941 token (what a Cache-Status detail may be): "vary on x y" -> "vary-on-x-y"."""
    token = _NOT_TOKEN.sub("-", text.replace("_", "-")).strip("-") or "none"
    return token if token[0].isalpha() or token[0] == "*" else f"x-{token}"


def from_entry(
    entry: Entry,
    request_headers: Headers,
    *,
    now: float,
    cache: CacheStatus,
    head: bool,
    fwd: str | None = None,
    fwd_status: int | None = None,
    collapsed: bool = False,
    detail: str | None = None,
) -> tuple[Response, int]:
    """An answer from a stored entry, and its Age. `fwd` is None for a plain hit, else why the upstream was involved.

    A client's conditional GET/HEAD that the entry satisfies is answered 304 with the fields a 304 carries
    (RFC 9110 §13.1, §15.4.5)."""
    current = policy.current_age(entry, now)
    age, ttl = int(current), int(entry.lifetime - current)
    items = entry.headers.items()
    upstream = None
    if items and items[-1][0] == "cache-status":  # the origin's own, kept last (policy.stored_headers)
        upstream = items[-1][1]
        items = items[:-1]
    if fwd is None and detail is None and upstream is None:
        status_field = f"{CACHE_NAME}; hit; ttl={ttl}"  # a plain hit, the common case
    else:
        status_field = cache_status(
            hit=fwd is None,
            fwd=fwd,
            fwd_status=fwd_status,
            collapsed=collapsed,
            ttl=ttl,
            detail=detail,
            upstream=upstream,
        )
    status, body = entry.status, entry.body
    if validation.not_modified(request_headers, entry):
        status, body = 304, b""
        items = tuple(item for item in items if item[0] in validation.NOT_MODIFIED_HEADERS)
    headers = Headers.lowered((*items, ("age", str(age)), ("x-cache", cache.value), ("cache-status", status_field)))
    return Response(status, headers, b"" if head else body), age


def forwarded(
    response: Response,
    *,
    cache: CacheStatus,
    fwd: str,
    head: bool,
    stored: bool,
    age: int | None,
    detail: str | None = None,
) -> Response:
    """The upstream's answer passed on: end-to-end fields, its Age carried forward (RFC 9111 §5.1), ours added."""
    headers = response.headers.end_to_end()
    status_field = cache_status(
        fwd=fwd,
        fwd_status=response.status,
        stored=stored,
        detail=None if stored or detail == "stored" else detail,
        upstream=headers.get("cache-status"),
    )
    extra = (("age", str(age)),) if age is not None else ()
    headers = headers.without(OWN_HEADERS).plus(*extra, ("x-cache", cache.value), ("cache-status", status_field))
    return Response(response.status, headers, b"" if head else response.body)


def error(
    status: int,
    message: str,
    request_id: str,
    *,
    cache: CacheStatus,
    head: bool = False,
    fwd: str | None = None,
    collapsed: bool = False,
    detail: str | None = None,
) -> Response:
    """An answer of the proxy's own: `{"error": ..., "request_id": ...}`, never stored by anyone."""
    body = json.dumps({"error": message, "request_id": request_id}).encode()
    headers = Headers.lowered(
        (
            ("content-type", "application/json"),
            ("x-cache", cache.value),
            ("cache-status", cache_status(fwd=fwd, collapsed=collapsed, detail=detail)),
            ("cache-control", "no-store"),
        )
    )
    return Response(status, headers, b"" if head else body)
