"""Stacks of the live tests: one module (with only what it needs) or the whole platform, named `live`."""

from __future__ import annotations

from typing import Any

from deepsentinel.provider import register_provider_package

register_provider_package()

from cdktf import TerraformOutput, TerraformStack  # noqa: E402

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity  # noqa: E402

from cdktf_cdktf_provider_aws.dynamodb_table import DynamodbTable, DynamodbTableAttribute  # noqa: E402
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket  # noqa: E402
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification  # noqa: E402
from cdktf_cdktf_provider_aws.security_group import SecurityGroup  # noqa: E402
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic  # noqa: E402
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue  # noqa: E402
from cdktf_cdktf_provider_aws.subnet import Subnet  # noqa: E402
from cdktf_cdktf_provider_aws.vpc import Vpc  # noqa: E402

from deepsentinel.constructs.encryption import Encryption, EncryptionProps  # noqa: E402
from deepsentinel.constructs.jobs_api import JobsApi, JobsApiProps  # noqa: E402
from deepsentinel.constructs.names import ResourceNames  # noqa: E402
from deepsentinel.constructs.network import Network, NetworkProps  # noqa: E402
from deepsentinel.constructs.security import Security, SecurityProps  # noqa: E402
from deepsentinel.constructs.storage import Storage, StorageProps  # noqa: E402
from deepsentinel.stacks.platform import PlatformStack  # noqa: E402
from deepsentinel.stacks.provider import configure_stack  # noqa: E402
from tests.live.harness import STACK  # noqa: E402


class ModuleStack(TerraformStack):
    """network alone; security on a network; storage on network + security (its subnets and RDS group) and the
    environment's key."""

    def __init__(self, scope: Any, *, settings: Any, options: Any, module: str) -> None:
        super().__init__(scope, STACK)
        s = settings
        configure_stack(self, s, options, f"{s.prefix}-{module}")
        network = Network(self, "network", props=NetworkProps(settings=s))
        outputs: dict[str, Any] = {
            "vpc_id": network.vpc_id, "public_subnet_ids": network.public_subnet_ids,
            "private_subnet_ids": network.private_subnet_ids, "alb_arn": network.alb_arn,
            "alb_listener_arn": network.alb_listener_arn, "alb_security_group_id": network.alb_security_group_id,
            "frontend_target_group_arn": network.frontend_target_group_arn,
            "backend_target_group_arn": network.backend_target_group_arn,
        }
        if module in ("security", "storage"):
            security = Security(self, "security", props=SecurityProps(
                settings=s, vpc_id=network.vpc_id, vpc_cidr=network.vpc_cidr,
                public_subnet_ids=network.public_subnet_ids, private_subnet_ids=network.private_subnet_ids,
                alb_security_group_id=network.alb_security_group_id))
            outputs |= {"ecs_security_group_id": security.ecs_security_group_id,
                        "batch_security_group_id": security.batch_security_group_id,
                        "rds_security_group_id": security.rds_security_group_id}
        if module == "storage":
            encryption = Encryption(self, "encryption", props=EncryptionProps(
                settings=s, account_id=DataAwsCallerIdentity(self, "current").account_id, publishing_role_arns=[]))
            storage = Storage(self, "storage", props=StorageProps(
                settings=s, private_subnet_ids=network.private_subnet_ids,
                rds_security_group_id=security.rds_security_group_id, kms_key_arn=encryption.kms_key_arn))
            outputs |= {"bucket_names": storage.bucket_names, "db_instance_identifier": storage.db_instance_identifier,
                        "db_host": storage.db_host, "db_secret_arn": storage.db_secret_arn,
                        "django_secret_arn": storage.django_secret_arn}
        for name, value in outputs.items():
            TerraformOutput(self, name, value=value)


def module_builder(module: str):
    def build(app: Any, settings: Any, options: Any) -> None:
        ModuleStack(app, settings=settings, options=options, module=module)
    return build


