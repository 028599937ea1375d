"""sqs_to_batch: idempotent SQS -> Batch submission, asserted against moto's Batch and DynamoDB state."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from lambda_testkit import REGION, count_calls, fail_call, load_handler
from tests import aws_events

FUNCTION = "sqs_to_batch"
QUEUE = "video-analysis-queue"
JOB_DEFINITION = "video-analysis-gpu"
TABLE = "video-idempotency"


@dataclass
class Env:
    module: ModuleType
    dynamodb: Any
    batch: Any

    def jobs(self) -> list[dict[str, Any]]:
        """Every job in the queue, whatever its status (moto's simple Batch finishes them at once)."""
        summaries = self.batch.list_jobs(jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": ["*"]}])[
            "jobSummaryList"
        ]
        if not summaries:
            return []
        return self.batch.describe_jobs(jobs=[s["jobId"] for s in summaries])["jobs"]

    def item(self, video_id: str) -> dict[str, Any] | None:
        return self.dynamodb.get_item(TableName=TABLE, Key={"video_id": {"S": video_id}}, ConsistentRead=True).get(
            "Item"
        )

    def items(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=TABLE)["Items"]


@pytest.fixture
def env(handler_module: ModuleType, boto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Env:
    iam, batch, dynamodb = boto_client("iam"), boto_client("batch"), boto_client("dynamodb")
    role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    ce = batch.create_compute_environment(
        computeEnvironmentName="gpu-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName=QUEUE,
        state="ENABLED",
        priority=10,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName=JOB_DEFINITION,
        type="container",
        containerProperties={"image": "worker:1", "vcpus": 1, "memory": 512, "command": ["run"]},
    )
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "video_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "video_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    monkeypatch.setenv("JOB_QUEUE", QUEUE)
    monkeypatch.setenv("JOB_DEFINITION", JOB_DEFINITION)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", TABLE)
    monkeypatch.setenv("CLAIM_TTL_SECONDS", "600")
    h_dynamodb, h_batch = handler_module.clients()
    return Env(module=handler_module, dynamodb=h_dynamodb, batch=h_batch)


def sqs_record(body: Any, message_id: str) -> dict[str, Any]:
    """One record of the SQS event Lambda sends ("Using Lambda with Amazon SQS" sample: attributes, md5OfBody,
    messageAttributes, eventSourceARN, awsRegion) for `body` from the jobs queue."""
    return aws_events.sqs_record(body if isinstance(body, str) else json.dumps(body), message_id=message_id,
                                 queue_arn=f"arn:aws:sqs:{REGION}:{aws_events.ACCOUNT_ID}:{QUEUE}")


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return aws_events.sqs_event(*records)


def video(video_id: str, **extra: Any) -> dict[str, Any]:
    return {"video_id": video_id, "s3_key": f"raw/{video_id}.mp4", **extra}


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def env_of(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["container"]["environment"]}


# --- happy path -------------------------------------------------------------------------------------


def test_valid_record_submits_one_job_and_records_it_on_the_claim(env: Env, lambda_context, capsys) -> None:
    before = int(time.time())
    result = env.module.handler(sqs_event(sqs_record(video("cam1-0001"), "m-1")), lambda_context)

    assert result == {"batchItemFailures": []}
    [job] = env.jobs()
    assert job["jobName"] == "video-cam1-0001"
    assert job["jobDefinition"].endswith(f"job-definition/{JOB_DEFINITION}:1")
    assert env_of(job)["VIDEO_ID"] == "cam1-0001"
    assert env_of(job)["S3_KEY"] == "raw/cam1-0001.mp4"
    assert "RAW_BUCKET" not in env_of(job)

    item = env.item("cam1-0001")
    assert item["status"]["S"] == "SUBMITTED"
    assert item["job_id"]["S"] == job["jobId"]
    assert item["message_id"]["S"] == "m-1"
    # A submitted video stays a duplicate for the submitted retention, not the short claim TTL.
    expires_at = int(item["expires_at"]["N"])
    assert expires_at >= before + env.module.DEFAULT_SUBMITTED_TTL_SECONDS

    assert log_lines(capsys) == [
        {"level": "INFO", "message_id": "m-1", "video_id": "cam1-0001", "outcome": "submitted", "job_id": job["jobId"]}
    ]


def test_bucket_and_priority_are_passed_as_container_environment(env: Env, lambda_context) -> None:
    body = video("cam2-7", bucket="ds-dev-raw-videos", priority=5, camera="lobby")  # camera: unknown, ignored
    assert env.module.handler(sqs_event(sqs_record(body, "m-1")), lambda_context) == {"batchItemFailures": []}
    [job] = env.jobs()
    assert env_of(job)["RAW_BUCKET"] == "ds-dev-raw-videos"
    assert env_of(job)["PRIORITY"] == "5"
    assert "camera" not in json.dumps(job["container"]["environment"])


def test_in_flight_claim_carries_the_configured_ttl_while_the_job_is_submitted(env: Env, lambda_context) -> None:
    seen: list[dict[str, Any]] = []

    def _read_claim(**_: Any) -> None:
        seen.append(env.item("cam3-1"))

    # Read the table back at the moment Batch is called: the claim exists, in flight, with its TTL.
    env.batch.meta.events.register("before-call.batch.SubmitJob", _read_claim)
    start = int(time.time())
    env.module.handler(sqs_event(sqs_record(video("cam3-1"), "m-1")), lambda_context)

    [claim] = seen
    assert claim["status"]["S"] == "IN_FLIGHT"
    assert "job_id" not in claim
    assert start + 600 <= int(claim["expires_at"]["N"]) <= int(time.time()) + 600


def test_a_batch_of_new_videos_submits_one_job_each(env: Env, lambda_context) -> None:
    event = sqs_event(*(sqs_record(video(f"v{i}"), f"m-{i}") for i in range(10)))
    assert env.module.handler(event, lambda_context) == {"batchItemFailures": []}
    assert sorted(j["jobName"] for j in env.jobs()) == sorted(f"video-v{i}" for i in range(10))
    assert {i["status"]["S"] for i in env.items()} == {"SUBMITTED"}


def test_common_path_makes_three_calls_and_a_duplicate_one(env: Env, lambda_context) -> None:
    calls = count_calls(env.dynamodb, env.batch)
    env.module.handler(sqs_event(sqs_record(video("c1"), "m-1")), lambda_context)
    assert calls == ["DynamoDB.PutItem", "Batch.SubmitJob", "DynamoDB.UpdateItem"]

    calls.clear()
    env.module.handler(sqs_event(sqs_record(video("c1"), "m-2")), lambda_context)
    assert calls == ["DynamoDB.PutItem"]


def test_empty_event_returns_no_failures(env: Env, lambda_context) -> None:
    assert env.module.handler({"Records": []}, lambda_context) == {"batchItemFailures": []}
    assert env.jobs() == []


# --- duplicates and claims --------------------------------------------------------------------------


def test_redelivered_video_is_acknowledged_without_a_second_job(env: Env, lambda_context, capsys) -> None:
    env.module.handler(sqs_event(sqs_record(video("dup-1"), "m-1")), lambda_context)
    capsys.readouterr()

    result = env.module.handler(sqs_event(sqs_record(video("dup-1"), "m-2")), lambda_context)

    assert result == {"batchItemFailures": []}
    [job] = env.jobs()
    [line] = log_lines(capsys)
    # The duplicate's log line names the job that already exists (read from the failed condition).
    assert line == {"level": "INFO", "message_id": "m-2", "video_id": "dup-1", "outcome": "duplicate", "job_id": job["jobId"]}
    assert env.item("dup-1")["message_id"]["S"] == "m-1"


def test_video_claimed_by_an_in_flight_invocation_is_a_duplicate(env: Env, lambda_context) -> None:
    now = int(time.time())
    env.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "video_id": {"S": "busy"},
            "status": {"S": "IN_FLIGHT"},
            "claim_token": {"S": "other"},
            "expires_at": {"N": str(now + 300)},
        },
    )
    result = env.module.handler(sqs_event(sqs_record(video("busy"), "m-1")), lambda_context)
    assert result == {"batchItemFailures": []}
    assert env.jobs() == []
    assert env.item("busy")["claim_token"]["S"] == "other"


