"""Read deployed state back with boto3. Names follow Terratest's `modules/aws` (GetVpcById, GetSubnetsForVpc,
IsPublicSubnet, AssertS3BucketExists, GetS3BucketVersioning, ...) in snake_case, so a reader of the original
Go tests finds the same vocabulary. Each helper takes a `Clients` (boto3 clients bound to the target).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from tests.live.leftovers import ACCOUNT_LISTERS, Owner, find_leftovers

BATCH_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class Clients:
    """boto3 clients for one target: a moto endpoint, or real AWS when endpoint_url is None."""

    region: str
    endpoint_url: str | None = None

    def __call__(self, service: str) -> Any:
        if self.endpoint_url:
            return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url,
                                aws_access_key_id="test", aws_secret_access_key="test")
        return boto3.client(service, region_name=self.region)


# --- network ----------------------------------------------------------------------------------------------

def get_vpc_by_id(c: Clients, vpc_id: str) -> dict:
    return c("ec2").describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]


def get_subnets_for_vpc(c: Clients, vpc_id: str) -> list[dict]:
    return c("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]


def get_route_table_for_subnet(c: Clients, subnet_id: str) -> dict:
    tables = c("ec2").describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["RouteTables"]
    assert len(tables) == 1, f"subnet {subnet_id} has {len(tables)} explicit route tables"
    return tables[0]


def default_route(table: dict) -> dict | None:
    return next((r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None)


def is_public_subnet(c: Clients, subnet_id: str) -> bool:
    """Terratest's IsPublicSubnet: the subnet's default route goes to an internet gateway."""
    route = default_route(get_route_table_for_subnet(c, subnet_id))
    return bool(route and route.get("GatewayId", "").startswith("igw-"))


def is_private_subnet_behind_nat(c: Clients, subnet_id: str) -> bool:
    route = default_route(get_route_table_for_subnet(c, subnet_id))
    return bool(route and route.get("NatGatewayId", "").startswith("nat-"))


def get_nat_gateways_for_vpc(c: Clients, vpc_id: str) -> list[dict]:
    gateways = c("ec2").describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]
    return [g for g in gateways if g["State"] not in ("deleted", "deleting")]


def get_vpc_endpoints_for_vpc(c: Clients, vpc_id: str) -> list[dict]:
    return c("ec2").describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]


def get_flow_logs_for_vpc(c: Clients, vpc_id: str) -> list[dict]:
    return c("ec2").describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]


def get_load_balancer(c: Clients, arn: str) -> dict:
    return c("elbv2").describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]


def get_load_balancer_listeners(c: Clients, alb_arn: str) -> list[dict]:
    return c("elbv2").describe_listeners(LoadBalancerArn=alb_arn)["Listeners"]


def get_listener_rules(c: Clients, listener_arn: str) -> list[dict]:
    return c("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"]


def get_target_group(c: Clients, arn: str) -> dict:
    return c("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]


# --- security ---------------------------------------------------------------------------------------------

def get_security_group(c: Clients, group_id: str) -> dict:
    return c("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


def get_security_group_rules(c: Clients, group_id: str) -> list[dict]:
    return c("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def get_default_security_group(c: Clients, vpc_id: str) -> dict:
    return c("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                      {"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"][0]


def get_network_acls_for_vpc(c: Clients, vpc_id: str) -> list[dict]:
    return c("ec2").describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkAcls"]


# --- storage ----------------------------------------------------------------------------------------------

def assert_s3_bucket_exists(c: Clients, bucket: str) -> None:
    c("s3").head_bucket(Bucket=bucket)


def get_s3_bucket_versioning(c: Clients, bucket: str) -> str | None:
    return c("s3").get_bucket_versioning(Bucket=bucket).get("Status")


def get_s3_bucket_encryption_algorithm(c: Clients, bucket: str) -> str:
    rules = c("s3").get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    return rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]


def get_s3_bucket_public_access_block(c: Clients, bucket: str) -> dict:
    return c("s3").get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]


def get_s3_bucket_lifecycle_rules(c: Clients, bucket: str) -> list[dict]:
    return c("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]


def get_s3_bucket_policy(c: Clients, bucket: str) -> dict:
    return json.loads(c("s3").get_bucket_policy(Bucket=bucket)["Policy"])


def get_rds_instance_details(c: Clients, identifier: str) -> dict:
    return c("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


def get_address_of_rds_instance(c: Clients, identifier: str) -> str:
    return get_rds_instance_details(c, identifier)["Endpoint"]["Address"]


def get_secret(c: Clients, secret_id: str) -> dict:
    return c("secretsmanager").describe_secret(SecretId=secret_id)


def get_secret_value(c: Clients, secret_id: str) -> str:
    return c("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]


# --- pipeline ---------------------------------------------------------------------------------------------

def get_sqs_queue_attributes(c: Clients, queue_url: str) -> dict[str, str]:
    return c("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]


def get_lambda_function(c: Clients, name: str) -> dict:
    return c("lambda").get_function_configuration(FunctionName=name)


def get_event_source_mappings(c: Clients, function_name: str) -> list[dict]:
    """Mappings whose function is `function_name` (matched on the ARN: moto's FunctionName filter wants the ARN)."""
    mappings = [m for page in c("lambda").get_paginator("list_event_source_mappings").paginate()
                for m in page["EventSourceMappings"]]
    return [m for m in mappings if m["FunctionArn"].split(":")[-1] == function_name
            or m["FunctionArn"].endswith(f":function:{function_name}")]


def get_dynamodb_table(c: Clients, name: str) -> dict:
    return c("dynamodb").describe_table(TableName=name)["Table"]


def get_eventbridge_rule(c: Clients, name: str) -> dict:
    return c("events").describe_rule(Name=name)


def get_eventbridge_targets(c: Clients, rule: str) -> list[dict]:
    return c("events").list_targets_by_rule(Rule=rule)["Targets"]


def get_cloudwatch_alarms(c: Clients, prefix: str) -> list[dict]:
    return c("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]


def get_batch_compute_environment(c: Clients, name: str) -> dict:
    return c("batch").describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]


def get_batch_job_queue(c: Clients, name_or_arn: str) -> dict:
    return c("batch").describe_job_queues(jobQueues=[name_or_arn])["jobQueues"][0]


def get_batch_job_definition(c: Clients, arn: str) -> dict:
    return c("batch").describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0]


