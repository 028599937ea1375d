"""Zero-downtime refactors: resource addresses are pinned by a committed snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepsentinel.addresses import compare, write_snapshot
from tests.conftest import REPO_ROOT

SNAPSHOT_DIR = REPO_ROOT / "addresses"


@pytest.mark.parametrize("stack", ["deepsentinel-dev", "deepsentinel-prod", "deepsentinel-account"])
def test_addresses_match_the_committed_snapshot(platform, stack):
    drift = compare(stack, platform.paths[stack], SNAPSHOT_DIR)
    assert drift.clean, drift.explain()


def test_a_renamed_bucket_is_reported_with_how_to_move_it(platform, tmp_path: Path):
    stack = "deepsentinel-dev"
    document = json.loads(platform.paths[stack].read_text())
    buckets = document["resource"]["aws_s3_bucket"]
    old = next(iter(buckets))
    buckets["storage_renamed-bucket_0000"] = buckets.pop(old)
    changed = tmp_path / "cdk.tf.json"
    changed.write_text(json.dumps(document))
    drift = compare(stack, changed, SNAPSHOT_DIR)
    assert drift.removed_stateful == [f"aws_s3_bucket.{old}"]
    assert drift.added == ["aws_s3_bucket.storage_renamed-bucket_0000"]
    assert "move_from_id" in drift.explain() and "deepsentinel addresses --update" in drift.explain()


def test_cdktf_move_api_emits_a_moved_block_that_satisfies_the_guard(tmp_path: Path):
    from cdktf import App, TerraformStack
    from cdktf_cdktf_provider_aws.provider import AwsProvider
    from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket

    def build(outdir: Path, construct_id: str, moved_from: str | None = None) -> Path:
        app = App(outdir=str(outdir))
        stack = TerraformStack(app, "moves")
        AwsProvider(stack, "aws", region="ap-northeast-2")
        bucket = S3Bucket(stack, construct_id, bucket="deepsentinel-move-test")
        if moved_from:
            bucket.move_from_id(moved_from)
        app.synth()
        return outdir / "stacks" / "moves" / "cdk.tf.json"

    before = build(tmp_path / "before", "videos")
    write_snapshot("moves", before, tmp_path / "snapshot")
    after = build(tmp_path / "after", "raw-videos", moved_from="aws_s3_bucket.videos")
    moved = json.loads(after.read_text())["moved"]
    assert moved == [{"from": "aws_s3_bucket.videos", "to": "aws_s3_bucket.raw-videos"}]
    drift = compare("moves", after, tmp_path / "snapshot")
    assert drift.removed_stateful == [] and drift.added == ["aws_s3_bucket.raw-videos"]
