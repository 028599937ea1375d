"""Jobs API (jobs_api_enabled) on its own small deployment: the HTTP API read back, and an upload enqueuing its job."""

from __future__ import annotations

import json

import pytest

from deepsentinel.constructs.jobs_api import ROUTES, UPLOAD_PREFIX

pytestmark = pytest.mark.live

VIDEO_ID = UPLOAD_PREFIX + "0123456789abcdef0123456789abcdef"


def test_http_api_with_iam_authorized_lambda_proxy_routes(jobs_api_live):
    d = jobs_api_live
    apigw = d.clients("apigatewayv2")
    api_id = d.outputs["api_id"]
    api = apigw.get_api(ApiId=api_id)
    assert api["ProtocolType"] == "HTTP" and api["Name"] == d.settings.name("jobs-api")
    assert d.outputs["api_endpoint"] == api["ApiEndpoint"]
    integrations = {i["IntegrationId"]: i for i in apigw.get_integrations(ApiId=api_id)["Items"]}
    routes = {r["RouteKey"]: r for r in apigw.get_routes(ApiId=api_id)["Items"]}
    assert set(routes) == {r.key for r in ROUTES}
    functions = d.clients("lambda")
    for route in ROUTES:
        deployed = routes[route.key]
        assert deployed["AuthorizationType"] == "AWS_IAM"
        integration = integrations[deployed["Target"].removeprefix("integrations/")]
        assert integration["IntegrationType"] == "AWS_PROXY" and integration["PayloadFormatVersion"] == "2.0"
        function = functions.get_function(FunctionName=d.outputs["function_names"][route.purpose])["Configuration"]
        assert function["FunctionArn"] in integration["IntegrationUri"]
        assert function["Handler"] == f"handler.{route.entry_point}"
        assert function["TracingConfig"]["Mode"] == "Active"
        assert function["VpcConfig"]["SecurityGroupIds"] == [d.outputs["lambda_security_group_id"]]
        statement = json.loads(functions.get_policy(FunctionName=function["FunctionName"])["Policy"])["Statement"][0]
        assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
        assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f"/*/{route.method}{route.path}")


def test_default_stage_with_throttling_and_access_logs(jobs_api_live):
    d = jobs_api_live
    stage = d.clients("apigatewayv2").get_stage(ApiId=d.outputs["api_id"], StageName="$default")
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == d.settings.jobs_api_throttle_rate
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == d.settings.jobs_api_throttle_burst
    group = d.outputs["access_log_group_name"]
    assert stage["AccessLogSettings"]["DestinationArn"].endswith(f":log-group:{group}")
    (described,) = d.clients("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert described.get("kmsKeyId", "").startswith("arn:aws:kms:")


def test_client_role_may_invoke_the_routes(jobs_api_live):
    d = jobs_api_live
    iam = d.clients("iam")
    role_name = d.outputs["client_role_arn"].rsplit("/", 1)[-1]
    document = iam.get_role_policy(RoleName=role_name, PolicyName="invoke-jobs-api")["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    (statement,) = document["Statement"]
    assert statement["Action"] == ["execute-api:Invoke"]
    assert all(f":{d.outputs['api_id']}/*/" in arn for arn in statement["Resource"])


def test_upload_under_the_api_prefix_enqueues_the_message_sqs_to_batch_parses(jobs_api_live):
    """raw bucket -> EventBridge "Object Created" -> upload rule -> input transformer -> jobs queue."""
    from tests.unit.lambdas.lambda_testkit import load_handler

    d = jobs_api_live
    rule_name = d.outputs["upload_rule_arn"].rsplit("/", 1)[-1]
    (target,) = d.clients("events").list_targets_by_rule(Rule=rule_name)["Targets"]
    assert target["InputTransformer"]["InputPathsMap"] == {"key": "$.detail.object.key",
                                                          "bucket": "$.detail.bucket.name"}
    sqs = d.clients("sqs")
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=d.outputs["jobs_queue_url"],
                                                 AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Condition"] == {"ArnEquals": {"aws:SourceArn": d.outputs["upload_rule_arn"]}}

    s3 = d.clients("s3")
    s3.put_object(Bucket=d.outputs["raw_bucket"], Key="uploads/web-app.mp4", Body=b"not an API upload")
    s3.put_object(Bucket=d.outputs["raw_bucket"], Key=VIDEO_ID, Body=b"\x00\x00\x00\x18ftypmp42")
    messages = sqs.receive_message(QueueUrl=d.outputs["jobs_queue_url"], MaxNumberOfMessages=10,
                                   WaitTimeSeconds=5)["Messages"]
    assert len(messages) == 1  # only the API's upload
    message = load_handler("sqs_to_batch").parse_body(messages[0]["Body"])
    assert (message.video_id, message.s3_key, message.bucket) == (VIDEO_ID, VIDEO_ID, d.outputs["raw_bucket"])


def test_second_plan_has_no_changes(jobs_api_live):
    assert jobs_api_live.second_plan_has_changes is False, jobs_api_live.second_plan_output


@pytest.mark.live_destroy
def test_destroy_leaves_nothing_of_the_project(jobs_api_live):
    assert jobs_api_live.destroy().leftovers == []
