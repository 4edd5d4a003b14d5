"""compose.yaml without a Docker engine: valid Compose, and its services agree with each other, with
sam/samconfig.toml, sam/template.yaml and the proxy's configuration contract.

The schema is the Compose Specification's JSON schema as Docker Compose v2.40.3 embeds it (tests/compose/schema/).
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft7Validator

from cachelab.commands.deploy import LOCALSTACK_ENDPOINT, TEMPLATE, deploy_parameters, template_parameters
from loadtests.runner import SCENARIOS
from proxy.config import ENVIRONMENT_NAMES, Settings
from tests.compose.support import (
    COMPOSE_FILE,
    REPO,
    SCHEMA,
    Compose,
    InterpolationError,
    Interpolator,
    TemplateResolver,
    load_compose,
    load_template,
    parse_dockerfile,
    published_ports,
)

LOCALSTACK_IMAGE = "localstack/localstack:4.14"
# Host paths compose.yaml may bind-mount; everything else is a named volume, so `down -v` leaves nothing behind.
ALLOWED_BINDS = {"/var/run/docker.sock", "./notebooks"}
SHARED_URL_READERS = ("locust-master", "locust-worker", "jupyter")


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def schema_errors(validator: Draft7Validator, config: Mapping[str, Any]) -> list[str]:
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def mounts(service: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of a service's short-form volume entries."""
    found = []
    for entry in service.get("volumes") or []:
        assert isinstance(entry, str), f"use the short volume syntax: {entry!r}"
        source, target, *mode = entry.split(":")
        found.append((source, target, mode == ["ro"]))
    return found


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None, f"{url} names no host"
    assert parts.port is not None, f"{url} names no port"
    return parts.hostname, parts.port


def stub_port(compose: Compose) -> int:
    return int(compose.environment("stub-api")["STUB_PORT"])


def redis_port(compose: Compose) -> int:
    command = compose.service("redis").get("command") or []
    return int(command[command.index("--port") + 1]) if "--port" in command else 6379


def dockerfile_of(compose: Compose, name: str) -> Any:
    build = compose.service(name).get("build")
    if build is None:
        return None
    context, dockerfile = (build, "Dockerfile") if isinstance(build, str) else (build["context"], build["dockerfile"])
    return REPO / context / dockerfile


def has_healthcheck(compose: Compose, name: str) -> bool:
    service = compose.service(name)
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False) and check.get("test") not in (None, ["NONE"])
    dockerfile = dockerfile_of(compose, name)
    if dockerfile is None:
        return False
    return any(i.keyword == "HEALTHCHECK" and i.args.strip() != "NONE" for i in parse_dockerfile(dockerfile))


# ---------------------------------------------------------------------------------------------- valid Compose
def test_compose_file_is_valid_against_the_compose_specification(compose: Compose, validator: Draft7Validator) -> None:
    assert schema_errors(validator, compose.config) == []
    profile = load_compose({"LOCALSTACK_PORT": "14566", "LOCUST_SCENARIO": "outage", "JUPYTER_TOKEN": "t"})
    assert schema_errors(validator, profile.config) == []


def test_the_schema_rejects_what_compose_rejects(compose: Compose, validator: Draft7Validator) -> None:
    """The validator is live: typos that `docker compose config` refuses are reported."""
    broken = copy.deepcopy(compose.config)
    broken["services"]["deploy"]["depends_on"]["localstack"]["condition"] = "service_ready"
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    broken["services"]["stub-api"]["ports"] = [{"target": 8081, "hostip": "127.0.0.1"}]
    errors = schema_errors(validator, broken)
    assert any(e.startswith("services/deploy/depends_on:") and "service_ready" in e for e in errors), errors
    assert any(e.startswith("services/redis:") and "helthcheck" in e for e in errors), errors
    assert any(e.startswith("services/stub-api/ports/0:") and "hostip" in e for e in errors), errors
    assert len(errors) == 3, errors


