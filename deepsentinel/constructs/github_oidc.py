"""GitHub OIDC: the roles the workflows assume, created once per account like `cdk bootstrap`'s deployment roles.

With `github_repository` set, the account stack holds GitHub's OIDC provider (or uses the account's existing one,
`github_oidc_provider_arn`: an account has at most one provider per URL) and, per environment, three roles, each
trusting exactly the runs that need it ("OpenID Connect reference", example subject claims, GitHub Docs):

- plan (`repo:<owner>/<repo>:pull_request`): ReadOnlyAccess and the environment's state and lock object; no data
  objects, and nothing of Secrets Manager beyond ReadOnlyAccess' metadata (the Django key is the account stack's,
  constructs/app_secrets.py, so an environment's plan neither generates nor reads it). Dev's, which the
  pull-request workflow assumes, may also invoke the review's default summary model (`deepsentinel review --ai`,
  when the repository variable DEEPSENTINEL_AI_REVIEW is true): ReadOnlyAccess has no bedrock:InvokeModel.
- publish (`environment:<env>`, and for dev also `ref:refs/heads/main`): push to the environment's worker
  repository only; prod's also pulls from dev's repository, since promotion copies dev's image by digest.
- deploy (`environment:<env>`, a protected GitHub environment): PowerUserAccess plus IAM limited to the
  environment's `{project}-{env}-*` roles, under a permissions boundary (a managed policy of this stack) that every
  role it creates must carry. The environment stacks attach the same boundary to their roles
  (`attach_permissions_boundary`), so a deploy by the role and one by an administrator create the same roles.

Every trust: Federated = the provider, `sts:AssumeRoleWithWebIdentity`, `aud` = `sts.amazonaws.com` (what
aws-actions/configure-aws-credentials asks GitHub for) and `sub` with StringEquals ("Configuring OpenID Connect in
Amazon Web Services", GitHub Docs; "Create a role for OpenID Connect federation", IAM User Guide).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformStack
from cdktf_cdktf_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktf_cdktf_provider_aws.iam_policy import IamPolicy
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from deepsentinel.constructs.iam import bedrock_model_arns
from deepsentinel.constructs.people import AWS_MANAGED, no_data_reads
from deepsentinel.constructs.policies import Statement, allow, deny, policy_document
from deepsentinel.review.ai_summary import DEFAULT_MODEL_ID as AI_REVIEW_MODEL_ID
from deepsentinel.settings import ENVIRONMENTS, PlatformSettings
from deepsentinel.stacks.names import state_object_key

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"  # aws-actions/configure-aws-credentials' default audience
ROLE_KINDS = ("plan", "publish", "deploy")
WORKER_REPOSITORY = "video-analysis"
# Promotion copies the image an environment ran into the next one's repository (release.yml promote-prod).
PROMOTED_FROM = {"prod": "dev"}
# Writes to the GitHub roles themselves would let a deploy role widen its own trust or another environment's.
_IAM_READS = ["iam:Get*", "iam:List*"]
# Actions whose iam:PermissionsBoundary condition key names the boundary the role has or gets ("Permissions
# boundaries for IAM entities", IAM User Guide: the delegation example; Service Authorization Reference, IAM).
_BOUNDARY_CONDITIONED_ROLE_ACTIONS = [
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
]
_OTHER_ROLE_ACTIONS = [
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:PassRole",
]
_INSTANCE_PROFILE_ACTIONS = [
    "iam:CreateInstanceProfile",
    "iam:DeleteInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:UntagInstanceProfile",
]
_POLICY_ACTIONS = [
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:TagPolicy",
    "iam:UntagPolicy",
]
_ECR_PUSH = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
]
_ECR_PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]
_STATE_BUCKET_GUARD = [
    "s3:DeleteBucket",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketAcl",
]


# The environment whose plan role the pull-request workflow assumes (DEEPSENTINEL_DEV_PLAN_ROLE_ARN).
AI_REVIEW_ENVIRONMENT = "dev"


def ai_review_statements(settings: PlatformSettings, account_id: str) -> list[Statement]:
    """Converse with the review's default model only (Converse needs bedrock:InvokeModel, "Carry out a
    conversation with the Converse API operations", Bedrock User Guide), in the platform's Region."""
    return [
        allow(
            ["bedrock:InvokeModel"],
            bedrock_model_arns(settings.region, account_id, AI_REVIEW_MODEL_ID),
            "AiReviewSummary",
        )
    ]


def repository_variable(env: str, kind: str) -> str:
    """The GitHub repository variable that holds a role's ARN (the workflows read these names)."""
    return f"DEEPSENTINEL_{env.upper()}_{kind.upper()}_ROLE_ARN"


def role_name(settings: PlatformSettings, env: str, kind: str) -> str:
    return f"{settings.project}-{env}-github-{kind}"


def permissions_boundary_name(settings: PlatformSettings) -> str:
    return f"{settings.project}-permissions-boundary"


