"""`docker compose up` for real: the project's compose.yaml on a real Docker engine with a real LocalStack.

One compose project (`cachelab-test-PID`, on free loopback ports: the file's own knobs, nothing else changed) is
brought up once for this module; the tests are ordered steps on it, checked from the host through LocalStack's API
Gateway (the REST API's `_user_request_` URL). The checks leave the stack as they found it; the last steps rebuild
it, take it down and bring it up again. Whatever happens, it is torn down at the end, Lambda containers included.

Runs when a Docker engine answers (`make test`, `make test-compose`); otherwise the module is skipped with one line
saying why. CACHELAB_COMPOSE_TESTS=required (set by .ci/run) turns a missing engine into a failure; =off skips.
Every wait is bounded by a timeout taken from the configuration it waits on. Figures (times, Lambda containers)
are reported in the terminal summary, never asserted; `python -m bench.bench_compose` measures them properly.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.compose.stack import (
    BUILD_SECONDS,
    DOWN_SECONDS,
    FUNCTION_TIMEOUT,
    REPO,
    REQUEST_SECONDS,
    UP_SECONDS,
    UPSTREAM_TIMEOUT,
    Answer,
    ComposeStack,
    cleanup_stale,
    docker_problem,
    http,
    poll,
)

MODES = ("auto", "required", "off")
MODE = os.environ.get("CACHELAB_COMPOSE_TESTS", "auto").strip().lower() or "auto"
if MODE not in MODES:
    pytest.fail(f"CACHELAB_COMPOSE_TESTS must be one of {', '.join(MODES)}, not {MODE!r}", pytrace=False)
PROBLEM = "CACHELAB_COMPOSE_TESTS=off" if MODE == "off" else docker_problem()
if PROBLEM is not None and MODE == "required":  # one error, for the whole module
    pytest.fail(f"CACHELAB_COMPOSE_TESTS=required, but {PROBLEM}", pytrace=False)
if PROBLEM is not None:  # one line in the summary
    pytest.skip(
        f"compose stack tests skipped: {PROBLEM} (CACHELAB_COMPOSE_TESTS=required fails instead)",
        allow_module_level=True,
    )

# The whole module runs as one session on one stack; a hung step is stopped by its own bounded waits first.
pytestmark = pytest.mark.timeout(BUILD_SECONDS + UP_SECONDS)

PREFIX = "cachelab-test"
# Every docker command of a run and its output (git ignores results/); the newest few runs are kept.
LOGS = REPO / "results" / "compose-test"
KEEP_LOGS = 5
STACK_NAME = "cachelab"  # compose.yaml's CACHELAB_STACK
REGION = "us-east-1"
# SNS delivers to the invalidation function asynchronously; its first call starts a container.
INVALIDATION_SECONDS = REQUEST_SECONDS + 20.0
REDIS_RECOVERY_SECONDS = 15.0  # the bound; the proxy's Redis breaker cools down for at most 5 s
STAMPEDE = 50
# compose.yaml's images that `docker compose up --build` rebuilds after a change to proxy/
BUILT_IMAGES = ("cachelab-deploy:local", "cachelab-locust:local")
CODE_CHANGE = "# changed by tests/compose/test_stack.py (a copy of the checkout)"
SLOW_MS = 3000  # the stampede's upstream latency: slow, but below the upstream timeout
assert SLOW_MS < UPSTREAM_TIMEOUT * 1000
LOCUST_RUN = "compose-test"  # results/<run> in the results volume
LOCUST_SECONDS = 30
LOCUST_GRACE = 60.0  # `cachelab load`'s allowance for start-up, the drain and report writing

HEADLESS_LOCUST = [
    "master",
    "--headless",
    "--expect-workers",
    "2",
    "--users",
    "10",
    "--spawn-rate",
    "10",
    "--run-time",
    f"{LOCUST_SECONDS}s",
    "--rate",
    "40",
    "--stub-admin",
    "http://stub-api:8081",
    "--summary-json",
    f"/work/results/{LOCUST_RUN}/summary.json",
    "--csv",
    f"/work/results/{LOCUST_RUN}/locust",
    "--csv-full-history",
    "--html",
    f"/work/results/{LOCUST_RUN}/report.html",
    "--only-summary",
]


class Live:
    """The running stack and what the tests learn about it along the way."""

    def __init__(self, stack: ComposeStack) -> None:
        self.stack = stack
        self._api: str | None = None
        self.rebuilt: set[str] = set()  # image IDs built from a changed copy of the checkout, removed at the end

    def refresh(self) -> None:
        self._api = self.stack.api_url()

    @property
    def api(self) -> str:
        if self._api is None:
            pytest.skip("the stack is not up: see test_up_waits_on_health_and_on_the_deploy_service")
        return self._api

    def get(self, path: str, timeout: float = REQUEST_SECONDS) -> Answer:
        return http("GET", self.api + path, timeout=timeout)

    def stub(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = http(method, self.stack.stub + path, timeout=10, body=body)
        assert answer.status == 200, f"stub admin {method} {path}: {answer.describe()}"
        return answer.json()

    def stub_count(self, path: str) -> int:
        return int(self.stub("GET", "/__admin/stats")["by_path"].get(path, 0))

    def aws(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.stack.localstack,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def outputs(self) -> dict[str, str]:
        stack = self.aws("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def check(self, condition: bool, message: str) -> None:
        """assert, with the stack's state and logs in the message."""
        if not condition:
            pytest.fail(f"{message}\n--- stack ---\n{self.stack.diagnostics()}", pytrace=False)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in sorted(LOGS.glob(f"{PREFIX}-*.log"), key=lambda f: f.stat().st_mtime)[:-KEEP_LOGS]:
        old.unlink(missing_ok=True)
    cleanup_stale(PREFIX, LOGS / "stale.log")
    stack = ComposeStack.create(PREFIX, LOGS)
    state = Live(stack)
    try:
        stack.compose("--profile", "jupyter", "build", timeout=BUILD_SECONDS)
        yield state
    finally:
        left = stack.remove_everything()
        if left:
            print(f"compose stack: removed what the tests left: {left}", file=sys.stderr)
        for image in sorted(state.rebuilt):
            stack.run(["docker", "image", "rm", image], timeout=120, check=False)


