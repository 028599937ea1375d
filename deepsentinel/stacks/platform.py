"""One environment of the platform: the six modules, wired through their typed attributes."""

from __future__ import annotations

from pathlib import Path

from cdktf import TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret import DataAwsSecretsmanagerSecret
from constructs import Construct

from deepsentinel.constructs.access_logs import AccessLogs, AccessLogsProps
from deepsentinel.constructs.app_secrets import django_secret_name
from deepsentinel.constructs.budget import Budget, BudgetProps
from deepsentinel.constructs.compute import Compute, ComputeProps
from deepsentinel.constructs.dashboard import Dashboard, DashboardProps
from deepsentinel.constructs.db_night_stop import DbNightStop, DbNightStopProps
from deepsentinel.constructs.encryption import Encryption, EncryptionProps
from deepsentinel.constructs.github_oidc import attach_permissions_boundary
from deepsentinel.constructs.iam import Iam, IamProps
from deepsentinel.constructs.jobs_api import JobsApi, JobsApiProps
from deepsentinel.constructs.names import ResourceNames
from deepsentinel.constructs.network import Network, NetworkProps
from deepsentinel.constructs.pipeline import DEFAULT_LAMBDAS_DIR, Pipeline, PipelineProps
from deepsentinel.constructs.security import Security, SecurityProps
from deepsentinel.constructs.service_alarms import ServiceAlarms, ServiceAlarmsProps
from deepsentinel.constructs.storage import Storage, StorageProps
from deepsentinel.settings import PlatformSettings
from deepsentinel.stacks.names import OUTPUT_DESCRIPTIONS
from deepsentinel.stacks.provider import StackOptions, configure_stack


