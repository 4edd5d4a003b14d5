"""`python -m cachelab.gateway --port P ...`: the same as `cachelab gateway`."""

from __future__ import annotations

import sys

from cachelab.gateway.cli import main

if __name__ == "__main__":
    sys.exit(main())
