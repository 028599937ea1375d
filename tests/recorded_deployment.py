"""dev's synthesized resources created in moto under their names, and the recorded calls evaluated against them
(tests/unit/test_recorded_calls.py: the functions; tests/unit/worker/test_worker_recorded_calls.py: the worker).

`create_in_moto` creates what the functions and the worker touch (the key, buckets, queues, topics, table, secrets,
log groups, repositories, cluster and services, job queue and definitions) and keeps each Terraform reference's
value (`aws_s3_bucket.<id>.arn` -> the ARN), so the synthesized environments and policies resolve to what exists.
The RDS instance is created with its master password managed by RDS, so DescribeDBInstances names its secret
(`rds!db-<uuid>`, as RDS names it); no database runs: its address is a closed local port unless a test gives one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from tests import aws_events
from tests.permission_check import Decision, Identity, Policy, decide, resolved, role_identity
from tests.recorded_calls import Authorization, Call, Where, authorizations, queue_arn_of

ACCOUNT, REGION = aws_events.ACCOUNT_ID, aws_events.REGION
UNREACHABLE_DB = ("127.0.0.1", "9")  # a closed port: the failure monitor's database step fails fast and says so


# --- the deployment, in moto --------------------------------------------------------------------------------


@dataclass
class Deployment:
    """What dev's synthesized resources are in moto: references -> values, encryption and resource policies."""

    stack: dict[str, Any]
    references: dict[str, str]
    secret_arns: dict[str, str]

    def value(self, expression: str) -> Any:
        return resolved(json.dumps(expression), self.references, ACCOUNT)

    def policy(self, name: str, text: str) -> Policy:
        return Policy(name, json.loads(self.value(text)))

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return self.stack["resource"].get(resource_type, {})

    def function_environment(self, function_name: str) -> dict[str, str]:
        [config] = [c for c in self.resources("aws_lambda_function").values() if c["function_name"] == function_name]
        return self.value(config.get("environment", {}).get("variables", {}))

    def function_role(self, function_name: str) -> str:
        [config] = [c for c in self.resources("aws_lambda_function").values() if c["function_name"] == function_name]
        return self.value(config["role"]).rsplit("/", 1)[-1]

    def encryption(self) -> dict[str, tuple[str, str]]:
        """resource ARN (bucket, queue, topic, secret) -> (its key's ARN, what the encryption context names)."""
        result: dict[str, tuple[str, str]] = {}
        for config in self.resources("aws_s3_bucket_server_side_encryption_configuration").values():
            bucket = f"arn:aws:s3:::{self.value(config['bucket'])}"
            for rule in config["rule"]:
                key = rule["apply_server_side_encryption_by_default"].get("kms_master_key_id")
                if key:  # bucket keys: the context is the bucket, not the object
                    result[bucket] = (self.value(key), bucket)
        for resource_type, attribute in (("aws_sqs_queue", "kms_master_key_id"),
                                         ("aws_sns_topic", "kms_master_key_id"),
                                         ("aws_secretsmanager_secret", "kms_key_id")):
            for logical, config in self.resources(resource_type).items():
                if config.get(attribute):
                    arn = self.references[f"{resource_type}.{logical}.arn"]
                    result[arn] = (self.value(config[attribute]), arn)
        for logical, config in self.resources("aws_db_instance").items():
            if config.get("master_user_secret_kms_key_id"):
                arn = self.references[f"aws_db_instance.{logical}.master_user_secret[0].secret_arn"]
                result[arn] = (self.value(config["master_user_secret_kms_key_id"]), arn)
        return result

    def resource_policies(self) -> dict[str, Policy]:
        """resource ARN (bucket, queue, topic, key) -> its synthesized policy."""
        result: dict[str, Policy] = {}
        for config in self.resources("aws_s3_bucket_policy").values():
            bucket = self.value(config["bucket"])
            result[f"arn:aws:s3:::{bucket}"] = self.policy(f"bucket policy {bucket}", config["policy"])
        for config in self.resources("aws_sqs_queue_policy").values():
            arn = queue_arn_of(self.value(config["queue_url"]), REGION)
            result[arn] = self.policy(f"queue policy {arn}", config["policy"])
        for config in self.resources("aws_sns_topic_policy").values():
            arn = self.value(config["arn"])
            result[arn] = self.policy(f"topic policy {arn}", config["policy"])
        for logical, config in self.resources("aws_kms_key").items():
            arn = self.references[f"aws_kms_key.{logical}.arn"]
            result[arn] = self.policy(f"key policy {arn}", config["policy"])
        return result


