"""A job Batch ends for good leaves no video PROCESSING: the stand-in times a job out or kills it, the FAILED
state change reaches the failure monitor through the deployed rule's pattern, and the monitor (run from its
packaged code, pg8000 vendored) ends the video FAILED in a real PostgreSQL and publishes FAILED on the
video-events topic, read back from an SQS subscription.

Documentation the expectations come from:
* "Job timeouts" (https://docs.aws.amazon.com/batch/latest/userguide/job_timeouts.html): SIGTERM, SIGKILL if still
  running after 30 s; "If a job is terminated for exceeding the timeout duration, it isn't retried."
* "Automated job retries" (https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html): evaluateOnExit,
  the entries in order (its example's final "*" entry catches only what the earlier ones did not), RETRY when none
  matches; EvaluateOnExit (API Reference, https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html):
  a trailing asterisk matches the start of a reason, so the job definition's onStatusReason "Host EC2*" (our rule for a
  reclaimed Spot instance, not an example of either page) matches "Host EC2 (instance i-...) terminated.".
* "Job state change events" (https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html): the event's
  envelope and detail fields.

The worker is a stub here (it is not the subject): a process that ignores SIGTERM and sleeps, as a worker stuck in
a long CUDA call does. The database row is written first with the worker's own schema and `mark_processing`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from deepsentinel.local.stand_in import (BatchStandIn, EventRuleStandIn, LocalAwsEnvironment, LocalDatabase,
                                         batch_state_change_event, out_of_memory, spot_reclaim)
from tests.local_batch import DB_NAME, DB_PASSWORD, DB_USER, REGION, failure_path

# One xdist worker runs them all: the module's moto server and PostgreSQL start once (about 15 s on 2 cores).
pytestmark = pytest.mark.xdist_group("batch_job_end")
GRACE_SECONDS = 0.5  # Batch's 30 s, shortened
# A worker stuck where SIGTERM is not acted on (a CUDA kernel, a blocking read): it ignores the signal and
# records that it received it, so the test can see SIGTERM came first.
STUCK_WORKER = """
import os, signal, sys, time
def noted(signum, frame):
    with open(os.environ["SIGNAL_LOG"], "a") as log:
        log.write(signal.Signals(signum).name + "\\n")
signal.signal(signal.SIGTERM, noted)
print("analysing", os.environ["VIDEO_ID"], "attempt", os.environ["AWS_BATCH_JOB_ATTEMPT"], flush=True)
time.sleep(60)
"""
# The job definition's retry strategy, as the pipeline construct deploys it (65 EXIT, 75 RETRY, Host EC2* RETRY).
RETRY_STRATEGY = {"attempts": 2, "evaluateOnExit": [
    {"onExitCode": "65", "action": "EXIT"}, {"onExitCode": "75", "action": "RETRY"},
    {"onStatusReason": "Host EC2*", "action": "RETRY"}]}
# "Job state change events": the example's detail fields, and its container's.
DOCUMENTED_DETAIL_FIELDS = {"jobArn", "jobName", "jobId", "jobQueue", "status", "attempts", "createdAt",
                            "retryStrategy", "dependsOn", "jobDefinition", "parameters", "container", "tags",
                            "propagateTags", "platformCapabilities"}
# The worker's FAILED notification (video_worker/notify.py completion_message): the monitor must send the same.
WORKER_MESSAGE_FIELDS = {"video_id", "status", "s3_key", "events", "detections", "highlights", "highlight_keys",
                         "highlights_bucket", "reason", "job_id", "attempt"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from deepsentinel.local.server import in_process

    with in_process() as endpoint_url:
        yield endpoint_url


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[LocalDatabase, dict[str, str]]]:
    """PostgreSQL 16 + pgvector standing in for RDS, with the worker's schema applied (video_worker/schema.sql)."""
    pytest.importorskip("pgserver")
    from tests.local_database import worker_database

    with worker_database("bje-", username=DB_USER, password=DB_PASSWORD, database=DB_NAME) as (db, endpoint):
        yield db, endpoint


