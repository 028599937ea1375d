"""IAM: the environment's service roles (ECS, Batch, one per Lambda).

Data-service permissions name their resources; `*` resources appear only for actions AWS does not
scope to a resource (ECR auth token, Batch/ECS describe and list calls, Bedrock Rerank). People (groups, users)
and the GitHub OIDC roles have account-wide names and live in the account stack (constructs/people.py,
constructs/github_oidc.py); with github_repository set every role here carries the account's permissions
boundary (github_oidc.attach_permissions_boundary).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.iam_instance_profile import IamInstanceProfile
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from deepsentinel.aws_catalog import BEDROCK_INFERENCE_PROFILE_PREFIXES
from deepsentinel.constructs.dashboard import metrics_namespace
from deepsentinel.constructs.encryption import PUBLISH_KEY_ACTIONS
from deepsentinel.constructs.names import ECR_REPOSITORIES, ECS_SERVICES, LAMBDA_FUNCTIONS, ResourceNames
from deepsentinel.constructs.policies import Statement, allow, assume_role_policy, policy_document
from deepsentinel.settings import PlatformSettings

AWS_MANAGED = "arn:aws:iam::aws:policy"
# Functions run in the VPC (network interfaces) and send X-Ray traces: AWS's managed policies for exactly that.
LAMBDA_MANAGED_POLICIES = ("service-role/AWSLambdaVPCAccessExecutionRole", "AWSXRayDaemonWriteAccess")


@dataclass(frozen=True, kw_only=True)
class IamProps:
    settings: PlatformSettings
    account_id: str
    bucket_arns: dict[str, str]  # purpose -> ARN, from storage
    db_secret_arn: str  # RDS-managed, encrypted with the environment's key
    # The account stack's (app_secrets.py), encrypted with the AWS managed aws/secretsmanager key, whose key policy
    # lets the account's principals decrypt through Secrets Manager: reading it needs no KMS grant.
    django_secret_arn: str
    kms_key_arn: str  # the environment's key: publishers to its encrypted topics need it


class Iam(Construct):
    ecs_task_execution_role_arn: str
    backend_task_role_arn: str
    frontend_task_role_arn: str
    batch_service_role_arn: str
    batch_instance_profile_arn: str
    batch_job_role_arn: str
    lambda_role_arns: dict[str, str]  # function folder -> role ARN
    scheduler_role_arn: str  # EventBridge Scheduler: invokes the scheduled functions
    db_scheduler_role_arn: str | None  # EventBridge Scheduler: stops/starts the DB (db_night_stop); None: off
    batch_service_role_ready: list[ITerraformDependable]  # the role with its policy attached
    lambda_role_ready: dict[str, list[ITerraformDependable]]  # function folder -> its role's policies

    def __init__(self, scope: Construct, id_: str, *, props: IamProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        self._s, self._names = s, ResourceNames(s)
        arn = _ArnBuilder(s.region, props.account_id)
        n = self._names
        buckets = props.bucket_arns
        secrets = [props.db_secret_arn, props.django_secret_arn]
        jobs_queue_arn = arn("sqs", n.jobs_queue)
        job_queue_arn = arn("batch", f"job-queue/{n.batch_job_queue}")
        job_definition_arns = [
            arn("batch", f"job-definition/{d}") for d in (n.gpu_job_definition, n.cpu_job_definition)
        ]
        job_definition_arns += [f"{a}:*" for a in job_definition_arns]  # submit_job names a revision
        repository_arns = [arn("ecr", f"repository/{n.ecr_repository(r)}") for r in ECR_REPOSITORIES]

        # Data encrypted with the environment's key (objects, messages, the DB secret) needs the key too.
        use_key = allow(PUBLISH_KEY_ACTIONS, [props.kms_key_arn], "UseEnvironmentKey")
        execution, _ = self._role(
            "ecs-task-execution",
            "ecs-tasks.amazonaws.com",
            managed=["service-role/AmazonECSTaskExecutionRolePolicy"],
            statements=[allow(["secretsmanager:GetSecretValue"], secrets, "ReadAppSecrets"), use_key],
        )
        backend, _ = self._role(
            "backend-task",
            "ecs-tasks.amazonaws.com",
            statements=[
                allow(["s3:GetObject", "s3:PutObject"], [f"{buckets['raw-videos']}/*"], "PresignUploads"),
                allow(["s3:GetObject"], [f"{buckets['highlights']}/*", f"{buckets['thumbnails']}/*"], "ReadResults"),
                # Deleting a video removes its objects everywhere (on these versioned buckets: a delete marker; the
                # old versions expire with the lifecycle's noncurrent-version rule).
                allow(
                    ["s3:DeleteObject"],
                    [f"{buckets[p]}/*" for p in ("raw-videos", "thumbnails", "highlights")],
                    "DeleteVideoObjects",
                ),
                allow(["s3:PutObject"], [f"{buckets['thumbnails']}/*"], "WriteThumbnails"),
                allow(["s3:ListBucket"], [buckets["highlights"]], "ListHighlights"),
                allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], [jobs_queue_arn], "SubmitJobs"),
                allow(["secretsmanager:GetSecretValue"], secrets, "ReadAppSecrets"),
                use_key,
                *bedrock_statements(s, props.account_id),
            ],
        )
        frontend, _ = self._role("frontend-task", "ecs-tasks.amazonaws.com")
        batch_service, self.batch_service_role_ready = self._role(
            "batch-service", "batch.amazonaws.com", managed=["service-role/AWSBatchServiceRole"]
        )
        batch_instance, _ = self._role(
            "batch-instance", "ec2.amazonaws.com", managed=["service-role/AmazonEC2ContainerServiceforEC2Role"]
        )
        profile = IamInstanceProfile(
            self, "batch-instance-profile", name=s.name("batch-instance"), role=batch_instance.name
        )
        batch_job, _ = self._role(
            "batch-job",
            "ecs-tasks.amazonaws.com",
            statements=[
                allow(
                    ["s3:GetObject"], [f"{buckets['raw-videos']}/*", f"{buckets['analysis-models']}/*"], "ReadInputs"
                ),
                # Without ListBucket, S3 answers a missing key with 403 AccessDenied instead of 404 NoSuchKey.
                allow(["s3:ListBucket"], [buckets["raw-videos"], buckets["analysis-models"]], "TellMissingInputs"),
                allow(["s3:PutObject"], [f"{buckets['highlights']}/*", f"{buckets['thumbnails']}/*"], "WriteResults"),
                allow(["secretsmanager:GetSecretValue"], [props.db_secret_arn], "ReadDbSecret"),
                allow(["sns:Publish"], [arn("sns", n.video_events_topic)], "NotifyVideoEvents"),
                use_key,
            ],
        )
        lambda_statements: dict[str, list[Statement]] = {
            "sqs_to_batch": [
                allow(
                    [
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:GetQueueAttributes",
                        "sqs:ChangeMessageVisibility",
                    ],
                    [jobs_queue_arn],
                    "ConsumeJobs",
                ),
                allow(
                    ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"],
                    [arn("dynamodb", f"table/{n.idempotency_table}")],
                    "ClaimVideos",
                ),
                allow(["batch:SubmitJob"], [job_queue_arn, *job_definition_arns], "SubmitJobs"),
                # Before re-submitting on an expired claim, adopt the video's job if it exists; ListJobs
                # has no resource-level permissions.
                allow(["batch:ListJobs"], "*", "FindSubmittedJobs"),
                use_key,
            ],
            "batch_failure_monitor": [
                allow(["logs:GetLogEvents"], [arn("logs", f"log-group:{n.batch_log_group}:*")], "ReadJobLogs"),
                allow(["sns:Publish"], [arn("sns", n.alerts_topic)], "PublishAlerts"),
                use_key,
                allow(["dynamodb:DeleteItem"], [arn("dynamodb", f"table/{n.idempotency_table}")], "ReleaseClaims"),
                # A job Batch ended for good: its video's row set FAILED (the instance's endpoint and RDS-managed
                # secret read when it happens; the secret in db_secret_statements) and FAILED published for it, as
                # the worker does.
                allow(["rds:DescribeDBInstances"], [arn("rds", f"db:{n.db_instance}")], "FindTheDatabase"),
                allow(["sns:Publish"], [arn("sns", n.video_events_topic)], "NotifyVideoEvents"),
                *(
                    [allow(["secretsmanager:GetSecretValue"], [s.github_token_secret_arn], "ReadGithubToken")]
                    if s.github_token_secret_arn
                    else []
                ),
            ],
            "ecr_cleanup": [
                allow(
                    ["ecr:DescribeImages", "ecr:ListImages", "ecr:BatchDeleteImage"],
                    repository_arns,
                    "CleanRepositories",
                ),
                # Describe/list calls of Batch and ECS cannot be scoped to a resource ARN.
                allow(
                    ["batch:DescribeJobDefinitions", "ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition"],
                    "*",
                    "FindImagesInUse",
                ),
            ],
            "ecs_redeploy": [
                allow(
                    ["ecs:UpdateService"],
                    [arn("ecs", f"service/{n.ecs_cluster}/{n.ecs_service(svc)}") for svc in ECS_SERVICES],
                    "RestartServices",
                ),
                # which secret is the instance's: read when a rotation comes (lambdas/ecs_redeploy)
                allow(["rds:DescribeDBInstances"], [arn("rds", f"db:{n.db_instance}")], "ReadDbMasterSecretArn"),
            ],
            "batch_runnable_monitor": [
                # ListJobs and DescribeJobs have no resource-level permissions ("Supported resource-level
                # permissions for AWS Batch API actions": actions not listed there take "*").
                allow(["batch:ListJobs", "batch:DescribeJobs"], "*", "ReadWaitingJobs"),
                # PutMetricData has no resource either; the namespace condition keeps it to the environment's own
                # ("Using condition keys to limit access to CloudWatch namespaces", CloudWatch User Guide).
                allow(
                    ["cloudwatch:PutMetricData"],
                    "*",
                    "PublishRunnableAge",
                    Condition={"StringEquals": {"cloudwatch:namespace": metrics_namespace(s)}},
                ),
            ],
        }
        # What names the DB instance's secret exists only once the instance does (its 80 s): in a policy of its own
        # that the function does not wait for, so the apply creates the function beside the instance. Until the
        # policy exists (a first apply's minute or so, when no job can have ended yet) the function reports the row
        # update failed and still alerts and publishes FAILED.
        db_secret_statements = {
            # encrypted with the environment's key, which UseEnvironmentKey grants
            "batch_failure_monitor": [allow(["secretsmanager:GetSecretValue"], [props.db_secret_arn], "ReadDbSecret")]
        }
        self.lambda_role_arns, self.lambda_role_ready = {}, {}
        for folder in LAMBDA_FUNCTIONS:
            log_group = arn("logs", f"log-group:{n.function_log_group(folder)}:*")
            own = lambda_statements[folder]
            role, ready = self._role(
                n.lambda_role(folder),
                "lambda.amazonaws.com",
                managed=LAMBDA_MANAGED_POLICIES,
                statements=[
                    allow(["logs:CreateLogStream", "logs:PutLogEvents"], [log_group], "WriteOwnLogs"),
                    # the shared DLQ is encrypted with the environment's key
                    allow(["sqs:SendMessage"], [arn("sqs", n.functions_dlq)], "DeadLetters"),
                    *([] if use_key in own else [use_key]),
                    *own,
                ],
            )
            self.lambda_role_arns[folder] = role.arn
            self.lambda_role_ready[folder] = ready
            if folder in db_secret_statements:
                IamRolePolicy(
                    self,
                    f"{n.lambda_role(folder)}-db-secret-policy",
                    name="db-secret",
                    role=role.id,
                    policy=policy_document(*db_secret_statements[folder]),
                )

        scheduler, _ = self._role(
            "scheduler",
            "scheduler.amazonaws.com",
            statements=[
                allow(
                    ["lambda:InvokeFunction"],
                    [
                        arn("lambda", f"function:{n.function(folder)}")
                        for folder in ("ecr_cleanup", "batch_runnable_monitor")
                    ],
                    "InvokeScheduledFunctions",
                ),
                allow(["kms:Decrypt"], [props.kms_key_arn], "ReadEncryptedSchedules"),
            ],
        )
        self.scheduler_role_arn = scheduler.arn
        self.db_scheduler_role_arn = None
        if s.db_night_stop:
            # The database's night stop (constructs/db_night_stop.py): Scheduler's universal target calls the RDS
            # API with this role, which may stop and start exactly the environment's instance.
            db_scheduler, _ = self._role(
                "db-night-stop",
                "scheduler.amazonaws.com",
                statements=[
                    allow(
                        ["rds:StopDBInstance", "rds:StartDBInstance"],
                        [arn("rds", f"db:{n.db_instance}")],
                        "StopAndStartTheDatabase",
                    ),
                    allow(["kms:Decrypt"], [props.kms_key_arn], "ReadEncryptedSchedules"),
                ],
            )
            self.db_scheduler_role_arn = db_scheduler.arn
        self.ecs_task_execution_role_arn = execution.arn
        self.backend_task_role_arn = backend.arn
        self.frontend_task_role_arn = frontend.arn
        self.batch_service_role_arn = batch_service.arn
        self.batch_instance_profile_arn = profile.arn
        self.batch_job_role_arn = batch_job.arn

    def _role(
        self,
        purpose: str,
        service: str,
        *,
        managed: tuple[str, ...] | list[str] = (),
        statements: list[Statement] | None = None,
    ) -> tuple[IamRole, list[ITerraformDependable]]:
        """The role, and its policies: what a resource using the role must wait for (IAM is not in the
        role's reference, so Terraform would otherwise create both at once)."""
        role = IamRole(
            self,
            f"{purpose}-role",
            name=self._s.name(purpose),
            assume_role_policy=assume_role_policy(service),
            tags={"Name": self._s.name(purpose)},
        )
        ready: list[ITerraformDependable] = [role]
        for policy in managed:
            ready.append(
                IamRolePolicyAttachment(
                    self, f"{purpose}-{policy.rsplit('/', 1)[-1]}", role=role.name, policy_arn=f"{AWS_MANAGED}/{policy}"
                )
            )
        if statements:
            ready.append(
                IamRolePolicy(
                    self, f"{purpose}-policy", name=purpose, role=role.id, policy=policy_document(*statements)
                )
            )
        return role, ready


# What the backend may do with Bedrock models: answers stream, embeddings do not (one statement for both).
BEDROCK_INVOKE_ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]