def miss_then_hit(live: Live, path: str) -> tuple[Answer, Answer]:
    first, second = live.get(path), live.get(path)
    live.check(first.status == 200 and first.x_cache == "MISS", f"GET {path}: expected 200 MISS, {first.describe()}")
    live.check(second.status == 200 and second.x_cache == "HIT", f"GET {path}: expected 200 HIT, {second.describe()}")
    return first, second


# ---------------------------------------------------------------------------------------------- up
def test_up_waits_on_health_and_on_the_deploy_service(
    live: Live, record_property: Callable[[str, object], None]
) -> None:
    stack = live.stack
    started = datetime.now(UTC)
    took = stack.up()
    rows = {row["Service"]: row for row in stack.containers()}
    for service in ("localstack", "redis", "stub-api", "locust-master"):
        live.check(rows[service]["Health"] == "healthy", f"{service} is not healthy: {rows[service]}")
    live.check(rows["deploy"]["State"] == "exited" and rows["deploy"]["ExitCode"] == 0, f"deploy: {rows['deploy']}")
    live.check(rows["locust-worker"]["State"] == "running", f"locust-worker: {rows['locust-worker']}")
    live.refresh()
    first_answer = (stack.first_answer_at() - started).total_seconds()
    record_property("docker compose up -d (images built)", f"{took:.0f} s")
    record_property("up -> first proxied answer (deploy's check)", f"{first_answer:.0f} s")
    record_property("Lambda containers after up", len(stack.lambda_containers()))


