"""A dev deployment's failure path, made on a local server for the tests that drive the Batch stand-in
(tests/unit/test_batch_job_end.py, tests/unit/test_failed_video_output.py): the video-events and alerts topics, the
database instance with its RDS-managed secret, the GPU compute environment, job queue and job definition, and the
failure monitor (its packaged code) behind the rule with the deployed pattern
(deepsentinel/constructs/event_patterns.py batch_failed_event_pattern). The job definition names the database as the
pipeline gives the worker (the instance's address and secret), the monitor as the pipeline gives it (the instance's
identifier and the database's name); the stand-ins point both at the local PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsentinel.constructs.event_patterns import batch_failed_event_pattern
from deepsentinel.lambda_package import staged_code_dir
from deepsentinel.local.stand_in import DeployedFunction, EventRuleStandIn, LocalAwsEnvironment

REPO_ROOT = Path(__file__).resolve().parents[1]
REGION = "ap-northeast-2"
DB_NAME, DB_USER, DB_PASSWORD = "deepsentinel", "deepsentinel_admin", "local-test-password"
DB_INSTANCE = "deepsentinel-dev-postgres"
MONITOR = "deepsentinel-dev-batch-failure-monitor"
RULE = "deepsentinel-dev-batch-failed"


@dataclass(frozen=True, kw_only=True)
class FailurePath:
    aws: LocalAwsEnvironment
    video_events_topic_arn: str
    alerts_topic_arn: str
    db_secret_arn: str
    job_queue_arn: str
    job_definition_arn: str
    rule: EventRuleStandIn  # its target is the failure monitor


def failure_path(client: Callable[[str], Any], endpoint: str, db_endpoint: dict[str, str], *,
                 job_environment: dict[str, str], retry_strategy: dict[str, Any],
                 timeout_seconds: int | None = None, monitor_environment: dict[str, str] | None = None) -> FailurePath:
    """The failure path on the server at `endpoint` (`client(service)` makes its clients). The job definition's
    environment is `job_environment` with the database's and the video-events topic's, as the pipeline gives the
    worker; the monitor's is the pipeline's plus `monitor_environment`."""
    sns, batch, events = client("sns"), client("batch"), client("events")
    video_events = sns.create_topic(Name="deepsentinel-dev-video-events")["TopicArn"]
    alerts = sns.create_topic(Name="deepsentinel-dev-alerts")["TopicArn"]
    instance = client("rds").create_db_instance(
        DBInstanceIdentifier=DB_INSTANCE, Engine="postgres", DBInstanceClass="db.t4g.micro", DBName=DB_NAME,
        MasterUsername=DB_USER, ManageMasterUserPassword=True, AllocatedStorage=20)["DBInstance"]
    secret = instance["MasterUserSecret"]["SecretArn"]  # {"username", "password"}; here the local database's
    client("secretsmanager").put_secret_value(
        SecretId=secret, SecretString=json.dumps({"username": DB_USER, "password": DB_PASSWORD}))
    address = client("rds").describe_db_instances(DBInstanceIdentifier=DB_INSTANCE)["DBInstances"][0]["Endpoint"]
    database = {"DB_SECRET_ARN": secret, "DB_HOST": address["Address"], "DB_PORT": str(address["Port"]),
                "DB_NAME": DB_NAME}
    role = client("iam").create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    compute = batch.create_compute_environment(computeEnvironmentName="deepsentinel-dev-gpu", type="UNMANAGED",
                                               state="ENABLED", serviceRole=role)["computeEnvironmentArn"]
    queue = batch.create_job_queue(jobQueueName="deepsentinel-dev-gpu", state="ENABLED", priority=10,
                                   computeEnvironmentOrder=[{"order": 1, "computeEnvironment": compute}])["jobQueueArn"]
    environment = {**job_environment, **database, "VIDEO_EVENTS_TOPIC_ARN": video_events}
    definition = batch.register_job_definition(
        jobDefinitionName="deepsentinel-dev-video-analysis-gpu", type="container",
        containerProperties={"image": "worker:1", "vcpus": 1, "memory": 512,
                             "environment": [{"name": k, "value": v} for k, v in environment.items()]},
        retryStrategy=retry_strategy,
        **({"timeout": {"attemptDurationSeconds": timeout_seconds}} if timeout_seconds else {}))["jobDefinitionArn"]
    monitor = DeployedFunction(
        name=MONITOR, arn=f"arn:aws:lambda:{REGION}:123456789012:function:{MONITOR}",
        environment={"ALERT_TOPIC_ARN": alerts, "LOG_GROUP": "/aws/batch/job", "VIDEO_EVENTS_TOPIC_ARN": video_events,
                     "DB_INSTANCE": DB_INSTANCE, "DB_NAME": DB_NAME, **(monitor_environment or {})},
        code_dir=staged_code_dir(REPO_ROOT / "lambdas" / "batch_failure_monitor"), handler="handler.handler")
    events.put_rule(Name=RULE, EventPattern=batch_failed_event_pattern(queue))
    events.put_targets(Rule=RULE, Targets=[{"Id": "monitor", "Arn": monitor.arn}])
    aws = LocalAwsEnvironment(endpoint, REGION)
    return FailurePath(aws=aws, video_events_topic_arn=video_events, alerts_topic_arn=alerts, db_secret_arn=secret,
                       job_queue_arn=queue, job_definition_arn=definition,
                       rule=EventRuleStandIn.read_back(events, RULE, monitor, aws, db_endpoint))