def test_expired_claim_left_by_a_crashed_invocation_is_taken_over(env: Env, lambda_context) -> None:
    # DynamoDB's TTL sweep may not have deleted the item yet: the condition must treat it as free.
    env.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "video_id": {"S": "crashed"},
            "status": {"S": "IN_FLIGHT"},
            "claim_token": {"S": "dead"},
            "expires_at": {"N": str(int(time.time()) - 1)},
        },
    )
    result = env.module.handler(sqs_event(sqs_record(video("crashed"), "m-1")), lambda_context)
    assert result == {"batchItemFailures": []}
    [job] = env.jobs()
    item = env.item("crashed")
    assert item["status"]["S"] == "SUBMITTED" and item["job_id"]["S"] == job["jobId"]
    assert item["claim_token"]["S"] != "dead"


def test_a_crash_after_submit_never_yields_a_second_job(env: Env, lambda_context, capsys) -> None:
    """The claim update fails after SubmitJob, the clock passes the claim's lifetime, SQS redelivers: the
    redelivery finds the running job with ListJobs (JOB_NAME filter: every status, "ListJobs", AWS Batch API
    reference, https://docs.aws.amazon.com/batch/latest/APIReference/API_ListJobs.html) and adopts it."""
    failing = [True]
    fail_call(env.dynamodb, "UpdateItem", code="InternalServerError", status=500, when=lambda _: failing[0])
    settings = env.module.Settings.from_env()
    first = env.module.process_record(sqs_record(video("crash-1"), "m-1"), dynamodb=env.dynamodb,
                                      batch=env.batch, settings=settings)
    failing[0] = False
    later = time.time() + settings.claim_ttl_seconds + 1
    again = env.module.process_record(sqs_record(video("crash-1"), "m-1"), dynamodb=env.dynamodb,
                                      batch=env.batch, settings=settings, now=lambda: later)
    [job] = env.jobs()
    assert first.outcome == "submitted" and again.outcome == "adopted" and again.job_id == job["jobId"]
    item = env.item("crash-1")
    assert item["status"]["S"] == "SUBMITTED" and item["job_id"]["S"] == job["jobId"]


