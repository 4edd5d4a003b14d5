"""sam/template.yaml without deploying it: `sam validate --lint`, cfn-lint for every RedisMode x MultiAZ, the
least-privilege rules, and the properties of the resources moto cannot create (see tests/sam/support.py)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cachelab.commands.deploy import template_parameters
from tests.sam.conftest import SAM, sam_env
from tests.sam.support import (
    CONTRACT_VARIABLES,
    SAMCONFIG,
    TEMPLATE,
    load_template,
    resources,
    translate,
    walk,
    with_code_uri,
)

MODES = ("elasticache", "serverless", "external")
COMBINATIONS = list(itertools.product(MODES, ("true", "false")))


def parameters(mode: str, multi_az: str, **extra: str) -> dict[str, str]:
    params = {"RedisMode": mode, "MultiAZ": multi_az, **extra}
    if mode == "external":
        params.setdefault("RedisUrl", "redis://redis:6379/0")
    return params


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translations(source: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m, z): translate(with_code_uri(source), parameters(m, z)) for m, z in COMBINATIONS}


# ---------------------------------------------------------------------------------------------- linters
def test_sam_validate_lint_needs_only_a_region(tmp_path: Path) -> None:
    proc = subprocess.run(
        [SAM, "validate", "--lint", "--template-file", str(TEMPLATE)],
        cwd=tmp_path, env=sam_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is a valid SAM Template" in proc.stdout + proc.stderr


def test_samconfig_turns_lint_on_for_validate(tmp_path: Path) -> None:
    """`sam validate --config-env localstack` (no --lint flag) must lint: a template that only cfn-lint rejects
    (an apostrophe in a security group description) fails."""
    shutil.copy(SAMCONFIG, tmp_path / "samconfig.toml")
    text = TEMPLATE.read_text().replace("cachelab Redis - inbound", "cachelab's Redis - inbound")
    (tmp_path / "template.yaml").write_text(
        text.replace("CodeUri: ../proxy", f"CodeUri: {TEMPLATE.parent.parent}/proxy")
    )
    proc = subprocess.run(
        [SAM, "validate", "--config-env", "localstack", "--template-file", "template.yaml"],
        cwd=tmp_path, env=sam_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "E3031" in proc.stdout + proc.stderr
    config = tomllib.loads(SAMCONFIG.read_text())
    assert config["default"]["validate"]["parameters"]["lint"] is True
    assert config["localstack"]["validate"]["parameters"]["lint"] is True


def lint(template: dict[str, Any], params: dict[str, str]) -> list[str]:
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    matches = cfn_lint(json.dumps(template), config=ManualArgs(parameters=[params], regions=["us-east-1"]))
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches]


@pytest.mark.parametrize(("mode", "multi_az"), COMBINATIONS)
def test_cfn_lint_every_mode_and_multi_az(
    translations: dict[tuple[str, str], dict[str, Any]], mode: str, multi_az: str
) -> None:
    """cfn-lint on the translated template, with the parameter values of this combination."""
    assert lint(translations[(mode, multi_az)], parameters(mode, multi_az)) == []


def test_cfn_lint_applies_the_parameters(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The parameter values really reach cfn-lint (so the loop above lints each combination)."""
    found = lint(translations[("external", "false")], parameters("external", "false", LogRetentionDays="2"))
    assert any(line.startswith("E2900") for line in found), found


def test_cli_reads_the_same_parameter_names(source: dict[str, Any]) -> None:
    assert template_parameters() == list(source["Parameters"])


# ---------------------------------------------------------------------------------------------- contract
def test_parameters_pick_the_environment(source: dict[str, Any]) -> None:
    params = source["Parameters"]
    assert params["RedisMode"]["AllowedValues"] == ["elasticache", "serverless", "external"]
    assert params["MultiAZ"]["AllowedValues"] == ["true", "false"]
    assert params["UpstreamUrl"]["Default"] == "https://api.agify.io"
    assert params["Architecture"]["Default"] == "arm64"
    assert {"CacheTtlSeconds", "CacheStaleWhileRevalidateSeconds", "CacheStaleIfErrorSeconds"} <= set(params)
    assert "LogRetentionDays" in params
    assert set(source["Outputs"]) >= {"ApiUrl", "FunctionName", "RedisEndpoint", "InvalidationTopicArn"}
    globals_ = source["Globals"]["Function"]
    assert re.fullmatch(r"python3\.1[2-9]", globals_["Runtime"])
    assert globals_["CodeUri"] == "../proxy"


