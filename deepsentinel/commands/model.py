"""`deepsentinel model publish FILE [--key KEY] [--env] [--local [--workdir]]`: weights into the models bucket.

The job definitions read their weights from `s3://<analysis-models bucket>/<model_key>` (the `model_key`
setting). Publishing checks that ultralytics loads the file as the worker does (a detection model, one
forward pass), then uploads it under a content-addressed key, `models/<stem>-<sha256 prefix>.pt`, encrypted
with the bucket's own KMS key, and prints the key and how to make the job definitions use it.

Keys are write-once: workers cache weights by key (and the golden AMI holds them by file name), so a key that
named other bytes would leave running hosts on the old weights. Publishing the same file again finds the
object (its `sha256` metadata) and uploads nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsentinel.commands import arguments
from deepsentinel.errors import OperationFailed

MODELS_BUCKET_PURPOSE = "analysis-models"
KEY_PREFIX = "models/"
SHA256_PREFIX_LENGTH = 12  # 48 bits of the digest in the key: collisions are not a practical concern
SHA256_METADATA = "sha256"  # user metadata (x-amz-meta-sha256): the whole digest, what idempotency compares
_UNSAFE_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9!_.*'()-]")
PROBE_IMAGE_SIZE = 64  # the load check's forward pass: small, so it costs well under a second on a CPU


class ModelPublishError(OperationFailed):
    """The file is not weights the worker can load, or the bucket cannot take it (the message says which)."""


@dataclass(frozen=True, kw_only=True)
class Published:
    bucket: str
    key: str
    sha256: str
    size: int
    uploaded: bool  # False: the object was there already (same sha256)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    publish = actions.add_parser(
        "publish",
        help="check that ultralytics loads FILE, upload it to the environment's "
        "models bucket, print the model_key to deploy",
    )
    publish.add_argument("file", type=Path, metavar="FILE", help="the weights (.pt), e.g. a trained YOLO detector")
    publish.add_argument(
        "--key",
        default=None,
        help=f"the object key instead of {KEY_PREFIX}<stem>-<sha256 prefix>.pt (write-once: refused "
        "if it holds other weights)",
    )
    arguments.add_settings_arguments(publish, multiple_envs=False, out_help=None)
    arguments.add_local_arguments(publish)


def run(args: argparse.Namespace) -> int:
    (settings,) = arguments.settings_from_args(args, default_envs=("dev",))
    from deepsentinel.extras import require_worker_extra
    from deepsentinel.settings import MODEL_KEY_RULE, is_model_key
    from deepsentinel.target import target_from_args

    if not args.file.is_file():
        print(f"error: {args.file}: no such file", file=sys.stderr)
        return 2
    if args.key is not None and not is_model_key(args.key):
        print(f"error: --key {args.key!r} cannot name weights; allowed: {MODEL_KEY_RULE}", file=sys.stderr)
        return 2
    require_worker_extra("model publish", ("torch", "ultralytics"))  # the load check runs ultralytics here
    target = target_from_args(args, settings)
    bucket = settings.bucket_name(MODELS_BUCKET_PURPOSE)
    deploy = f"deepsentinel deploy --env {settings.environment}{target.local_flag}"
    published = publish_model(
        target.client("s3"),
        args.file,
        bucket=bucket,
        key=args.key,
        deploy_command=deploy,
        where=target.where,
        progress=_progress_printer(),
    )
    print(
        f"{'published' if published.uploaded else 'already published'}: {published.uri} "
        f"({published.size:,} bytes, sha256 {published.sha256})"
    )
    if settings.model_key == published.key:
        print(f"the job definitions of {settings.prefix} already use it (model_key = {published.key!r})")
        return 0
    print(
        "next: make the job definitions use it (the setting model_key), then deploy:\n"
        f"  {deploy} -c model_key={published.key}\n"
        f"or in the settings file (--settings FILE), under [{settings.environment}]:\n"
        f'  model_key = "{published.key}"'
    )
    return 0


def content_addressed_key(path: Path, sha256: str) -> str:
    """`models/<stem>-<sha256 prefix>.pt`, the stem reduced to S3's safe characters."""
    stem = _UNSAFE_KEY_CHARACTERS.sub("-", path.stem) or "model"
    return f"{KEY_PREFIX}{stem}-{sha256[:SHA256_PREFIX_LENGTH]}.pt"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as weights:
        for chunk in iter(lambda: weights.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_loads(path: Path) -> str:
    """Load the file as the worker does (video_worker.detect: `YOLO(path, task="detect")`) and run one forward pass;
    return a one-line description. Raises ModelPublishError when ultralytics cannot use it for detection."""
    os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks or downloads from a publishing machine
    try:
        import numpy as np
        from ultralytics import YOLO
    except ImportError as error:
        from deepsentinel.extras import INSTALL_WORKER_EXTRA

        raise ModelPublishError(
            f"ultralytics cannot be imported here, and the file must be checked before it is "
            f"published ({error}): {INSTALL_WORKER_EXTRA}"
        ) from error
    if path.suffix != ".pt":
        raise ModelPublishError(f"{path} is not a .pt file: the worker loads PyTorch weights (.pt) only")
    try:
        model = YOLO(str(path), task="detect")
    except Exception as error:  # ultralytics raises TypeError, RuntimeError, UnpicklingError, ... for bad files
        raise ModelPublishError(f"{path} is not a model ultralytics loads: {_first_line(error)}") from error
    if model.task != "detect":
        raise ModelPublishError(f"{path} is a {model.task!r} model; the worker needs a detection model (task 'detect')")
    if not model.names:
        raise ModelPublishError(f"{path} has no class names: the worker names each event after its class")
    try:
        model.predict(
            [np.zeros((PROBE_IMAGE_SIZE, PROBE_IMAGE_SIZE, 3), np.uint8)],
            imgsz=PROBE_IMAGE_SIZE,
            device="cpu",
            verbose=False,
            save=False,
        )
    except Exception as error:
        raise ModelPublishError(
            f"{path} loads but cannot detect (a forward pass failed): {_first_line(error)}"
        ) from error
    return f"{type(model.model).__name__}, {len(model.names)} classes"


def publish_model(
    s3: Any,
    path: Path,
    *,
    bucket: str,
    key: str | None = None,
    deploy_command: str = "deepsentinel deploy",
    where: str = "AWS",
    progress: Callable[[str], None] | None = None,
    check: Callable[[Path], str] = check_loads,
) -> Published:
    """Check `path`, then upload it to `bucket` under `key` (default: content-addressed) unless it is there already.

    Encrypted with the bucket's default KMS key, named explicitly: an `aws:kms` request without a key id would use
    the account's AWS managed key (aws/s3) instead (S3 API Reference, PutObject, x-amz-server-side-encryption).
    """
    say = progress or (lambda _text: None)
    kms_key_id = _bucket_kms_key(s3, bucket, deploy_command=deploy_command, where=where)  # fails fast, before torch
    size = path.stat().st_size
    sha256 = file_sha256(path)
    say(f"checking {path} with ultralytics ...")
    say(f"loads: {check(path)}")
    key = key or content_addressed_key(path, sha256)
    existing = _head(s3, bucket, key)
    if existing is not None:
        if existing.get("Metadata", {}).get(SHA256_METADATA) == sha256:
            say(
                f"s3://{bucket}/{key} already holds this file (sha256 {sha256[:SHA256_PREFIX_LENGTH]}...): "
                "nothing to upload"
            )
            return Published(bucket=bucket, key=key, sha256=sha256, size=size, uploaded=False)
        raise ModelPublishError(
            f"s3://{bucket}/{key} already holds other weights (sha256 "
            f"{existing.get('Metadata', {}).get(SHA256_METADATA, 'unknown')}); keys are never overwritten, since "
            "workers cache weights by key: publish without --key (a content-addressed key) or choose a new key"
        )
    say(f"uploading {size:,} bytes to s3://{bucket}/{key} (SSE-KMS, {kms_key_id}) ...")
    s3.upload_file(
        str(path),
        bucket,
        key,
        Callback=_UploadProgress(size, say),
        ExtraArgs={
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": kms_key_id,
            "Metadata": {SHA256_METADATA: sha256},
            "ContentType": "application/octet-stream",
        },
    )
    stored = _head(s3, bucket, key) or {}
    if stored.get("ServerSideEncryption") != "aws:kms":
        raise ModelPublishError(
            f"s3://{bucket}/{key} was stored with {stored.get('ServerSideEncryption')!r}, not SSE-KMS"
        )
    return Published(bucket=bucket, key=key, sha256=sha256, size=size, uploaded=True)


def _bucket_kms_key(s3: Any, bucket: str, *, deploy_command: str, where: str) -> str:
    """The KMS key of the bucket's default encryption; a missing bucket is an environment not deployed."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise ModelPublishError(
                f"the models bucket {bucket} does not exist on {where}: deploy the environment "
                f"first (`{deploy_command}`)"
            ) from error
        if code in ("403", "AccessDenied"):
            raise ModelPublishError(
                f"these credentials may not use the models bucket {bucket} (403): publishing "
                "needs s3:ListBucket, s3:GetEncryptionConfiguration, s3:GetObject and "
                "s3:PutObject on it, and kms:GenerateDataKey on the environment's key"
            ) from error
        if code == "ServerSideEncryptionConfigurationNotFoundError":
            raise ModelPublishError(
                f"{bucket} has no default encryption: it is not the platform's models bucket "
                f"as deployed (run `{deploy_command}`)"
            ) from error
        raise
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    if default.get("SSEAlgorithm") != "aws:kms" or not default.get("KMSMasterKeyID"):
        raise ModelPublishError(
            f"{bucket}'s default encryption is {default or 'unset'}, not SSE-KMS with the "
            f"environment's key: it is not the platform's models bucket as deployed "
            f"(run `{deploy_command}`)"
        )
    return str(default["KMSMasterKeyID"])


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


class _UploadProgress:
    """boto3's transfer callback (bytes per chunk, from its worker threads) as a line every 10 %."""

    def __init__(self, total: int, say: Callable[[str], None]) -> None:
        self._total, self._say = max(total, 1), say
        self._sent, self._reported = 0, -1
        self._lock = threading.Lock()

    def __call__(self, sent: int) -> None:
        with self._lock:
            self._sent += sent
            tenth = min(10, self._sent * 10 // self._total)
            if tenth > self._reported:
                self._reported = tenth
                self._say(f"  {tenth * 10:3d}% ({self._sent:,} of {self._total:,} bytes)")


def _progress_printer() -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    return say


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