def test_an_expired_claim_whose_job_failed_submits_a_new_job(env: Env, lambda_context, monkeypatch) -> None:
    """A FAILED job is not adopted: the resend gets a new job."""
    settings = env.module.Settings.from_env()
    original = env.batch.list_jobs

    def with_failed_job(**kwargs: Any) -> dict[str, Any]:
        page = original(**kwargs)
        for job in page["jobSummaryList"]:
            job["status"] = "FAILED"  # the documented summary shape, in the state Batch would report
        return page

    failing = [True]
    fail_call(env.dynamodb, "UpdateItem", code="InternalServerError", status=500, when=lambda _: failing[0])
    env.module.process_record(sqs_record(video("crash-2"), "m-1"), dynamodb=env.dynamodb, batch=env.batch,
                              settings=settings)
    failing[0] = False
    monkeypatch.setattr(env.batch, "list_jobs", with_failed_job)
    later = time.time() + settings.claim_ttl_seconds + 1
    again = env.module.process_record(sqs_record(video("crash-2"), "m-2"), dynamodb=env.dynamodb, batch=env.batch,
                                      settings=settings, now=lambda: later)
    assert again.outcome == "submitted" and len(env.jobs()) == 2


def test_the_original_backend_message_format_is_accepted(env: Env, lambda_context) -> None:
    body = {"video": {"id": "cam9-1", "title": "lobby"}, "s3": {"bucket": "ds-dev-raw-videos", "key": "uploads/cam9-1/a.mp4"}}
    assert env.module.handler(sqs_event(sqs_record(body, "m-1")), lambda_context) == {"batchItemFailures": []}
    [job] = env.jobs()
    assert job["jobName"] == "video-cam9-1"
    assert {k: env_of(job).get(k) for k in ("VIDEO_ID", "S3_KEY", "RAW_BUCKET")} == {
        "VIDEO_ID": "cam9-1", "S3_KEY": "uploads/cam9-1/a.mp4", "RAW_BUCKET": "ds-dev-raw-videos"}


