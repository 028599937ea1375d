"""Stuck GPU jobs: batch_runnable_monitor every 5 minutes, and the alarm on the age it publishes (issue 17 item 13).

AWS Batch publishes no CloudWatch metric for jobs waiting in RUNNABLE ("Jobs stuck in a RUNNABLE status", AWS Batch
User Guide, https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable.html: the signals it offers
are the blocked-queue event and the job's statusReason, for the reasons Batch can infer), so the platform measures
the age itself and alarms on it.
"""

from __future__ import annotations

import json

import pytest

from tests.unit.lambdas.lambda_testkit import load_handler
from tests.unit.synth_helpers import named, of_type, policy, ref


def stuck_jobs_alarm(document: dict) -> dict:
    return named(document, "aws_cloudwatch_metric_alarm", "jobs-stuck-runnable")[1]


def test_the_alarm_watches_exactly_what_the_watcher_publishes(platform):
    """The alarm's namespace, metric and dimension are the function's: its environment and the handler's own names
    (the handler is packaged alone, so the names are written twice). A metric alarm matches a metric only on all
    of namespace, name and dimensions ("Amazon CloudWatch concepts", Dimensions: "you must specify the same
    dimensions that were used when the metrics were created")."""
    handler = load_handler("batch_runnable_monitor")
    for environment, document in (("dev", platform.dev), ("prod", platform.prod)):
        _, function = named(document, "aws_lambda_function", "batch_runnable_monitor")
        env = function["environment"]["variables"]
        settings = handler.Settings.from_env(env)
        alarm = stuck_jobs_alarm(document)
        assert alarm["namespace"] == settings.metric_namespace == f"DeepSentinel/deepsentinel-{environment}"
        assert alarm["metric_name"] == handler.AGE_METRIC
        assert alarm["dimensions"] == {handler.DIMENSION: settings.queue_name}
        (_, queue), = of_type(document, "aws_batch_job_queue").items()
        assert settings.queue_name == queue["name"] == f"deepsentinel-{environment}-video-analysis"


def test_a_job_waiting_past_the_setting_or_a_silent_watcher_alarms(platform):
    """Threshold job_runnable_alarm_minutes x 60 s on the Maximum age. "breaching": "Missing data points are treated
    as breaching the threshold" ("Configuring how CloudWatch alarms treat missing data", CloudWatch User Guide): the
    watcher publishes on every run, so silence is a broken watcher. 2 of 2 five-minute periods ("M out of N"), so
    one late run is not an alarm. Alarm and OK go to the alerts topic."""
    from deepsentinel.settings import load_settings

    alarm = stuck_jobs_alarm(platform.dev)
    topic_name, _ = named(platform.dev, "aws_sns_topic", "alerts")
    assert alarm["threshold"] == load_settings("dev").job_runnable_alarm_minutes * 60 == 1800
    assert (alarm["statistic"], alarm["comparison_operator"]) == ("Maximum", "GreaterThanThreshold")
    assert (alarm["period"], alarm["evaluation_periods"], alarm["datapoints_to_alarm"]) == (300, 2, 2)
    assert alarm["treat_missing_data"] == "breaching"
    assert alarm["alarm_actions"] == alarm["ok_actions"] == [ref("aws_sns_topic", topic_name, "arn")]


