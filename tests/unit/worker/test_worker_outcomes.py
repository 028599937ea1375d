"""How a video ends: the last attempt, S3's refusals, and the completion notification (moto S3/SNS/SQS,
PostgreSQL 16 + pgvector)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from video_worker.__main__ import main
from video_worker.exit_codes import EXIT_BAD_INPUT, EXIT_OK, EXIT_RETRYABLE

REGION = "ap-northeast-2"


def _buckets(env: dict[str, str], video: Path | None) -> Any:
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (env["RAW_BUCKET"], env["HIGHLIGHTS_BUCKET"]):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    if video is not None:
        s3.upload_file(str(video), env["RAW_BUCKET"], env["S3_KEY"])
    return s3


def _status(db: psycopg.Connection, video_id: str) -> tuple[str, str | None] | None:
    return db.execute("SELECT status, failure_reason FROM videos WHERE video_id = %s", (video_id,)).fetchone()


def _unreachable_s3() -> Any:
    # A closed loopback port: an S3 outage as the worker sees it (RetryableError, exit 75).
    return boto3.client("s3", region_name=REGION, endpoint_url="http://127.0.0.1:9",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=1))


@pytest.fixture
def notifications(aws: None) -> Any:
    """The video-events topic with an SQS subscription, as `deepsentinel smoke` reads it."""
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="deepsentinel-dev-video-events")["TopicArn"]
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})

    def received() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    received.topic = topic  # type: ignore[attr-defined]
    return received


def test_a_retryable_failure_on_the_last_attempt_ends_the_video_failed(
        job_env: dict[str, str], detector: Any, db: psycopg.Connection, notifications: Any) -> None:
    """Batch runs a job at most `attempts` times and numbers them from 1 in AWS_BATCH_JOB_ATTEMPT ("AWS Batch
    job environment variables", https://docs.aws.amazon.com/batch/latest/userguide/job_env_vars.html): after the
    last one nothing will run again, so the video must not stay PROCESSING."""
    job_env.update(VIDEO_ID="last-1", JOB_ATTEMPTS="3", AWS_BATCH_JOB_ATTEMPT="3",
                   VIDEO_EVENTS_TOPIC_ARN=notifications.topic)
    assert main(job_env, s3=_unreachable_s3(), detector=detector) == EXIT_RETRYABLE
    status, reason = _status(db, "last-1")
    assert status == "FAILED" and reason.startswith("attempt 3 of 3: S3 download failed")
    (message,) = notifications()
    assert (message["video_id"], message["status"]) == ("last-1", "FAILED") and "S3 download" in message["reason"]


def test_a_retryable_failure_before_the_last_attempt_leaves_it_to_the_retry(
        job_env: dict[str, str], detector: Any, db: psycopg.Connection, notifications: Any) -> None:
    job_env.update(VIDEO_ID="retry-1", JOB_ATTEMPTS="3", AWS_BATCH_JOB_ATTEMPT="1",
                   VIDEO_EVENTS_TOPIC_ARN=notifications.topic)
    assert main(job_env, s3=_unreachable_s3(), detector=detector) == EXIT_RETRYABLE
    assert _status(db, "retry-1") == ("PROCESSING", None)
    assert notifications() == []


class _DeniedS3:
    """S3 answering GetObject with the 403 botocore raises when the role may not read or list."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def get_object(self, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                           "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_an_input_s3_refuses_is_final_not_retried(job_env: dict[str, str], detector: Any, aws: None,
                                                  db: psycopg.Connection) -> None:
    """Without s3:ListBucket S3 answers even a missing key with 403 AccessDenied ("GetObject", Permissions,
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): a retry of the same job cannot help."""
    job_env["VIDEO_ID"] = "denied-1"
    s3 = _DeniedS3(_buckets(job_env, None))
    assert main(job_env, s3=s3, detector=detector) == EXIT_BAD_INPUT
    status, reason = _status(db, "denied-1")
    assert status == "FAILED" and "s3:ListBucket" in reason


def test_a_missing_input_with_list_permission_is_a_404_and_final(job_env: dict[str, str], detector: Any, aws: None,
                                                                 db: psycopg.Connection) -> None:
    job_env["VIDEO_ID"] = "gone-1"
    _buckets(job_env, None)  # moto answers as S3 does for a caller with ListBucket: 404 NoSuchKey
    assert main(job_env, detector=detector, s3=boto3.client("s3", region_name=REGION)) == EXIT_BAD_INPUT
    assert "does not exist" in _status(db, "gone-1")[1]


def test_done_and_failed_videos_are_notified(videos: dict[str, Path], job_env: dict[str, str], detector: Any,
                                             db: psycopg.Connection, notifications: Any) -> None:
    job_env.update(VIDEO_ID="note-ok", VIDEO_EVENTS_TOPIC_ARN=notifications.topic)
    s3 = _buckets(job_env, videos["good"])
    assert main(job_env, s3=s3, detector=detector) == EXIT_OK
    (done,) = notifications()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=job_env["HIGHLIGHTS_BUCKET"],
                                                       Prefix="note-ok/").get("Contents", []))
    assert done["status"] == "DONE" and done["events"] >= 1 and sorted(done["highlight_keys"]) == keys
    job_env.update(VIDEO_ID="note-bad", S3_KEY="uploads/note-bad.mp4")
    s3.upload_file(str(videos["corrupt"]), job_env["RAW_BUCKET"], job_env["S3_KEY"])
    assert main(job_env, s3=s3, detector=detector) == EXIT_BAD_INPUT
    (failed,) = notifications()
    assert failed["status"] == "FAILED" and failed["reason"] and failed["highlight_keys"] == []


def test_an_unreadable_video_fails_before_the_model_is_loaded(videos: dict[str, Path], job_env: dict[str, str],
                                                              aws: None, db: psycopg.Connection,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ffprobe refuses the upload first: the job ends FAILED (exit 65) without fetching the weights or loading torch,
    the seconds a GPU instance would otherwise spend on a video it cannot read."""
    import video_worker.detect

    loads: list[str] = []
    monkeypatch.setattr(video_worker.detect, "load_detector", lambda cfg, *, s3: loads.append(cfg.model_uri))
    job_env["VIDEO_ID"] = "unreadable-1"
    assert main(job_env, s3=_buckets(job_env, videos["corrupt"])) == EXIT_BAD_INPUT
    assert loads == []
    status, reason = _status(db, "unreadable-1")
    assert status == "FAILED" and "unreadable video" in reason
