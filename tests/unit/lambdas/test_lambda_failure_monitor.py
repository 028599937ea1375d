"""batch_failure_monitor: alert contents read back from an SQS queue subscribed to the SNS topic,
GitHub issues read back from a stub HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import pytest

from lambda_testkit import REGION, count_calls, fail_call, load_handler
from tests.aws_events import batch_job_state_change

FUNCTION = "batch_failure_monitor"
LOG_GROUP = "/aws/batch/job"
STREAM = "video-analysis-gpu/default/0123abcd"


@dataclass
class Env:
    module: ModuleType
    topic_arn: str
    sqs: Any
    queue_url: str
    logs: Any
    secretsmanager: Any

    def alerts(self) -> list[dict[str, str]]:
        """Every SNS notification delivered to the subscribed queue (Subject and Message)."""
        out: list[dict[str, str]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return out
            for msg in batch:
                envelope = json.loads(msg["Body"])
                out.append({"Subject": envelope.get("Subject"), "Message": envelope["Message"]})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])


@pytest.fixture
def env(handler_module: ModuleType, boto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Env:
    sns, sqs = boto_client("sns"), boto_client("sqs")
    topic_arn = sns.create_topic(Name="deepsentinel-dev-alarms")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    logs = boto_client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    monkeypatch.setenv("ALERT_TOPIC_ARN", topic_arn)
    for name in ("LOG_GROUP", "LOG_LINES", "GITHUB_REPOSITORY", "GITHUB_TOKEN_SECRET_ARN", "GITHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return Env(handler_module, topic_arn, sqs, queue_url, logs, boto_client("secretsmanager"))


def write_log(env: Env, lines: list[str], *, group: str = LOG_GROUP, stream: str = STREAM) -> None:
    env.logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(time.time() * 1000) - 60_000  # CloudWatch drops events older than 14 days
    env.logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": start + i, "message": line} for i, line in enumerate(lines)],
    )


def failed_event(
    *, stream: str | None = STREAM, in_attempts: bool = False, status: str = "FAILED", **detail: Any
) -> dict[str, Any]:
    """The AWS Batch User Guide's "Job state change" sample (every field Batch sends: jobArn, createdAt,
    jobDefinition, retryStrategy, ...) for one of our video jobs that ended `status`; the FAILED job's fields the
    RUNNABLE sample lacks (statusReason, exitCode, reason, logStreamName, attempts) are JobDetail's, as the page
    says the detail resembles it."""
    container: dict[str, Any] = {
        "image": "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/video-analysis:1.4.0",
        "environment": [{"name": "VIDEO_ID", "value": "cam1-0001"}, {"name": "S3_KEY", "value": "raw/cam1-0001.mp4"}],
        "exitCode": 137,
        "reason": "OutOfMemoryError: Container killed due to memory usage",
    }
    attempt_container: dict[str, Any] = {"exitCode": 137}
    if stream is not None:
        (attempt_container if in_attempts else container)["logStreamName"] = stream
    return batch_job_state_change(
        job_queue_arn="arn:aws:batch:ap-northeast-2:123456789012:job-queue/deepsentinel-dev-gpu", status=status,
        jobName="video-cam1-0001", statusReason="Essential container in task exited",
        attempts=[{"container": attempt_container, "statusReason": "Essential container in task exited"}],
        container=container, **detail)


# --- alert ----------------------------------------------------------------------------------------------


def test_failed_job_publishes_one_alert_with_job_video_reason_exit_code_and_last_lines(env: Env, lambda_context) -> None:
    write_log(env, [f"frame {i}" for i in range(30)] + ["Traceback (most recent call last):", "CUDA out of memory"])

    result = env.module.handler(failed_event(), lambda_context)

    [alert] = env.alerts()
    assert alert["Subject"] == "Batch job failed: video-cam1-0001"
    message = alert["Message"]
    assert "video-cam1-0001" in message
    assert "4c7599ae-0a82-49aa-ba5a-4727fcce14a8" in message
    assert "Video id:      cam1-0001" in message
    assert "Essential container in task exited; OutOfMemoryError" in message
    assert "Exit code:     137" in message
    # The last 20 lines, in order, and nothing older.
    assert "Last 20 log lines:" in message
    assert message.rstrip().endswith("  Traceback (most recent call last):\n  CUDA out of memory")
    assert "frame 12\n" in message and "frame 11\n" not in message
    assert result["status"] == "alerted" and result["logs_found"] is True and result["sns_message_id"]
    assert "github_issue_url" not in result


def test_log_stream_named_only_in_the_attempts_is_found(env: Env, lambda_context) -> None:
    write_log(env, ["only line"])
    env.module.handler(failed_event(in_attempts=True), lambda_context)
    [alert] = env.alerts()
    assert "Last 1 log lines:\n  only line" in alert["Message"]


def test_log_group_comes_from_env_and_line_count_is_configurable(env: Env, lambda_context, monkeypatch) -> None:
    env.logs.create_log_group(logGroupName="/deepsentinel/dev/batch")
    write_log(env, ["a", "b", "c"], group="/deepsentinel/dev/batch")
    monkeypatch.setenv("LOG_GROUP", "/deepsentinel/dev/batch")
    monkeypatch.setenv("LOG_LINES", "2")
    env.module.handler(failed_event(), lambda_context)
    [alert] = env.alerts()
    assert "Log:           /deepsentinel/dev/batch / " + STREAM in alert["Message"]
    assert alert["Message"].endswith("Last 2 log lines:\n  b\n  c\n")


def test_log_group_from_the_jobs_awslogs_configuration_when_env_is_unset(env: Env, lambda_context) -> None:
    env.logs.create_log_group(logGroupName="/custom/jobs")
    write_log(env, ["from custom group"], group="/custom/jobs")
    event = failed_event()
    event["detail"]["container"]["logConfiguration"] = {"logDriver": "awslogs", "options": {"awslogs-group": "/custom/jobs"}}
    env.module.handler(event, lambda_context)
    assert "from custom group" in env.alerts()[0]["Message"]


def test_missing_log_stream_still_alerts_saying_logs_not_found(env: Env, lambda_context) -> None:
    result = env.module.handler(failed_event(stream="video-analysis-gpu/default/gone"), lambda_context)
    [alert] = env.alerts()
    assert "Logs not found: log stream not found." in alert["Message"]
    assert "Exit code:     137" in alert["Message"]
    assert result["logs_found"] is False


def test_event_without_any_log_stream_still_alerts(env: Env, lambda_context) -> None:
    env.module.handler(failed_event(stream=None), lambda_context)
    [alert] = env.alerts()
    assert "Logs not found: the event names no log stream." in alert["Message"]


def test_unreadable_logs_still_alert(env: Env, lambda_context) -> None:
    fail_call(env.module.clients().logs, "GetLogEvents", code="AccessDeniedException")
    env.module.handler(failed_event(), lambda_context)
    [alert] = env.alerts()
    assert "Logs not found: logs unavailable (AccessDeniedException)." in alert["Message"]


def test_sparse_event_alerts_with_unknowns(env: Env, lambda_context) -> None:
    event = {"detail-type": "Batch Job State Change", "source": "aws.batch",
             "detail": {"jobName": "x" * 150 + "é", "jobId": "j-1", "status": "FAILED"}}
    env.module.handler(event, lambda_context)
    [alert] = env.alerts()
    assert len(alert["Subject"]) == 100 and alert["Subject"].endswith("...")
    assert "Video id:      unknown" in alert["Message"] and "Exit code:     unknown" in alert["Message"]


@pytest.mark.parametrize("event", [
    failed_event(status="SUCCEEDED"),
    {"detail-type": "Scheduled Event", "detail": {}},
], ids=["succeeded", "other-detail-type"])
def test_non_failed_events_are_ignored(env: Env, lambda_context, event) -> None:
    assert env.module.handler(event, lambda_context) == {"status": "ignored"}
    assert env.alerts() == []


def test_alert_costs_two_calls_without_github(env: Env, lambda_context) -> None:
    write_log(env, ["x"])
    c = env.module.clients()
    calls = count_calls(c.logs, c.sns, c.secretsmanager)
    env.module.handler(failed_event(), lambda_context)
    assert calls == ["CloudWatch Logs.GetLogEvents", "SNS.Publish"]


def test_without_a_database_the_video_is_left_alone_and_nothing_is_sent_on_video_events(env: Env,
                                                                                      lambda_context) -> None:
    """Without the row the monitor cannot tell whether the worker already ended (and published) the video."""
    result = env.module.handler(failed_event(), lambda_context)
    assert result["video"] == "skipped: no database configured" and result["video_event_published"] is False
    [alert] = env.alerts()
    assert "Video row:     skipped: no database configured" in alert["Message"]


def test_the_database_is_read_from_the_instance_and_each_override_replaces_its_part(env: Env, boto_client) -> None:
    """DB_INSTANCE: the endpoint and the RDS-managed master secret come from DescribeDBInstances ("Endpoint",
    "MasterUserSecret", Amazon RDS API Reference: DBInstance); DB_HOST/DB_PORT (the local stand-in's socket) and
    DB_SECRET_ARN replace what the instance says."""
    instance = boto_client("rds").create_db_instance(
        DBInstanceIdentifier="deepsentinel-dev-postgres", Engine="postgres", DBInstanceClass="db.t4g.micro",
        MasterUsername="deepsentinel_admin", ManageMasterUserPassword=True, AllocatedStorage=20)["DBInstance"]
    endpoint = boto_client("rds").describe_db_instances(
        DBInstanceIdentifier="deepsentinel-dev-postgres")["DBInstances"][0]["Endpoint"]
    deployed = {"ALERT_TOPIC_ARN": env.topic_arn, "DB_INSTANCE": "deepsentinel-dev-postgres", "DB_NAME": "deepsentinel"}
    settings = env.module.Settings.from_env(deployed)
    assert settings.database_enabled
    found = env.module.find_database(env.module.clients().rds, settings)
    assert (found.host, found.port, found.name) == (endpoint["Address"], endpoint["Port"], "deepsentinel")
    assert found.secret_arn == instance["MasterUserSecret"]["SecretArn"]
    local = env.module.Settings.from_env({**deployed, "DB_HOST": "/tmp/pg", "DB_PORT": "6543"})
    found = env.module.find_database(env.module.clients().rds, local)
    assert (found.host, found.port, found.secret_arn) == ("/tmp/pg", 6543, instance["MasterUserSecret"]["SecretArn"])


def test_a_database_instance_that_cannot_be_read_still_alerts_and_publishes_failed(env: Env, lambda_context,
                                                                                  monkeypatch, boto_client) -> None:
    """When the database cannot be reached FAILED is published anyway and the alert says the row was not updated:
    here the instance is not there (DescribeDBInstances answers DBInstanceNotFound)."""
    events = boto_client("sns").create_topic(Name="deepsentinel-dev-video-events")["TopicArn"]
    monkeypatch.setenv("VIDEO_EVENTS_TOPIC_ARN", events)
    monkeypatch.setenv("DB_INSTANCE", "deepsentinel-dev-postgres")
    monkeypatch.setenv("DB_NAME", "deepsentinel")
    result = env.module.handler(failed_event(stream=None), lambda_context)
    assert result["video"].startswith("error: ") and "DBInstanceNotFound" in result["video"], result["video"]
    assert result["video_event_published"] is True
    [alert] = env.alerts()
    assert "DBInstanceNotFound" in alert["Message"]


def test_publish_failure_fails_the_invocation(env: Env, lambda_context) -> None:
    fail_call(env.module.clients().sns, "Publish", code="InternalError", status=500)
    with pytest.raises(env.module.MonitorError, match="SNS publish failed"):
        env.module.handler(failed_event(stream=None), lambda_context)


def test_missing_topic_configuration_fails(env: Env, lambda_context, monkeypatch) -> None:
    monkeypatch.delenv("ALERT_TOPIC_ARN")
    with pytest.raises(env.module.MonitorError, match="ALERT_TOPIC_ARN"):
        env.module.handler(failed_event(), lambda_context)


# --- GitHub issue ----------------------------------------------------------------------------------------


@dataclass
class StubGitHub:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 201


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubGitHub]:
    """A loopback HTTP server standing in for the GitHub REST API."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    state: dict[str, StubGitHub] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            stub = state["stub"]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            stub.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
            number = len(stub.requests)
            reply = (
                {"number": number, "html_url": f"https://github.com/acme/deepsentinel/issues/{number}"}
                if stub.status == 201
                else {"message": "Bad credentials"}
            )
            payload = json.dumps(reply).encode()
            self.send_response(stub.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["stub"] = StubGitHub(url=f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state["stub"]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def github_env(env: Env, github: StubGitHub, monkeypatch: pytest.MonkeyPatch) -> StubGitHub:
    arn = env.secretsmanager.create_secret(Name="github-token", SecretString="ghp_test_token")["ARN"]
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/deepsentinel")
    monkeypatch.setenv("GITHUB_TOKEN_SECRET_ARN", arn)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    return github


def test_github_issue_is_opened_when_configured(env: Env, github_env: StubGitHub, lambda_context) -> None:
    write_log(env, ["loading model", "RuntimeError: CUDA error"])

    result = env.module.handler(failed_event(), lambda_context)

    [request] = github_env.requests
    assert request["path"] == "/repos/acme/deepsentinel/issues"
    assert request["headers"]["Authorization"] == "Bearer ghp_test_token"
    assert request["headers"]["Accept"] == "application/vnd.github+json"
    issue = request["json"]
    assert issue["title"] == "Batch job failed: video-cam1-0001"
    assert issue["labels"] == ["bug", "aws-batch"]
    assert "cam1-0001" in issue["body"] and "RuntimeError: CUDA error" in issue["body"] and "137" in issue["body"]
    assert result["github_issue_url"] == "https://github.com/acme/deepsentinel/issues/1"
    assert len(env.alerts()) == 1  # the SNS alert goes out as well


def test_github_token_may_be_stored_as_json(env: Env, github_env: StubGitHub, lambda_context, monkeypatch) -> None:
    arn = env.secretsmanager.create_secret(Name="github-token-json", SecretString='{"token": "ghp_json"}')["ARN"]
    monkeypatch.setenv("GITHUB_TOKEN_SECRET_ARN", arn)
    env.module.handler(failed_event(stream=None), lambda_context)
    assert github_env.requests[0]["headers"]["Authorization"] == "Bearer ghp_json"
    assert "Logs not found" in github_env.requests[0]["json"]["body"]


def test_github_error_is_reported_but_the_alert_still_goes_out(env: Env, github_env: StubGitHub, lambda_context) -> None:
    github_env.status = 401
    result = env.module.handler(failed_event(), lambda_context)
    assert len(github_env.requests) == 1
    assert result["github_error"].startswith("GitHub API returned 401")
    assert len(env.alerts()) == 1


def test_unreadable_token_secret_is_reported_without_calling_github(env: Env, github_env: StubGitHub, lambda_context, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN_SECRET_ARN", f"arn:aws:secretsmanager:{REGION}:123456789012:secret:missing-AbCdEf")
    result = env.module.handler(failed_event(), lambda_context)
    assert github_env.requests == []
    assert "token secret unreadable" in result["github_error"]
    assert len(env.alerts()) == 1


def test_github_needs_both_repository_and_secret(env: Env, github: StubGitHub, lambda_context, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/deepsentinel")
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    result = env.module.handler(failed_event(), lambda_context)
    assert github.requests == [] and "github_issue_url" not in result


def test_failed_job_from_detail_prefers_container_fields() -> None:
    failed_job_cls = load_handler(FUNCTION).FailedJob
    job = failed_job_cls.from_detail(failed_event(in_attempts=True)["detail"])
    assert job.video_id == "cam1-0001" and job.exit_code == 137 and job.log_stream == STREAM


# --- the failed video's claim ------------------------------------------------------------------------------

CLAIMS = "deepsentinel-dev-job-claims"


@pytest.fixture
def claims(env: Env, boto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    dynamodb = boto_client("dynamodb")
    dynamodb.create_table(TableName=CLAIMS, KeySchema=[{"AttributeName": "video_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "video_id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", CLAIMS)
    return dynamodb


def _claim(dynamodb: Any, job_id: str) -> None:
    """The item sqs_to_batch leaves after submitting (status SUBMITTED, the job's id)."""
    dynamodb.put_item(TableName=CLAIMS, Item={
        "video_id": {"S": "cam1-0001"}, "status": {"S": "SUBMITTED"}, "job_id": {"S": job_id},
        "claim_token": {"S": "t"}, "expires_at": {"N": str(int(time.time()) + 14 * 86400)}})


def test_a_finally_failed_job_releases_its_videos_claim(env: Env, claims: Any, lambda_context) -> None:
    """EventBridge sends FAILED only when the job has failed for good, after its last attempt ("AWS Batch job
    state change events", https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html): the claim
    goes, so a resend of the video is processed instead of being a duplicate for 14 days."""
    _claim(claims, "4c7599ae-0a82-49aa-ba5a-4727fcce14a8")
    result = env.module.handler(failed_event(), lambda_context)
    assert result["claim"] == "released"
    assert "Item" not in claims.get_item(TableName=CLAIMS, Key={"video_id": {"S": "cam1-0001"}})


def test_a_newer_claim_of_the_same_video_is_kept(env: Env, claims: Any, lambda_context) -> None:
    _claim(claims, "job-of-the-resend")
    assert env.module.handler(failed_event(), lambda_context)["claim"] == "not-ours"
    assert claims.get_item(TableName=CLAIMS, Key={"video_id": {"S": "cam1-0001"}})["Item"]["job_id"]["S"] == (
        "job-of-the-resend")
