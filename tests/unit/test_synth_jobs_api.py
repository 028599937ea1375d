"""Jobs API module (jobs_api_enabled): HTTP API, routes, IAM auth, stage, functions, roles, upload rule."""

from __future__ import annotations

import ast
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from deepsentinel.settings import SettingsError, load_settings
from tests.unit.policy_eval import ACCOUNT_ID, ALLOW, IMPLICIT_DENY, identity_decision, principal_decision, resolve
from tests.unit.synth_helpers import named, of_type, only, policy, ref

OVERRIDES = ["jobs_api_enabled=true", "jobs_api_throttle_rate=25", "jobs_api_throttle_burst=50",
             "jobs_api_url_expiry_seconds=600", "jobs_api_cors_origins=https://ops.example.com,http://localhost:3000"]
ROUTE_KEYS = {"POST /videos": "create", "GET /videos/{id}": "status", "GET /videos/{id}/results": "results"}
PREFIX = "jobs-api-"
VIDEO_ID = PREFIX + "0123456789abcdef0123456789abcdef"
# IAM Roles Anywhere trust anchors (ARN format: Service Authorization Reference, AWS Identity and Access Management
# Roles Anywhere, resource type trust-anchor; the id is a UUID, botocore's rolesanywhere model, shape Uuid).
ANCHORS = f"arn:aws:rolesanywhere:ap-northeast-2:{ACCOUNT_ID}:trust-anchor"
TRUST_ANCHOR = f"{ANCHORS}/0f3b6a8e-5c1d-4e2f-9a7b-1c2d3e4f5a6b"
OTHER_TRUST_ANCHOR = f"{ANCHORS}/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
GATEWAY_CNS = ("gateway-7.cameras.example.com", "gateway-8.cameras.example.com")
ROLES_ANYWHERE_ACTIONS = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
FIFO_OVERRIDES = ["jobs_api_enabled=true", "fifo_job_queue=true",
                  f"jobs_api_roles_anywhere_trust_anchor_arns={TRUST_ANCHOR}",
                  f"jobs_api_roles_anywhere_subject_cns={','.join(GATEWAY_CNS)}"]


@pytest.fixture(scope="module")
def jobs_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dev with the Jobs API on (throttling, expiry and CORS set away from their defaults), synthesized once."""
    from tests.synth_cache import synthesized

    return synthesized(tmp_path_factory, [("dev", OVERRIDES)], include_account_stack=False).paths["deepsentinel-dev"]


@pytest.fixture(scope="module")
def jobs(jobs_stack: Path) -> dict[str, Any]:
    from deepsentinel.synthesized import load

    return load(jobs_stack)


@pytest.fixture(scope="module")
def fifo_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dev with the Jobs API, a FIFO jobs queue and IAM Roles Anywhere for one trust anchor and two CNs."""
    from tests.synth_cache import synthesized

    return synthesized(tmp_path_factory, [("dev", FIFO_OVERRIDES)],
                       include_account_stack=False).paths["deepsentinel-dev"]


@pytest.fixture(scope="module")
def fifo_jobs(fifo_stack: Path) -> dict[str, Any]:
    from deepsentinel.synthesized import load

    return load(fifo_stack)


