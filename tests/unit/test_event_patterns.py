"""Every EventBridge rule and Scheduler input of the platform, evaluated against the event AWS documents for it.

Each synthesized pattern, with its Terraform references replaced by the values AWS gives (the job queue's ARN, the
bucket's name, the RDS secret's ARN), goes through EventBridge's TestEventPattern (boto3 against the in-process moto,
tests/aws_events.py) with the sample event of tests/fixtures/aws_events/ put in our account and names: it must match
the documented event and refuse its near misses (another status, queue, bucket, key, secret, event name). The
upload rule's input transformer renders the documented S3 event and sqs_to_batch's own parser reads the result; the
night stop's Scheduler input is checked against the RDS operation's input shape in botocore's model.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from moto import mock_aws

from deepsentinel.local.patches import transform_event_input
from tests.aws_events import (ACCOUNT_ID, REGION, batch_job_state_change, eventbridge_test_event_pattern, load_event,
                              merge, rotation_succeeded, s3_object_created)
from tests.unit.synth_helpers import named, of_type, ref

REPO_ROOT = Path(__file__).resolve().parents[2]
VIDEO_ID = "jobs-api-0123456789abcdef0123456789abcdef"
# What RDS names the secret it manages for a DB instance: rds!db-<uuid>, plus Secrets Manager's 6 random characters
# ("Password management with Amazon RDS and AWS Secrets Manager", RDS User Guide).
DB_SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:rds!db-3bea3cf2-0b5f-436f-a6a1-97aad29da293-Xy12Ab"
OTHER_SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:deepsentinel-dev-github-token-Qw34Er"
_REFERENCE = re.compile(r"\$\{([^}]*)\}")


@pytest.fixture(scope="module")
def events() -> Iterator[Any]:
    with mock_aws(), eventbridge_test_event_pattern():
        yield boto3.client("events", region_name=REGION)


def matches(events: Any, pattern: str | dict[str, Any], event: dict[str, Any]) -> bool:
    pattern_text = pattern if isinstance(pattern, str) else json.dumps(pattern)
    return events.test_event_pattern(EventPattern=pattern_text, Event=json.dumps(event))["Result"]


@pytest.fixture(scope="module")
def jobs_api(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """dev with the Jobs API on: the upload rule exists only then."""
    from tests.synth_cache import synthesized

    return synthesized(tmp_path_factory, [("dev", ["jobs_api_enabled=true"])], include_account_stack=False).dev


def concrete(document: dict[str, Any], text: str) -> str:
    """`text` with each Terraform reference replaced by the value AWS gives that attribute (ARN formats:
    Service Authorization Reference, resource types of AWS Batch and AWS Secrets Manager). An attribute this
    does not know fails the test instead of matching by accident."""
    def value(match: re.Match[str]) -> str:
        resource_type, name, attribute = match.group(1).split(".", 2)
        config = of_type(document, resource_type)[name]
        if (resource_type, attribute) == ("aws_batch_job_queue", "arn"):
            return f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job-queue/{config['name']}"
        if (resource_type, attribute) == ("aws_s3_bucket", "bucket"):
            return config["bucket"]
        if (resource_type, attribute) == ("aws_db_instance", "master_user_secret[0].secret_arn"):
            return DB_SECRET_ARN
        raise AssertionError(f"no concrete value for ${{{match.group(1)}}}")

    return _REFERENCE.sub(value, text)


def rule_pattern(document: dict[str, Any], fragment: str) -> str:
    _, rule = named(document, "aws_cloudwatch_event_rule", fragment)
    return concrete(document, rule["event_pattern"])


def job_queue_arn(document: dict[str, Any]) -> str:
    (_, queue), = of_type(document, "aws_batch_job_queue").items()
    return f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job-queue/{queue['name']}"


def raw_bucket(document: dict[str, Any]) -> str:
    return next(b["bucket"] for b in of_type(document, "aws_s3_bucket").values() if b["bucket"].endswith("-raw-videos"))


# --- the matcher itself, on the EventBridge User Guide's examples ---------------------------------------------


def test_prefix_matching_as_the_user_guide_shows(events):
    """"Content filtering in Amazon EventBridge event patterns", Prefix matching: `"time": [{"prefix": "2017-10-02"}]`
    matches any event whose time starts with 2017-10-02 (https://docs.aws.amazon.com/eventbridge/latest/userguide/
    eb-create-pattern-operators.html)."""
    pattern = {"time": [{"prefix": "2017-10-02"}]}
    assert matches(events, pattern, load_event("batch_job_state_change", time="2017-10-02T10:21:05Z"))
    assert not matches(events, pattern, load_event("batch_job_state_change", time="2017-10-03T10:21:05Z"))


def test_or_matching_as_the_user_guide_shows(events):
    """Same page, "Or matching": the detail's $or matches when any one of its patterns does (the page's example:
    c-count in (0, 5], or d-count < 10, or x-limit = 301.8)."""
    pattern = {"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]},
                                  {"d-count": [{"numeric": ["<", 10]}]},
                                  {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}}
    event = load_event("batch_job_state_change")
    assert matches(events, pattern, {**event, "detail": {"c-count": 3, "d-count": 12}})
    assert matches(events, pattern, {**event, "detail": {"x-limit": 301.8}})
    assert not matches(events, pattern, {**event, "detail": {"c-count": 6, "d-count": 10}})


def test_an_event_without_a_mandatory_field_is_refused(events):
    """TestEventPattern (EventBridge API Reference): the Event must carry id, account, source, time, region,
    resources and detail-type."""
    event = load_event("batch_job_state_change")
    del event["time"]
    with pytest.raises(ClientError, match="time"):
        matches(events, {"source": ["aws.batch"]}, event)


def test_moto_does_not_match_fields_inside_arrays_of_objects(events):
    """A known difference, pinned so it is noticed if moto changes: EventBridge matches a pattern field inside the
    objects of an event array ("Amazon EventBridge event patterns", arrays), moto never does. No rule of ours
    reaches into an array (test_patterns_use_only_operators_moto_decides_like_eventbridge)."""
    event = batch_job_state_change(job_queue_arn="q", attempts=[{"container": {"exitCode": 137}}])
    assert not matches(events, {"detail": {"attempts": {"container": {"exitCode": [137]}}}}, event)


# --- every rule against its documented event ---------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_failure_monitor_rule_matches_a_failed_job_of_the_queue_only(events, platform, stack):
    """AWS Batch User Guide, "Job state change events" (sample event; a job's status moves to FAILED,
    https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html)."""
    document = getattr(platform, stack)
    pattern, queue = rule_pattern(document, "batch-failed"), job_queue_arn(document)
    assert matches(events, pattern, batch_job_state_change(job_queue_arn=queue, status="FAILED"))
    for status in ("RUNNABLE", "RUNNING", "SUCCEEDED"):
        assert not matches(events, pattern, batch_job_state_change(job_queue_arn=queue, status=status)), status
    assert not matches(events, pattern, batch_job_state_change(job_queue_arn=queue + "-other", status="FAILED"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_succeeded_counter_rule_matches_a_succeeded_job_of_the_queue_only(events, platform, stack):
    """Same page: a job of the queue that ends SUCCEEDED (the dashboard counts the rule's TriggeredRules)."""
    document = getattr(platform, stack)
    pattern, queue = rule_pattern(document, "batch-succeeded"), job_queue_arn(document)
    assert matches(events, pattern, batch_job_state_change(job_queue_arn=queue, status="SUCCEEDED"))
    assert not matches(events, pattern, batch_job_state_change(job_queue_arn=queue, status="FAILED"))
    assert not matches(events, pattern, batch_job_state_change(job_queue_arn=queue + "-other", status="SUCCEEDED"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_rotation_rule_matches_rotation_succeeded_of_the_db_secret_only(events, platform, stack):
    """Secrets Manager's RotationSucceeded as EventBridge delivers it (tests/fixtures/aws_events/README.md: a
    service event via CloudTrail, the secret in additionalEventData.SecretId; "Log AWS Secrets Manager events with
    AWS CloudTrail", https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieve-ct-entries.html)."""
    pattern = rule_pattern(getattr(platform, stack), "db-secret-rotated")
    assert matches(events, pattern, rotation_succeeded(secret_arn=DB_SECRET_ARN))
    assert not matches(events, pattern, rotation_succeeded(secret_arn=OTHER_SECRET_ARN))
    for other in ("RotationStarted", "RotationFailed", "RotationAbandoned"):
        assert not matches(events, pattern, rotation_succeeded(secret_arn=DB_SECRET_ARN, event_name=other)), other
    api_call = merge(rotation_succeeded(secret_arn=DB_SECRET_ARN), {"detail-type": "AWS API Call via CloudTrail"})
    assert not matches(events, pattern, api_call)


def test_the_rotation_rule_also_matches_the_secret_under_service_event_details(events, platform):
    """Not documented: public code handling RDS-managed secrets reports RotationSucceeded with the secret in
    detail.serviceEventDetails.secretId (tests/fixtures/aws_events/README.md); the rule matches that shape too,
    for the DB secret only."""
    pattern = rule_pattern(platform.dev, "db-secret-rotated")

    def reported(secret_arn: str) -> dict[str, Any]:
        event = rotation_succeeded(secret_arn=secret_arn)
        del event["detail"]["additionalEventData"]
        event["detail"]["serviceEventDetails"] = {"secretId": secret_arn}
        return event

    assert matches(events, pattern, reported(DB_SECRET_ARN))
    assert not matches(events, pattern, reported(OTHER_SECRET_ARN))


def test_the_upload_rule_matches_the_apis_uploads_to_the_raw_bucket_only(events, jobs_api):
    """Amazon S3 User Guide, "EventBridge event message structure" (Object Created sample,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)."""
    pattern, bucket = rule_pattern(jobs_api, "upload-rule"), raw_bucket(jobs_api)
    assert matches(events, pattern, s3_object_created(bucket=bucket, key=VIDEO_ID))
    assert not matches(events, pattern, s3_object_created(bucket=bucket, key=f"uploads/{VIDEO_ID}.mp4"))
    assert not matches(events, pattern, s3_object_created(bucket="deepsentinel-dev-highlights", key=VIDEO_ID))
    deleted = merge(s3_object_created(bucket=bucket, key=VIDEO_ID), {"detail-type": "Object Deleted"})
    assert not matches(events, pattern, deleted)


def test_the_upload_rules_transformed_message_is_what_sqs_to_batch_parses(jobs_api):
    """The rule's input transformer rendered as EventBridge does ("Amazon EventBridge input transformation";
    deepsentinel.local.patches.render_input_template is tested on that page's examples) with the documented S3 event,
    then read by sqs_to_batch's own parser."""
    from tests.unit.lambdas.lambda_testkit import load_handler

    _, target = named(jobs_api, "aws_cloudwatch_event_target", "upload-target")
    transformer = target["input_transformer"]
    event = s3_object_created(bucket=raw_bucket(jobs_api), key=VIDEO_ID)
    body = transform_event_input(transformer["input_paths"], transformer["input_template"], event)
    message = load_handler("sqs_to_batch").parse_body(body)
    assert (message.video_id, message.s3_key, message.bucket) == (VIDEO_ID, VIDEO_ID, raw_bucket(jobs_api))


def test_every_rule_of_the_platform_is_evaluated_here(platform, jobs_api):
    """A rule added without a test here fails this one."""
    tested = {"batch-failed", "batch-succeeded", "db-secret-rotated", "upload-rule"}
    for document in (platform.dev, platform.prod, jobs_api):
        for name in of_type(document, "aws_cloudwatch_event_rule"):
            assert any(fragment in name for fragment in tested), f"{name} has no event test"


def _operators(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$or":
                yield "$or"
                for branch in value:
                    yield from _operators(branch)
            elif isinstance(value, list):
                for item in value:
                    yield f"{type(item).__name__}:{','.join(sorted(item))}" if isinstance(item, dict) else "exact"
            else:
                yield from _operators(value)


def test_patterns_use_only_operators_moto_decides_like_eventbridge(platform, jobs_api):
    """What tests/fixtures/aws_events/README.md lists as decided alike (exact strings, nested objects, prefix,
    $or); a pattern with another operator needs its own evaluation first."""
    for document in (platform.dev, platform.prod, jobs_api):
        for name, rule in of_type(document, "aws_cloudwatch_event_rule").items():
            assert set(_operators(json.loads(rule["event_pattern"]))) <= {"exact", "dict:prefix", "$or"}, name


# --- Scheduler inputs --------------------------------------------------------------------------------------


def test_the_night_stop_inputs_are_the_rds_requests(platform):
    """"Using universal targets" (EventBridge Scheduler User Guide): the Input is the request of the API the ARN
    names (arn:aws:scheduler:::aws-sdk:rds:stopDBInstance), its shape the API's. Validated against botocore's RDS
    model (StopDBInstanceMessage, StartDBInstanceMessage) with member names compared without case: the universal
    target's casing (DbInstanceIdentifier, constructs/db_night_stop.py) is not decided here."""
    model = botocore.session.get_session().get_service_model("rds")
    schedules = of_type(platform.dev, "aws_scheduler_schedule")
    night = {n: s for n, s in schedules.items() if s["target"]["arn"].startswith("arn:aws:scheduler:::aws-sdk:rds:")}
    assert len(night) == 2
    (db_name, _), = of_type(platform.dev, "aws_db_instance").items()
    for name, schedule in night.items():
        action = schedule["target"]["arn"].rsplit(":", 1)[1]
        shape = model.operation_model(action[0].upper() + action[1:]).input_shape
        members = {m.lower(): m for m in shape.members}
        given = json.loads(schedule["target"]["input"])
        assert {k.lower() for k in given} <= set(members), name
        request = {members[k.lower()]: v for k, v in given.items()}
        assert set(shape.required_members) <= set(request), name
        validate_parameters(request, shape)  # raises ParamValidationError on a wrong type
        assert request["DBInstanceIdentifier"] == ref("aws_db_instance", db_name, "identifier")  # this instance


def _reads_event(handler_path: Path) -> bool:
    tree = ast.parse(handler_path.read_text())
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler")
    return any(isinstance(n, ast.Name) and n.id == "event" for n in ast.walk(function))


def test_scheduled_functions_get_no_input_and_read_no_event(platform):
    """A templated Lambda target without Input gets "a default notification" (EventBridge Scheduler API Reference,
    Target, Input), whose shape the page does not give: the two scheduled functions must not depend on it."""
    schedules = of_type(platform.dev, "aws_scheduler_schedule")
    functions = {"ecr-cleanup": "ecr_cleanup", "runnable-jobs-check": "batch_runnable_monitor"}
    for fragment, folder in functions.items():
        (_, schedule), = [(n, s) for n, s in schedules.items() if fragment in n]
        assert "input" not in schedule["target"], fragment
        assert not _reads_event(REPO_ROOT / "lambdas" / folder / "handler.py"), folder