def test_every_variable_has_a_default_so_a_bare_up_needs_no_env_file(compose: Compose) -> None:
    assert [r.name for r in compose.references if r.default is None] == []
    # and the interpolation the test relies on behaves as Compose's
    interpolator = Interpolator({"SET": "x", "EMPTY": ""})
    assert interpolator.string("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $$HOME ${SET}") == "x d  d $HOME x"
    with pytest.raises(InterpolationError, match="lone"):
        interpolator.string("cost: 5$")
    with pytest.raises(InterpolationError, match="NEEDED"):
        interpolator.string("${NEEDED:?set it}")


def test_only_jupyter_sits_behind_a_profile(compose: Compose) -> None:
    profiled = {name: s["profiles"] for name, s in compose.services.items() if "profiles" in s}
    assert profiled == {"jupyter": ["jupyter"]}
    expected = {"localstack", "redis", "stub-api", "deploy", "locust-master", "locust-worker"}
    assert set(compose.services) - set(profiled) == expected


def compose_v2() -> list[str] | None:
    """Docker Compose v2 when it is installed (`docker compose` or `docker-compose`; CACHELAB_COMPOSE_BIN names one
    explicitly). `config` needs no Docker engine."""
    explicit = os.environ.get("CACHELAB_COMPOSE_BIN")
    candidates = [[explicit]] if explicit else [["docker", "compose"], ["docker-compose"]]
    for command in candidates:
        if shutil.which(command[0]) is None:
            continue
        proc = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30, check=False)
        if proc.returncode == 0 and proc.stdout.strip().lstrip("v").startswith("2."):
            return command
    return None