class PlatformStack(TerraformStack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        settings: PlatformSettings,
        options: StackOptions,
        lambdas_dir: Path = DEFAULT_LAMBDAS_DIR,
    ) -> None:
        super().__init__(scope, id_)
        s = settings
        configure_stack(self, s, options, s.prefix)
        account_id = DataAwsCallerIdentity(self, "current").account_id

        names = ResourceNames(s)
        encryption = Encryption(
            self,
            "encryption",
            props=EncryptionProps(
                settings=s,
                account_id=account_id,
                publishing_role_arns=[
                    names.role_arn(account_id, names.lambda_role("batch_failure_monitor")),
                    names.role_arn(account_id, "batch-job"),
                ],
            ),
        )
        key = encryption.kms_key_arn
        access_logs = (
            AccessLogs(self, "access-logs", props=AccessLogsProps(settings=s, account_id=account_id))
            if s.access_logs_enabled
            else None
        )
        log_bucket = access_logs.bucket_name if access_logs else None
        network = Network(
            self,
            "network",
            props=NetworkProps(
                settings=s,
                kms_key_arn=key,
                access_log_bucket=log_bucket,
                access_log_ready=tuple(access_logs.delivery_ready) if access_logs else (),
            ),
        )
        security = Security(
            self,
            "security",
            props=SecurityProps(
                settings=s,
                vpc_id=network.vpc_id,
                vpc_cidr=network.vpc_cidr,
                public_subnet_ids=network.public_subnet_ids,
                private_subnet_ids=network.private_subnet_ids,
                alb_security_group_id=network.alb_security_group_id,
                alb_arn=network.alb_arn,
                kms_key_arn=key,
            ),
        )
        storage = Storage(
            self,
            "storage",
            props=StorageProps(
                settings=s,
                private_subnet_ids=network.private_subnet_ids,
                rds_security_group_id=security.rds_security_group_id,
                kms_key_arn=key,
                access_log_bucket=log_bucket,
                alb_dns_name=network.alb_dns_name,
            ),
        )
        # The Django key is the account stack's (bootstrap): looked up by name (DescribeSecret, metadata only), so
        # no plan of the environment generates it or reads its value.
        django_secret_arn = DataAwsSecretsmanagerSecret(
            self, "django-secret-key", name=django_secret_name(s, s.environment)
        ).arn
        iam = Iam(
            self,
            "iam",
            props=IamProps(
                settings=s,
                account_id=account_id,
                bucket_arns=storage.bucket_arns,
                db_secret_arn=storage.db_secret_arn,
                django_secret_arn=django_secret_arn,
                kms_key_arn=encryption.kms_key_arn,
            ),
        )
        compute = Compute(
            self,
            "compute",
            props=ComputeProps(
                settings=s,
                private_subnet_ids=network.private_subnet_ids,
                ecs_security_group_id=security.ecs_security_group_id,
                batch_security_group_id=security.batch_security_group_id,
                frontend_target_group_arn=network.frontend_target_group_arn,
                backend_target_group_arn=network.backend_target_group_arn,
                ecs_task_execution_role_arn=iam.ecs_task_execution_role_arn,
                frontend_task_role_arn=iam.frontend_task_role_arn,
                backend_task_role_arn=iam.backend_task_role_arn,
                batch_service_role_arn=iam.batch_service_role_arn,
                batch_instance_profile_arn=iam.batch_instance_profile_arn,
                kms_key_arn=key,
                load_balancer_ready=network.load_balancer_ready,
                batch_service_role_ready=iam.batch_service_role_ready,
                backend_environment={
                    "DB_HOST": storage.db_host,
                    "DB_PORT": storage.db_port,
                    "DB_NAME": storage.db_name,
                    "RAW_BUCKET": storage.bucket_names["raw-videos"],
                    "HIGHLIGHTS_BUCKET": storage.bucket_names["highlights"],
                    "THUMBNAILS_BUCKET": storage.bucket_names["thumbnails"],
                    "JOBS_QUEUE_NAME": names.jobs_queue,
                    "AWS_REGION_NAME": s.region,
                    # A FIFO jobs queue needs a MessageGroupId on every SendMessage (fifo_job_queue).
                    "QUEUE_IS_FIFO": "true" if s.fifo_job_queue else "false",
                },
                backend_secrets={
                    "DB_USERNAME": f"{storage.db_secret_arn}:username::",
                    "DB_PASSWORD": f"{storage.db_secret_arn}:password::",
                    "DJANGO_SECRET_KEY": django_secret_arn,
                },
            ),
        )
        pipeline = Pipeline(
            self,
            "pipeline",
            props=PipelineProps(
                settings=s,
                account_id=account_id,
                job_queue_arn=compute.job_queue_arn,
                batch_log_group_name=compute.batch_log_group_name,
                worker_image_url=compute.ecr_repository_urls["video-analysis"],
                batch_job_role_arn=iam.batch_job_role_arn,
                lambda_role_arns=iam.lambda_role_arns,
                lambda_role_ready=iam.lambda_role_ready,
                scheduler_role_arn=iam.scheduler_role_arn,
                kms_key_arn=key,
                private_subnet_ids=network.private_subnet_ids,
                lambda_security_group_id=security.lambda_security_group_id,
                raw_bucket_name=storage.bucket_names["raw-videos"],
                highlights_bucket_name=storage.bucket_names["highlights"],
                models_bucket_name=storage.bucket_names["analysis-models"],
                db_secret_arn=storage.db_secret_arn,
                db_host=storage.db_host,
                db_port=storage.db_port,
                db_name=storage.db_name,
                lambdas_dir=lambdas_dir,
            ),
        )
        if iam.db_scheduler_role_arn is not None:  # db_night_stop: in the storage module, beside the database
            DbNightStop(
                storage,
                "db-night-stop",
                props=DbNightStopProps(
                    settings=s,
                    db_instance_identifier=storage.db_instance_identifier,
                    scheduler_role_arn=iam.db_scheduler_role_arn,
                    kms_key_arn=key,
                ),
            )
        # Before the dashboard, which shows the API's requests, errors and latency and its functions.
        jobs_api = (
            JobsApi(
                self,
                "jobs-api",
                props=JobsApiProps(
                    settings=s,
                    account_id=account_id,
                    kms_key_arn=key,
                    raw_bucket_name=storage.bucket_names["raw-videos"],
                    raw_bucket_arn=storage.bucket_arns["raw-videos"],
                    highlights_bucket_name=storage.bucket_names["highlights"],
                    highlights_bucket_arn=storage.bucket_arns["highlights"],
                    idempotency_table_name=pipeline.idempotency_table_name,
                    idempotency_table_arn=pipeline.idempotency_table_arn,
                    job_queue_arn=compute.job_queue_arn,
                    jobs_queue_arn=pipeline.jobs_queue_arn,
                    jobs_queue_url=pipeline.jobs_queue_url,
                    functions_dlq_arn=pipeline.functions_dlq_arn,
                    alerts_topic_arn=pipeline.alerts_topic_arn,
                    private_subnet_ids=network.private_subnet_ids,
                    lambda_security_group_id=security.lambda_security_group_id,
                    lambdas_dir=lambdas_dir,
                ),
            )
            if s.jobs_api_enabled
            else None
        )
        Dashboard(
            self,
            "dashboard",
            props=DashboardProps(
                settings=s,
                jobs_queue_name=pipeline.jobs_queue_name,
                dlq_name=pipeline.dlq_name,
                function_names=pipeline.function_names
                | (
                    {f"jobs-api-{purpose}": name for purpose, name in jobs_api.function_names.items()}
                    if jobs_api
                    else {}
                ),
                submitter_log_group_name=pipeline.function_log_group_names["sqs_to_batch"],
                job_queue_arn=compute.job_queue_arn,
                batch_failed_rule_name=pipeline.batch_failed_rule_name,
                ecs_cluster_name=compute.cluster_name,
                ecs_service_names=compute.service_names,
                alb_arn_suffix=network.alb_arn_suffix,
                db_instance_identifier=storage.db_instance_identifier,
                jobs_api_dimensions=jobs_api.metric_dimensions if jobs_api else None,
            ),
        )
        ServiceAlarms(
            self,
            "service-alarms",
            props=ServiceAlarmsProps(
                settings=s,
                alerts_topic_arn=pipeline.alerts_topic_arn,
                alb_arn_suffix=network.alb_arn_suffix,
                ecs_cluster_name=compute.cluster_name,
                ecs_service_names=compute.service_names,
            ),
        )
        Budget(
            self,
            "budget",
            props=BudgetProps(
                settings=s, alerts_topic_arn=pipeline.alerts_topic_arn, alerts_topic_ready=pipeline.alerts_topic_ready
            ),
        )

        outputs: dict[str, object] = {
            "vpc_id": network.vpc_id,
            "public_subnet_ids": network.public_subnet_ids,
            "private_subnet_ids": network.private_subnet_ids,
            "alb_dns_name": network.alb_dns_name,
            "site_url": f"https://{s.domain_name}" if s.domain_name else f"http://{network.alb_dns_name}",
            "api_url": (f"https://{s.domain_name}" if s.domain_name else f"http://{network.alb_dns_name}") + "/api/",
            "db_host": storage.db_host,
            "db_secret_arn": storage.db_secret_arn,
            "bucket_names": storage.bucket_names,
            "jobs_queue_url": pipeline.jobs_queue_url,
            "jobs_dlq_url": pipeline.dlq_url,
            "job_queue_arn": compute.job_queue_arn,
            "ecr_repository_urls": compute.ecr_repository_urls,
            "ecs_cluster_name": compute.cluster_name,
            "ecs_service_names": compute.service_names,
            "security_group_ids": {
                "alb": network.alb_security_group_id,
                "ecs": security.ecs_security_group_id,
                "batch": security.batch_security_group_id,
                "rds": security.rds_security_group_id,
                "lambda": security.lambda_security_group_id,
            },
            "lambda_function_names": pipeline.function_names,
            "idempotency_table_name": pipeline.idempotency_table_name,
            "gpu_job_definition_arn": pipeline.job_definition_arns["gpu"],
            "alerts_topic_arn": pipeline.alerts_topic_arn,
            "video_events_topic_arn": pipeline.video_events_topic_arn,
            "kms_key_arn": encryption.kms_key_arn,
            "jobs_api_url": "",
            "jobs_api_client_role_arn": "",
        }
        if jobs_api is not None:
            outputs |= {"jobs_api_url": jobs_api.api_endpoint, "jobs_api_client_role_arn": jobs_api.client_role_arn}
        for name, value in outputs.items():
            TerraformOutput(self, name, value=value, description=OUTPUT_DESCRIPTIONS[name])
        # Last, so it reaches every role: the GitHub deploy role may only create roles that carry the boundary.
        attach_permissions_boundary(self, s, account_id)
        self.outputs = outputs
