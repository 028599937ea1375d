"""The destroy check (tests/live/leftovers.py): every kind the platform creates has a lister, every lister finds
its kind, pages are read to the end, and another project's or environment's resources are not reported.

Leftovers are planted on in-process moto (moto 5.2.5 answers every service used here, Budgets, WAFv2, Scheduler,
API Gateway v2, ACM and Route 53 included), named and tagged as the platform names and tags them
(`{project}-{env}-...`; the provider's default tags Project and Environment).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.live.leftovers import (ACCOUNT_LISTERS, ENVIRONMENT_LISTERS, NO_AWS_OBJECT, SUB_RESOURCES, UNPAGINATED,
                                  Owner, find_leftovers)

REGION = "ap-northeast-2"
PROJECT, ENV = "deepsentinel", "dev"
PREFIX = f"{PROJECT}-{ENV}"
# The same kinds planted for these must not be reported: the other environment of the project (dev and prod share
# an account and the Project tag), and another project whose name starts like ours.
NEIGHBOURS = (("deepsentinel", "prod"), ("deepsentinelx", "dev"))
LOG_GROUP_PAGE = 50  # DescribeLogGroups' default (and largest) limit (CloudWatch Logs API Reference)


# --- every resource type of every variant has a lister or a parent --------------------------------------------

@pytest.fixture(scope="module")
def variant_documents(platform: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The session's dev, prod and account stacks, plus each option that adds resource types: the Jobs API (with a
    FIFO queue in dev, standard in prod), e-mail subscriptions, and an account stack with GitHub roles and zones."""
    from tests.synth_cache import synthesized

    emails = ["alarm_email=ops@example.com", "video_events_email=ops@example.com"]
    dev = ("dev", ["jobs_api_enabled=true", "fifo_job_queue=true", *emails, "github_repository=example/deepsentinel",
                   "hosted_zones=example.com"])
    prod = ("prod", ["jobs_api_enabled=true", *emails])
    variants = {f"variant {name}": document
                for name, document in synthesized(tmp_path_factory, [dev, prod]).documents.items()}
    return {**platform.documents, **variants}


def resource_types(document: dict[str, Any]) -> set[str]:
    return set(document.get("resource", {}))


def test_every_resource_type_of_the_platform_has_a_lister_or_goes_with_a_parent(variant_documents):
    """A kind added to the platform fails here until tests/live/leftovers.py lists it (or names its parent)."""
    env_listed = {t for lister in ENVIRONMENT_LISTERS for t in lister.resource_types}
    account_listed = {t for lister in ACCOUNT_LISTERS for t in lister.resource_types}
    for name, document in variant_documents.items():
        listed = account_listed if name.endswith("deepsentinel-account") else env_listed
        uncovered = resource_types(document) - listed - set(SUB_RESOURCES) - set(NO_AWS_OBJECT)
        assert not uncovered, f"{name}: no lister and no parent for {sorted(uncovered)}"
        orphans = {t: SUB_RESOURCES[t] for t in resource_types(document) & set(SUB_RESOURCES)
                   if SUB_RESOURCES[t] not in listed}
        assert not orphans, f"{name}: sub-resources whose parent type has no lister: {orphans}"
    everything = set().union(*map(resource_types, variant_documents.values()))
    for must in ("aws_kms_key", "aws_kms_alias", "aws_apigatewayv2_api", "aws_scheduler_schedule", "aws_budgets_budget",
                 "aws_cloudwatch_dashboard", "aws_route53_record", "aws_acm_certificate", "aws_wafv2_web_acl",
                 "aws_route53_zone", "aws_iam_openid_connect_provider", "aws_sqs_queue_policy",
                 "aws_sns_topic_subscription"):
        assert must in everything, f"the variants no longer synthesize {must}: widen them"


# --- planted leftovers on moto ------------------------------------------------------------------------------------

