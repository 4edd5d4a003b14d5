"""The template's two handlers, run from the `sam build` artifact on the template's runtime (python3.13, isolated),
with the environment of the functions that moto created from the template (RedisMode=external pointing at a real
redis-server and a real HTTP origin), fed with the events the template's API and topic produce:

- REST proxy events (payload 1.0) whose resource, stage and api id come from the deployed REST API;
- SNS events built from what the stack's topic really delivers: `cachelab invalidate --target localstack` publishes
  to the topic (found through the stack's outputs), an SQS queue subscribed to the same topic receives SNS's
  envelope, and the envelope becomes the record Lambda would get (moto cannot run the Lambda subscription).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cachelab.events import build_event
from tests.conftest import RedisServer
from tests.sam.conftest import Moto, Packaged, Stack, create_stack, runtime_python
from tests.sam.support import REGION, load_template
from tests.support.upstream import Origin, Reply

RUNNER = Path(__file__).resolve().parent / "lambda_runner.py"
pytestmark = pytest.mark.redis_server


class Deployed:
    """One stack in moto plus the means to invoke its functions from the built artifact."""

    def __init__(self, moto: Moto, stack: Stack, build: Path, workdir: Path) -> None:
        self.moto = moto
        self.stack = stack
        self.build = build
        self.workdir = workdir
        self.calls = 0
        body = stack.translated["Resources"]["ProxyApi"]["Properties"]["Body"]
        self.routes = set(body["paths"])
        self.stage = stack.parameters.get("StageName") or load_template()["Parameters"]["StageName"]["Default"]
        self.queue_url, self.subscription = self._capture_topic()

    # -- invoking ------------------------------------------------------------------------------------
    def invoke(self, logical: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One cold execution environment of function `logical` handling `events` in order."""
        config = self.moto.client("lambda").get_function_configuration(FunctionName=self.stack.physical[logical])
        env = {k: str(v) for k, v in config["Environment"]["Variables"].items()}
        env.update(
            AWS_LAMBDA_FUNCTION_NAME=config["FunctionName"], AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
            LANG="C.UTF-8", TZ=":UTC",
        )  # fmt: skip
        built = load_built(self.build)["Resources"][logical]["Properties"]["CodeUri"]
        task_root = (self.build / built).resolve()
        self.calls += 1
        events_file = self.workdir / f"events-{self.calls}.json"
        out_file = self.workdir / f"out-{self.calls}.json"
        events_file.write_text(json.dumps(events))
        proc = subprocess.run(
            [str(runtime_python()), "-I", "-B", str(RUNNER), str(task_root), config["Handler"], str(events_file),
             str(out_file)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        report = json.loads(out_file.read_text())
        assert Path(report["module_file"]).is_relative_to(task_root)  # imported from the artifact, not the repo
        assert report["python"].startswith("3.13")
        results: list[dict[str, Any]] = report["results"]
        return results

    def get(self, *targets: str, method: str = "GET") -> list[dict[str, Any]]:
        results = self.invoke("ProxyFunction", [self.rest_event(method, t) for t in targets])
        assert all("result" in r for r in results), results
        return [r["result"] for r in results]

    def rest_event(self, method: str, target: str) -> dict[str, Any]:
        """The event the template's REST API sends for `method target` (Lambda proxy integration)."""
        event = build_event(method, target, [("Accept", "application/json"), ("User-Agent", "pytest")])
        path = event["path"]
        resource = "/" if path == "/" else "/{proxy+}"
        assert resource in self.routes, f"the template's API has no route for {path}"
        event["resource"] = resource
        event["requestContext"].update(
            resourcePath=resource, stage=self.stage, path=f"/{self.stage}{path}", apiId=self.stack.physical["ProxyApi"]
        )
        return event

    # -- the invalidation topic ----------------------------------------------------------------------
    def _capture_topic(self) -> tuple[str, str]:
        sqs = self.moto.client("sqs")
        queue_url = sqs.create_queue(QueueName=f"{self.stack.name}-capture")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic = self.stack.outputs["InvalidationTopicArn"]
        subscription = self.moto.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return queue_url, str(subscription["SubscriptionArn"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cachelab", *args],
            env={**os.environ, "PYTHONPATH": ""}, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def publish_with_cli(self, *args: str) -> None:
        proc = self.cli(
            "invalidate", "--target", "localstack", "--endpoint-url", self.moto.endpoint,
            "--stack-name", self.stack.name, *args,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert self.stack.outputs["InvalidationTopicArn"] in proc.stdout

    def delivered(self) -> list[dict[str, Any]]:
        """The SNS events Lambda would receive for what was published since the last call (one record each)."""
        sqs = self.moto.client("sqs")
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in messages.get("Messages", []):
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                events.append(sns_event(json.loads(message["Body"]), self.subscription))
            if events and not messages.get("Messages"):
                break
            time.sleep(0.05)
        return events


def sns_event(envelope: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """SNS's delivery envelope as the record of a Lambda SNS event."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope["Type"],
                    "MessageId": envelope["MessageId"],
                    "TopicArn": envelope["TopicArn"],
                    "Subject": envelope.get("Subject"),
                    "Message": envelope["Message"],
                    "Timestamp": envelope["Timestamp"],
                    "SignatureVersion": envelope.get("SignatureVersion"),
                    "Signature": envelope.get("Signature"),
                    "SigningCertUrl": envelope.get("SigningCertURL"),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL"),
                    "MessageAttributes": envelope.get("MessageAttributes", {}),
                },
            }
        ]
    }


_built: dict[Path, dict[str, Any]] = {}


def load_built(build: Path) -> dict[str, Any]:
    if build not in _built:
        _built[build] = load_template(build / "template.yaml")
    return _built[build]


def headers(result: dict[str, Any]) -> dict[str, str]:
    merged = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        merged.setdefault(name.lower(), str(values[-1]))
    return merged


def cache_states(results: list[dict[str, Any]]) -> list[str]:
    return [headers(r).get("x-cache", "?") for r in results]


@pytest.fixture
def deployed(  # noqa: PLR0917 - pytest passes fixtures positionally
    moto: Moto, packaged: Packaged, sam_build: Path, redis_server: RedisServer, origin: Origin, tmp_path: Path
) -> Deployed:
    for path in ("/", "/items/1", "/items/2", "/other/1"):
        origin.routes[path] = Reply(body=json.dumps({"path": path}).encode())
    params = {"RedisMode": "external", "RedisUrl": redis_server.url, "UpstreamUrl": origin.url}
    return Deployed(moto, create_stack(moto, packaged.template, params), sam_build, tmp_path)


def test_rest_events_miss_then_hit_from_the_built_artifact(deployed: Deployed, origin: Origin) -> None:
    results = deployed.get("/items/1", "/items/1", "/", "/")
    assert [r["statusCode"] for r in results] == [200, 200, 200, 200]
    assert cache_states(results) == ["MISS", "HIT", "MISS", "HIT"]
    assert json.loads(results[1]["body"]) == {"path": "/items/1"}
    assert "age" in headers(results[1])
    assert origin.count("/items/1") == 1
    assert origin.count("/") == 1
    # a second, cold execution environment shares the same Redis
    assert cache_states(deployed.get("/items/1", method="HEAD")) == ["HIT"]


def test_invalidation_through_the_topic_exact_path_then_prefix(deployed: Deployed, origin: Origin) -> None:
    assert cache_states(deployed.get("/items/1", "/items/2", "/other/1")) == ["MISS", "MISS", "MISS"]

    deployed.publish_with_cli("/items/1")
    events = deployed.delivered()
    assert [json.loads(e["Records"][0]["Sns"]["Message"]) for e in events] == [{"paths": ["/items/1"]}]
    assert deployed.invoke("InvalidationFunction", events) == [{"result": {"messages": 1, "rejected": 0, "purged": 1}}]
    assert cache_states(deployed.get("/items/1", "/items/2", "/other/1")) == ["MISS", "HIT", "HIT"]
    assert origin.count("/items/1") == 2

    deployed.publish_with_cli("--prefix", "/items/")
    events = deployed.delivered()
    assert deployed.invoke("InvalidationFunction", events) == [{"result": {"messages": 1, "rejected": 0, "purged": 2}}]
    assert cache_states(deployed.get("/items/1", "/items/2", "/other/1")) == ["MISS", "MISS", "HIT"]


def test_bad_messages_are_logged_and_dropped_never_raised(deployed: Deployed) -> None:
    assert cache_states(deployed.get("/items/1")) == ["MISS"]
    sns = deployed.moto.client("sns")
    bad = [
        "not json",
        "[]",
        "{}",
        '{"paths": []}',
        '{"paths": "/items/1"}',
        '{"paths": ["items/1"]}',
        '{"paths": ["/items/1"], "prefix": ["/"]}',
        json.dumps({"prefixes": ["/x"] * 101}),
        json.dumps({"paths": ["/" + "a" * 5000]}),
    ]
    for message in bad:
        sns.publish(TopicArn=deployed.stack.outputs["InvalidationTopicArn"], Message=message)
    events = deployed.delivered()
    assert len(events) == len(bad)
    results = deployed.invoke("InvalidationFunction", [*events, {"not": "an SNS event"}])
    assert [r.get("result", r) for r in results] == [{"messages": 1, "rejected": 1, "purged": 0}] * len(bad) + [
        {"messages": 0, "rejected": 1, "purged": 0}
    ]
    assert cache_states(deployed.get("/items/1")) == ["HIT"]  # nothing was deleted


def test_unreachable_redis_makes_the_invalidation_fail_so_lambda_retries(
    moto: Moto, packaged: Packaged, sam_build: Path, origin: Origin, tmp_path: Path
) -> None:
    from cachelab.processes import free_port

    params = {"RedisMode": "external", "RedisUrl": f"redis://127.0.0.1:{free_port()}/0", "UpstreamUrl": origin.url}
    deployed = Deployed(moto, create_stack(moto, packaged.template, params), sam_build, tmp_path)
    deployed.publish_with_cli("/items/1")
    [result] = deployed.invoke("InvalidationFunction", deployed.delivered())
    assert result["error"] == "StoreUnavailable"  # a function error: retried twice (EventInvokeConfig), then dropped
