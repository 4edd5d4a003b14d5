"""`python -m stub_api --port P`: the same server as `cachelab stub` (and the Docker image's command)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

from stub_api.config import ConfigError, build_parser, config_from_args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    if importlib.util.find_spec("aiohttp") is None:  # checked before the server module imports it
        print(
            "stub_api: error: the stub needs aiohttp: pip install 'cachelab[stub]' "
            "(or pip install -r stub_api/requirements.txt)",
            file=sys.stderr,
        )
        return 2
    from stub_api.server import run  # noqa: PLC0415 - after the check above

    try:
        return run(config)
    except OSError as exc:
        print(f"stub_api: error: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
