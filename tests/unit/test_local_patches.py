"""Each patch of the local moto server (deepsentinel.local.patches.LOCAL_PATCHES) pinned both ways.

* `@needed(patch)`: what AWS documents (the page in the docstring), checked on moto with the patch (must pass) and
  with the patch undone (must fail: a strict xfail, so a moto upgrade that makes the patch unnecessary shows up).
* `@not_over_reaching(patch)`: a neighbouring case the patch must leave as AWS answers it, checked with the patch and
  without it (both pass), unless moto without the patch cannot answer that case at all (then a strict xfail too).

In process (`moto.mock_aws`), one patch toggled per test with `patch_state`, which puts moto back as it was: these
tests leave no patch behind in the worker. `test_every_patch_is_pinned_both_ways` keeps the list complete.
"""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.config import default_user_config

from deepsentinel.local.patches import BATCH_JOB_OUTCOME_PATH, LOCAL_PATCHES, MOTO_EXCEPTIONS, MOTO_SETTINGS, patch_state

REGION = "ap-northeast-2"
ACCOUNT = "123456789012"  # moto's account
IAM_MANAGED_POLICIES = "setting:iam.load_aws_managed_policies"  # a moto setting pinned like a patch

PINNED: dict[str, set[str]] = defaultdict(set)


class Aws:
    """boto3 clients of the mocked account (or of a server); one attempt per call: moto answers an unimplemented
    action at once."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self.clients:  # creating a client takes longer than most calls here
            self.clients[service] = boto3.client(
                service, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
                endpoint_url=self.endpoint_url, config=Config(retries={"max_attempts": 1}))
        return self.clients[service]


@pytest.fixture
def aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    name, applied = request.param
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # no test uses an AMI; a second per EC2 backend
    # The local server's settings, but AWS managed policies (1.4 s per IAM backend) only for their own tests. Also
    # around the mock without them: its teardown re-creates every backend with the worker's global settings, which
    # configure_moto() (a local server started earlier in this worker) leaves loading the managed policies.
    managed = applied if name == IAM_MANAGED_POLICIES else False
    config = {**MOTO_SETTINGS, "iam": {"load_aws_managed_policies": managed}}
    with ExitStack() as stack:
        teardown_config = {**config, "iam": {"load_aws_managed_policies": False}}
        stack.enter_context(mock.patch.dict(default_user_config, teardown_config))
        if name != IAM_MANAGED_POLICIES:
            stack.enter_context(patch_state(name, applied))
        stack.enter_context(mock_aws(config=config))
        yield Aws()


def _variants(name: str, without: type[BaseException] | tuple[type[BaseException], ...] | None, reason: str):
    unpatched_marks = [] if without is None else [pytest.mark.xfail(strict=True, raises=without, reason=reason)]
    return pytest.mark.parametrize("aws", [pytest.param((name, True), id="patched"),
                                           pytest.param((name, False), id="unpatched", marks=unpatched_marks)],
                                   indirect=True)


def needed(name: str, without: type[BaseException] | tuple[type[BaseException], ...] = AssertionError):
    """The test asserts AWS's documented answer; moto without the patch fails it (raising `without`)."""
    def decorate(test: Callable[..., None]) -> Any:
        PINNED[name].add("needed")
        return _variants(name, without, f"moto 5.2.5 without {name}")(test)
    return decorate


def not_over_reaching(name: str, without: type[BaseException] | tuple[type[BaseException], ...] | None = None):
    """The test asserts a neighbouring case AWS answers as moto does; it holds with and without the patch (or,
    given `without`, moto without the patch cannot answer it at all)."""
    def decorate(test: Callable[..., None]) -> Any:
        PINNED[name].add("not over-reaching")
        return _variants(name, without, f"moto 5.2.5 without {name} does not answer this case either")(test)
    return decorate


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


# --- Application Auto Scaling tags ----------------------------------------------------------------------------

def _ecs_service(aws: Aws, cluster: str = "cluster", service: str = "web") -> None:
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family=service, containerDefinitions=[{"name": service, "image": "nginx",
                                                                        "memory": 512}])
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=service, desiredCount=1)


SCALABLE = {"ServiceNamespace": "ecs", "ResourceId": "service/cluster/web",
            "ScalableDimension": "ecs:service:DesiredCount"}


@needed("application_autoscaling_tags", without=NotImplementedError)
def test_scalable_target_tags_are_kept_and_listed(aws):
    """Application Auto Scaling API Reference, "RegisterScalableTarget" (Tags: "Assigns one or more tags to the
    scalable target"; the response is {"ScalableTargetARN": ...}), "ListTagsForResource" (response
    {"Tags": {"key": "value"}}), "TagResource", "UntagResource"."""
    _ecs_service(aws)
    autoscaling = aws.client("application-autoscaling")
    arn = autoscaling.register_scalable_target(**SCALABLE, MinCapacity=1, MaxCapacity=3,
                                               Tags={"Environment": "dev"})["ScalableTargetARN"]
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"Environment": "dev"}
    autoscaling.tag_resource(ResourceARN=arn, Tags={"Owner": "ops"})
    autoscaling.untag_resource(ResourceARN=arn, TagKeys=["Environment"])
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"Owner": "ops"}


