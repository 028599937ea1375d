"""SQS -> AWS Batch submitter with a DynamoDB idempotency claim.

One SQS record carries ``{"video_id": str, "s3_key": str}`` plus optional ``"bucket"`` and
``"priority"``, or the original backend's ``{"video": {"id": str}, "s3": {"bucket": str, "key": str}}``
(unknown fields are ignored). For each record the function

1. validates the body,
2. claims the video with a conditional ``PutItem`` on the idempotency table (key ``video_id``),
3. submits one Batch job named ``video-<video_id>`` (sanitized to Batch's name rules),
4. records the job id on the claim.

When the claim it takes over is an expired IN_FLIGHT one (an invocation crashed, or its bookkeeping
write failed, after SubmitJob), the job may already exist: the function first looks for it with
``ListJobs`` filtered by job name and adopts a job that has not FAILED instead of submitting a second.

A video that is already claimed (in flight or submitted) is acknowledged without a new job. If the
submit fails, the claim is released so that SQS's retry can succeed. A claim left by a crashed
invocation expires after ``CLAIM_TTL_SECONDS`` (``expires_at`` is also the table's TTL attribute; the
conditional write treats an expired claim as free because DynamoDB's TTL sweep can lag by hours).

The handler returns the partial batch response: malformed bodies and failed submits are listed in
``batchItemFailures`` (SQS retries them and moves them to the DLQ after maxReceiveCount).

Environment:
    JOB_QUEUE               Batch job queue name or ARN (required)
    JOB_DEFINITION          Batch job definition name, name:revision or ARN (required)
    IDEMPOTENCY_TABLE       DynamoDB table name, partition key ``video_id`` (S) (required)
    CLAIM_TTL_SECONDS       lifetime of an in-flight claim (default 300); keep it >= the Lambda
                            timeout and below the queue's visibility timeout, so a crashed claim has
                            expired by the time SQS redelivers the message
    SUBMITTED_TTL_SECONDS   how long a submitted video stays a duplicate (default 14 days, the
                            longest SQS message retention)

Standard library and boto3 only (what the Lambda runtime ships).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_CLAIM_TTL_SECONDS = 300
DEFAULT_SUBMITTED_TTL_SECONDS = 14 * 24 * 3600
MAX_JOB_NAME_LENGTH = 128
# DynamoDB caps a partition key at 2048 bytes; a real video id is far shorter.
MAX_VIDEO_ID_LENGTH = 1024

STATUS_IN_FLIGHT = "IN_FLIGHT"
STATUS_SUBMITTED = "SUBMITTED"

OUTCOME_SUBMITTED = "submitted"
OUTCOME_ADOPTED = "adopted"
OUTCOME_DUPLICATE = "duplicate"
OUTCOME_INVALID = "invalid"
OUTCOME_ERROR = "error"


class RecordError(Exception):
    """A record that must be reported in ``batchItemFailures`` (SQS will redeliver it)."""

    outcome = OUTCOME_ERROR

    def __init__(self, message: str, *, video_id: str | None = None) -> None:
        super().__init__(message)
        self.video_id = video_id


class InvalidMessageError(RecordError):
    """The body is not a JSON object with a non-empty string ``video_id`` and ``s3_key``."""

    outcome = OUTCOME_INVALID


class SubmitError(RecordError):
    """Batch refused the job (or the call failed); the claim has been released."""


class ClaimError(RecordError):
    """The idempotency table could not be written (throttling, missing table, ...)."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    job_queue: str
    job_definition: str
    table: str
    claim_ttl_seconds: int = DEFAULT_CLAIM_TTL_SECONDS
    submitted_ttl_seconds: int = DEFAULT_SUBMITTED_TTL_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        missing = [k for k in ("JOB_QUEUE", "JOB_DEFINITION", "IDEMPOTENCY_TABLE") if not env.get(k)]
        if missing:
            # A configuration error fails the whole invocation: every record is retried.
            raise RuntimeError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            job_queue=env["JOB_QUEUE"],
            job_definition=env["JOB_DEFINITION"],
            table=env["IDEMPOTENCY_TABLE"],
            claim_ttl_seconds=_positive_int(env, "CLAIM_TTL_SECONDS", DEFAULT_CLAIM_TTL_SECONDS),
            submitted_ttl_seconds=_positive_int(env, "SUBMITTED_TTL_SECONDS", DEFAULT_SUBMITTED_TTL_SECONDS),
        )


