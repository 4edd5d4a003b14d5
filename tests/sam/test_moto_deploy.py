"""The offline deploy: sam build -> sam package into moto's S3 -> samtranslator -> CloudFormation in moto server.

Then the created resources are read back through the AWS APIs, as a deployed stack would be inspected.
What moto cannot create is listed in tests/sam/support.py and is checked statically in test_template.py.
"""

from __future__ import annotations

import ast
import io
import json
import zipfile
from typing import Any

import pytest

from proxy.config import Settings
from tests.sam.conftest import Moto, Packaged, Stack, create_stack
from tests.sam.support import CONTRACT_VARIABLES, REGION, stub_value

# Non-default values, so the test sees each parameter arrive where it belongs.
TUNING = {
    "UpstreamUrl": "https://upstream.example.com/v1",
    "CacheTtlSeconds": "123",
    "CacheStaleWhileRevalidateSeconds": "7",
    "CacheStaleIfErrorSeconds": "3600",
    "CacheNegativeTtlSeconds": "4",
    "CacheMaxBodyBytes": "65536",
    "CacheKeyHeaders": "Accept-Language,X-Tenant",
    "UpstreamTimeoutSeconds": "3",
    "RedisSocketTimeoutSeconds": "0.5",
    "LogLevel": "DEBUG",
    "LogRetentionDays": "30",
    "FunctionMemoryMB": "512",
    "FunctionTimeoutSeconds": "12",
    "StageName": "v1",
}

CASES = {
    "external": {"RedisMode": "external", "RedisUrl": "redis://redis:6379/0"},
    "elasticache-single-az": {"RedisMode": "elasticache", "MultiAZ": "false"},
    "elasticache-multi-az": {"RedisMode": "elasticache", "MultiAZ": "true"},
    "serverless": {"RedisMode": "serverless", "MultiAZ": "false"},
}


@pytest.fixture(scope="module", params=sorted(CASES))
def stack(request: pytest.FixtureRequest, moto: Moto, packaged: Packaged) -> Stack:
    return create_stack(moto, packaged.template, {**CASES[request.param], **TUNING})


def expected_redis(stack: Stack) -> tuple[str, str]:
    mode = stack.parameters["RedisMode"]
    if mode == "external":
        return stack.parameters["RedisUrl"], "false"
    if mode == "serverless":
        return f"rediss://{stub_value('ServerlessCache', 'Endpoint.Address')}:6379", "true"
    return f"rediss://{stub_value('ReplicationGroup', 'PrimaryEndPoint.Address')}:6379/0", "false"


def test_functions_handler_runtime_architecture_and_sizes(moto: Moto, stack: Stack) -> None:
    lam = moto.client("lambda")
    handlers = {
        "ProxyFunction": "proxy.handler.lambda_handler",
        "InvalidationFunction": "proxy.invalidate.lambda_handler",
    }
    for logical, handler in handlers.items():
        config = lam.get_function_configuration(FunctionName=stack.physical[logical])
        assert config["Handler"] == handler
        assert config["Runtime"] == "python3.13"
        # moto's CloudFormation drops Architectures, so that one is read from the translation and the parameters.
        assert stack.translated["Resources"][logical]["Properties"]["Architectures"] == [{"Ref": "Architecture"}]
        assert config["MemorySize"] == 512
        assert config["Timeout"] == 12
        assert config["Role"].endswith("/" + stack.physical["FunctionRole"])
    parameters = moto.client("cloudformation").describe_stacks(StackName=stack.name)["Stacks"][0]["Parameters"]
    assert {"ParameterKey": "Architecture", "ParameterValue": "arm64"} in parameters  # the default


def test_environment_is_the_proxy_contract_from_parameters(moto: Moto, stack: Stack) -> None:
    lam = moto.client("lambda")
    redis_url, cluster = expected_redis(stack)
    expected = {
        "UPSTREAM_URL": "https://upstream.example.com/v1",
        "REDIS_URL": redis_url,
        "REDIS_CLUSTER": cluster,
        "CACHE_TTL_SECONDS": "123",
        "CACHE_STALE_WHILE_REVALIDATE_SECONDS": "7",
        "CACHE_STALE_IF_ERROR_SECONDS": "3600",
        "CACHE_NEGATIVE_TTL_SECONDS": "4",
        "CACHE_MAX_BODY_BYTES": "65536",
        "CACHE_KEY_HEADERS": "Accept-Language,X-Tenant",
        "UPSTREAM_TIMEOUT_SECONDS": "3",
        "REDIS_SOCKET_TIMEOUT_SECONDS": "0.5",
        "LOG_LEVEL": "DEBUG",
    }
    if stack.parameters["RedisMode"] != "external":
        # The secret's ARN only; the token itself never enters the environment.
        expected["REDIS_AUTH_SECRET_ARN"] = stub_value("RedisAuthSecret")
    for logical in ("ProxyFunction", "InvalidationFunction"):
        variables = lam.get_function_configuration(FunctionName=stack.physical[logical])["Environment"]["Variables"]
        env = {k: str(v) for k, v in variables.items()}  # moto keeps Number parameters as numbers; AWS sends strings
        assert env == expected
        assert set(env) <= CONTRACT_VARIABLES
        settings = Settings.from_env(env)  # the proxy accepts exactly what the template sets
        assert settings.redis_cluster is (cluster == "true")
        assert settings.policy.default_ttl == 123
        assert settings.policy.key_headers == ("accept-language", "x-tenant")


