"""Operations: the dashboard, the alarms beyond the pipeline's, the cost guard, the dev database's night stop,
and the FIFO option of the jobs queue, read from the synthesized stacks."""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import re
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.iam.access_control import IAMPolicy, PermissionResult

from tests.unit.lambdas.lambda_testkit import load_handler
from tests.unit.synth_helpers import named, of_type, only, policy, ref

ACCOUNT = "${data.aws_caller_identity.current.account_id}"


def resolved(text: str) -> str:
    """Terraform references as plain words, for moto's policy matcher (see test_aws_behaviour.py)."""
    return re.sub(r"\$\{([^}]*)\}", lambda m: "tok-" + re.sub(r"[^A-Za-z0-9-]", "-", m.group(1)), text)


def permits(document: dict, action: str, resource: str) -> PermissionResult:
    return IAMPolicy(resolved(json.dumps(document))).is_action_permitted(action, resolved(resource))


def dashboard_metrics(document) -> tuple[dict, list[list]]:
    (dashboard,) = of_type(document, "aws_cloudwatch_dashboard").values()
    body = json.loads(dashboard["dashboard_body"])
    return dashboard, [m for w in body["widgets"] for m in w["properties"]["metrics"]]


def dimension(metric: list, name: str) -> str | None:
    """A widget metric is [namespace, name, dim, value, dim, value, ..., {options}]."""
    parts = [p for p in metric[2:] if not isinstance(p, dict)]
    return dict(zip(parts[::2], parts[1::2])).get(name)


def synth_with(tmp_path: Path, *overrides: str) -> dict:
    from deepsentinel.app import synth
    from deepsentinel.settings import load_settings
    from deepsentinel.synthesized import load

    result = synth([load_settings("dev", overrides=list(overrides))], outdir=tmp_path, include_account_stack=False)
    return load(result.stacks["deepsentinel-dev"])


# --- dashboard ------------------------------------------------------------------------------------------

def test_one_dashboard_per_environment_with_every_signal(platform):
    """Widget metrics follow "Dashboard body structure and syntax" (CloudWatch API reference): a metric widget
    needs a region and lists [namespace, metric, dimension, value, ..., {options}]."""
    for environment, document in (("dev", platform.dev), ("prod", platform.prod)):
        dashboard, metrics = dashboard_metrics(document)
        assert dashboard["dashboard_name"] == f"deepsentinel-{environment}"
        body = json.loads(dashboard["dashboard_body"])
        assert all(w["properties"]["region"] == "ap-northeast-2" and w["type"] == "metric" for w in body["widgets"])
        shown = {(m[0], m[1]) for m in metrics}
        assert {("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
                ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Duration"), ("AWS/Lambda", "Throttles"),
                (f"DeepSentinel/deepsentinel-{environment}", "JobsSubmitted"), ("AWS/Events", "TriggeredRules"),
                ("AWS/ECS", "CPUUtilization"), ("AWS/ECS", "MemoryUtilization"),
                ("ECS/ContainerInsights", "RunningTaskCount"), ("AWS/ApplicationELB", "RequestCount"),
                ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"), ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"),
                ("AWS/ApplicationELB", "TargetResponseTime"), ("AWS/RDS", "CPUUtilization"),
                ("AWS/RDS", "DatabaseConnections"), ("AWS/RDS", "FreeStorageSpace")} <= shown
        grid = [(w["x"], w["y"]) for w in body["widgets"]]
        assert len(set(grid)) == len(grid) and all(w["x"] + w["width"] <= 24 for w in body["widgets"])