def bedrock_model_arns(region: str, account_id: str, model_id: str) -> list[str]:
    """The resources InvokeModel on `model_id` names: the foundation model in `region`; for a cross-Region inference
    profile id (`apac.anthropic.claude-...`) the profile in `region` and its model in every Region the profile may
    route to ("Prerequisites for inference profiles", Bedrock User Guide: with a profile in Resource, the foundation
    model must be named in each of its Regions; AWS changes that list, so the Region is a wildcard, the model exact).
    """
    prefix, _, model = model_id.partition(".")
    if prefix in BEDROCK_INFERENCE_PROFILE_PREFIXES:
        return [
            f"arn:aws:bedrock:{region}:{account_id}:inference-profile/{model_id}",
            f"arn:aws:bedrock:*::foundation-model/{model}",
        ]
    return [f"arn:aws:bedrock:{region}::foundation-model/{model_id}"]


def bedrock_statements(s: PlatformSettings, account_id: str) -> list[Statement]:
    """Invoke the text and embedding models; Rerank with the reranker in its Region. Rerank needs `bedrock:Rerank`,
    which has no resource-level permissions, and InvokeModel on the reranker ("Permissions for reranking in Amazon
    Bedrock", Bedrock User Guide)."""
    models = dict.fromkeys(
        arn
        for model_id in (s.bedrock_text_model_id, s.bedrock_embedding_model_id)
        for arn in bedrock_model_arns(s.region, account_id, model_id)
    )
    statements = [allow(BEDROCK_INVOKE_ACTIONS, list(models), "InvokeBedrockModels")]
    if s.bedrock_rerank_model_id:
        statements += [
            allow(["bedrock:Rerank"], "*", "RerankSearchResults"),
            allow(
                ["bedrock:InvokeModel"],
                [f"arn:aws:bedrock:{s.bedrock_rerank_region}::foundation-model/{s.bedrock_rerank_model_id}"],
                "InvokeRerankModel",
            ),
        ]
    return statements


class _ArnBuilder:
    """ARNs of resources named by `ResourceNames`, in this stack's region and account."""

    def __init__(self, region: str, account_id: str) -> None:
        self._region, self._account = region, account_id

    def __call__(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self._region}:{self._account}:{resource}"
