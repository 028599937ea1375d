"""The stand-ins behave as AWS documents: Batch's retry decision, a job's states while it waits for capacity and
while the stand-in runs it, and the SQS event source mapping's handling of a message the function reported failed.

Documentation the expectations come from:
* "Automated job retries" (AWS Batch User Guide, https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html)
  and EvaluateOnExit / RetryStrategy (AWS Batch API Reference,
  https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html, .../API_RetryStrategy.html).
* "Job states" (AWS Batch User Guide, https://docs.aws.amazon.com/batch/latest/userguide/job_states.html).
* "Handling errors for an SQS event source in Lambda"
  (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).

The Batch and SQS checks run against the local server (moto with this project's patches, in this process).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from deepsentinel.local.server import in_process
from deepsentinel.local.stand_in import (ESSENTIAL_CONTAINER_EXITED, OUT_OF_MEMORY_REASON, SPOT_RECLAIM_STATUS_REASON,
                                   BatchStandIn, DeployedFunction, EventSourceMappingStandIn, LocalAwsEnvironment,
                                   retry_action)

REGION = "ap-northeast-2"

# --- retry_action: the pages' own examples --------------------------------------------------------------------

# "Automated job retries": "this evaluateOnExit object has two entries that with actions of RETRY and a final entry
# with an action of EXIT":
#   "evaluateOnExit": [ { "action": "RETRY", "onReason": "AGENT" },
#                       { "action": "RETRY", "onStatusReason": "Task failed to start" },
#                       { "action": "EXIT", "onReason": "*" } ]
USER_GUIDE_EXAMPLE = {"attempts": 3, "evaluateOnExit": [
    {"action": "RETRY", "onReason": "AGENT"},
    {"action": "RETRY", "onStatusReason": "Task failed to start"},
    {"action": "EXIT", "onReason": "*"}]}


@pytest.mark.parametrize(("exit_code", "status_reason", "container_reason", "expected"), [
    (1, ESSENTIAL_CONTAINER_EXITED, "AGENT", "RETRY"),  # the first entry (onReason AGENT)
    (1, "Task failed to start", None, "RETRY"),  # the second (onStatusReason)
    (1, ESSENTIAL_CONTAINER_EXITED, OUT_OF_MEMORY_REASON, "EXIT"),  # "a final entry that exits for any reason"
    (137, SPOT_RECLAIM_STATUS_REASON, None, "EXIT"),  # any reason includes none: "*" matches an empty reason
    (1, ESSENTIAL_CONTAINER_EXITED, "AGENTS", "EXIT"),  # "AGENT" has no asterisk: the whole reason must match
])
def test_the_user_guide_example_retries_agent_and_start_failures_and_exits_for_any_other_reason(
        exit_code, status_reason, container_reason, expected):
    """The "Automated job retries" example (quoted above USER_GUIDE_EXAMPLE): the first two entries retry; "For jobs
    that don't match to exit, add a final entry that exits for any reason", so the final "*" entry ends only the
    failures the earlier entries did not match. The AGENT case matches that final entry too and is still retried:
    the entries are taken in order, the first match decides."""
    assert retry_action(USER_GUIDE_EXAMPLE, exit_code, status_reason, container_reason) == expected


def test_when_no_entry_matches_the_job_is_retried():
    """RetryStrategy (API Reference): "If none of the listed conditions match, then the job is retried"; the user
    guide: "If evaluateOnExit is specified, but none of the retry strategies match, then the job is retried"."""
    exits_on_65 = {"attempts": 3, "evaluateOnExit": [{"action": "EXIT", "onExitCode": "65"}]}
    assert retry_action(exits_on_65, 1, ESSENTIAL_CONTAINER_EXITED) == "RETRY"
    assert retry_action(exits_on_65, 65, ESSENTIAL_CONTAINER_EXITED) == "EXIT"
    assert retry_action({"attempts": 3}, 1, ESSENTIAL_CONTAINER_EXITED) == "RETRY"


@pytest.mark.parametrize(("pattern", "exit_code", "matches"), [
    ("1*", 1, True), ("1*", 137, True), ("1*", 21, False),  # "only the start of the string needs to be an exact match"
    ("13", 137, False), ("137", 137, True),  # no asterisk: the decimal representation exactly
    ("*", 0, True),
])
def test_on_exit_code_is_a_glob_with_an_asterisk_at_the_end_only(pattern, exit_code, matches):
    """EvaluateOnExit.onExitCode: "Contains a glob pattern to match against the decimal representation of the
    ExitCode ... It can contain only numbers, and can end with an asterisk (*) so that only the start of the string
    needs to be an exact match"."""
    strategy = {"attempts": 2, "evaluateOnExit": [{"action": "EXIT", "onExitCode": pattern}]}
    assert retry_action(strategy, exit_code, ESSENTIAL_CONTAINER_EXITED) == ("EXIT" if matches else "RETRY")


