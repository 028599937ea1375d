"""The event patterns of the pipeline's EventBridge rules: the pipeline construct deploys them, and the tests that
drive the Batch stand-in put the same rule on a local server without importing cdktf (whose first import starts
jsii's runtime, docs/local-speed.md)."""

from __future__ import annotations

import json


def batch_failed_event_pattern(job_queue_arn: str) -> str:
    """Every job of the queue that Batch ends FAILED, for whatever reason (the failure monitor's rule)."""
    return json.dumps(
        {
            "source": ["aws.batch"],
            "detail-type": ["Batch Job State Change"],
            "detail": {"status": ["FAILED"], "jobQueue": [job_queue_arn]},
        }
    )


def db_secret_rotated_event_pattern(secret_arn: str) -> str:
    """Secrets Manager's RotationSucceeded of the secret: a service event via CloudTrail with the secret in
    additionalEventData.SecretId (the documented entry, tests/fixtures/aws_events/README.md), or, as reported for
    RDS-managed secrets though no AWS page shows it, in serviceEventDetails.secretId: either key matches."""
    return json.dumps(
        {
            "source": ["aws.secretsmanager"],
            "detail-type": ["AWS Service Event via CloudTrail"],
            "detail": {
                "eventSource": ["secretsmanager.amazonaws.com"],
                "eventName": ["RotationSucceeded"],
                "$or": [
                    {"additionalEventData": {"SecretId": [secret_arn]}},
                    {"serviceEventDetails": {"secretId": [secret_arn]}},
                ],
            },
        }
    )
