"""Least privilege in sam/template.yaml, as cfn-guard-style rules over the template CloudFormation really receives
(the SAM transform's output) for every RedisMode x MultiAZ.

tests/sam/test_template.py already pins the secret's one statement, the absence of IAM::Policy/ManagedPolicy and
the network rules; the rules here cover what it does not: every statement anywhere, every role's trust, every
invoke permission, and that nothing but SNS can reach the invalidation (purge) function.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.sam.support import load_template, resources, translate, walk, with_code_uri

MODES = ("elasticache", "serverless", "external")
COMBINATIONS = list(itertools.product(MODES, ("true", "false")))
# The only AWS managed policies a function role may carry: CloudWatch Logs, plus ENIs when in a VPC.
MANAGED = {"AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"}
# Resource types that would grant or hold long-lived credentials, or open a function to the internet by itself.
FORBIDDEN_TYPES = {
    "AWS::IAM::User",
    "AWS::IAM::AccessKey",
    "AWS::IAM::Group",
    "AWS::IAM::UserToGroupAddition",
    "AWS::IAM::InstanceProfile",
    "AWS::Lambda::Url",
    "AWS::SNS::TopicPolicy",
    "AWS::SecretsManager::ResourcePolicy",
}
Rule = Callable[[dict[str, Any]], Iterator[str]]


def parameters(mode: str, multi_az: str) -> dict[str, str]:
    params = {"RedisMode": mode, "MultiAZ": multi_az}
    if mode == "external":
        params["RedisUrl"] = "redis://redis:6379/0"
    return params


@pytest.fixture(scope="module")
def translations() -> dict[tuple[str, str], dict[str, Any]]:
    source = with_code_uri(load_template())
    return {(m, z): translate(source, parameters(m, z)) for m, z in COMBINATIONS}


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy statement in the template, with the logical id it sits in."""
    for logical, resource in resources(template).items():
        for node in walk(resource.get("Properties", {})):
            if isinstance(node, dict) and "Statement" in node:
                for statement in _as_list(node["Statement"]):
                    yield logical, statement


# ---------------------------------------------------------------------------------------------- the rules
def no_wildcard_actions_or_resources(template: dict[str, Any]) -> Iterator[str]:
    for logical, statement in statements(template):
        for key in ("NotAction", "NotResource", "NotPrincipal"):
            if key in statement:
                yield f"{logical}: {key} grants everything but a list"
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action", [])):
            if isinstance(action, str) and (action == "*" or action.endswith(":*") or "*" in action.split(":")[0]):
                yield f"{logical}: wildcard action {action!r}"
        if statement.get("Principal") is None:  # an identity policy: a resource must be named
            for resource in _as_list(statement.get("Resource", [])):
                if resource == "*" or (isinstance(resource, str) and resource.endswith(":*")):
                    yield f"{logical}: {statement.get('Action')} on every resource"


def roles_trust_lambda_only(template: dict[str, Any]) -> Iterator[str]:
    for logical, role in resources(template, "AWS::IAM::Role").items():
        for statement in _as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"]):
            if statement != {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }:
                yield f"{logical}: trusts {json.dumps(statement)}"


def managed_policies_are_the_lambda_basics(template: dict[str, Any]) -> Iterator[str]:
    for logical, role in resources(template, "AWS::IAM::Role").items():
        for node in walk(role["Properties"].get("ManagedPolicyArns", [])):
            if isinstance(node, str) and ":policy/" in node and node.rsplit("/", 1)[-1] not in MANAGED:
                yield f"{logical}: managed policy {node}"


def every_function_uses_a_role_of_this_template(template: dict[str, Any]) -> Iterator[str]:
    roles = set(resources(template, "AWS::IAM::Role"))
    for logical, function in resources(template, "AWS::Lambda::Function").items():
        role = function["Properties"]["Role"]
        if not (isinstance(role, dict) and role.get("Fn::GetAtt", [None])[0] in roles):
            yield f"{logical}: role {json.dumps(role)} is not defined here"


