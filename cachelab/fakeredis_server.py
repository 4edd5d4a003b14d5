"""An embedded Redis (fakeredis over TCP, with Lua) for machines without redis-server.

`python -m cachelab.fakeredis_server --port P`. Functionally enough for the proxy; its latency is not
representative of a real Redis, so figures measured against it are not either.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from fakeredis import TcpFakeServer

from cachelab.processes import LOOPBACK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cachelab.fakeredis_server", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default=LOOPBACK)
    args = parser.parse_args(argv)
    server = TcpFakeServer((args.host, args.port))
    server.daemon_threads = True

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
