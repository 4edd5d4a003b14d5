"""Access-log formats -> `Record`s. Pure: lines (or a HAR document) in, records and rejections out.

Formats (`FORMATS`):

* ``apigw-json``: API Gateway access logs in JSON, one object a line, with $context fields: `httpMethod`,
  `path` (`$context.path`, the stage prefix is removed when `stage` is logged), `requestTimeEpoch` (ms) or
  `requestTime` (CLF time), `status`, `integrationLatency` (ms), `responseLength`. API Gateway has no $context
  variable for the query string, so these keys are path-only.
* ``clf`` / ``combined``: Common and Combined Log Format (nginx, Apache); the time resolution is one second.
* ``har``: an HTTP Archive (a browser's or a proxy's capture): `startedDateTime`, `request.method`,
  `request.url`, `request.headers`, `response.status`, `timings.wait` (ms).
* ``csv``: `timestamp,method,path[,status,latency_ms]`, with or without that header line; the timestamp is Unix
  seconds (or milliseconds) or ISO 8601.
* ``cachelab``: the proxy's own JSON log lines (proxy/observability.py). They carry the cache key's hash, not the
  URL: that hash *is* the proxy's key, so they can be simulated (with the proxy's settings of the time), but not
  replayed, and --key-headers has no effect (the hash already includes the keyed headers).

One module (a little over 400 lines) on purpose: the formats share the time parsers, the record types and the
detection; each format is one or two functions.
"""

from __future__ import annotations

import calendar
import csv
import functools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple

FORMATS: tuple[str, ...] = ("apigw-json", "clf", "combined", "har", "csv", "cachelab")
DETECT_LINES = 50
_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
_CLF = re.compile(
    r'^(\S+) (\S+) (.+?) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}|-) (\d+|-)'
    r'(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?'
)
_CLF_TIME = re.compile(r"^(\d{2})/(\w{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")
_METHOD = re.compile(r"^[A-Za-z]{1,16}$")
_CSV_NAMES = {
    "timestamp": "time",
    "time": "time",
    "ts": "time",
    "method": "method",
    "path": "target",
    "url": "target",
    "target": "target",
    "path_with_query": "target",
    "status": "status",
    "latency": "latency",
    "latency_ms": "latency",
}


class Record(NamedTuple):
    """One request of a log."""

    line: int  # line number (HAR: entry number), for messages
    time: float  # arrival, Unix seconds
    method: str
    target: str  # path with query, or an absolute URL; "" for cachelab lines
    status: int | None = None  # the answer the log shows
    latency: float | None = None  # seconds (upstream or integration latency)
    size: int | None = None  # response bytes
    headers: tuple[tuple[str, str], ...] = ()
    key: str | None = None  # cachelab lines: the proxy's key hash


class Rejected(NamedTuple):
    """A line that gives no usable request, and why (`kind` is one of the Problems kinds)."""

    line: int
    kind: str
    text: str
    reason: str = ""


class Ignored(NamedTuple):
    """A line that is not a request and is not a problem (a header row, a Lambda START line, a proxy event)."""

    line: int


Parsed = Record | Rejected | Ignored


class FormatError(ValueError):
    """The log's format cannot be recognised or read at all."""


# ---------------------------------------------------------------------------------------------- times


@functools.lru_cache(maxsize=4096)  # a busy log repeats each second's time on many lines
def clf_time(text: str) -> float:
    """`10/Oct/2000:13:55:36 -0700` -> Unix seconds."""
    m = _CLF_TIME.match(text)
    if m is None:
        raise ValueError(f"not a CLF time: {text!r}")
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    month = _MONTHS.get(mon)
    if month is None:
        raise ValueError(f"unknown month {mon!r}")
    offset = (int(oh) * 3600 + int(om) * 60) * (1 if sign == "+" else -1)
    return float(calendar.timegm((int(year), month, int(day), int(hh), int(mm), int(ss), 0, 0, 0)) - offset)


def iso_time(text: str) -> float:
    """ISO 8601 with a time zone (UTC when none is given) -> Unix seconds."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        return calendar.timegm(parsed.timetuple()) + parsed.microsecond / 1e6
    return parsed.timestamp()


def number_time(text: str) -> float:
    """Unix seconds, or milliseconds when the number is too large to be seconds (after the year 5138)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a finite time")
    return value / 1000.0 if value > 1e11 else value


def any_time(text: str) -> float:
    try:
        return number_time(text)
    except ValueError:
        pass
    try:
        return iso_time(text)
    except ValueError:
        return clf_time(text.strip("[]"))


