"""The whole dev platform (mode 3 of the original): every module together, then the job pipeline end to end."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import subprocess
import sys
import zipfile

import pytest

from deepsentinel.constructs.names import ECR_REPOSITORIES, ECS_SERVICES, LAMBDA_FUNCTIONS, ResourceNames
from tests.conftest import deepsentinel_in_process
from tests.live.aws_checks import (get_batch_compute_environment, get_batch_job_definition, get_batch_job_queue,
                                   get_batch_jobs, get_cloudwatch_alarms, get_dynamodb_table, get_ecr_repository,
                                   get_ecs_cluster, get_ecs_service, get_ecs_task_definition,
                                   get_event_source_mappings, get_eventbridge_rule, get_eventbridge_targets,
                                   get_lambda_function, get_scalable_targets, get_scaling_policies,
                                   get_scheduled_actions, get_sqs_queue_attributes, is_private_subnet_behind_nat,
                                   is_public_subnet)
from tests.live import smoke_warm_up
from tests.live.harness import PLATFORM_OVERRIDES

pytestmark = pytest.mark.live

# The tests marked after_plans run last among the platform's checks (tests/live/conftest.py): they read the second
# plan, take the state lock, or change a deployed attribute a plan would read; the others run meanwhile, while the
# second plan runs on the deployment's planner thread (tests/live/harness.py).


def test_network_routing(platform_live):
    d = platform_live
    assert all(is_public_subnet(d.clients, s) for s in d.outputs["public_subnet_ids"])
    assert all(is_private_subnet_behind_nat(d.clients, s) for s in d.outputs["private_subnet_ids"])


def test_ecs_cluster_services_and_task_definitions(platform_live):
    d, s = platform_live, platform_live.settings
    cluster = get_ecs_cluster(d.clients, d.outputs["ecs_cluster_name"])
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    sizes = {"frontend": (s.frontend_cpu, s.frontend_memory_mb), "backend": (s.backend_cpu, s.backend_memory_mb)}
    for name in ECS_SERVICES:
        service = get_ecs_service(d.clients, d.outputs["ecs_cluster_name"], s.name(name))
        assert service["launchType"] == "FARGATE" and service["desiredCount"] == s.service_min_tasks
        assert service["healthCheckGracePeriodSeconds"] == 60
        task = get_ecs_task_definition(d.clients, service["taskDefinition"])
        assert (int(task["cpu"]), int(task["memory"])) == sizes[name]
        assert task["networkMode"] == "awsvpc" and task["requiresCompatibilities"] == ["FARGATE"]
        assert task["containerDefinitions"][0]["image"].endswith(f"/{name}:{getattr(s, f'{name}_image_tag')}")


def test_scaling_targets_policies_and_night_schedule(platform_live):
    d, s = platform_live, platform_live.settings
    for name in ECS_SERVICES:
        resource_id = f"service/{d.outputs['ecs_cluster_name']}/{s.name(name)}"
        (target,) = get_scalable_targets(d.clients, resource_id)
        assert (target["MinCapacity"], target["MaxCapacity"]) == (s.service_min_tasks, s.service_max_tasks)
        (policy,) = get_scaling_policies(d.clients, resource_id)
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        assert policy["PolicyType"] == "TargetTrackingScaling"
        assert (config["TargetValue"], config["ScaleOutCooldown"], config["ScaleInCooldown"]) == (
            s.cpu_target_percent, s.scale_out_cooldown_seconds, s.scale_in_cooldown_seconds)
        actions = {a["ScheduledActionName"]: a for a in get_scheduled_actions(d.clients, resource_id)}
        night = actions[s.name(name, "night-stop")]
        assert night["Schedule"] == s.scale_down_schedule and night["Timezone"] == s.schedule_timezone
        assert night["ScalableTargetAction"] == {"MinCapacity": 0, "MaxCapacity": 0}
        assert actions[s.name(name, "morning-start")]["Schedule"] == s.scale_up_schedule


def test_ecr_repositories_scan_on_push_with_immutable_tags(platform_live):
    d = platform_live
    for purpose in ECR_REPOSITORIES:
        repo = get_ecr_repository(d.clients, ResourceNames(d.settings).ecr_repository(purpose))
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["imageScanningConfiguration"]["scanOnPush"] is True


def test_batch_compute_environment_queue_and_job_definitions(platform_live):
    d, s = platform_live, platform_live.settings
    environment = get_batch_compute_environment(d.clients, s.name("gpu"))
    resources = environment["computeResources"]
    assert environment["type"] == "MANAGED" and resources["instanceTypes"] == list(s.gpu_instance_types)
    assert (resources["minvCpus"], resources["maxvCpus"]) == (0, s.gpu_max_instances * s.gpu_vcpus_per_instance)
    queue = get_batch_job_queue(d.clients, d.outputs["job_queue_arn"])
    assert queue["priority"] == 10 and queue["state"] == "ENABLED"
    assert queue["computeEnvironmentOrder"][0]["computeEnvironment"] == environment["computeEnvironmentArn"]
    definition = get_batch_job_definition(d.clients, d.outputs["gpu_job_definition_arn"])
    assert definition["retryStrategy"]["attempts"] == s.job_attempts
    assert definition["timeout"]["attemptDurationSeconds"] == s.job_timeout_seconds
    assert {"type": "GPU", "value": "1"} in definition["containerProperties"]["resourceRequirements"]


def test_jobs_queue_has_a_dlq_and_outlives_the_lambda_timeout(platform_live):
    d, s = platform_live, platform_live.settings
    attributes = get_sqs_queue_attributes(d.clients, d.outputs["jobs_queue_url"])
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == s.max_receive_count and redrive["deadLetterTargetArn"].endswith("-jobs-dlq")
    assert int(attributes["VisibilityTimeout"]) == s.queue_visibility_timeout_seconds > s.lambda_timeout_seconds


def test_lambdas_and_the_sqs_event_source_mapping(platform_live):
    d = platform_live
    names = d.outputs["lambda_function_names"]
    assert sorted(names) == sorted(LAMBDA_FUNCTIONS)
    for name in names.values():
        assert get_lambda_function(d.clients, name)["Runtime"] == "python3.12"
    (mapping,) = get_event_source_mappings(d.clients, names["sqs_to_batch"])
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and mapping["BatchSize"] == 10
    assert mapping["EventSourceArn"].endswith(":" + d.settings.name("jobs"))
    table = get_dynamodb_table(d.clients, d.outputs["idempotency_table_name"])
    assert table["KeySchema"] == [{"AttributeName": "video_id", "KeyType": "HASH"}]


def test_eventbridge_rules_and_alarms(platform_live):
    d, s = platform_live, platform_live.settings
    failed = get_eventbridge_rule(d.clients, s.name("batch-failed"))
    assert json.loads(failed["EventPattern"])["detail"]["status"] == ["FAILED"]
    assert get_eventbridge_targets(d.clients, s.name("batch-failed"))[0]["Arn"].endswith(
        ":" + d.outputs["lambda_function_names"]["batch_failure_monitor"])
    schedule = d.clients("scheduler").get_schedule(Name=s.name("ecr-cleanup"))
    assert schedule["ScheduleExpression"] == s.ecr_cleanup_schedule
    assert schedule["ScheduleExpressionTimezone"] == s.schedule_timezone
    assert schedule["Target"]["Arn"].endswith(":" + d.outputs["lambda_function_names"]["ecr_cleanup"])
    alarms = {a["AlarmName"] for a in get_cloudwatch_alarms(d.clients, s.prefix)}
    assert {s.name("dlq-depth"), s.name("queue-age"), s.name("queue-depth")} <= alarms
    # sqs_to_batch is alarmed on its error rate (test_operations_alarms_read_back_as_metric_math)
    assert {s.name(f"{f.replace('_', '-')}-errors") for f in LAMBDA_FUNCTIONS if f != "sqs_to_batch"} <= alarms


# --- operations: dashboard, alarms, cost guard, night stop (docs/platform.md: Operations) ---------------------------

def test_operations_dashboard_names_the_deployed_resources(platform_live):
    """The dashboard body as CloudWatch stores it: every reference resolved to the deployed names."""
    d, s = platform_live, platform_live.settings
    body = json.loads(d.clients("cloudwatch").get_dashboard(DashboardName=s.prefix)["DashboardBody"])
    metrics = [m for w in body["widgets"] for m in w["properties"]["metrics"]]
    assert "${" not in json.dumps(body)

    def values(dimension):
        return {m[m.index(dimension) + 1] for m in metrics if dimension in m}

    assert values("QueueName") == {d.outputs["jobs_queue_url"].rsplit("/", 1)[-1],
                                   d.outputs["jobs_dlq_url"].rsplit("/", 1)[-1]}
    # with jobs_api_enabled the route functions are on it too, and the API itself (ApiId from its deployed URL)
    deployed = {f["FunctionName"] for page in d.clients("lambda").get_paginator("list_functions").paginate()
                for f in page["Functions"]}
    routes = {f for f in deployed if f.startswith(s.name("jobs-api"))} if s.jobs_api_enabled else set()
    assert values("FunctionName") == set(d.outputs["lambda_function_names"].values()) | routes
    if s.jobs_api_enabled:
        assert routes and values("ApiId") == {d.outputs["jobs_api_url"].split("//", 1)[1].split(".", 1)[0]}
    assert values("ServiceName") == set(d.outputs["ecs_service_names"].values())
    assert values("DBInstanceIdentifier") == {ResourceNames(s).db_instance}
    (load_balancer,) = values("LoadBalancer")
    assert load_balancer.startswith(f"app/{s.name('alb')}/")
    assert values("RuleName") == {s.name("batch-failed"), s.name("batch-succeeded")}
    (metric_filter,) = d.clients("logs").describe_metric_filters(
        logGroupName=f"/aws/lambda/{d.outputs['lambda_function_names']['sqs_to_batch']}")["metricFilters"]
    assert metric_filter["metricTransformations"][0]["metricNamespace"] == f"DeepSentinel/{s.prefix}"


def test_operations_alarms_read_back_as_metric_math(platform_live):
    d, s = platform_live, platform_live.settings
    alarms = {a["AlarmName"]: a for a in get_cloudwatch_alarms(d.clients, s.prefix)}
    rate = alarms[s.name("sqs-to-batch-error-rate")]
    expressions = {m["Id"]: m.get("Expression") for m in rate["Metrics"]}
    assert expressions["error_rate"] == "100 * FILL(errors, 0) / invocations" and rate["Threshold"] == 5
    for name in (s.name("alb-5xx"), s.name("frontend-tasks-below-desired"), s.name("backend-tasks-below-desired")):
        assert alarms[name]["AlarmActions"] == [d.outputs["alerts_topic_arn"]], name
        assert any(m.get("Expression") for m in alarms[name]["Metrics"]), name
    assert alarms[s.name("queue-age")]["Threshold"] == 900


def test_operations_budget_notifies_the_alerts_topic(platform_live):
    d, s = platform_live, platform_live.settings
    account = d.clients("sts").get_caller_identity()["Account"]
    budgets = d.clients("budgets")
    budget = budgets.describe_budget(AccountId=account, BudgetName=s.prefix)["Budget"]
    assert (budget["BudgetType"], budget["TimeUnit"]) == ("COST", "MONTHLY")
    assert float(budget["BudgetLimit"]["Amount"]) == s.budget_monthly_usd
    assert budget["CostFilters"] == {"TagKeyValue": [f"user:Environment${s.environment}"]}
    notifications = budgets.describe_notifications_for_budget(AccountId=account, BudgetName=s.prefix)["Notifications"]
    assert sorted((n["NotificationType"], n["Threshold"]) for n in notifications) == [
        ("ACTUAL", 80.0), ("ACTUAL", 100.0), ("FORECASTED", 100.0)]
    for notification in notifications:
        subscribers = budgets.describe_subscribers_for_notification(
            AccountId=account, BudgetName=s.prefix, Notification=notification)["Subscribers"]
        assert subscribers == [{"SubscriptionType": "SNS", "Address": d.outputs["alerts_topic_arn"]}]
    topic_policy = json.loads(d.clients("sns").get_topic_attributes(
        TopicArn=d.outputs["alerts_topic_arn"])["Attributes"]["Policy"])
    assert {"Service": "budgets.amazonaws.com"} in [st["Principal"] for st in topic_policy["Statement"]]


def test_operations_dev_database_night_stop_schedules(platform_live):
    d, s = platform_live, platform_live.settings
    scheduler = d.clients("scheduler")
    for purpose, action, expression in (("night-stop", "stopDBInstance", s.db_stop_schedule),
                                        ("morning-start", "startDBInstance", s.db_start_schedule)):
        schedule = scheduler.get_schedule(Name=s.name("db", purpose))
        assert schedule["Target"]["Arn"] == f"arn:aws:scheduler:::aws-sdk:rds:{action}"
        assert json.loads(schedule["Target"]["Input"]) == {"DbInstanceIdentifier": ResourceNames(s).db_instance}
        assert schedule["Target"]["RoleArn"].endswith(f":role/{s.name('db-night-stop')}")
        assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (
            expression, s.schedule_timezone)


def _deployed_handler(d, tmp_path):
    """The sqs_to_batch code exactly as uploaded: the asset zip whose SHA-256 the deployed function reports."""
    function = get_lambda_function(d.clients, d.outputs["lambda_function_names"]["sqs_to_batch"])
    archives = sorted(d.stack_dir.glob("assets/*sqs_to_batch*/**/*.zip"))
    assert archives, f"no sqs_to_batch asset under {d.stack_dir}/assets"
    digest = base64.b64encode(hashlib.sha256(archives[0].read_bytes()).digest()).decode()
    assert function["CodeSha256"] == digest, "the asset is not the code the function runs"
    zipfile.ZipFile(archives[0]).extractall(tmp_path / "code")
    spec = importlib.util.spec_from_file_location("deployed_sqs_to_batch", tmp_path / "code" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module, function["Environment"]["Variables"]


def test_pipeline_a_queued_job_message_becomes_one_batch_job(platform_live, tmp_path, monkeypatch,
                                                             no_gpu_left_running):
    d = platform_live
    handler, variables = _deployed_handler(d, tmp_path)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", d.settings.region)
    if d.endpoint_url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", d.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")

    sqs, queue_url = d.clients("sqs"), d.outputs["jobs_queue_url"]
    video_id = "live-check-0001"
    body = json.dumps({"video_id": video_id, "s3_key": f"raw/{video_id}.mp4"})
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    if d.target == "aws" and not messages:  # the real event source mapping may have taken it first
        messages = [{"MessageId": sent["MessageId"], "ReceiptHandle": "", "Body": body}]
    assert [m["Body"] for m in messages] == [body], f"expected the job message back from the queue, got {messages}"
    queue_arn = get_sqs_queue_attributes(d.clients, queue_url)["QueueArn"]
    event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                          "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": d.settings.region}
                         for m in messages]}

    response = handler.handler(event, None)

    assert response == {"batchItemFailures": []}
    # on AWS the deployed function may have handled the message too: the idempotency claim keeps it to one job
    jobs = get_batch_jobs(d.clients, d.outputs["job_queue_arn"])
    assert [job["jobName"] for job in jobs] == [f"video-{video_id}"]
    claim = d.clients("dynamodb").get_item(TableName=d.outputs["idempotency_table_name"],
                                           Key={"video_id": {"S": video_id}})["Item"]
    assert claim["status"]["S"] == "SUBMITTED" and claim["job_id"]["S"] == jobs[0]["jobId"]
    # a redelivery of the same message is a duplicate: still exactly one job
    assert handler.handler(event, None) == {"batchItemFailures": []}
    assert len(get_batch_jobs(d.clients, d.outputs["job_queue_arn"])) == 1


@pytest.fixture
def no_gpu_left_running(platform_live):
    """On AWS a queued job would scale a GPU instance up: terminate whatever the pipeline check submitted."""
    yield
    if platform_live.target == "aws":
        for job in get_batch_jobs(platform_live.clients, platform_live.outputs["job_queue_arn"]):
            platform_live.clients("batch").terminate_job(jobId=job["jobId"], reason="live test cleanup")


@pytest.mark.after_plans
def test_second_plan_has_no_changes(platform_live):
    d = platform_live.wait_planned()
    assert d.second_plan_has_changes is False, d.second_plan_output


# --- the Jobs API (jobs_api_enabled in the live platform) -------------------------------------------------

def _jobs_api(d) -> dict:
    (api,) = [a for a in d.clients("apigatewayv2").get_apis()["Items"] if a["Name"] == d.settings.name("jobs-api")]
    return api


def test_jobs_api_http_api_with_iam_authorized_lambda_proxy_routes(platform_live):
    from deepsentinel.constructs.jobs_api import ROUTES

    d = platform_live
    apigw, api = d.clients("apigatewayv2"), _jobs_api(platform_live)
    assert api["ProtocolType"] == "HTTP" and d.outputs["jobs_api_url"] == api["ApiEndpoint"]
    integrations = {i["IntegrationId"]: i for i in apigw.get_integrations(ApiId=api["ApiId"])["Items"]}
    routes = {r["RouteKey"]: r for r in apigw.get_routes(ApiId=api["ApiId"])["Items"]}
    assert set(routes) == {r.key for r in ROUTES}
    functions = d.clients("lambda")
    for route in ROUTES:
        deployed = routes[route.key]
        assert deployed["AuthorizationType"] == "AWS_IAM"
        integration = integrations[deployed["Target"].removeprefix("integrations/")]
        assert integration["IntegrationType"] == "AWS_PROXY" and integration["PayloadFormatVersion"] == "2.0"
        function = functions.get_function(FunctionName=d.settings.name(f"jobs-api-{route.purpose}"))["Configuration"]
        assert function["FunctionArn"] in integration["IntegrationUri"]
        assert function["Handler"] == f"handler.{route.entry_point}"
        assert function["TracingConfig"]["Mode"] == "Active"
        assert function["VpcConfig"]["SecurityGroupIds"] == [d.outputs["security_group_ids"]["lambda"]]
        statement = json.loads(functions.get_policy(FunctionName=function["FunctionName"])["Policy"])["Statement"][0]
        assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
        assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f"/*/{route.method}{route.path}")


def test_jobs_api_default_stage_with_throttling_and_access_logs(platform_live):
    d = platform_live
    stage = d.clients("apigatewayv2").get_stage(ApiId=_jobs_api(d)["ApiId"], StageName="$default")
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == d.settings.jobs_api_throttle_rate
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == d.settings.jobs_api_throttle_burst
    group = f"/aws/apigateway/{d.settings.name('jobs-api')}"
    assert stage["AccessLogSettings"]["DestinationArn"].endswith(f":log-group:{group}")
    (described,) = d.clients("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert described.get("kmsKeyId") == d.outputs["kms_key_arn"]


def test_jobs_api_client_role_may_invoke_the_routes(platform_live):
    d = platform_live
    role_name = d.outputs["jobs_api_client_role_arn"].rsplit("/", 1)[-1]
    document = d.clients("iam").get_role_policy(RoleName=role_name, PolicyName="invoke-jobs-api")["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    (statement,) = document["Statement"]
    assert statement["Action"] == ["execute-api:Invoke"]
    assert all(f":{_jobs_api(d)['ApiId']}/*/" in arn for arn in statement["Resource"])


def test_jobs_api_upload_enqueues_a_message_sqs_to_batch_parses(platform_live):
    """raw bucket -> EventBridge "Object Created" -> upload rule -> input transformer -> the deployed jobs queue."""
    from deepsentinel.constructs.jobs_api import UPLOAD_PREFIX
    from tests.unit.lambdas.lambda_testkit import load_handler

    d = platform_live
    rule = d.clients("events").describe_rule(Name=d.settings.name("jobs-api-uploads"))
    (target,) = d.clients("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["InputTransformer"]["InputPathsMap"] == {"key": "$.detail.object.key",
                                                          "bucket": "$.detail.bucket.name"}
    sqs, queue = d.clients("sqs"), d.outputs["jobs_queue_url"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}

    raw, video_id = d.outputs["bucket_names"]["raw-videos"], UPLOAD_PREFIX + "0123456789abcdef0123456789abcdef"
    s3 = d.clients("s3")
    s3.put_object(Bucket=raw, Key="uploads/web-app.mp4", Body=b"not an API upload")
    s3.put_object(Bucket=raw, Key=video_id, Body=b"\x00\x00\x00\x18ftypmp42")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
    for received in messages:  # the smoke checks that follow consume this queue
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=received["ReceiptHandle"])
    assert len(messages) == 1  # only the API's upload
    message = load_handler("sqs_to_batch").parse_body(messages[0]["Body"])
    assert (message.video_id, message.s3_key, message.bucket) == (video_id, video_id, raw)


# --- the CLI on the deployment (moto: deployed as `deploy --local` does, so `--local --workdir` finds it) ---

def _cli(d, *args: str) -> subprocess.CompletedProcess[str]:
    if d.target != "moto":
        pytest.skip("the CLI's --local commands act on the moto deployment")
    overrides = [arg for setting in PLATFORM_OVERRIDES for arg in ("-c", setting)]  # the deployment's settings
    # in this process: the deployment's own threads (apply, destroy) write to their log files and the real stderr,
    # never to sys.stdout or sys.stderr, so what is captured is the command's alone
    return deepsentinel_in_process(*args, *overrides, "--local", "--workdir", str(d.workdir))


def _cli_json(d, *args: str) -> dict:
    result = _cli(d, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.after_plans
def test_cli_plan_of_the_deployed_environment_is_locked_and_has_no_changes(platform_live):
    """The second plan of the platform is `deepsentinel plan --local` (tests/live/harness.py): exit 0 (no
    changes) like `terraform plan -detailed-exitcode`, and its JSON is Terraform's."""
    from tests.live.harness import SECOND_PLAN

    d = platform_live
    if d.target != "moto":
        pytest.skip("the CLI's --local commands act on the moto deployment")
    d.wait_planned()
    assert d.second_plan_has_changes is False, d.second_plan_output[-3000:]
    plan = json.loads((d.workdir / SECOND_PLAN).read_text())
    changes = [c["address"] for c in plan["resource_changes"] if c["change"]["actions"] not in (["no-op"], ["read"])]
    assert changes == [] and len(plan["resource_changes"]) >= 140
    # The lock was taken and released: nothing is left beside the states.
    keys = [o["Key"] for o in d.clients("s3").list_objects_v2(Bucket=d.settings.state_bucket_name)["Contents"]]
    assert sorted(keys) == ["account/terraform.tfstate", f"{d.stack_dir.name}/terraform.tfstate"]


