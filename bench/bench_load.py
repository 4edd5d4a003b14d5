"""How far the load generator itself goes on this machine: `python -m bench.bench_load` (or `make bench-load`).

Runs the steady scenario unpaced (10 users, FastHttpUser) for a few seconds against two targets that cost as little
as possible, with one Locust process and with `--processes 2`:

* the stub API with zero latency (aiohttp, one process): the upstream of every experiment;
* nginx answering `return 200` (when /usr/sbin/nginx or nginx on PATH exists): close to free, so the figure is
  the generator's own ceiling.

Locust and the target share the machine's cores, so each figure is a floor of what a dedicated load machine
would reach. A scenario that asks for more than about half of the figure will be limited by the generator.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from cachelab import processes
from loadtests.runner import LoadRun, run_scenario

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
    }}
}}
"""


@contextmanager
def stub(workdir: Path) -> Iterator[str]:
    port = processes.free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "stub_api", "--port", str(port)]
    with processes.running(argv, port=port, log=workdir / "stub.log", health_url=url + "/__admin/health"):
        yield url


@contextmanager
def nginx(workdir: Path, binary: str) -> Iterator[str]:
    port = processes.free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    argv = [binary, "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"]
    with processes.running(argv, port=port, log=workdir / "nginx.log"):
        yield f"http://127.0.0.1:{port}"


def measure(host: str, processes_: int, duration: str, out: Path) -> float:
    run = LoadRun(
        scenario="steady",
        host=host,
        out=out,
        users=10,
        duration=duration,
        processes=processes_,
        knobs={"--keys": "1000", "--progress": "0"},
    )
    summary = run_scenario(run)
    return float(summary["throughput_rps"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="8s", help="length of each measurement (default 8s)")
    args = parser.parse_args(argv)
    nginx_binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="cachelab-capacity-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        targets = [("stub API, 0 ms latency", stack.enter_context(stub(work)))]
        if nginx_binary is not None:
            (work / "nginx").mkdir()
            targets.append(("nginx return 200", stack.enter_context(nginx(work / "nginx", nginx_binary))))
        for name, url in targets:
            for count in (1, 2):
                rps = measure(url, count, args.duration, work / f"run-{len(rows)}")
                rows.append((name, count, rps))
                print(f"{name:<26} processes {count}: {rps:8.0f} requests/s", flush=True)
    if nginx_binary is None:
        print("(nginx not found: only the stub was measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
