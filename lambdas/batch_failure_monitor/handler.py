"""EventBridge "Batch Job State Change" (FAILED) -> the video ends FAILED; one SNS alert, optionally a GitHub issue.

Why here: a FAILED event is the one place that sees *every* job Batch ends for good. The worker records its
own ends (bad input; a retryable error on the last attempt), but some ends never reach its code: a timeout is
not retried and ends with SIGTERM then SIGKILL 30 s later (AWS Batch "Job timeouts"), and a kill on the last
attempt (Spot reclaim, out of memory: SIGKILL) cannot be caught. So, when ``DB_INSTANCE`` is set, the
function sets the video's row FAILED (with Batch's status reason) in one statement that leaves a COMPLETED or
FAILED row alone, and publishes FAILED on the video-events topic in the worker's message shape
(video_worker/notify.py) only when it made that change: a row the worker already ended was published by the
worker. A DONE video is never marked FAILED. When the database cannot be reached, FAILED is published anyway
(subscribers must learn the end) and the alert says the row was not updated.

The worker does not also handle SIGTERM: the event arrives for a timeout as for a kill, after the container
has exited (no race with the worker's own writes), and one path is simpler than two that must agree.
The PostgreSQL driver is pg8000 (pure Python), vendored into the package at synth (``vendor.txt``); TLS is
required on TCP, unverified like the worker's ``sslmode=require`` (the runtime's trust store lacks RDS's CA).

The alert names the job (name and id), the video id, the status reason, the exit code and the job's
last log lines from CloudWatch Logs. A missing log stream still yields the alert, saying the logs were
not found: the alert is the point, the logs are a convenience.

When ``GITHUB_REPOSITORY`` and ``GITHUB_TOKEN_SECRET_ARN`` are both set, the function also opens a
GitHub issue (title ``Batch job failed: <job name>``, labels ``bug`` and ``aws-batch``) with urllib.
A GitHub failure is logged and reported in the return value but does not fail the invocation: the
SNS alert has already gone out, and an EventBridge retry would only send it twice.

Environment:
    ALERT_TOPIC_ARN          SNS topic for the alert (required)
    LOG_GROUP                log group of the Batch jobs; when unset, the group named in the job's
                             awslogs configuration, else ``/aws/batch/job`` (Batch's default)
    LOG_LINES                how many trailing log lines to include (default 20)
    GITHUB_REPOSITORY        ``owner/name``; enables the GitHub issue together with the next one
    GITHUB_TOKEN_SECRET_ARN  Secrets Manager secret holding the token (plain string, or JSON with a
                             ``token`` field)
    GITHUB_API_URL           REST API root (default https://api.github.com; tests point it at a stub)
    IDEMPOTENCY_TABLE        sqs_to_batch's claim table: the failed video's claim is released there, so a
                             resend of the video is processed (a SUBMITTED claim would block it for 14 days);
                             only a claim naming this job is deleted, never a newer one (after the row is
                             FAILED: a resend cannot start before)
    VIDEO_EVENTS_TOPIC_ARN   the worker's DONE/FAILED topic; FAILED is published there for a video this
                             function ends
    DB_INSTANCE, DB_NAME     the RDS instance identifier and the database: enable the row update. The endpoint and
                             the RDS-managed master secret ({"username", "password"}) are read from the instance
                             when a video is to be ended (``DescribeDBInstances``: ``Endpoint``,
                             ``MasterUserSecret.SecretArn``; Amazon RDS API Reference), so the function names only
                             the instance and the apply creates it beside the instance's 80 s, not after them
    DB_HOST, DB_PORT, DB_SECRET_ARN  each, when set, replaces what the instance says (a path in DB_HOST is a Unix
                             socket directory: the local stand-in's PostgreSQL)

Standard library, boto3 (with what the runtime ships for it: python-dateutil) and the vendored pg8000.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_LOG_GROUP = "/aws/batch/job"
DEFAULT_DB_PORT = 5432
DB_TIMEOUT_SECONDS = 10
FINAL_ROW_STATUSES = ("COMPLETED", "FAILED")  # the worker's schema (video_worker/schema.sql)
FAILED = "FAILED"  # the worker's notification status (video_worker/notify.py)
MAX_REASON_CHARS = 2000  # as the worker stores it
DEFAULT_LOG_LINES = 20
DEFAULT_GITHUB_API_URL = "https://api.github.com"
GITHUB_LABELS = ("bug", "aws-batch")
GITHUB_TIMEOUT_SECONDS = 10
MAX_LINE_CHARS = 500  # one runaway line (a tensor dump) must not swamp the alert
SNS_SUBJECT_MAX = 100  # SNS rejects longer subjects


class MonitorError(Exception):
    """The alert could not be sent; the invocation fails so EventBridge retries it."""


class GitHubIssueError(Exception):
    """The optional GitHub issue could not be opened (the alert was sent regardless)."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    alert_topic_arn: str
    log_group: str | None = None
    log_lines: int = DEFAULT_LOG_LINES
    github_repository: str | None = None
    github_token_secret_arn: str | None = None
    github_api_url: str = DEFAULT_GITHUB_API_URL
    idempotency_table: str | None = None
    video_events_topic_arn: str | None = None
    db_instance: str | None = None
    db_name: str | None = None
    db_secret_arn: str | None = None  # the three overrides of what the instance says
    db_host: str | None = None
    db_port: int | None = None

    @property
    def github_enabled(self) -> bool:
        return bool(self.github_repository and self.github_token_secret_arn)

    @property
    def database_enabled(self) -> bool:
        return bool(self.db_name and (self.db_instance or (self.db_secret_arn and self.db_host)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        if not env.get("ALERT_TOPIC_ARN"):
            raise MonitorError("missing environment variable: ALERT_TOPIC_ARN")
        raw_lines = env.get("LOG_LINES") or str(DEFAULT_LOG_LINES)
        if not raw_lines.isdigit() or int(raw_lines) < 1:
            raise MonitorError(f"LOG_LINES must be a positive integer, got {raw_lines!r}")
        return cls(
            alert_topic_arn=env["ALERT_TOPIC_ARN"],
            log_group=env.get("LOG_GROUP") or None,
            log_lines=min(int(raw_lines), 10_000),  # GetLogEvents' own limit
            github_repository=env.get("GITHUB_REPOSITORY") or None,
            github_token_secret_arn=env.get("GITHUB_TOKEN_SECRET_ARN") or None,
            github_api_url=(env.get("GITHUB_API_URL") or DEFAULT_GITHUB_API_URL).rstrip("/"),
            idempotency_table=env.get("IDEMPOTENCY_TABLE") or None,
            video_events_topic_arn=env.get("VIDEO_EVENTS_TOPIC_ARN") or None,
            db_instance=env.get("DB_INSTANCE") or None,
            db_name=env.get("DB_NAME") or None,
            db_secret_arn=env.get("DB_SECRET_ARN") or None,
            db_host=env.get("DB_HOST") or None,
            db_port=int(env["DB_PORT"]) if (env.get("DB_PORT") or "").isdigit() else None,
        )


@dataclass(frozen=True, kw_only=True)
class FailedJob:
    job_id: str
    job_name: str
    job_queue: str | None
    video_id: str | None
    status_reason: str | None
    exit_code: int | None
    log_group: str | None  # from the job's awslogs configuration, if any
    log_stream: str | None
    s3_key: str | None = None  # the job's S3_KEY: the row's key if the worker never wrote one
    model_uri: str | None = None
    highlights_bucket: str | None = None
    attempts: int = 0  # attempts Batch ran (the last one is what ended)

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> FailedJob:
        container = detail.get("container") or {}
        attempts = detail.get("attempts") or []
        last_attempt = (attempts[-1] if attempts else {}) or {}
        attempt_container = last_attempt.get("container") or {}
        environment = {e.get("name"): e.get("value") for e in container.get("environment") or [] if isinstance(e, dict)}
        parameters = detail.get("parameters") or {}
        log_options = (container.get("logConfiguration") or {}).get("options") or {}
        exit_code = container.get("exitCode", attempt_container.get("exitCode"))
        # Batch reports the job-level reason; the container's (e.g. OutOfMemoryError) is often sharper.
        reasons = [
            r
            for r in (
                detail.get("statusReason"),
                container.get("reason"),
                last_attempt.get("statusReason"),
                attempt_container.get("reason"),
            )
            if r
        ]
        return cls(
            job_id=str(detail.get("jobId") or "unknown"),
            job_name=str(detail.get("jobName") or "unknown"),
            job_queue=detail.get("jobQueue"),
            video_id=environment.get("VIDEO_ID") or parameters.get("video_id"),
            status_reason="; ".join(dict.fromkeys(reasons)) or None,
            exit_code=exit_code if isinstance(exit_code, int) else None,
            log_group=log_options.get("awslogs-group"),
            log_stream=container.get("logStreamName") or attempt_container.get("logStreamName"),
            s3_key=environment.get("S3_KEY") or parameters.get("s3_key"),
            model_uri=environment.get("MODEL_URI"),
            highlights_bucket=environment.get("HIGHLIGHTS_BUCKET"),
            attempts=len(attempts),
        )


@dataclass(frozen=True, kw_only=True)
class JobLogs:
    group: str
    stream: str | None
    lines: tuple[str, ...] = ()
    problem: str | None = None  # why there are no lines

    @property
    def found(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Clients:
    logs: Any
    sns: Any
    secretsmanager: Any
    dynamodb: Any = None
    rds: Any = None


@lru_cache(maxsize=1)
def clients() -> Clients:
    """Clients created on first use (after a test's mock starts) and reused while the runtime is warm."""
    return Clients(
        logs=boto3.client("logs"),
        sns=boto3.client("sns"),
        secretsmanager=boto3.client("secretsmanager"),
        dynamodb=boto3.client("dynamodb"),
        rds=boto3.client("rds"),
    )


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail") or {}
    if event.get("detail-type") != "Batch Job State Change" or detail.get("status") != "FAILED":
        # The EventBridge rule filters these out; a stray test event must not page anyone.
        _emit(
            {
                "level": "INFO",
                "outcome": "ignored",
                "detail_type": event.get("detail-type"),
                "status": detail.get("status"),
            }
        )
        return {"status": "ignored"}
    return process_event(event, clients=clients(), settings=Settings.from_env())


def process_event(event: Mapping[str, Any], *, clients: Clients, settings: Settings) -> dict[str, Any]:
    job = FailedJob.from_detail(event.get("detail") or {})
    video = end_video(clients, job, settings)
    logs = fetch_logs(clients.logs, job, settings)
    subject, message = format_alert(job, logs, video)
    try:
        published = clients.sns.publish(TopicArn=settings.alert_topic_arn, Subject=subject, Message=message)
    except (ClientError, BotoCoreError) as exc:
        raise MonitorError(f"SNS publish failed for job {job.job_id}: {exc}") from exc

    result: dict[str, Any] = {
        "status": "alerted",
        "job_id": job.job_id,
        "job_name": job.job_name,
        "video_id": job.video_id,
        "sns_message_id": published.get("MessageId"),
        "logs_found": logs.found,
        "video": video.outcome,
        "video_event_published": video.published,
        # After the row is FAILED: a resend the released claim lets through cannot be marked by this job.
        "claim": release_claim(clients.dynamodb, job, settings),
    }
    if settings.github_enabled:
        try:
            result["github_issue_url"] = open_github_issue(clients.secretsmanager, job, logs, settings)
        except GitHubIssueError as exc:
            result["github_error"] = str(exc)
    failed_step = "github_error" in result or video.outcome.startswith("error")
    _emit({"level": "ERROR" if failed_step else "INFO", **result})
    return result


@dataclass(frozen=True)
class VideoEnd:
    """What became of the job's video: the row's outcome and whether FAILED was published for it."""

    outcome: str  # marked-failed | already-<status> | no-schema | skipped: ... | error: ...
    published: bool = False


def end_video(clients: Clients, job: FailedJob, settings: Settings) -> VideoEnd:
    """Set the video FAILED unless it already ended, and publish FAILED when this call ended it."""
    if not job.video_id:
        return VideoEnd("skipped: the job names no video")
    reason = failure_reason(job)
    if not settings.database_enabled:
        # Without the row it cannot tell whether the worker ended the video (and published) itself.
        return VideoEnd("skipped: no database configured")
    try:
        database = find_database(clients.rds, settings)
        outcome = mark_failed(read_db_credentials(clients.secretsmanager, database), database, job, reason)
    except Exception as exc:  # noqa: BLE001 - pg8000, socket, RDS, Secrets Manager errors: the alert reports them
        outcome = f"error: {type(exc).__name__}: {exc}"
    if outcome.startswith("already-"):
        return VideoEnd(outcome)  # the worker recorded the end and published it
    return VideoEnd(outcome, publish_video_failed(clients.sns, job, settings, reason))


def failure_reason(job: FailedJob) -> str:
    return (
        f"AWS Batch ended job {job.job_name} ({job.job_id}) after {job.attempts} attempt(s): "
        f"{job.status_reason or 'no reason given'}"
    )[:MAX_REASON_CHARS]


@dataclass(frozen=True, kw_only=True)
class Database:
    host: str
    port: int
    name: str
    secret_arn: str


def find_database(rds_client: Any, settings: Settings) -> Database:
    """The database to update: the instance's endpoint and managed master secret (one DescribeDBInstances),
    each replaced by its override when set."""
    host, port, secret_arn = settings.db_host, settings.db_port, settings.db_secret_arn
    if settings.db_instance and not (host and port and secret_arn):
        (instance,) = rds_client.describe_db_instances(DBInstanceIdentifier=settings.db_instance)["DBInstances"]
        endpoint = instance.get("Endpoint") or {}
        host = host or endpoint.get("Address")
        port = port or endpoint.get("Port")
        secret_arn = secret_arn or (instance.get("MasterUserSecret") or {}).get("SecretArn")
    if not host or not secret_arn:
        raise LookupError(f"DB instance {settings.db_instance} has no endpoint or no RDS-managed master secret yet")
    return Database(host=host, port=int(port or DEFAULT_DB_PORT), name=str(settings.db_name), secret_arn=secret_arn)


def read_db_credentials(secrets_client: Any, database: Database) -> tuple[str, str]:
    """(username, password) from the RDS-managed secret, which holds exactly those two."""
    secret = json.loads(secrets_client.get_secret_value(SecretId=database.secret_arn)["SecretString"])
    return str(secret["username"]), str(secret["password"])


# One statement: a row the worker ended (COMPLETED or FAILED) is left alone, so a DONE video never turns FAILED
# and a FAILED one is not published twice; a missing row is created (the job failed before the worker wrote it).
_MARK_FAILED = """
INSERT INTO videos (video_id, s3_key, status, failure_reason, model_uri, started_at, completed_at, updated_at)
VALUES (:video_id, :s3_key, 'FAILED', :reason, :model_uri, now(), now(), now())
ON CONFLICT (video_id) DO UPDATE SET status = 'FAILED', failure_reason = EXCLUDED.failure_reason,
    completed_at = now(), updated_at = now()
WHERE videos.status NOT IN ('COMPLETED', 'FAILED')
RETURNING video_id
"""


def mark_failed(credentials: tuple[str, str], database: Database, job: FailedJob, reason: str) -> str:
    """marked-failed | already-<status> | no-schema (no worker has created the tables yet)."""
    conn = connect_database(credentials, database)
    try:
        exists = conn.run("SELECT to_regclass('videos') IS NOT NULL")[0][0]
        if not exists:
            return "no-schema"
        conn.run("START TRANSACTION")
        changed = conn.run(
            _MARK_FAILED, video_id=job.video_id, s3_key=job.s3_key or "", reason=reason, model_uri=job.model_uri
        )
        if not changed:
            status = conn.run("SELECT status FROM videos WHERE video_id = :video_id", video_id=job.video_id)
            conn.run("ROLLBACK")
            return f"already-{status[0][0].lower() if status else 'gone'}"
        # As the worker's mark_failed: no half-written results stay behind a FAILED video.
        conn.run("DELETE FROM events WHERE video_id = :video_id", video_id=job.video_id)
        conn.run("DELETE FROM detections WHERE video_id = :video_id", video_id=job.video_id)
        conn.run("COMMIT")
        return "marked-failed"
    finally:
        conn.close()


def connect_database(credentials: tuple[str, str], database: Database) -> Any:
    import pg8000.native  # vendored (vendor.txt); imported here so the alert path never depends on it

    user, password = credentials
    host = database.host
    if host.startswith("/"):  # a socket directory (the local stand-in); TLS does not apply to a Unix socket
        return pg8000.native.Connection(
            user,
            password=password,
            database=database.name,
            unix_sock=f"{host}/.s.PGSQL.{database.port}",
            ssl_context=False,
            timeout=DB_TIMEOUT_SECONDS,
        )
    # ssl_context=True: TLS required, certificate unverified (as libpq's sslmode=require, the worker's setting).
    return pg8000.native.Connection(
        user,
        password=password,
        host=host,
        port=database.port,
        database=database.name,
        ssl_context=True,
        timeout=DB_TIMEOUT_SECONDS,
    )


def publish_video_failed(sns_client: Any, job: FailedJob, settings: Settings, reason: str) -> bool:
    """FAILED on the video-events topic, in the worker's shape (video_worker/notify.py completion_message)."""
    if not settings.video_events_topic_arn:
        return False
    message: dict[str, Any] = {
        "video_id": job.video_id,
        "status": FAILED,
        "s3_key": job.s3_key,
        "events": 0,
        "detections": 0,
        "highlights": 0,
        "highlight_keys": [],
        "highlights_bucket": job.highlights_bucket,
        "reason": reason,
        "job_id": job.job_id,
        "attempt": job.attempts,
    }
    try:
        sns_client.publish(
            TopicArn=settings.video_events_topic_arn,
            Subject=_sns_subject(f"video {job.video_id}: {FAILED}"),
            Message=json.dumps(message),
            MessageAttributes={"status": {"DataType": "String", "StringValue": FAILED}},
        )
    except (ClientError, BotoCoreError) as exc:
        _emit({"level": "ERROR", "outcome": "video_event_not_published", "video_id": job.video_id, "error": str(exc)})
        return False
    return True


def release_claim(dynamodb: Any, job: FailedJob, settings: Settings) -> str:
    """Delete the video's claim if it still names this job: released | not-ours | skipped | error: ..."""
    if not (settings.idempotency_table and job.video_id and dynamodb is not None):
        return "skipped"
    try:
        dynamodb.delete_item(
            TableName=settings.idempotency_table,
            Key={"video_id": {"S": job.video_id}},
            ConditionExpression="job_id = :job_id",
            ExpressionAttributeValues={":job_id": {"S": job.job_id}},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return "not-ours"  # a newer claim (a resend) holds the video, or the claim is gone already
        return f"error: {exc}"
    except BotoCoreError as exc:
        return f"error: {exc}"
    return "released"


def fetch_logs(logs_client: Any, job: FailedJob, settings: Settings) -> JobLogs:
    group = settings.log_group or job.log_group or DEFAULT_LOG_GROUP
    if not job.log_stream:
        return JobLogs(group=group, stream=None, problem="the event names no log stream")
    try:
        # startFromHead=False + limit returns the *last* events, oldest first, in one call.
        response = logs_client.get_log_events(
            logGroupName=group, logStreamName=job.log_stream, limit=settings.log_lines, startFromHead=False
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ResourceNotFoundException":
            return JobLogs(group=group, stream=job.log_stream, problem="log stream not found")
        return JobLogs(group=group, stream=job.log_stream, problem=f"logs unavailable ({code})")
    except BotoCoreError as exc:
        return JobLogs(group=group, stream=job.log_stream, problem=f"logs unavailable ({exc})")
    lines = tuple(_clip(e.get("message", "").rstrip("\n")) for e in response.get("events", []))
    if not lines:
        return JobLogs(group=group, stream=job.log_stream, problem="log stream is empty")
    return JobLogs(group=group, stream=job.log_stream, lines=lines)


def format_alert(job: FailedJob, logs: JobLogs, video: VideoEnd | None = None) -> tuple[str, str]:
    subject = _sns_subject(f"Batch job failed: {job.job_name}")
    header = [
        "AWS Batch job FAILED",
        f"Job name:      {job.job_name}",
        f"Job id:        {job.job_id}",
        f"Video id:      {job.video_id or 'unknown'}",
        f"Status reason: {job.status_reason or 'unknown'}",
        f"Exit code:     {job.exit_code if job.exit_code is not None else 'unknown'}",
    ]
    if job.job_queue:
        header.append(f"Job queue:     {job.job_queue}")
    if video is not None:
        header.append(
            f"Video row:     {video.outcome}" + ("; FAILED published on video-events" if video.published else "")
        )
    header.append(f"Log:           {logs.group} / {logs.stream or '-'}")
    if logs.found:
        body = [f"Last {len(logs.lines)} log lines:", *(f"  {line}" for line in logs.lines)]
    else:
        body = [f"Logs not found: {logs.problem}."]
    return subject, "\n".join([*header, "", *body]) + "\n"


def open_github_issue(secrets_client: Any, job: FailedJob, logs: JobLogs, settings: Settings) -> str:
    """Open the issue; returns its URL. Raises :class:`GitHubIssueError`."""
    token = _github_token(secrets_client, settings.github_token_secret_arn or "")
    log_block = "\n".join(logs.lines) if logs.found else f"Logs not found: {logs.problem}."
    body = "\n".join(
        [
            f"AWS Batch job `{job.job_name}` failed.",
            "",
            "| field | value |",
            "|---|---|",
            f"| job id | `{job.job_id}` |",
            f"| video id | `{job.video_id or 'unknown'}` |",
            f"| status reason | {(job.status_reason or 'unknown').replace('|', '/')} |",
            f"| exit code | {job.exit_code if job.exit_code is not None else 'unknown'} |",
            f"| log | `{logs.group}` / `{logs.stream or '-'}` |",
            "",
            "```",
            log_block.replace("```", "'''"),
            "```",
        ]
    )
    payload = {"title": f"Batch job failed: {job.job_name}", "body": body, "labels": list(GITHUB_LABELS)}
    request = urllib.request.Request(
        f"{settings.github_api_url}/repos/{settings.github_repository}/issues",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": "deepsentinel-batch-failure-monitor",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=GITHUB_TIMEOUT_SECONDS) as response:  # noqa: S310
            data = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode(errors="replace")
        raise GitHubIssueError(f"GitHub API returned {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise GitHubIssueError(f"GitHub API call failed: {exc}") from exc
    return str(data.get("html_url") or data.get("url") or "")


def _github_token(secrets_client: Any, secret_arn: str) -> str:
    try:
        secret = secrets_client.get_secret_value(SecretId=secret_arn).get("SecretString") or ""
    except (ClientError, BotoCoreError) as exc:
        raise GitHubIssueError(f"token secret unreadable: {exc}") from exc
    token = secret.strip()
    if token.startswith("{"):
        try:
            token = str(json.loads(token).get("token", "")).strip()
        except (ValueError, AttributeError):
            token = ""
    if not token:
        raise GitHubIssueError("token secret is empty")
    return token


def _sns_subject(text: str) -> str:
    # SNS subjects: ASCII, no line breaks, under 100 characters.
    ascii_text = text.encode("ascii", "replace").decode().replace("\n", " ").replace("\r", " ")
    return ascii_text if len(ascii_text) <= SNS_SUBJECT_MAX else ascii_text[: SNS_SUBJECT_MAX - 3] + "..."


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..."


def _emit(line: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(line, default=str) + "\n")
