"""steady: Zipf-distributed keys at a target rate, the everyday workload of a read-through cache.

    locust -f loadtests/steady.py --host http://127.0.0.1:3000 --headless -u 20 -r 20 -t 60s \\
        --stub-admin http://127.0.0.1:8081 --keys 1000 --zipf-s 1.0 --rate 200

Knobs (flag / environment variable): --keys CACHELAB_KEYS, --zipf-s CACHELAB_ZIPF_S, --rate CACHELAB_RATE
(requests/s of the whole run, 0 = unpaced), --path-template CACHELAB_PATH ("/items/{key}"), --direct-share
CACHELAB_DIRECT_SHARE (a baseline share sent straight to the upstream), plus the common ones (README).
Debug one user in-process: `python loadtests/steady.py --host URL` (Locust's run_single_user).
"""

from __future__ import annotations

from loadtests.controller import Scenario
from loadtests.lifecycle import install
from loadtests.shape import RunShape
from loadtests.users import ZipfUser

SCENARIO = Scenario(name="steady", phases=("steady",))
install(SCENARIO)


class SteadyUser(ZipfUser):
    pass


class SteadyShape(RunShape):
    pass


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(SteadyUser)