@dataclass
class Platform:
    """The pieces of a deployment the path crosses, on the local server."""

    aws: LocalAwsEnvironment
    batch: Any
    sqs: Any
    job_queue_arn: str
    job_definition: str
    video_events_inbox: str
    alerts_inbox: str
    rule: EventRuleStandIn
    db: LocalDatabase
    db_endpoint: dict[str, str]

    def submit(self, video_id: str) -> str:
        """As sqs_to_batch submits: the video in the container's environment."""
        return self.batch.submit_job(jobName=f"video-{video_id}", jobQueue=self.job_queue_arn,
                                     jobDefinition=self.job_definition, containerOverrides={"environment": [
                                         {"name": "VIDEO_ID", "value": video_id},
                                         {"name": "S3_KEY", "value": f"uploads/{video_id}.mp4"}]})["jobId"]

    def messages(self, inbox: str) -> list[dict[str, Any]]:
        out = []
        while batch := self.sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=inbox, ReceiptHandle=message["ReceiptHandle"])
        return out

    def row(self, video_id: str) -> tuple[str, str | None] | None:
        import psycopg

        with psycopg.connect(self.db.uri(DB_NAME)) as conn:
            return conn.execute("SELECT status, failure_reason FROM videos WHERE video_id = %s",
                                (video_id,)).fetchone()

    def worker_started(self, video_id: str) -> None:
        """The worker's first write (video_worker.store.mark_processing)."""
        import psycopg
        from video_worker import store

        with psycopg.connect(self.db.uri(DB_NAME)) as conn:
            store.mark_processing(conn, video_id=video_id, s3_key=f"uploads/{video_id}.mp4", model_uri="s3://m/y.pt")

    def set_status(self, video_id: str, status: str) -> None:
        import psycopg

        with psycopg.connect(self.db.uri(DB_NAME), autocommit=True) as conn:
            conn.execute("UPDATE videos SET status = %s WHERE video_id = %s", (status, video_id))

    def runner(self, tmp_path: Path) -> BatchStandIn:
        return BatchStandIn(batch=self.batch, aws=self.aws, job_queue=self.job_queue_arn,
                            endpoint_overrides=self.db_endpoint, command=(sys.executable, "-c", STUCK_WORKER),
                            extra_environment={"SIGNAL_LOG": str(tmp_path / "signals.log")},
                            termination_grace_seconds=GRACE_SECONDS, event_rules=[self.rule])


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test")


def _inbox(sns: Any, sqs: Any, topic_arn: str, name: str) -> str:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


@pytest.fixture(scope="module")
def platform_env(endpoint: str, database: tuple[LocalDatabase, dict[str, str]]) -> Platform:
    db, db_endpoint = database
    client = lambda service: _client(endpoint, service)  # noqa: E731
    path = failure_path(client, endpoint, db_endpoint, retry_strategy=RETRY_STRATEGY, timeout_seconds=1,
                        job_environment={"HIGHLIGHTS_BUCKET": "deepsentinel-dev-highlights",
                                         "MODEL_URI": "s3://deepsentinel-dev-analysis-models/yolov8n.pt"})
    sns, sqs = client("sns"), client("sqs")
    return Platform(aws=path.aws, batch=client("batch"), sqs=sqs, job_queue_arn=path.job_queue_arn,
                    job_definition=path.job_definition_arn,
                    video_events_inbox=_inbox(sns, sqs, path.video_events_topic_arn, "video-events-inbox"),
                    alerts_inbox=_inbox(sns, sqs, path.alerts_topic_arn, "alerts-inbox"), rule=path.rule, db=db,
                    db_endpoint=db_endpoint)


@pytest.fixture
def platform(platform_env: Platform) -> Platform:
    platform_env.messages(platform_env.video_events_inbox)  # nothing left over from another test
    platform_env.messages(platform_env.alerts_inbox)
    return platform_env


