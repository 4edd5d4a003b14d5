"""`python -m cachelab.gateway --port P ...`: the gateway for any SAM function, `cachelab gateway` without the proxy's
configuration names (give them with --pass-env NAME, as `cachelab.gateway.cli.command(pass_env=...)` does)."""

from __future__ import annotations

import sys

from cachelab.gateway.cli import main

if __name__ == "__main__":
    sys.exit(main())