def test_on_status_reason_with_a_trailing_asterisk_matches_the_start_of_the_reason():
    """EvaluateOnExit.onStatusReason: a glob that "can optionally end with an asterisk (*) so that only the start of
    the string needs to be an exact match": the job definition's "Host EC2*" matches the reclaimed instance's reason
    whatever its instance id, and nothing that only contains the words later."""
    strategy = {"attempts": 2, "evaluateOnExit": [{"action": "RETRY", "onStatusReason": "Host EC2*"},
                                                  {"action": "EXIT", "onReason": "*"}]}
    assert retry_action(strategy, 137, SPOT_RECLAIM_STATUS_REASON) == "RETRY"
    assert retry_action(strategy, 137, "Terminated: Host EC2 (instance i-0) terminated.") == "EXIT"


def test_an_entry_matches_only_when_all_its_conditions_match_and_its_action_is_case_insensitive():
    """EvaluateOnExit.action: "Specifies the action to take if all of the specified conditions (onStatusReason,
    onReason, and onExitCode) are met. The values aren't case sensitive.\""""
    strategy = {"attempts": 2, "evaluateOnExit": [
        {"action": "exit", "onExitCode": "65", "onStatusReason": "Essential container*"}]}
    assert retry_action(strategy, 65, ESSENTIAL_CONTAINER_EXITED) == "EXIT"
    assert retry_action(strategy, 65, SPOT_RECLAIM_STATUS_REASON) == "RETRY"  # exit code alone is not enough
    assert retry_action(strategy, 1, ESSENTIAL_CONTAINER_EXITED) == "RETRY"


# --- Batch on the local server: RUNNABLE until the stand-in runs it ------------------------------------------

@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with in_process() as endpoint_url:
        yield endpoint_url


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


@dataclass
class StateChanges:
    """Stands in for an EventBridge rule that matches every "Batch Job State Change": records the job's states."""

    statuses: list[str] = field(default_factory=list)

    def deliver(self, event: Mapping[str, Any]) -> None:
        self.statuses.append(event["detail"]["status"])


def _job_queue(endpoint: str, *, exit_code: int, retry_strategy: Mapping[str, Any]) -> tuple[Any, str, str]:
    """A queue and a job definition whose container exits with `exit_code`; returns (batch, queue, definition)."""
    batch, suffix = _client(endpoint, "batch"), uuid.uuid4().hex[:8]
    role = _client(endpoint, "iam").create_role(RoleName=f"batch-{suffix}", AssumeRolePolicyDocument="{}")["Role"]
    ce = batch.create_compute_environment(computeEnvironmentName=f"ce-{suffix}", type="UNMANAGED", state="ENABLED",
                                          serviceRole=role["Arn"])["computeEnvironmentArn"]
    queue = batch.create_job_queue(jobQueueName=f"q-{suffix}", state="ENABLED", priority=1,
                                   computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])["jobQueueArn"]
    definition = batch.register_job_definition(
        jobDefinitionName=f"def-{suffix}", type="container", retryStrategy=dict(retry_strategy),
        containerProperties={"image": "worker", "vcpus": 1, "memory": 512,
                             "environment": [{"name": "EXIT_CODE", "value": str(exit_code)}]})["jobDefinitionArn"]
    return batch, queue, definition


def _runner(endpoint: str, batch: Any, queue: str, changes: StateChanges) -> BatchStandIn:
    """The stand-in with a container that exits with the job definition's EXIT_CODE at once."""
    return BatchStandIn(batch=batch, aws=LocalAwsEnvironment(endpoint, REGION), job_queue=queue,
                        endpoint_overrides={}, host_has_gpu=False, event_rules=[changes],  # type: ignore[list-item]
                        command=(sys.executable, "-c", "import os, sys; sys.exit(int(os.environ['EXIT_CODE']))"))


def test_a_submitted_job_waits_in_runnable_until_the_stand_in_runs_it(endpoint):
    """"Job states": the scheduler moves a job without dependencies to RUNNABLE ("Jobs in this state are started as
    soon as sufficient resources are available ... jobs can remain in this state indefinitely"), one with
    dependencies to PENDING; a RUNNABLE job runs through STARTING and RUNNING to SUCCEEDED."""
    batch, queue, definition = _job_queue(endpoint, exit_code=0, retry_strategy={"attempts": 1})
    job_id = batch.submit_job(jobName="video-waits", jobQueue=queue, jobDefinition=definition)["jobId"]
    dependent = batch.submit_job(jobName="video-after", jobQueue=queue, jobDefinition=definition,
                                 dependsOn=[{"jobId": job_id}])["jobId"]

    (job,) = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert job["status"] == "RUNNABLE" and "startedAt" not in job
    assert batch.describe_jobs(jobs=[dependent])["jobs"][0]["status"] == "PENDING"
    assert [s["jobId"] for s in batch.list_jobs(jobQueue=queue, jobStatus="RUNNABLE")["jobSummaryList"]] == [job_id]
    assert batch.list_jobs(jobQueue=queue, jobStatus="SUBMITTED")["jobSummaryList"] == []
    time.sleep(0.2)
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNABLE"  # waits: no capacity came

    changes = StateChanges()
    (run,) = _runner(endpoint, batch, queue, changes).run_runnable()
    assert run.job_id == job_id and run.status == "SUCCEEDED"
    assert changes.statuses == ["STARTING", "RUNNING", "SUCCEEDED"]
    (job,) = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert job["status"] == "SUCCEEDED" and job["startedAt"] >= job["createdAt"]


