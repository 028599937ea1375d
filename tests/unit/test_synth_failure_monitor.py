"""The failure monitor as synthesized: what it needs to end a video FAILED (issue 17 item 7), and no more."""

from __future__ import annotations

import json
import zipfile

from tests.unit.synth_helpers import named, only, ref


def _monitor(document):
    return named(document, "aws_lambda_function", "batch_failure_monitor")[1]


def test_the_monitor_gets_the_database_endpoint_its_secret_and_the_video_events_topic(platform):
    """The endpoint comes from the DB instance and the credentials from the RDS-managed secret, as the worker's."""
    variables = _monitor(platform.dev)["environment"]["variables"]
    db_name, _ = only(platform.dev, "aws_db_instance")
    assert variables["DB_HOST"] == ref("aws_db_instance", db_name, "address")
    assert variables["DB_PORT"] == ref("aws_db_instance", db_name, "port")
    assert variables["DB_SECRET_ARN"].startswith("${aws_db_instance." + db_name + ".master_user_secret")
    topic_name, _ = named(platform.dev, "aws_sns_topic", "video-events")
    assert variables["VIDEO_EVENTS_TOPIC_ARN"] == ref("aws_sns_topic", topic_name, "arn")


def test_the_monitor_role_reads_only_the_db_secret_and_publishes_to_its_two_topics(platform):
    _, role_policy = named(platform.dev, "aws_iam_role_policy", "lambda-batch-failure-monitor")
    statements = {s["Sid"]: s for s in json.loads(role_policy["policy"])["Statement"]}
    variables = _monitor(platform.dev)["environment"]["variables"]
    assert statements["ReadDbSecret"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert statements["ReadDbSecret"]["Resource"] == [variables["DB_SECRET_ARN"]]
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