@not_over_reaching("application_autoscaling_tags")
def test_registering_and_deregistering_targets_answer_as_before(aws):
    """The patch wraps RegisterScalableTarget and DeregisterScalableTarget: Application Auto Scaling API Reference,
    "RegisterScalableTarget" (registering an existing target again updates its capacity; the answer carries the
    ScalableTargetARN), "DescribeScalableTargets", "DeregisterScalableTarget"."""
    _ecs_service(aws)
    autoscaling = aws.client("application-autoscaling")
    arn = autoscaling.register_scalable_target(**SCALABLE, MinCapacity=1, MaxCapacity=3,
                                               Tags={"Environment": "dev"})["ScalableTargetARN"]
    assert arn.startswith(f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/")
    autoscaling.register_scalable_target(**SCALABLE, MinCapacity=2, MaxCapacity=4)
    (target,) = autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert (target["ScalableTargetARN"], target["MinCapacity"], target["MaxCapacity"]) == (arn, 2, 4)
    autoscaling.deregister_scalable_target(**SCALABLE)
    assert autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []


# --- IAM ListServiceSpecificCredentials -----------------------------------------------------------------------

@needed("iam_service_specific_credentials", without=NotImplementedError)
def test_a_user_without_service_specific_credentials_lists_none(aws):
    """IAM API Reference, "ListServiceSpecificCredentials": the response's ServiceSpecificCredentials lists the
    user's credentials (none were created: moto cannot create any), {"ServiceSpecificCredentials": []}."""
    aws.client("iam").create_user(UserName="alice")
    answer = aws.client("iam").list_service_specific_credentials(UserName="alice")
    assert answer["ServiceSpecificCredentials"] == []


@not_over_reaching("iam_service_specific_credentials", without=NotImplementedError)
def test_service_specific_credentials_of_an_unknown_user_are_no_such_entity(aws):
    """IAM API Reference, "ListServiceSpecificCredentials", Errors: NoSuchEntity ("The request was rejected because
    it referenced a resource entity that does not exist"): the patch must not answer an empty list for anyone."""
    with pytest.raises(ClientError) as error:
        aws.client("iam").list_service_specific_credentials(UserName="nobody")
    assert _code(error) == "NoSuchEntity"


# --- RDS DescribeDBParameters Source --------------------------------------------------------------------------

def _parameter_group(aws: Aws, *values: str) -> Any:
    rds = aws.client("rds")
    rds.create_db_parameter_group(DBParameterGroupName="pg", DBParameterGroupFamily="postgres16", Description="d")
    for value in values:
        rds.modify_db_parameter_group(DBParameterGroupName="pg", Parameters=[
            {"ParameterName": "log_min_duration_statement", "ParameterValue": value, "ApplyMethod": "immediate"}])
    return rds


@needed("rds_parameter_source")
def test_a_parameter_the_user_set_has_source_user(aws):
    """RDS API Reference, "Parameter" data type (a response element of DescribeDBParameters): Source, "The source of
    the parameter value", one of engine-default | system | user; a value set with ModifyDBParameterGroup is user."""
    rds = _parameter_group(aws, "1000")
    (parameter,) = rds.describe_db_parameters(DBParameterGroupName="pg")["Parameters"]
    assert parameter.get("Source") == "user"


@not_over_reaching("rds_parameter_source")
def test_parameter_values_are_answered_as_set(aws):
    """Same page: ParameterName, ParameterValue and ApplyMethod are what ModifyDBParameterGroup last set."""
    rds = _parameter_group(aws, "1000", "250")
    (parameter,) = rds.describe_db_parameters(DBParameterGroupName="pg")["Parameters"]
    assert {k: parameter[k] for k in ("ParameterName", "ParameterValue", "ApplyMethod")} == {
        "ParameterName": "log_min_duration_statement", "ParameterValue": "250", "ApplyMethod": "immediate"}


# --- ECS CreateService fields ---------------------------------------------------------------------------------

def _describe_service(aws: Aws) -> dict[str, Any]:
    return aws.client("ecs").describe_services(cluster="cluster", services=["web"])["services"][0]


@needed("ecs_service_fields")
def test_create_service_keeps_the_grace_period_and_az_rebalancing(aws):
    """ECS API Reference, "CreateService" (healthCheckGracePeriodSeconds, availabilityZoneRebalancing) and the
    "Service" data type DescribeServices answers, which carries both."""
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="cluster")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}])
    ecs.create_service(cluster="cluster", serviceName="web", taskDefinition="web", desiredCount=1,
                       healthCheckGracePeriodSeconds=60, availabilityZoneRebalancing="ENABLED")
    service = _describe_service(aws)
    assert (service.get("healthCheckGracePeriodSeconds"), service.get("availabilityZoneRebalancing")) == (60, "ENABLED")


@not_over_reaching("ecs_service_fields")
def test_update_service_still_changes_the_grace_period(aws):
    """ECS API Reference, "UpdateService": healthCheckGracePeriodSeconds and desiredCount can be changed on a
    running service; the rest of the service stays as created."""
    _ecs_service(aws)
    aws.client("ecs").update_service(cluster="cluster", service="web", healthCheckGracePeriodSeconds=30,
                                     desiredCount=2)
    service = _describe_service(aws)
    assert (service["healthCheckGracePeriodSeconds"], service["desiredCount"], service["serviceName"]) == (
        30, 2, "web")


