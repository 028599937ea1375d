"""Pipeline module: queue + DLQ, the Lambdas and their triggers, job definitions, alarms."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.unit.synth_helpers import named, of_type, only, ref


def test_jobs_queue_redrives_to_the_dlq_after_three_receives(platform):
    dlq_name, dlq = named(platform.dev, "aws_sqs_queue", "jobs-dlq")
    _, queue = named(platform.dev, "aws_sqs_queue", "jobs-queue")
    assert json.loads(queue["redrive_policy"]) == {"deadLetterTargetArn": ref("aws_sqs_queue", dlq_name, "arn"),
                                                   "maxReceiveCount": 3}
    key_name, _ = only(platform.dev, "aws_kms_key")
    assert queue["kms_master_key_id"] == dlq["kms_master_key_id"] == ref("aws_kms_key", key_name, "arn")
    _, function = named(platform.dev, "aws_lambda_function", "sqs_to_batch")
    assert queue["visibility_timeout_seconds"] > function["timeout"]
    claim_ttl = int(function["environment"]["variables"]["CLAIM_TTL_SECONDS"])
    assert function["timeout"] <= claim_ttl < queue["visibility_timeout_seconds"]


def test_event_source_mapping_reports_partial_failures(platform):
    queue_name, _ = named(platform.dev, "aws_sqs_queue", "jobs-queue")
    function_name, _ = named(platform.dev, "aws_lambda_function", "sqs_to_batch")
    _, mapping = only(platform.dev, "aws_lambda_event_source_mapping")
    assert mapping["event_source_arn"] == ref("aws_sqs_queue", queue_name, "arn")
    assert mapping["function_name"] == ref("aws_lambda_function", function_name, "arn")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["batch_size"] == 10 and mapping["scaling_config"] == {"maximum_concurrency": 5}


def test_lambdas_are_zipped_assets_with_their_environment(platform):
    functions = {f["function_name"]: f for f in of_type(platform.dev, "aws_lambda_function").values()}
    assert set(functions) == {"deepsentinel-dev-sqs-to-batch", "deepsentinel-dev-batch-failure-monitor",
                              "deepsentinel-dev-ecr-cleanup", "deepsentinel-dev-ecs-redeploy",
                              "deepsentinel-dev-batch-runnable-monitor"}
    for function in functions.values():
        assert function["filename"].startswith("assets/") and function["handler"] == "handler.handler"
        zip_file = platform.paths["deepsentinel-dev"].parent / function["filename"]
        assert "handler.py" in zipfile.ZipFile(zip_file).namelist()
    assert set(functions["deepsentinel-dev-sqs-to-batch"]["environment"]["variables"]) == {
        "JOB_QUEUE", "JOB_DEFINITION", "IDEMPOTENCY_TABLE", "CLAIM_TTL_SECONDS"}


def test_idempotency_table_keyed_on_video_id_with_ttl(platform):
    _, table = only(platform.dev, "aws_dynamodb_table")
    assert table["hash_key"] == "video_id" and table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["ttl"] == {"attribute_name": "expires_at", "enabled": True}


def test_job_definitions_retry_infrastructure_errors_not_bad_input(platform):
    definitions = {d["name"]: d for d in of_type(platform.dev, "aws_batch_job_definition").values()}
    assert set(definitions) == {"deepsentinel-dev-video-analysis-gpu", "deepsentinel-dev-video-analysis-cpu"}
    gpu = definitions["deepsentinel-dev-video-analysis-gpu"]
    retry = gpu["retry_strategy"]
    assert retry["attempts"] == 3
    assert {"on_exit_code": "65", "action": "EXIT"} in retry["evaluate_on_exit"]
    assert {"on_exit_code": "75", "action": "RETRY"} in retry["evaluate_on_exit"]
    assert gpu["timeout"] == {"attempt_duration_seconds": 3600}
    container = json.loads(gpu["container_properties"])
    assert {"type": "GPU", "value": "1"} in container["resourceRequirements"]
    cpu = json.loads(definitions["deepsentinel-dev-video-analysis-cpu"]["container_properties"])
    assert not [r for r in cpu["resourceRequirements"] if r["type"] == "GPU"]


def test_worker_exit_codes_match_the_job_definition():
    from deepsentinel.constructs import pipeline
    from video_worker import exit_codes

    assert (exit_codes.EXIT_BAD_INPUT, exit_codes.EXIT_RETRYABLE) == (pipeline.WORKER_EXIT_BAD_INPUT,
                                                                      pipeline.WORKER_EXIT_RETRYABLE)


def test_failed_batch_jobs_and_weekly_cleanup_trigger_their_lambdas(platform):
    rules = {r["name"]: r for r in of_type(platform.dev, "aws_cloudwatch_event_rule").values()}
    pattern = json.loads(rules["deepsentinel-dev-batch-failed"]["event_pattern"])
    assert pattern["detail-type"] == ["Batch Job State Change"] and pattern["detail"]["status"] == ["FAILED"]
    _, schedule = named(platform.dev, "aws_scheduler_schedule", "ecr-cleanup")
    assert schedule["schedule_expression"] == "cron(0 3 ? * SUN *)"
    # batch-succeeded: the dashboard's target-less rule that only counts SUCCEEDED jobs
    assert set(rules) == {"deepsentinel-dev-batch-failed", "deepsentinel-dev-db-secret-rotated",
                          "deepsentinel-dev-batch-succeeded"}
    assert len(of_type(platform.dev, "aws_cloudwatch_event_target")) == 2
    assert {p["principal"] for p in of_type(platform.dev, "aws_lambda_permission").values()} == {
        "events.amazonaws.com"}


def test_alarms_notify_the_topic(platform):
    topic_name, _ = named(platform.dev, "aws_sns_topic", "alerts")
    alarms = {a["alarm_name"].removeprefix("deepsentinel-dev-"): a
              for a in of_type(platform.dev, "aws_cloudwatch_metric_alarm").values()}
    # sqs-to-batch-error-rate: metric math (tests/unit/test_synth_operations.py), the web tier's in service-alarms
    assert set(alarms) == {"dlq-depth", "queue-age", "queue-depth", "sqs-to-batch-error-rate",
                           "batch-failure-monitor-errors", "ecr-cleanup-errors", "ecs-redeploy-errors",
                           "batch-runnable-monitor-errors", "jobs-stuck-runnable",
                           "alb-5xx", "frontend-tasks-below-desired", "backend-tasks-below-desired"}
    assert alarms["dlq-depth"]["threshold"] == 0
    for alarm in alarms.values():
        assert alarm["alarm_actions"] == [ref("aws_sns_topic", topic_name, "arn")]


def test_a_lambda_folder_without_handler_fails_synth_clearly(tmp_path: Path):
    from deepsentinel.app import synth
    from deepsentinel.constructs.pipeline import MissingHandlerError
    from deepsentinel.settings import load_settings

    for folder in ("sqs_to_batch", "batch_failure_monitor", "ecr_cleanup", "ecs_redeploy"):
        (tmp_path / "lambdas" / folder).mkdir(parents=True)
    (tmp_path / "lambdas" / "sqs_to_batch" / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    with pytest.raises(MissingHandlerError,
                       match="without handler.py .*batch_failure_monitor, ecr_cleanup, ecs_redeploy"):
        synth([load_settings("dev")], outdir=tmp_path / "out", lambdas_dir=tmp_path / "lambdas")


def test_github_issues_for_failed_jobs_are_wired_when_configured(tmp_path: Path):
    from deepsentinel.app import synth
    from deepsentinel.settings import load_settings
    from deepsentinel.synthesized import load

    token = "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:github-token"
    settings = load_settings("dev", overrides=["github_repository=deepsentinel/platform",
                                               f"github_token_secret_arn={token}"])
    document = load(synth([settings], outdir=tmp_path, include_account_stack=False).stacks["deepsentinel-dev"])
    _, monitor = named(document, "aws_lambda_function", "batch_failure_monitor")
    assert monitor["environment"]["variables"]["GITHUB_REPOSITORY"] == "deepsentinel/platform"
    assert monitor["environment"]["variables"]["GITHUB_TOKEN_SECRET_ARN"] == token
    _, role_policy = named(document, "aws_iam_role_policy", "lambda-batch-failure-monitor-policy")
    statements = {s["Sid"]: s for s in json.loads(role_policy["policy"])["Statement"]}
    assert statements["ReadGithubToken"] == {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                                             "Resource": [token], "Sid": "ReadGithubToken"}


def test_the_github_token_needs_the_repository_but_not_the_other_way_round(tmp_path: Path):
    """The token only opens the failure monitor's issues (in github_repository); the repository alone is what the
    account stack's OIDC roles need, and then the monitor opens no issues."""
    from deepsentinel.app import synth
    from deepsentinel.settings import SettingsError, load_settings
    from deepsentinel.synthesized import load

    with pytest.raises(SettingsError, match="github_token_secret_arn: needs github_repository"):
        load_settings("dev", overrides=["github_token_secret_arn=arn:aws:secretsmanager:ap-northeast-2:"
                                        "123456789012:secret:github-token"])
    settings = load_settings("dev", overrides=["github_repository=deepsentinel/platform"])
    document = load(synth([settings], outdir=tmp_path, include_account_stack=False).stacks["deepsentinel-dev"])
    _, monitor = named(document, "aws_lambda_function", "batch_failure_monitor")
    assert not {"GITHUB_REPOSITORY", "GITHUB_TOKEN_SECRET_ARN"} & set(monitor["environment"]["variables"])


def test_video_events_go_to_an_email_subscription_when_set(tmp_path: Path):
    from deepsentinel.app import synth
    from deepsentinel.settings import load_settings
    from deepsentinel.synthesized import load

    settings = load_settings("dev", overrides=["video_events_email=ops@example.com"])
    document = load(synth([settings], outdir=tmp_path, include_account_stack=False).stacks["deepsentinel-dev"])
    topic_name, _ = named(document, "aws_sns_topic", "video-events")
    (subscription,) = [s for s in of_type(document, "aws_sns_topic_subscription").values()
                       if s["topic_arn"] == ref("aws_sns_topic", topic_name, "arn")]
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ops@example.com")