def test_every_variable_comes_from_a_parameter_or_a_resource(source: dict[str, Any]) -> None:
    variables = dict(source["Globals"]["Function"]["Environment"]["Variables"])
    assert set(variables) == CONTRACT_VARIABLES
    names = set(source["Parameters"]) | set(source["Resources"])
    # REDIS_CLUSTER follows the RedisMode parameter through a condition
    assert variables.pop("REDIS_CLUSTER") == {"Fn::If": ["UseServerless", "true", "false"]}
    assert source["Conditions"]["UseServerless"] == {"Fn::Equals": [{"Ref": "RedisMode"}, "serverless"]}
    for name, value in variables.items():
        refs = [n["Ref"] for n in walk(value) if isinstance(n, dict) and "Ref" in n]
        subs = [n["Fn::Sub"] for n in walk(value) if isinstance(n, dict) and "Fn::Sub" in n]
        assert refs or subs, name
        assert all(r in names or r == "AWS::NoValue" for r in refs), (name, refs)
        for sub in subs:
            assert set(re.findall(r"\$\{([A-Za-z0-9]+)", sub)) <= names, (name, sub)


def test_api_is_rest_with_root_and_greedy_path_for_every_method(source: dict[str, Any]) -> None:
    assert resources(source, "AWS::Serverless::HttpApi") == {}
    function = source["Resources"]["ProxyFunction"]["Properties"]
    routes = {(e["Properties"]["Path"], e["Properties"]["Method"], e["Type"]) for e in function["Events"].values()}
    assert routes == {("/", "ANY", "Api"), ("/{proxy+}", "ANY", "Api")}
    assert function["Handler"] == "proxy.handler.lambda_handler"