def test_a_failed_attempt_goes_back_to_runnable_while_attempts_remain(endpoint):
    """"Automated job retries": when an attempt fails "and the number of attempts specified in the retry
    configuration is greater than the AWS_BATCH_JOB_ATTEMPT number. Then, the job is placed back in the RUNNABLE
    state"; with no matching evaluateOnExit entry it is retried, so an exit code no entry names uses every attempt,
    and an EXIT entry ends the job at its first failure."""
    strategy = {"attempts": 3, "evaluateOnExit": [{"action": "EXIT", "onExitCode": "65"}]}
    batch, queue, definition = _job_queue(endpoint, exit_code=1, retry_strategy=strategy)
    batch.submit_job(jobName="video-retried", jobQueue=queue, jobDefinition=definition)
    changes = StateChanges()
    (run,) = _runner(endpoint, batch, queue, changes).run_runnable()
    assert run.status == "FAILED" and [a.exit_code for a in run.attempts] == [1, 1, 1]
    assert changes.statuses == ["STARTING", "RUNNING", "RUNNABLE"] * 2 + ["STARTING", "RUNNING", "FAILED"]
    assert [a["container"]["exitCode"] for a in batch.describe_jobs(jobs=[run.job_id])["jobs"][0]["attempts"]] \
        == [1, 1, 1]

    batch, queue, definition = _job_queue(endpoint, exit_code=65, retry_strategy=strategy)
    batch.submit_job(jobName="video-bad-input", jobQueue=queue, jobDefinition=definition)
    changes = StateChanges()
    (run,) = _runner(endpoint, batch, queue, changes).run_runnable()
    assert run.status == "FAILED" and [a.exit_code for a in run.attempts] == [65]
    assert changes.statuses == ["STARTING", "RUNNING", "FAILED"]


# --- the SQS event source mapping: a reported failure waits out the queue's visibility timeout ----------------

# A function that reports every message whose body is "bad" in batchItemFailures (ReportBatchItemFailures).
REPORTS_BAD_MESSAGES = """
def handler(event, context):
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]}
"""
SHORT_VISIBILITY_SECONDS = 3  # the queue's own timeout, shortened for the test (the deployed queue's is 400 s)


def test_a_message_reported_failed_stays_invisible_for_the_queues_visibility_timeout(endpoint, tmp_path: Path):
    """"Handling errors for an SQS event source in Lambda": "After your queue's visibility timeout runs out, the
    message will again reappear in the queue", and with partial batch responses only the failed messages return
    ("Implementing partial batch responses"). So the stand-in deletes the good message and leaves the bad one
    invisible: not receivable right after the invocation nor 1 s later, receivable once the queue's timeout ran out."""
    sqs = _client(endpoint, "sqs")
    queue_url = sqs.create_queue(QueueName=f"jobs-{uuid.uuid4().hex[:8]}",
                                 Attributes={"VisibilityTimeout": str(SHORT_VISIBILITY_SECONDS)})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    (tmp_path / "handler.py").write_text(REPORTS_BAD_MESSAGES)
    function = DeployedFunction(name="submitter", arn=f"arn:aws:lambda:{REGION}:123456789012:function:submitter",
                                environment={}, code_dir=tmp_path, handler="handler.handler")
    mapping = EventSourceMappingStandIn(sqs=sqs, function=function, queue_url=queue_url, queue_arn=queue_arn,
                                        batch_size=10, region=REGION)
    sqs.send_message(QueueUrl=queue_url, MessageBody="good")
    sqs.send_message(QueueUrl=queue_url, MessageBody="bad")

    received_by = time.monotonic()
    counts = mapping.poll_once(LocalAwsEnvironment(endpoint, REGION), wait_seconds=0)
    received_at_most = time.monotonic()  # the receive happened between the two readings
    assert counts == {"received": 2, "deleted": 1, "failed": 1}

    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    time.sleep(max(0.0, received_by + 1.0 - time.monotonic()))
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)  # 1 s after the receive

    time.sleep(max(0.0, received_at_most + SHORT_VISIBILITY_SECONDS + 0.2 - time.monotonic()))
    (again,) = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1, AttributeNames=["All"])["Messages"]
    assert again["Body"] == "bad" and again["Attributes"]["ApproximateReceiveCount"] == "2"
