"""What a gateway runs with (`GatewaySettings`), its fixed limits, its log and its error type.

Light on purpose (standard library only): the command line imports it before it knows whether the gateway's
dependencies (httptools, uvloop, SAM CLI) are installed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from cachelab.processes import LOOPBACK

API_TIMEOUT_S = 29.0  # API Gateway's maximum integration timeout
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request limit
ADMIN_PREFIX = "/__gateway/"
HEALTH_PATH = f"{ADMIN_PREFIX}health"


class GatewayError(Exception):
    """The gateway cannot serve as asked (bad template or parameters, a taken port, environments that fail their
    init); the message says why, in one line. The command line prints it and exits with status 2."""


class StartError(GatewayError):
    """The gateway cannot start (e.g. a warm environment failed its init); nothing is listening."""


@dataclass(frozen=True)
class GatewaySettings:
    host: str = LOOPBACK
    port: int = 3000
    concurrency: int = 10
    throttle_wait: float = 1.0  # seconds a request waits for a busy environment before 429
    api_timeout: float = API_TIMEOUT_S
    shutdown_grace: float = 2.0  # seconds in-flight requests get to finish on SIGTERM/SIGINT
    access_log: bool = False
    warm: int = 0  # environments started before listening (like provisioned concurrency)


def json_log(event: str, **fields: Any) -> None:
    """One JSON line on stderr: the gateway's structured log."""
    sys.stderr.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stderr.flush()
