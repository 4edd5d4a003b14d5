"""`python -m cachelab` is the `cachelab` command."""

import sys

from cachelab.cli import main

sys.exit(main())