@pytest.mark.after_plans
def test_generated_django_key_never_enters_the_state(platform_live):
    """The key is generated by the account stack's ephemeral resource into a write-only argument ("Ephemeral
    resources" and "Use temporary write-only arguments", Terraform language): the secret
    `{project}/{env}/django-secret-key` holds a 64-character key, the one the deployed backend's task definition
    names; neither the account's state (`account/terraform.tfstate`, where bootstrap moved it) nor the environment's
    state nor its saved second plan contains it. The account's state holds the secret version and no resource of the
    generator's type; the environment's holds only its lookup (a data source: metadata, no value)."""
    from deepsentinel.constructs.app_secrets import django_secret_name
    from tests.live.harness import SECOND_PLAN

    d = platform_live
    if d.target != "moto":
        pytest.skip("reads the state objects from the local server's state bucket")
    d.wait_planned()
    secret = d.clients("secretsmanager").get_secret_value(
        SecretId=django_secret_name(d.settings, d.settings.environment))
    key = secret["SecretString"]
    assert len(key) == 64
    backend = get_ecs_task_definition(d.clients, get_ecs_service(
        d.clients, d.outputs["ecs_cluster_name"], d.settings.name("backend"))["taskDefinition"])
    assert {s["name"]: s["valueFrom"] for s in backend["containerDefinitions"][0]["secrets"]}[
        "DJANGO_SECRET_KEY"] == secret["ARN"]

    def stored(key_: str) -> str:
        return d.clients("s3").get_object(Bucket=d.settings.state_bucket_name, Key=key_)["Body"].read().decode()

    account, environment = stored("account/terraform.tfstate"), stored(f"{d.stack_dir.name}/terraform.tfstate")
    plan = (d.workdir / SECOND_PLAN).read_text()
    for text in (account, environment, plan):
        assert key not in text
    # The generator is named (a dependency of the secret version) but never stored: no resource of its type.
    account_kinds = {(r["mode"], r["type"]) for r in json.loads(account)["resources"]}
    assert ("managed", "aws_secretsmanager_secret_version") in account_kinds
    assert "aws_secretsmanager_random_password" not in {kind for _, kind in account_kinds}
    environment_kinds = {(r["mode"], r["type"]) for r in json.loads(environment)["resources"]}
    planned_kinds = {(r["mode"], r["type"])
                     for r in json.loads(plan)["prior_state"]["values"]["root_module"]["resources"]}
    for kinds in (environment_kinds, planned_kinds):
        assert ("data", "aws_secretsmanager_secret") in kinds
        assert not {kind for _, kind in kinds} & {"aws_secretsmanager_secret_version",
                                                   "aws_secretsmanager_random_password"}


