"""Parsing of Cache-Control (RFC 9111 §5.2), Expires/Date (RFC 9110 §5.6.7) and Age (RFC 9111 §5.1)."""

from __future__ import annotations

import email.utils
import re
from typing import NamedTuple

# RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31.
DELTA_SECONDS_MAX = 2_147_483_648
_DIRECTIVE = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?\s*(?:,|$)')


class CacheControl(NamedTuple):
    directives: dict[str, str | None]

    @classmethod
    def parse(cls, value: str | None) -> CacheControl:
        """Directive names are case-insensitive; the first occurrence of a directive wins (RFC 9111 §4.2.1)."""
        if not value:
            return NO_DIRECTIVES
        found: dict[str, str | None] = {}
        if value:
            for match in _DIRECTIVE.finditer(value):
                name = match.group(1).lower()
                arg = match.group(2)
                if arg is not None and arg.startswith('"'):
                    arg = re.sub(r"\\(.)", r"\1", arg[1:-1])
                found.setdefault(name, arg)
        return cls(found)

    def has(self, name: str) -> bool:
        return name in self.directives

    def seconds(self, name: str) -> int | None:
        """A delta-seconds argument; present but invalid counts as 0 (the most restrictive reading)."""
        if name not in self.directives:
            return None
        raw = self.directives[name]
        if raw is None or not raw.isdigit():
            return 0
        return min(int(raw), DELTA_SECONDS_MAX)


NO_DIRECTIVES = CacheControl({})


def parse_http_date(value: str | None) -> float | None:
    """An HTTP-date as a Unix timestamp; None when absent or invalid."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def parse_age(value: str | None) -> float:
    if not value:
        return 0.0
    first = value.split(",")[0].strip()
    return float(min(int(first), DELTA_SECONDS_MAX)) if first.isdigit() else 0.0