# ---------------------------------------------------------------------------------------------- headers
def test_miss_then_hit_each_header_once_with_cache_status_and_age(live: Live) -> None:
    miss, hit = miss_then_hit(live, "/items/1")
    for answer in (miss, hit):
        live.check(answer.repeated() == [], f"headers sent more than once: {answer.repeated()} in {answer.headers}")
        live.check(answer.header("Cache-Status") is not None, f"no Cache-Status: {answer.headers}")
        live.check(answer.header("Content-Type") == "application/json; charset=utf-8", f"{answer.headers}")
    live.check((miss.header("Cache-Status") or "").endswith("stored"), f"{miss.describe()}")
    live.check((hit.header("Age") or "").isdigit(), f"HIT without an Age: {hit.headers}")
    live.check(hit.body == miss.body and hit.json()["id"] == 1, "the HIT is not the stored answer")


# ---------------------------------------------------------------------------------------------- outage
def test_outage_stale_for_cached_keys_and_a_json_error_for_new_ones(
    live: Live, record_property: Callable[[str, object], None]
) -> None:
    """The stub in each outage mode: keys cached before answer 200 STALE (stale-if-error); a key never seen
    answers the proxy's own JSON error: 502 when the upstream resets, 504 when it does not answer within the
    upstream timeout. (In `error` mode the upstream does answer, 503, and the proxy passes that answer on.)"""
    cached = ["/items/601", "/items/602"]
    # entries that expire after 1 s, so the outage finds them stale (fresh entries are HITs, outage or not)
    live.stub("POST", "/__admin/faults", {"routes": {p: {"cache_control": "max-age=1"} for p in cached}})
    try:
        for path in cached:
            answer = live.get(path)
            live.check(answer.x_cache == "MISS", f"GET {path}: {answer.describe()}")
        time.sleep(2.0)  # past max-age
        seen = {}
        for mode, path, status in (
            ("error", "/items/603", 503),
            ("reset", "/items/604", 502),
            ("timeout", "/items/605", 504),
        ):
            live.stub("POST", "/__admin/faults", {"mode": mode})
            for key in cached:
                answer = live.get(key)
                live.check(
                    answer.status == 200 and answer.x_cache == "STALE", f"{mode} outage, {key}: {answer.describe()}"
                )
                live.check("stale-if-error" in (answer.header("Cache-Status") or ""), answer.describe())
            never = live.get(path)
            live.check(
                never.status == status and never.x_cache == "MISS", f"{mode} outage, new key: {never.describe()}"
            )
            live.check(
                isinstance(never.json(), dict) and never.repeated() == [], f"not one JSON answer: {never.describe()}"
            )
            # the proxy's own answer before the function timeout: its upstream timeout cut the wait short
            live.check(never.elapsed < FUNCTION_TIMEOUT, f"slower than the function timeout: {never.describe()}")
            seen[mode] = f"{status} in {never.elapsed:.1f} s"
        record_property("outage, never-seen key", ", ".join(f"{m}: {v}" for m, v in seen.items()))
    finally:
        live.stub("POST", "/__admin/reset")


# ---------------------------------------------------------------------------------------------- stampede
def concurrently(live: Live, paths: list[str]) -> list[Answer]:
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(live.get, paths))


def warm_up(live: Live, containers: int) -> list[tuple[int, int, float]]:
    """Bring LocalStack to `containers` Lambda containers, ten new ones per round: each round sends one more
    ten concurrent requests to new keys while the upstream takes 2 s, so every request holds a container.
    (Fifty at once on a cold function make LocalStack start fifty containers together; on two busy cores that
    took 45-80 s, and API Gateway's call to Lambda gives up after 60 s.) Rounds: (requests, containers, s)."""
    live.stub("POST", "/__admin/faults", {"latency_model": "fixed", "latency_ms": 2000, "latency_p99_ms": 2000})
    rounds = []
    try:
        first = 200
        for size in range(10, containers + 1, 10):
            started = time.monotonic()
            answers = concurrently(live, [f"/items/{first + i}" for i in range(size)])
            first += size
            bad = [a.describe() for a in answers if a.status != 200]
            live.check(not bad, f"warm-up round of {size}: {len(bad)} failed, e.g. {bad[:3]}")
            rounds.append((size, len(live.stack.lambda_containers()), time.monotonic() - started))
    finally:
        live.stub("POST", "/__admin/reset")
    return rounds