# --- EC2 launch template data -----------------------------------------------------------------------------------

def _template(aws: Aws, data: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    ec2 = aws.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="workers", LaunchTemplateData=data, **kwargs)
    version = ec2.describe_launch_template_versions(LaunchTemplateName="workers")["LaunchTemplateVersions"][0]
    template = ec2.describe_launch_templates(LaunchTemplateNames=["workers"])["LaunchTemplates"][0]
    return version["LaunchTemplateData"], template.get("Tags", [])


@needed("launch_template_data_tags")
def test_the_templates_own_tags_stay_out_of_its_data(aws):
    """EC2 API Reference, "CreateLaunchTemplate": TagSpecifications are "the tags to apply to the launch template on
    creation" (resource type launch-template); LaunchTemplateData.TagSpecifications (RequestLaunchTemplateData) are
    the tags of the resources created at launch. Version 1's data is what the request's LaunchTemplateData held."""
    data, tags = _template(aws, {"InstanceType": "g5.xlarge"}, TagSpecifications=[
        {"ResourceType": "launch-template", "Tags": [{"Key": "Environment", "Value": "dev"}]}])
    assert tags == [{"Key": "Environment", "Value": "dev"}]
    assert "TagSpecifications" not in data


@not_over_reaching("launch_template_data_tags")
def test_instance_tag_specifications_stay_in_the_data(aws):
    """Same page: the data's own (instance, volume) tag specifications are part of the version."""
    own = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "worker"}]},
           {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "worker-disk"}]}]
    data, tags = _template(aws, {"InstanceType": "g5.xlarge", "TagSpecifications": own})
    assert data["TagSpecifications"] == own and tags == []


# --- EC2 security group rule descriptions ---------------------------------------------------------------------

def _ingress_rules(aws: Aws, permissions: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    alb = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc)["GroupId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    for permission in permissions:
        pairs = [{**pair, "GroupId": alb} for pair in permission.get("UserIdGroupPairs", [])]
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
            {**permission, **({"UserIdGroupPairs": pairs} if pairs else {})}])
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [web]}])["SecurityGroupRules"]
    return {r["FromPort"]: r for r in rules if not r["IsEgress"]}


@needed("security_group_rule_descriptions")
def test_a_rule_that_references_a_group_keeps_its_description(aws):
    """EC2 API Reference, "UserIdGroupPair" (Description: "A description for the security group rule that references
    this user ID group pair") and "SecurityGroupRule" (DescribeSecurityGroupRules: Description, ReferencedGroupInfo)."""
    rules = _ingress_rules(aws, [{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000,
                                  "UserIdGroupPairs": [{"Description": "from the ALB"}]}])
    assert rules[8000].get("Description") == "from the ALB" and "ReferencedGroupInfo" in rules[8000]


@not_over_reaching("security_group_rule_descriptions")
def test_cidr_rule_descriptions_and_rules_without_one_are_unchanged(aws):
    """Same pages, "IpRange" (Description of a CIDR rule): it is answered as given, and a rule given no description
    has none."""
    rules = _ingress_rules(aws, [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "ssh"}]},
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "UserIdGroupPairs": [{}]}])
    assert rules[22]["Description"] == "ssh" and rules[22]["CidrIpv4"] == "10.0.0.0/8"
    assert not rules[8000].get("Description")


# --- SQS RedrivePolicy JSON -------------------------------------------------------------------------------------

def _queue_attributes(aws: Aws, **attributes: str) -> tuple[dict[str, str], str]:
    sqs = aws.client("sqs")
    dlq_url = sqs.create_queue(QueueName="MyDeadLetterQueue")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {k: v.replace("{dlq}", dlq) for k, v in attributes.items()}
    url = sqs.create_queue(QueueName="MyQueue", Attributes=attributes)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"], dlq


