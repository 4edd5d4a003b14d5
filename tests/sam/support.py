"""Helpers of the template tests: load and translate sam/template.yaml as AWS does, and adapt the translation to
what moto's CloudFormation can create.

What `for_moto` changes, and only that (the template itself is never weakened for moto):

1. Resource types moto's CloudFormation cannot create are removed (MOTO_UNSUPPORTED): the ElastiCache subnet
   group, replication group, user, user group and serverless cache; the Secrets Manager secret; the SNS
   subscription; the Lambda EventInvokeConfig; the API Gateway Stage. Every `Ref`/`Fn::GetAtt` (and `${...}` in
   `Fn::Sub`) to a removed resource becomes a fixed literal from `stub_value` (e.g. the replication group's
   PrimaryEndPoint.Address becomes "replicationgroup.stub.cache.amazonaws.com", its Port "6379", the secret's Ref a
   stub ARN), and removed resources leave every `DependsOn`. The removed resources are checked statically instead.
2. The Stage's StageName moves onto its Deployment (moto's Deployment creates the stage itself).
3. moto's RestApi ignores `Body`, so the OpenAPI body SAM generates is expanded into the equivalent
   AWS::ApiGateway::Resource and AWS::ApiGateway::Method resources (path segments -> resources,
   x-amazon-apigateway-any-method -> ANY, x-amazon-apigateway-integration -> Integration, intrinsics kept), and the
   Deployment waits for those methods, which is what API Gateway's import of the body does on AWS.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from proxy.config import ENVIRONMENT_NAMES

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "sam" / "template.yaml"
SAMCONFIG = REPO / "sam" / "samconfig.toml"
REGION = "us-east-1"
CODE_URI = "s3://cachelab-artifacts/proxy.zip"

# The proxy's configuration contract (docs/configuration.md, "Configuration"): the only variables the template may set.
CONTRACT_VARIABLES = frozenset(ENVIRONMENT_NAMES)

MOTO_UNSUPPORTED = frozenset(
    {
        "AWS::ElastiCache::SubnetGroup",
        "AWS::ElastiCache::ReplicationGroup",
        "AWS::ElastiCache::User",
        "AWS::ElastiCache::UserGroup",
        "AWS::ElastiCache::ServerlessCache",
        "AWS::SecretsManager::Secret",
        "AWS::SNS::Subscription",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::ApiGateway::Stage",
    }
)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as the SAM CLI reads it (short-form intrinsics become their long form)."""
    from samcli.yamlhelper import yaml_parse

    data: dict[str, Any] = yaml_parse(path.read_text())
    return data


def with_code_uri(template: Mapping[str, Any], code_uri: str = CODE_URI) -> dict[str, Any]:
    """What `sam package` does for the translator: the functions' code as an S3 location."""
    result = copy.deepcopy(dict(template))
    result["Globals"]["Function"]["CodeUri"] = code_uri
    return result


