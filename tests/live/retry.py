"""Bounded retries of the transient errors AWS is known for, as Terratest's `RetryableTerraformErrors` does.

Only errors that a later identical request can succeed on are retried: IAM's eventual consistency (a role or
instance profile just created is not yet visible to the service that must assume it) and API throttling.
Anything else fails at once, so a real defect is never hidden behind retries.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from deepsentinel.terraform import TerraformError

T = TypeVar("T")

# pattern in Terraform's output -> why a retry can succeed
RETRYABLE_ERRORS: dict[str, str] = {
    r"cannot be assumed by Lambda|The role defined for the function cannot be assumed":
        "IAM eventual consistency: a new role is not yet assumable by Lambda",
    r"execution role does not have permissions to call":
        "IAM eventual consistency: a new policy is not yet attached for Lambda",
    r"Invalid IamInstanceProfile|iamInstanceProfile\.name is invalid|instance profile .* (does not exist|not found)":
        "IAM eventual consistency: a new instance profile is not yet visible to EC2/Batch",
    r"is not authorized to perform: sts:AssumeRole|Unable to assume role|Role .* is not valid":
        "IAM eventual consistency: a new trust policy has not propagated",
    r"Throttling|ThrottlingException|RequestLimitExceeded|TooManyRequestsException|Rate exceeded|SlowDown":
        "API throttling",
}


def retryable_reason(output: str) -> str | None:
    """Why `output` (a failed terraform run's) is worth retrying, or None when it is not."""
    for pattern, reason in RETRYABLE_ERRORS.items():
        if re.search(pattern, output):
            return reason
    return None


def with_retries(action: Callable[[], T], *, attempts: int = 3, wait_seconds: float = 15.0,
                 log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `action`; on a retryable TerraformError run it again, at most `attempts` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except TerraformError as error:
            reason = retryable_reason(error.output)
            if reason is None or attempt == attempts:
                raise
            log(f"attempt {attempt}/{attempts} failed ({reason}); retrying in {wait_seconds:.0f}s")
            sleep(wait_seconds)
    raise AssertionError("unreachable")