@needed("sqs_redrive_policy_json")
def test_redrive_policy_is_answered_as_compact_json(aws):
    """AWS CLI Command Reference, "aws sqs get-queue-attributes", example "To get a queue's attributes": AWS answers
    "RedrivePolicy": "{\\"deadLetterTargetArn\\":\\"arn:aws:sqs:us-east-1:80398EXAMPLE:MyDeadLetterQueue\\",
    \\"maxReceiveCount\\":1000}" (no spaces; the count a number, even when set as the string "1000")."""
    attributes, dlq = _queue_attributes(aws, RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": "{dlq}", "maxReceiveCount": "1000"}))
    assert attributes["RedrivePolicy"] == '{"deadLetterTargetArn":"%s","maxReceiveCount":1000}' % dlq


@not_over_reaching("sqs_redrive_policy_json")
def test_other_queue_attributes_are_unchanged(aws):
    """SQS API Reference, "GetQueueAttributes" / "CreateQueue": the defaults (VisibilityTimeout 30, DelaySeconds 0,
    MessageRetentionPeriod 345600) and the values set; a queue without a dead-letter queue has no RedrivePolicy."""
    attributes, _ = _queue_attributes(aws, VisibilityTimeout="120")
    assert "RedrivePolicy" not in attributes
    assert {k: attributes[k] for k in ("VisibilityTimeout", "DelaySeconds", "MessageRetentionPeriod")} == {
        "VisibilityTimeout": "120", "DelaySeconds": "0", "MessageRetentionPeriod": "345600"}


# --- Application Auto Scaling DeleteScalingPolicy ---------------------------------------------------------------

def _delete_policy(aws: Aws, **target: str) -> str:
    with pytest.raises(ClientError) as error:
        aws.client("application-autoscaling").delete_scaling_policy(**{**SCALABLE, **target}, PolicyName="cpu")
    return _code(error)


@needed("scaling_policy_not_found")
def test_deleting_a_missing_policy_answers_object_not_found(aws):
    """Application Auto Scaling API Reference, "DeleteScalingPolicy", Errors: ObjectNotFoundException ("For any
    operation that deletes or deregisters a resource, this exception is thrown if the resource cannot be found")."""
    assert _delete_policy(aws) == "ObjectNotFoundException"


@not_over_reaching("scaling_policy_not_found")
def test_an_existing_policy_is_deleted_and_an_invalid_namespace_is_a_validation_error(aws):
    """Same page: deleting an existing policy removes it ("DescribeScalingPolicies" lists none); a ServiceNamespace
    outside the API's enum ("ServiceNamespace" valid values) fails validation, ValidationException, before any
    lookup ("Common Errors")."""
    _ecs_service(aws)
    autoscaling = aws.client("application-autoscaling")
    autoscaling.register_scalable_target(**SCALABLE, MinCapacity=1, MaxCapacity=3)
    tracking = {"TargetValue": 70,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}
    autoscaling.put_scaling_policy(**SCALABLE, PolicyName="cpu", PolicyType="TargetTrackingScaling",
                                   TargetTrackingScalingPolicyConfiguration=tracking)
    autoscaling.delete_scaling_policy(**SCALABLE, PolicyName="cpu")
    assert autoscaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []
    assert _delete_policy(aws, ServiceNamespace="not-a-namespace") == "ValidationException"


# --- Batch jobs wait for a runner -------------------------------------------------------------------------------

def _submit(aws: Aws) -> tuple[Any, str]:
    batch = aws.client("batch")
    role = aws.client("iam").create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    environment = batch.create_compute_environment(computeEnvironmentName="local-ce", type="UNMANAGED",
                                                   state="ENABLED", serviceRole=role)["computeEnvironmentArn"]
    batch.create_job_queue(jobQueueName="jobs", state="ENABLED", priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}])
    batch.register_job_definition(jobDefinitionName="worker", type="container",
                                  containerProperties={"image": "worker", "vcpus": 1, "memory": 512})
    return batch, batch.submit_job(jobName="video-1", jobQueue="jobs", jobDefinition="worker")["jobId"]


@needed("batch_jobs_wait_for_a_runner")
def test_a_submitted_job_waits_in_runnable_until_it_runs(aws):
    """AWS Batch User Guide, "Job states": a job without dependencies moves from SUBMITTED to RUNNABLE and stays
    there until capacity runs it; it cannot be SUCCEEDED before it ran. "ListJobs" with jobStatus RUNNABLE lists it."""
    batch, job_id = _submit(aws)
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNABLE"
    listed = batch.list_jobs(jobQueue="jobs", jobStatus="RUNNABLE")["jobSummaryList"]
    assert [j["jobId"] for j in listed] == [job_id]


@not_over_reaching("batch_jobs_wait_for_a_runner", without=AssertionError)
def test_cancelling_a_waiting_job_fails_it_with_the_reason(aws):
    """AWS Batch API Reference, "CancelJob": a job in SUBMITTED, PENDING or RUNNABLE is cancelled and its status
    becomes FAILED, with the given reason as statusReason. (moto without the patch has finished the job at submit,
    so there is nothing left to cancel.)"""
    batch, job_id = _submit(aws)
    batch.cancel_job(jobId=job_id, reason="cancelled by the operator")
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert (job["status"], job.get("statusReason")) == ("FAILED", "cancelled by the operator")


@pytest.fixture
def batch_server():
    """The runner's endpoint exists only in a server (moto reads its URL table when the server starts): a
    ThreadedMotoServer with this one patch and the local server's Batch setting, stopped before both are undone."""
    from moto.server import ThreadedMotoServer

    with patch_state("batch_jobs_wait_for_a_runner", True), mock.patch.dict(default_user_config,
                                                                             {"batch": {"use_docker": False}}):
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def test_the_runner_endpoint_touches_only_the_job_it_names(batch_server):
    """Part of the batch patch's over-reach check: a report for an unknown job is refused (404) and reporting one
    job leaves the other waiting (DescribeJobs answers each job's own state, AWS Batch API Reference)."""
    batch, first = _submit(Aws(batch_server))
    second = batch.submit_job(jobName="video-2", jobQueue="jobs", jobDefinition="worker")["jobId"]

    def report(job_id: str) -> int:
        request = urllib.request.Request(batch_server + BATCH_JOB_OUTCOME_PATH, method="POST",
                                         headers={"Content-Type": "application/json"}, data=json.dumps(
            {"jobId": job_id, "status": "SUCCEEDED", "exitCode": 0}).encode())
        try:
            return urllib.request.urlopen(request, timeout=10).status
        except urllib.error.HTTPError as error:
            return error.code

    assert report("no-such-job") == 404
    assert report(first) == 200
    states = {j["jobId"]: j["status"] for j in batch.describe_jobs(jobs=[first, second])["jobs"]}
    assert states == {first: "SUCCEEDED", second: "RUNNABLE"}