class RecordingClients:
    """`Clients` on in-process moto, one client per service, recording every operation the listers call and how:
    ("direct", service, op) for a client method, ("paginator", service, op) for get_paginator, and each HTTP
    request botocore makes (`requests`)."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.requests: list[tuple[str, str]] = []

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            client = boto3.client(service, region_name=REGION)
            client.meta.events.register("before-call", self._on_request)
            self._clients[service] = _Recorded(client, service, self.calls)
        return self._clients[service]

    def _on_request(self, model: Any, **_: Any) -> None:
        self.requests.append((model.service_model.service_name, model.name))


class _Recorded:
    def __init__(self, client: Any, service: str, calls: list[tuple[str, str, str]]) -> None:
        self._client, self._service, self._calls = client, service, calls

    def get_paginator(self, operation: str) -> Any:
        self._calls.append(("paginator", self._service, operation))
        return self._client.get_paginator(operation)

    def __getattr__(self, name: str) -> Any:
        if name in self._client.meta.method_to_api_mapping:
            self._calls.append(("direct", self._service, name))
        return getattr(self._client, name)


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's documented credentials fixture, then the mock."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def plant(project: str, env: str, *, domain: str) -> dict[str, list[str]]:
    """One resource of each kind the environment stacks create (two subnets), named and tagged like the
    platform's; returns lister kind -> the identifiers the lister must report."""
    c = lambda service: boto3.client(service, region_name=REGION)  # noqa: E731 - a one-line client factory
    prefix = f"{project}-{env}"
    tags = {"Project": project, "Environment": env}
    kv = [{"Key": k, "Value": v} for k, v in tags.items()]
    spec = lambda kind: [{"ResourceType": kind, "Tags": kv}]  # noqa: E731
    account = c("sts").get_caller_identity()["Account"]
    planted: dict[str, Any] = {}

    # network
    ec2 = c("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=spec("vpc"))["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}",
                                 TagSpecifications=spec("subnet"))["Subnet"]["SubnetId"]
               for i, az in ((1, "a"), (2, "c"))]
    group = ec2.create_security_group(GroupName=f"{prefix}-alb", Description="alb", VpcId=vpc,
                                      TagSpecifications=spec("security-group"))["GroupId"]
    table = ec2.create_route_table(VpcId=vpc, TagSpecifications=spec("route-table"))["RouteTable"]["RouteTableId"]
    gateway = ec2.create_internet_gateway(TagSpecifications=spec("internet-gateway"))["InternetGateway"][
        "InternetGatewayId"]
    acl = ec2.create_network_acl(VpcId=vpc, TagSpecifications=spec("network-acl"))["NetworkAcl"]["NetworkAclId"]
    address = ec2.allocate_address(Domain="vpc", TagSpecifications=spec("elastic-ip"))["AllocationId"]
    template = ec2.create_launch_template(LaunchTemplateName=f"{prefix}-gpu", LaunchTemplateData={},
                                          TagSpecifications=spec("launch-template"))["LaunchTemplate"][
        "LaunchTemplateId"]
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", RouteTableIds=[table],
                                       TagSpecifications=spec("vpc-endpoint"))["VpcEndpoint"]["VpcEndpointId"]
    nat = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=address,
                                 TagSpecifications=spec("natgateway"))["NatGateway"]["NatGatewayId"]
    destination = f"flow-logs-of-{prefix}"  # moto wants the bucket to exist; not a name of the environment's
    c("s3").create_bucket(Bucket=destination, CreateBucketConfiguration={"LocationConstraint": REGION})
    flow_log = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                                    LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{destination}",
                                    TagSpecifications=spec("vpc-flow-log"))["FlowLogIds"][0]
    planted.update({"ec2 vpc": vpc, "ec2 subnet": subnets, "ec2 security-group": group,
                    "ec2 route-table": table, "ec2 internet-gateway": gateway, "ec2 network-acl": acl,
                    "ec2 address": address, "ec2 launch-template": template, "ec2 vpc-endpoint": endpoint,
                    "ec2 nat-gateway": nat, "ec2 flow-log": flow_log})
    elbv2 = c("elbv2")
    lb = elbv2.create_load_balancer(Name=f"{prefix}-alb", Subnets=subnets, SecurityGroups=[group], Tags=kv)[
        "LoadBalancers"][0]
    elbv2.create_target_group(Name=f"{prefix}-backend", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip",
                              Tags=kv)
    planted.update({"elbv2 load balancer": f"{prefix}-alb", "elbv2 target group": f"{prefix}-backend"})
    acl_id = c("wafv2").create_web_acl(
        Name=f"{prefix}-alb", Scope="REGIONAL", DefaultAction={"Allow": {}}, Tags=kv,
        VisibilityConfig={"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "m"})[
        "Summary"]["Id"]
    planted["wafv2 web acl"] = f"{prefix}-alb ({acl_id})"

    # DNS: the account stack's zone of the project, the environment's ALB alias, its certificate (tagged by the
    # provider; the domain is the project's, not the environment's) and a validation record nobody asks for.
    acm = c("acm")
    certificate = acm.request_certificate(DomainName=domain, ValidationMethod="DNS", Tags=kv)["CertificateArn"]
    planted["acm certificate"] = f"{domain} ({certificate})"
    route53 = c("route53")
    zone = route53.create_hosted_zone(Name=domain, CallerReference=prefix)["HostedZone"]["Id"]
    route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone.split("/")[-1],
                                     AddTags=[{"Key": "Project", "Value": project}])
    needed = acm.describe_certificate(CertificateArn=certificate)["Certificate"]["DomainValidationOptions"][0][
        "ResourceRecord"]
    changes = [
        {"Name": f"{domain}.", "Type": "A", "AliasTarget": {
            "HostedZoneId": "ZWKZPGTI48KDX", "DNSName": lb["DNSName"], "EvaluateTargetHealth": True}},
        {"Name": needed["Name"], "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": needed["Value"]}]}]
    if env == ENV:  # one orphan per zone: the prod neighbour shares the check's project, not its environment
        changes.append({"Name": f"_0123456789abcdef.{domain}.", "Type": "CNAME", "TTL": 60,
                        "ResourceRecords": [{"Value": "_fedcba9876543210.abcdefghij.acm-validations.aws."}]})
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": change} for change in changes]})
    planted["route53 record"] = f"{domain}. A"

    # storage and data
    c("s3").create_bucket(Bucket=f"{prefix}-raw-videos", CreateBucketConfiguration={"LocationConstraint": REGION})
    rds = c("rds")
    rds.create_db_subnet_group(DBSubnetGroupName=f"{prefix}-db", DBSubnetGroupDescription="db",
                               SubnetIds=subnets, Tags=kv)
    rds.create_db_parameter_group(DBParameterGroupName=f"{prefix}-postgres16", DBParameterGroupFamily="postgres16",
                                  Description="pg", Tags=kv)
    rds.create_db_instance(DBInstanceIdentifier=f"{prefix}-postgres", DBInstanceClass="db.t3.micro",
                           Engine="postgres", AllocatedStorage=20, MasterUsername="app",
                           MasterUserPassword="not-a-secret-1", DBSubnetGroupName=f"{prefix}-db", Tags=kv)
    c("dynamodb").create_table(TableName=f"{prefix}-job-claims", BillingMode="PAY_PER_REQUEST",
                               AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                               KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], Tags=kv)
    c("secretsmanager").create_secret(Name=f"{prefix}-django-secret-key", SecretString="x", Tags=kv)
    kms = c("kms")
    key = kms.create_key(Description=f"{prefix}: SNS topics and the environment's data",
                         Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/{prefix}", TargetKeyId=key)
    planted.update({"s3 bucket": f"{prefix}-raw-videos", "rds subnet group": f"{prefix}-db",
                    "rds parameter group": f"{prefix}-postgres16", "rds instance": f"{prefix}-postgres",
                    "dynamodb table": f"{prefix}-job-claims", "secret": f"{prefix}-django-secret-key",
                    "kms key": key, "kms alias": f"alias/{prefix}"})

    # identity
    iam = c("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                "Principal": {"Service": "lambda.amazonaws.com"}}]})
    role = iam.create_role(RoleName=f"{prefix}-lambda-sqs-to-batch", AssumeRolePolicyDocument=trust, Tags=kv)["Role"]
    iam.create_instance_profile(InstanceProfileName=f"{prefix}-batch-instance", Tags=kv)
    iam.create_policy(PolicyName=f"{prefix}-extra", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}))
    planted.update({"iam role": f"{prefix}-lambda-sqs-to-batch", "iam instance profile": f"{prefix}-batch-instance",
                    "iam policy": f"{prefix}-extra"})

    # pipeline
    queue = c("sqs").create_queue(QueueName=f"{prefix}-jobs.fifo", tags=tags,
                                  Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    queue_arn = c("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = c("sns").create_topic(Name=f"{prefix}-alerts", Tags=kv)["TopicArn"]
    awslambda = c("lambda")
    function = awslambda.create_function(FunctionName=f"{prefix}-sqs-to-batch", Runtime="python3.12",
                                         Role=role["Arn"], Handler="handler.handler", Tags=tags,
                                         Code={"ZipFile": lambda_zip()})["FunctionArn"]
    mapping = awslambda.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=function)["UUID"]
    c("logs").create_log_group(logGroupName=f"/aws/lambda/{prefix}-sqs-to-batch", tags=tags)
    c("events").put_rule(Name=f"{prefix}-batch-failed", EventPattern=json.dumps({"source": ["aws.batch"]}), Tags=kv)
    scheduler = c("scheduler")
    scheduler.create_schedule_group(Name=f"{prefix}-schedules", Tags=kv)
    scheduler.create_schedule(Name=f"{prefix}-ecr-cleanup", ScheduleExpression="rate(7 days)",
                              FlexibleTimeWindow={"Mode": "OFF"}, Target={"Arn": function, "RoleArn": role["Arn"]})
    cloudwatch = c("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=f"{prefix}-dlq-depth", MetricName="ApproximateNumberOfMessagesVisible",
                                Namespace="AWS/SQS", Statistic="Maximum", Period=60, EvaluationPeriods=1,
                                Threshold=0, ComparisonOperator="GreaterThanThreshold", Tags=kv)
    cloudwatch.put_dashboard(DashboardName=prefix, DashboardBody=json.dumps({"widgets": []}))
    c("budgets").create_budget(AccountId=account, Budget={
        "BudgetName": prefix, "BudgetLimit": {"Amount": "300", "Unit": "USD"}, "TimeUnit": "MONTHLY",
        "BudgetType": "COST"})
    api = c("apigatewayv2").create_api(Name=f"{prefix}-jobs-api", ProtocolType="HTTP", Tags=tags)["ApiId"]
    planted.update({"sqs queue": queue, "sns topic": topic, "lambda function": f"{prefix}-sqs-to-batch",
                    "lambda event source mapping": mapping, "log group": f"/aws/lambda/{prefix}-sqs-to-batch",
                    "events rule": f"{prefix}-batch-failed", "schedule group": f"{prefix}-schedules",
                    "schedule": f"default/{prefix}-ecr-cleanup", "alarm": f"{prefix}-dlq-depth",
                    "dashboard": prefix, "budget": prefix, "http api": f"{prefix}-jobs-api ({api})"})

    # compute
    repository = c("ecr").create_repository(repositoryName=f"{prefix}/backend", tags=kv)["repository"]
    ecs = c("ecs")
    cluster = ecs.create_cluster(clusterName=f"{prefix}-cluster", tags=[{"key": k, "value": v}
                                                                        for k, v in tags.items()])["cluster"]
    ecs.register_task_definition(family=f"{prefix}-backend", requiresCompatibilities=["FARGATE"],
                                 networkMode="awsvpc", cpu="1024", memory="2048", containerDefinitions=[
                                     {"name": "backend", "image": f"{repository['repositoryUri']}:1"}])
    service = ecs.create_service(cluster=cluster["clusterArn"], serviceName=f"{prefix}-backend",
                                 taskDefinition=f"{prefix}-backend", desiredCount=0, launchType="FARGATE")["service"]
    c("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs", ResourceId=f"service/{prefix}-cluster/{prefix}-backend",
        ScalableDimension="ecs:service:DesiredCount", MinCapacity=1, MaxCapacity=3)
    batch = c("batch")
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"{prefix}-gpu", type="UNMANAGED", state="ENABLED", serviceRole=role["Arn"])
    batch.create_job_queue(jobQueueName=f"{prefix}-video-analysis", state="ENABLED", priority=10,
                           computeEnvironmentOrder=[{"order": 1,
                                                     "computeEnvironment": environment["computeEnvironmentArn"]}])
    definition = batch.register_job_definition(jobDefinitionName=f"{prefix}-video-analysis-gpu", type="container",
                                               containerProperties={"image": "busybox", "vcpus": 1, "memory": 512})
    planted.update({"ecr repository": f"{prefix}/backend", "ecs cluster": cluster["clusterArn"],
                    "ecs service": service["serviceArn"], "ecs task definition": f"{prefix}-backend:1",
                    "scalable target": f"service/{prefix}-cluster/{prefix}-backend",
                    "batch compute environment": f"{prefix}-gpu", "batch job queue": f"{prefix}-video-analysis",
                    "batch job definition": f"{prefix}-video-analysis-gpu:{definition['revision']}"})
    return {kind: sorted(v) if isinstance(v, list) else [v] for kind, v in planted.items()}