def permissions_boundary_arn(settings: PlatformSettings, account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:policy/{permissions_boundary_name(settings)}"


def subject_repository(settings: PlatformSettings) -> str:
    """The repository as GitHub's `sub` claim names it: `owner/name`, or in the immutable format
    `owner@<owner id>/name@<repository id>` ("OpenID Connect reference", Immutable subject claims)."""
    owner, name = (settings.github_repository or "").split("/")
    if settings.github_repository_ids is None:
        return f"{owner}/{name}"
    owner_id, repository_id = settings.github_repository_ids.split("/")
    return f"{owner}@{owner_id}/{name}@{repository_id}"


def trusted_subjects(repository: str, env: str, kind: str) -> list[str]:
    """The `sub` claims of the runs that assume the role (GitHub's documented formats: a job that references an
    environment gets `environment:<name>`, whatever its event; otherwise a pull request gets `pull_request` and a
    push `ref:<ref>`). `repository` as subject_repository() spells it."""
    repo = f"repo:{repository}"
    if kind == "plan":
        return [f"{repo}:pull_request"]
    if kind == "publish" and env == "dev":  # release.yml's image job: environment dev, on a push to main
        return [f"{repo}:environment:dev", f"{repo}:ref:refs/heads/main"]
    return [f"{repo}:environment:{env}"]


@dataclass(frozen=True, kw_only=True)
class GithubOidcProps:
    settings: PlatformSettings  # project, region, github_repository(_ids), github_oidc_provider_arn, bucket_suffix
    account_id: str


class GithubOidc(Construct):
    provider_arn: str
    permissions_boundary_arn: str
    role_arns: dict[str, dict[str, str]]  # env -> kind (plan, publish, deploy) -> role ARN
    repository_variables: dict[str, str]  # DEEPSENTINEL_<ENV>_<KIND>_ROLE_ARN -> role ARN

    def __init__(self, scope: Construct, id_: str, *, props: GithubOidcProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        if s.github_repository is None:
            raise ValueError("GithubOidc needs settings.github_repository (owner/name)")
        self._s, self._account_id = s, props.account_id
        self.provider_arn = (
            s.github_oidc_provider_arn
            or IamOpenidConnectProvider(
                # No thumbprint: IAM validates GitHub's certificate with its own trusted root CAs ("Create an OpenID
                # Connect (OIDC) identity provider in IAM", IAM User Guide).
                self,
                "provider",
                url=GITHUB_OIDC_URL,
                client_id_list=[STS_AUDIENCE],
                tags={"Name": GITHUB_OIDC_HOST, "Project": s.project},
            ).arn
        )
        self.permissions_boundary_arn = permissions_boundary_arn(s, props.account_id)
        boundary = IamPolicy(
            self,
            "permissions-boundary",
            name=permissions_boundary_name(s),
            description="Caps every role the GitHub deploy roles create (and the deploy roles): "
            f"IAM only on {s.project}-* names, always with this boundary",
            policy=policy_document(*self._boundary_statements()),
        )
        self.role_arns = {}
        for env in ENVIRONMENTS:
            self.role_arns[env] = {}
            for kind in ROLE_KINDS:
                role = IamRole(
                    self,
                    f"{env}-{kind}",
                    name=role_name(s, env, kind),
                    description=f"GitHub Actions {kind} role of {s.project}-{env} ({s.github_repository})",
                    assume_role_policy=self._trust(env, kind),
                    max_session_duration=3600,
                    permissions_boundary=boundary.arn if kind == "deploy" else None,
                    tags={"Name": role_name(s, env, kind), "Project": s.project, "Environment": env},
                )
                IamRolePolicy(
                    self,
                    f"{env}-{kind}-policy",
                    name=kind,
                    role=role.name,
                    policy=policy_document(*self._permissions(env, kind)),
                )
                managed = {"plan": "ReadOnlyAccess", "deploy": "PowerUserAccess"}.get(kind)
                if managed:
                    IamRolePolicyAttachment(
                        self, f"{env}-{kind}-{managed}", role=role.name, policy_arn=f"{AWS_MANAGED}/{managed}"
                    )
                self.role_arns[env][kind] = role.arn
        self.repository_variables = {
            repository_variable(env, kind): arn for env, arns in self.role_arns.items() for kind, arn in arns.items()
        }

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:iam::{self._account_id}:{kind}/{name}"

    def _trust(self, env: str, kind: str) -> str:
        subjects = trusted_subjects(subject_repository(self._s), env, kind)
        return policy_document(
            {
                "Effect": "Allow",
                "Principal": {"Federated": self.provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": subjects[0] if len(subjects) == 1 else subjects,
                    }
                },
            }
        )

    def _state(self, env: str) -> tuple[str, str, str]:
        bucket = f"arn:aws:s3:::{self._s.state_bucket_name}"
        state = f"{bucket}/{state_object_key(f'{self._s.project}-{env}')}"
        return bucket, state, f"{state}.tflock"

    def _repository(self, env: str) -> str:
        return f"arn:aws:ecr:{self._s.region}:{self._account_id}:repository/{self._s.project}-{env}/{WORKER_REPOSITORY}"

    def _permissions(self, env: str, kind: str) -> list[Statement]:
        bucket, state, lock = self._state(env)
        if kind == "plan":
            # Terraform's S3 backend with use_lockfile: ListBucket, GetObject on the state, Get/Put/DeleteObject
            # on `<key>.tflock` ("Backend Type: s3", Permissions Required).
            return [
                allow(["s3:ListBucket"], [bucket], "ListState"),
                allow(["s3:GetObject"], [state], "ReadState"),
                allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], [lock], "StateLock"),
                *no_data_reads(self._s),
                *(ai_review_statements(self._s, self._account_id) if env == AI_REVIEW_ENVIRONMENT else []),
            ]
        if kind == "publish":
            source = PROMOTED_FROM.get(env)
            return [
                allow(["ecr:GetAuthorizationToken"], "*", "EcrLogin"),
                allow(_ECR_PUSH, [self._repository(env)], "PushWorkerImage"),
                *([allow(_ECR_PULL, [self._repository(source)], "PullPromotedImage")] if source else []),
            ]
        p, prefix = self._s.project, f"{self._s.project}-{env}"
        others = [f"{bucket}/account/*", *(f"{bucket}/{p}-{other}/*" for other in ENVIRONMENTS if other != env)]
        return [
            allow(["s3:ListBucket"], [bucket], "ListState"),
            allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], [state, lock], "ReadWriteState"),
            # PowerUserAccess allows s3:* everywhere: not the account's or another environment's state.
            deny(["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"], others, "OnlyThisEnvironmentsState"),
            allow(_IAM_READS, "*", "ReadIam"),
            allow(
                _BOUNDARY_CONDITIONED_ROLE_ACTIONS,
                [self._arn("role", f"{prefix}-*")],
                "RolesWithTheBoundary",
                Condition={"StringEquals": {"iam:PermissionsBoundary": self.permissions_boundary_arn}},
            ),
            allow(_OTHER_ROLE_ACTIONS, [self._arn("role", f"{prefix}-*")], "ManageThisEnvironmentsRoles"),
            allow(_INSTANCE_PROFILE_ACTIONS, [self._arn("instance-profile", f"{prefix}-*")], "InstanceProfiles"),
            allow(_POLICY_ACTIONS, [self._arn("policy", f"{prefix}-*")], "ManagedPolicies"),
            # A role trusting the account root could otherwise be assumed with PowerUserAccess' sts:*.
            deny(["sts:AssumeRole"], "*", "NoRoleChaining"),
        ]

    def _boundary_statements(self) -> list[Statement]:
        p = self._s.project
        roles, boundary = self._arn("role", f"{p}-*"), self.permissions_boundary_arn
        return [
            {
                "Sid": "EverythingButIdentity",
                "Effect": "Allow",
                "NotAction": ["iam:*", "organizations:*", "account:*"],
                "Resource": "*",
            },
            allow(_IAM_READS, "*", "ReadIam"),
            allow(
                _BOUNDARY_CONDITIONED_ROLE_ACTIONS,
                [roles],
                "ProjectRolesCarryThisBoundary",
                Condition={"StringEquals": {"iam:PermissionsBoundary": boundary}},
            ),
            allow(_OTHER_ROLE_ACTIONS, [roles], "ManageProjectRoles"),
            allow(_INSTANCE_PROFILE_ACTIONS, [self._arn("instance-profile", f"{p}-*")], "ProjectInstanceProfiles"),
            allow(_POLICY_ACTIONS, [self._arn("policy", f"{p}-*")], "ProjectPolicies"),
            allow(["iam:CreateServiceLinkedRole"], [self._arn("role", "aws-service-role/*")], "ServiceLinkedRoles"),
            deny(
                [
                    "iam:CreatePolicyVersion",
                    "iam:DeletePolicy",
                    "iam:DeletePolicyVersion",
                    "iam:SetDefaultPolicyVersion",
                ],
                [boundary],
                "KeepThisBoundary",
            ),
            deny(["iam:DeleteRolePermissionsBoundary"], "*", "NoBoundaryRemoval"),
            {
                "Sid": "LeaveTheGithubRolesAlone",
                "Effect": "Deny",
                "NotAction": _IAM_READS,
                "Resource": [
                    self._arn("role", role_name(self._s, env, kind)) for env in ENVIRONMENTS for kind in ROLE_KINDS
                ],
            },
            deny(_STATE_BUCKET_GUARD, [f"arn:aws:s3:::{self._s.state_bucket_name}"], "KeepTheStateBucket"),
            deny(
                ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                [f"arn:aws:s3:::{self._s.state_bucket_name}/account/*"],
                "KeepTheAccountState",
            ),
        ]


def attach_permissions_boundary(stack: TerraformStack, settings: PlatformSettings, account_id: str) -> None:
    """Give every IAM role of an environment stack the account's permissions boundary, which the GitHub deploy
    role may create roles only with. Only with `github_repository` set: without it the account stack creates
    no boundary policy."""
    if settings.github_repository is None:
        return
    arn = permissions_boundary_arn(settings, account_id)
    for construct in stack.node.find_all():
        if isinstance(construct, IamRole):
            construct.permissions_boundary = arn