@pytest.fixture
def platform_destroying(platform_live):
    """For a check that needs only what dev's destroy leaves (the account stack, the local server, what the second plan
    recorded): dev's Terraform destroy starts (once) before it, so its provider waits, the live path's last minute,
    overlap the check instead of following it. The check starts once the destroy deletes: beside Terraform's start
    and destroy plan it would delay them, and they are on the live path."""
    platform_live.start_destroy()
    platform_live.wait_deleting()
    with platform_live.server_kept_up():  # the destroy stops the server once done: not while this check runs
        yield platform_live


@pytest.mark.while_destroying
def test_terraform_calls_are_allowed_for_the_plan_and_deploy_identities(platform_destroying):
    """Every call Terraform made (the server's request log, User-Agent `Terraform/`) is allowed: the second plan's
    (`deepsentinel plan --local` of the deployed dev) as the GitHub plan role and a member of the developers group,
    the apply's as the GitHub deploy role within its permissions boundary; with the state bucket's and the
    environment's resource policies ("Policy evaluation logic", IAM User Guide; actions and resources from the
    Service Authorization Reference: tests/terraform_call_check.py, which also says what is not evaluated).
    A denied call names identity, action, resource and the deciding statement; the least-privilege report
    (LEAST_PRIVILEGE_REPORT, else the deployment's workdir) gets every identity's calls and unused grants.
    It reads only what the apply and the second plan recorded (their requests, the state as the plan left it), so it
    runs while dev's destroy does."""
    from deepsentinel.local.request_log import read
    from tests.live.harness import REQUESTS
    from tests.terraform_call_check import deployed_evaluations, write_report

    d = platform_destroying
    if d.target != "moto":
        pytest.skip("the request log is the local server's")
    d.wait_planned()
    account = d.clients("sts").get_caller_identity()["Account"]
    evaluations, notes = deployed_evaluations(
        account_stack=json.loads((d._account.stack_dir / "cdk.tf.json").read_text()),
        platform_stack=json.loads((d.stack_dir / "cdk.tf.json").read_text()), platform_state=d.planned_state,
        plan=read(d.workdir / REQUESTS, *d.request_marks["plan"]),
        apply=read(d.workdir / REQUESTS, *d.request_marks["apply"]), settings=d.settings, account=account)
    path = write_report(evaluations, d.workdir / "least-privilege.json")
    print(f"least-privilege report: {path}; request log lines: {d.request_marks}")
    for name, evaluation in evaluations.items():
        print(f"{name}: {len(evaluation.decisions)} authorizations decided")
        for statement, actions in evaluation.report()["unused_grants"].items():
            print(f"  {statement} grants, unused: {', '.join(actions)}")
    assert all(e.decisions for e in evaluations.values()), "no Terraform call was recorded"
    failures = sorted({f for e in evaluations.values() for f in e.failures})
    assert not notes and not failures, "\n".join(notes + failures)