def translate(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """The AWS::Serverless-2016-10-31 transform, run by samtranslator as CloudFormation runs it."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=REGION))
    # No managed policy is referenced by name (the functions share an explicit role), so the map stays empty.
    result: dict[str, Any] = translator.translate(
        copy.deepcopy(dict(template)), parameter_values=dict(parameters), get_managed_policy_map=dict
    )
    return result


def resources(template: Mapping[str, Any], type_name: str | None = None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template["Resources"]
    return {k: v for k, v in found.items() if type_name is None or v["Type"] == type_name}


def walk(node: object) -> Iterator[object]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


# ---------------------------------------------------------------------------------------------- moto
def stub_value(logical_id: str, attribute: str | None = None) -> str:
    if attribute is None:
        if logical_id == "RedisAuthSecret":
            return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{logical_id}-stub"
        return f"stub-{logical_id}".lower()
    if attribute.endswith("Port"):
        return "6379"
    if attribute.endswith("Address"):
        return f"{logical_id.lower()}.stub.cache.amazonaws.com"
    return f"stub-{logical_id}-{attribute}".lower()


def _replace_refs(node: Any, removed: frozenset[str]) -> Any:
    if isinstance(node, list):
        return [_replace_refs(item, removed) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] in removed:
        return stub_value(node["Ref"])
    if set(node) == {"Fn::GetAtt"}:
        target = node["Fn::GetAtt"]
        name, attribute = target.split(".", 1) if isinstance(target, str) else (target[0], ".".join(target[1:]))
        if name in removed:
            return stub_value(name, attribute)
    if set(node) == {"Fn::Sub"}:
        value = node["Fn::Sub"]
        text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})

        def sub(match: re.Match[str]) -> str:
            name, _, attribute = match.group(1).partition(".")
            if name in removed and name not in variables:
                return stub_value(name, attribute or None)
            return match.group(0)

        text = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", sub, text)
        variables = {k: _replace_refs(v, removed) for k, v in variables.items()}
        return {"Fn::Sub": [text, variables] if variables else text}
    return {key: _replace_refs(value, removed) for key, value in node.items()}


def _expand_rest_api_bodies(out: dict[str, Any]) -> None:
    all_resources = out["Resources"]
    for api_id, api in list(resources(out, "AWS::ApiGateway::RestApi").items()):
        body = api["Properties"].pop("Body", None)
        if body is None:
            continue
        api["Properties"]["Name"] = body["info"]["title"]
        ref_api = {"Ref": api_id}
        parents: dict[str, Any] = {"": {"Fn::GetAtt": [api_id, "RootResourceId"]}}
        methods: list[str] = []
        for path in sorted(body["paths"]):
            so_far = ""
            for segment in [part for part in path.split("/") if part]:
                parent = parents[so_far]
                so_far = f"{so_far}/{segment}"
                if so_far not in parents:
                    logical = f"{api_id}MotoResource{len(parents)}"
                    all_resources[logical] = {
                        "Type": "AWS::ApiGateway::Resource",
                        "Properties": {"RestApiId": ref_api, "ParentId": parent, "PathPart": segment},
                    }
                    parents[so_far] = {"Ref": logical}
            for verb, operation in body["paths"][path].items():
                integration = operation["x-amazon-apigateway-integration"]
                logical = f"{api_id}MotoMethod{len(methods)}"
                all_resources[logical] = {
                    "Type": "AWS::ApiGateway::Method",
                    "Properties": {
                        "RestApiId": ref_api,
                        "ResourceId": parents[so_far],
                        "HttpMethod": "ANY" if verb == "x-amazon-apigateway-any-method" else verb.upper(),
                        "AuthorizationType": "NONE",
                        "Integration": {
                            "Type": str(integration["type"]).upper(),
                            "IntegrationHttpMethod": integration["httpMethod"],
                            "Uri": integration["uri"],
                        },
                    },
                }
                methods.append(logical)
        for deployment in resources(out, "AWS::ApiGateway::Deployment").values():
            if deployment["Properties"].get("RestApiId") == ref_api:
                deployment["DependsOn"] = [*_depends_on(deployment), *methods]


def _depends_on(resource: Mapping[str, Any]) -> list[str]:
    value = resource.get("DependsOn", [])
    return [value] if isinstance(value, str) else list(value)


def for_moto(translated: Mapping[str, Any]) -> dict[str, Any]:
    """The translated template with the three documented adaptations above (see the module docstring)."""
    out = copy.deepcopy(dict(translated))
    for stage in resources(out, "AWS::ApiGateway::Stage").values():
        deployment = out["Resources"][stage["Properties"]["DeploymentId"]["Ref"]]
        deployment["Properties"]["StageName"] = stage["Properties"]["StageName"]
    removed = frozenset(k for k, v in out["Resources"].items() if v["Type"] in MOTO_UNSUPPORTED)
    for logical in removed:
        del out["Resources"][logical]
    out = dict(_replace_refs(out, removed))
    for resource in out["Resources"].values():
        if "DependsOn" in resource:
            kept = [d for d in _depends_on(resource) if d not in removed]
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]
    _expand_rest_api_bodies(out)
    return out
