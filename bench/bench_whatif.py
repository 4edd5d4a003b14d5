"""Benchmark: `cachelab whatif` on a generated 1-million-line access log (time and peak memory per run).

Generates the log once (whatif.samples: a daily cycle, bursts, a long tail of keys, fragmenting query parameters,
404s, a short outage, a few POSTs), then runs `cachelab whatif` on it RUNS times, each in its own process, and
prints wall time, CPU time and peak resident memory of each run, with the median and the spread. The default TTL
list (8 TTLs) is simulated in the same pass as the parsing.

    make bench-whatif                       # or: python -m bench.bench_whatif --lines 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from whatif import samples


def generate(path: Path, lines: int, fmt: str) -> None:
    with open(path, "w") as out:
        if fmt == "csv":
            out.write("timestamp,method,path,status,latency_ms\n")
        for hit in samples.traffic(lines):
            out.write(samples.line(hit, fmt) + "\n")


def one_run(log: Path, out: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one `cachelab whatif` process."""
    argv = [sys.executable, "-m", "cachelab", "whatif", str(log), "--out", str(out), "--no-progress"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr is not None else ""
    if proc.returncode != 0:
        raise SystemExit(f"cachelab whatif failed ({proc.returncode}): {stderr}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--format", default="combined", choices=("combined", "clf", "csv", "apigw-json"))
    parser.add_argument("--log", type=Path, help="use this log instead of generating one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-whatif-") as tmp:
        log = args.log or Path(tmp) / f"access.{args.format}.log"
        if args.log is None:
            started = time.perf_counter()
            generate(log, args.lines, args.format)
            print(f"generated {args.lines:,} {args.format} lines ({log.stat().st_size / 1e6:,.0f} MB) in "
                  f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        print(f"cachelab whatif on {log.name}, default TTLs (8), {os.cpu_count()} cores; each run in its own process")
        runs = []
        for index in range(args.runs):
            wall, cpu, peak = one_run(log, Path(tmp) / f"out{index}")
            runs.append((wall, cpu, peak))
            print(f"  run {index + 1}: {wall:6.1f} s wall  {cpu:6.1f} s CPU  peak RSS {peak:6.0f} MiB  "
                  f"{args.lines / wall:,.0f} lines/s")  # fmt: skip
        walls, cpus, peaks = zip(*runs, strict=True)
        print(
            f"median {statistics.median(walls):.1f} s wall (min {min(walls):.1f}, max {max(walls):.1f}), "
            f"{statistics.median(cpus):.1f} s CPU, peak RSS {statistics.median(peaks):.0f} MiB "
            f"(min {min(peaks):.0f}, max {max(peaks):.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