def _int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def _ms(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        ms = float(str(value).strip())
    except ValueError:
        return None
    return ms / 1000.0 if math.isfinite(ms) and ms >= 0 else None


# ---------------------------------------------------------------------------------------------- detection


def classify_line(line: str) -> str | None:
    """The format one line looks like (None: none of the line formats)."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("{") or ("\t{" in text and text.split("\t", 1)[0][:4].isdigit()):
        obj = _json_object(text)
        if obj is None:
            return None
        if "_aws" in obj or ("key" in obj and "cache" in obj):
            return "cachelab"
        if {"httpMethod", "requestTimeEpoch", "requestTime", "routeKey"} & obj.keys():
            return "apigw-json"
        return None
    m = _CLF.match(text)
    if m is not None:
        return "combined" if m.group(8) is not None else "clf"
    cells = next(csv.reader([text]), [])
    if len(cells) >= 3:
        if cells[0].strip().lower() in _CSV_NAMES and any(c.strip().lower() == "method" for c in cells):
            return "csv"
        try:
            any_time(cells[0])
        except ValueError:
            return None
        if _METHOD.match(cells[1].strip()) and cells[2].strip()[:1] in ("/", "h", "*"):
            return "csv"
    return None


def detect(head: str) -> str:
    """The format of a log from its first bytes (the most common format among the first lines)."""
    stripped = head.lstrip()
    if stripped.startswith("{"):
        first = stripped.split("\n", 1)[0].strip()
        obj = _json_object(first)
        if obj is None or "log" in obj:
            return "har"  # a pretty-printed JSON document, or a one-line HAR
    votes: dict[str, int] = {}
    lines = [line for line in head.splitlines() if line.strip()]
    if len(lines) > 1 and not head.endswith("\n"):
        lines = lines[:-1]  # the last line may be cut off
    for line in lines[:DETECT_LINES]:
        kind = classify_line(line)
        if kind is not None:
            votes[kind] = votes.get(kind, 0) + 1
    if not votes:
        shown = lines[0][:120] if lines else ""
        raise FormatError(
            f"unknown log format (first line: {shown!r}); give --format one of {', '.join(FORMATS)}"
            if shown
            else "the log is empty"
        )
    if "clf" in votes and "combined" in votes:  # a combined log whose referer/UA fields are sometimes absent
        votes["combined"] += votes.pop("clf")
    return max(votes, key=lambda k: votes[k])


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        text = text[text.find("{") :]
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


# ---------------------------------------------------------------------------------------------- line formats


def parse_lines(lines: Iterable[str], fmt: str, *, first_line: int = 1) -> Iterator[Parsed]:
    """Parse a line format ("apigw-json", "clf", "combined", "csv", "cachelab")."""
    if fmt in ("clf", "combined"):
        parse = _clf_line
    elif fmt == "apigw-json":
        parse = _apigw_line
    elif fmt == "cachelab":
        parse = _cachelab_line
    elif fmt == "csv":
        parse = _CsvParser().line
    else:
        raise FormatError(f"{fmt} is not a line format")
    for number, raw in enumerate(lines, first_line):
        line = raw.rstrip("\r\n")
        if not line.strip():
            yield Ignored(number)
            continue
        try:
            parsed = parse(number, line)
        except (ValueError, KeyError, TypeError, IndexError, OverflowError) as exc:
            parsed = None
            reason = str(exc)
        else:
            reason = ""
        if parsed is None:
            other = classify_line(line)
            if other is not None and other != fmt and {other, fmt} != {"clf", "combined"}:
                yield Rejected(number, "mixed formats", line, f"looks like {other}, not {fmt}")
            else:
                yield Rejected(number, "unparsable", line, reason)
        else:
            yield parsed


def _clf_line(number: int, line: str) -> Parsed | None:
    m = _CLF.match(line)
    if m is None:
        return None
    request = m.group(5).split(" ")
    if len(request) not in (2, 3) or not _METHOD.match(request[0]):
        raise ValueError(f"malformed request line {m.group(5)[:60]!r}")
    status, size = m.group(6), m.group(7)
    return Record(
        line=number,
        time=clf_time(m.group(4)),
        method=request[0].upper(),
        target=request[1],
        status=None if status == "-" else int(status),
        size=None if size == "-" else int(size),
    )


def _apigw_line(number: int, line: str) -> Parsed | None:
    obj = _json_object(line)
    if obj is None:
        return None
    method = obj.get("httpMethod") or obj.get("method")
    path = obj.get("path")
    if not isinstance(method, str) or not isinstance(path, str) or path in ("", "-"):
        raise ValueError("no httpMethod or path ($context.httpMethod, $context.path) in the object")
    stage = obj.get("stage")
    if isinstance(stage, str) and stage not in ("", "-", "$default") and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    epoch = obj.get("requestTimeEpoch")
    if epoch not in (None, "", "-"):
        when = float(str(epoch)) / 1000.0
    else:
        raw = obj.get("requestTime")
        if not isinstance(raw, str):
            raise ValueError("no requestTimeEpoch or requestTime")
        when = any_time(raw)
    latency = obj.get("integrationLatency", obj.get("integration.latency", obj.get("responseLatency")))
    return Record(
        line=number,
        time=when,
        method=method.upper(),
        target=path,
        status=_int(obj.get("status")),
        latency=_ms(latency),
        size=_int(obj.get("responseLength")),
    )


def _cachelab_line(number: int, line: str) -> Parsed | None:
    if line.startswith(("START ", "END ", "REPORT ", "INIT_START", "EXTENSION", "TELEMETRY")):
        return Ignored(number)  # Lambda platform lines around the proxy's own
    obj = _json_object(line)
    if obj is None:
        return None
    if obj.get("message") != "request":
        if obj.get("Service") == "proxy" or "level" in obj:
            return Ignored(number)  # one of the proxy's other events (warnings, errors)
        return None
    key = obj.get("key")
    method = obj.get("method")
    aws = obj.get("_aws")
    if not isinstance(aws, Mapping) or not isinstance(method, str):
        raise ValueError("no _aws.Timestamp or method")
    duration = float(obj.get("Duration") or 0.0)
    when = float(aws["Timestamp"]) / 1000.0 - duration / 1000.0  # logged when answered: back to the arrival
    upstream = _int(obj.get("upstream_status"))
    return Record(
        line=number,
        time=when,
        method=method.upper(),
        target="",
        status=upstream if upstream is not None else _int(obj.get("status")),
        latency=_ms(obj.get("UpstreamLatency")),
        key=str(key) if isinstance(key, str) and key else None,
    )


class _CsvParser:
    def __init__(self) -> None:
        self.columns: dict[str, int] = {"time": 0, "method": 1, "target": 2, "status": 3, "latency": 4}

    def line(self, number: int, line: str) -> Parsed | None:
        cells = next(csv.reader([line]), [])
        lowered = [c.strip().lower() for c in cells]
        if lowered and lowered[0] in _CSV_NAMES and "method" in lowered:  # a header line names the columns
            self.columns = {_CSV_NAMES[c]: i for i, c in enumerate(lowered) if c in _CSV_NAMES}
            if not {"time", "method", "target"} <= self.columns.keys():
                raise ValueError("the header names no timestamp, method or path column")
            return Ignored(number)
        cols = self.columns

        def cell(name: str) -> str | None:
            index = cols.get(name)
            if index is None or index >= len(cells):
                return None
            value = cells[index].strip()
            return value or None

        when, method, target = cell("time"), cell("method"), cell("target")
        if when is None or method is None or target is None:
            raise ValueError("fewer than three columns (timestamp, method, path)")
        if not _METHOD.match(method):
            raise ValueError(f"not a method: {method[:20]!r}")
        status = cell("status")
        return Record(
            line=number,
            time=any_time(when),
            method=method.upper(),
            target=target,
            status=_int(status),
            latency=_ms(cell("latency")),
        )


# ---------------------------------------------------------------------------------------------- HAR


def parse_har(document: object) -> Iterator[Parsed]:
    """The entries of a HAR document (already decoded from JSON), in the order of their start times."""
    log = document.get("log") if isinstance(document, Mapping) else None
    entries = log.get("entries") if isinstance(log, Mapping) else None
    if not isinstance(entries, list):
        raise FormatError("not a HAR file: no log.entries list")
    parsed: list[Parsed] = []
    for number, entry in enumerate(entries, 1):
        try:
            record = _har_entry(number, entry)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            parsed.append(Rejected(number, "unparsable", json.dumps(entry)[:200], str(exc)))
        else:
            parsed.append(record)
    parsed.sort(key=lambda p: p.time if isinstance(p, Record) else float("-inf"))
    yield from parsed


def _har_entry(number: int, entry: Mapping[str, Any]) -> Record:
    request = entry["request"]
    response = entry.get("response") or {}
    timings = entry.get("timings") or {}
    wait = timings.get("wait")
    latency = _ms(wait) if isinstance(wait, int | float) and wait >= 0 else _ms(entry.get("time"))
    headers = tuple(
        (str(h["name"]), str(h["value"])) for h in request.get("headers") or [] if not str(h["name"]).startswith(":")
    )
    content = response.get("content") or {}
    size = _int(content.get("size"))
    status = _int(response.get("status"))
    return Record(
        line=number,
        time=iso_time(str(entry["startedDateTime"])),
        method=str(request["method"]).upper(),
        target=str(request["url"]),
        status=status or None,
        latency=latency,
        size=size if size is not None and size >= 0 else None,
        headers=headers,
    )
