"""The scenarios' users: paced at --rate, labelled for the recorder, quiet during the drain; Zipf-distributed keys."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, task
from locust.env import Environment

from loadtests.locust_options import options, upstream_base
from loadtests.measurements import TARGET_PROXY, TARGET_UPSTREAM
from loadtests.recording import PROC
from loadtests.workload import Zipf

_LOCAL_RUN_ID = uuid.uuid4().hex[:12]  # library use without a master (run_single_user)


def zipf_for(env: Environment) -> Zipf:
    """This process's Zipf sampler for --keys / --zipf-s (the CDF is built once per process)."""
    opts = options(env)
    key = (int(opts.keys), float(opts.zipf_s))
    sampler = PROC.zipf.get(key)
    if sampler is None:
        sampler = PROC.zipf[key] = Zipf(*key)
    return sampler


def run_id(env: Environment) -> str:
    """An id of this test, the same in every process of it: a scenario that needs a cache entry nothing else has
    touched (stampede) puts it in its request's query, where it becomes part of the proxy's cache key."""
    return str(getattr(options(env), "cachelab_run_id", "") or _LOCAL_RUN_ID)


def total_users(env: Environment) -> int:
    """Users of the whole run (all processes), for spreading --rate over them."""
    opts = options(env)
    total = int(getattr(opts, "cachelab_total_users", 0) or 0)
    if total <= 0 and env.runner is not None:
        total = int(getattr(env.runner, "target_user_count", 0) or env.runner.user_count or 0)
    return max(1, total)


def paced(user: CacheLabUser) -> float:
    """wait_time: each user sends rate / users requests per second (no pacing when --rate is 0)."""
    rate = float(options(user.environment).rate)
    if PROC.draining:
        return 0.2
    if rate <= 0:
        return 0.0
    interval = total_users(user.environment) / rate
    now = time.monotonic()
    nxt = user.next_at + interval if user.next_at else now + user.rng.random() * interval
    if nxt < now - interval:  # fell behind (slow responses): do not burst to catch up
        nxt = now
    user.next_at = nxt
    return max(0.0, nxt - now)


class CacheLabUser(FastHttpUser):
    """A FastHttpUser that labels its requests for the recorder and stops issuing them during the drain."""

    abstract = True
    wait_time = paced
    group: ClassVar[str] = ""
    # One request at a time per user. It also bounds geventhttpclient's silent resends of an idempotent request
    # whose connection closed before any response (pool size + 1 attempts): at most two extra attempts, which
    # only happen against a server that resets connections (a direct call during a "reset" outage).
    concurrency = 1

    def __init__(self, environment: Environment) -> None:
        timeout = float(options(environment).request_timeout)
        self.network_timeout = timeout
        self.connection_timeout = timeout
        super().__init__(environment)
        self.rng = random.Random()
        self.next_at = 0.0

    def context(self) -> dict[str, Any]:
        return {"phase": PROC.phase}

    def key_path(self, key: int) -> str:
        return str(options(self.environment).path_template).replace("{key}", str(key))

    @property
    def key_label(self) -> str:
        """The request name in Locust's statistics: the path template with [key] for the key."""
        return str(options(self.environment).path_template).replace("{key}", "[key]")

    def fetch(
        self,
        url: str,
        *,
        name: str,
        target: str = TARGET_PROXY,
        group: str | None = None,
        resource: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """GET url; the HTTP status, 0 on a transport error, -1 when draining (nothing sent)."""
        if PROC.draining:
            gevent.sleep(0.2)
            return -1
        PROC.in_flight += 1
        try:
            response = self.client.get(
                url,
                name=name,
                headers=dict(headers) if headers else None,
                context={"target": target, "group": self.group if group is None else group, "resource": resource},
            )
            status = int(getattr(response, "status_code", 0) or 0)
        finally:
            PROC.in_flight -= 1
        if 200 <= status < 400 and resource is not None:
            PROC.ok_resources.add(resource)
        return status


class ZipfUser(CacheLabUser):
    """GETs --path-template for Zipf-distributed keys; --direct-share of them straight to the upstream."""

    abstract = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.keys = zipf_for(environment)
        self.direct_share = float(options(environment).direct_share)
        self.upstream = upstream_base(environment)

    def group_for(self, resource: str) -> str:
        return self.group

    @task
    def get_key(self) -> None:
        key = self.keys.sample()
        resource = str(key)
        path = self.key_path(key)
        if self.direct_share > 0 and self.rng.random() < self.direct_share:
            self.fetch(
                self.upstream + path, name="direct " + self.key_label, target=TARGET_UPSTREAM, group="", resource=None
            )
        else:
            self.fetch(path, name=self.key_label, group=self.group_for(resource), resource=resource)
