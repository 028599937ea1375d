"""The account stack: what exists once per AWS account, shared by every environment.

The state backend (a versioned, encrypted S3 bucket and a DynamoDB lock table) and the people (IAM
groups, users and the CI user, whose names are account-wide). Environment stacks hold only names
prefixed with `{project}-{env}`, so dev and prod deploy side by side and destroy independently.
It keeps its own state locally (it cannot live in the bucket it creates); commit nothing of it.
"""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.dynamodb_table import (DynamodbTable, DynamodbTableAttribute,
                                                     DynamodbTablePointInTimeRecovery,
                                                     DynamodbTableServerSideEncryption)
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA, S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration
from constructs import Construct

from deepsentinel.constructs.people import People, PeopleProps
from deepsentinel.constructs.policies import tls_only_bucket_policy
from deepsentinel.settings import PlatformSettings
from deepsentinel.stacks.provider import StackOptions, configure_stack


class AccountStack(TerraformStack):
    def __init__(self, scope: Construct, id_: str, *, settings: PlatformSettings, options: StackOptions) -> None:
        super().__init__(scope, id_)
        configure_stack(self, settings, StackOptions(endpoint_url=options.endpoint_url,
                                                     local_state_dir=options.local_state_dir or "."), "account")
        bucket = S3Bucket(self, "state-bucket", bucket=settings.state_bucket_name,
                          lifecycle={"prevent_destroy": options.endpoint_url is None})
        S3BucketVersioningA(self, "state-versioning", bucket=bucket.id,
                            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"))
        S3BucketServerSideEncryptionConfigurationA(
            self, "state-encryption", bucket=bucket.id,
            rule=[S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=(
                    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms")))])
        S3BucketPublicAccessBlock(self, "state-public-access-block", bucket=bucket.id, block_public_acls=True,
                                  block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
        S3BucketPolicy(self, "state-tls-only", bucket=bucket.id, policy=tls_only_bucket_policy(bucket.arn))
        table = DynamodbTable(self, "lock-table", name=settings.state_lock_table_name, billing_mode="PAY_PER_REQUEST",
                              hash_key="LockID", attribute=[DynamodbTableAttribute(name="LockID", type="S")],
                              point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
                              server_side_encryption=DynamodbTableServerSideEncryption(enabled=True))
        people = People(self, "people", props=PeopleProps(
            settings=settings, account_id=DataAwsCallerIdentity(self, "current").account_id))
        TerraformOutput(self, "state_bucket", value=bucket.bucket)
        TerraformOutput(self, "lock_table", value=table.name)
        TerraformOutput(self, "group_names", value=people.group_names)
        TerraformOutput(self, "ci_user_name", value=people.ci_user_name)