@dataclass(frozen=True, kw_only=True)
class VideoMessage:
    video_id: str
    s3_key: str
    bucket: str | None = None
    priority: int | None = None


@dataclass(frozen=True, kw_only=True)
class RecordResult:
    outcome: str
    video_id: str
    job_id: str | None = None


@lru_cache(maxsize=1)
def clients() -> tuple[Any, Any]:
    """(dynamodb, batch) clients, created on first use and reused across warm invocations.

    Lazy rather than at import so tests can start moto first; boto3 picks up AWS_ENDPOINT_URL itself.
    """
    return boto3.client("dynamodb"), boto3.client("batch")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    settings = Settings.from_env()
    dynamodb, batch = clients()
    failures: list[dict[str, str]] = []
    for record in event.get("Records") or []:
        message_id = str(record.get("messageId", ""))
        try:
            result = process_record(record, dynamodb=dynamodb, batch=batch, settings=settings)
        except RecordError as exc:
            failures.append({"itemIdentifier": message_id})
            log_record(message_id, exc.video_id, exc.outcome, None, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad record must not fail its neighbours
            failures.append({"itemIdentifier": message_id})
            log_record(message_id, None, OUTCOME_ERROR, None, error=f"{type(exc).__name__}: {exc}")
        else:
            log_record(message_id, result.video_id, result.outcome, result.job_id)
    return {"batchItemFailures": failures}


def process_record(
    record: Mapping[str, Any],
    *,
    dynamodb: Any,
    batch: Any,
    settings: Settings,
    now: Callable[[], float] = time.time,
) -> RecordResult:
    """Claim, submit, record. Raises a :class:`RecordError` for anything SQS should retry."""
    message = parse_body(record.get("body"))
    message_id = str(record.get("messageId", ""))
    token = uuid.uuid4().hex  # identifies *this* claim, so release/update never touch a successor's
    claimed_at = int(now())

    existing, previous = claim(dynamodb, settings, message, message_id=message_id, token=token, now=claimed_at)
    if existing is not None:
        return RecordResult(
            outcome=OUTCOME_DUPLICATE,
            video_id=message.video_id,
            job_id=existing.get("job_id", {}).get("S"),
        )

    if previous and previous.get("status", {}).get("S") == STATUS_IN_FLIGHT:
        since_ms = int(previous.get("claimed_at", {}).get("N", "0")) * 1000
        try:
            adopted = find_live_job(batch, settings, job_name_for(message.video_id), since_ms=since_ms)
        except (ClientError, BotoCoreError) as exc:
            # Without the answer a second job is possible: release and let SQS retry rather than risk it.
            release(dynamodb, settings, message.video_id, token)
            raise SubmitError(f"list_jobs failed: {exc}", video_id=message.video_id) from exc
        if adopted is not None:
            record_submission(dynamodb, settings, message.video_id, token, adopted, now=int(now()))
            return RecordResult(outcome=OUTCOME_ADOPTED, video_id=message.video_id, job_id=adopted)

    try:
        response = batch.submit_job(**submit_job_params(message, settings))
    except (ClientError, BotoCoreError) as exc:
        release(dynamodb, settings, message.video_id, token)
        raise SubmitError(f"submit_job failed: {exc}", video_id=message.video_id) from exc

    job_id = response["jobId"]
    # The job exists now: a failed bookkeeping write must not make SQS retry (that could only
    # produce a second job once the claim expires), so it is logged and swallowed.
    record_submission(dynamodb, settings, message.video_id, token, job_id, now=int(now()))
    return RecordResult(outcome=OUTCOME_SUBMITTED, video_id=message.video_id, job_id=job_id)


def parse_body(body: Any) -> VideoMessage:
    if not isinstance(body, str):
        raise InvalidMessageError("body is missing")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError(f"body is not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise InvalidMessageError("body is not a JSON object")

    nested = "video" in data or "s3" in data  # the original backend's format
    problems = []
    if nested:
        video, s3 = data.get("video"), data.get("s3")
        if not isinstance(video, dict):
            problems.append("video must be an object with an id")
        if not isinstance(s3, dict):
            problems.append("s3 must be an object with bucket and key")
        video, s3 = video if isinstance(video, dict) else {}, s3 if isinstance(s3, dict) else {}
        video_id, s3_key, bucket = video.get("id"), s3.get("key"), s3.get("bucket")
        id_field, key_field = "video.id", "s3.key"
    else:
        video_id, s3_key, bucket = data.get("video_id"), data.get("s3_key"), data.get("bucket")
        id_field, key_field = "video_id", "s3_key"
    video_id = video_id if isinstance(video_id, str) and video_id.strip() else None
    if video_id is None:
        problems.append(f"{id_field} must be a non-empty string")
    elif len(video_id) > MAX_VIDEO_ID_LENGTH:
        problems.append(f"{id_field} longer than {MAX_VIDEO_ID_LENGTH} characters")
    if not (isinstance(s3_key, str) and s3_key.strip()):
        problems.append(f"{key_field} must be a non-empty string")
    if bucket is not None and not (isinstance(bucket, str) and bucket.strip()):
        problems.append(f"{'s3.bucket' if nested else 'bucket'} must be a non-empty string when given")
    priority = data.get("priority")
    # bool is an int subclass; `true` is not a priority.
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        problems.append("priority must be an integer when given")
    if problems:
        raise InvalidMessageError("; ".join(problems), video_id=video_id)
    assert video_id is not None and isinstance(s3_key, str)  # no problem above: both are non-empty strings
    return VideoMessage(video_id=video_id, s3_key=s3_key, bucket=bucket, priority=priority)


_JOB_NAME_INVALID = re.compile(r"[^A-Za-z0-9_-]")


def job_name_for(video_id: str) -> str:
    """``video-<video_id>`` reduced to Batch's rules: [A-Za-z0-9_-], at most 128 characters."""
    return _JOB_NAME_INVALID.sub("_", f"video-{video_id}")[:MAX_JOB_NAME_LENGTH]


def submit_job_params(message: VideoMessage, settings: Settings) -> dict[str, Any]:
    environment = [
        {"name": "VIDEO_ID", "value": message.video_id},
        {"name": "S3_KEY", "value": message.s3_key},
    ]
    if message.bucket is not None:
        environment.append({"name": "RAW_BUCKET", "value": message.bucket})
    if message.priority is not None:
        # Passed through, not used as schedulingPriorityOverride: that is only valid on fair-share
        # queues and the platform's queue is FIFO.
        environment.append({"name": "PRIORITY", "value": str(message.priority)})
    return {
        "jobName": job_name_for(message.video_id),
        "jobQueue": settings.job_queue,
        "jobDefinition": settings.job_definition,
        "containerOverrides": {"environment": environment},
    }


def claim(
    dynamodb: Any,
    settings: Settings,
    message: VideoMessage,
    *,
    message_id: str,
    token: str,
    now: int,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Write the claim. Returns (the holder's item, None) when another claim holds the video, else
    (None, the expired item this claim replaced, or None)."""
    try:
        response = dynamodb.put_item(
            TableName=settings.table,
            Item={
                "video_id": {"S": message.video_id},
                "status": {"S": STATUS_IN_FLIGHT},
                "claim_token": {"S": token},
                "message_id": {"S": message_id},
                "s3_key": {"S": message.s3_key},
                "claimed_at": {"N": str(now)},
                "expires_at": {"N": str(now + settings.claim_ttl_seconds)},
            },
            # An expired claim is free even before DynamoDB's TTL sweep has deleted it.
            ConditionExpression="attribute_not_exists(video_id) OR expires_at < :now",
            ExpressionAttributeValues={":now": {"N": str(now)}},
            # Returns the holder's item on conflict, so a duplicate costs no extra read.
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            # ... and the expired item on success, so a takeover knows it may follow a crashed submit.
            ReturnValues="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return exc.response.get("Item") or {}, None
        raise ClaimError(f"claim failed: {exc}", video_id=message.video_id) from exc
    except BotoCoreError as exc:
        raise ClaimError(f"claim failed: {exc}", video_id=message.video_id) from exc
    return None, response.get("Attributes") or None


def find_live_job(batch: Any, settings: Settings, job_name: str, *, since_ms: int) -> str | None:
    """The id of a job of this name created since `since_ms` that has not FAILED, or None.

    With ``filters``, ListJobs ignores ``jobStatus`` and returns jobs in every status (AWS Batch API
    reference, ListJobs); results are paged with nextToken.
    """
    kwargs: dict[str, Any] = {"jobQueue": settings.job_queue, "filters": [{"name": "JOB_NAME", "values": [job_name]}]}
    while True:
        page = batch.list_jobs(**kwargs)
        for job in page.get("jobSummaryList", []):
            if (
                job.get("jobName") == job_name
                and job.get("status") != "FAILED"
                and int(job.get("createdAt", 0)) >= since_ms
            ):
                return str(job["jobId"])
        if not page.get("nextToken"):
            return None
        kwargs["nextToken"] = page["nextToken"]


def release(dynamodb: Any, settings: Settings, video_id: str, token: str) -> None:
    """Delete our own claim so the retry can claim again; a failure only delays that to the TTL."""
    try:
        dynamodb.delete_item(
            TableName=settings.table,
            Key={"video_id": {"S": video_id}},
            ConditionExpression="claim_token = :token",
            ExpressionAttributeValues={":token": {"S": token}},
        )
    except (ClientError, BotoCoreError) as exc:
        _emit({"level": "WARNING", "video_id": video_id, "message": f"claim release failed: {exc}"})


def record_submission(dynamodb: Any, settings: Settings, video_id: str, token: str, job_id: str, *, now: int) -> None:
    try:
        dynamodb.update_item(
            TableName=settings.table,
            Key={"video_id": {"S": video_id}},
            UpdateExpression="SET #status = :submitted, job_id = :job_id, "
            "submitted_at = :now, expires_at = :expires_at",
            ConditionExpression="claim_token = :token",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":submitted": {"S": STATUS_SUBMITTED},
                ":job_id": {"S": job_id},
                ":now": {"N": str(now)},
                # A submitted video stays a duplicate much longer than an in-flight claim.
                ":expires_at": {"N": str(now + settings.submitted_ttl_seconds)},
                ":token": {"S": token},
            },
        )
    except (ClientError, BotoCoreError) as exc:
        _emit(
            {
                "level": "WARNING",
                "video_id": video_id,
                "job_id": job_id,
                "message": f"claim update failed: {exc}",
            }
        )


def log_record(
    message_id: str, video_id: str | None, outcome: str, job_id: str | None, *, error: str | None = None
) -> None:
    line: dict[str, Any] = {
        "level": "ERROR" if outcome in (OUTCOME_INVALID, OUTCOME_ERROR) else "INFO",
        "message_id": message_id,
        "video_id": video_id,
        "outcome": outcome,
        "job_id": job_id,
    }
    if error is not None:
        line["error"] = error
    _emit(line)


def _emit(line: Mapping[str, Any]) -> None:
    # A bare JSON line on stdout lands in CloudWatch as-is, so Logs Insights can query its fields.
    sys.stdout.write(json.dumps(line, default=str) + "\n")


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise RuntimeError(f"{name} must be positive, got {value}")
    return value