@pytest.mark.parametrize("body, problem", [
    ({"video": {}, "s3": {"key": "k"}}, "video.id must be a non-empty string"),
    ({"video": {"id": "v"}, "s3": {"bucket": "b"}}, "s3.key must be a non-empty string"),
    ({"video": "v", "s3": {"key": "k"}}, "video must be an object"),
    ({"video": {"id": "v"}}, "s3 must be an object"),
    ({"video": {"id": "v"}, "s3": {"key": "k", "bucket": ""}}, "s3.bucket must be a non-empty string"),
])
def test_malformed_nested_messages_name_the_field(env: Env, body: dict[str, Any], problem: str) -> None:
    with pytest.raises(env.module.InvalidMessageError, match=problem.replace(".", r"\.")):
        env.module.parse_body(json.dumps(body))


@pytest.fixture
def atomic_dynamodb_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's item writes atomic, as DynamoDB's are.

    moto evaluates a ConditionExpression and stores the item in separate Python steps, so two threads
    can both pass the condition (seen here with a tiny sys.setswitchinterval). Real DynamoDB checks and
    writes one item atomically; this lock restores that guarantee so the test checks the handler.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.mark.usefixtures("atomic_dynamodb_writes")
def test_twenty_concurrent_deliveries_of_one_video_create_exactly_one_job(env: Env, lambda_context, capsys) -> None:
    # A tiny switch interval makes the threads interleave between every few bytecodes.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        _deliver_concurrently(env, lambda_context, capsys)
    finally:
        sys.setswitchinterval(interval)


def _deliver_concurrently(env: Env, lambda_context: Any, capsys: pytest.CaptureFixture[str]) -> None:
    barrier = threading.Barrier(20)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def deliver(i: int) -> None:
        try:
            barrier.wait()
            results.append(env.module.handler(sqs_event(sqs_record(video("hot-1"), f"m-{i}")), lambda_context))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert results == [{"batchItemFailures": []}] * 20
    [job] = env.jobs()
    assert env.item("hot-1")["job_id"]["S"] == job["jobId"]
    outcomes = sorted(line["outcome"] for line in log_lines(capsys))
    assert outcomes == ["duplicate"] * 19 + ["submitted"]


# --- failures -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "",
        json.dumps(["video_id", "x"]),
        json.dumps({"s3_key": "raw/a.mp4"}),
        json.dumps({"video_id": "", "s3_key": "raw/a.mp4"}),
        json.dumps({"video_id": 42, "s3_key": "raw/a.mp4"}),
        json.dumps({"video_id": "a"}),
        json.dumps({"video_id": "a", "s3_key": "raw/a.mp4", "bucket": 7}),
        json.dumps({"video_id": "a", "s3_key": "raw/a.mp4", "priority": "high"}),
        json.dumps({"video_id": "a", "s3_key": "raw/a.mp4", "priority": True}),
        json.dumps({"video_id": "a" * 1025, "s3_key": "raw/a.mp4"}),
    ],
    ids=["text", "empty", "array", "no-video-id", "blank-id", "int-id", "no-key", "bad-bucket",
         "str-priority", "bool-priority", "long-id"],
)
def test_malformed_body_is_reported_and_touches_nothing(env: Env, lambda_context, capsys, body: str) -> None:
    result = env.module.handler(sqs_event(sqs_record(body, "bad-1")), lambda_context)

    assert result == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    assert env.jobs() == []
    assert env.items() == []
    [line] = log_lines(capsys)
    assert line["outcome"] == "invalid" and line["message_id"] == "bad-1" and line["job_id"] is None
    assert line["error"]


def test_failed_submit_releases_the_claim_so_the_retry_succeeds(env: Env, lambda_context, capsys, monkeypatch) -> None:
    monkeypatch.setenv("JOB_DEFINITION", "no-such-definition")  # moto's Batch rejects the submit

    result = env.module.handler(sqs_event(sqs_record(video("retry-1"), "m-1")), lambda_context)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert env.jobs() == []
    assert env.item("retry-1") is None  # released
    [line] = log_lines(capsys)
    assert line["outcome"] == "error" and line["video_id"] == "retry-1" and "submit_job failed" in line["error"]

    # SQS redelivers the same message; with the definition fixed it goes through.
    monkeypatch.setenv("JOB_DEFINITION", JOB_DEFINITION)
    assert env.module.handler(sqs_event(sqs_record(video("retry-1"), "m-1")), lambda_context) == {
        "batchItemFailures": []
    }
    [job] = env.jobs()
    assert env.item("retry-1")["job_id"]["S"] == job["jobId"]