def reported(found: list[str]) -> dict[str, list[str]]:
    by_kind: dict[str, list[str]] = {}
    kinds = sorted((lister.kind for lister in ENVIRONMENT_LISTERS), key=len, reverse=True)
    for item in found:
        kind = next(k for k in kinds if item.startswith(k + " "))
        by_kind.setdefault(kind, []).append(item[len(kind) + 1:])
    return by_kind


ORPHAN_VALIDATION = "_0123456789abcdef.example.com. CNAME (ACM validation, no certificate asks for it)"


def test_one_leftover_of_each_kind_is_reported_and_nothing_of_the_neighbours(moto):
    """Each lister finds its planted kind, by name or by the Project/Environment tags the provider's default_tags
    put on every taggable resource; the prod environment of the same project and a project whose name starts
    like ours plant the same kinds, and none of theirs is reported. The zone-level ACM validation CNAME that no
    certificate asks for is reported; the one the planted certificate asks for (describe_certificate's
    DomainValidationOptions.ResourceRecord, ACM API Reference) is not."""
    planted = plant(PROJECT, ENV, domain="example.com")
    for index, (project, env) in enumerate(NEIGHBOURS):
        plant(project, env, domain=f"neighbour{index}.example.org")

    found = find_leftovers(RecordingClients(), Owner(project=PROJECT, prefix=PREFIX))

    by_kind = reported(found)
    assert set(by_kind) == {lister.kind for lister in ENVIRONMENT_LISTERS}
    expected = {**planted, "route53 record": [*planted["route53 record"], ORPHAN_VALIDATION]}
    assert {k: sorted(v) for k, v in by_kind.items()} == {k: sorted(v) for k, v in expected.items()}