@pytest.mark.after_plans
def test_cli_plan_of_a_changed_setting_exits_2_and_its_json_feeds_the_review(platform_live, tmp_path):
    d = platform_live.wait_planned()  # the lock is free
    plan_json = tmp_path / "plan.json"
    # from the state alone: the second plan has just read every resource, and nothing changed them since
    result = _cli(d, "plan", "-c", "max_receive_count=5", "--no-refresh", "--json-out", str(plan_json))
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr
    assert "no refresh) ..." in result.stdout and "resource(s) refreshed" not in result.stdout, result.stdout
    plan = json.loads(plan_json.read_text())
    changed = {c["address"]: c["change"]["actions"] for c in plan["resource_changes"]
               if c["change"]["actions"] not in (["no-op"], ["read"])}
    assert list(changed.values()) == [["update"]] and "aws_sqs_queue.pipeline_jobs-queue" in next(iter(changed))
    synthesized = str(d.workdir / "cdktf.out")
    review = deepsentinel_in_process("review", "--no-policy", "--json", "--head", synthesized, "--base", synthesized,
                           "--plan", f"{d.stack_dir.name}={plan_json}")
    assert review.returncode == 0, review.stderr
    assert json.loads(review.stdout)["summary"]["changes"]["update"] == 1


@pytest.mark.after_plans
def test_cli_plan_refuses_a_held_lock_in_one_line(platform_live):
    """S3-native locking: a `<key>.tflock` object written with a conditional PUT holds the lock ("Backend Type: s3",
    State Locking, https://developer.hashicorp.com/terraform/language/backend/s3)."""
    d = platform_live.wait_planned()  # the lock is this test's alone
    s3, lock = d.clients("s3"), f"{d.stack_dir.name}/terraform.tfstate.tflock"
    s3.put_object(Bucket=d.settings.state_bucket_name, Key=lock, Body=json.dumps({
        "ID": "4f1c9d2e-held-by-ci", "Operation": "OperationTypeApply", "Info": "", "Who": "runner@ci",
        "Version": "1.11.4", "Created": "2026-12-01T00:00:00Z", "Path": f"{d.settings.state_bucket_name}/{lock}"}))
    try:
        result = _cli(d, "plan")
    finally:
        s3.delete_object(Bucket=d.settings.state_bucket_name, Key=lock)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: the state of {d.stack_dir.name} is locked by another run (runner@ci's apply since "
        "2026-12-01T00:00:00Z, lock ID 4f1c9d2e-held-by-ci); wait for it to finish and run the same command again (or "
        "pass --lock-timeout 5m), or if that run is gone, release the lock: terraform "
        f"-chdir={d.stack_dir} force-unlock 4f1c9d2e-held-by-ci"]