def test_binary_answers_pass_through_the_rest_api(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Without binary media types a REST API mangles the base64 bodies the proxy returns for images."""
    apis = resources(translations[("external", "false")], "AWS::ApiGateway::RestApi")
    # CloudFormation spells "/" as "~1" in this list: "*~1*" is */*, every media type.
    assert [api["Properties"]["BinaryMediaTypes"] for api in apis.values()] == [["*~1*"]]


# ---------------------------------------------------------------------------------------------- least privilege
def _rules(resource: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = resource["Properties"].get(key, [])
    return rules


@pytest.mark.parametrize("mode", MODES)
def test_no_ingress_from_anywhere(translations: dict[tuple[str, str], dict[str, Any]], mode: str) -> None:
    template = translations[(mode, "true")]
    ingress = [r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()]
    for group in resources(template, "AWS::EC2::SecurityGroup").values():
        ingress += _rules(group, "SecurityGroupIngress")
    for rule in ingress:
        assert rule.get("CidrIp") != "0.0.0.0/0", rule
        assert rule.get("CidrIpv6") != "::/0", rule


def test_function_egress_is_https_and_redis_only(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    template = translations[("elasticache", "true")]
    port = template["Mappings"]["Redis"]["Port"]["Number"]
    assert port == 6379
    group = template["Resources"]["FunctionSecurityGroup"]
    assert _rules(group, "SecurityGroupIngress") == []
    egress = [
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIp"), r.get("DestinationSecurityGroupId"))
        for r in _rules(group, "SecurityGroupEgress")
    ]
    port_ref = {"Fn::FindInMap": ["Redis", "Port", "Number"]}
    redis_group = {"Fn::GetAtt": ["RedisSecurityGroup", "GroupId"]}
    assert egress == [("tcp", 443, 443, "0.0.0.0/0", None), ("tcp", port_ref, port_ref, None, redis_group)]


def test_redis_accepts_only_the_function_group(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    template = translations[("serverless", "false")]
    group = template["Resources"]["RedisSecurityGroup"]
    assert _rules(group, "SecurityGroupIngress") == []
    assert _rules(group, "SecurityGroupEgress") == [
        {"Description": "no outbound traffic", "IpProtocol": "-1", "CidrIp": "127.0.0.1/32"}
    ]
    redis_group = {"Fn::GetAtt": ["RedisSecurityGroup", "GroupId"]}
    to_redis = [
        r["Properties"]
        for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == redis_group
    ]
    port_ref = {"Fn::FindInMap": ["Redis", "Port", "Number"]}
    assert [(r["SourceSecurityGroupId"], r["FromPort"], r["ToPort"], r.get("CidrIp")) for r in to_redis] == [
        ({"Fn::GetAtt": ["FunctionSecurityGroup", "GroupId"]}, port_ref, port_ref, None)
    ]
    for cache in ("ReplicationGroup", "ServerlessCache"):
        assert template["Resources"][cache]["Properties"]["SecurityGroupIds"] == [redis_group]


def test_secret_is_readable_by_the_functions_role_only(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    template = translations[("elasticache", "false")]
    functions = resources(template, "AWS::Lambda::Function")
    assert {json.dumps(f["Properties"]["Role"]) for f in functions.values()} == {
        json.dumps({"Fn::GetAtt": ["FunctionRole", "Arn"]})
    }
    role = template["Resources"]["FunctionRole"]["Properties"]
    assert [s["Principal"] for s in role["AssumeRolePolicyDocument"]["Statement"]] == [
        {"Service": "lambda.amazonaws.com"}
    ]
    statements = [
        statement
        for node in walk(template["Resources"])
        if isinstance(node, dict) and "Statement" in node
        for statement in node["Statement"]
        if "secretsmanager" in json.dumps(statement)
    ]
    assert statements == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "RedisAuthSecret"}}
    ]
    assert role["Policies"]["Fn::If"][0] == "UseVpc"
    assert resources(template, "AWS::SecretsManager::ResourcePolicy") == {}
    assert resources(template, "AWS::IAM::Policy") == {}
    assert resources(template, "AWS::IAM::ManagedPolicy") == {}


def test_token_is_resolved_only_into_elasticache(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (mode, _), template in translations.items():
        for logical, resource in resources(template).items():
            if "{{resolve:secretsmanager" in json.dumps(resource):
                assert resource["Type"].startswith("AWS::ElastiCache::"), (mode, logical)
        for function in resources(template, "AWS::Lambda::Function").values():
            variables = function["Properties"]["Environment"]["Variables"]
            assert variables["REDIS_AUTH_SECRET_ARN"] == {
                "Fn::If": ["UseVpc", {"Ref": "RedisAuthSecret"}, {"Ref": "AWS::NoValue"}]
            }


# ---------------------------------------------------------------------------------------------- what moto cannot create
def test_replication_group_tls_auth_and_multi_az(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    group = translations[("elasticache", "true")]["Resources"]["ReplicationGroup"]
    props = group["Properties"]
    assert group["Condition"] == "UseReplicationGroup"
    assert props["TransitEncryptionEnabled"] is True
    assert props["AtRestEncryptionEnabled"] is True
    assert props["AuthToken"] == {"Fn::Sub": "{{resolve:secretsmanager:${RedisAuthSecret}:SecretString}}"}
    assert props["NumCacheClusters"] == {"Fn::If": ["IsMultiAZ", 2, 1]}
    assert props["AutomaticFailoverEnabled"] == props["MultiAZEnabled"] == {"Fn::If": ["IsMultiAZ", True, False]}
    subnets = translations[("elasticache", "true")]["Resources"]["RedisSubnetGroup"]["Properties"]["SubnetIds"]
    assert subnets["Fn::If"][0] == "UseSecondPrivateSubnet"


def test_serverless_cache_uses_the_same_token_through_a_user_group(
    translations: dict[tuple[str, str], dict[str, Any]],
) -> None:
    res = translations[("serverless", "false")]["Resources"]
    user = res["RedisDefaultUser"]["Properties"]
    assert user["UserName"] == "default"
    assert user["AuthenticationMode"]["Passwords"] == [
        {"Fn::Sub": "{{resolve:secretsmanager:${RedisAuthSecret}:SecretString}}"}
    ]
    assert res["RedisUserGroup"]["Properties"]["UserIds"] == [{"Ref": "RedisDefaultUser"}]
    cache = res["ServerlessCache"]["Properties"]
    assert cache["UserGroupId"] == {"Ref": "RedisUserGroup"}
    assert cache["SubnetIds"] == [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}]


def test_no_hard_coded_availability_zone(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    template = translations[("elasticache", "true")]
    for subnet in resources(template, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["AvailabilityZone"]["Fn::Select"][1] == {"Fn::GetAZs": ""}
    assert not re.search(r"\b[a-z]{2}-[a-z]+-\d[a-f]\b", json.dumps(template["Resources"]))


def test_invalidation_subscription_and_bounded_retries(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    res = translations[("external", "false")]["Resources"]
    subscriptions = [r["Properties"] for r in res.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert subscriptions == [
        {
            "Endpoint": {"Fn::GetAtt": ["InvalidationFunction", "Arn"]},
            "Protocol": "lambda",
            "TopicArn": {"Ref": "InvalidationTopic"},
        }
    ]
    invoke = [r["Properties"] for r in res.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert [(i["FunctionName"], i["MaximumRetryAttempts"], i["MaximumEventAgeInSeconds"]) for i in invoke] == [
        ({"Ref": "InvalidationFunction"}, 2, 3600)
    ]
    assert res["InvalidationFunction"]["Properties"]["Handler"] == "proxy.invalidate.lambda_handler"


def test_every_function_has_a_log_group_with_retention(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    template = translations[("external", "true")]
    groups = {
        json.dumps(g["Properties"]["LogGroupName"]): g["Properties"]["RetentionInDays"]
        for g in resources(template, "AWS::Logs::LogGroup").values()
    }
    for logical in resources(template, "AWS::Lambda::Function"):
        assert groups[json.dumps({"Fn::Sub": f"/aws/lambda/${{{logical}}}"})] == {"Ref": "LogRetentionDays"}


def test_each_subnet_uses_its_route_table(translations: dict[tuple[str, str], dict[str, Any]]) -> None:
    template = translations[("elasticache", "true")]
    pairs = {
        (a["Properties"]["SubnetId"]["Ref"], a["Properties"]["RouteTableId"]["Ref"])
        for a in resources(template, "AWS::EC2::SubnetRouteTableAssociation").values()
    }
    assert pairs == {
        ("PublicSubnetA", "PublicRouteTable"),
        ("PublicSubnetB", "PublicRouteTable"),
        ("PrivateSubnetA", "PrivateRouteTableA"),
        ("PrivateSubnetB", "PrivateRouteTableB"),
    }
