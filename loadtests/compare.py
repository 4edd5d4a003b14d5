"""compare: the same workload sent directly to the upstream and through the proxy, side by side.

    locust -f loadtests/compare.py --host http://127.0.0.1:3000 --headless -u 20 -r 20 -t 30s \\
        --stub-admin http://127.0.0.1:8081 [--upstream http://127.0.0.1:8081]

Each task draws one Zipf key and requests it twice, once through the proxy (--host) and once straight from the
upstream (--upstream, default: the --stub-admin URL), in random order. summary.json keeps the two apart under
`targets` ("proxy", "upstream") and the `compare` block gives the latency ratios.

Knobs: --keys, --zipf-s, --rate (counts both requests of a pair), --path-template, --upstream.
Debug one user in-process: `python loadtests/compare.py --host URL --upstream URL`.
"""

from __future__ import annotations

from locust import task
from locust.env import Environment

from loadtests.controller import Scenario
from loadtests.lifecycle import install
from loadtests.locust_options import options, upstream_base
from loadtests.measurements import TARGET_UPSTREAM
from loadtests.shape import RunShape
from loadtests.users import CacheLabUser, zipf_for


def _validate(env: Environment) -> list[str]:
    if not upstream_base(env):
        return ["compare needs the upstream's URL: give --upstream URL or --stub-admin URL"]
    if float(options(env).direct_share) > 0:
        return ["--direct-share does not apply to compare (every key goes to both targets)"]
    return []


SCENARIO = Scenario(name="compare", phases=("compare",), validate=_validate)
install(SCENARIO)


class CompareUser(CacheLabUser):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.keys = zipf_for(environment)
        self.upstream = upstream_base(environment)

    @task
    def pair(self) -> None:
        key = self.keys.sample()
        path = self.key_path(key)
        direct_first = self.rng.random() < 0.5
        for direct in (direct_first, not direct_first):
            if direct:
                self.fetch(self.upstream + path, name="direct " + self.key_label, target=TARGET_UPSTREAM)
            else:
                self.fetch(path, name=self.key_label, resource=str(key))


class CompareShape(RunShape):
    pass


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(CompareUser)
