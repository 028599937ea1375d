"""Pipeline: SQS jobs queue -> sqs_to_batch Lambda -> Batch jobs; failure monitor, ECR cleanup, alarms."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdktf import AssetType, ITerraformDependable, TerraformAsset
from cdktf_cdktf_provider_aws.batch_job_definition import (
    BatchJobDefinition,
    BatchJobDefinitionRetryStrategy,
    BatchJobDefinitionRetryStrategyEvaluateOnExit,
    BatchJobDefinitionTimeout,
)
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
)
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
    DynamodbTableTtl,
)
from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingScalingConfig,
)
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionDeadLetterConfig,
    LambdaFunctionEnvironment,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.scheduler_schedule import (
    SchedulerSchedule,
    SchedulerScheduleFlexibleTimeWindow,
    SchedulerScheduleTarget,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct

from deepsentinel.constructs.dashboard import RUNNABLE_AGE_METRIC, RUNNABLE_QUEUE_DIMENSION, metrics_namespace
from deepsentinel.constructs.event_patterns import batch_failed_event_pattern, db_secret_rotated_event_pattern
from deepsentinel.constructs.names import ECR_REPOSITORIES, ECS_SERVICES, LAMBDA_FUNCTIONS, ResourceNames
from deepsentinel.constructs.policies import policy_document
from deepsentinel.constructs.service_alarms import rate_alarm
from deepsentinel.lambda_package import code_archive
from deepsentinel.settings import PlatformSettings

LAMBDA_RUNTIME = "python3.12"
LAMBDA_MEMORY_MB = 256
SQS_BATCH_SIZE = 10
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# The worker's exit codes (worker_image/src/video_worker/exit_codes.py): bad input is final.
WORKER_EXIT_BAD_INPUT = 65
WORKER_EXIT_RETRYABLE = 75
GPU_JOB_RESOURCES = {"VCPU": "4", "MEMORY": "15360", "GPU": "1"}
CPU_JOB_RESOURCES = {"VCPU": "4", "MEMORY": "15360"}
# Where the golden AMI (worker_image/ami/worker-gpu.pkr.hcl) puts the weights on the host; with gpu_ami_id the job
# definitions mount it read-only at the same path and name it MODEL_DIR (the worker looks there first).
PRELOADED_MODEL_DIR = "/opt/deepsentinel/models"
PRELOADED_MODEL_VOLUME = "preloaded-models"
QUEUE_AGE_ALARM_SECONDS = 900
RUNNABLE_CHECK_MINUTES = 5
OTHER_FUNCTIONS_RESERVED_CONCURRENCY = 2  # event-driven helpers; sqs_to_batch reserves lambda_max_concurrency
QUEUE_DEPTH_ALARM_MESSAGES = 100
LAMBDA_ERROR_RATE_PERCENT = 5
ERROR_RATE_FUNCTIONS = ("sqs_to_batch",)  # alarmed on their error rate; the other functions on Errors > 0
DEFAULT_LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"


def claim_ttl_seconds(s: PlatformSettings) -> int:
    """A crashed invocation's claim must expire before SQS redelivers (visibility timeout), and not
    before a live invocation could still be submitting (the Lambda timeout)."""
    return max(s.lambda_timeout_seconds, s.queue_visibility_timeout_seconds // 2)


def alerts_topic_policy(topic_arn: str, account_id: str, s: PlatformSettings) -> str:
    """Who may publish to the alerts topic. Setting a topic policy replaces SNS's default one, so the first two
    statements keep what the default gave: the account's own principals (IAM decides, e.g. the failure monitor's
    role) and the environment's CloudWatch alarms. The third lets AWS Budgets publish the cost guard's
    notifications, as "Creating an Amazon SNS topic for budget notifications" (AWS Cost Management User Guide,
    https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html) prescribes: the
    budgets service principal, limited to this account's budgets. The topic's key must let both services use it
    too (constructs/encryption.py)."""
    same_account = {"StringEquals": {"aws:SourceAccount": account_id}}
    return policy_document(
        {
            "Sid": "AccountPrincipals",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": ["SNS:Publish", "SNS:Subscribe", "SNS:GetTopicAttributes", "SNS:ListSubscriptionsByTopic"],
            "Resource": topic_arn,
        },
        {
            "Sid": "CloudWatchAlarms",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {
                **same_account,
                "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{s.region}:{account_id}:alarm:{s.prefix}-*"},
            },
        },
        {
            "Sid": "AWSBudgetsSNSPublishingPermissions",
            "Effect": "Allow",
            "Principal": {"Service": "budgets.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {**same_account, "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{account_id}:*"}},
        },
    )


class MissingHandlerError(FileNotFoundError):
    """A Lambda folder has no handler.py: synth stops instead of deploying an empty function."""


@dataclass(frozen=True, kw_only=True)
class PipelineProps:
    settings: PlatformSettings
    account_id: str  # the alerts topic's policy names the account's alarms and budgets
    job_queue_arn: str
    batch_log_group_name: str
    worker_image_url: str  # ECR repository URL of the video-analysis image
    batch_job_role_arn: str
    lambda_role_arns: dict[str, str]  # function folder -> role ARN
    lambda_role_ready: dict[str, list[ITerraformDependable]]  # function folder -> its role and policies
    scheduler_role_arn: str  # EventBridge Scheduler's role for the scheduled functions
    kms_key_arn: str  # the environment's customer-managed key: topics, queues, table, log groups, function env
    private_subnet_ids: list[str]  # where the functions run
    lambda_security_group_id: str
    raw_bucket_name: str
    highlights_bucket_name: str
    models_bucket_name: str
    db_secret_arn: str  # RDS-managed: {"username", "password"} only
    db_host: str  # the endpoint comes from the DB instance, not from the secret
    db_port: str
    db_name: str
    lambdas_dir: Path = DEFAULT_LAMBDAS_DIR  # one folder per function, each with handler.py


class Pipeline(Construct):
    jobs_queue_url: str
    jobs_queue_arn: str
    jobs_queue_name: str
    dlq_name: str
    batch_failed_rule_name: str  # EventBridge rule on the job queue's FAILED jobs (its TriggeredRules count them)
    dlq_arn: str
    dlq_url: str
    idempotency_table_name: str
    idempotency_table_arn: str
    functions_dlq_arn: str  # failed asynchronous invocations of every function
    alerts_topic_arn: str
    alerts_topic_ready: list[ITerraformDependable]  # the topic's policy: what a publisher must wait for
    video_events_topic_arn: str
    function_names: dict[str, str]
    function_log_group_names: dict[str, str]  # function folder -> its log group (a reference: created first)
    job_definition_arns: dict[str, str]  # gpu, cpu

    def __init__(self, scope: Construct, id_: str, *, props: PipelineProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        self._s, self._names, self._props = s, ResourceNames(s), props
        self._log_group_names: dict[str, str] = {}
        missing = [f for f in LAMBDA_FUNCTIONS if not (props.lambdas_dir / f / "handler.py").is_file()]
        if missing:
            raise MissingHandlerError(
                f"Lambda folders without handler.py under {props.lambdas_dir}: "
                f"{', '.join(missing)}; each function needs <folder>/handler.py "
                "defining handler(event, context)"
            )
        n = self._names
        # FIFO option: the DLQ of a FIFO queue must be FIFO too ("Using dead-letter queues in Amazon SQS": the
        # queue types must match). Content-based deduplication: a resend of the same body within 5 minutes is
        # dropped by SQS, so senders need only a MessageGroupId (the video id), no deduplication id.
        fifo: dict[str, Any] = {"fifo_queue": True, "content_based_deduplication": True} if s.fifo_job_queue else {}
        dlq = SqsQueue(
            self,
            "jobs-dlq",
            name=n.jobs_dlq,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            kms_master_key_id=props.kms_key_arn,
            **fifo,
        )
        # Failed asynchronous invocations (EventBridge, Scheduler) of every function land here.
        self._function_dlq = SqsQueue(
            self,
            "functions-dlq",
            name=n.functions_dlq,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            kms_master_key_id=props.kms_key_arn,
        )
        queue = SqsQueue(
            self,
            "jobs-queue",
            name=n.jobs_queue,
            kms_master_key_id=props.kms_key_arn,
            visibility_timeout_seconds=s.queue_visibility_timeout_seconds,
            redrive_policy=json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": s.max_receive_count}),
            **fifo,
        )
        table = DynamodbTable(
            self,
            "idempotency-table",
            name=n.idempotency_table,
            billing_mode="PAY_PER_REQUEST",
            hash_key="video_id",
            attribute=[DynamodbTableAttribute(name="video_id", type="S")],
            ttl=DynamodbTableTtl(attribute_name="expires_at", enabled=True),
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=props.kms_key_arn),
            deletion_protection_enabled=s.deletion_protection,
        )
        # The environment's own key: CloudWatch and EventBridge cannot use the AWS managed alias/aws/sns.
        topic = SnsTopic(self, "alerts", name=n.alerts_topic, kms_master_key_id=props.kms_key_arn)
        policy = SnsTopicPolicy(
            self, "alerts-policy", arn=topic.arn, policy=alerts_topic_policy(topic.arn, props.account_id, s)
        )
        self.alerts_topic_ready = [policy]
        if s.alarm_email:
            SnsTopicSubscription(self, "alerts-email", topic_arn=topic.arn, protocol="email", endpoint=s.alarm_email)
        # Completion notifications: the worker publishes DONE/FAILED for every video it ends.
        video_events = SnsTopic(self, "video-events", name=n.video_events_topic, kms_master_key_id=props.kms_key_arn)
        self.video_events_topic_arn = video_events.arn
        if s.video_events_email:
            SnsTopicSubscription(
                self, "video-events-email", topic_arn=video_events.arn, protocol="email", endpoint=s.video_events_email
            )

        job_definitions = {
            kind: self._job_definition(kind, resources)
            for kind, resources in (("gpu", GPU_JOB_RESOURCES), ("cpu", CPU_JOB_RESOURCES))
        }
        environments = {
            "sqs_to_batch": {
                "JOB_QUEUE": props.job_queue_arn,
                "JOB_DEFINITION": n.gpu_job_definition,
                "IDEMPOTENCY_TABLE": table.name,
                "CLAIM_TTL_SECONDS": str(claim_ttl_seconds(s)),
            },
            "batch_failure_monitor": {
                "ALERT_TOPIC_ARN": topic.arn,
                "LOG_GROUP": props.batch_log_group_name,
                "IDEMPOTENCY_TABLE": table.name,
                # A job Batch ends for good (timeout, a kill on the last attempt) ends
                # its video FAILED: the row, and FAILED on the video-events topic.
                "VIDEO_EVENTS_TOPIC_ARN": video_events.arn,
                # The instance by name (its endpoint and secret are read when a job ends): the apply creates the
                # function beside the instance's 80 s instead of after them (docs/local-speed.md).
                "DB_INSTANCE": n.db_instance,
                "DB_NAME": props.db_name,
                **(
                    {"GITHUB_REPOSITORY": s.github_repository, "GITHUB_TOKEN_SECRET_ARN": s.github_token_secret_arn}
                    if s.github_repository and s.github_token_secret_arn
                    else {}
                ),
            },
            "ecr_cleanup": {
                "REPOSITORIES": ",".join(n.ecr_repository(r) for r in ECR_REPOSITORIES),
                "MAX_AGE_DAYS": "30",
                "KEEP_LATEST": str(s.ecr_keep_images),
                "DRY_RUN": "false",
            },
            # By name, not from the services and the instance: the function needs none of them to be created, so
            # the apply creates it beside the DB instance's 80 s, not after them (the rule names the secret).
            "ecs_redeploy": {
                "CLUSTER": n.ecs_cluster,
                "SERVICES": ",".join(n.ecs_service(service) for service in ECS_SERVICES),
                "DB_INSTANCE": n.db_instance,
            },
            "batch_runnable_monitor": {"JOB_QUEUE": n.batch_job_queue, "METRIC_NAMESPACE": metrics_namespace(s)},
        }
        functions = {folder: self._function(folder, environments[folder]) for folder in LAMBDA_FUNCTIONS}

        # "Batching window is not supported for FIFO queues" ("Lambda parameters for Amazon SQS event source
        # mappings"); a FIFO source also caps the batch size at 10, which SQS_BATCH_SIZE is.
        LambdaEventSourceMapping(
            self,
            "jobs-to-lambda",
            event_source_arn=queue.arn,
            function_name=functions["sqs_to_batch"].arn,
            batch_size=SQS_BATCH_SIZE,
            maximum_batching_window_in_seconds=None if s.fifo_job_queue else s.sqs_batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=LambdaEventSourceMappingScalingConfig(maximum_concurrency=s.lambda_max_concurrency),
            # CreateEventSourceMapping checks that the role may read the queue.
            depends_on=props.lambda_role_ready["sqs_to_batch"],
        )
        self.batch_failed_rule_name = self._event_rule(
            "batch-failed",
            functions["batch_failure_monitor"],
            event_pattern=batch_failed_event_pattern(props.job_queue_arn),
        )
        # Rotation of the RDS-managed secret: running backend tasks hold the old password (ECS injects secrets
        # only at task start), so a new deployment starts tasks with the new one.
        self._event_rule(
            "db-secret-rotated",
            functions["ecs_redeploy"],
            event_pattern=db_secret_rotated_event_pattern(props.db_secret_arn),
        )
        # EventBridge rule crons are UTC; Scheduler takes the time zone, like the night schedule.
        SchedulerSchedule(
            self,
            "ecr-cleanup-schedule",
            name=s.name("ecr-cleanup"),
            kms_key_arn=props.kms_key_arn,
            schedule_expression=s.ecr_cleanup_schedule,
            schedule_expression_timezone=s.schedule_timezone,
            flexible_time_window=SchedulerScheduleFlexibleTimeWindow(mode="OFF"),
            target=SchedulerScheduleTarget(arn=functions["ecr_cleanup"].arn, role_arn=props.scheduler_role_arn),
        )
        self._alarms(queue, dlq, functions, topic.arn)
        SchedulerSchedule(
            self,
            "runnable-jobs-check-schedule",
            name=s.name("runnable-jobs-check"),
            kms_key_arn=props.kms_key_arn,
            schedule_expression=f"rate({RUNNABLE_CHECK_MINUTES} minutes)",
            flexible_time_window=SchedulerScheduleFlexibleTimeWindow(mode="OFF"),
            target=SchedulerScheduleTarget(
                arn=functions["batch_runnable_monitor"].arn, role_arn=props.scheduler_role_arn
            ),
        )
        self._stuck_jobs_alarm(topic.arn)

        self.jobs_queue_url = queue.url
        self.jobs_queue_arn = queue.arn
        self.jobs_queue_name = queue.name
        self.dlq_name = dlq.name
        self.dlq_arn = dlq.arn
        self.dlq_url = dlq.url
        self.idempotency_table_name = table.name
        self.idempotency_table_arn = table.arn
        self.functions_dlq_arn = self._function_dlq.arn
        self.alerts_topic_arn = topic.arn
        self.function_names = {folder: fn.function_name for folder, fn in functions.items()}
        self.function_log_group_names = dict(self._log_group_names)
        self.job_definition_arns = job_definitions

    def _function(self, folder: str, environment: dict[str, str]) -> LambdaFunction:
        s, props = self._s, self._props
        # The zip of the folder, or of a staged copy with the pure-Python libraries its vendor.txt pins.
        code = TerraformAsset(
            self, f"{folder}-code", path=str(code_archive(props.lambdas_dir / folder)), type=AssetType.FILE
        )
        log_group = CloudwatchLogGroup(
            self,
            f"{folder}-logs",
            name=self._names.function_log_group(folder),
            retention_in_days=s.log_retention_days,
            kms_key_id=props.kms_key_arn,
        )
        self._log_group_names[folder] = log_group.name
        reserved = s.lambda_max_concurrency if folder == "sqs_to_batch" else OTHER_FUNCTIONS_RESERVED_CONCURRENCY
        return LambdaFunction(
            self,
            folder,
            function_name=self._names.function(folder),
            role=props.lambda_role_arns[folder],
            runtime=LAMBDA_RUNTIME,
            handler="handler.handler",
            filename=code.path,
            source_code_hash=code.asset_hash,
            memory_size=LAMBDA_MEMORY_MB,
            timeout=s.lambda_timeout_seconds,
            environment=LambdaFunctionEnvironment(variables=environment),
            kms_key_arn=props.kms_key_arn,
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            dead_letter_config=LambdaFunctionDeadLetterConfig(target_arn=self._function_dlq.arn),
            reserved_concurrent_executions=reserved if s.lambda_reserved_concurrency else None,
            vpc_config=LambdaFunctionVpcConfig(
                subnet_ids=props.private_subnet_ids, security_group_ids=[props.lambda_security_group_id]
            ),
            # Its own log group first (or Lambda creates an unmanaged one), and its role's
            # policies (a first invocation must not run without them).
            depends_on=[log_group, *props.lambda_role_ready[folder]],
        )

    def _job_definition(self, kind: str, resources: dict[str, str]) -> str:
        s, props, n = self._s, self._props, self._names
        # Both definitions run in the one (GPU) compute environment, so the CPU fallback lands on the AMI too.
        preloaded = s.gpu_ami_id is not None
        container = {
            "image": f"{props.worker_image_url}:{s.worker_image_tag}",
            "jobRoleArn": props.batch_job_role_arn,
            "resourceRequirements": [{"type": k, "value": v} for k, v in resources.items()],
            "environment": [
                {"name": k, "value": v}
                for k, v in sorted(
                    {
                        "RAW_BUCKET": props.raw_bucket_name,
                        "HIGHLIGHTS_BUCKET": props.highlights_bucket_name,
                        "MODEL_URI": f"s3://{props.models_bucket_name}/{s.model_key}",
                        "DB_SECRET_ARN": props.db_secret_arn,
                        "DB_HOST": props.db_host,
                        "DB_PORT": props.db_port,
                        "DB_NAME": props.db_name,
                        # The worker marks the video FAILED itself when a retryable error hits the last attempt.
                        "JOB_ATTEMPTS": str(s.job_attempts),
                        "VIDEO_EVENTS_TOPIC_ARN": self.video_events_topic_arn,
                        "SAMPLE_FPS": "5",
                        "DEVICE": "cuda" if kind == "gpu" else "cpu",
                        **({"MODEL_DIR": PRELOADED_MODEL_DIR} if preloaded else {}),
                    }.items()
                )
            ],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": props.batch_log_group_name}},
        }
        if preloaded:
            # A host volume (AWS Batch API Reference: Volume, Host, MountPoint); only the golden AMI has the weights
            # there, and on another host Docker would create the directory empty: the worker then downloads.
            container["volumes"] = [{"name": PRELOADED_MODEL_VOLUME, "host": {"sourcePath": PRELOADED_MODEL_DIR}}]
            container["mountPoints"] = [
                {"sourceVolume": PRELOADED_MODEL_VOLUME, "containerPath": PRELOADED_MODEL_DIR, "readOnly": True}
            ]
        definition = BatchJobDefinition(
            self,
            f"{kind}-job-definition",
            name=n.gpu_job_definition if kind == "gpu" else n.cpu_job_definition,
            type="container",
            platform_capabilities=["EC2"],
            container_properties=json.dumps(container),
            propagate_tags=True,
            retry_strategy=BatchJobDefinitionRetryStrategy(
                attempts=s.job_attempts,
                evaluate_on_exit=[
                    BatchJobDefinitionRetryStrategyEvaluateOnExit(
                        on_exit_code=str(WORKER_EXIT_BAD_INPUT), action="EXIT"
                    ),
                    BatchJobDefinitionRetryStrategyEvaluateOnExit(
                        on_exit_code=str(WORKER_EXIT_RETRYABLE), action="RETRY"
                    ),
                    BatchJobDefinitionRetryStrategyEvaluateOnExit(on_status_reason="Host EC2*", action="RETRY"),
                ],
            ),
            timeout=BatchJobDefinitionTimeout(attempt_duration_seconds=s.job_timeout_seconds),
        )
        return definition.arn

    def _event_rule(self, purpose: str, function: LambdaFunction, *, event_pattern: str) -> str:
        target_rule = CloudwatchEventRule(
            self, f"{purpose}-rule", name=self._s.name(purpose), event_pattern=event_pattern
        )
        CloudwatchEventTarget(self, f"{purpose}-target", rule=target_rule.name, arn=function.arn)
        LambdaPermission(
            self,
            f"{purpose}-permission",
            statement_id="AllowEventBridge",
            action="lambda:InvokeFunction",
            function_name=function.function_name,
            principal="events.amazonaws.com",
            source_arn=target_rule.arn,
        )
        return target_rule.name

    def _alarms(self, queue: SqsQueue, dlq: SqsQueue, functions: dict[str, LambdaFunction], topic_arn: str) -> None:
        alarms = [
            ("dlq-depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": dlq.name}, "Maximum", 0),
            (
                "queue-age",
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                {"QueueName": queue.name},
                "Maximum",
                QUEUE_AGE_ALARM_SECONDS,
            ),
            (
                "queue-depth",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": queue.name},
                "Maximum",
                QUEUE_DEPTH_ALARM_MESSAGES,
            ),
            # The event-driven helpers run a few times a week: every error of theirs is worth a message.
            *[
                (
                    f"{folder.replace('_', '-')}-errors",
                    "AWS/Lambda",
                    "Errors",
                    {"FunctionName": fn.function_name},
                    "Sum",
                    0,
                )
                for folder, fn in functions.items()
                if folder not in ERROR_RATE_FUNCTIONS
            ],
        ]
        for purpose, namespace, metric, dimensions, statistic, threshold in alarms:
            CloudwatchMetricAlarm(
                self,
                f"{purpose}-alarm",
                alarm_name=self._s.name(purpose),
                namespace=namespace,
                metric_name=metric,
                dimensions=dimensions,
                statistic=statistic,
                period=300,
                evaluation_periods=1,
                threshold=threshold,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[topic_arn],
                ok_actions=[topic_arn],
            )
        for folder in ERROR_RATE_FUNCTIONS:
            self._error_rate_alarm(folder, functions[folder], topic_arn)

    def _stuck_jobs_alarm(self, topic_arn: str) -> None:
        """A Batch job waiting in RUNNABLE longer than job_runnable_alarm_minutes: Batch has no metric for that
        ("Jobs stuck in a RUNNABLE status", AWS Batch User Guide), so batch_runnable_monitor measures it every
        RUNNABLE_CHECK_MINUTES (its module docstring says why not the queue's jobStateTimeLimitActions).

        Missing data is breaching: the function publishes a value on every run, 0 for an empty queue, so a gap
        means the watcher is not running (its errors have their own alarm; a deleted rule or a throttled function
        has none). Two periods of two must breach, so one run EventBridge delivers late is not an alarm.
        """
        s = self._s
        CloudwatchMetricAlarm(
            self,
            "jobs-stuck-runnable-alarm",
            alarm_name=s.name("jobs-stuck-runnable"),
            namespace=metrics_namespace(s),
            metric_name=RUNNABLE_AGE_METRIC,
            dimensions={RUNNABLE_QUEUE_DIMENSION: self._names.batch_job_queue},
            statistic="Maximum",
            period=RUNNABLE_CHECK_MINUTES * 60,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=s.job_runnable_alarm_minutes * 60,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="breaching",
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
            alarm_description=f"A Batch job has waited in RUNNABLE over {s.job_runnable_alarm_minutes} minutes, or "
            f"the watcher stopped reporting: see the statusReason in the log of "
            f"{self._names.function('batch_runnable_monitor')} and the G/VT vCPU quotas "
            "(deepsentinel preflight)",
        )

    def _error_rate_alarm(self, folder: str, function: LambdaFunction, topic_arn: str) -> None:
        """Errors / Invocations x 100 above LAMBDA_ERROR_RATE_PERCENT in 5 minutes (metric math: "Using metric
        math" in the CloudWatch User Guide). The high-volume consumer gets a rate instead of Errors > 0, which one
        throttled retry in thousands of messages would trip (missing data: service_alarms.rate_alarm says why).
        """
        purpose = f"{folder.replace('_', '-')}-error-rate"
        rate_alarm(
            self,
            f"{purpose}-alarm",
            alarm_name=self._s.name(purpose),
            description=f"{function.function_name}: more than {LAMBDA_ERROR_RATE_PERCENT} % of invocations "
            "failed in 5 minutes",
            namespace="AWS/Lambda",
            dimensions={"FunctionName": function.function_name},
            part=("errors", "Errors"),
            whole=("invocations", "Invocations"),
            rate_id="error_rate",
            label="error rate (%)",
            threshold_percent=LAMBDA_ERROR_RATE_PERCENT,
            alerts_topic_arn=topic_arn,
        )
