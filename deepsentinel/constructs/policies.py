"""IAM policy JSON helpers shared by the constructs (plain dicts, serialized once)."""

from __future__ import annotations

import json
from typing import Any

Statement = dict[str, Any]


def policy_document(*statements: Statement) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: list[str], resources: list[str] | str, sid: str | None = None, **extra: Any) -> Statement:
    statement: Statement = {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}
    if sid:
        statement["Sid"] = sid
    return statement


def deny(actions: list[str], resources: list[str] | str, sid: str | None = None, **extra: Any) -> Statement:
    return {**allow(actions, resources, sid, **extra), "Effect": "Deny"}


def assume_role_policy(*services: str) -> str:
    return policy_document(
        {
            "Effect": "Allow",
            "Principal": {"Service": list(services) if len(services) > 1 else services[0]},
            "Action": "sts:AssumeRole",
        }
    )


def tls_only_bucket_policy(bucket_arn: str) -> str:
    """Deny every request to the bucket that does not use TLS."""
    return policy_document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