def get_batch_jobs(c: Clients, job_queue: str) -> list[dict]:
    """Every job of the queue, whatever its status (ListJobs alone returns RUNNING ones)."""
    batch, jobs = c("batch"), {}
    for status in BATCH_STATUSES:
        for job in batch.list_jobs(jobQueue=job_queue, jobStatus=status)["jobSummaryList"]:
            jobs[job["jobId"]] = job
    return list(jobs.values())


# --- compute ----------------------------------------------------------------------------------------------

def get_ecs_cluster(c: Clients, name: str) -> dict:
    return c("ecs").describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]


def get_ecs_service(c: Clients, cluster: str, service: str) -> dict:
    return c("ecs").describe_services(cluster=cluster, services=[service])["services"][0]


def get_ecs_task_definition(c: Clients, arn: str) -> dict:
    return c("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]


def get_ecr_repository(c: Clients, name: str) -> dict:
    return c("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]


def get_scalable_targets(c: Clients, resource_id: str) -> list[dict]:
    return c("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource_id])["ScalableTargets"]


def get_scaling_policies(c: Clients, resource_id: str) -> list[dict]:
    return c("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=resource_id)["ScalingPolicies"]


def get_scheduled_actions(c: Clients, resource_id: str) -> list[dict]:
    return c("application-autoscaling").describe_scheduled_actions(
        ServiceNamespace="ecs", ResourceId=resource_id)["ScheduledActions"]


# --- leftovers --------------------------------------------------------------------------------------------

def find_project_resources(c: Clients, project: str, prefix: str) -> list[str]:
    """Everything of the environment still there: each kind its stacks create, named <prefix>-* or tagged
    Project=<project> (tests/live/leftovers.py, one lister per kind, every list call paginated).

    What AWS's own delete leaves listed (a key pending deletion, a secret scheduled for deletion, INACTIVE task
    and job definitions, NAT gateways `deleted`) does not count.
    """
    return find_leftovers(c, Owner(project=project, prefix=prefix))


def find_account_resources(c: Clients, project: str) -> list[str]:
    """What the account stack (bootstrap) of the project holds: its state bucket, people, GitHub roles, zones and
    the environments' Django keys."""
    return find_leftovers(c, Owner(project=project, prefix=project), ACCOUNT_LISTERS)