def test_what_aws_delete_leaves_listed_counts_as_gone(moto):
    """AWS's own destroy of these kinds leaves them listed: a KMS key in PendingDeletion (KMS Developer Guide,
    "Deleting AWS KMS keys": ScheduleKeyDeletion, then the waiting period), a secret with a DeletedDate (Secrets
    Manager API Reference, DeleteSecret: recovery window), a task definition revision INACTIVE after
    DeregisterTaskDefinition (ECS API Reference: INACTIVE revisions stay discoverable), a Batch job
    definition INACTIVE after DeregisterJobDefinition (AWS Batch API Reference), an ECS cluster INACTIVE after
    DeleteCluster (ECS API Reference). None of them is reported."""
    planted = plant(PROJECT, ENV, domain="example.com")
    kms, ecs, batch = (boto3.client(s, region_name=REGION) for s in ("kms", "ecs", "batch"))
    kms.delete_alias(AliasName=f"alias/{PREFIX}")
    kms.schedule_key_deletion(KeyId=planted["kms key"][0], PendingWindowInDays=7)
    boto3.client("secretsmanager", region_name=REGION).delete_secret(SecretId=f"{PREFIX}-django-secret-key",
                                                                     RecoveryWindowInDays=7)
    cluster = planted["ecs cluster"][0]
    ecs.delete_service(cluster=cluster, service=planted["ecs service"][0], force=True)
    ecs.deregister_task_definition(taskDefinition=f"{PREFIX}-backend:1")
    ecs.delete_cluster(cluster=cluster)
    batch.deregister_job_definition(jobDefinition=f"{PREFIX}-video-analysis-gpu:1")

    by_kind = reported(find_leftovers(RecordingClients(), Owner(project=PROJECT, prefix=PREFIX)))

    for gone in ("kms key", "kms alias", "secret", "ecs service", "ecs task definition", "ecs cluster",
                 "batch job definition"):
        assert gone not in by_kind, (gone, by_kind.get(gone))
    assert by_kind["lambda function"] == [f"{PREFIX}-sqs-to-batch"]  # the rest is still there


