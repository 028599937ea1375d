"""People: the admin and developer groups and the named users.

IAM user and group names are account-wide, so this construct belongs to the account stack, created
once per AWS account: dev and prod share the people and can be deployed and destroyed independently.
CI has no IAM user (no long-lived keys): the workflows assume the GitHub OIDC roles (constructs/github_oidc.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.iam_group import IamGroup
from cdktf_cdktf_provider_aws.iam_group_policy import IamGroupPolicy
from cdktf_cdktf_provider_aws.iam_group_policy_attachment import IamGroupPolicyAttachment
from cdktf_cdktf_provider_aws.iam_user import IamUser
from cdktf_cdktf_provider_aws.iam_user_group_membership import IamUserGroupMembership
from constructs import Construct

from deepsentinel.constructs.policies import Statement, allow, deny, policy_document
from deepsentinel.settings import ENVIRONMENTS, PlatformSettings

AWS_MANAGED = "arn:aws:iam::aws:policy"


@dataclass(frozen=True, kw_only=True)
class PeopleProps:
    settings: PlatformSettings  # project, region, user_names, admin_user_names, bucket_suffix
    account_id: str


class People(Construct):
    group_names: dict[str, str]  # admin, developer
    user_names: list[str]

    def __init__(self, scope: Construct, id_: str, *, props: PeopleProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        # Every environment's ECR repositories are named {project}-{env}/<purpose>.
        repositories = [f"arn:aws:ecr:{s.region}:{props.account_id}:repository/{s.project}-{env}/*"
                        for env in ENVIRONMENTS]
        guard = no_data_reads(s)
        admin = IamGroup(self, "admin-group", name=f"{s.project}-admins")
        developer = IamGroup(self, "developer-group", name=f"{s.project}-developers")
        IamGroupPolicyAttachment(self, "admin-access", group=admin.name,
                                 policy_arn=f"{AWS_MANAGED}/AdministratorAccess")
        IamGroupPolicyAttachment(self, "developer-read-only", group=developer.name,
                                 policy_arn=f"{AWS_MANAGED}/ReadOnlyAccess")
        IamGroupPolicy(self, "developer-push-images", name="push-images", group=developer.name,
                       policy=policy_document(
                           allow(["ecr:GetAuthorizationToken"], "*", "EcrLogin"),
                           allow(["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                                  "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage"],
                                 repositories, "PushProjectImages")))
        IamGroupPolicy(self, "developer-no-data-reads", name="no-data-reads", group=developer.name,
                       policy=policy_document(*guard))
        # Developers plan too (`deepsentinel plan`): the plan takes the state lock, an S3 object `<key>.tflock` with
        # use_lockfile (Terraform's S3 backend page lists Get/Put/DeleteObject on it), and opens the ephemeral
        # Django key (aws_secretsmanager_random_password: GetRandomPassword, not in ReadOnlyAccess, has no
        # resource-level permissions). No state object is written.
        IamGroupPolicy(self, "developer-plan", name="terraform-plan", group=developer.name, policy=policy_document(
            allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                  [f"arn:aws:s3:::{s.state_bucket_name}/*.tflock"], "StateLock"),
            allow(["secretsmanager:GetRandomPassword"], "*", "EphemeralRandomPassword")))
        self.user_names = []
        for user_name in s.user_names:
            user = IamUser(self, f"user-{user_name}", name=user_name, force_destroy=True, tags={"Name": user_name})
            groups = [developer.name] + ([admin.name] if user_name in s.admin_user_names else [])
            IamUserGroupMembership(self, f"user-{user_name}-groups", user=user.name, groups=groups)
            self.user_names.append(user.name)
        self.group_names = {"admin": admin.name, "developer": developer.name}


def no_data_reads(s: PlatformSettings) -> list[Statement]:
    """Deny what ReadOnlyAccess would otherwise allow on data: every object of every environment's buckets
    (raw CCTV video, highlights, thumbnails, models) and every non-current version of the state file.

    An explicit Deny wins over any Allow (IAM policy evaluation logic), so these hold whatever managed
    policy the principal also has.
    """
    suffix = f"-{s.bucket_suffix}" if s.bucket_suffix else ""
    data_objects = [f"arn:aws:s3:::{s.project}-{env}-*{suffix}/*" for env in ENVIRONMENTS]
    state_bucket = f"arn:aws:s3:::{s.state_bucket_name}"
    return [
        deny(["s3:GetObject*"], data_objects, "NoDataObjectReads"),
        deny(["s3:GetObjectVersion*"], [f"{state_bucket}/*"], "NoOldStateVersions"),
        deny(["s3:ListBucketVersions"], [state_bucket], "NoStateVersionListing"),
    ]
