"""Encryption: the environment's customer-managed KMS key, with a key policy for the services that use it.

An AWS managed key (`alias/aws/sns`, ...) has a key policy nobody can change, and it does not let
CloudWatch or EventBridge use the key, so an alarm or rule publishing to a topic encrypted with it fails.
A customer-managed key can name those services in its policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from deepsentinel.settings import PlatformSettings

# Services that publish to the environment's encrypted SNS topics on their own behalf (AWS Budgets: the cost
# guard's notifications, constructs/budget.py).
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com", "budgets.amazonaws.com")
# What a publisher to an SSE-KMS topic needs (Amazon SNS Developer Guide, "Configuring AWS KMS permissions").
PUBLISH_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]
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
        key = KmsKey(self, "key", description=f"{s.prefix}: SNS topics and the environment's data",
                     enable_key_rotation=True, deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
                     policy=key_policy(props.account_id, s.region, props.publishing_role_arns),
                     tags={"Name": s.prefix})
        alias = KmsAlias(self, "alias", name=f"alias/{s.prefix}", target_key_id=key.key_id)
        self.kms_key_arn = key.arn
        self.kms_key_id = key.key_id
        self.kms_alias_name = alias.name


def key_policy(account_id: str, region: str, publishing_role_arns: list[str]) -> str:
    """The key policy: the account administers the key through IAM; the publishing services and roles use it;
    CloudWatch Logs encrypts the account's log groups with it ("Encrypt log data in CloudWatch Logs using AWS
    KMS": the logs service principal, limited by the log-group encryption context).

    Roles are matched by `aws:PrincipalArn` rather than named as principals: KMS rejects a policy whose
    principal does not exist yet, and the roles are created after the key.
    """
    root = f"arn:aws:iam::{account_id}:root"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "EnableIamPolicies", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "AllowPublishingServices", "Effect": "Allow", "Principal": {"Service": list(PUBLISHING_SERVICES)},
         "Action": PUBLISH_KEY_ACTIONS, "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}},
        {"Sid": "AllowCloudWatchLogs", "Effect": "Allow", "Principal": {"Service": f"logs.{region}.amazonaws.com"},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
         "Resource": "*", "Condition": {"ArnLike": {
             "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account_id}:log-group:*"}}},
        *([{"Sid": "AllowPublishingRoles", "Effect": "Allow", "Principal": {"AWS": root},
            "Action": PUBLISH_KEY_ACTIONS, "Resource": "*",
            "Condition": {"ArnLike": {"aws:PrincipalArn": publishing_role_arns}}}] if publishing_role_arns else []),
    ]})
