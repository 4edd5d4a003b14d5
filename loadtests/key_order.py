"""key-order: the same resources with shuffled query-parameter order and varying irrelevant headers.

    locust -f loadtests/key_order.py --host http://127.0.0.1:3000 --headless -u 20 -r 20 -t 30s \\
        --stub-admin http://127.0.0.1:8081 --keys 200 --zipf-s 1.0

Two user classes run side by side with the same Zipf popularity over two disjoint, equally sized key sets:
"ordered" users always spell a resource's query parameters in one order and send the same headers; "shuffled"
users send every request with its parameters in a random order and random irrelevant headers (User-Agent,
X-Request-Id, X-Amzn-Trace-Id, X-Forwarded-For). A cache that normalises its key shows the same hit ratio for
both groups (summary.json: groups.ordered / groups.shuffled and the key_order block); one that keys on the raw
URL or on those headers shows a much lower hit ratio for "shuffled".

Knobs: --key-order-path CACHELAB_KEY_ORDER_PATH (default "/", the stub's age guesser, which reads `name` and
ignores the other parameters), and --keys, --zipf-s, --rate.
Debug one user in-process: `python loadtests/key_order.py --host URL`.
"""

from __future__ import annotations

from locust import task
from locust.env import Environment

from loadtests.controller import Scenario
from loadtests.lifecycle import install
from loadtests.locust_options import options
from loadtests.shape import RunShape
from loadtests.users import CacheLabUser, zipf_for
from loadtests.workload import irrelevant_headers, key_order_params, query_string, shuffled


def _validate(env: Environment) -> list[str]:
    path = str(options(env).key_order_path)
    if not path.startswith("/") or "?" in path:
        return [f"--key-order-path must be a path starting with / and without a query (got {path!r})"]
    return []


SCENARIO = Scenario(name="key-order", phases=("key-order",), validate=_validate)
install(SCENARIO)


class _KeyOrderUser(CacheLabUser):
    abstract = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.keys = zipf_for(environment)
        self.path = str(options(environment).key_order_path)
        self.offset = 0  # shuffled users use keys N+1..2N, so the two groups never share a cache entry

    def params(self, key: int) -> list[tuple[str, str]]:
        return key_order_params(key)

    def headers(self) -> dict[str, str]:
        return {}

    @task
    def get(self) -> None:
        key = self.keys.sample() + self.offset
        url = f"{self.path}?{query_string(self.params(key))}"
        self.fetch(url, name=f"{self.path}?name=[key] ({self.group})", resource=str(key), headers=self.headers())


class OrderedUser(_KeyOrderUser):
    group = "ordered"


class ShuffledUser(_KeyOrderUser):
    group = "shuffled"

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.offset = int(options(environment).keys)

    def params(self, key: int) -> list[tuple[str, str]]:
        return shuffled(key_order_params(key), self.rng)

    def headers(self) -> dict[str, str]:
        return irrelevant_headers(self.rng)


class KeyOrderShape(RunShape):
    pass


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(ShuffledUser)
