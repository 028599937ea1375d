"""The failure monitor as synthesized: what it needs to end a video FAILED (issue 17 item 7), and no more."""

from __future__ import annotations

import json
import zipfile

from tests.unit.synth_helpers import named, only, ref


def _monitor(document):
    return named(document, "aws_lambda_function", "batch_failure_monitor")[1]


def test_the_monitor_names_the_database_instance_and_the_video_events_topic(platform):
    """The instance by its identifier and the database by its name, nothing the instance's creation makes: the function
    reads the endpoint and the RDS-managed secret when a job ends (lambdas/batch_failure_monitor), so the apply does not
    create it after the instance's 80 s (docs/local-speed.md)."""
    monitor = _monitor(platform.dev)
    variables = monitor["environment"]["variables"]
    _, instance = only(platform.dev, "aws_db_instance")
    assert variables["DB_INSTANCE"] == instance["identifier"] and variables["DB_NAME"] == instance["db_name"]
    assert not {"DB_HOST", "DB_PORT", "DB_SECRET_ARN"} & set(variables)
    assert "aws_db_instance" not in json.dumps(monitor)  # neither a reference nor a depends_on
    topic_name, _ = named(platform.dev, "aws_sns_topic", "video-events")
    assert variables["VIDEO_EVENTS_TOPIC_ARN"] == ref("aws_sns_topic", topic_name, "arn")


def test_the_monitor_role_reads_only_the_db_secret_and_publishes_to_its_two_topics(platform):
    """Its policy (which the function waits for) finds the instance; the secret, whose ARN exists only once the
    instance does, is read through a policy of its own, which the function does not wait for."""
    monitor = _monitor(platform.dev)
    policy_name, role_policy = named(platform.dev, "aws_iam_role_policy", "lambda-batch-failure-monitor-policy")
    statements = {s["Sid"]: s for s in json.loads(role_policy["policy"])["Statement"]}
    db_name, instance = only(platform.dev, "aws_db_instance")
    assert statements["FindTheDatabase"]["Action"] == ["rds:DescribeDBInstances"]
    assert statements["FindTheDatabase"]["Resource"] == [
        f"arn:aws:rds:ap-northeast-2:${{data.aws_caller_identity.current.account_id}}:db:{instance['identifier']}"]
    assert f"aws_iam_role_policy.{policy_name}" in monitor["depends_on"]
    secret_policy_name, secret_policy = named(platform.dev, "aws_iam_role_policy",
                                              "lambda-batch-failure-monitor-db-secret-policy")
    (read_secret,) = json.loads(secret_policy["policy"])["Statement"]
    assert read_secret["Sid"] == "ReadDbSecret" and read_secret["Action"] == ["secretsmanager:GetSecretValue"]
    assert read_secret["Resource"] == ["${aws_db_instance." + db_name + ".master_user_secret[0].secret_arn}"]
    assert secret_policy["role"] == role_policy["role"]
    assert f"aws_iam_role_policy.{secret_policy_name}" not in monitor["depends_on"]
    assert "secretsmanager:GetSecretValue" not in json.dumps(statements)
    assert statements["NotifyVideoEvents"]["Action"] == ["sns:Publish"]
    assert [r.rsplit(":", 1)[-1] for r in statements["NotifyVideoEvents"]["Resource"]] == [
        "deepsentinel-dev-video-events"]
    assert "UseEnvironmentKey" in statements  # the secret and the topic are encrypted with the environment's key


def test_the_monitor_package_carries_the_vendored_driver(platform):
    """The archive Terraform uploads holds the handler and pg8000 with its SCRAM dependency."""
    with zipfile.ZipFile(platform.paths["deepsentinel-dev"].parent / _monitor(platform.dev)["filename"]) as archive:
        names = set(archive.namelist())
    assert {"handler.py", "pg8000/native.py", "scramp/core.py", "asn1crypto/x509.py"} <= names
    assert not any(n.endswith(".pyc") for n in names)