def test_a_stampede_reaches_the_upstream_once(live: Live, record_property: Callable[[str, object], None]) -> None:
    """50 concurrent requests for one cold key while the upstream takes 3 s: one request reaches the stub, the
    others wait for its entry (Cache-Status `collapsed`), across every Lambda container serving them."""
    rounds = warm_up(live, STAMPEDE)
    record_property("warm-up (requests, Lambda containers, s)", " ".join(f"({n}, {c}, {t:.0f})" for n, c, t in rounds))
    path = "/items/700"
    before = len(live.stack.lambda_containers())
    slow = {"latency_model": "fixed", "latency_ms": SLOW_MS, "latency_p99_ms": SLOW_MS}
    live.stub("POST", "/__admin/faults", {"routes": {path: slow}})
    try:
        started = time.monotonic()
        answers = concurrently(live, [path] * STAMPEDE)
        took = time.monotonic() - started
    finally:
        live.stub("POST", "/__admin/faults", {"routes": {path: None}})
    after = len(live.stack.lambda_containers())
    statuses = Counter(f"{a.status} {a.x_cache}" for a in answers)
    details = Counter(a.header("Cache-Status") for a in answers if a.forwarded)
    live.check(
        all(a.status == 200 for a in answers), f"{statuses}; {[a.describe() for a in answers if a.status != 200][:3]}"
    )
    live.check(sum(a.forwarded for a in answers) == 1, f"forwarded upstream: {details}; {statuses}")
    live.check(live.stub_count(path) == 1, f"the stub saw {path} {live.stub_count(path)} times")
    collapsed = sum("collapsed" in (a.header("Cache-Status") or "") for a in answers)
    record_property(
        "stampede",
        f"{STAMPEDE} requests in {took:.1f} s, 1 upstream request, {collapsed} collapsed, {dict(statuses)}, "
        f"Lambda containers {before} -> {after}",
    )


# ---------------------------------------------------------------------------------------------- invalidation
def wait_for_miss(live: Live, path: str) -> list[Answer]:
    last, seen = poll(lambda: live.get(path), lambda a: a.x_cache != "HIT", timeout=INVALIDATION_SECONDS, interval=1.0)
    live.check(
        last.status == 200 and last.x_cache == "MISS",
        f"GET {path} after the invalidation: {[a.describe() for a in seen[-3:]]}",
    )
    return seen


def test_a_message_on_the_stacks_sns_topic_invalidates(live: Live) -> None:
    miss_then_hit(live, "/items/801")
    topic = live.outputs()["InvalidationTopicArn"]
    live.aws("sns").publish(TopicArn=topic, Message=json.dumps({"paths": ["/items/801"]}))
    wait_for_miss(live, "/items/801")


def test_cachelab_invalidate_aimed_at_localstack_invalidates(live: Live) -> None:
    miss_then_hit(live, "/items/802")
    command = [sys.executable, "-m", "cachelab", "invalidate", "/items/802", "--target", "localstack",
               "--endpoint-url", live.stack.localstack, "--stack-name", STACK_NAME]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=REPO)
    live.check(proc.returncode == 0, f"cachelab invalidate: {proc.returncode} {proc.stdout} {proc.stderr}")
    wait_for_miss(live, "/items/802")