def test_every_list_call_goes_through_botocores_paginator_where_it_has_one(moto):
    """boto3 documentation, "Paginators": a paginator follows a list call's continuation token to the last page;
    a direct call returns the first page only. Every operation the listers call directly either has no
    paginator in botocore (UNPAGINATED names how it pages instead) or is not a list call (Describe*/ListTags* of
    one resource, whose answer is that resource)."""
    plant(PROJECT, ENV, domain="example.com")
    clients = RecordingClients()
    find_leftovers(clients, Owner(project=PROJECT, prefix=PREFIX))
    find_leftovers(clients, Owner(project=PROJECT, prefix=PROJECT), ACCOUNT_LISTERS)

    direct = {(service, op) for how, service, op in clients.calls if how == "direct"}
    paginated = {(service, op) for how, service, op in clients.calls if how == "paginator"}
    assert paginated, "no paginator was used"
    bypassing = {(service, op) for service, op in direct if clients(service)._client.can_paginate(op)}
    assert not bypassing, f"called directly although botocore has a paginator: {sorted(bypassing)}"
    # the direct calls without a paginator are the ones UNPAGINATED accounts for, or single-resource reads
    single_resource = {("kms", "describe_key"), ("sts", "get_caller_identity"), ("ecs", "describe_clusters"),
                       ("ecs", "describe_services"), ("acm", "list_tags_for_certificate"),
                       ("acm", "describe_certificate"), ("route53", "list_tags_for_resource")}
    assert direct - single_resource <= set(UNPAGINATED), sorted(direct - single_resource - set(UNPAGINATED))