# --- S3 TLS-only bucket policy ----------------------------------------------------------------------------------

def _bucket_with_policy(aws: Aws, *extra: dict[str, Any]) -> Any:
    from deepsentinel.constructs.policies import tls_only_bucket_policy

    s3 = aws.client("s3")
    s3.create_bucket(Bucket="tls-only", CreateBucketConfiguration={"LocationConstraint": REGION})
    document = json.loads(tls_only_bucket_policy("arn:aws:s3:::tls-only"))
    document["Statement"] = [*document["Statement"], *extra]
    s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps(document))
    return s3


@needed("s3_policy_secure_transport", without=ClientError)
def test_a_tls_only_bucket_accepts_requests_over_the_endpoint_standing_in_for_https(aws):
    """S3 User Guide, "Bucket policy examples" / IAM "AWS global condition context keys", aws:SecureTransport: "true"
    for a request sent over TLS, so the Deny on "false" does not match an HTTPS request. The local endpoint stands in
    for S3's HTTPS one: PutObject and GetObject succeed."""
    s3 = _bucket_with_policy(aws)
    s3.put_object(Bucket="tls-only", Key="videos/clip.mp4", Body=b"x")
    assert s3.get_object(Bucket="tls-only", Key="videos/clip.mp4")["Body"].read() == b"x"