# ---------------------------------------------------------------------------------------------- Redis
def test_answers_keep_coming_without_redis_and_hits_return_after_it(
    live: Live, record_property: Callable[[str, object], None]
) -> None:
    miss_then_hit(live, "/items/900")
    live.stack.compose("stop", "redis", timeout=DOWN_SECONDS)
    try:
        answers = [live.get("/items/900") for _ in range(5)]
        for answer in answers:
            live.check(answer.status == 200 and answer.x_cache == "BYPASS", f"Redis stopped: {answer.describe()}")
    finally:
        live.stack.compose("start", "redis", timeout=DOWN_SECONDS)
    started = time.monotonic()
    last, seen = poll(
        lambda: live.get("/items/900"), lambda a: a.x_cache == "HIT", timeout=REDIS_RECOVERY_SECONDS, interval=0.5
    )
    took = time.monotonic() - started
    live.check(
        last.x_cache == "HIT",
        f"no HIT within {REDIS_RECOVERY_SECONDS:g} s of `start redis`: {Counter(a.x_cache for a in seen)}",
    )
    record_property("Redis back -> first HIT", f"{took:.1f} s ({len(seen)} requests)")


# ---------------------------------------------------------------------------------------------- Locust
def test_locust_master_and_two_workers_headless_write_a_consistent_summary(
    live: Live, record_property: Callable[[str, object], None]
) -> None:
    stack = live.stack
    # the web-UI master answers to the name locust-master too: stop it, so the workers find the headless one
    stack.compose("stop", "locust-master", "locust-worker", timeout=DOWN_SECONDS)
    master = f"{stack.project}-locust-headless"
    stack.compose(
        "run", "-d", "--name", master, "--use-aliases", "--no-deps", "locust-master", *HEADLESS_LOCUST, timeout=120
    )
    try:
        stack.compose("up", "-d", "--no-deps", "--scale", "locust-worker=2", "locust-worker", timeout=120)
        limit = LOCUST_SECONDS + LOCUST_GRACE + REQUEST_SECONDS
        waited = stack.run(["docker", "wait", master], timeout=limit, check=False)
        code = waited.stdout.strip()
        output = stack.run(["docker", "logs", master], timeout=60).stderr
        # Locust exits 1 when a request failed; the summary is written either way
        live.check(code in {"0", "1"}, f"the headless master exited {code!r}:\n{output[-3000:]}")
    finally:
        stack.run(["docker", "rm", "-f", master], timeout=60, check=False)
        stack.compose("stop", "locust-worker", timeout=DOWN_SECONDS, check=False)
    read = stack.compose("run", "--rm", "--no-deps", "-T", "--entrypoint", "cat", "locust-worker",
                         f"/work/results/{LOCUST_RUN}/summary.json", timeout=120)  # fmt: skip
    summary = json.loads(read.stdout)
    consistency = summary["consistency"]
    live.check(summary["workers"] == 2, f"workers: {summary['workers']}")
    live.check(summary["requests"] > 0, f"no requests: {summary}")
    counts = sum(group["count"] for group in summary["by_cache_status"].values())
    live.check(consistency["locust_requests"] == counts == summary["requests"], f"counts disagree: {consistency}")
    live.check(consistency["sum_by_cache_status"] == counts, f"{consistency}")
    live.check(
        summary["upstream_requests_via_proxy"] == consistency["forwarded_by_cache_status_header"],
        f"the stub counted {summary['upstream_requests_via_proxy']} requests, Cache-Status says "
        f"{consistency['forwarded_by_cache_status_header']} were forwarded: {consistency}",
    )
    record_property(
        "Locust, 2 workers, 30 s",
        f"{summary['requests']} requests, {summary['throughput_rps']:.1f}/s, hit ratio {summary['hit_ratio']:.2f}, "
        f"{summary['failures']} failures, {summary['upstream_requests']} upstream; "
        f"Lambda containers now {len(stack.lambda_containers())}",
    )