def test_deployed_code_is_the_built_artifact(moto: Moto, stack: Stack, packaged: Packaged) -> None:
    body = moto.client("s3").get_object(Bucket=packaged.bucket, Key=packaged.keys["ProxyFunction"])["Body"].read()
    names = set(zipfile.ZipFile(io.BytesIO(body)).namelist())
    assert {"proxy/__init__.py", "proxy/handler.py", "proxy/invalidate.py", "redis/__init__.py"} <= names
    assert "urllib3/__init__.py" in names
    assert not any(n.startswith((".venv/", "tests/", "proxy/tests/")) or "__pycache__" in n for n in names)
    assert packaged.keys["InvalidationFunction"] == packaged.keys["ProxyFunction"]  # one build, one upload


def test_rest_api_routes_every_method_of_every_path_to_the_proxy(moto: Moto, stack: Stack) -> None:
    api = moto.client("apigateway")
    api_id = stack.physical["ProxyApi"]
    function_arn = moto.client("lambda").get_function_configuration(FunctionName=stack.physical["ProxyFunction"])[
        "FunctionArn"
    ]
    items = {r["path"]: r for r in api.get_resources(restApiId=api_id)["items"]}
    assert set(items) == {"/", "/{proxy+}"}
    for resource in items.values():
        assert set(resource["resourceMethods"]) == {"ANY"}
        integration = api.get_integration(restApiId=api_id, resourceId=resource["id"], httpMethod="ANY")
        assert integration["type"] == "AWS_PROXY"  # the Lambda proxy integration: payload 1.0 events
        assert integration["httpMethod"] == "POST"
        assert integration["uri"] == (
            f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
        )
    assert [s["stageName"] for s in api.get_stages(restApiId=api_id)["item"]] == ["v1"]
    assert stack.outputs["ApiUrl"] == f"https://{api_id}.execute-api.{REGION}.amazonaws.com/v1/"
    assert stack.outputs["ApiId"] == api_id
    assert stack.outputs["ApiStageName"] == "v1"


def test_api_gateway_may_invoke_the_proxy_function_only(moto: Moto, stack: Stack) -> None:
    lam = moto.client("lambda")
    policy = json.loads(lam.get_policy(FunctionName=stack.physical["ProxyFunction"])["Policy"])
    for statement in policy["Statement"]:
        assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
        assert statement["Action"] == "lambda:InvokeFunction"
        source = statement["Condition"]["ArnLike"]["AWS:SourceArn"]
        assert source.startswith(f"arn:aws:execute-api:{REGION}:123456789012:{stack.physical['ProxyApi']}/")
    assert len(policy["Statement"]) == 2  # "/" and "/{proxy+}"


def test_outputs_and_topic(moto: Moto, stack: Stack) -> None:
    topics = [t["TopicArn"] for t in moto.client("sns").list_topics()["Topics"]]
    assert stack.outputs["InvalidationTopicArn"] in topics
    assert stack.outputs["FunctionName"] == stack.physical["ProxyFunction"]
    assert stack.outputs["InvalidationFunctionName"] == stack.physical["InvalidationFunction"]
    mode = stack.parameters["RedisMode"]
    if mode == "external":
        assert stack.outputs["RedisEndpoint"] == "redis://redis:6379/0"
        assert "RedisAuthSecretArn" not in stack.outputs
    else:
        logical, attribute = (
            ("ServerlessCache", "Endpoint") if mode == "serverless" else ("ReplicationGroup", "PrimaryEndPoint")
        )
        assert stack.outputs["RedisEndpoint"] == f"{stub_value(logical, attribute + '.Address')}:6379"
        assert stack.outputs["RedisAuthSecretArn"] == stub_value("RedisAuthSecret")


