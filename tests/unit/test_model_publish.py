"""`deepsentinel model publish`: checked with ultralytics, uploaded once under a content-addressed key with the
bucket's KMS key, and the next step printed (in-process moto S3/KMS/Batch; models built from ultralytics' YAML,
no downloads)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import boto3
import pytest

# Before the first ultralytics import of the session: no update checks, its settings out of the home directory.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "deepsentinel-tests-ultralytics"))

# One xdist worker runs them all: ultralytics is imported and the weights are built once, not once per worker.
pytestmark = pytest.mark.xdist_group("model_publish")
REGION = "ap-northeast-2"
BUCKET = "deepsentinel-dev-analysis-models"  # {project}-{env}-{purpose}, as the storage construct names it


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different detectors (each build is randomly initialised), a classifier and a file that is no model."""
    from ultralytics import YOLO

    d = tmp_path_factory.mktemp("weights")
    files = {"detector": d / "yolov8n.pt", "other": d / "other" / "yolov8n.pt", "classifier": d / "yolov8n-cls.pt",
             "junk": d / "junk.pt"}
    files["other"].parent.mkdir()
    YOLO("yolov8n.yaml").save(str(files["detector"]))
    YOLO("yolov8n.yaml").save(str(files["other"]))
    YOLO("yolov8n-cls.yaml").save(str(files["classifier"]))
    files["junk"].write_bytes(b"these are not weights\n" * 64)
    return files


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def _deployed_bucket() -> tuple[Any, str]:
    """The models bucket as the storage construct deploys it: versioned, SSE-KMS with the environment's key."""
    s3, kms = boto3.client("s3", region_name=REGION), boto3.client("kms", region_name=REGION)
    key_arn = kms.create_key(Description="environment key")["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True}]})
    return s3, key_arn


def _publish(*args: str) -> int:
    from deepsentinel.cli import main

    return main(["model", "publish", *args])


def test_publish_uploads_once_under_a_content_addressed_key_with_the_buckets_kms_key(aws, weights, capsys):
    s3, key_arn = _deployed_bucket()
    detector = weights["detector"]
    sha256 = hashlib.sha256(detector.read_bytes()).hexdigest()
    key = f"models/yolov8n-{sha256[:12]}.pt"

    assert _publish(str(detector), "--env", "dev") == 0
    out, err = capsys.readouterr()
    assert f"published: s3://{BUCKET}/{key}" in out
    assert f"deepsentinel deploy --env dev -c model_key={key}" in out
    assert f'model_key = "{key}"' in out and "[dev]" in out
    assert "loads: DetectionModel, 80 classes" in err and "100%" in err  # the check and the upload's progress
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == detector.read_bytes()
    # "If you specify x-amz-server-side-encryption:aws:kms but do not provide x-amz-server-side-encryption-aws-kms-
    # key-id, Amazon S3 uses the AWS managed key (aws/s3)" (S3 API Reference, PutObject): the key is named.
    assert stored["ServerSideEncryption"] == "aws:kms" and stored["SSEKMSKeyId"] == key_arn
    assert stored["Metadata"] == {"sha256": sha256}

    # Idempotent: the same file again uploads nothing (the versioned bucket still holds one version).
    assert _publish(str(detector), "--env", "dev") == 0
    assert f"already published: s3://{BUCKET}/{key}" in capsys.readouterr().out
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]) == 1


def test_a_key_already_configured_needs_no_next_step(aws, weights, capsys):
    _deployed_bucket()
    assert _publish(str(weights["detector"]), "--env", "dev", "--key", "models/yolov8n.pt") == 0
    out = capsys.readouterr().out
    assert f"published: s3://{BUCKET}/models/yolov8n.pt" in out  # the default model_key
    assert "already use it" in out and "deploy" not in out


def test_a_key_is_never_overwritten_with_other_weights(aws, weights, capsys):
    s3, _ = _deployed_bucket()
    assert _publish(str(weights["detector"]), "--key", "models/best.pt") == 0
    capsys.readouterr()
    assert _publish(str(weights["other"]), "--key", "models/best.pt") == 1
    err = capsys.readouterr().err
    assert f"s3://{BUCKET}/models/best.pt already holds other weights" in err and "never overwritten" in err
    assert s3.get_object(Bucket=BUCKET, Key="models/best.pt")["Body"].read() == weights["detector"].read_bytes()


@pytest.mark.parametrize("kind, message", [
    ("junk", "is not a model ultralytics loads"),
    ("classifier", "is a 'classify' model; the worker needs a detection model"),
])
def test_what_ultralytics_cannot_use_for_detection_is_not_uploaded(aws, weights, capsys, kind, message):
    s3, _ = _deployed_bucket()
    assert _publish(str(weights[kind])) == 1
    assert message in capsys.readouterr().err
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_a_missing_file_or_a_key_that_cannot_name_weights_is_a_usage_error(aws, tmp_path, weights, capsys):
    assert _publish(str(tmp_path / "best.pt")) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'best.pt'}: no such file"
    assert _publish(str(weights["detector"]), "--key", "/models/best.pt") == 2
    assert "--key '/models/best.pt' cannot name weights" in capsys.readouterr().err