def test_the_watcher_runs_every_five_minutes_on_a_scheduler_schedule(platform):
    """An EventBridge Scheduler schedule `rate(5 minutes)` invokes its target with the schedule's role ("Schedule
    types on EventBridge Scheduler", rate-based schedules); that role must be allowed lambda:InvokeFunction on the
    function ("Set up the execution role", EventBridge Scheduler User Guide)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    _, schedule = named(platform.dev, "aws_scheduler_schedule", "runnable-jobs-check")
    function_id, _ = named(platform.dev, "aws_lambda_function", "batch_runnable_monitor")
    role_id, _ = named(platform.dev, "aws_iam_role", "scheduler-role")
    assert schedule["schedule_expression"] == "rate(5 minutes)"
    assert schedule["flexible_time_window"] == {"mode": "OFF"}
    assert schedule["target"] == {"arn": ref("aws_lambda_function", function_id, "arn"),
                                  "role_arn": ref("aws_iam_role", role_id, "arn")}
    role_policy = json.dumps(policy(named(platform.dev, "aws_iam_role_policy", "scheduler-policy")[1]))
    account = "${data.aws_caller_identity.current.account_id}"
    function_arn = f"arn:aws:lambda:ap-northeast-2:{account}:function:deepsentinel-dev-batch-runnable-monitor"
    assert IAMPolicy(role_policy.replace(account, "123456789012")).is_action_permitted(
        "lambda:InvokeFunction", function_arn.replace(account, "123456789012")) == PermissionResult.PERMITTED


def test_the_watcher_may_read_jobs_and_publish_only_in_its_namespace(platform):
    """ListJobs and DescribeJobs take Resource "*" (not in "Supported resource-level permissions for AWS Batch API
    actions"); PutMetricData is limited with the cloudwatch:namespace condition exactly as "Using condition keys to
    limit access to CloudWatch namespaces" (CloudWatch User Guide) shows. Nothing else of Batch (no SubmitJob,
    CancelJob): the watcher only looks."""
    statements = {s["Sid"]: s for s in policy(named(platform.dev, "aws_iam_role_policy",
                                                     "lambda-batch-runnable-monitor")[1])["Statement"]}
    assert statements["ReadWaitingJobs"]["Action"] == ["batch:ListJobs", "batch:DescribeJobs"]
    assert statements["ReadWaitingJobs"]["Resource"] == "*"
    publish = statements["PublishRunnableAge"]
    assert (publish["Action"], publish["Resource"]) == (["cloudwatch:PutMetricData"], "*")
    assert publish["Condition"] == {"StringEquals": {"cloudwatch:namespace": "DeepSentinel/deepsentinel-dev"}}
    actions = {a for s in statements.values() for a in s["Action"]}
    assert not {a for a in actions if a.startswith("batch:")} - {"batch:ListJobs", "batch:DescribeJobs"}


def test_the_dashboard_shows_the_waiting_jobs(platform):
    (dashboard,) = of_type(platform.dev, "aws_cloudwatch_dashboard").values()
    handler = load_handler("batch_runnable_monitor")
    metrics = [m for w in json.loads(dashboard["dashboard_body"])["widgets"] for m in w["properties"]["metrics"]]
    shown = {tuple(m[:4]) for m in metrics if not any(isinstance(part, dict) for part in m[:4])}
    for metric in (handler.AGE_METRIC, handler.COUNT_METRIC):
        assert ("DeepSentinel/deepsentinel-dev", metric, handler.DIMENSION, "deepsentinel-dev-video-analysis") in shown


@pytest.mark.parametrize(("minutes", "accepted"), [("9", False), ("10", True), ("1440", True), ("1441", False)])
def test_the_setting_takes_aws_batchs_own_range_for_a_runnable_time_limit(minutes, accepted):
    """10..1440 minutes: JobStateTimeLimitAction maxTimeSeconds "The minimum value is 600 (10 minutes) and the maximum
    value is 86,400 (24 hours)" (AWS Batch API Reference), AWS's own bounds for a job waiting too long in RUNNABLE."""
    from deepsentinel.settings import SettingsError, load_settings

    if accepted:
        assert load_settings("dev", overrides=[f"job_runnable_alarm_minutes={minutes}"]).job_runnable_alarm_minutes \
            == int(minutes)
        return
    with pytest.raises(SettingsError) as caught:
        load_settings("dev", overrides=[f"job_runnable_alarm_minutes={minutes}"])
    assert f"job_runnable_alarm_minutes: allowed 10..1440 (minutes a Batch job may wait in RUNNABLE before the " \
           f"alarm), got {minutes}" in caught.value.problems


def test_the_threshold_follows_the_setting(tmp_path):
    from deepsentinel.app import synth
    from deepsentinel.settings import load_settings
    from deepsentinel.synthesized import load

    settings = load_settings("dev", overrides=["job_runnable_alarm_minutes=45"])
    document = load(synth([settings], outdir=tmp_path, include_account_stack=False).stacks["deepsentinel-dev"])
    alarm = stuck_jobs_alarm(document)
    assert alarm["threshold"] == 45 * 60 and "over 45 minutes" in alarm["alarm_description"]
