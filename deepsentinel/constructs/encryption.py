"""Encryption: the environment's customer-managed KMS key, with a key policy for the services that use it.

An AWS managed key (`alias/aws/sns`, ...) has a key policy nobody can change, and it does not let
CloudWatch, AWS Budgets or EventBridge use the key, so an alarm, a budget notification or a rule delivering to a
topic or queue encrypted with it fails. A customer-managed key can name those services in its policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from deepsentinel.settings import PlatformSettings

# What a publishing role needs on an SSE-KMS topic (Amazon SNS Developer Guide, "Configuring AWS KMS permissions").
PUBLISH_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]
# The pages each service statement of the key policy copies, actions and conditions alike: the page that documents
# delivery from that service to a target encrypted with a customer managed key.
EVENTBRIDGE_TO_ENCRYPTED_SQS = (
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-troubleshooting.html#eb-sqs-encrypted"
)
SNS_EVENT_SOURCES = "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services"
BUDGETS_TO_ENCRYPTED_SNS = "https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html"
LOGS_ENCRYPTION = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"
KEY_DELETION_WINDOW_DAYS = 30


@dataclass(frozen=True, kw_only=True)
class EncryptionProps:
    settings: PlatformSettings
    account_id: str
    publishing_role_arns: list[str]  # roles that publish to the environment's topics (Lambda, Batch job)


class Encryption(Construct):
    kms_key_arn: str
    kms_key_id: str
    kms_alias_name: str

    def __init__(self, scope: Construct, id_: str, *, props: EncryptionProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        key = KmsKey(
            self,
            "key",
            description=f"{s.prefix}: SNS topics and the environment's data",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=key_policy(s, props.account_id, props.publishing_role_arns),
            tags={"Name": s.prefix},
        )
        alias = KmsAlias(self, "alias", name=f"alias/{s.prefix}", target_key_id=key.key_id)
        self.kms_key_arn = key.arn
        self.kms_key_id = key.key_id
        self.kms_alias_name = alias.name


def key_policy(settings: PlatformSettings, account_id: str, publishing_role_arns: list[str]) -> str:
    """The key policy: the account administers the key through IAM; each AWS service that writes to something this
    key encrypts gets one statement with exactly the actions and conditions of the page documenting that path
    (a condition key the service does not put into its KMS request makes the statement deny); the publishing roles
    use it.

    Roles are matched by `aws:PrincipalArn` rather than named as principals: KMS rejects a policy whose
    principal does not exist yet, and the roles are created after the key.
    """
    s = settings
    root = f"arn:aws:iam::{account_id}:root"
    same_account = {"aws:SourceAccount": account_id}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EnableIamPolicies",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                # Alarm actions -> the alerts topic. SNS_EVENT_SOURCES: the service principal, kms:GenerateDataKey*
                # and kms:Decrypt, and aws:SourceAccount / aws:SourceArn against the confused deputy; the source is the
                # alarm (arn:aws:cloudwatch:<region>:<account>:alarm:<name>), so only this environment's alarms
                # ({prefix}-*), as in the topic's own policy (pipeline.alerts_topic_policy).
                {
                    "Sid": "AllowCloudWatchAlarms",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": same_account,
                        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{s.region}:{account_id}:alarm:{s.prefix}-*"},
                    },
                },
                # The cost guard's notifications -> the alerts topic. BUDGETS_TO_ENCRYPTED_SNS: budgets.amazonaws.com,
                # kms:GenerateDataKey* and kms:Decrypt; its source conditions are the ones that page documents for the
                # topic (arn:aws:budgets::<account>:*, no budget name: the page never shows which ARN Budgets sends).
                {
                    "Sid": "AllowBudgets",
                    "Effect": "Allow",
                    "Principal": {"Service": "budgets.amazonaws.com"},
                    "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": same_account,
                        "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{account_id}:*"},
                    },
                },
                # The Jobs API's upload rule -> the jobs queue, the only EventBridge target this key encrypts (with
                # fifo_job_queue the rule invokes a function instead, and EventBridge gets nothing).
                # EVENTBRIDGE_TO_ENCRYPTED_SQS: kms:Decrypt and kms:GenerateDataKey, no condition; SNS_EVENT_SOURCES:
                # aws:SourceAccount / aws:SourceArn in a key policy are "not supported" for EventBridge. The queue's
                # policy admits that one rule (aws:SourceArn), so no other rule reaches the key through the queue.
                *(
                    [
                        {
                            "Sid": "AllowEventBridgeToJobsQueue",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                            "Resource": "*",
                        }
                    ]
                    if s.jobs_api_enabled and not s.fifo_job_queue
                    else []
                ),
                # Every log group of the environment. LOGS_ENCRYPTION: the regional logs principal, limited by the log
                # group's ARN in the encryption context; kms:Describe* is left out: DescribeKey takes no encryption
                # context (KMS API Reference, GrantConstraints), so under this condition it could never be allowed.
                {
                    "Sid": "AllowCloudWatchLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{s.region}.amazonaws.com"},
                    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{s.region}:{account_id}:log-group:*"
                        }
                    },
                },
                *(
                    [
                        {
                            "Sid": "AllowPublishingRoles",
                            "Effect": "Allow",
                            "Principal": {"AWS": root},
                            "Action": PUBLISH_KEY_ACTIONS,
                            "Resource": "*",
                            "Condition": {"ArnLike": {"aws:PrincipalArn": publishing_role_arns}},
                        }
                    ]
                    if publishing_role_arns
                    else []
                ),
            ],
        }
    )