def test_mixed_batch_reports_exactly_the_malformed_and_failing_records(env: Env, lambda_context, capsys) -> None:
    env.module.handler(sqs_event(sqs_record(video("seen"), "m-old")), lambda_context)
    # Batch throttles the submit of one specific video; everything else reaches moto.
    fail_call(
        env.batch,
        "SubmitJob",
        code="TooManyRequestsException",
        status=429,
        when=lambda params: params.get("jobName") == "video-unlucky",
    )
    capsys.readouterr()

    event = sqs_event(
        sqs_record(video("fresh"), "m-valid"),
        sqs_record(video("seen"), "m-duplicate"),
        sqs_record("{not json", "m-malformed"),
        sqs_record(video("unlucky"), "m-failing"),
        sqs_record(video("fresh-2"), "m-valid-2"),
    )
    result = env.module.handler(event, lambda_context)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-malformed"}, {"itemIdentifier": "m-failing"}]}
    assert sorted(j["jobName"] for j in env.jobs()) == ["video-fresh", "video-fresh-2", "video-seen"]
    assert sorted(i["video_id"]["S"] for i in env.items()) == ["fresh", "fresh-2", "seen"]
    outcomes = {line["message_id"]: line["outcome"] for line in log_lines(capsys)}
    assert outcomes == {
        "m-valid": "submitted",
        "m-duplicate": "duplicate",
        "m-malformed": "invalid",
        "m-failing": "error",
        "m-valid-2": "submitted",
    }


def test_claim_write_failure_is_reported_and_submits_nothing(env: Env, lambda_context, capsys) -> None:
    fail_call(env.dynamodb, "PutItem", code="ProvisionedThroughputExceededException", status=400)
    result = env.module.handler(sqs_event(sqs_record(video("throttled"), "m-1")), lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert env.jobs() == []
    [line] = log_lines(capsys)
    assert line["outcome"] == "error" and "claim failed" in line["error"]


def test_claim_update_failure_after_submit_still_counts_as_submitted(env: Env, lambda_context, capsys) -> None:
    fail_call(env.dynamodb, "UpdateItem", code="InternalServerError", status=500)
    result = env.module.handler(sqs_event(sqs_record(video("half"), "m-1")), lambda_context)

    # Retrying would only risk a second job once the claim expires: the record is acknowledged.
    assert result == {"batchItemFailures": []}
    [job] = env.jobs()
    assert env.item("half")["status"]["S"] == "IN_FLIGHT"
    lines = log_lines(capsys)
    assert lines[0]["level"] == "WARNING" and "claim update failed" in lines[0]["message"]
    assert lines[-1]["outcome"] == "submitted" and lines[-1]["job_id"] == job["jobId"]


def test_missing_configuration_fails_the_whole_invocation(env: Env, lambda_context, monkeypatch) -> None:
    monkeypatch.delenv("JOB_QUEUE")
    with pytest.raises(RuntimeError, match="JOB_QUEUE"):
        env.module.handler(sqs_event(sqs_record(video("x"), "m-1")), lambda_context)


# --- pure helpers (no AWS) ------------------------------------------------------------------------------


def test_job_name_is_sanitized_to_batch_rules() -> None:
    module = load_handler(FUNCTION)
    assert module.job_name_for("cam1/2026-01-01 12:00.mp4") == "video-cam1_2026-01-01_12_00_mp4"
    assert module.job_name_for("ok_ID-9") == "video-ok_ID-9"
    long_name = module.job_name_for("x" * 300)
    assert len(long_name) == 128 and long_name.startswith("video-x")
    assert module.job_name_for("카메라") == "video-___"


def test_settings_defaults_and_validation() -> None:
    settings_cls = load_handler(FUNCTION).Settings
    base = {"JOB_QUEUE": "q", "JOB_DEFINITION": "d", "IDEMPOTENCY_TABLE": "t"}
    settings = settings_cls.from_env(base)
    assert settings.claim_ttl_seconds == 300
    assert settings.submitted_ttl_seconds == 14 * 24 * 3600
    assert settings_cls.from_env({**base, "CLAIM_TTL_SECONDS": "900"}).claim_ttl_seconds == 900
    for bad in ("abc", "0", "-5"):
        with pytest.raises(RuntimeError, match="CLAIM_TTL_SECONDS"):
            settings_cls.from_env({**base, "CLAIM_TTL_SECONDS": bad})