def test_cli_output_reads_the_deployed_outputs(platform_live):
    d = platform_live
    outputs = _cli_json(d, "output")
    assert {name: entry["value"] for name, entry in outputs.items()} == d.outputs
    assert all(entry["description"] for entry in outputs.values())


@pytest.mark.while_destroying
def test_cli_bootstrap_again_changes_nothing_while_the_environment_is_destroyed(platform_destroying):
    """Idempotent: the account stack's state is in the bucket (not in the deleted local file) and matches. The account
    stack is the account's, planned apart from any environment (its only data source is the caller's identity), so
    this runs after every other platform check, while dev's Terraform destroy does (the destroy tests wait for it),
    as when a team retires an environment."""
    d = platform_destroying
    if d.target != "moto":
        pytest.skip("the CLI's --local commands act on the moto deployment")
    result = _cli(d, "bootstrap")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "deepsentinel-account: no changes" in result.stdout
    assert not list((d.workdir / "bootstrap").glob("*.tfstate*"))


def test_cli_status_of_an_unknown_video_says_so(platform_live):
    d = platform_live
    result = _cli(d, "status", "never-sent", "--json")
    assert result.returncode == 1, result.stderr
    view = json.loads(result.stdout)
    assert view["claim"] is None and view["job"] is None and view["highlights"] == 0


