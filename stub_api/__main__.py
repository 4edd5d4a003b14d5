"""`python -m stub_api --port P`: the same server as `cachelab stub` (and the Docker image's command)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stub_api.config import ConfigError, build_parser, config_from_args
from stub_api.server import run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    try:
        return run(config)
    except OSError as exc:
        print(f"stub_api: error: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
