"""Hand-written fixture stacks in the cdk.tf.json shape (base and head of a small change) for the review."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

STACK = "deepsentinel-dev"


def res(module: str, rid: str, **config: Any) -> dict[str, Any]:
    return {"//": {"metadata": {"path": f"{STACK}/{module}/{rid}", "uniqueId": f"{module}_{rid}"}}, **config}


def base_document() -> dict[str, Any]:
    return {"resource": {
        "aws_vpc": {"network_vpc": res("network", "vpc", cidr_block="10.0.0.0/16")},
        "aws_nat_gateway": {"network_nat-0": res("network", "nat-0", subnet_id="subnet-1")},
        "aws_security_group": {"security_alb-sg": res("security", "alb-sg", name="alb", description="alb",
                                                      vpc_id="${aws_vpc.network_vpc.id}")},
        "aws_vpc_security_group_ingress_rule": {
            "security_alb-https": res("security", "alb-https", cidr_ipv4="0.0.0.0/0", from_port=443, to_port=443,
                                      ip_protocol="tcp", description="HTTPS",
                                      security_group_id="${aws_security_group.security_alb-sg.id}")},
        "aws_db_instance": {"storage_db": res(
            "storage", "db", identifier="deepsentinel-dev-postgres", engine="postgres", engine_version="16",
            instance_class="db.t3.micro", allocated_storage=20, storage_type="gp3", multi_az=False,
            deletion_protection=False, storage_encrypted=True, backup_retention_period=7,
            manage_master_user_password=True, username="deepsentinel")},
        "aws_s3_bucket": {
            "storage_raw-videos": res("storage", "raw-videos", bucket="deepsentinel-dev-raw-videos"),
            "storage_highlights": res("storage", "highlights", bucket="deepsentinel-dev-highlights")},
        "aws_s3_bucket_public_access_block": {
            f"storage_{b}-pab": res("storage", f"{b}-pab", bucket=f"${{aws_s3_bucket.storage_{b}.id}}",
                                    block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
                                    restrict_public_buckets=True) for b in ("raw-videos", "highlights")},
        "aws_s3_bucket_lifecycle_configuration": {"storage_raw-videos-lifecycle": res(
            "storage", "raw-videos-lifecycle", bucket="${aws_s3_bucket.storage_raw-videos.id}",
            rule=[{"id": "raw-videos-retention", "status": "Enabled", "filter": [{}],
                   "expiration": [{"days": 365}]}])},
        "aws_sqs_queue": {"pipeline_jobs-queue": res("pipeline", "jobs-queue", name="deepsentinel-dev-jobs")},
        "aws_lambda_function": {"pipeline_sqs_to_batch": res(
            "pipeline", "sqs_to_batch", function_name="deepsentinel-dev-sqs-to-batch", memory_size=256,
            role="${aws_iam_role.iam_lambda-role.arn}", handler="handler.handler", runtime="python3.12",
            filename="x.zip")},
        "aws_lambda_event_source_mapping": {"pipeline_jobs-to-lambda": res(
            "pipeline", "jobs-to-lambda", event_source_arn="${aws_sqs_queue.pipeline_jobs-queue.arn}",
            function_name="${aws_lambda_function.pipeline_sqs_to_batch.arn}")},
        "aws_iam_role": {"iam_lambda-role": res("iam", "lambda-role", name="lambda", assume_role_policy="{}")},
        "aws_iam_role_policy": {"iam_lambda-policy": res(
            "iam", "lambda-policy", name="lambda", role="${aws_iam_role.iam_lambda-role.id}",
            policy=json.dumps({"Version": "2012-10-17", "Statement": [
                {"Sid": "Consume", "Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                 "Resource": ["${aws_sqs_queue.pipeline_jobs-queue.arn}"]}]}))},
    }}


def head_document() -> dict[str, Any]:
    """The change under review: RDS class up, SSH opened to the world, a bucket removed, retention
    shortened, a wildcard IAM statement, and a resource type the price table does not know."""
    doc = copy.deepcopy(base_document())
    r = doc["resource"]
    r["aws_db_instance"]["storage_db"]["instance_class"] = "db.t3.small"
    r["aws_vpc_security_group_ingress_rule"]["security_alb-ssh"] = res(
        "security", "alb-ssh", cidr_ipv4="0.0.0.0/0", from_port=22, to_port=22, ip_protocol="tcp",
        description="SSH", security_group_id="${aws_security_group.security_alb-sg.id}")
    del r["aws_s3_bucket"]["storage_highlights"]
    del r["aws_s3_bucket_public_access_block"]["storage_highlights-pab"]
    r["aws_s3_bucket_lifecycle_configuration"]["storage_raw-videos-lifecycle"]["rule"][0]["expiration"] = [{"days": 30}]
    policy = json.loads(r["aws_iam_role_policy"]["iam_lambda-policy"]["policy"])
    policy["Statement"].append({"Sid": "Everything", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    r["aws_iam_role_policy"]["iam_lambda-policy"]["policy"] = json.dumps(policy)
    r["aws_mq_broker"] = {"pipeline_broker": res("pipeline", "broker", broker_name="x", engine_type="RabbitMQ")}
    return doc


def write_stacks(root: Path, documents: dict[str, dict[str, Any]]) -> Path:
    for name, doc in documents.items():
        path = root / "stacks" / name / "cdk.tf.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2))
    return root


USAGE = """
version = "0.1"
[workload]
videos_per_month = 1000
lambda_invocations_per_video = 1
lambda_duration_ms = 1000
sqs_requests_per_video = 4
s3_put_requests_per_video = 10
s3_get_requests_per_video = 10
[services]
service_hours_per_month = 730
nat_gb_per_month = 0
[resource."storage/highlights"]
storage_gb = 100
"""


@pytest.fixture(scope="session")
def fixture_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("review-fixture")
    (root / "usage.toml").write_text(USAGE)
    return {"base": write_stacks(root / "base", {STACK: base_document()}),
            "head": write_stacks(root / "head", {STACK: head_document()}),
            "usage": root / "usage.toml", "root": root}


@pytest.fixture(scope="session")
def fixture_baseline(fixture_dirs: dict[str, Path]) -> Path:
    """A baseline accepting every check the fixture *base* fails (one checkov run per session)."""
    from deepsentinel.review.policy import Baseline, evaluate
    from deepsentinel.synthesized import load, stack_files

    files = stack_files(fixture_dirs["base"])
    result = evaluate(files, {n: load(p) for n, p in files.items()}, Baseline.empty())
    assert result.error is None, result.error
    lines = ["version = 1"]
    for check in sorted({f.check_id for f in result.findings}):
        lines += ["[[suppress]]", f'check = "{check}"', 'reason = "accepted in the fixture base"']
    lines += ["[severity]", 'CKV_AWS_24 = "HIGH"']
    path = fixture_dirs["root"] / "baseline.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def fixture_review(fixture_dirs: dict[str, Path], fixture_baseline: Path) -> dict[str, Any]:
    """`deepsentinel review` of the fixture head against the fixture base (checkov runs once), writing every
    output at once: markdown (--out), data (--json on stdout), SARIF (--sarif) and the PR comment (--comment).
    It runs in the fixture's root, which is no git work tree, so SARIF paths are relative to that root."""
    from deepsentinel.cli import main

    root = fixture_dirs["root"]
    out, sarif, comment = root / "review.md", root / "review.sarif", root / "comment.md"
    stdout, cwd = io.StringIO(), os.getcwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(stdout):
            code = main(["review", "--head", str(fixture_dirs["head"]), "--base", str(fixture_dirs["base"]),
                         "--usage", str(fixture_dirs["usage"]), "--baseline", str(fixture_baseline),
                         "--out", str(out), "--json", "--sarif", str(sarif), "--comment", str(comment)])
    finally:
        os.chdir(cwd)
    return {"code": code, "markdown": out.read_text(), "stdout": stdout.getvalue(), "sarif": sarif,
            "comment": comment.read_text()}
