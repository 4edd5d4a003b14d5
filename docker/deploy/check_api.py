"""Wait until a deployed cachelab API answers through the proxy Lambda, or explain why it does not.

    python check_api.py API_URL [--path /__admin/health] [--timeout 300] [--interval 2]
                        [--request-timeout 30]

Success is an HTTP answer below 500 that carries `X-Cache: MISS | HIT | STALE`: API Gateway invoked the
function, the function read and wrote Redis (a Redis it cannot reach makes it answer BYPASS) and fetched the
path from the upstream. The default path is the stub API's health endpoint, which the load tests never
request. The first request can take minutes on a first run: LocalStack pulls the Lambda runtime image then.

Exit status: 0 = answered, 1 = no good answer before the timeout (the last answer and what to check are
printed on stderr), 2 = bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

GOOD = frozenset({"MISS", "HIT", "STALE"})
NETWORK_HINT = (
    "LocalStack must start Lambda containers on the compose network: LAMBDA_DOCKER_NETWORK in compose.yaml "
    "equal to the network's `name:` (the project name, cachelab by default), and the Docker socket mounted into "
    "the localstack service"
)


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all
    x_cache: str | None
    detail: str

    @property
    def good(self) -> bool:
        return self.status is not None and self.status < 500 and self.x_cache in GOOD


def probe(url: str, timeout: float) -> Answer:
    request = urllib.request.Request(url, headers={"User-Agent": "cachelab-deploy-check"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked in main
            response.read()
            headers = response.headers
            return Answer(response.status, headers.get("X-Cache"), str(headers.get("Cache-Status")))
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read(300).decode("utf-8", "replace")
        return Answer(exc.code, exc.headers.get("X-Cache"), body.strip())
    except (OSError, ValueError) as exc:
        return Answer(None, None, str(getattr(exc, "reason", exc)))


def explain(answer: Answer) -> str:
    """What the last answer says about the deployment, and where to look."""
    if answer.status is None:
        return f"LocalStack's API Gateway did not answer ({answer.detail}); see docker compose logs localstack"
    if answer.x_cache is None:
        return (
            f"HTTP {answer.status} without X-Cache: the proxy function did not answer "
            f"({answer.detail[:200]!r}). It may still be starting (the first run pulls the Lambda runtime "
            "image), or it failed: see docker compose logs localstack"
        )
    if answer.x_cache == "BYPASS":
        reach = "Redis (redis:6379)" + (" nor the stub API (stub-api:8081)" if answer.status >= 500 else "")
        return f"HTTP {answer.status}, X-Cache: BYPASS: the function cannot reach {reach}. {NETWORK_HINT}"
    if answer.status >= 500:
        return (
            f"HTTP {answer.status}, X-Cache: {answer.x_cache}: the function cannot reach the stub API "
            f"(stub-api:8081; {answer.detail[:200]!r}). {NETWORK_HINT}"
        )
    return f"HTTP {answer.status}, X-Cache: {answer.x_cache!r}: not a cachelab proxy answer"


def wait_for_api(url: str, *, timeout: float, interval: float, request_timeout: float) -> Answer:
    """Probe `url` until a good answer or `timeout` seconds; the last answer. At least one probe is made."""
    deadline = time.monotonic() + timeout
    attempts = max(1, int(timeout / max(interval, 0.1)) + 1)  # a bound on the loop besides the clock
    answer = Answer(None, None, "not tried")
    for _ in range(attempts):
        left = deadline - time.monotonic()
        answer = probe(url, max(0.5, min(request_timeout, left)))
        if answer.good or time.monotonic() + interval > deadline:
            return answer
        time.sleep(interval)
    return answer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Wait until a deployed cachelab API answers via the proxy.")
    parser.add_argument("api_url", help="base URL, e.g. http://localstack:4566/restapis/ID/api/_user_request_")
    parser.add_argument("--path", default="/__admin/health", help="path to request (/__admin/health)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to keep trying (default 300)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between tries (default 2)")
    parser.add_argument("--request-timeout", type=float, default=30.0, help="seconds per request (default 30)")
    args = parser.parse_args(argv)
    if not args.api_url.startswith(("http://", "https://")):
        parser.error(f"api_url must be an http:// or https:// URL, got {args.api_url!r}")
    if args.timeout <= 0 or args.interval <= 0 or args.request_timeout <= 0:
        parser.error("--timeout, --interval and --request-timeout must be positive")
    url = args.api_url.rstrip("/") + "/" + args.path.lstrip("/")
    print(f"check: GET {url} (up to {args.timeout:g} s)", file=sys.stderr, flush=True)
    started = time.monotonic()
    answer = wait_for_api(url, timeout=args.timeout, interval=args.interval, request_timeout=args.request_timeout)
    took = time.monotonic() - started
    if answer.good:
        print(f"check: HTTP {answer.status}, X-Cache: {answer.x_cache} after {took:.1f} s", file=sys.stderr)
        return 0
    print(f"check: no proxied answer after {took:.1f} s: {explain(answer)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