def test_an_environment_not_deployed_names_the_bucket_and_the_command(aws, weights, capsys):
    assert _publish(str(weights["detector"]), "--env", "prod") == 1
    assert capsys.readouterr().err.strip() == (
        f"error: the models bucket deepsentinel-prod-analysis-models does not exist on AWS ({REGION}): deploy the "
        "environment first (`deepsentinel deploy --env prod`)")


def test_the_local_smoke_publishes_its_model_where_the_job_definition_points(aws, tmp_path):
    """`smoke --local` has no trained weights: it publishes the smoke model through the same path, at the key of
    the deployed job definition's MODEL_URI, and keeps what is there on the next run."""
    from deepsentinel.commands.smoke import LocalPlatform

    s3, key_arn = _deployed_bucket()
    # endpoint_url None: the in-process mock answers (a local deployment passes its moto server's address).
    local = LocalPlatform(session=boto3.Session(region_name=REGION), endpoint_url=None,  # type: ignore[arg-type]
                          region=REGION, outputs={}, stack_dir=tmp_path, scratch=tmp_path,
                          job_environment={"MODEL_URI": f"s3://{BUCKET}/models/yolov8n.pt"})
    said: list[str] = []
    local.publish_smoke_model(said.append)
    stored = s3.head_object(Bucket=BUCKET, Key="models/yolov8n.pt")
    assert stored["ServerSideEncryption"] == "aws:kms" and stored["SSEKMSKeyId"] == key_arn
    assert stored["Metadata"]["sha256"] == hashlib.sha256((tmp_path / "smoke-model.pt").read_bytes()).hexdigest()
    local.publish_smoke_model(said.append)
    assert "was empty; published the smoke model" in said[0] and "is published" in said[1]
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix="models/yolov8n.pt")["Versions"]) == 1


def test_an_interrupted_smoke_model_build_leaves_no_file_a_later_run_would_take_for_the_model(tmp_path, monkeypatch):
    """The build writes under a temporary name and renames when done: a build stopped halfway (here the child exits
    after writing part of its file) leaves neither the model nor the partial file; the next run builds it again. The
    child is a stand-in writing its file here (the build itself, torch and ultralytics in a child process, runs in
    the test above, whose publish loads the model as the worker does)."""
    import subprocess

    from deepsentinel.commands import smoke

    children: list[list[str]] = []

    def killed_halfway(argv, **kwargs):
        children.append(argv)
        Path(argv[-1]).write_bytes(b"PK\x03\x04 half of a torch archive")
        raise subprocess.CalledProcessError(-9, argv)

    def completed(argv, **kwargs):
        children.append(argv)
        Path(argv[-1]).write_bytes(b"PK\x03\x04 a whole torch archive")
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(smoke.subprocess, "run", killed_halfway)
    with pytest.raises(subprocess.CalledProcessError):
        smoke.build_smoke_model(tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(smoke.subprocess, "run", completed)
    built = smoke.build_smoke_model(tmp_path)
    assert built == tmp_path / smoke.SMOKE_MODEL_FILE and built.read_bytes().endswith(b"a whole torch archive")
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no partial file
    assert [argv[-3:-1] for argv in children] == [["-m", "deepsentinel.local.smoke_model"]] * 2
    assert all(Path(argv[-1]).parent == tmp_path and Path(argv[-1]) != built for argv in children)  # a temporary name
    assert smoke.build_smoke_model(tmp_path) == built and len(children) == 2  # built once: kept on the next run


def test_the_aws_smoke_stops_before_sending_a_video_when_the_model_is_not_published(aws):
    from deepsentinel.commands.smoke import SmokeError, require_published_model

    s3, _ = _deployed_bucket()
    batch = boto3.client("batch", region_name=REGION)
    arn = batch.register_job_definition(jobDefinitionName="deepsentinel-dev-video-analysis-gpu", type="container",
                                        containerProperties={"image": "worker:1", "vcpus": 4, "memory": 15360,
                                                             "environment": [{"name": "MODEL_URI", "value":
                                                                              f"s3://{BUCKET}/models/yolov8n.pt"}]}
                                        )["jobDefinitionArn"]
    with pytest.raises(SmokeError, match=r"models/yolov8n.pt is not published: run `deepsentinel model publish FILE "
                                         r"--env dev`"):
        require_published_model(batch, s3, {"gpu_job_definition_arn": arn}, "dev")
    s3.put_object(Bucket=BUCKET, Key="models/yolov8n.pt", Body=b"weights")
    require_published_model(batch, s3, {"gpu_job_definition_arn": arn}, "dev")