def _assert_one_failed_notification(platform: Platform, video_id: str, job_id: str, reason_part: str) -> dict:
    [envelope] = platform.messages(platform.video_events_inbox)
    assert envelope["Subject"] == f"video {video_id}: FAILED"
    assert envelope["MessageAttributes"]["status"] == {"Type": "String", "Value": "FAILED"}
    message = json.loads(envelope["Message"])
    assert set(message) == WORKER_MESSAGE_FIELDS
    assert message["video_id"] == video_id and message["status"] == "FAILED" and message["job_id"] == job_id
    assert message["s3_key"] == f"uploads/{video_id}.mp4"
    assert message["highlights_bucket"] == "deepsentinel-dev-highlights"
    assert message["events"] == 0 and message["highlight_keys"] == []
    assert reason_part in message["reason"]
    return message


def test_a_job_the_stand_in_times_out_ends_its_video_failed(platform: Platform, tmp_path: Path) -> None:
    """Timeout: SIGTERM first, SIGKILL after the grace, no second attempt although the strategy allows two; the
    FAILED event reaches the monitor, which ends the PROCESSING row FAILED and publishes FAILED once."""
    platform.worker_started("cam1-timeout")
    job_id = platform.submit("cam1-timeout")

    run = platform.runner(tmp_path).run_job(job_id)

    assert run.status == "FAILED" and run.status_reason == "Job attempt duration exceeded timeout"
    [attempt] = run.attempts  # "it isn't retried"
    assert attempt.timed_out and attempt.signals == ("SIGTERM", "SIGKILL") and attempt.exit_code == 137
    assert (tmp_path / "signals.log").read_text() == "SIGTERM\n"  # the worker saw SIGTERM before the kill
    assert GRACE_SECONDS <= attempt.seconds - 1 < GRACE_SECONDS + 5  # 1 s timeout, then the grace
    assert "analysing cam1-timeout attempt 1" in attempt.log_tail
    [delivered] = run.deliveries  # only the FAILED change matches the rule (RUNNING does not)
    assert delivered["video"] == "marked-failed" and delivered["video_event_published"] is True
    status, reason = platform.row("cam1-timeout")
    assert status == "FAILED" and "Job attempt duration exceeded timeout" in reason
    message = _assert_one_failed_notification(platform, "cam1-timeout", job_id, "Job attempt duration exceeded")
    assert message["attempt"] == 1
    [alert] = platform.messages(platform.alerts_inbox)
    assert "Video row:     marked-failed; FAILED published on video-events" in alert["Message"]


@pytest.mark.parametrize("kill", [spot_reclaim(0.3), out_of_memory(0.3)], ids=["spot-reclaim", "out-of-memory"])
def test_a_job_the_stand_in_kills_on_every_attempt_ends_its_video_failed(platform: Platform, tmp_path: Path,
                                                                         kill) -> None:
    """A SIGKILL (uncatchable: the worker's final-attempt code never runs) is retried by the strategy (Host EC2*
    explicitly, an OOM kill because no entry matches), and the kill of the last attempt ends the job: the video
    ends FAILED with Batch's reason and one FAILED notification."""
    video_id = f"cam2-{kill.container_reason and 'oom' or 'spot'}"
    platform.worker_started(video_id)
    job_id = platform.submit(video_id)

    run = platform.runner(tmp_path).run_job(job_id, kill=kill)

    assert run.status == "FAILED" and [a.signals for a in run.attempts] == [("SIGKILL",), ("SIGKILL",)]
    assert [a.exit_code for a in run.attempts] == [137, 137] and not (tmp_path / "signals.log").exists()
    [delivered] = run.deliveries
    assert delivered["video"] == "marked-failed"
    status, reason = platform.row(video_id)
    expected = kill.container_reason or "Host EC2 (instance"
    assert status == "FAILED" and expected in reason and "after 2 attempt(s)" in reason
    assert _assert_one_failed_notification(platform, video_id, job_id, expected)["attempt"] == 2
    job = platform.batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["status"] == "FAILED" and len(job["attempts"]) == 2