def test_dashboard_metrics_name_the_deployed_resources(platform):
    """The body's dimensions are references Terraform resolves: the queues', functions', ALB's and DB's own."""
    document = platform.dev
    _, metrics = dashboard_metrics(document)
    queue_name, _ = named(document, "aws_sqs_queue", "jobs-queue")
    dlq_name, _ = named(document, "aws_sqs_queue", "jobs-dlq")
    lb_name, _ = only(document, "aws_lb")
    db_name, _ = only(document, "aws_db_instance")
    queues = {dimension(m, "QueueName") for m in metrics if m[0] == "AWS/SQS"}
    assert queues == {ref("aws_sqs_queue", queue_name, "name"), ref("aws_sqs_queue", dlq_name, "name")}
    assert {dimension(m, "LoadBalancer") for m in metrics if m[0] == "AWS/ApplicationELB"} == {
        ref("aws_lb", lb_name, "arn_suffix")}
    assert {dimension(m, "DBInstanceIdentifier") for m in metrics if m[0] == "AWS/RDS"} == {
        ref("aws_db_instance", db_name, "identifier")}
    functions = {ref("aws_lambda_function", n, "function_name") for n in of_type(document, "aws_lambda_function")
                 if n.startswith("pipeline_")}
    for metric_name in ("Errors", "Duration", "Throttles"):
        assert {dimension(m, "FunctionName") for m in metrics if m[1] == metric_name} == functions, metric_name
    services = {ref("aws_ecs_service", n, "name") for n in of_type(document, "aws_ecs_service")}
    for metric_name in ("CPUUtilization", "MemoryUtilization", "RunningTaskCount", "DesiredTaskCount"):
        assert {dimension(m, "ServiceName") for m in metrics if m[0] in ("AWS/ECS", "ECS/ContainerInsights")
                and m[1] == metric_name} == services, metric_name


def test_batch_job_counts_come_from_rules_and_the_submitters_log(platform):
    """AWS Batch sends an EventBridge event for every change of a job's state but none for the initial
    submission ("AWS Batch events", https://docs.aws.amazon.com/batch/latest/userguide/batch_cwe_events.html), and
    EventBridge counts per rule the events that matched it (TriggeredRules, dimension RuleName: "Monitoring Amazon
    EventBridge", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html). So SUCCEEDED and
    FAILED are counted by rules on this job queue, and submissions by a metric filter on sqs_to_batch's log lines."""
    document = platform.dev
    _, metrics = dashboard_metrics(document)
    job_queue_name, _ = only(document, "aws_batch_job_queue")
    rules = {ref("aws_cloudwatch_event_rule", n, "name"): r for n, r in of_type(document, "aws_cloudwatch_event_rule").items()}
    counted = [dimension(m, "RuleName") for m in metrics if m[1] == "TriggeredRules"]
    statuses = {json.loads(rules[name]["event_pattern"])["detail"]["status"][0] for name in counted}
    assert statuses == {"SUCCEEDED", "FAILED"}
    for name in counted:
        assert json.loads(rules[name]["event_pattern"])["detail"]["jobQueue"] == [
            ref("aws_batch_job_queue", job_queue_name, "arn")]
    # the SUCCEEDED rule only counts: it invokes nothing
    succeeded_id = next(n for n, r in of_type(document, "aws_cloudwatch_event_rule").items()
                        if json.loads(r.get("event_pattern", "{}")).get("detail", {}).get("status") == ["SUCCEEDED"])
    assert not [t for t in of_type(document, "aws_cloudwatch_event_target").values()
                if t["rule"] == ref("aws_cloudwatch_event_rule", succeeded_id, "name")]

    (metric_filter,) = of_type(document, "aws_cloudwatch_log_metric_filter").values()
    log_group_name, _ = named(document, "aws_cloudwatch_log_group", "sqs_to_batch-logs")
    assert metric_filter["log_group_name"] == ref("aws_cloudwatch_log_group", log_group_name, "name")
    transformation = metric_filter["metric_transformation"]
    assert (transformation["namespace"], transformation["name"], transformation["value"]) == (
        "DeepSentinel/deepsentinel-dev", "JobsSubmitted", "1")
    field_name, value = re.fullmatch(r'\{ \$\.(\w+) = "(\w+)" \}', metric_filter["pattern"]).groups()
    handler = load_handler("sqs_to_batch")
    for outcome, counted_as_submitted in (("submitted", True), ("adopted", False), ("duplicate", False)):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            handler.log_record("message-1", "video-1", outcome, "job-1")
        assert (json.loads(out.getvalue())[field_name] == value) is counted_as_submitted, outcome


# --- alarms ---------------------------------------------------------------------------------------------

def alarms_of(document) -> dict[str, dict]:
    return {a["alarm_name"].removeprefix("deepsentinel-dev-"): a
            for a in of_type(document, "aws_cloudwatch_metric_alarm").values()}


