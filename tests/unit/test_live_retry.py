"""The live tests' bounded retries: known transient AWS errors only, a fixed number of times."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepsentinel.terraform import TerraformError
from tests.live.retry import retryable_reason, with_retries

# Terraform's output for errors AWS documents as transient.
IAM_NOT_YET_ASSUMABLE = ("Error: creating Lambda Function (deepsentinel-dev-sqs-to-batch): InvalidParameterValueException: "
                         "The role defined for the function cannot be assumed by Lambda.")
THROTTLED = "Error: reading SQS Queue: operation error SQS: GetQueueAttributes, api error Throttling: Rate exceeded"
REAL_DEFECT = "Error: creating S3 Bucket (deepsentinel-dev-raw-videos): BucketAlreadyExists"


def failure(output: str) -> TerraformError:
    return TerraformError(["apply"], Path("."), 1, output)


def test_iam_eventual_consistency_and_throttling_are_retryable():
    """IAM: "Changes that I make are not always immediately visible" (IAM troubleshooting,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency);
    throttling: "Retry behavior" (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html)
    lists Throttling / ThrottlingException / RequestLimitExceeded as transient."""
    assert retryable_reason(IAM_NOT_YET_ASSUMABLE) == "IAM eventual consistency: a new role is not yet assumable by Lambda"
    assert retryable_reason(THROTTLED) == "API throttling"
    assert retryable_reason(REAL_DEFECT) is None


def test_a_transient_error_is_retried_until_it_passes():
    calls, waits = [], []

    def apply() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise failure(IAM_NOT_YET_ASSUMABLE)
        return "applied"

    assert with_retries(apply, attempts=3, wait_seconds=7, log=lambda _: None, sleep=waits.append) == "applied"
    assert len(calls) == 3 and waits == [7, 7]


def test_retries_are_bounded():
    calls = []

    def apply() -> None:
        calls.append(1)
        raise failure(THROTTLED)

    with pytest.raises(TerraformError):
        with_retries(apply, attempts=3, log=lambda _: None, sleep=lambda _: None)
    assert len(calls) == 3


def test_a_real_defect_fails_at_once():
    calls = []

    def apply() -> None:
        calls.append(1)
        raise failure(REAL_DEFECT)

    with pytest.raises(TerraformError, match="BucketAlreadyExists"):
        with_retries(apply, attempts=3, log=lambda _: None, sleep=lambda _: None)
    assert len(calls) == 1