def test_more_than_one_page_of_log_groups_is_reported_completely(moto):
    """DescribeLogGroups returns at most 50 log groups per call (CloudWatch Logs API Reference, DescribeLogGroups:
    limit, default 50; moto pages the same way): 120 of the environment's plus 5 of another are 3 pages, and all
    120 of ours are reported."""
    logs = boto3.client("logs", region_name=REGION)
    ours = {f"/aws/lambda/{PREFIX}-function-{i:03d}" for i in range(120)}
    for name in [*ours, *(f"/aws/lambda/{PROJECT}-prod-function-{i}" for i in range(5))]:
        logs.create_log_group(logGroupName=name)
    clients = RecordingClients()

    found = find_leftovers(clients, Owner(project=PROJECT, prefix=PREFIX))

    assert {item.removeprefix("log group ") for item in found if item.startswith("log group ")} == ours
    assert len(found) == 120
    pages = clients.requests.count(("logs", "DescribeLogGroups"))
    assert pages == -(-125 // LOG_GROUP_PAGE) == 3


def test_web_acls_are_followed_past_the_first_page(moto):
    """ListWebACLs has no botocore paginator; it returns at most Limit (1..100) ACLs and a NextMarker for the rest
    (WAFV2 API Reference, ListWebACLs). 101 of the environment's ACLs take two calls, and all are reported."""
    waf = boto3.client("wafv2", region_name=REGION)
    for i in range(101):
        waf.create_web_acl(Name=f"{PREFIX}-acl-{i:03d}", Scope="REGIONAL", DefaultAction={"Allow": {}},
                           VisibilityConfig={"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False,
                                             "MetricName": "m"})
    clients = RecordingClients()

    found = find_leftovers(clients, Owner(project=PROJECT, prefix=PREFIX))

    assert len([item for item in found if item.startswith("wafv2 web acl ")]) == 101
    assert clients.requests.count(("wafv2", "ListWebACLs")) == 2


def test_the_account_stacks_resources_are_its_own_check(moto):
    """bootstrap's resources (state bucket, people, GitHub OIDC provider and roles, permissions boundary, public
    zones, the environments' Django keys, tagged with their environment) are found by the account check and by none
    of the environment's listers: an environment's destroy keeps them. Another project's are not reported."""
    for project in (PROJECT, "otherproject"):
        iam = boto3.client("iam", region_name=REGION)
        kv = [{"Key": "Project", "Value": project}, {"Key": "Environment", "Value": "dev"}]
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=f"{project}-tfstate", CreateBucketConfiguration={"LocationConstraint": REGION})
        iam.create_user(UserName=f"alice-{project}", Tags=kv)
        iam.create_group(GroupName=f"{project}-developers")
        iam.create_role(RoleName=f"{project}-dev-github-deploy", AssumeRolePolicyDocument="{}", Tags=kv)
        iam.create_policy(PolicyName=f"{project}-permissions-boundary", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
        provider = iam.create_open_id_connect_provider(
            Url=f"https://{project}.token.actions.githubusercontent.com", ClientIDList=["sts.amazonaws.com"],
            ThumbprintList=["a" * 40], Tags=kv)["OpenIDConnectProviderArn"]
        route53 = boto3.client("route53", region_name=REGION)
        zone = route53.create_hosted_zone(Name=f"{project}.example.com", CallerReference=project)["HostedZone"]
        route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone["Id"].split("/")[-1],
                                         AddTags=[{"Key": "Project", "Value": project}])
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=f"{project}/dev/django-secret-key", SecretString="x", Tags=kv)
        if project == PROJECT:
            ours = sorted([f"s3 bucket {project}-tfstate", f"iam user alice-{project}",
                           f"iam group {project}-developers", f"iam role {project}-dev-github-deploy",
                           f"iam policy {project}-permissions-boundary", f"iam oidc provider {provider}",
                           f"route53 zone {zone['Name']} ({zone['Id']})", f"secret {project}/dev/django-secret-key"])

    assert sorted(find_leftovers(RecordingClients(), Owner(project=PROJECT, prefix=PROJECT), ACCOUNT_LISTERS)) == ours
    assert find_leftovers(RecordingClients(), Owner(project=PROJECT, prefix=PREFIX)) == []


@pytest.mark.parametrize("name, owned", [
    ("deepsentinel-dev", True), ("deepsentinel-dev-jobs.fifo", True), ("deepsentinel-dev/backend", True),
    ("deepsentinel-developers", False), ("deepsentinel-prod-jobs", False), ("xdeepsentinel-dev-jobs", False)])
def test_a_name_is_the_environments_when_the_prefix_is_a_whole_word_at_its_start(name, owned):
    """The platform's names are `{project}-{env}` then `-`, `/` or `.` (settings.name, ECR's `{prefix}/backend`,
    SQS FIFO's `.fifo`); the account's `{project}-developers` group starts with the dev prefix's letters."""
    assert Owner(project=PROJECT, prefix=PREFIX).owns_name(name) is owned


def test_unknown_unpaginated_list_call_is_refused():
    """A list call botocore cannot paginate and UNPAGINATED does not describe fails loudly instead of reading one
    page (describe_account_attributes stands in: no paginator in botocore's EC2 model)."""
    from tests.live.leftovers import each

    client = boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    assert not client.can_paginate("describe_account_attributes")
    with pytest.raises(AssertionError, match="no paginator in botocore and not in UNPAGINATED"):
        list(each(client, "describe_account_attributes", "AccountAttributes"))