def test_lambda_error_rate_alarm_is_metric_math(platform):
    """Errors / Invocations x 100 > 5 % ("Using metric math", CloudWatch User Guide): the two metrics are inputs
    (ReturnData false), the expression is the one value the alarm evaluates."""
    alarm = alarms_of(platform.dev)["sqs-to-batch-error-rate"]
    function_name, _ = named(platform.dev, "aws_lambda_function", "sqs_to_batch")
    queries = {q["id"]: q for q in alarm["metric_query"]}
    assert {q["id"] for q in alarm["metric_query"] if q.get("return_data")} == {"error_rate"}
    assert queries["error_rate"]["expression"] == "100 * FILL(errors, 0) / invocations"
    for query_id, metric_name in (("errors", "Errors"), ("invocations", "Invocations")):
        metric = queries[query_id]["metric"]
        assert (metric["namespace"], metric["metric_name"], metric["stat"]) == ("AWS/Lambda", metric_name, "Sum")
        assert metric["dimensions"] == {"FunctionName": ref("aws_lambda_function", function_name, "function_name")}
    assert "metric_name" not in alarm and alarm["threshold"] == 5
    assert alarm["comparison_operator"] == "GreaterThanThreshold" and alarm["treat_missing_data"] == "notBreaching"


def test_web_tier_alarms_watch_5xx_and_missing_tasks(platform):
    alarms = alarms_of(platform.dev)
    lb_name, _ = only(platform.dev, "aws_lb")
    five_xx = {q["id"]: q for q in alarms["alb-5xx"]["metric_query"]}
    assert {q["metric"]["metric_name"] for q in five_xx.values() if "metric" in q} == {
        "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"}
    assert all(q["metric"]["dimensions"] == {"LoadBalancer": ref("aws_lb", lb_name, "arn_suffix")}
               for q in five_xx.values() if "metric" in q)
    assert five_xx["errors_5xx"]["expression"] == "FILL(target_5xx, 0) + FILL(elb_5xx, 0)"
    cluster_name, _ = only(platform.dev, "aws_ecs_cluster")
    for service in ("frontend", "backend"):
        alarm = alarms[f"{service}-tasks-below-desired"]
        queries = {q["id"]: q for q in alarm["metric_query"]}
        assert queries["missing_tasks"]["expression"] == "desired - running"
        assert {queries[i]["metric"]["metric_name"] for i in ("running", "desired")} == {
            "RunningTaskCount", "DesiredTaskCount"}
        assert queries["running"]["metric"]["namespace"] == "ECS/ContainerInsights"
        assert queries["running"]["metric"]["dimensions"]["ClusterName"] == ref("aws_ecs_cluster", cluster_name, "name")
        assert (alarm["threshold"], alarm["evaluation_periods"], alarm["datapoints_to_alarm"]) == (0, 5, 5)
        assert queries["running"]["metric"]["period"] == 60


def test_oldest_message_alarm_fires_after_15_minutes(platform):
    alarm = alarms_of(platform.dev)["queue-age"]
    assert (alarm["metric_name"], alarm["threshold"], alarm["comparison_operator"]) == (
        "ApproximateAgeOfOldestMessage", 900, "GreaterThanThreshold")