def build_platform(app: Any, settings: Any, options: Any) -> None:
    PlatformStack(app, STACK, settings=settings, options=options)


class JobsApiStack(TerraformStack):
    """The Jobs API on the few resources it uses, made directly here: key, VPC subnets and a security group for
    the functions, the raw and highlights buckets (raw sends its events to EventBridge), the jobs queue, the
    functions' DLQ, the claim table and the alerts topic. No ALB, NAT or RDS: a deployment of about a minute."""

    def __init__(self, scope: Any, *, settings: Any, options: Any) -> None:
        super().__init__(scope, STACK)
        s, n = settings, ResourceNames(settings)
        configure_stack(self, s, options, f"{s.prefix}-jobs-api")
        account_id = DataAwsCallerIdentity(self, "current").account_id
        key = Encryption(self, "encryption", props=EncryptionProps(settings=s, account_id=account_id,
                                                                    publishing_role_arns=[])).kms_key_arn
        vpc = Vpc(self, "vpc", cidr_block=s.vpc_cidr, tags={"Name": s.name("vpc")})
        subnets = [Subnet(self, f"private-{i}", vpc_id=vpc.id, cidr_block=cidr, availability_zone=az,
                          tags={"Name": s.name(f"private-{az[-1]}")})
                   for i, (cidr, az) in enumerate(zip(s.private_subnet_cidrs, s.availability_zones))]
        lambda_sg = SecurityGroup(self, "lambda-sg", name=s.name("lambda"), vpc_id=vpc.id,
                                  description="Jobs API functions", tags={"Name": s.name("lambda")})
        buckets = {p: S3Bucket(self, p, bucket=s.bucket_name(p), force_destroy=True)
                   for p in ("raw-videos", "highlights")}
        S3BucketNotification(self, "raw-videos-events", bucket=buckets["raw-videos"].id, eventbridge=True)
        queue = SqsQueue(self, "jobs-queue", name=n.jobs_queue, kms_master_key_id=key)
        functions_dlq = SqsQueue(self, "functions-dlq", name=n.functions_dlq, kms_master_key_id=key)
        table = DynamodbTable(self, "claims", name=n.idempotency_table, billing_mode="PAY_PER_REQUEST",
                              hash_key="video_id", attribute=[DynamodbTableAttribute(name="video_id", type="S")])
        topic = SnsTopic(self, "alerts", name=n.alerts_topic, kms_master_key_id=key)
        api = JobsApi(self, "jobs-api", props=JobsApiProps(
            settings=s, account_id=account_id, kms_key_arn=key, raw_bucket_name=buckets["raw-videos"].bucket,
            raw_bucket_arn=buckets["raw-videos"].arn, highlights_bucket_name=buckets["highlights"].bucket,
            highlights_bucket_arn=buckets["highlights"].arn, idempotency_table_name=table.name,
            idempotency_table_arn=table.arn,
            job_queue_arn=f"arn:aws:batch:{s.region}:{account_id}:job-queue/{n.batch_job_queue}",
            jobs_queue_arn=queue.arn, jobs_queue_url=queue.url, functions_dlq_arn=functions_dlq.arn,
            alerts_topic_arn=topic.arn, private_subnet_ids=[subnet.id for subnet in subnets],
            lambda_security_group_id=lambda_sg.id))
        outputs: dict[str, Any] = {
            "api_id": api.api_id, "api_endpoint": api.api_endpoint, "function_names": api.function_names,
            "client_role_arn": api.client_role_arn, "upload_rule_arn": api.upload_rule_arn,
            "access_log_group_name": api.access_log_group_name, "jobs_queue_url": queue.url,
            "raw_bucket": buckets["raw-videos"].bucket, "lambda_security_group_id": lambda_sg.id,
        }
        for name, value in outputs.items():
            TerraformOutput(self, name, value=value)


def build_jobs_api(app: Any, settings: Any, options: Any) -> None:
    JobsApiStack(app, settings=settings, options=options)