def jobs_resources(document: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {n: c for n, c in of_type(document, resource_type).items() if n.startswith("jobs-api_")}


def functions_by_route(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {purpose: named(document, "aws_lambda_function", f"jobs-api_{purpose}_") for purpose in ROUTE_KEYS.values()}


def upload_event(key: str, bucket: str = "deepsentinel-dev-raw-videos") -> dict[str, Any]:
    """The "Object Created" event S3 sends to EventBridge (S3 User Guide, "EventBridge event message structure":
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)."""
    return {"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
            "source": "aws.s3", "account": "111122223333", "time": "2021-11-12T00:00:00Z",
            "region": "ap-northeast-2", "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                                  "sequencer": "00617F08299329D189"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                       "source-ip-address": "1.2.3.4", "reason": "PutObject"}}


# --- off by default ---------------------------------------------------------------------------------------------


def test_the_jobs_api_is_off_by_default(platform):
    for document in (platform.dev, platform.prod):
        assert not [t for t in document["resource"] if t.startswith("aws_apigatewayv2_")]
        assert not of_type(document, "aws_sqs_queue_policy")
        assert "deepsentinel-dev-jobs-api-uploads" not in {r["name"] for r in
                                                           of_type(document, "aws_cloudwatch_event_rule").values()}
        assert document["output"]["jobs_api_url"]["value"] == ""


# --- the API ----------------------------------------------------------------------------------------------------


def test_http_api_has_the_three_routes_each_iam_authorized_through_its_own_lambda_proxy(jobs):
    """AWS_IAM routes: callers sign with SigV4 ("Controlling access to HTTP APIs with IAM authorization":
    https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-access-control-iam.html)."""
    api_name, api = only(jobs, "aws_apigatewayv2_api")
    assert api["protocol_type"] == "HTTP" and api["name"] == "deepsentinel-dev-jobs-api"
    routes = {r["route_key"]: r for r in of_type(jobs, "aws_apigatewayv2_route").values()}
    assert set(routes) == set(ROUTE_KEYS)
    integrations = of_type(jobs, "aws_apigatewayv2_integration")
    functions = functions_by_route(jobs)
    for key, purpose in ROUTE_KEYS.items():
        route = routes[key]
        assert route["authorization_type"] == "AWS_IAM" and route["api_id"] == ref("aws_apigatewayv2_api", api_name)
        integration_name = re.fullmatch(r"integrations/\$\{aws_apigatewayv2_integration\.(.+)\.id\}",
                                        route["target"])[1]
        integration = integrations[integration_name]
        assert integration["integration_type"] == "AWS_PROXY" and integration["payload_format_version"] == "2.0"
        function_name, _ = functions[purpose]
        assert integration["integration_uri"] == ref("aws_lambda_function", function_name, "invoke_arn")


def test_each_function_runs_an_entry_point_of_the_zipped_handler(jobs, jobs_stack):
    from tests.conftest import REPO_ROOT

    tree = ast.parse((REPO_ROOT / "lambdas" / "jobs_api" / "handler.py").read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    entries = {purpose: f["handler"] for purpose, (_, f) in functions_by_route(jobs).items()}
    assert entries == {"create": "handler.create_video", "status": "handler.get_video",
                       "results": "handler.get_results"}
    assert {e.removeprefix("handler.") for e in entries.values()} <= defined
    for _, function in functions_by_route(jobs).values():
        with zipfile.ZipFile(jobs_stack.parent / function["filename"]) as archive:
            assert "handler.py" in archive.namelist()


def test_default_stage_auto_deploys_with_throttling_from_settings_and_kms_encrypted_access_logs(jobs):
    """HTTP API stage throttling (default route settings) and access logging to CloudWatch Logs ("Throttle
    requests to your HTTP APIs", "Configure logging for HTTP APIs":
    https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html,
    https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging.html)."""
    api_name, _ = only(jobs, "aws_apigatewayv2_api")
    _, stage = only(jobs, "aws_apigatewayv2_stage")
    assert stage["name"] == "$default" and stage["auto_deploy"] is True
    assert stage["api_id"] == ref("aws_apigatewayv2_api", api_name)
    settings = stage["default_route_settings"]
    assert settings["throttling_rate_limit"] == 25 and settings["throttling_burst_limit"] == 50
    log_name, log_group = named(jobs, "aws_cloudwatch_log_group", "jobs-api_access-logs")
    assert stage["access_log_settings"]["destination_arn"] == ref("aws_cloudwatch_log_group", log_name, "arn")
    key_name, _ = only(jobs, "aws_kms_key")
    assert log_group["kms_key_id"] == ref("aws_kms_key", key_name, "arn") and log_group["retention_in_days"] == 30
    assert log_group["name"] == "/aws/apigateway/deepsentinel-dev-jobs-api"
    record = json.loads(stage["access_log_settings"]["format"])
    assert record["requestId"] == "$context.requestId" and record["caller"] == "$context.identity.userArn"
    assert record["status"] == "$context.status" and record["routeKey"] == "$context.routeKey"


def test_cors_allows_exactly_the_configured_origins(jobs):
    _, api = only(jobs, "aws_apigatewayv2_api")
    cors = api["cors_configuration"]
    assert cors["allow_origins"] == ["https://ops.example.com", "http://localhost:3000"]
    assert set(cors["allow_methods"]) == {"GET", "POST"}
    assert {"authorization", "x-amz-date", "x-amz-security-token"} <= set(cors["allow_headers"])


def test_each_route_may_invoke_only_its_own_function(jobs):
    """A resource-based policy lets API Gateway invoke the function for one route's source ARN."""
    api_name, _ = only(jobs, "aws_apigatewayv2_api")
    execution_arn = ref("aws_apigatewayv2_api", api_name, "execution_arn")
    permissions = {p["source_arn"]: p for p in jobs_resources(jobs, "aws_lambda_permission").values()}
    functions = functions_by_route(jobs)
    assert set(permissions) == {f"{execution_arn}/*/{key.replace(' ', '')}" for key in ROUTE_KEYS}
    for key, purpose in ROUTE_KEYS.items():
        permission = permissions[f"{execution_arn}/*/{key.replace(' ', '')}"]
        assert permission["principal"] == "apigateway.amazonaws.com"
        assert permission["action"] == "lambda:InvokeFunction"
        assert permission["function_name"] == ref("aws_lambda_function", functions[purpose][0], "function_name")


def test_gateways_assume_a_client_role_that_may_invoke_only_the_routes(jobs):
    _, role = named(jobs, "aws_iam_role", "jobs-api_client-role")
    trust = policy(role, "assume_role_policy")["Statement"]
    assert trust == [{"Effect": "Allow", "Action": "sts:AssumeRole",
                      "Principal": {"AWS": "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"}}]
    assert service_trust_decision(resolve(policy(role, "assume_role_policy")), "rolesanywhere.amazonaws.com",
                                  "sts:AssumeRole", {"aws:SourceArn": TRUST_ANCHOR}) == IMPLICIT_DENY
    api_name, _ = only(jobs, "aws_apigatewayv2_api")
    execution_arn = ref("aws_apigatewayv2_api", api_name, "execution_arn")
    _, client_policy = named(jobs, "aws_iam_role_policy", "jobs-api_client-policy")
    assert policy(client_policy)["Statement"] == [{
        "Effect": "Allow", "Action": ["execute-api:Invoke"], "Sid": "InvokeJobsApi",
        "Resource": [f"{execution_arn}/*/GET/videos/*", f"{execution_arn}/*/GET/videos/*/results",
                     f"{execution_arn}/*/POST/videos"]}]
    assert jobs["output"]["jobs_api_client_role_arn"]["value"] == ref("aws_iam_role", named(
        jobs, "aws_iam_role", "jobs-api_client-role")[0], "arn")
    assert jobs["output"]["jobs_api_url"]["value"] == ref("aws_apigatewayv2_api", api_name, "api_endpoint")


# --- the functions ----------------------------------------------------------------------------------------------


def route_statements(document: dict[str, Any], purpose: str) -> dict[str, dict[str, Any]]:
    _, role_policy = named(document, "aws_iam_role_policy", f"jobs-api_{purpose}-policy")
    return {s["Sid"]: s for s in policy(role_policy)["Statement"]}


def test_each_function_role_allows_only_what_its_route_calls_on_exactly_its_resources(jobs):
    raw = ref("aws_s3_bucket", named(jobs, "aws_s3_bucket", "storage_raw-videos")[0], "arn")
    highlights = ref("aws_s3_bucket", named(jobs, "aws_s3_bucket", "storage_highlights")[0], "arn")
    table = ref("aws_dynamodb_table", only(jobs, "aws_dynamodb_table")[0], "arn")
    under_prefix = {"StringLike": {"s3:prefix": [f"{PREFIX}*"]}}
    common = {"WriteOwnLogs", "DeadLetters", "UseEnvironmentKey"}

    create = route_statements(jobs, "create")
    assert set(create) == common | {"PresignUploads"}
    assert create["PresignUploads"]["Action"] == ["s3:PutObject"]
    assert create["PresignUploads"]["Resource"] == [f"{raw}/{PREFIX}*"]

    status = route_statements(jobs, "status")
    assert set(status) == common | {"ReadClaims", "ReadJobs", "FindUploads"}
    assert status["ReadClaims"]["Action"] == ["dynamodb:GetItem"] and status["ReadClaims"]["Resource"] == [table]
    assert status["ReadJobs"]["Action"] == ["batch:DescribeJobs", "batch:ListJobs"]
    assert status["FindUploads"] == {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [raw],
                                     "Condition": under_prefix, "Sid": "FindUploads"}

    results = route_statements(jobs, "results")
    assert set(results) == common | {"ListHighlights", "PresignHighlights"}
    assert results["ListHighlights"]["Resource"] == [highlights]
    assert results["ListHighlights"]["Condition"] == under_prefix
    assert results["PresignHighlights"]["Action"] == ["s3:GetObject"]
    assert results["PresignHighlights"]["Resource"] == [f"{highlights}/{PREFIX}*"]

    for purpose in ROUTE_KEYS.values():
        statements = route_statements(jobs, purpose)
        log_name, _ = named(jobs, "aws_cloudwatch_log_group", f"jobs-api_{purpose}-logs")
        assert statements["WriteOwnLogs"]["Resource"] == [ref("aws_cloudwatch_log_group", log_name, "arn") + ":*"]
        for statement in statements.values():
            assert all(not a.endswith("*") for a in statement["Action"])
            assert statement["Resource"] != "*" or statement["Sid"] == "ReadJobs"


def test_functions_follow_the_platform_conventions(jobs):
    key = ref("aws_kms_key", only(jobs, "aws_kms_key")[0], "arn")
    dlq = ref("aws_sqs_queue", named(jobs, "aws_sqs_queue", "functions-dlq")[0], "arn")
    lambda_sg = ref("aws_security_group", named(jobs, "aws_security_group", "security_lambda")[0])
    for purpose, (name, function) in functions_by_route(jobs).items():
        assert function["function_name"] == f"deepsentinel-dev-jobs-api-{purpose}"
        assert function["tracing_config"] == {"mode": "Active"} and function["kms_key_arn"] == key
        assert function["dead_letter_config"] == {"target_arn": dlq}
        assert function["vpc_config"]["security_group_ids"] == [lambda_sg]
        assert function["timeout"] <= 29  # below API Gateway's 30 s integration limit
        role_name, _ = named(jobs, "aws_iam_role", f"jobs-api_{purpose}-role")
        assert function["role"] == ref("aws_iam_role", role_name, "arn")
        log_name, log_group = named(jobs, "aws_cloudwatch_log_group", f"jobs-api_{purpose}-logs")
        assert log_group["name"] == f"/aws/lambda/{function['function_name']}" and log_group["kms_key_id"] == key
        assert f"aws_cloudwatch_log_group.{log_name}" in function["depends_on"]
        assert any(d.startswith("aws_iam_role_policy.jobs-api_") for d in function["depends_on"])
        variables = function["environment"]["variables"]
        assert variables["UPLOAD_PREFIX"] == PREFIX and variables["URL_EXPIRY_SECONDS"] == "600"
    assert set(functions_by_route(jobs)["status"][1]["environment"]["variables"]) == {
        "UPLOAD_PREFIX", "URL_EXPIRY_SECONDS", "RAW_BUCKET", "IDEMPOTENCY_TABLE", "JOB_QUEUE"}
    alarms = {a["alarm_name"] for a in jobs_resources(jobs, "aws_cloudwatch_metric_alarm").values()}
    # Each route's function on its error rate, the API on its 5xx rate (tests/unit/test_synth_operations.py).
    assert alarms == {f"deepsentinel-dev-jobs-api-{p}-error-rate" for p in ROUTE_KEYS.values()} | {
        "deepsentinel-dev-jobs-api-5xx-rate"}


# --- upload completes -> job enqueued -------------------------------------------------------------------------


def test_upload_rule_matches_object_created_events_of_the_raw_bucket_under_the_api_prefix_only(jobs):
    """S3 sends "Object Created" events to EventBridge once the bucket enables it (S3 User Guide, "Using
    EventBridge": https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventBridge.html); a prefix matcher
    filters the key ("Creating event patterns", prefix matching:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    from moto.events.models import EventPattern

    _, rule = named(jobs, "aws_cloudwatch_event_rule", "jobs-api_upload-rule")
    raw_name, _ = named(jobs, "aws_s3_bucket", "storage_raw-videos")
    pattern = json.loads(rule["event_pattern"])
    assert pattern["detail"]["bucket"]["name"] == [ref("aws_s3_bucket", raw_name, "bucket")]
    _, notification = named(jobs, "aws_s3_bucket_notification", "storage_raw-videos-events")
    assert notification["eventbridge"] is True  # the raw bucket publishes its events (storage.py)

    matcher = EventPattern.load(rule["event_pattern"].replace(ref("aws_s3_bucket", raw_name, "bucket"),
                                                              "deepsentinel-dev-raw-videos"))
    assert matcher.matches_event(upload_event(VIDEO_ID))
    assert not matcher.matches_event(upload_event("uploads/web-app-video.mp4"))  # the backend enqueues its own
    assert not matcher.matches_event(upload_event(VIDEO_ID, bucket="deepsentinel-dev-highlights"))
    assert not matcher.matches_event({**upload_event(VIDEO_ID), "detail-type": "Object Deleted"})


def test_the_transformed_upload_event_is_a_message_sqs_to_batch_accepts(jobs):
    """The target's input transformer turns the S3 event into {"video_id", "s3_key", "bucket"}; the key is
    the video id. A placeholder outside quotes becomes the value as JSON, a string quoted and escaped
    ("Amazon EventBridge input transformation", Input transform examples, "Simple JSON":
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html; the local server
    fills templates the same way, tests/unit/test_local_aws.py). sqs_to_batch's own parser reads the result."""
    from deepsentinel.local.patches import transform_event_input as transform
    from tests.unit.lambdas.lambda_testkit import load_handler

    _, target = named(jobs, "aws_cloudwatch_event_target", "jobs-api_upload-target")
    transformer = target["input_transformer"]
    body = transform(transformer["input_paths"], transformer["input_template"], upload_event(VIDEO_ID))
    assert json.loads(body) == {"video_id": VIDEO_ID, "s3_key": VIDEO_ID, "bucket": "deepsentinel-dev-raw-videos"}
    message = load_handler("sqs_to_batch").parse_body(body)
    assert (message.video_id, message.s3_key, message.bucket) == (VIDEO_ID, VIDEO_ID, "deepsentinel-dev-raw-videos")
    # any key stays valid JSON: placeholders outside quotes are inserted as JSON strings
    odd = transform(transformer["input_paths"], transformer["input_template"], upload_event(f'{PREFIX}"x\\y'))
    assert json.loads(odd)["video_id"] == f'{PREFIX}"x\\y'


def test_only_the_upload_rule_may_send_to_the_jobs_queue_and_the_key_lets_eventbridge_encrypt(jobs):
    """SQS targets use the queue's resource policy, with no role on the target ("Using resource-based
    policies for Amazon EventBridge", Amazon SQS permissions:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html); an SSE-KMS queue
    also needs the key to let EventBridge use it (kms:GenerateDataKey, kms:Decrypt)."""
    rule_name, _ = named(jobs, "aws_cloudwatch_event_rule", "jobs-api_upload-rule")
    queue_name, _ = named(jobs, "aws_sqs_queue", "jobs-queue")
    _, target = named(jobs, "aws_cloudwatch_event_target", "jobs-api_upload-target")
    assert target["arn"] == ref("aws_sqs_queue", queue_name, "arn") and "role_arn" not in target
    _, queue_policy = only(jobs, "aws_sqs_queue_policy")
    assert queue_policy["queue_url"] == ref("aws_sqs_queue", queue_name, "url")
    assert policy(queue_policy)["Statement"] == [{
        "Sid": "UploadsFromJobsApiRule", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": ref("aws_sqs_queue", queue_name, "arn"),
        "Condition": {"ArnEquals": {"aws:SourceArn": ref("aws_cloudwatch_event_rule", rule_name, "arn")}}}]
    _, key = only(jobs, "aws_kms_key")
    # The key's statement for this path ("My events are not delivered to the target Amazon SQS queue", EventBridge
    # troubleshooting); its calls are evaluated in tests/unit/test_key_policy.py.
    services = [s for s in policy(key)["Statement"] if s.get("Sid") == "AllowEventBridgeToJobsQueue"][0]
    assert services["Principal"] == {"Service": "events.amazonaws.com"} and "Condition" not in services
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(services["Action"])


def test_a_standard_jobs_queue_target_names_no_message_group(jobs):
    _, target = named(jobs, "aws_cloudwatch_event_target", "jobs-api_upload-target")
    assert "sqs_target" not in target
    assert not [n for n in of_type(jobs, "aws_lambda_function") if n.startswith("jobs-api_enqueue")]


# --- with fifo_job_queue: one message group per video ----------------------------------------------------------


def test_a_fifo_jobs_queue_gets_each_upload_through_the_enqueue_function(fifo_jobs, fifo_stack):
    """An EventBridge rule's SQS target names one fixed MessageGroupId (EventBridge API Reference, SqsParameters:
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_SqsParameters.html, a String; provider 5.100.0's
    sqs_target has only message_group_id), so with a FIFO queue the rule invokes a function that sets the group per
    video. EventBridge invokes a Lambda target through the function's resource-based policy ("Using resource-based
    policies for Amazon EventBridge", AWS Lambda permissions:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html)."""
    from tests.conftest import REPO_ROOT

    rule_name, _ = named(fifo_jobs, "aws_cloudwatch_event_rule", "jobs-api_upload-rule")
    function_name, function = named(fifo_jobs, "aws_lambda_function", "jobs-api_enqueue")
    queue_name, queue = named(fifo_jobs, "aws_sqs_queue", "jobs-queue")
    assert queue["fifo_queue"] is True and queue["content_based_deduplication"] is True
    _, target = named(fifo_jobs, "aws_cloudwatch_event_target", "jobs-api_upload-target")
    assert target["arn"] == ref("aws_lambda_function", function_name, "arn")
    assert {"sqs_target", "input_transformer", "role_arn"}.isdisjoint(target)  # the function gets the S3 event
    _, permission = named(fifo_jobs, "aws_lambda_permission", "jobs-api_enqueue-permission")
    assert permission["principal"] == "events.amazonaws.com" and permission["action"] == "lambda:InvokeFunction"
    assert permission["source_arn"] == ref("aws_cloudwatch_event_rule", rule_name, "arn")
    assert permission["function_name"] == ref("aws_lambda_function", function_name, "function_name")

    tree = ast.parse((REPO_ROOT / "lambdas" / "jobs_api" / "handler.py").read_text())
    assert function["handler"] == "handler.enqueue_upload"
    assert "enqueue_upload" in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    with zipfile.ZipFile(fifo_stack.parent / function["filename"]) as archive:
        assert "handler.py" in archive.namelist()
    assert function["environment"]["variables"]["JOBS_QUEUE_URL"] == ref("aws_sqs_queue", queue_name, "url")
    assert function["function_name"] == "deepsentinel-dev-jobs-api-enqueue"
    # No queue policy: the function's own role sends (same account), and nothing else may.
    assert not of_type(fifo_jobs, "aws_sqs_queue_policy")


def test_the_enqueue_function_may_send_only_to_the_jobs_queue_with_the_key_sqs_needs(fifo_jobs):
    """SendMessage to an SSE-KMS queue needs kms:GenerateDataKey and kms:Decrypt on its key (Amazon SQS Developer
    Guide, "Key management", producer permissions); evaluated with principalmapper (tests/unit/policy_eval.py)."""
    queue_name, _ = named(fifo_jobs, "aws_sqs_queue", "jobs-queue")
    dlq_name, _ = named(fifo_jobs, "aws_sqs_queue", "functions-dlq")
    key_name, _ = only(fifo_jobs, "aws_kms_key")
    queue_arn = f"arn:aws:sqs:ap-northeast-2:{ACCOUNT_ID}:deepsentinel-dev-jobs.fifo"
    key_arn = f"arn:aws:kms:ap-northeast-2:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    references = {f"aws_sqs_queue.{queue_name}.arn": queue_arn, f"aws_kms_key.{key_name}.arn": key_arn,
                  f"aws_sqs_queue.{dlq_name}.arn": f"arn:aws:sqs:ap-northeast-2:{ACCOUNT_ID}:functions-dlq"}
    _, role_policy = named(fifo_jobs, "aws_iam_role_policy", "jobs-api_enqueue-policy")
    document = resolve(policy(role_policy), references, default="arn:aws:logs:ap-northeast-2:111122223333:x")
    assert {s["Sid"] for s in document["Statement"]} == {"WriteOwnLogs", "DeadLetters", "UseEnvironmentKey",
                                                         "SendUploadJobs"}
    assert identity_decision([document], "sqs:SendMessage", queue_arn) == ALLOW
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert identity_decision([document], action, key_arn) == ALLOW
    other_queue = f"arn:aws:sqs:ap-northeast-2:{ACCOUNT_ID}:deepsentinel-prod-jobs.fifo"
    assert identity_decision([document], "sqs:SendMessage", other_queue) == IMPLICIT_DENY
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"):
        assert identity_decision([document], action, queue_arn) == IMPLICIT_DENY


def test_the_enqueue_function_follows_the_platform_conventions(fifo_jobs):
    dlq = ref("aws_sqs_queue", named(fifo_jobs, "aws_sqs_queue", "functions-dlq")[0], "arn")
    key = ref("aws_kms_key", only(fifo_jobs, "aws_kms_key")[0], "arn")
    _, function = named(fifo_jobs, "aws_lambda_function", "jobs-api_enqueue")
    assert function["dead_letter_config"] == {"target_arn": dlq} and function["kms_key_arn"] == key
    assert function["tracing_config"] == {"mode": "Active"} and "vpc_config" in function
    role_name, _ = named(fifo_jobs, "aws_iam_role", "jobs-api_enqueue-role")
    assert function["role"] == ref("aws_iam_role", role_name, "arn")
    alarms = {a["alarm_name"] for a in jobs_resources(fifo_jobs, "aws_cloudwatch_metric_alarm").values()}
    assert "deepsentinel-dev-jobs-api-enqueue-errors" in alarms


def test_the_enqueue_function_sends_what_the_standard_queues_transformer_sends(jobs):
    """Both paths hand sqs_to_batch the same text: the input transformer's output for the S3 User Guide's
    "Object created" example (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html) is the body the
    function sends for that event."""
    from deepsentinel.local.patches import transform_event_input as transform
    from tests.unit.lambdas.lambda_testkit import load_handler

    module = load_handler("jobs_api")
    sent: list[dict[str, Any]] = []

    class RecordingSqs:
        def send_message(self, **kwargs: Any) -> dict[str, str]:
            sent.append(kwargs)
            return {"MessageId": "m-1"}

    event = upload_event(VIDEO_ID)
    module.enqueue_upload_message(event, sqs=RecordingSqs(), settings=module.Settings(
        upload_prefix=PREFIX, jobs_queue_url="https://sqs.ap-northeast-2.amazonaws.com/111122223333/q.fifo"))
    _, target = named(jobs, "aws_cloudwatch_event_target", "jobs-api_upload-target")
    transformer = target["input_transformer"]
    assert sent[0]["MessageBody"] == transform(transformer["input_paths"], transformer["input_template"], event)
    assert sent[0]["MessageGroupId"] == VIDEO_ID


# --- client role: IAM Roles Anywhere ---------------------------------------------------------------------------


def service_trust_decision(trust_policy: dict[str, Any], service: str, action: str, context: dict[str, str],
                           role_arn: str = f"arn:aws:iam::{ACCOUNT_ID}:role/deepsentinel-dev-jobs-api-client") -> str:
    """A service principal calling `action` on the role: the statements whose Principal names the service apply
    ("IAM JSON policy elements: Principal", AWS service principals), evaluated by principalmapper."""
    return principal_decision(trust_policy, kind="Service", principal=service, action=action, resource=role_arn,
                              context=context)


def roles_anywhere(trust_anchor: str, cn: str | None) -> dict[str, str]:
    """The request keys of a Roles Anywhere CreateSession: the trust anchor as aws:SourceArn and, with the default
    attribute mapping, the certificate's subject RDNs as principal tags (IAM Roles Anywhere User Guide, "Trust
    model" and "Certificate attribute mapping", Default mapping behavior)."""
    return {"aws:SourceArn": trust_anchor, **({"aws:PrincipalTag/x509Subject/CN": cn} if cn else {})}


def test_roles_anywhere_takes_the_client_role_only_from_the_configured_anchor_and_cns(fifo_jobs):
    """IAM Roles Anywhere User Guide, "Trust model" (Role trusts: rolesanywhere.amazonaws.com must be granted
    sts:AssumeRole, sts:SetSourceIdentity and sts:TagSession) and "Attribute mapping and trust policy" (the example:
    ArnEquals aws:SourceArn = the trust anchor, StringEquals on an x509 principal tag):
    https://docs.aws.amazon.com/rolesanywhere/latest/userguide/trust-model.html,
    https://docs.aws.amazon.com/rolesanywhere/latest/userguide/attribute-mapping-and-trust-policy.html.
    Each action is evaluated, since the service needs all three for one session."""
    _, role = named(fifo_jobs, "aws_iam_role", "jobs-api_client-role")
    trust = resolve(policy(role, "assume_role_policy"))
    service = "rolesanywhere.amazonaws.com"
    statements = [s for s in trust["Statement"] if s.get("Principal") == {"Service": service}]
    assert statements == [{"Sid": "RolesAnywhere", "Effect": "Allow", "Principal": {"Service": service},
                           "Action": list(ROLES_ANYWHERE_ACTIONS),
                           "Condition": {"ArnEquals": {"aws:SourceArn": [TRUST_ANCHOR]},
                                         "StringEquals": {"aws:PrincipalTag/x509Subject/CN": list(GATEWAY_CNS)}}}]
    for action in ROLES_ANYWHERE_ACTIONS:
        for cn in GATEWAY_CNS:
            assert service_trust_decision(trust, service, action, roles_anywhere(TRUST_ANCHOR, cn)) == ALLOW
        assert service_trust_decision(trust, service, action,
                                      roles_anywhere(OTHER_TRUST_ANCHOR, GATEWAY_CNS[0])) == IMPLICIT_DENY
        assert service_trust_decision(trust, service, action,
                                      roles_anywhere(TRUST_ANCHOR, "laptop.example.com")) == IMPLICIT_DENY
        assert service_trust_decision(trust, service, action, roles_anywhere(TRUST_ANCHOR, None)) == IMPLICIT_DENY
    # The account's own principals keep the statement they had (their identity policies still decide).
    assert {"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}} in trust["Statement"]


def test_without_cns_any_certificate_of_the_anchor_takes_the_role_and_no_other_anchor_does():
    """The same documented statement without the CN condition (client_trust_statements with anchors only)."""
    from deepsentinel.constructs.jobs_api import client_trust_statements

    trust = {"Statement": client_trust_statements(ACCOUNT_ID, (TRUST_ANCHOR,))}
    service = "rolesanywhere.amazonaws.com"
    for action in ROLES_ANYWHERE_ACTIONS:
        assert service_trust_decision(trust, service, action, roles_anywhere(TRUST_ANCHOR, "any")) == ALLOW
        assert service_trust_decision(trust, service, action, roles_anywhere(TRUST_ANCHOR, None)) == ALLOW
        assert service_trust_decision(trust, service, action,
                                      roles_anywhere(OTHER_TRUST_ANCHOR, "any")) == IMPLICIT_DENY
        assert service_trust_decision(trust, "ec2.amazonaws.com", action,
                                      roles_anywhere(TRUST_ANCHOR, "any")) == IMPLICIT_DENY


# --- settings ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("jobs_api_url_expiry_seconds=30", "jobs_api_url_expiry_seconds: allowed 60..3600, got 30"),
    ("jobs_api_url_expiry_seconds=7200", "jobs_api_url_expiry_seconds: allowed 60..3600, got 7200"),
    ("jobs_api_throttle_rate=0", "jobs_api_throttle_rate: allowed 1..10000, got 0"),
    ("jobs_api_throttle_burst=5001", "jobs_api_throttle_burst: allowed 1..5000, got 5001"),
    ("jobs_api_cors_origins=*", "jobs_api_cors_origins: '*' is not an origin; allowed: scheme://host[:port]"),
    ("jobs_api_cors_origins=https://ops.example.com/app", "'https://ops.example.com/app' is not an origin"),
    ("jobs_api_roles_anywhere_trust_anchor_arns=arn:aws:iam::111122223333:role/x", "is not a trust anchor ARN"),
    ("jobs_api_roles_anywhere_trust_anchor_arns=arn:aws:rolesanywhere:ap-northeast-2:111122223333:profile/"
     "0f3b6a8e-5c1d-4e2f-9a7b-1c2d3e4f5a6b", "is not a trust anchor ARN"),
    ("jobs_api_roles_anywhere_subject_cns=gateway-7", "needs jobs_api_roles_anywhere_trust_anchor_arns"),
    ("jobs_api_roles_anywhere_subject_cns=gateway-*", "'gateway-*' is not a common name"),
])
def test_jobs_api_settings_are_validated(override, message):
    with pytest.raises(SettingsError) as raised:
        load_settings("dev", overrides=[override])
    assert any(message in problem for problem in raised.value.problems)


def test_jobs_api_defaults():
    s = load_settings("prod")
    assert (s.jobs_api_enabled, s.jobs_api_url_expiry_seconds, s.jobs_api_throttle_rate,
            s.jobs_api_throttle_burst, s.jobs_api_cors_origins) == (False, 900, 10, 20, ())
    assert s.jobs_api_roles_anywhere_trust_anchor_arns == () and s.jobs_api_roles_anywhere_subject_cns == ()
    accepted = load_settings("dev", overrides=[f"jobs_api_roles_anywhere_trust_anchor_arns={TRUST_ANCHOR}"])
    assert accepted.jobs_api_roles_anywhere_trust_anchor_arns == (TRUST_ANCHOR,)


# --- cost -------------------------------------------------------------------------------------------------------


def test_the_api_is_priced_per_request_with_the_lambda_behind_it(jobs):
    from deepsentinel.review.cost import PriceTable, Usage, estimate

    table, usage = PriceTable.load(), Usage.load()
    cost = estimate("deepsentinel-dev", jobs, table, usage)
    assert [u for u in cost.not_priced if u.module == "jobs-api"] == []
    requests_per_month = usage.for_environment("dev")["resource"]["jobs-api/api"]["requests_per_month"]
    lines = {line.item.split(":")[0]: line for line in cost.lines if line.address.startswith("aws_apigatewayv2_api.")}
    assert lines[f"HTTP API {requests_per_month:g} requests"].monthly_usage == pytest.approx(
        requests_per_month / 1e6 * table.usd("apigw_http_request_million"))
    assert lines["Lambda behind the API"].monthly_usage > 0
    assert cost.by_module()["jobs-api"][2] > 0


def test_the_fifo_and_roles_anywhere_stack_is_valid_terraform(fifo_stack):
    """`terraform validate` with the real binary and provider 5.100.0 (tests/unit/test_terraform_validate.py covers
    the default stacks): the enqueue function, its permission and target, and the two-statement trust policy."""
    from deepsentinel import terraform

    terraform.init(fifo_stack.parent, backend=False)
    terraform.validate(fifo_stack.parent)