@pytest.mark.live_destroy
def test_destroy_leaves_nothing_of_the_project(platform_live):
    assert platform_live.destroy().leftovers == []


# --- a video through the deployed platform (deepsentinel smoke) -------------------------------------------

@pytest.fixture(scope="module")
def smoke_platform(platform_live, tmp_path_factory, request):
    """What `deepsentinel smoke` runs against: on moto the stand-ins configured from the deployment (the part that
    needs no deployment made ready during the apply: tests/live/smoke_warm_up.py)."""
    import boto3

    from deepsentinel.commands.smoke import LocalPlatform

    d = platform_live
    # On moto, where `deepsentinel smoke --local` keeps its scratch (and `status --local` finds the database).
    scratch = d.workdir / smoke_warm_up.SCRATCH if d.target == "moto" else tmp_path_factory.mktemp("smoke")
    scratch.mkdir(exist_ok=True)
    if d.target == "aws":
        yield d, boto3.Session(region_name=d.settings.region), None, scratch
        return
    smoke_warm_up.wait(request.config)
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=d.settings.region)
    local = LocalPlatform(session=session, endpoint_url=d.endpoint_url, region=d.settings.region, outputs=d.outputs,
                          stack_dir=d.stack_dir, scratch=scratch)
    local.prepare(print)
    yield d, session, local, scratch  # the warm-up started its database; the live pool's end stops it


def _smoke(smoke_platform, video=None, timeout=600):
    from deepsentinel.commands.smoke import run_smoke

    d, session, local, scratch = smoke_platform
    return run_smoke(session, d.endpoint_url, d.settings, d.outputs, video=video, say=print, timeout=timeout,
                     scratch=scratch, local=local)


def test_smoke_a_good_clip_ends_done_with_events_and_highlights(smoke_platform, no_gpu_left_running):
    """The video reaches DONE: rows in PostgreSQL (read locally), highlight frames in the deployed highlights
    bucket, a DONE notification on the video-events topic, one Batch job that succeeded on its first attempt."""
    d = smoke_platform[0]
    report = _smoke(smoke_platform, timeout=600 if d.target == "moto" else 3600)
    assert report.status == "DONE", report.as_json()
    assert report.notification["video_id"] == report.video_id and report.notification["status"] == "DONE"
    assert report.highlights > 0 and report.highlights == len(report.notification["highlight_keys"])
    assert report.job["count"] == 1 and report.job["status"] == "SUCCEEDED"
    if d.target == "moto":
        assert report.events > 0 and report.job["attempts"] == 1
        assert report.nearest and report.nearest[0]["distance"] == pytest.approx(0.0, abs=1e-4)
        status = _cli_json(d, "status", report.video_id)
        assert status["claim"]["status"] == "SUBMITTED" and status["claim"]["job_id"] == status["job"]["job_id"]
        assert status["job"]["status"] == "SUCCEEDED" and [a["exit_code"] for a in status["job"]["attempts"]] == [0]
        assert status["highlights"] == report.highlights
        assert status["database"]["row"]["status"] == "COMPLETED"
        assert status["database"]["row"]["event_count"] == report.events


def test_smoke_a_corrupt_clip_fails_once_alerts_and_notifies(smoke_platform, tmp_path):
    """Exit 65 (bad input) is not retried (the job definition's evaluateOnExit EXIT); the final FAILED event goes
    to the failure monitor, which alerts; the worker publishes a FAILED notification."""
    d, session, local, _ = smoke_platform
    if local is None:
        pytest.skip("on AWS the corrupt clip would start a GPU instance to fail; covered on moto")
    from deepsentinel.commands.smoke import notification_subscription

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 64)
    sqs, sns = d.clients("sqs"), d.clients("sns")
    with notification_subscription(sns, sqs, d.outputs["alerts_topic_arn"], d.settings.name("smoke-alerts")) as alerts:
        report = _smoke(smoke_platform, video=corrupt, timeout=300)
        alert_bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=alerts, MaxNumberOfMessages=10,
                                                               WaitTimeSeconds=2).get("Messages", [])]
    assert report.status == "FAILED", report.as_json()
    assert report.job["status"] == "FAILED" and report.job["attempts"] == 1 and report.job["exit_codes"] == [65]
    assert report.notification["status"] == "FAILED" and report.notification["reason"]
    assert any(report.video_id in body for body in alert_bodies), alert_bodies
    status = _cli_json(d, "status", report.video_id)
    assert status["job"]["status"] == "FAILED" and [a["exit_code"] for a in status["job"]["attempts"]] == [65]
    assert status["database"]["row"]["status"] == "FAILED" and status["database"]["row"]["failure_reason"]