def test_every_alarm_notifies_the_alerts_topic_which_alarms_may_publish_to(platform):
    """A topic policy replaces SNS's default one; CloudWatch publishes as cloudwatch.amazonaws.com with the
    alarm's ARN as aws:SourceArn ("Using Amazon CloudWatch alarms", alarm actions), so every alarm's name must
    match the policy's ArnLike pattern."""
    topic_name, _ = named(platform.dev, "aws_sns_topic", "alerts")
    topic_arn = ref("aws_sns_topic", topic_name, "arn")
    (topic_policy,) = of_type(platform.dev, "aws_sns_topic_policy").values()
    statements = {s["Sid"]: s for s in policy(topic_policy)["Statement"]}
    pattern = statements["CloudWatchAlarms"]["Condition"]["ArnLike"]["aws:SourceArn"]
    for name, alarm in alarms_of(platform.dev).items():
        assert alarm["alarm_actions"] == alarm["ok_actions"] == [topic_arn], name
        assert fnmatch.fnmatchcase(f"arn:aws:cloudwatch:ap-northeast-2:{ACCOUNT}:alarm:{alarm['alarm_name']}",
                                   pattern), name
    assert statements["AccountPrincipals"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


# --- the Jobs API's operations --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jobs_api(tmp_path_factory):
    from tests.synth_cache import synthesized

    return synthesized(tmp_path_factory, [("dev", ["jobs_api_enabled=true"])], include_account_stack=False).dev


def api_dimensions(document) -> dict[str, str]:
    """The API's own ApiId and its stage's name: what its metrics are published under."""
    api_name, _ = only(document, "aws_apigatewayv2_api")
    _, stage = only(document, "aws_apigatewayv2_stage")
    assert stage["api_id"] == ref("aws_apigatewayv2_api", api_name)
    return {"ApiId": ref("aws_apigatewayv2_api", api_name), "Stage": stage["name"]}


def route_functions(document) -> dict[str, str]:
    """Route purpose -> the function's name reference, for the three route functions."""
    return {purpose: ref("aws_lambda_function", named(document, "aws_lambda_function", f"jobs-api_{purpose}_")[0],
                         "function_name") for purpose in ("create", "status", "results")}


def test_dashboard_shows_the_jobs_api_requests_errors_and_latency(jobs_api, platform):
    """HTTP APIs publish Count, 4xx, 5xx, Latency and IntegrationLatency in AWS/ApiGateway, filtered by ApiId and
    Stage ("Monitor CloudWatch metrics for HTTP APIs in API Gateway",
    https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html). The route functions join
    the Lambda widgets. Without the API the dashboard has no API Gateway metric."""
    dashboard, metrics = dashboard_metrics(jobs_api)
    api = [m for m in metrics if m[0] == "AWS/ApiGateway"]
    assert {m[1] for m in api} == {"Count", "4xx", "5xx", "Latency", "IntegrationLatency"}
    expected = api_dimensions(jobs_api)
    for metric in api:
        assert {name: dimension(metric, name) for name in ("ApiId", "Stage")} == expected, metric
        assert len([p for p in metric[2:] if not isinstance(p, dict)]) == 4, metric  # no other dimension
    titles = {w["properties"]["title"]: w["properties"] for w in json.loads(dashboard["dashboard_body"])["widgets"]}
    assert titles["Jobs API requests"]["stat"] == titles["Jobs API 4xx and 5xx"]["stat"] == "Sum"
    functions = set(route_functions(jobs_api).values())
    for metric_name in ("Errors", "Duration", "Throttles"):
        assert functions <= {dimension(m, "FunctionName") for m in metrics if m[1] == metric_name}, metric_name
    body = json.loads(dashboard["dashboard_body"])
    grid = [(w["x"], w["y"]) for w in body["widgets"]]
    assert len(set(grid)) == len(grid) and all(w["x"] + w["width"] <= 24 for w in body["widgets"])
    assert not [m for m in dashboard_metrics(platform.dev)[1] if m[0] == "AWS/ApiGateway"]


def test_jobs_api_alarms_on_its_5xx_rate_and_each_route_functions_error_rate(jobs_api):
    """Metric math percentages ("Create a CloudWatch alarm based on a metric math expression", CloudWatch User
    Guide): 5xx / Count of the API's stage, and Errors / Invocations of each route's function (AWS/Lambda), each
    above 5 % in 5 minutes; the inputs are summed and not returned, the expression is what the alarm evaluates."""
    alarms = alarms_of(jobs_api)
    five_xx = alarms["jobs-api-5xx-rate"]
    queries = {q["id"]: q for q in five_xx["metric_query"]}
    assert [q["id"] for q in five_xx["metric_query"] if q.get("return_data")] == ["rate"]
    assert queries["rate"]["expression"] == "100 * FILL(errors_5xx, 0) / requests"
    for query_id, metric_name in (("errors_5xx", "5xx"), ("requests", "Count")):
        metric = queries[query_id]["metric"]
        assert (metric["namespace"], metric["metric_name"], metric["stat"], metric["period"]) == (
            "AWS/ApiGateway", metric_name, "Sum", 300)
        assert metric["dimensions"] == api_dimensions(jobs_api)
    for purpose, function in route_functions(jobs_api).items():
        alarm = alarms[f"jobs-api-{purpose}-error-rate"]
        queries = {q["id"]: q for q in alarm["metric_query"]}
        assert queries["rate"]["expression"] == "100 * FILL(errors, 0) / invocations"
        for query_id, metric_name in (("errors", "Errors"), ("invocations", "Invocations")):
            metric = queries[query_id]["metric"]
            assert (metric["namespace"], metric["metric_name"], metric["stat"]) == ("AWS/Lambda", metric_name, "Sum")
            assert metric["dimensions"] == {"FunctionName": function}
        assert f"jobs-api-{purpose}-errors" not in alarms  # the rate replaces Errors > 0, as for sqs_to_batch
    for alarm in (five_xx, *(alarms[f"jobs-api-{p}-error-rate"] for p in route_functions(jobs_api))):
        assert (alarm["threshold"], alarm["comparison_operator"], alarm["evaluation_periods"]) == (
            5, "GreaterThanThreshold", 1)
        assert alarm["treat_missing_data"] == "notBreaching" and "metric_name" not in alarm


def test_jobs_api_alarms_notify_the_alerts_topic_which_they_may_publish_to(jobs_api):
    """As every alarm (test_every_alarm_notifies_the_alerts_topic_which_alarms_may_publish_to): the alerts topic,
    and a name the topic policy's ArnLike pattern admits."""
    topic_name, _ = named(jobs_api, "aws_sns_topic", "alerts")
    (topic_policy,) = of_type(jobs_api, "aws_sns_topic_policy").values()
    pattern = next(s for s in policy(topic_policy)["Statement"] if s["Sid"] == "CloudWatchAlarms")[
        "Condition"]["ArnLike"]["aws:SourceArn"]
    jobs_alarms = {name: alarm for name, alarm in alarms_of(jobs_api).items() if name.startswith("jobs-api-")}
    assert len(jobs_alarms) == 4
    for name, alarm in jobs_alarms.items():
        assert alarm["alarm_actions"] == alarm["ok_actions"] == [ref("aws_sns_topic", topic_name, "arn")], name
        assert fnmatch.fnmatchcase(f"arn:aws:cloudwatch:ap-northeast-2:{ACCOUNT}:alarm:{alarm['alarm_name']}",
                                   pattern), name


# --- cost guard -----------------------------------------------------------------------------------------

def test_budget_per_environment_filtered_by_its_cost_allocation_tag(platform):
    """Budgets filter user-defined cost-allocation tags as user:<key>$<value> (CostFilters "TagKeyValue",
    "Budget" in the AWS Budgets API reference, https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_Budget.html);
    the key and value are the ones the provider tags every resource with."""
    for environment, document, limit in (("dev", platform.dev, "300"), ("prod", platform.prod, "1000")):
        (budget,) = of_type(document, "aws_budgets_budget").values()
        tags = document["provider"]["aws"][0]["default_tags"][0]["tags"]
        assert (budget["name"], budget["budget_type"], budget["time_unit"]) == (
            f"deepsentinel-{environment}", "COST", "MONTHLY")
        assert (budget["limit_amount"], budget["limit_unit"]) == (limit, "USD")
        assert budget["cost_filter"] == [{"name": "TagKeyValue", "values": [f"user:Environment${tags['Environment']}"]}]
        topic_name, _ = named(document, "aws_sns_topic", "alerts")
        notifications = {(n["notification_type"], n["threshold"]) for n in budget["notification"]}
        assert notifications == {("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)}
        assert all(n["subscriber_sns_topic_arns"] == [ref("aws_sns_topic", topic_name, "arn")]
                   and n["threshold_type"] == "PERCENTAGE" and "subscriber_email_addresses" not in n
                   for n in budget["notification"])


def test_budgets_may_publish_to_the_encrypted_alerts_topic(platform):
    """"Creating an Amazon SNS topic for budget notifications" (AWS Cost Management User Guide,
    https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html): the topic policy must
    allow budgets.amazonaws.com SNS:Publish, conditioned on aws:SourceAccount and an aws:SourceArn of the account's
    budgets. The topic is SSE-KMS, so the key policy must let the service use the key too (same page, "To enable
    compatibility between AWS Budgets and encrypted Amazon SNS topics": kms:GenerateDataKey* and kms:Decrypt; the
    call itself is evaluated in tests/unit/test_key_policy.py). The budget waits for the topic policy."""
    (policy_name, topic_policy), = of_type(platform.dev, "aws_sns_topic_policy").items()
    topic_name, _ = named(platform.dev, "aws_sns_topic", "alerts")
    assert topic_policy["arn"] == ref("aws_sns_topic", topic_name, "arn")
    budgets = next(s for s in policy(topic_policy)["Statement"] if s["Principal"] == {"Service": "budgets.amazonaws.com"})
    assert budgets["Effect"] == "Allow" and budgets["Action"] == "SNS:Publish"
    assert budgets["Resource"] == ref("aws_sns_topic", topic_name, "arn")
    assert budgets["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                    "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{ACCOUNT}:*"}}
    _, key = only(platform.dev, "aws_kms_key")
    granted = {a for s in policy(key)["Statement"] if s["Effect"] == "Allow"
               and "budgets.amazonaws.com" in s["Principal"].get("Service", []) for a in s["Action"]}
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= granted
    (budget,) = of_type(platform.dev, "aws_budgets_budget").values()
    assert budget["depends_on"] == [f"aws_sns_topic_policy.{policy_name}"]


def test_budget_email_and_thresholds_come_from_settings(tmp_path):
    document = synth_with(tmp_path, "budget_monthly_usd=50", "budget_thresholds_percent=50,90",
                          "budget_forecast_percent=none", "budget_email=finance@example.com")
    (budget,) = of_type(document, "aws_budgets_budget").values()
    assert budget["limit_amount"] == "50"
    assert [(n["notification_type"], n["threshold"]) for n in budget["notification"]] == [
        ("ACTUAL", 50), ("ACTUAL", 90)]
    assert all(n["subscriber_email_addresses"] == ["finance@example.com"] for n in budget["notification"])


@pytest.mark.parametrize(("overrides", "expected"), [
    (["budget_monthly_usd=0"], "budget_monthly_usd: must be at least 1"),
    (["budget_thresholds_percent=80,80"], "budget_thresholds_percent: values must be distinct"),
    (["budget_thresholds_percent=0"], "budget_thresholds_percent: 0 is outside 1..1000"),
    (["budget_thresholds_percent=eighty"], "budget_thresholds_percent: expected a list of integers"),
    (["budget_forecast_percent=1001"], "budget_forecast_percent: 1001 is outside 1..1000"),
    (["budget_thresholds_percent=10,20,30,40,50"], "AWS Budgets allows at most 5 per budget"),
    (["budget_email=finance"], "budget_email: 'finance' is not an e-mail address"),
    (["night_scale_down=false"], "db_night_stop: needs night_scale_down=true"),
    (["db_stop_schedule=20:00"], "db_stop_schedule: '20:00' must be cron(...), rate(...) or at(...)"),
])
def test_operations_settings_are_validated(overrides, expected):
    from deepsentinel.settings import SettingsError, load_settings

    with pytest.raises(SettingsError) as caught:
        load_settings("dev", overrides=overrides)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_operations_defaults_differ_by_environment():
    from deepsentinel.settings import SettingsError, load_settings

    dev, prod = load_settings("dev"), load_settings("prod")
    assert (dev.budget_monthly_usd, prod.budget_monthly_usd) == (300, 1000)
    assert dev.budget_thresholds_percent == prod.budget_thresholds_percent == (80, 100)
    assert (dev.db_night_stop, prod.db_night_stop) == (True, False)
    assert dev.fifo_job_queue is prod.fifo_job_queue is False
    # prod's 02:00 KST backup window falls in the stop: the night stop needs windows in the running hours.
    with pytest.raises(SettingsError, match="db_backup_window: 17:00-18:00 UTC falls while db_night_stop"):
        load_settings("prod", overrides=["night_scale_down=true", "db_night_stop=true"])
    assert load_settings("prod", overrides=["night_scale_down=true", "db_night_stop=true",
                                            "db_backup_window=03:00-03:30",
                                            "db_maintenance_window=wed:04:00-wed:04:30"]).db_night_stop


# --- the database's night stop --------------------------------------------------------------------------

def test_dev_database_stops_at_night_and_starts_before_the_services(platform):
    """EventBridge Scheduler's universal target calls an AWS API with the schedule's role; its ARN is
    arn:aws:scheduler:::aws-sdk:<service>:<apiAction> and Input carries the request parameters ("Using universal
    targets", https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html). A stopped
    RDS instance is started by AWS itself after seven days ("Stopping an Amazon RDS DB instance temporarily",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_StopInstance.html), docs/platform.md notes it."""
    db_name, db = only(platform.dev, "aws_db_instance")
    schedules = {s["name"].removeprefix("deepsentinel-dev-"): s for s in of_type(platform.dev, "aws_scheduler_schedule").values()}
    role_name, role = named(platform.dev, "aws_iam_role", "db-night-stop")
    for purpose, action, expression in (("db-night-stop", "stopDBInstance", "cron(0 20 * * ? *)"),
                                        ("db-morning-start", "startDBInstance", "cron(45 8 * * ? *)")):
        schedule = schedules[purpose]
        assert schedule["target"]["arn"] == f"arn:aws:scheduler:::aws-sdk:rds:{action}"
        assert json.loads(schedule["target"]["input"]) == {
            "DbInstanceIdentifier": ref("aws_db_instance", db_name, "identifier")}
        assert schedule["target"]["role_arn"] == ref("aws_iam_role", role_name, "arn")
        assert (schedule["schedule_expression"], schedule["schedule_expression_timezone"]) == (expression, "Asia/Seoul")
    assert json.loads(role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}


def test_night_stop_role_may_stop_and_start_exactly_that_instance(platform):
    """IAM evaluation of the role's policy ("Policy evaluation logic", IAM User Guide): the two actions on the
    environment's instance (identifier as storage creates it), nothing else, on no other instance."""
    _, db = only(platform.dev, "aws_db_instance")
    _, role_policy = named(platform.dev, "aws_iam_role_policy", "db-night-stop")
    document = policy(role_policy)
    instance = f"arn:aws:rds:ap-northeast-2:{ACCOUNT}:db:{db['identifier']}"
    for action in ("rds:StopDBInstance", "rds:StartDBInstance"):
        assert permits(document, action, instance) == PermissionResult.PERMITTED, action
    assert permits(document, "rds:DeleteDBInstance", instance) != PermissionResult.PERMITTED
    assert permits(document, "rds:StopDBInstance", instance.replace("-dev-", "-prod-")) != PermissionResult.PERMITTED


def test_prod_keeps_its_database_running(platform):
    assert not [s for s in of_type(platform.prod, "aws_scheduler_schedule").values() if "rds" in s["target"]["arn"]]
    assert not [r for r in of_type(platform.prod, "aws_iam_role").values() if r["name"].endswith("db-night-stop")]


# --- FIFO option ----------------------------------------------------------------------------------------

def test_standard_jobs_queue_by_default(platform):
    _, queue = named(platform.dev, "aws_sqs_queue", "jobs-queue")
    assert queue["name"] == "deepsentinel-dev-jobs" and "fifo_queue" not in queue
    _, mapping = only(platform.dev, "aws_lambda_event_source_mapping")
    assert mapping["maximum_batching_window_in_seconds"] == 5
    _, backend = named(platform.dev, "aws_ecs_task_definition", "backend")
    environment = {e["name"]: e["value"] for e in json.loads(backend["container_definitions"])[0]["environment"]}
    assert environment["QUEUE_IS_FIFO"] == "false"


@pytest.fixture(scope="module")
def fifo(tmp_path_factory):
    from tests.synth_cache import synthesized

    return synthesized(tmp_path_factory, [("dev", ["fifo_job_queue=true"])], include_account_stack=False).dev


def test_fifo_option_makes_the_queue_and_its_dlq_fifo(fifo):
    """A FIFO queue's name ends in .fifo (CreateQueue, "FifoQueue"), and its dead-letter queue must be FIFO too:
    "the queue type must match the source queue type" ("Configure a dead-letter queue using the Amazon SQS
    console", https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue.html).
    The synthesized pair is created in moto, which enforces that rule; a standard DLQ is refused."""
    dlq_name, dlq = named(fifo, "aws_sqs_queue", "jobs-dlq")
    _, queue = named(fifo, "aws_sqs_queue", "jobs-queue")
    assert (queue["name"], dlq["name"]) == ("deepsentinel-dev-jobs.fifo", "deepsentinel-dev-jobs-dlq.fifo")
    for q in (queue, dlq):
        assert q["fifo_queue"] is True and q["content_based_deduplication"] is True
    assert json.loads(queue["redrive_policy"])["deadLetterTargetArn"] == ref("aws_sqs_queue", dlq_name, "arn")

    def attributes(config: dict) -> dict[str, str]:
        return {"FifoQueue": str(config["fifo_queue"]).lower(),
                "ContentBasedDeduplication": str(config["content_based_deduplication"]).lower()}

    with mock_aws():
        sqs = boto3.client("sqs", region_name="ap-northeast-2")
        dlq_url = sqs.create_queue(QueueName=dlq["name"], Attributes=attributes(dlq))["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.loads(queue["redrive_policy"]) | {"deadLetterTargetArn": dlq_arn}
        sqs.create_queue(QueueName=queue["name"], Attributes={**attributes(queue), "RedrivePolicy": json.dumps(redrive)})
        standard_url = sqs.create_queue(QueueName="standard-dlq")["QueueUrl"]
        standard_arn = sqs.get_queue_attributes(QueueUrl=standard_url,
                                                AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        with pytest.raises(ClientError, match="non fifo dead letter"):
            sqs.create_queue(QueueName="other.fifo", Attributes={
                **attributes(queue), "RedrivePolicy": json.dumps(redrive | {"deadLetterTargetArn": standard_arn})})


def test_fifo_event_source_drops_the_batching_window(fifo):
    """"Batching window is not supported for FIFO queues", and a FIFO source takes at most 10 messages a batch
    ("Lambda parameters for Amazon SQS event source mappings",
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html)."""
    _, mapping = only(fifo, "aws_lambda_event_source_mapping")
    assert "maximum_batching_window_in_seconds" not in mapping
    assert mapping["batch_size"] <= 10 and mapping["function_response_types"] == ["ReportBatchItemFailures"]


def test_fifo_names_reach_the_senders_and_their_permissions(fifo):
    """The backend learns the queue is FIFO (every SendMessage then needs a MessageGroupId), and its IAM grant
    and the dashboard name the .fifo queue."""
    _, backend = named(fifo, "aws_ecs_task_definition", "backend")
    environment = {e["name"]: e["value"] for e in json.loads(backend["container_definitions"])[0]["environment"]}
    assert (environment["QUEUE_IS_FIFO"], environment["JOBS_QUEUE_NAME"]) == ("true", "deepsentinel-dev-jobs.fifo")
    document = policy(named(fifo, "aws_iam_role_policy", "backend-task")[1])
    queue_arn = f"arn:aws:sqs:ap-northeast-2:{ACCOUNT}:deepsentinel-dev-jobs.fifo"
    assert permits(document, "sqs:SendMessage", queue_arn) == PermissionResult.PERMITTED
    consumer = policy(named(fifo, "aws_iam_role_policy", "lambda-sqs-to-batch")[1])
    assert permits(consumer, "sqs:ReceiveMessage", queue_arn) == PermissionResult.PERMITTED


# --- price ----------------------------------------------------------------------------------------------

def test_review_prices_the_dashboard_metric_math_alarms_and_budget(platform):
    """CloudWatch bills $3 a dashboard-month and a metric math alarm per metric it evaluates; AWS Budgets bills
    budgets beyond the account's first two per day ("Amazon CloudWatch pricing", "AWS Budgets pricing")."""
    from deepsentinel.review.cost import PriceTable, Usage, estimate

    table = PriceTable.load()
    cost = estimate("deepsentinel-dev", platform.dev, table, Usage.load())
    lines = {line.address.split(".", 1)[1]: line for line in cost.lines}
    alarm = table.usd("cloudwatch_alarm_month")
    assert lines[named(platform.dev, "aws_cloudwatch_metric_alarm", "error-rate")[0]].monthly_usage == pytest.approx(
        2 * alarm)
    assert lines[named(platform.dev, "aws_cloudwatch_metric_alarm", "queue-age")[0]].monthly_usage == pytest.approx(alarm)
    assert lines[only(platform.dev, "aws_cloudwatch_dashboard")[0]].monthly_usage == pytest.approx(3.0)
    budget = lines[only(platform.dev, "aws_budgets_budget")[0]]
    assert (budget.monthly_min, budget.monthly_max) == (0.0, pytest.approx(730 / 24 * table.usd("budget_day")))
