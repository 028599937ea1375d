"""IAM: service roles (ECS, Batch, one per Lambda), human groups and users, and a plan-only CI user.

Data-service permissions name their resources; `*` resources appear only for actions AWS does not
scope to a resource (ECR auth token, Batch/ECS describe and list calls).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.iam_group import IamGroup
from cdktf_cdktf_provider_aws.iam_group_policy import IamGroupPolicy
from cdktf_cdktf_provider_aws.iam_group_policy_attachment import IamGroupPolicyAttachment
from cdktf_cdktf_provider_aws.iam_instance_profile import IamInstanceProfile
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.iam_user import IamUser
from cdktf_cdktf_provider_aws.iam_user_group_membership import IamUserGroupMembership
from cdktf_cdktf_provider_aws.iam_user_policy import IamUserPolicy
from cdktf_cdktf_provider_aws.iam_user_policy_attachment import IamUserPolicyAttachment
from constructs import Construct

from deepsentinel.constructs.names import ECR_REPOSITORIES, ResourceNames
from deepsentinel.constructs.policies import Statement, allow, assume_role_policy, policy_document
from deepsentinel.settings import PlatformSettings

AWS_MANAGED = "arn:aws:iam::aws:policy"


@dataclass(frozen=True, kw_only=True)
class IamProps:
    settings: PlatformSettings
    account_id: str
    bucket_arns: dict[str, str]  # purpose -> ARN, from storage
    db_secret_arn: str
    django_secret_arn: str


class Iam(Construct):
    ecs_task_execution_role_arn: str
    backend_task_role_arn: str
    frontend_task_role_arn: str
    batch_service_role_arn: str
    batch_instance_profile_arn: str
    batch_job_role_arn: str
    lambda_role_arns: dict[str, str]  # function folder -> role ARN
    group_names: dict[str, str]
    ci_user_name: str

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
        job_definition_arns = [arn("batch", f"job-definition/{d}") for d in (n.gpu_job_definition,
                                                                              n.cpu_job_definition)]
        job_definition_arns += [f"{a}:*" for a in job_definition_arns]  # submit_job names a revision
        repository_arns = [arn("ecr", f"repository/{n.ecr_repository(r)}") for r in ECR_REPOSITORIES]

        execution = self._role("ecs-task-execution", "ecs-tasks.amazonaws.com",
                               managed=["service-role/AmazonECSTaskExecutionRolePolicy"],
                               statements=[allow(["secretsmanager:GetSecretValue"], secrets, "ReadAppSecrets")])
        backend = self._role("backend-task", "ecs-tasks.amazonaws.com", statements=[
            allow(["s3:GetObject", "s3:PutObject"], [f"{buckets['raw-videos']}/*"], "PresignUploads"),
            allow(["s3:GetObject"], [f"{buckets['highlights']}/*", f"{buckets['thumbnails']}/*"], "ReadResults"),
            allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], [jobs_queue_arn], "SubmitJobs"),
            allow(["secretsmanager:GetSecretValue"], secrets, "ReadAppSecrets")])
        frontend = self._role("frontend-task", "ecs-tasks.amazonaws.com")
        batch_service = self._role("batch-service", "batch.amazonaws.com",
                                   managed=["service-role/AWSBatchServiceRole"])
        batch_instance = self._role("batch-instance", "ec2.amazonaws.com",
                                    managed=["service-role/AmazonEC2ContainerServiceforEC2Role"])
        profile = IamInstanceProfile(self, "batch-instance-profile", name=s.name("batch-instance"),
                                     role=batch_instance.name)
        batch_job = self._role("batch-job", "ecs-tasks.amazonaws.com", statements=[
            allow(["s3:GetObject"], [f"{buckets['raw-videos']}/*", f"{buckets['analysis-models']}/*"], "ReadInputs"),
            allow(["s3:PutObject"], [f"{buckets['highlights']}/*", f"{buckets['thumbnails']}/*"], "WriteResults"),
            allow(["secretsmanager:GetSecretValue"], [props.db_secret_arn], "ReadDbSecret")])
        lambda_statements: dict[str, list[Statement]] = {
            "sqs_to_batch": [
                allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                       "sqs:ChangeMessageVisibility"], [jobs_queue_arn], "ConsumeJobs"),
                allow(["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"],
                      [arn("dynamodb", f"table/{n.idempotency_table}")], "ClaimVideos"),
                allow(["batch:SubmitJob"], [job_queue_arn, *job_definition_arns], "SubmitJobs")],
            "batch_failure_monitor": [
                allow(["logs:GetLogEvents"], [arn("logs", f"log-group:{n.batch_log_group}:*")], "ReadJobLogs"),
                allow(["sns:Publish"], [arn("sns", n.alerts_topic)], "PublishAlerts"),
                *([allow(["secretsmanager:GetSecretValue"], [s.github_token_secret_arn], "ReadGithubToken")]
                  if s.github_token_secret_arn else [])],
            "ecr_cleanup": [
                allow(["ecr:DescribeImages", "ecr:ListImages", "ecr:BatchDeleteImage"], repository_arns,
                      "CleanRepositories"),
                # Describe/list calls of Batch and ECS cannot be scoped to a resource ARN.
                allow(["batch:DescribeJobDefinitions", "ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition"],
                      "*", "FindImagesInUse")],
        }
        self.lambda_role_arns = {}
        for folder, statements in lambda_statements.items():
            log_group = arn("logs", f"log-group:{n.function_log_group(folder)}:*")
            role = self._role(f"lambda-{folder.replace('_', '-')}", "lambda.amazonaws.com", statements=[
                allow(["logs:CreateLogStream", "logs:PutLogEvents"], [log_group], "WriteOwnLogs"), *statements])
            self.lambda_role_arns[folder] = role.arn

        self._people(s, arn, repository_arns)
        self.ecs_task_execution_role_arn = execution.arn
        self.backend_task_role_arn = backend.arn
        self.frontend_task_role_arn = frontend.arn
        self.batch_service_role_arn = batch_service.arn
        self.batch_instance_profile_arn = profile.arn
        self.batch_job_role_arn = batch_job.arn

    def _role(self, purpose: str, service: str, *, managed: tuple[str, ...] | list[str] = (),
              statements: list[Statement] | None = None) -> IamRole:
        role = IamRole(self, f"{purpose}-role", name=self._s.name(purpose),
                       assume_role_policy=assume_role_policy(service), tags={"Name": self._s.name(purpose)})
        for policy in managed:
            IamRolePolicyAttachment(self, f"{purpose}-{policy.rsplit('/', 1)[-1]}", role=role.name,
                                    policy_arn=f"{AWS_MANAGED}/{policy}")
        if statements:
            IamRolePolicy(self, f"{purpose}-policy", name=purpose, role=role.id,
                          policy=policy_document(*statements))
        return role

    def _people(self, s: PlatformSettings, arn: "_ArnBuilder", repository_arns: list[str]) -> None:
        admin = IamGroup(self, "admin-group", name=s.name("admins"))
        developer = IamGroup(self, "developer-group", name=s.name("developers"))
        IamGroupPolicyAttachment(self, "admin-access", group=admin.name,
                                 policy_arn=f"{AWS_MANAGED}/AdministratorAccess")
        IamGroupPolicyAttachment(self, "developer-read-only", group=developer.name,
                                 policy_arn=f"{AWS_MANAGED}/ReadOnlyAccess")
        IamGroupPolicy(self, "developer-push-images", name="push-images", group=developer.name,
                       policy=policy_document(
                           allow(["ecr:GetAuthorizationToken"], "*", "EcrLogin"),
                           allow(["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                                  "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage"],
                                 repository_arns, "PushProjectImages")))
        for user_name in s.user_names:
            user = IamUser(self, f"user-{user_name}", name=user_name, force_destroy=True,
                           tags={"Name": user_name})
            groups = [developer.name] + ([admin.name] if user_name in s.admin_user_names else [])
            IamUserGroupMembership(self, f"user-{user_name}-groups", user=user.name, groups=groups)
        ci = IamUser(self, "ci-user", name=s.name(s.ci_user_name), force_destroy=True,
                     tags={"Name": s.name(s.ci_user_name), "Purpose": "terraform plan in CI"})
        IamUserPolicyAttachment(self, "ci-read-only", user=ci.name, policy_arn=f"{AWS_MANAGED}/ReadOnlyAccess")
        # Plan-only: read the state and take the lock; no write to anything else.
        state_bucket = f"arn:aws:s3:::{s.state_bucket_name}"
        IamUserPolicy(self, "ci-plan", name="terraform-plan", user=ci.name, policy=policy_document(
            allow(["s3:ListBucket"], [state_bucket], "ListState"),
            allow(["s3:GetObject"], [f"{state_bucket}/*"], "ReadState"),
            allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                  [arn("dynamodb", f"table/{s.state_lock_table_name}")], "StateLock")))
        self.group_names = {"admin": admin.name, "developer": developer.name}
        self.ci_user_name = ci.name


class _ArnBuilder:
    """ARNs of resources named by `ResourceNames`, in this stack's region and account."""

    def __init__(self, region: str, account_id: str) -> None:
        self._region, self._account = region, account_id

    def __call__(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self._region}:{self._account}:{resource}"