@pytest.mark.after_plans
def test_smoke_a_malformed_message_reaches_the_dlq(smoke_platform):
    """A body the submitter cannot parse is reported in batchItemFailures every time; it is received again after
    the queue's visibility timeout ("Handling errors for an SQS event source in Lambda") and SQS moves it to the DLQ
    after maxReceiveCount receives ("Using dead-letter queues in Amazon SQS"). The queue's own VisibilityTimeout is
    set to 0 for the test (SQS's documented minimum, of 0 to 43,200 s: SetQueueAttributes, Amazon SQS API Reference;
    a failed message is received again at once; the deployed 400 s would take 20 minutes) and
    restored after it, so the next plan sees no change; the mapping stand-in never shortens a message's visibility
    itself."""
    d, _, local, _ = smoke_platform
    if local is None:
        pytest.skip("checked on moto, where the mapping stand-in counts the receives")
    d.wait_planned()  # no plan reads the shortened timeout
    from deepsentinel.local.stand_in import DeployedFunction, EventSourceMappingStandIn, LocalAwsEnvironment

    sqs, lambda_client = d.clients("sqs"), d.clients("lambda")
    function = DeployedFunction.read_back(lambda_client, d.outputs["lambda_function_names"]["sqs_to_batch"],
                                          assets_dir=d.stack_dir / "assets", work_dir=local.scratch / "functions")
    mapping = EventSourceMappingStandIn.read_back(lambda_client, sqs, function, d.settings.region)
    queue_url = d.outputs["jobs_queue_url"]
    deployed = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "0"})
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody='{"video": {"id": ')
        aws = LocalAwsEnvironment(d.endpoint_url, d.settings.region)
        receives = 0
        # the last two find it gone: received no more. Short polls: moto's looks at every visible message (SQS's
        # samples a subset of its servers), and at timeout 0 a failed message is visible again at once
        for _ in range(d.settings.max_receive_count + 2):
            receives += mapping.poll_once(aws, wait_seconds=0)["received"]
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=deployed)
    dlq_url = sqs.get_queue_url(QueueName=d.settings.name("jobs-dlq"))["QueueUrl"]
    (dead,) = sqs.receive_message(QueueUrl=dlq_url, AttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert dead["Body"] == '{"video": {"id": '
    assert receives == d.settings.max_receive_count
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= d.settings.max_receive_count


def test_smoke_the_same_video_sent_twice_yields_one_job(smoke_platform):
    d, session, local, scratch = smoke_platform
    if local is None:
        pytest.skip("on AWS this would start a GPU instance; the idempotency is covered on moto")
    from deepsentinel.commands.smoke import SmokeReport, job_summary, upload_and_enqueue

    report = SmokeReport(video_id="smoke-twice-0001")
    s3, sqs = d.clients("s3"), d.clients("sqs")
    upload_and_enqueue(report, s3=s3, sqs=sqs, outputs=d.outputs, video=None, say=print, scratch=scratch)
    upload_and_enqueue(report, s3=s3, sqs=sqs, outputs=d.outputs, video=None, say=print, scratch=scratch)
    from deepsentinel.local.stand_in import DeployedFunction, EventSourceMappingStandIn, LocalAwsEnvironment

    lambda_client = d.clients("lambda")
    function = DeployedFunction.read_back(lambda_client, d.outputs["lambda_function_names"]["sqs_to_batch"],
                                          assets_dir=d.stack_dir / "assets", work_dir=scratch / "functions")
    mapping = EventSourceMappingStandIn.read_back(lambda_client, sqs, function, d.settings.region)
    deleted = sum(mapping.poll_once(LocalAwsEnvironment(d.endpoint_url, d.settings.region))["deleted"]
                  for _ in range(3))
    assert deleted == 2  # both messages acknowledged ...
    assert job_summary(d.clients("batch"), d.outputs["job_queue_arn"], report.video_id)["count"] == 1  # ... one job


@pytest.mark.after_plans
def test_cli_redrive_moves_a_refused_submit_back_and_leaves_a_malformed_message(platform_live, tmp_path):
    """Two job messages reach the DLQ through the deployed sqs_to_batch (run by the mapping stand-in) and the jobs
    queue's redrive policy ("Using dead-letter queues in Amazon SQS"): one whose SubmitJob Batch refused (the function
    is run with a job definition that does not exist; it releases its claim and reports the record failed), and a
    body its parser refuses. `deepsentinel redrive --local` as a user runs it: --dry-run moves nothing; then the
    refused video's message is back on the jobs queue (one by one: moto has no message-move task) and the deployed
    function, with its own environment, submits its job; the malformed message stays in the DLQ."""
    import dataclasses

    d = platform_live
    if d.target != "moto":
        pytest.skip("the refused submit is staged with the mapping stand-in; the CLI's --local acts on moto")
    d.wait_planned()  # no plan reads the shortened timeout
    from deepsentinel.local.stand_in import DeployedFunction, EventSourceMappingStandIn, LocalAwsEnvironment

    sqs, lambda_client, aws = d.clients("sqs"), d.clients("lambda"), LocalAwsEnvironment(d.endpoint_url,
                                                                                        d.settings.region)
    function = DeployedFunction.read_back(lambda_client, d.outputs["lambda_function_names"]["sqs_to_batch"],
                                          assets_dir=d.stack_dir / "assets", work_dir=tmp_path / "functions")
    refusing = dataclasses.replace(function, environment={**function.environment,
                                                          "JOB_DEFINITION": f"{d.settings.name('no-such')}:1"})
    queue_url, dlq_url = d.outputs["jobs_queue_url"], d.outputs["jobs_dlq_url"]
    video_id, malformed = "redrive-live-0001", '{"video": {"id": "redrive-live-malformed"'
    body = json.dumps({"video": {"id": video_id}, "s3": {"bucket": d.outputs["bucket_names"]["raw-videos"],
                                                         "key": f"uploads/{video_id}/clip.mp4"}})
    fifo = queue_url.endswith(".fifo")
    deployed = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "0"})  # as the malformed test
    try:
        for text, group in ((body, video_id), (malformed, "malformed")):
            sqs.send_message(QueueUrl=queue_url, MessageBody=text, **({"MessageGroupId": group} if fifo else {}))
        mapping = EventSourceMappingStandIn.read_back(lambda_client, sqs, refusing, d.settings.region)
        for _ in range(d.settings.max_receive_count + 2):  # short polls, as the malformed test's
            mapping.poll_once(aws, wait_seconds=0)
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=deployed)

    dry = _cli(d, "redrive", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    (line,) = [line for line in dry.stdout.splitlines() if f"video {video_id}:" in line]
    assert line.startswith("would move ") and "failed before a job was submitted" in line, dry.stdout

    report = _cli_json(d, "redrive")
    mine = {m["video_id"]: m for m in report["messages"] if m["body"] in (body, malformed)}
    assert (mine[video_id]["verdict"], mine[video_id]["action"]) == ("redrivable", "moved"), report
    assert report["method"] == "receive + send + delete"
    assert (mine[None]["verdict"], mine[None]["action"]) == ("malformed", "left")
    assert mine[None]["reason"].startswith("malformed: body is not JSON")

    deployed_mapping = EventSourceMappingStandIn.read_back(lambda_client, sqs, function, d.settings.region)
    assert deployed_mapping.poll_once(aws, wait_seconds=2)["deleted"] == 1
    claim = d.clients("dynamodb").get_item(TableName=d.outputs["idempotency_table_name"],
                                           Key={"video_id": {"S": video_id}}, ConsistentRead=True)["Item"]
    jobs = [j for j in get_batch_jobs(d.clients, d.outputs["job_queue_arn"]) if j["jobName"] == f"video-{video_id}"]
    assert claim["status"]["S"] == "SUBMITTED" and [j["jobId"] for j in jobs] == [claim["job_id"]["S"]]
    left = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert malformed in [m["Body"] for m in left] and body not in [m["Body"] for m in left]
    for message in left:  # leave the DLQ as the other checks expect it: without this test's message, visible
        if message["Body"] == malformed:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        else:
            sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=0)