def test_a_video_the_worker_already_ended_is_neither_changed_nor_published_again(platform: Platform,
                                                                                tmp_path: Path) -> None:
    """The worker records bad input FAILED itself (and publishes); a DONE video is COMPLETED: the monitor's FAILED
    event for such a video changes nothing and sends nothing on video-events."""
    for video_id, status in (("cam3-failed", "FAILED"), ("cam3-done", "COMPLETED")):
        platform.worker_started(video_id)
        platform.set_status(video_id, status)
        job_id = platform.submit(video_id)
        run = platform.runner(tmp_path).run_job(job_id, kill=spot_reclaim(0.2))
        assert run.status == "FAILED"
        assert [d["video"] for d in run.deliveries] == [f"already-{status.lower()}"]
        assert run.deliveries[0]["video_event_published"] is False
        assert platform.row(video_id)[0] == status
    assert platform.messages(platform.video_events_inbox) == []


def test_the_delivered_event_has_the_documented_shape_and_matches_the_deployed_pattern(platform: Platform) -> None:
    """The envelope and detail fields of the "Job state change events" example; the rule's pattern matches the
    FAILED event of its queue only."""
    job_id = platform.submit("cam4-shape")
    job = dict(platform.batch.describe_jobs(jobs=[job_id])["jobs"][0], status="FAILED")
    event = batch_state_change_event(job, REGION, "123456789012")

    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert event["detail-type"] == "Batch Job State Change" and event["source"] == "aws.batch"
    assert event["resources"] == [event["detail"]["jobArn"]]
    assert DOCUMENTED_DETAIL_FIELDS <= set(event["detail"])
    assert platform.rule.matches(event)
    assert not platform.rule.matches({**event, "detail": {**event["detail"], "status": "SUCCEEDED"}})
    other_queue = event["detail"]["jobQueue"].replace("deepsentinel-dev-gpu", "deepsentinel-prod-gpu")
    assert not platform.rule.matches({**event, "detail": {**event["detail"], "jobQueue": other_queue}})


def test_an_unreachable_database_still_publishes_failed_and_says_so_in_the_alert(platform: Platform) -> None:
    """Subscribers must learn the end even when the row cannot be updated; the alert tells the operator."""
    job_id = platform.submit("cam5-nodb")
    job = dict(platform.batch.describe_jobs(jobs=[job_id])["jobs"][0], status="FAILED",
               statusReason="Job attempt duration exceeded timeout")
    broken = {**platform.db_endpoint, "DB_HOST": tempfile.mkdtemp(prefix="nodb-")}  # no server listens there

    result = platform.rule.function.invoke(batch_state_change_event(job, REGION, "123456789012"), platform.aws,
                                           broken)

    assert result["video"].startswith("error: ") and result["video_event_published"] is True
    _assert_one_failed_notification(platform, "cam5-nodb", job_id, "Job attempt duration exceeded timeout")
    [alert] = platform.messages(platform.alerts_inbox)
    assert "Video row:     error: " in alert["Message"]


def test_the_monitor_sends_the_fields_the_worker_sends():
    """One message shape on video-events, whoever ends the video (video_worker/notify.py completion_message)."""
    from video_worker import notify
    from video_worker.config import WorkerConfig

    cfg = WorkerConfig(video_id="v", s3_key="k", raw_bucket="r", highlights_bucket="h", database_url="x",
                       model_uri="m")
    assert set(notify.completion_message(cfg, notify.FAILED, reason="r")) == WORKER_MESSAGE_FIELDS


def test_a_job_timeout_under_a_minute_is_refused_before_synth():
    """"Job timeouts": attemptDurationSeconds "must be at least 60 seconds"."""
    from deepsentinel.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="job_timeout_seconds: AWS Batch needs at least 60, got 59"):
        load_settings("dev", overrides=["job_timeout_seconds=59"])
    assert load_settings("dev", overrides=["job_timeout_seconds=60"]).job_timeout_seconds == 60