@not_over_reaching("s3_policy_secure_transport")
def test_statements_that_deny_for_another_reason_still_deny(aws):
    """IAM User Guide, "Policy evaluation logic": an explicit Deny that matches wins. A Deny without the transport
    condition (another key prefix, another action) and a Deny on aws:SecureTransport "true" (which an HTTPS request
    matches) refuse with 403 AccessDenied, as S3 answers ("GetObject"/"PutObject" Errors)."""
    s3 = _bucket_with_policy(
        aws,
        {"Sid": "NoWritesToLocked", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::tls-only/locked/*"},
        {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": "arn:aws:s3:::tls-only/*"},
        {"Sid": "NoSecureReadsOfSecrets", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::tls-only/secret/*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    for call in (lambda: s3.put_object(Bucket="tls-only", Key="locked/clip.mp4", Body=b"x"),
                 lambda: s3.delete_object(Bucket="tls-only", Key="videos/clip.mp4"),
                 lambda: s3.get_object(Bucket="tls-only", Key="secret/key")):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# --- Lambda DeadLetterConfig ------------------------------------------------------------------------------------

DLQ_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:functions-dlq"


def _function(aws: Aws, name: str, **kwargs: Any) -> Any:
    role = f"arn:aws:iam::{ACCOUNT}:role/fn"
    try:
        aws.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    except ClientError:
        pass  # the second function's
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    lam = aws.client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                        Code={"ZipFile": code.getvalue()}, **kwargs)
    return lam


@needed("lambda_dead_letter_config")
def test_a_functions_dead_letter_queue_is_answered_and_can_change(aws):
    """Lambda API Reference, "CreateFunction" / "UpdateFunctionConfiguration" (DeadLetterConfig) and
    "FunctionConfiguration" (GetFunction's Configuration): DeadLetterConfig {"TargetArn": ...}."""
    lam = _function(aws, "fn", DeadLetterConfig={"TargetArn": DLQ_ARN})
    assert lam.get_function(FunctionName="fn")["Configuration"].get("DeadLetterConfig") == {"TargetArn": DLQ_ARN}
    other = DLQ_ARN.replace("functions-dlq", "other-dlq")
    lam.update_function_configuration(FunctionName="fn", DeadLetterConfig={"TargetArn": other})
    assert lam.get_function(FunctionName="fn")["Configuration"]["DeadLetterConfig"] == {"TargetArn": other}


@not_over_reaching("lambda_dead_letter_config")
def test_a_function_without_a_dead_letter_queue_answers_none(aws):
    """Same pages: a function created without DeadLetterConfig has none, also after another configuration change
    (UpdateFunctionConfiguration changes only what the request names)."""
    lam = _function(aws, "plain")
    lam.update_function_configuration(FunctionName="plain", Timeout=30)
    configuration = lam.get_function(FunctionName="plain")["Configuration"]
    assert "TargetArn" not in configuration.get("DeadLetterConfig", {}) and configuration["Timeout"] == 30


# --- S3 EventBridgeConfiguration ------------------------------------------------------------------------------

def _notification(s3: Any, bucket: str) -> dict[str, Any]:
    answer = s3.get_bucket_notification_configuration(Bucket=bucket)
    answer.pop("ResponseMetadata")
    return answer


@needed("s3_eventbridge_notification")
def test_eventbridge_delivery_is_answered_when_set(aws):
    """S3 API Reference, "GetBucketNotificationConfiguration": EventBridgeConfiguration, "Enables delivery of events
    to Amazon EventBridge" (an empty element when on; "Enabling Amazon EventBridge", S3 User Guide)."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="uploads", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_notification_configuration(Bucket="uploads",
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    assert _notification(s3, "uploads") == {"EventBridgeConfiguration": {}}


@not_over_reaching("s3_eventbridge_notification")
def test_buckets_without_eventbridge_answer_without_it(aws):
    """Same page: a bucket with no configuration answers an empty NotificationConfiguration, one with only a queue
    configuration answers that alone."""
    s3, sqs = aws.client("s3"), aws.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName="uploads")["QueueUrl"],
                                     AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for bucket in ("plain", "queued"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_notification_configuration(Bucket="queued", NotificationConfiguration={"QueueConfigurations": [
        {"Id": "uploads", "QueueArn": queue, "Events": ["s3:ObjectCreated:*"]}]})
    assert _notification(s3, "plain") == {}
    answer = _notification(s3, "queued")
    assert "EventBridgeConfiguration" not in answer
    assert [c["QueueArn"] for c in answer["QueueConfigurations"]] == [queue]


# --- SQS: no built-in Lambda polling --------------------------------------------------------------------------

def _queue_with_mapping(aws: Aws, mapped: bool) -> tuple[Any, str, dict[str, Any] | None]:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = None
    if mapped:
        lam = _function(aws, "sqs-to-batch")
        mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="sqs-to-batch", BatchSize=5)
    sqs.send_message(QueueUrl=url, MessageBody="video-1")
    return sqs, url, mapping


def _received(sqs: Any, url: str) -> list[tuple[str, str]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                   MessageSystemAttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
    return [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in messages]


@needed("sqs_no_builtin_lambda_polling")
def test_the_mapping_stand_in_receives_each_message_first(aws):
    """SQS API Reference, "ReceiveMessage": ApproximateReceiveCount is "the number of times a message has been
    received across all queues but not deleted". Locally the mapping's stand-in is the consumer Lambda's poller is on
    AWS (Lambda Developer Guide, "Using Lambda with Amazon SQS"), so its first receive is the message's first."""
    sqs, url, _ = _queue_with_mapping(aws, mapped=True)
    assert _received(sqs, url) == [("video-1", "1")]


@not_over_reaching("sqs_no_builtin_lambda_polling")
def test_mappings_are_still_created_and_answered(aws):
    """Lambda API Reference, "CreateEventSourceMapping" / "GetEventSourceMapping": the mapping is answered with its
    EventSourceArn, FunctionArn, BatchSize and State Enabled; a queue without one delivers as usual."""
    sqs, url, mapping = _queue_with_mapping(aws, mapped=True)
    answered = aws.client("lambda").get_event_source_mapping(UUID=mapping["UUID"])
    assert (answered["EventSourceArn"], answered["FunctionArn"], answered["BatchSize"], answered["State"]) == (
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sqs-to-batch", 5,
        "Enabled")
    plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
    sqs.send_message(QueueUrl=plain, MessageBody="hello")
    assert _received(sqs, plain) == [("hello", "1")]


# --- EventBridge input transformers of S3 events --------------------------------------------------------------

def _uploads_rule(aws: Aws, targets: dict[str, dict[str, Any]]) -> tuple[Any, dict[str, str]]:
    s3, events, sqs = aws.client("s3"), aws.client("events"), aws.client("sqs")
    s3.create_bucket(Bucket="uploads", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_notification_configuration(Bucket="uploads",
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    urls = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in targets}
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"],
               "detail": {"bucket": {"name": ["uploads"]}, "object": {"key": [{"prefix": "jobs-api-"}]}}}
    events.put_rule(Name="uploads", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="uploads", Targets=[
        {"Id": name, "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", **extra} for name, extra in targets.items()])
    return s3, urls


def _bodies(aws: Aws, url: str) -> list[Any]:
    messages = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@needed("eventbridge_input_transformer")
def test_s3_events_reach_a_target_through_its_input_transformer(aws):
    """EventBridge User Guide, "Amazon EventBridge input transformation": the target receives the template with each
    variable filled from the event (a string outside quotes as a JSON string); S3's "Object Created" event ("Amazon
    S3 event notifications" / "Using EventBridge", S3 User Guide) goes through it like any other."""
    s3, urls = _uploads_rule(aws, {"transformed": {"InputTransformer": {
        "InputPathsMap": {"key": "$.detail.object.key", "bucket": "$.detail.bucket.name"},
        "InputTemplate": '{"video_id": <key>, "bucket": <bucket>}'}}})
    s3.put_object(Bucket="uploads", Key="jobs-api-0001", Body=b"x")
    assert _bodies(aws, urls["transformed"]) == [{"video_id": "jobs-api-0001", "bucket": "uploads"}]


@not_over_reaching("eventbridge_input_transformer")
def test_a_target_without_a_transformer_gets_the_event_itself_and_unmatched_keys_nothing(aws):
    """EventBridge User Guide, "Amazon EventBridge events" (the event's top-level fields version, id, detail-type,
    source, account, time, region, resources, detail) and "Event patterns": a target without a transformer receives
    the matched event as is; an object outside the pattern's prefix sends nothing."""
    s3, urls = _uploads_rule(aws, {"whole": {}})
    s3.put_object(Bucket="uploads", Key="elsewhere/video.mp4", Body=b"x")
    s3.put_object(Bucket="uploads", Key="jobs-api-0002", Body=b"x")
    (event,) = _bodies(aws, urls["whole"])
    assert {"version", "id", "detail-type", "source", "account", "time", "region", "resources",
            "detail"} <= set(event)
    assert (event["source"], event["detail-type"], event["account"], event["detail"]["object"]["key"]) == (
        "aws.s3", "Object Created", ACCOUNT, "jobs-api-0002")


# --- Budgets subscribers and tags -------------------------------------------------------------------------------

NOTIFICATION = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0,
                "ThresholdType": "PERCENTAGE"}
SUBSCRIBER = {"SubscriptionType": "SNS", "Address": f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"}
BUDGET_ARN = f"arn:aws:budgets::{ACCOUNT}:budget/env-budget"


def _budget(aws: Aws) -> Any:
    budgets = aws.client("budgets")
    budgets.create_budget(AccountId=ACCOUNT, Budget={
        "BudgetName": "env-budget", "BudgetType": "COST", "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": "300", "Unit": "USD"}},
        NotificationsWithSubscribers=[{"Notification": NOTIFICATION, "Subscribers": [SUBSCRIBER]}],
        ResourceTags=[{"Key": "Environment", "Value": "dev"}])
    return budgets


@needed("budgets_subscribers_and_tags", without=NotImplementedError)
def test_a_budgets_subscribers_and_tags_are_answered(aws):
    """AWS Budgets API Reference, "DescribeSubscribersForNotification" ({"Subscribers": [{"SubscriptionType",
    "Address"}]}), "ListTagsForResource" ({"ResourceTags": [{"Key", "Value"}]}), "TagResource", "UntagResource";
    CreateBudget's ResourceTags tag the budget."""
    budgets = _budget(aws)
    assert budgets.describe_subscribers_for_notification(
        AccountId=ACCOUNT, BudgetName="env-budget", Notification=NOTIFICATION)["Subscribers"] == [SUBSCRIBER]
    assert budgets.list_tags_for_resource(ResourceARN=BUDGET_ARN)["ResourceTags"] == [
        {"Key": "Environment", "Value": "dev"}]
    budgets.tag_resource(ResourceARN=BUDGET_ARN, ResourceTags=[{"Key": "Owner", "Value": "ops"}])
    budgets.untag_resource(ResourceARN=BUDGET_ARN, ResourceTagKeys=["Environment"])
    assert budgets.list_tags_for_resource(ResourceARN=BUDGET_ARN)["ResourceTags"] == [{"Key": "Owner", "Value": "ops"}]


@not_over_reaching("budgets_subscribers_and_tags")
def test_creating_describing_and_deleting_budgets_answer_as_before(aws):
    """The patch wraps CreateBudget and DeleteBudget: AWS Budgets API Reference, "DescribeBudget" answers the budget
    created, "DescribeNotificationsForBudget" its notification, and after "DeleteBudget" DescribeBudget answers
    NotFoundException."""
    budgets = _budget(aws)
    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="env-budget")["Budget"]
    assert (budget["BudgetName"], budget["BudgetLimit"]) == ("env-budget", {"Amount": "300", "Unit": "USD"})
    (notification,) = budgets.describe_notifications_for_budget(AccountId=ACCOUNT,
                                                                BudgetName="env-budget")["Notifications"]
    assert notification["Threshold"] == 80.0
    budgets.delete_budget(AccountId=ACCOUNT, BudgetName="env-budget")
    with pytest.raises(ClientError) as error:
        budgets.describe_budget(AccountId=ACCOUNT, BudgetName="env-budget")
    assert _code(error) == "NotFoundException"


# --- moto setting: AWS managed policies -------------------------------------------------------------------------

@needed(IAM_MANAGED_POLICIES, without=ClientError)
def test_aws_managed_policies_exist(aws):
    """IAM User Guide, "AWS managed policies": they exist in every account under arn:aws:iam::aws:policy/...;
    "GetPolicy" answers ReadOnlyAccess."""
    policy = aws.client("iam").get_policy(PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")["Policy"]
    assert policy["PolicyName"] == "ReadOnlyAccess"


@not_over_reaching(IAM_MANAGED_POLICIES)
def test_a_managed_policy_aws_does_not_have_is_no_such_entity(aws):
    """IAM API Reference, "GetPolicy", Errors: NoSuchEntity for a policy that does not exist."""
    with pytest.raises(ClientError) as error:
        aws.client("iam").get_policy(PolicyArn="arn:aws:iam::aws:policy/DeepSentinelNoSuchPolicy")
    assert _code(error) == "NoSuchEntity"


# --- a create sent again with its idempotency token -------------------------------------------------------------

def _create_schedule(aws: Aws, token: str) -> dict[str, Any]:
    """As the provider creates dev's runnable-jobs check (synthesized: rate(5 minutes), no flexible window, the
    monitor function as target with the scheduler role), with the ClientToken an SDK fills in."""
    return aws.client("scheduler").create_schedule(
        Name="deepsentinel-dev-runnable-jobs-check", ScheduleExpression="rate(5 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"}, ClientToken=token,
        Target={"Arn": f"arn:aws:lambda:{REGION}:123456789012:function:deepsentinel-dev-batch-runnable-monitor",
                "RoleArn": "arn:aws:iam::123456789012:role/deepsentinel-dev-scheduler"})


def _public_subnet_and_address(aws: Aws) -> tuple[str, str]:
    """A subnet and an Elastic IP, as dev's NAT gateway gets them (network module)."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/24")["Subnet"]["SubnetId"]
    return subnet, ec2.allocate_address(Domain="vpc")["AllocationId"]


@needed("client_token_idempotency", without=ClientError)
def test_a_create_schedule_sent_again_with_its_client_token_answers_the_schedule(aws):
    """EventBridge Scheduler API Reference, "CreateSchedule": ClientToken, "Unique, case-sensitive identifier you
    provide to ensure the idempotency of the request" (an SDK retry sends the same request, token included). Seen: a
    deploy's CreateSchedule answered 200 and, sent again within the second, ConflictException."""
    first = _create_schedule(aws, "4c1d0e7a-retried")
    again = _create_schedule(aws, "4c1d0e7a-retried")
    assert again["ScheduleArn"] == first["ScheduleArn"]
    assert [s["Name"] for s in aws.client("scheduler").list_schedules()["Schedules"]] == [
        "deepsentinel-dev-runnable-jobs-check"]


@needed("client_token_idempotency", without=ClientError)
def test_a_create_nat_gateway_sent_again_with_its_client_token_answers_the_same_gateway(aws):
    """"Ensuring idempotency in Amazon EC2 API requests" (EC2 Developer Guide): CreateNatGateway takes a client
    token; "If you retry a request that completed successfully using the same client token and the same parameters,
    the retry succeeds without performing any further actions". moto creates a second gateway, whose Elastic IP is
    the first's: Resource.AlreadyAssociated, as a rerun of an interrupted deploy once saw."""
    ec2 = aws.client("ec2")
    subnet, address = _public_subnet_and_address(aws)
    first = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=address, ClientToken="c9a1-sent-twice")
    again = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=address, ClientToken="c9a1-sent-twice")
    assert again["NatGateway"]["NatGatewayId"] == first["NatGateway"]["NatGatewayId"]
    assert [g["NatGatewayId"] for g in ec2.describe_nat_gateways()["NatGateways"]] == [
        first["NatGateway"]["NatGatewayId"]]


@not_over_reaching("client_token_idempotency")
def test_a_second_create_schedule_of_the_name_with_another_token_is_a_conflict(aws):
    """CreateSchedule, Errors: ConflictException for a schedule that already exists (another request: its own
    token)."""
    _create_schedule(aws, "first-request")
    with pytest.raises(ClientError) as error:
        _create_schedule(aws, "second-request")
    assert _code(error) == "ConflictException"


@needed("client_token_idempotency")
def test_the_same_token_with_other_parameters_is_refused_idempotent_parameter_mismatch(aws):
    """"Ensuring idempotency in Amazon EC2 API requests": "If you retry a request that completed successfully using
    the same client token, but one or more of the parameters are different, other than the Region or Availability
    Zone, the retry fails with an IdempotentParameterMismatch error." Here the gateway's address differs; moto makes
    a second gateway."""
    ec2 = aws.client("ec2")
    subnet, address = _public_subnet_and_address(aws)
    other = ec2.allocate_address(Domain="vpc")["AllocationId"]
    first = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=address, ClientToken="same-token")
    try:
        ec2.create_nat_gateway(SubnetId=subnet, AllocationId=other, ClientToken="same-token")
        code = None
    except ClientError as error:
        code = error.response["Error"]["Code"]
    assert code == "IdempotentParameterMismatch"
    assert [g["NatGatewayId"] for g in ec2.describe_nat_gateways()["NatGateways"]] == [
        first["NatGateway"]["NatGatewayId"]]


@not_over_reaching("client_token_idempotency")
def test_a_token_of_an_earlier_mock_is_not_replayed_in_a_new_one(aws):
    """Answers belong to the backend that gave them: after moto's backends are made anew (a new mock, the server's
    /moto-api/reset) the same token creates the resource again."""
    first = _create_schedule(aws, "kept-across-a-reset")["ScheduleArn"]
    from moto.core.base_backend import BackendDict

    BackendDict.reset()  # what /moto-api/reset and a new mock_aws do
    assert aws.client("scheduler").list_schedules()["Schedules"] == []
    assert _create_schedule(aws, "kept-across-a-reset")["ScheduleArn"] == first
    assert len(aws.client("scheduler").list_schedules()["Schedules"]) == 1


# --- the list is complete ---------------------------------------------------------------------------------------

def test_every_patch_is_pinned_both_ways():
    """Every registered patch (and the pinned moto setting) has a `needed` and a `not over-reaching` test, and every
    MotoException that is a patch names a registered one."""
    expected = {*LOCAL_PATCHES, IAM_MANAGED_POLICIES}
    assert {name: PINNED[name] for name in expected} == {name: {"needed", "not over-reaching"} for name in expected}
    assert set(PINNED) == expected
    assert {e.patch for e in MOTO_EXCEPTIONS if e.patch} == set(LOCAL_PATCHES)


def test_no_two_patches_replace_the_same_attribute():
    """Each patch can be undone alone only if no other patch wraps the same method."""
    from deepsentinel.local import patches as local_aws

    owners: dict[tuple[int, str], list[str]] = defaultdict(list)
    for name in LOCAL_PATCHES:
        with patch_state(name, True):
            for owner, attribute, _ in local_aws._applied[name]:
                owners[(id(owner), attribute)].append(name)
    assert [names for names in owners.values() if len(names) > 1] == []