# --- the backend's access: browser uploads and Bedrock, read back from the deployment ----------------------

def _raw_object_url(d, key: str) -> str:
    bucket = d.outputs["bucket_names"]["raw-videos"]
    if d.target == "moto":
        return f"{d.endpoint_url}/{bucket}/{key}"
    return f"https://{bucket}.s3.{d.settings.region}.amazonaws.com/{key}"


def _preflight(url: str, origin: str) -> tuple[int, dict[str, str]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method="OPTIONS", headers={
        "Origin": origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_raw_bucket_cors_lets_the_site_upload_and_read_etags(platform_live):
    """S3 answers a browser's preflight from the bucket's CORS rule: the site's origin may PUT and read ETag, any
    other origin gets 403 ("Elements of a CORS configuration" and "Troubleshooting CORS", Amazon S3 User Guide).
    Dev has no domain, so the site's origin is the ALB's http://<DNS name>."""
    d = platform_live
    site = f"http://{d.outputs['alb_dns_name']}"
    (rule,) = d.clients("s3").get_bucket_cors(Bucket=d.outputs["bucket_names"]["raw-videos"])["CORSRules"]
    assert rule["AllowedOrigins"] == [site] and rule["AllowedMethods"] == ["PUT"]
    assert rule["AllowedHeaders"] == ["content-type", "content-md5", "x-amz-*"]
    assert rule["ExposeHeaders"] == ["ETag"] and rule["MaxAgeSeconds"] == 3600
    status, headers = _preflight(_raw_object_url(d, "uploads/clip.mp4"), site)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == site
    assert "ETag" in headers["Access-Control-Expose-Headers"]
    status, _ = _preflight(_raw_object_url(d, "uploads/clip.mp4"), "https://evil.example.com")
    assert status == 403  # a preflight that is not 2xx makes the browser refuse the upload


def test_backend_task_role_and_container_name_exactly_the_bedrock_models(platform_live):
    """The deployed role policy as IAM returns it (GetRolePolicy), and the backend task definition's environment."""
    from urllib.parse import unquote

    d, s = platform_live, platform_live.settings
    document = d.clients("iam").get_role_policy(RoleName=s.name("backend-task"), PolicyName="backend-task")[
        "PolicyDocument"]
    statements = {st["Sid"]: st for st in (json.loads(unquote(document)) if isinstance(document, str)
                                           else document)["Statement"]}
    assert statements["InvokeBedrockModels"]["Action"] == ["bedrock:InvokeModel",
                                                           "bedrock:InvokeModelWithResponseStream"]
    assert statements["InvokeBedrockModels"]["Resource"] == [
        f"arn:aws:bedrock:{s.region}::foundation-model/{s.bedrock_text_model_id}",
        f"arn:aws:bedrock:{s.region}::foundation-model/{s.bedrock_embedding_model_id}"]
    assert statements["RerankSearchResults"]["Action"] == ["bedrock:Rerank"]
    assert statements["InvokeRerankModel"]["Resource"] == [
        f"arn:aws:bedrock:{s.bedrock_rerank_region}::foundation-model/{s.bedrock_rerank_model_id}"]
    buckets = {p: f"arn:aws:s3:::{name}" for p, name in d.outputs["bucket_names"].items()}
    assert statements["DeleteVideoObjects"]["Resource"] == [
        f"{buckets[p]}/*" for p in ("raw-videos", "thumbnails", "highlights")]
    assert statements["WriteThumbnails"]["Resource"] == [f"{buckets['thumbnails']}/*"]
    assert statements["ListHighlights"]["Resource"] == [buckets["highlights"]]
    service = get_ecs_service(d.clients, d.outputs["ecs_cluster_name"], s.name("backend"))
    (container,) = get_ecs_task_definition(d.clients, service["taskDefinition"])["containerDefinitions"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert {k: v for k, v in environment.items() if k.startswith("BEDROCK_")} == {
        "BEDROCK_TEXT_MODEL_ID": s.bedrock_text_model_id, "BEDROCK_EMBEDDING_MODEL_ID": s.bedrock_embedding_model_id,
        "BEDROCK_RERANK_MODEL_ID": s.bedrock_rerank_model_id, "BEDROCK_RERANK_REGION": s.bedrock_rerank_region}
