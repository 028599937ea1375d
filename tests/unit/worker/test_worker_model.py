"""Where the worker's weights come from: the golden AMI's directory (MODEL_DIR) before S3, and a missing model as
a named, final error (moto S3/SNS/SQS, PostgreSQL 16 + pgvector)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from video_worker.__main__ import main
from video_worker.config import WorkerConfig
from video_worker.detect import resolve_model_path
from video_worker.errors import ModelMissing, RetryableError
from video_worker.exit_codes import EXIT_BAD_INPUT

REGION = "ap-northeast-2"
WEIGHTS = b"weights of the golden AMI"
SHA = hashlib.sha256(WEIGHTS).hexdigest()


class NoDownloads:
    """An S3 client that must not be asked: the weights are on the host."""

    def download_file(self, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"the worker downloaded {args} although MODEL_DIR has the weights")


class Unreachable:
    def download_file(self, *args: object, **kwargs: object) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.ap-northeast-2.amazonaws.com")


def _models_bucket(objects: dict[str, bytes]) -> Any:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
    for key, body in objects.items():
        s3.put_object(Bucket="models", Key=key, Body=body)
    return s3


def test_model_dir_comes_from_the_job_environment() -> None:
    base = {"VIDEO_ID": "v", "S3_KEY": "k", "RAW_BUCKET": "r", "HIGHLIGHTS_BUCKET": "h",
            "DATABASE_URL": "postgresql://x", "MODEL_URI": "s3://models/models/yolov8n.pt"}
    assert WorkerConfig.from_env(base).model_dir is None
    assert WorkerConfig.from_env({**base, "MODEL_DIR": "/opt/deepsentinel/models"}).model_dir == \
        "/opt/deepsentinel/models"


def test_the_amis_weights_are_used_before_any_download(tmp_path: Path) -> None:
    """The Packer template copies the object under its own file name (`aws s3 cp s3://b/<key> <dir>/<file name>`);
    with MODEL_DIR set the worker takes that file and never asks S3."""
    model_dir = tmp_path / "opt-models"
    model_dir.mkdir()
    key = f"models/yolov8n-{SHA[:12]}.pt"
    (model_dir / f"yolov8n-{SHA[:12]}.pt").write_bytes(WEIGHTS)
    path = resolve_model_path(f"s3://models/{key}", s3=NoDownloads(), cache_dir=str(tmp_path / "cache"),
                              model_dir=str(model_dir))
    assert Path(path) == model_dir / f"yolov8n-{SHA[:12]}.pt"
    # A plain name (the default model_key) is taken as is: nothing in it to check.
    (model_dir / "yolov8n.pt").write_bytes(b"plain")
    assert resolve_model_path("s3://models/models/yolov8n.pt", s3=NoDownloads(), cache_dir=str(tmp_path),
                              model_dir=str(model_dir)) == str(model_dir / "yolov8n.pt")


def test_other_weights_under_a_content_addressed_name_are_not_used(aws: None, tmp_path: Path) -> None:
    """An AMI baked with other bytes under that name (its sha256 does not start with the name's prefix) is
    passed over: the key's own object is downloaded."""
    model_dir = tmp_path / "opt-models"
    model_dir.mkdir()
    name = f"yolov8n-{SHA[:12]}.pt"
    (model_dir / name).write_bytes(b"stale weights")
    s3 = _models_bucket({f"models/{name}": WEIGHTS})
    path = resolve_model_path(f"s3://models/models/{name}", s3=s3, cache_dir=str(tmp_path / "cache"),
                              model_dir=str(model_dir))
    assert Path(path).parent != model_dir and Path(path).read_bytes() == WEIGHTS


def test_without_the_file_on_the_host_the_weights_are_downloaded(aws: None, tmp_path: Path) -> None:
    """A host without the AMI's weights: Docker creates a missing host sourcePath empty ("Host", AWS Batch API
    Reference, https://docs.aws.amazon.com/batch/latest/APIReference/API_Host.html), so MODEL_DIR is empty and
    the worker downloads."""
    empty = tmp_path / "empty"
    empty.mkdir()
    s3 = _models_bucket({"models/yolov8n.pt": WEIGHTS})
    path = resolve_model_path("s3://models/models/yolov8n.pt", s3=s3, cache_dir=str(tmp_path / "cache"),
                              model_dir=str(empty))
    assert Path(path).read_bytes() == WEIGHTS and not list(empty.iterdir())


def test_a_missing_model_is_a_named_final_error(aws: None, tmp_path: Path) -> None:
    """GetObject answers a missing key with 404 NoSuchKey when the caller may list the bucket (S3 API Reference,
    GetObject, https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): no retry makes it appear."""
    s3 = _models_bucket({})
    with pytest.raises(ModelMissing) as missing:
        resolve_model_path("s3://models/models/yolov8n.pt", s3=s3, cache_dir=str(tmp_path))
    assert "s3://models/models/yolov8n.pt does not exist" in str(missing.value)
    assert "deepsentinel model publish" in str(missing.value)
    assert missing.value.exit_code == EXIT_BAD_INPUT
    assert not list((tmp_path / "models").rglob("*.part"))  # no half-written file left to be taken for weights
    with pytest.raises(ModelMissing):  # the bucket itself is gone
        resolve_model_path("s3://no-such-bucket/models/yolov8n.pt", s3=s3, cache_dir=str(tmp_path))


def test_a_403_names_both_causes(aws: None, tmp_path: Path) -> None:
    """Without s3:ListBucket S3 answers a missing key with 403 Access Denied (S3 API Reference, GetObject,
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): the message says so."""
    s3 = boto3.client("s3", region_name=REGION)
    with Stubber(s3) as stub:  # the download's first call is HeadObject (s3transfer)
        stub.add_client_error("head_object", service_error_code="403", service_message="Forbidden",
                              http_status_code=403)
        with pytest.raises(ModelMissing) as refused:
            resolve_model_path("s3://models/models/yolov8n.pt", s3=s3, cache_dir=str(tmp_path))
    assert "403" in str(refused.value) and "missing" in str(refused.value) and "may not read" in str(refused.value)


def test_an_unreachable_s3_is_retried(tmp_path: Path) -> None:
    with pytest.raises(RetryableError):
        resolve_model_path("s3://models/models/yolov8n.pt", s3=Unreachable(), cache_dir=str(tmp_path))


def test_a_job_whose_model_is_missing_ends_failed_at_once(
        aws: None, job_env: dict[str, str], db: psycopg.Connection, tmp_path: Path, videos: dict[str, Path]) -> None:
    """Exit 65 is the job definition's "do not retry" code; the video (readable: the worker reads it before the
    model) ends FAILED on this first attempt with the reason, and FAILED is published on the video-events topic."""
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="deepsentinel-dev-video-events")["TopicArn"]
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    s3 = _models_bucket({})
    for bucket in (job_env["RAW_BUCKET"], job_env["HIGHLIGHTS_BUCKET"]):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.upload_file(str(videos["good"]), job_env["RAW_BUCKET"], job_env["S3_KEY"])
    job_env.update(VIDEO_ID="no-model-1", MODEL_URI="s3://models/models/yolov8n.pt", JOB_ATTEMPTS="3",
                   AWS_BATCH_JOB_ATTEMPT="1", VIDEO_EVENTS_TOPIC_ARN=topic, MODEL_CACHE_DIR=str(tmp_path))
    assert main(job_env, s3=s3) == EXIT_BAD_INPUT
    status, reason = db.execute("SELECT status, failure_reason FROM videos WHERE video_id = 'no-model-1'").fetchone()
    assert status == "FAILED" and "s3://models/models/yolov8n.pt does not exist" in reason
    (message,) = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue).get("Messages", [])]
    assert (message["video_id"], message["status"]) == ("no-model-1", "FAILED")
    assert "deepsentinel model publish" in message["reason"]
