"""The platform's S3 buckets and the retention of each: what the storage construct creates, and what the live tests
check on a deployment without importing cdktf (whose first import starts jsii's runtime, docs/local-speed.md)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from deepsentinel.settings import PlatformSettings


@dataclass(frozen=True)
class BucketSpec:
    """Retention of one bucket: None means kept forever."""

    purpose: str
    versioned: bool
    glacier_after_days: int | None = None
    expire_after_days: int | None = None
    noncurrent_expire_after_days: int | None = 90


BUCKETS = (
    BucketSpec("raw-videos", versioned=True),  # transition and expiration from the settings: bucket_specs
    BucketSpec("thumbnails", versioned=True, expire_after_days=90, noncurrent_expire_after_days=7),
    BucketSpec("highlights", versioned=True),
    BucketSpec("terraform-state", versioned=True, noncurrent_expire_after_days=None),  # keep every state version
    BucketSpec("analysis-models", versioned=True, noncurrent_expire_after_days=None),
)
RAW_VIDEOS = "raw-videos"


def bucket_specs(s: PlatformSettings) -> tuple[BucketSpec, ...]:
    """BUCKETS with the raw videos' retention from the settings (raw_video_glacier_after_days,
    raw_video_retention_days): the one bucket whose days an environment chooses."""
    return tuple(
        dataclasses.replace(
            spec, glacier_after_days=s.raw_video_glacier_after_days, expire_after_days=s.raw_video_retention_days
        )
        if spec.purpose == RAW_VIDEOS
        else spec
        for spec in BUCKETS
    )
