"""What the commands need to know of the stacks without synthesizing them: their names, the account state's key, the
platform's modules and its outputs. Nothing here imports cdktf: the first cdktf import starts jsii's node and loads
the provider binding's assembly (4-5 s, docs/local-speed.md), which `output`, `destroy --local`, `smoke` and a
refused `bootstrap` do not need."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deepsentinel.settings import PlatformSettings

ACCOUNT_STACK = "deepsentinel-account"
ACCOUNT_STATE_KEY = "account"

# Construct ids double as the module names of reports (synth table, review, graph).
MODULES = (
    "encryption",
    "access-logs",
    "network",
    "security",
    "storage",
    "iam",
    "compute",
    "pipeline",
    "dashboard",
    "service-alarms",
    "budget",
)


def platform_stack_name(settings: PlatformSettings) -> str:
    return f"deepsentinel-{settings.environment}"


def state_object_key(state_key: str) -> str:
    """The state object of a stack in the state bucket (its lock is this key + `.tflock`)."""
    return f"{state_key}/terraform.tfstate"


# Every stack output and what it is (`deepsentinel output` prints these beside the values).
OUTPUT_DESCRIPTIONS = {
    "vpc_id": "the environment's VPC",
    "public_subnet_ids": "public subnets (ALB, NAT), one per AZ",
    "private_subnet_ids": "private subnets (ECS tasks, Batch, RDS, Lambda), one per AZ",
    "alb_dns_name": "the load balancer's DNS name",
    "site_url": "where the frontend is served (https://<domain_name>, else http://<ALB DNS name>)",
    "api_url": "the backend's API root (/api/ on the site)",
    "db_host": "RDS PostgreSQL endpoint address (private)",
    "db_secret_arn": "RDS-managed master secret: {username, password}",
    "bucket_names": "S3 bucket per purpose",
    "jobs_queue_url": "SQS queue the backend sends job messages to",
    "jobs_dlq_url": "dead-letter queue of the jobs queue (messages that failed max_receive_count times)",
    "job_queue_arn": "AWS Batch job queue of the GPU jobs",
    "ecr_repository_urls": "ECR repository per image (tags are immutable)",
    "ecs_cluster_name": "ECS cluster of the frontend and backend",
    "ecs_service_names": "ECS services (frontend, backend)",
    "security_group_ids": "security groups per tier (alb, ecs, batch, rds, lambda)",
    "lambda_function_names": "Lambda function per folder under lambdas/",
    "idempotency_table_name": "DynamoDB claims of sqs_to_batch (one per video)",
    "gpu_job_definition_arn": "Batch job definition of the GPU worker (current revision)",
    "alerts_topic_arn": "SNS topic of alarms and failed-job alerts",
    "video_events_topic_arn": "SNS topic of DONE/FAILED notifications per video",
    "kms_key_arn": "the environment's customer-managed KMS key",
    "jobs_api_url": "Jobs API root (POST /videos, GET /videos/{id}, GET /videos/{id}/results; SigV4, IAM auth); "
    "empty without jobs_api_enabled",
    "jobs_api_client_role_arn": "role camera gateways assume to call the Jobs API; empty without jobs_api_enabled",
}