def test_log_groups_with_retention(moto: Moto, stack: Stack) -> None:
    logs = moto.client("logs")
    for logical in ("ProxyFunction", "InvalidationFunction"):
        name = f"/aws/lambda/{stack.physical[logical]}"
        groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [(name, 30)]


def test_role_reads_only_the_auth_secret(moto: Moto, stack: Stack) -> None:
    iam = moto.client("iam")
    role = stack.physical["FunctionRole"]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    if stack.parameters["RedisMode"] == "external":
        assert names == []
        return
    assert names == ["read-redis-auth-token"]
    document = iam.get_role_policy(RoleName=role, PolicyName=names[0])["PolicyDocument"]
    if isinstance(document, str):  # moto renders a document CloudFormation gave as an object with Python's repr
        document = ast.literal_eval(document) if document.startswith("{'") else json.loads(document)
    assert document["Statement"] == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": stub_value("RedisAuthSecret")}
    ]


def test_network(moto: Moto, stack: Stack) -> None:
    ec2 = moto.client("ec2")
    lam = moto.client("lambda")
    vpc_config = lam.get_function_configuration(FunctionName=stack.physical["ProxyFunction"]).get("VpcConfig") or {}
    mode = stack.parameters["RedisMode"]
    if mode == "external":  # the LocalStack / compose path: no VPC, no NAT gateway, no security group
        assert not vpc_config.get("SubnetIds")
        assert not any(logical.startswith(("Vpc", "Nat", "PrivateSubnet")) for logical in stack.physical)
        return
    multi_az = stack.parameters["MultiAZ"] == "true"
    vpc_id = stack.physical["Vpc"]
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"] == "10.42.0.0/16"

    private = [stack.physical[k] for k in ("PrivateSubnetA", "PrivateSubnetB") if k in stack.physical]
    public = [stack.physical[k] for k in ("PublicSubnetA", "PublicSubnetB") if k in stack.physical]
    assert len(private) == (2 if multi_az or mode == "serverless" else 1)
    assert len(public) == (2 if multi_az else 1)
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=private + public)["Subnets"]}
    assert all(s["VpcId"] == vpc_id and not s["MapPublicIpOnLaunch"] for s in subnets.values())
    assert len({subnets[s]["AvailabilityZone"] for s in private}) == len(private)  # one per AZ

    nats = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]
    assert len(nats) == (2 if multi_az else 1)  # one NAT gateway per AZ, or a single one
    assert {n["SubnetId"] for n in nats} <= set(public)

    # The function runs in the private subnets with its own security group.
    assert sorted(vpc_config["SubnetIds"]) == sorted(private)
    assert vpc_config["SecurityGroupIds"] == [stack.physical["FunctionSecurityGroup"]]

    # Private subnets leave through a NAT gateway (their own AZ's when MultiAZ), public ones through the IGW.
    # (moto does not report the subnet associations it creates; test_template checks them statically.)
    def default_route(table: str) -> dict[str, Any]:
        routes = ec2.describe_route_tables(RouteTableIds=[stack.physical[table]])["RouteTables"][0]["Routes"]
        [route] = [r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        return dict(route)

    assert default_route("PublicRouteTable").get("GatewayId") == stack.physical["InternetGateway"]
    nat_subnet = {n["NatGatewayId"]: n["SubnetId"] for n in nats}
    pairs = [("PrivateRouteTableA", "PrivateSubnetA"), ("PrivateRouteTableB", "PrivateSubnetB")][: len(private)]
    for table, subnet in pairs:
        nat = default_route(table).get("NatGatewayId")
        assert nat in nat_subnet
        if multi_az:  # the NAT gateway in the same AZ as the private subnet
            same_az = (
                subnets[nat_subnet[nat]]["AvailabilityZone"] == subnets[stack.physical[subnet]]["AvailabilityZone"]
            )
            assert same_az, (table, nat)
        else:
            assert nat == stack.physical["NatGatewayA"]

    # Redis accepts only the functions' security group on its port; nobody may reach the functions.
    groups = {
        g["GroupId"]: g
        for g in ec2.describe_security_groups(
            GroupIds=[stack.physical["RedisSecurityGroup"], stack.physical["FunctionSecurityGroup"]]
        )["SecurityGroups"]
    }
    redis_rules = groups[stack.physical["RedisSecurityGroup"]]["IpPermissions"]
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in redis_rules] == [("tcp", 6379, 6379)]
    assert [p["GroupId"] for p in redis_rules[0]["UserIdGroupPairs"]] == [stack.physical["FunctionSecurityGroup"]]
    assert redis_rules[0]["IpRanges"] == []
    assert redis_rules[0].get("Ipv6Ranges", []) == []
    assert groups[stack.physical["FunctionSecurityGroup"]]["IpPermissions"] == []
