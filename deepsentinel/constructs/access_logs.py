"""Access logs: one bucket receiving the ALB's access logs and the data buckets' server access logs.

Both deliveries require SSE-S3 on the target bucket (AWS does not deliver them to SSE-KMS buckets), so this
is the one bucket without the environment's key. Created only with `settings.access_logs_enabled`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
)
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration
from constructs import Construct

from deepsentinel.settings import PlatformSettings

ACCESS_LOG_RETENTION_DAYS = 365
# Regions opened before August 2022 deliver ALB logs from an Elastic Load Balancing account ("Enable access
# logs for your Application Load Balancer", step "Attach a policy to your S3 bucket"); newer regions use the
# log-delivery service principal.
ELB_LOG_ACCOUNTS = {
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-2": "797873946194",
}
ALB_LOG_PREFIX = "alb"
S3_LOG_PREFIX = "s3"


@dataclass(frozen=True, kw_only=True)
class AccessLogsProps:
    settings: PlatformSettings
    account_id: str


class AccessLogs(Construct):
    bucket_name: str
    bucket_arn: str
    alb_prefix: str
    s3_prefix: str
    delivery_ready: list[ITerraformDependable]  # the bucket policy: a load balancer's logging waits for it

    def __init__(self, scope: Construct, id_: str, *, props: AccessLogsProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        name = s.bucket_name("access-logs")
        bucket = S3Bucket(
            self,
            "bucket",
            bucket=name,
            force_destroy=not s.deletion_protection,
            tags={"Name": name, "Purpose": "access-logs"},
        )
        S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=bucket.id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        S3BucketPublicAccessBlock(
            self,
            "public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                            sse_algorithm="AES256"
                        )
                    )
                )
            ],
        )
        S3BucketVersioningA(
            self,
            "versioning",
            bucket=bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        S3BucketLifecycleConfiguration(
            self,
            "lifecycle",
            bucket=bucket.id,
            rule=[
                S3BucketLifecycleConfigurationRule(
                    id="access-log-retention",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter()],
                    expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=ACCESS_LOG_RETENTION_DAYS)],
                    abort_incomplete_multipart_upload=[
                        S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=1)
                    ],
                )
            ],
        )
        S3BucketNotification(self, "events", bucket=bucket.id, eventbridge=True)
        policy = S3BucketPolicy(
            self, "policy", bucket=bucket.id, policy=_delivery_policy(bucket.arn, s.region, props.account_id)
        )
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.alb_prefix = ALB_LOG_PREFIX
        self.s3_prefix = S3_LOG_PREFIX
        # ELB checks the bucket's permissions when access logging is switched on ("Enable access logs for your
        # Application Load Balancer": "Access Denied for bucket ... Please check S3bucket permission").
        self.delivery_ready = [policy]


def _delivery_policy(bucket_arn: str, region: str, account_id: str) -> str:
    """TLS only; ALB log delivery under alb/; S3 server access log delivery under s3/ from this account."""
    elb = ELB_LOG_ACCOUNTS.get(region)
    alb_principal = (
        {"AWS": f"arn:aws:iam::{elb}:root"} if elb else {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    )
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "AlbAccessLogs",
                    "Effect": "Allow",
                    "Principal": alb_principal,
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/{ALB_LOG_PREFIX}/AWSLogs/{account_id}/*",
                },
                {
                    "Sid": "S3ServerAccessLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/{S3_LOG_PREFIX}/*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )
