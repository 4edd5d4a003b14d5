"""Reading a log file and running the simulation over it: the only I/O of the package besides the CLI.

The file is read once, streaming (gzip too); the parsers, the trace and the simulator keep only what is alive.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from whatif.parsers import FORMATS, FormatError, Parsed, Record, detect, parse_har, parse_lines
from whatif.report import CostInputs, Report, cost_of
from whatif.simulator import SimConfig, Simulation
from whatif.trace import Trace

Progress = Callable[[int, int], None]  # (bytes read, total bytes; 0 when unknown)
HEAD_BYTES = 64 * 1024
BATCH = 8192
_PROGRESS_EVERY = 16384  # lines


class WhatifError(Exception):
    """The log cannot be used; the message says why (the CLI prints it and exits 2)."""


@dataclass
class _Source:
    binary: IO[bytes]
    raw: IO[bytes]  # the file on disk (its position is the progress)
    size: int


def _open(path: Path) -> _Source:
    try:
        raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise WhatifError(f"cannot read {path}: {exc.strerror or exc}") from None
    size = os.fstat(raw.fileno()).st_size
    magic = raw.read(2)
    raw.seek(0)
    binary: IO[bytes] = raw
    if magic == b"\x1f\x8b":
        binary = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]  # a binary file too
    return _Source(binary, raw, size)


def _head(source: _Source) -> str:
    data = source.binary.read(HEAD_BYTES)
    source.binary.seek(0)
    return data.decode("utf-8", "replace")


def read_log(path: Path, fmt: str = "auto", progress: Progress | None = None) -> tuple[str, Iterator[Parsed]]:
    """The log's format (detected when "auto") and its parsed lines, read lazily."""
    if fmt != "auto" and fmt not in FORMATS:
        raise WhatifError(f"unknown format {fmt!r}; choose auto or one of {', '.join(FORMATS)}")
    if path.is_dir():
        raise WhatifError(f"{path} is a directory, not a log file")
    source = _open(path)
    try:
        head = _head(source)
        if not head.strip():
            raise WhatifError(f"{path} is empty")
        if fmt == "auto":
            fmt = detect(head)
    except (FormatError, OSError, EOFError) as exc:
        source.raw.close()
        raise WhatifError(f"{path}: {exc}") from None
    except BaseException:
        source.raw.close()
        raise
    return fmt, _parsed(source, fmt, progress)


def _parsed(source: _Source, fmt: str, progress: Progress | None) -> Iterator[Parsed]:
    with source.raw:
        try:
            if fmt == "har":
                try:
                    document = json.load(io.TextIOWrapper(source.binary, encoding="utf-8", errors="replace"))
                except ValueError as exc:
                    raise WhatifError(f"not a readable HAR (JSON) file: {exc}") from None
                if progress is not None:
                    progress(source.size, source.size)
                try:
                    yield from parse_har(document)
                except FormatError as exc:
                    raise WhatifError(str(exc)) from None
                return
            text = io.TextIOWrapper(source.binary, encoding="utf-8", errors="replace", newline="")
            lines = iter(text.readline, "")
            for count, item in enumerate(parse_lines(lines, fmt), 1):
                yield item
                if progress is not None and count % _PROGRESS_EVERY == 0:
                    progress(source.raw.tell(), source.size)
            if progress is not None:
                progress(source.size, source.size)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise WhatifError(f"cannot read the log: {exc}") from None


def analyse(
    path: Path,
    config: SimConfig,
    *,
    fmt: str = "auto",
    host: str | None = None,
    costs: CostInputs | None = None,
    progress: Progress | None = None,
) -> Report:
    """Simulate every TTL of `config` over the log at `path` (one pass) and price the results."""
    started = time.perf_counter()
    fmt, parsed = read_log(path, fmt, progress)
    trace = Trace(key_headers=config.key_headers, host=host, guess_host=fmt == "har")
    simulation = Simulation(config)
    batch = []
    for event in trace.events(parsed):
        batch.append(event)
        if len(batch) >= BATCH:
            simulation.feed(batch)
            batch = []
    simulation.feed(batch)
    results = simulation.finish()
    stats = trace.stats
    if stats.requests == 0:
        problems = "; ".join(trace.problems.lines()[:8]) or "no request lines"
        raise WhatifError(f"{path}: nothing usable in {stats.lines:,} lines ({fmt}): {problems}")
    inputs = costs or CostInputs()
    report = Report(
        log=str(path),
        fmt=fmt,
        config=config,
        stats=stats,
        problems=trace.problems,
        results=results,
        costs=[cost_of(r, stats, inputs) for r in results],
        host=trace.host,
        elapsed_s=time.perf_counter() - started,
    )
    if trace.host_guessed:
        report.notes.append(
            f"simulated the requests for host {trace.host} (the first one seen); choose with --log-host"
        )
    if fmt == "apigw-json":
        report.notes.append("API Gateway access logs carry no query string: keys are paths only")
    if fmt == "cachelab" and config.key_headers:
        report.notes.append("--key-headers has no effect on cachelab logs: their key hash already includes them")
    if fmt in ("clf", "combined"):
        report.notes.append("CLF times have one-second resolution: requests within a second count as concurrent")
    if stats.duration <= 0:
        report.notes.append("the log spans no time, so there is no monthly cost")
    return report


def requests_of(path: Path, fmt: str = "auto", *, host: str | None = None) -> tuple[str, Trace, Iterator[Record]]:
    """The GET/HEAD records the simulation would use (for `cachelab load replay`), in time order.

    Records are checked exactly as for `analyse` (method, host, target); their target is the path with query.
    """
    fmt, parsed = read_log(path, fmt)
    if fmt == "cachelab":
        raise WhatifError(
            "cachelab logs carry the key's hash, not the URL: they can be simulated (cachelab whatif) but not "
            "replayed; replay an access log of the same traffic instead"
        )
    trace = Trace(host=host, guess_host=fmt == "har")

    def usable() -> Iterator[Record]:
        for item in parsed:
            if isinstance(item, Record) and item.method in ("GET", "HEAD"):
                target = trace.target_of(item)
                if target is not None:
                    yield item._replace(target=target)

    return fmt, trace, usable()