@pytest.mark.skipif(compose_v2() is None, reason="Docker Compose v2 is not installed (the schema test stands in)")
def test_docker_compose_config_accepts_the_file() -> None:
    command = compose_v2()
    assert command is not None
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    for profile in ([], ["--profile", "jupyter"]):
        proc = subprocess.run(
            [*command, "-f", str(COMPOSE_FILE), *profile, "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "WARN" not in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------------- LocalStack
def test_localstack_is_pinned_to_the_last_free_release_and_overridable(compose: Compose) -> None:
    assert compose.raw["services"]["localstack"]["image"] == f"${{LOCALSTACK_IMAGE:-{LOCALSTACK_IMAGE}}}"
    assert compose.service("localstack")["image"] == LOCALSTACK_IMAGE
    custom = load_compose({"LOCALSTACK_IMAGE": "localstack/localstack-pro:4.14", "LOCALSTACK_AUTH_TOKEN": "ls-1"})
    assert custom.service("localstack")["image"] == "localstack/localstack-pro:4.14"
    assert custom.environment("localstack")["LOCALSTACK_AUTH_TOKEN"] == "ls-1"
    assert compose.environment("localstack")["LOCALSTACK_AUTH_TOKEN"] == ""


def test_every_image_is_pinned(compose: Compose) -> None:
    for name, service in compose.services.items():
        image = service.get("image")
        assert image is not None or "build" in service, name
        if image is None:
            continue
        reference = image.split("@", 1)[0]
        tag = reference.rsplit(":", 1)[1] if ":" in reference.rsplit("/", 1)[-1] else None
        assert tag is not None or "@" in image, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} is not pinned"


def test_lambda_containers_join_the_compose_network_through_the_docker_socket(compose: Compose) -> None:
    env = compose.environment("localstack")
    network = compose.config["networks"]["default"]["name"]
    assert env["LAMBDA_DOCKER_NETWORK"] == network == "cachelab"
    # the network is named after the project, so `docker compose -p other` runs a second stack beside this one
    other = load_compose({"COMPOSE_PROJECT_NAME": "other"})
    assert other.environment("localstack")["LAMBDA_DOCKER_NETWORK"] == other.config["networks"]["default"]["name"]
    assert other.config["networks"]["default"]["name"] == "other"
    assert ("/var/run/docker.sock", "/var/run/docker.sock", False) in mounts(compose.service("localstack"))
    for name, service in compose.services.items():
        # every service is on the default network only, so the Lambda containers resolve redis and stub-api
        assert "network_mode" not in service, name
        assert set(service.get("networks") or ["default"]) == {"default"}, name
    assert set(compose.config["networks"]) == {"default"}
    assert not compose.config["networks"]["default"].get("external", False)


def test_localstack_sends_no_analytics_so_it_stops_its_lambda_containers_offline(compose: Compose) -> None:
    """Offline, LocalStack's analytics shutdown hook fails and the Lambda containers outlive `down`. It stops them
    one by one (about 0.5 s each in real runs: 17-26 s for 51), so it gets a minute before it is killed."""
    assert compose.environment("localstack")["DISABLE_EVENTS"] == "1"
    assert compose.service("localstack")["stop_grace_period"] == "60s"


def test_a_burst_of_new_lambda_containers_may_start_slowly_but_is_not_sent_twice(compose: Compose) -> None:
    """Real runs: dozens of containers starting together on two cores took longer than LocalStack's 20 s (they were
    killed half-started), and API Gateway's internal client retried invocations it had given up on."""
    env = compose.environment("localstack")
    assert float(env["LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT"]) >= 60
    assert (
        load_compose({"LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT": "300"}).environment("localstack")[
            "LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT"
        ]
        == "300"
    )
    assert env["DISABLE_BOTO_RETRIES"] == "1"


def test_arm64_functions_run_on_any_host(compose: Compose) -> None:
    """The template deploys arm64 by default; LocalStack runs the pure-Python functions natively instead."""
    template = load_template(TEMPLATE)
    assert template["Parameters"]["Architecture"]["Default"] == "arm64"
    architecture = deploy_parameters("localstack", []).get("Architecture", "arm64")
    assert architecture == "x86_64" or compose.environment("localstack")["LAMBDA_IGNORE_ARCHITECTURE"] == "1"


# ---------------------------------------------------------------------------------------------- ports
def test_published_ports_are_bound_to_loopback_only(compose: Compose) -> None:
    overridden = load_compose({"LOCALSTACK_PORT": "1", "STUB_API_PORT": "2", "LOCUST_PORT": "3", "JUPYTER_PORT": "4"})
    for config, expected in ((compose, {4566, 8081, 8089, 8888}), (overridden, {1, 2, 3, 4})):
        seen = set()
        for name, service in config.services.items():
            for port in published_ports(service):
                assert port.host_ip == "127.0.0.1", f"{name}: {port}"
                assert port.published is not None, f"{name}: {port} would take a random host port"
                seen.add(port.published)
        assert seen == expected
    assert "ports" not in compose.service("redis")  # reached with `docker compose exec redis redis-cli`


def test_published_ports_are_the_ports_the_services_listen_on(compose: Compose) -> None:
    targets = {name: [p.target for p in published_ports(s)] for name, s in compose.services.items()}
    assert targets["localstack"] == [host_port(compose.environment("deploy")["CACHELAB_LOCALSTACK_ENDPOINT"])[1]]
    assert targets["stub-api"] == [stub_port(compose)]
    locust_env = {
        word.split("=", 1)[0]: word.split("=", 1)[1]
        for i in parse_dockerfile(REPO / "docker" / "locust" / "Dockerfile")
        if i.keyword == "ENV"
        for word in i.words()
    }
    assert targets["locust-master"] == [int(locust_env["LOCUST_WEB_PORT"])]
    assert "--port=8888" in (REPO / "docker" / "jupyter" / "entrypoint.sh").read_text()
    assert targets["jupyter"] == [8888]
    # the healthchecks probe those same ports
    assert "http://localhost:4566/" in " ".join(compose.service("localstack")["healthcheck"]["test"])
    assert f"http://127.0.0.1:{targets['locust-master'][0]}/" in " ".join(
        compose.service("locust-master")["healthcheck"]["test"]
    )


def test_host_tools_reach_the_compose_localstack_by_default(compose: Compose) -> None:
    """`make deploy-localstack` / `cachelab deploy --target localstack` on the host use the published port."""
    host, port = host_port(LOCALSTACK_ENDPOINT)
    assert host in {"localhost", "127.0.0.1"}
    assert [p.published for p in published_ports(compose.service("localstack"))] == [port]
    public = compose.environment("deploy")["CACHELAB_PUBLIC_ENDPOINT"]
    assert host_port(public)[1] == port


# ---------------------------------------------------------------------------------------------- deploy
def test_deploy_parameters_are_template_parameters(compose: Compose) -> None:
    known = template_parameters()
    params = deploy_parameters("localstack", compose.environment("deploy")["CACHELAB_DEPLOY_PARAMS"].split())
    assert set(params) <= set(known)
    assert params["RedisMode"] == "external"
    extra = load_compose({"CACHELAB_DEPLOY_PARAMS": "CacheTtlSeconds=30 LogLevel=DEBUG"})
    tuned = deploy_parameters("localstack", extra.environment("deploy")["CACHELAB_DEPLOY_PARAMS"].split())
    assert tuned["CacheTtlSeconds"] == "30"
    assert tuned["LogLevel"] == "DEBUG"


def test_deploy_parameters_point_the_function_at_the_compose_services(compose: Compose) -> None:
    params = deploy_parameters("localstack", [])
    redis = urlsplit(params["RedisUrl"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", redis_port(compose))
    assert redis.hostname in compose.services
    upstream = urlsplit(params["UpstreamUrl"])
    assert (upstream.scheme, upstream.hostname, upstream.port) == ("http", "stub-api", stub_port(compose))


def test_the_deployed_function_gets_the_whole_proxy_configuration(compose: Compose) -> None:
    """The template's function environment, evaluated for the compose deploy: every contract variable it sets
    is one the proxy reads, the proxy accepts them all, and the URLs are the compose services."""
    env = TemplateResolver(load_template(TEMPLATE), deploy_parameters("localstack", [])).function_environment()
    assert set(env) <= set(ENVIRONMENT_NAMES)
    assert set(ENVIRONMENT_NAMES) - set(env) == {"REDIS_AUTH_SECRET_ARN"}  # VPC modes only
    settings = Settings.from_env(env)
    assert settings.upstream_url == f"http://stub-api:{stub_port(compose)}"
    assert settings.redis_url == f"redis://redis:{redis_port(compose)}/0"
    assert settings.redis_cluster is False


def test_deploy_talks_to_the_localstack_service(compose: Compose) -> None:
    host, port = host_port(compose.environment("deploy")["CACHELAB_LOCALSTACK_ENDPOINT"])
    assert host in compose.services
    assert port in [p.target for p in published_ports(compose.service(host))]
    assert compose.service("deploy")["restart"] == "no"
    assert "ports" not in compose.service("deploy")


# ---------------------------------------------------------------------------------------------- Locust
def test_the_api_url_travels_through_one_named_volume(compose: Compose) -> None:
    url_file = compose.environment("deploy")["CACHELAB_API_URL_FILE"]
    folder = posixpath.dirname(url_file)
    writer = [(s, ro) for s, t, ro in mounts(compose.service("deploy")) if t == folder]
    assert len(writer) == 1, writer
    assert writer[0][1] is False, "the deploy service must be able to write the URL"
    volume = writer[0][0]
    assert volume in compose.config["volumes"]
    for name in SHARED_URL_READERS:
        assert compose.environment(name)["CACHELAB_API_URL_FILE"] == url_file, name
        assert (volume, folder, True) in mounts(compose.service(name)), name


def test_locust_master_and_workers_run_one_scenario_against_the_stack(compose: Compose) -> None:
    master, worker = compose.service("locust-master"), compose.service("locust-worker")
    assert master["image"] == worker["image"]
    assert master["build"] == worker["build"]
    assert (master["command"], worker["command"]) == (["master"], ["worker"])
    assert compose.environment("locust-master") == compose.environment("locust-worker")
    env = compose.environment("locust-worker")
    assert env["LOCUST_MASTER_NODE_HOST"] == "locust-master"
    assert env["LOCUST_SCENARIO"] in SCENARIOS
    assert host_port(env["CACHELAB_STUB_ADMIN"]) == ("stub-api", stub_port(compose))
    for scenario in SCENARIOS:
        assert load_compose({"LOCUST_SCENARIO": scenario}).environment("locust-master")["LOCUST_SCENARIO"] == scenario
    assert host_port(compose.environment("jupyter")["CACHELAB_STUB_ADMIN"]) == ("stub-api", stub_port(compose))


# ---------------------------------------------------------------------------------------------- order, health
def test_up_alone_starts_everything_in_order(compose: Compose) -> None:
    conditions = {
        name: {target: spec["condition"] for target, spec in (service.get("depends_on") or {}).items()}
        for name, service in compose.services.items()
    }
    assert conditions["deploy"] == {
        "localstack": "service_healthy",
        "redis": "service_healthy",
        "stub-api": "service_healthy",
    }
    assert conditions["locust-master"] == {"deploy": "service_completed_successfully", "stub-api": "service_healthy"}
    assert conditions["locust-worker"] == {
        "deploy": "service_completed_successfully",
        "locust-master": "service_healthy",
    }
    for name, targets in conditions.items():
        for target, condition in targets.items():
            assert target in compose.services, f"{name} depends on unknown {target}"
            if condition == "service_healthy":
                assert has_healthcheck(compose, target), f"{name} waits for {target}, which has no healthcheck"
    # no cycles: a topological order exists
    order: list[str] = []
    pending = dict(conditions)
    for _ in range(len(conditions)):
        ready = sorted(n for n, deps in pending.items() if set(deps) <= set(order))
        order += ready
        for n in ready:
            del pending[n]
    assert not pending, f"dependency cycle among {sorted(pending)}"


def test_every_long_running_service_has_a_healthcheck(compose: Compose) -> None:
    for name, service in compose.services.items():
        if service.get("restart") == "no":
            continue  # a one-shot: others wait for it to complete
        if published_ports(service) or any(name in (s.get("depends_on") or {}) for s in compose.services.values()):
            assert has_healthcheck(compose, name), name


def test_down_v_removes_everything(compose: Compose) -> None:
    declared = set(compose.config["volumes"])
    used = set()
    for name, service in compose.services.items():
        for source, _target, _ro in mounts(service):
            if source.startswith(("/", ".")):
                assert source in ALLOWED_BINDS, f"{name}: bind mount {source} would outlive `down -v`"
                if source.startswith("."):
                    assert (COMPOSE_FILE.parent / source).is_dir(), source
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared
    for volume in compose.config["volumes"].values():
        assert not (volume or {}).get("external", False)


def test_redis_keeps_nothing_so_no_anonymous_volume_outlives_down(compose: Compose) -> None:
    """redis:7.4-alpine declares VOLUME /data; without a mount there, every container got an anonymous volume that
    `down` (without -v) left behind, one per up/down cycle (seen in real runs)."""
    redis = compose.service("redis")
    assert redis["command"][1:] == ["--save", "", "--appendonly", "no"]
    assert "/data" in redis.get("tmpfs", [])


def test_build_contexts_and_dockerfiles_exist(compose: Compose) -> None:
    built = {name: dockerfile_of(compose, name) for name in compose.services}
    for name, dockerfile in built.items():
        if dockerfile is not None:
            assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
    assert {name for name, d in built.items() if d is not None} == {
        "stub-api",
        "deploy",
        "locust-master",
        "locust-worker",
        "jupyter",
    }
