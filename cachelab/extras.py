"""What each `cachelab` command needs beyond the core install, checked before the command's implementation is imported.

`pip install cachelab` (or `pip install -e .`) brings only the proxy's own dependencies (redis, hiredis, urllib3). The
optional dependencies come in extras (pyproject.toml):

    stub       aiohttp: the stub external API          (cachelab stub, up, demo)
    load       Locust, matplotlib, numpy               (cachelab load, demo, the Locust web UI of up)
    sam        AWS SAM CLI, cfn-lint, boto3,           (cachelab gateway, up, demo, deploy; boto3 for --stack, SNS)
               httptools, uvloop (the gateway's HTTP)
    fakeredis  an embedded Redis                       (cachelab up and demo when redis-server is not installed)
    notebooks  papermill, nbstripout, ipykernel        (python -m analysis.notebooks, make notebooks, jupyter image)

A command that lacks one stops before doing anything, with one line naming what to install (exit status 2), instead
of a traceback from deep inside an import.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable

# Each extra, and the top-level modules whose presence shows it is installed (the ones the commands import).
EXTRAS: dict[str, tuple[str, ...]] = {
    "stub": ("aiohttp",),
    "load": ("locust", "matplotlib", "numpy"),
    "sam": ("samcli", "boto3", "httptools", *(("uvloop",) if sys.platform != "win32" else ())),
    "fakeredis": ("fakeredis", "lupa"),
    "notebooks": ("papermill", "nbstripout", "nbformat", "nbclient", "ipykernel"),
}


class MissingExtras(Exception):
    """Some extras a command needs are not installed; the message names them and the pip command."""


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module whose spec is unset
        return False


def missing_modules(extras: Iterable[str]) -> dict[str, list[str]]:
    """The extras (in the given order) with the modules of theirs that cannot be imported."""
    out: dict[str, list[str]] = {}
    for extra in extras:
        absent = [module for module in EXTRAS[extra] if not installed(module)]
        if absent:
            out[extra] = absent
    return out


def require(extras: Iterable[str]) -> None:
    """Raise MissingExtras, naming every missing extra once, when one of `extras` is not installed."""
    missing = missing_modules(dict.fromkeys(extras))
    if not missing:
        return
    quoted = [repr(extra) for extra in missing]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    modules = [module for absent in missing.values() for module in absent]
    names = ",".join(missing)
    hint = (
        "; or install redis-server (apt-get install redis-server), which the stack prefers to the embedded Redis"
        if "fakeredis" in missing
        else ""
    )
    raise MissingExtras(
        f"this command needs the {listed} {'extra' if len(missing) == 1 else 'extras'} ({', '.join(modules)} "
        f"{'is' if len(modules) == 1 else 'are'} not installed): pip install 'cachelab[{names}]' "
        f"(in a checkout: pip install -e '.[{names}]', or make venv){hint}"
    )