def invoke_permissions_are_scoped(template: dict[str, Any]) -> Iterator[str]:
    """API Gateway may invoke the proxy from this API only; SNS the invalidation function from this topic only."""
    apis = set(resources(template, "AWS::ApiGateway::RestApi"))
    topics = set(resources(template, "AWS::SNS::Topic"))
    for logical, permission in resources(template, "AWS::Lambda::Permission").items():
        props = permission["Properties"]
        function = props["FunctionName"].get("Ref")
        source = json.dumps(props.get("SourceArn"))
        if props["Action"] != "lambda:InvokeFunction":
            yield f"{logical}: grants {props['Action']}"
        if props["Principal"] == "apigateway.amazonaws.com":
            if function != "ProxyFunction" or not any(f'"Ref": "{api}"' in source for api in apis):
                yield f"{logical}: API Gateway may invoke {function} from {source}"
        elif props["Principal"] == "sns.amazonaws.com":
            if function != "InvalidationFunction" or props.get("SourceArn", {}).get("Ref") not in topics:
                yield f"{logical}: SNS may invoke {function} from {source}"
        else:
            yield f"{logical}: {props['Principal']} may invoke {function}"
        if "SourceAccount" in props and props["SourceAccount"] == "*":
            yield f"{logical}: any account"


def purges_are_not_reachable_over_http(template: dict[str, Any]) -> Iterator[str]:
    """The invalidation function (the only thing that deletes cached entries) has no HTTP route: an anonymous
    caller cannot purge. Only a principal allowed to sns:Publish on the topic can."""
    for node in walk(resources(template, "AWS::ApiGateway::RestApi")):
        if isinstance(node, str) and "InvalidationFunction" in node:
            yield "the REST API integrates the invalidation function"
    for logical, resource in resources(template).items():
        if resource["Type"].startswith("AWS::ApiGatewayV2::") or resource["Type"] == "AWS::Lambda::Url":
            yield f"{logical}: another HTTP entry point ({resource['Type']})"


def no_long_lived_credentials_or_public_resource_policies(template: dict[str, Any]) -> Iterator[str]:
    for logical, resource in resources(template).items():
        if resource["Type"] in FORBIDDEN_TYPES:
            yield f"{logical}: {resource['Type']}"
    for logical, statement in statements(template):
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
            yield f"{logical}: a statement for any principal"


RULES: list[Rule] = [
    no_wildcard_actions_or_resources,
    roles_trust_lambda_only,
    managed_policies_are_the_lambda_basics,
    every_function_uses_a_role_of_this_template,
    invoke_permissions_are_scoped,
    purges_are_not_reachable_over_http,
    no_long_lived_credentials_or_public_resource_policies,
]


@pytest.mark.parametrize("rule", RULES, ids=[r.__name__ for r in RULES])
@pytest.mark.parametrize(("mode", "multi_az"), COMBINATIONS)
def test_least_privilege(
    translations: dict[tuple[str, str], dict[str, Any]], rule: Rule, mode: str, multi_az: str
) -> None:
    assert list(rule(translations[(mode, multi_az)])) == []


# ---------------------------------------------------------------------------------------------- the rules bite
BAD: list[tuple[Rule, dict[str, Any]]] = [
    (no_wildcard_actions_or_resources, {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]}}]}}),
    (no_wildcard_actions_or_resources, {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {
        "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}}]}}),
    (no_wildcard_actions_or_resources, {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {
        "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:x"}]}}]}}),
    (roles_trust_lambda_only, {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}}}),
    (managed_policies_are_the_lambda_basics, {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Statement": []},
        "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]}}),
    (invoke_permissions_are_scoped, {"Type": "AWS::Lambda::Permission", "Properties": {
        "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "InvalidationFunction"},
        "Principal": "apigateway.amazonaws.com", "SourceArn": "arn:aws:execute-api:*"}}),
    (invoke_permissions_are_scoped, {"Type": "AWS::Lambda::Permission", "Properties": {
        "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "ProxyFunction"}, "Principal": "*"}}),
    (purges_are_not_reachable_over_http, {"Type": "AWS::Lambda::Url", "Properties": {
        "TargetFunctionArn": {"Fn::GetAtt": ["InvalidationFunction", "Arn"]}, "AuthType": "NONE"}}),
    (no_long_lived_credentials_or_public_resource_policies, {"Type": "AWS::SNS::TopicPolicy", "Properties": {
        "PolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sns:Publish",
                                          "Resource": {"Ref": "InvalidationTopic"}}]}}}),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "resource"), BAD, ids=[f"{r.__name__}-{i}" for i, (r, _) in enumerate(BAD)])
def test_each_rule_catches_a_violation(
    translations: dict[tuple[str, str], dict[str, Any]], rule: Rule, resource: dict[str, Any]
) -> None:
    template = json.loads(json.dumps(translations[("external", "false")]))
    template["Resources"]["Injected"] = resource
    assert list(rule(template)) != []