def test_the_jupyter_profile_executes_01_results_on_that_run(live: Live) -> None:
    stack = live.stack
    stack.compose("--profile", "jupyter", "up", "-d", "jupyter", timeout=120)
    # docker/jupyter/Dockerfile's HEALTHCHECK: 20 s start period, then 3 retries 10 s apart with 3 s timeouts
    last = poll_health(stack, "jupyter", timeout=20 + 3 * (10 + 3) + 30)
    live.check(last == "healthy", f"jupyter is {last}")
    api = http("GET", f"http://127.0.0.1:{stack.ports['JUPYTER_PORT']}/api", timeout=10)
    live.check(api.status == 200 and "version" in api.json(), f"JupyterLab on the host port: {api.describe()}")
    run = stack.compose(
        "--profile", "jupyter", "exec", "-T", "jupyter", "python", "-m", "analysis.notebooks", "run",
        "/work/notebooks/01_results.ipynb", "--out", "/tmp/01_results.ipynb",
        "-p", f'results_dirs=["/work/results/{LOCUST_RUN}"]', "-p", 'charts_dir="/tmp/charts"',
        timeout=300, check=False,
    )  # fmt: skip
    live.check(
        run.returncode == 0, f"01_results failed in the jupyter container:\n{run.stdout[-2000:]}{run.stderr[-3000:]}"
    )
    executed = json.loads(
        stack.compose(
            "--profile", "jupyter", "exec", "-T", "jupyter", "cat", "/tmp/01_results.ipynb", timeout=60
        ).stdout
    )
    text = "".join("".join(output.get("text", "")) for cell in executed["cells"] for output in cell.get("outputs", []))
    live.check(
        f"/work/results/{LOCUST_RUN}" in text and "hit ratio" in text,
        f"the notebook did not show the run: {text[:2000]}",
    )
    charts = stack.compose(
        "--profile", "jupyter", "exec", "-T", "jupyter", "ls", "/tmp/charts", timeout=60
    ).stdout.split()
    live.check("latency_cdf.png" in charts and "hit_ratio.png" in charts, f"charts: {charts}")


def poll_health(stack: ComposeStack, service: str, *, timeout: float) -> str:
    """The service's health once it is settled (healthy, unhealthy, exited), or as it is after `timeout` s."""
    deadline = time.monotonic() + timeout
    health = ""
    for _ in range(int(timeout) + 2):  # a bound on the loop besides the clock
        row = stack.state(service)
        health = str(row.get("Health") or row.get("State"))
        if health in {"healthy", "unhealthy", "exited"} or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    return health