def create_in_moto(stack: dict[str, Any]) -> Deployment:
    """dev's resources the functions and the worker touch, created in moto under their synthesized names."""
    c = {s: boto3.client(s, region_name=REGION) for s in ("kms", "s3", "sqs", "sns", "dynamodb", "secretsmanager",
                                                           "logs", "ecr", "ecs", "batch", "iam", "rds")}
    refs: dict[str, str] = {}
    resources = stack["resource"]

    def put(resource_type: str, logical: str, **attributes: str) -> None:
        refs.update({f"{resource_type}.{logical}.{a}": v for a, v in attributes.items()})

    for logical in resources["aws_kms_key"]:
        key = c["kms"].create_key()["KeyMetadata"]
        put("aws_kms_key", logical, arn=key["Arn"], key_id=key["KeyId"], id=key["KeyId"])
    for logical, config in resources["aws_iam_role"].items():
        arn = f"arn:aws:iam::{ACCOUNT}:role/{config['name']}"
        put("aws_iam_role", logical, arn=arn, name=config["name"], id=config["name"])
    for logical, config in resources["aws_s3_bucket"].items():
        c["s3"].create_bucket(Bucket=config["bucket"], CreateBucketConfiguration={"LocationConstraint": REGION})
        put("aws_s3_bucket", logical, arn=f"arn:aws:s3:::{config['bucket']}", id=config["bucket"],
            bucket=config["bucket"])
    for logical, config in resources["aws_sqs_queue"].items():
        url = c["sqs"].create_queue(QueueName=config["name"])["QueueUrl"]
        put("aws_sqs_queue", logical, arn=queue_arn_of(url, REGION), url=url, id=url, name=config["name"])
    for logical, config in resources["aws_sns_topic"].items():
        arn = c["sns"].create_topic(Name=config["name"])["TopicArn"]
        put("aws_sns_topic", logical, arn=arn, id=arn, name=config["name"])
    for logical, config in resources["aws_dynamodb_table"].items():
        c["dynamodb"].create_table(
            TableName=config["name"], BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": config["hash_key"], "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": a["name"], "AttributeType": a["type"]}
                                  for a in config["attribute"]])
        put("aws_dynamodb_table", logical, name=config["name"], id=config["name"],
            arn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{config['name']}")
    secret_arns = {}
    for logical, config in resources.get("aws_secretsmanager_secret", {}).items():
        arn = c["secretsmanager"].create_secret(Name=config["name"], SecretString="x")["ARN"]
        put("aws_secretsmanager_secret", logical, arn=arn, id=arn)
        secret_arns[config["name"]] = arn
    # Secrets the account stack owns (the Django key): the environment looks them up by name.
    for logical, config in stack.get("data", {}).get("aws_secretsmanager_secret", {}).items():
        arn = c["secretsmanager"].create_secret(Name=config["name"], SecretString="x")["ARN"]
        put("data.aws_secretsmanager_secret", logical, arn=arn, id=arn, name=config["name"])
        secret_arns[config["name"]] = arn
    for logical, config in resources["aws_db_instance"].items():
        # RDS manages the master secret ("Password management with Amazon RDS and AWS Secrets Manager"): it holds
        # {"username", "password"}, its name starts with rds!. The address is a closed local port: no database runs.
        instance = c["rds"].create_db_instance(
            DBInstanceIdentifier=config["identifier"], Engine=config["engine"], DBInstanceClass=config["instance_class"],
            MasterUsername=config["username"], ManageMasterUserPassword=True, AllocatedStorage=20)["DBInstance"]
        arn = instance["MasterUserSecret"]["SecretArn"]
        c["secretsmanager"].put_secret_value(SecretId=arn, SecretString=json.dumps(
            {"username": config["username"], "password": "local"}))
        secret_arns[c["secretsmanager"].describe_secret(SecretId=arn)["Name"]] = arn
        put("aws_db_instance", logical, **{"master_user_secret[0].secret_arn": arn, "address": UNREACHABLE_DB[0],
                                           "port": UNREACHABLE_DB[1]})
    for logical, config in resources["aws_cloudwatch_log_group"].items():
        c["logs"].create_log_group(logGroupName=config["name"])
        put("aws_cloudwatch_log_group", logical, name=config["name"],
            arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{config['name']}")
    for logical, config in resources["aws_ecr_repository"].items():
        repository = c["ecr"].create_repository(repositoryName=config["name"])["repository"]
        put("aws_ecr_repository", logical, name=config["name"], arn=repository["repositoryArn"],
            repository_url=repository["repositoryUri"])
    for logical, config in resources["aws_ecs_cluster"].items():
        arn = c["ecs"].create_cluster(clusterName=config["name"])["cluster"]["clusterArn"]
        put("aws_ecs_cluster", logical, name=config["name"], id=arn, arn=arn)
    c["ecs"].register_task_definition(family="app", containerDefinitions=[{"name": "app", "image": "app",
                                                                           "memory": 512}])
    for logical, config in resources["aws_ecs_service"].items():
        cluster = resolved(json.dumps(config["cluster"]), refs, ACCOUNT)
        arn = c["ecs"].create_service(cluster=cluster, serviceName=config["name"], taskDefinition="app",
                                      desiredCount=1)["service"]["serviceArn"]
        put("aws_ecs_service", logical, name=config["name"], id=arn)
    service_role = c["iam"].create_role(RoleName="batch-service-local", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    environment = c["batch"].create_compute_environment(computeEnvironmentName="local", type="UNMANAGED",
                                                        state="ENABLED", serviceRole=service_role)
    for logical, config in resources["aws_batch_job_queue"].items():
        arn = c["batch"].create_job_queue(jobQueueName=config["name"], state="ENABLED", priority=10,
                                          computeEnvironmentOrder=[{"order": 1, "computeEnvironment":
                                                                    environment["computeEnvironmentArn"]}]
                                          )["jobQueueArn"]
        put("aws_batch_job_queue", logical, arn=arn, id=arn, name=config["name"])
    for logical, config in resources["aws_batch_job_definition"].items():
        arn = c["batch"].register_job_definition(
            jobDefinitionName=config["name"], type="container",
            containerProperties={"image": "worker", "vcpus": 1, "memory": 512})["jobDefinitionArn"]
        put("aws_batch_job_definition", logical, arn=arn, name=config["name"])
    return Deployment(stack, refs, secret_arns)


# --- evaluation ------------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    deployment: Deployment
    calls: list[Call]

    def where(self) -> Where:
        cluster = next(iter(self.deployment.resources("aws_ecs_cluster").values()))["name"]
        return Where(ACCOUNT, self.deployment.secret_arns, cluster)

    def identity(self, role_name: str) -> Identity:
        return role_identity(self.deployment.stack, role_name, self.deployment.references, ACCOUNT)

    def authorizations(self, role_name: str) -> list[Authorization]:
        encryption = self.deployment.encryption()

        def encrypted_by(resource: str) -> tuple[str, str] | None:
            return encryption.get(resource) or encryption.get(resource.split("/", 1)[0] if resource.startswith(
                "arn:aws:s3:::") else resource)

        principal = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
        return [a for call in self.calls if call.identity == role_name
                for a in authorizations(call, self.where(), principal_arn=principal, encrypted_by=encrypted_by)]


def resource_policy_for(policies: dict[str, Policy], resource: str) -> Policy | None:
    owner = resource.split("/", 1)[0] if resource.startswith("arn:aws:s3:::") else resource
    return policies.get(owner)


def evaluate(recorded: Recorded, role_name: str, *, identity: Identity | None = None,
             resource_policies: dict[str, Policy] | None = None) -> list[Decision]:
    identity = identity or recorded.identity(role_name)
    policies = recorded.deployment.resource_policies() if resource_policies is None else resource_policies
    return [decide(a, identity, resource_policy_for(policies, a.resource), ACCOUNT)
            for a in recorded.authorizations(role_name)]


def role_names(recorded: Recorded) -> list[str]:
    return sorted({call.identity for call in recorded.calls})
