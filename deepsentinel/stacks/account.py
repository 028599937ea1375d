"""The account stack: what exists once per AWS account, shared by every environment.

The state backend (a versioned, encrypted S3 bucket; locks are S3 objects too, `use_lockfile`), the public
hosted zones (`hosted_zones`: environments look them up, never create them), each environment's Django key
(constructs/app_secrets.py: its generation is kept out of every environment's plan) and the
people (IAM groups and users, whose names are account-wide) and, with `github_repository` set, GitHub's OIDC
provider and each environment's plan, image-publishing and deploy roles. Environment stacks hold only
names prefixed with `{project}-{env}`, so dev and prod deploy side by side and destroy independently.
`deepsentinel bootstrap` applies it with a local state first (the bucket does not exist yet), then moves
that state into the bucket under `account/terraform.tfstate` (deepsentinel.commands.bootstrap).
"""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.route53_zone import Route53Zone
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration
from constructs import Construct

from deepsentinel.constructs.app_secrets import AppSecrets, AppSecretsProps
from deepsentinel.constructs.github_oidc import GithubOidc, GithubOidcProps
from deepsentinel.constructs.people import People, PeopleProps
from deepsentinel.constructs.policies import tls_only_bucket_policy
from deepsentinel.settings import PlatformSettings
from deepsentinel.stacks.names import ACCOUNT_STATE_KEY
from deepsentinel.stacks.provider import StackOptions, configure_stack


class AccountStack(TerraformStack):
    def __init__(self, scope: Construct, id_: str, *, settings: PlatformSettings, options: StackOptions) -> None:
        super().__init__(scope, id_)
        configure_stack(self, settings, options, ACCOUNT_STATE_KEY)
        bucket = S3Bucket(
            self,
            "state-bucket",
            bucket=settings.state_bucket_name,
            lifecycle={"prevent_destroy": options.endpoint_url is None},
        )
        S3BucketVersioningA(
            self,
            "state-versioning",
            bucket=bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "state-encryption",
            bucket=bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                            sse_algorithm="aws:kms"
                        )
                    )
                )
            ],
        )
        S3BucketPublicAccessBlock(
            self,
            "state-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketPolicy(self, "state-tls-only", bucket=bucket.id, policy=tls_only_bucket_policy(bucket.arn))
        account_id = DataAwsCallerIdentity(self, "current").account_id
        people = People(self, "people", props=PeopleProps(settings=settings, account_id=account_id))
        # Public zones outlive environments: their name servers are what the registrar delegates to, and a zone
        # re-created by an environment would get new ones (and stall ACM's DNS validation until re-delegated).
        zones = {
            name: Route53Zone(
                self,
                f"zone-{name.replace('.', '-')}",
                name=name,
                comment="deepsentinel",
                lifecycle={"prevent_destroy": options.endpoint_url is None},
            )
            for name in settings.hosted_zones
        }
        TerraformOutput(
            self,
            "hosted_zone_name_servers",
            value={n: z.name_servers for n, z in zones.items()},
            description="name servers per hosted zone: set them at the domain's registrar",
        )
        secrets = AppSecrets(self, "app-secrets", props=AppSecretsProps(settings=settings))
        TerraformOutput(
            self,
            "django_secret_arns",
            value=secrets.django_secret_arns,
            description="environment -> secret of its Django SECRET_KEY (the environment looks it up)",
        )
        TerraformOutput(self, "state_bucket", value=bucket.bucket)
        TerraformOutput(self, "group_names", value=people.group_names)
        if settings.github_repository is not None:
            github = GithubOidc(self, "github-oidc", props=GithubOidcProps(settings=settings, account_id=account_id))
            # Keyed by the repository variable each workflow reads (docs/release.md).
            TerraformOutput(
                self,
                "github_role_arns",
                value=github.repository_variables,
                description="repository variable -> role ARN: set each as a GitHub repository variable",
            )
            TerraformOutput(self, "github_oidc_provider_arn", value=github.provider_arn)