# ---------------------------------------------------------------------------------------------- down and up again
def test_down_after_the_busy_part_keeps_only_the_named_volumes(
    live: Live, record_property: Callable[[str, object], None]
) -> None:
    """Right after the busy part, with the stampede's Lambda containers still up: LocalStack stops them one after
    the other when it gets SIGTERM (within its stop_grace_period); nothing but the three named volumes is left, and
    a file in `results` is still there after `up -d`."""
    stack = live.stack
    results = ["run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "locust-worker", "-c"]
    stack.compose(*results, "echo kept > /work/results/kept", timeout=120)
    containers = len(stack.lambda_containers())
    took = stack.timed("--profile", "jupyter", "down", timeout=DOWN_SECONDS * 2)
    left = stack.leftovers()
    volumes = {f"volume {stack.project}_{name}" for name in ("shared", "results", "localstack")}
    live.check(set(left) == volumes, f"down (without -v) must leave exactly the named volumes: {left}")
    record_property("down", f"{took:.0f} s with {containers} Lambda containers")
    took = stack.up()
    live.refresh()
    miss_then_hit(live, "/items/1")
    kept = stack.compose(*results, "cat /work/results/kept", timeout=120).stdout.strip()
    live.check(kept == "kept", f"the results volume lost its file: {kept!r}")
    record_property("up -d after down", f"{took:.0f} s")


# ---------------------------------------------------------------------------------------------- rebuild
def repo_copy(destination: Path) -> Path:
    skip = shutil.ignore_patterns(".git", ".venv", "results", "__pycache__", ".mypy_cache", ".pytest_cache",
                                  ".ruff_cache", ".hypothesis", ".aws-sam", "*.egg-info", "node_modules")  # fmt: skip
    shutil.copytree(REPO, destination, ignore=skip)
    return destination


def deployed_file(live: Live, name: str) -> str:
    """A file of the proxy function's code as LocalStack holds it (the zip its GetFunction points to)."""
    function = live.outputs()["FunctionName"]
    location = live.aws("lambda").get_function(FunctionName=function)["Code"]["Location"]
    parts = urllib.parse.urlsplit(location)
    url = urllib.parse.urlunsplit(
        ("http", f"127.0.0.1:{live.stack.ports['LOCALSTACK_PORT']}", parts.path, parts.query, "")
    )
    answer = http("GET", url, timeout=60)
    assert answer.status == 200, f"GET the function's code: {answer.describe()}"
    with zipfile.ZipFile(io.BytesIO(answer.body)) as archive:
        return archive.read(name).decode()


def image_ids(live: Live) -> dict[str, str]:
    ids = {}
    for image in BUILT_IMAGES:
        proc = live.stack.run(["docker", "image", "inspect", "-f", "{{.Id}}", image], timeout=60, check=False)
        ids[image] = proc.stdout.strip()
    return ids


def test_up_build_after_a_code_change_deploys_the_new_code(
    live: Live, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """On a running stack, as a developer would: edit proxy/, `docker compose up -d --build`; LocalStack keeps
    running and `deploy` updates the stack. The edit is made in a copy of the checkout (the same compose.yaml), so
    the working tree is never touched."""
    stack = live.stack
    copy = repo_copy(tmp_path / "repo")
    init = copy / "proxy" / "__init__.py"
    init.write_text(init.read_text() + f"\n{CODE_CHANGE}\n")  # the same text every run: its build is cached
    assert CODE_CHANGE not in deployed_file(live, "proxy/__init__.py")
    mine = image_ids(live)
    try:
        took = stack.up("--build", timeout=BUILD_SECONDS + UP_SECONDS, directory=copy)
        live.rebuilt.update(image for image in image_ids(live).values() if image not in mine.values())
        live.refresh()
        live.check(CODE_CHANGE in deployed_file(live, "proxy/__init__.py"), "the deployed function lacks the change")
        miss_then_hit(live, "/items/1?after=rebuild")  # a key nobody asked for since this stack came up
        record_property("up -d --build after a code change (running stack)", f"{took:.0f} s")
    finally:
        # the images again as this checkout builds them (cached layers: seconds)
        stack.compose("--profile", "jupyter", "build", timeout=BUILD_SECONDS)


# ---------------------------------------------------------------------------------------------- down -v and up again
def test_down_v_leaves_nothing_of_the_project_within_30_s(
    live: Live, record_property: Callable[[str, object], None]
) -> None:
    """No container (Lambda containers included), network or volume (anonymous ones included) is left."""
    stack = live.stack
    containers = len(stack.lambda_containers())
    took = stack.timed("--profile", "jupyter", "down", "-v", timeout=DOWN_SECONDS * 2)
    left = stack.leftovers()
    live.check(left == [], f"down -v left {left}")
    live.check(took < 30, f"down -v took {took:.0f} s with {containers} Lambda containers")
    record_property("down -v", f"{took:.0f} s with {containers} Lambda containers")


def test_up_again_after_down_v(live: Live, record_property: Callable[[str, object], None]) -> None:
    took = live.stack.up()
    live.refresh()
    miss_then_hit(live, "/items/1")
    record_property("up -d after down -v", f"{took:.0f} s")


def test_down_v_at_the_end_leaves_nothing(live: Live) -> None:
    live.stack.compose("--profile", "jupyter", "down", "-v", timeout=DOWN_SECONDS * 2)
    left = live.stack.leftovers()
    live.check(left == [], f"down -v left {left}")
