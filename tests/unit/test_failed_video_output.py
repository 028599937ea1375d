"""What `status` and `smoke` say about a video that FAILED, read from a real failure: sqs_to_batch claims the video
and submits its job (its own code), the real worker runs in the Batch stand-in, reads the uploaded clip and fails
with ModelMissing (no weights at MODEL_URI: exit 65), the FAILED state change reaches the failure monitor (its
packaged code), which releases the claim, and the worker's schema holds the row in a real PostgreSQL.

Documentation the expectations come from:
* "Job state change events" (https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html) and the
  DescribeJobs response (https://docs.aws.amazon.com/batch/latest/APIReference/API_DescribeJobs.html): a job that
  ends FAILED keeps its statusReason and each attempt's container exit code; "Essential container in task exited"
  is the reason Batch gives when the job's container exits ("Troubleshooting AWS Batch",
  https://docs.aws.amazon.com/batch/latest/userguide/troubleshooting.html).
* The claim's fate is the failure monitor's documented behaviour (lambdas/batch_failure_monitor/handler.py
  IDEMPOTENCY_TABLE: the claim of a FAILED job is deleted so the video can be sent again).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from deepsentinel.local.stand_in import BatchStandIn
from tests.local_batch import DB_NAME, DB_PASSWORD, DB_USER, REGION, failure_path

pytestmark = pytest.mark.xdist_group("failed_video_output")
TABLE, HIGHLIGHTS, RAW = "deepsentinel-dev-job-claims", "deepsentinel-dev-highlights", "deepsentinel-dev-raw-videos"
MODEL_URI = "s3://deepsentinel-dev-analysis-models/models/never-published.pt"


@pytest.fixture(scope="module")
def failed_video(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pytest.importorskip("pgserver")
    from deepsentinel.commands.smoke import make_clip
    from deepsentinel.local.server import in_process
    from lambdas.sqs_to_batch import handler as submitter
    from tests.local_database import worker_database

    with in_process() as endpoint, worker_database("fvo-", username=DB_USER, password=DB_PASSWORD,
                                                   database=DB_NAME) as (database, db_endpoint):
        client = lambda service: boto3.client(service, endpoint_url=endpoint, region_name=REGION,  # noqa: E731
                                              aws_access_key_id="test", aws_secret_access_key="test")
        dynamodb, batch, s3, sqs = (client(n) for n in ("dynamodb", "batch", "s3", "sqs"))
        dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "video_id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "video_id", "AttributeType": "S"}])
        for bucket in (HIGHLIGHTS, RAW, "deepsentinel-dev-analysis-models"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        path = failure_path(client, endpoint, db_endpoint, retry_strategy={
            "attempts": 2, "evaluateOnExit": [{"onExitCode": "65", "action": "EXIT"}]},
            job_environment={"RAW_BUCKET": RAW, "HIGHLIGHTS_BUCKET": HIGHLIGHTS, "MODEL_URI": MODEL_URI,
                             "JOB_ATTEMPTS": "2"}, monitor_environment={"IDEMPOTENCY_TABLE": TABLE})
        inbox = sqs.create_queue(QueueName="video-events-inbox")["QueueUrl"]
        client("sns").subscribe(TopicArn=path.video_events_topic_arn, Protocol="sqs",
                                Endpoint=sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])[
                                    "Attributes"]["QueueArn"], Attributes={"RawMessageDelivery": "true"})
        queue, definition, secret, aws = (path.job_queue_arn, path.job_definition_arn, path.db_secret_arn,
                                          path.aws)

        video_id = "cam7-no-model"
        # a readable upload: the worker reads the video before it fetches the model
        s3.upload_file(str(make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=1)), RAW,
                       f"uploads/{video_id}.mp4")
        settings = submitter.Settings(job_queue=queue, job_definition=definition, table=TABLE)
        record = {"messageId": "m-1", "body": json.dumps({"video_id": video_id, "s3_key": f"uploads/{video_id}.mp4"})}
        submitted = submitter.process_record(record, dynamodb=dynamodb, batch=batch, settings=settings)
        claim_before = dynamodb.get_item(TableName=TABLE, Key={"video_id": {"S": video_id}})["Item"]
        run = BatchStandIn(batch=batch, aws=aws, job_queue=queue, endpoint_overrides=db_endpoint,
                           extra_environment={"YOLO_OFFLINE": "1", "MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("models"))},
                           event_rules=[path.rule]).run_job(submitted.job_id)
        notification = json.loads(sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=1)["Messages"][0]["Body"])
        outputs = {"idempotency_table_name": TABLE, "job_queue_arn": queue, "bucket_names": {"highlights": HIGHLIGHTS},
                   "gpu_job_definition_arn": definition, "db_secret_arn": secret}
        yield {"video_id": video_id, "job_id": submitted.job_id, "claim_before": claim_before, "run": run,
               "notification": notification, "outputs": outputs, "dynamodb": dynamodb, "batch": batch, "s3": s3,
               "secrets": client("secretsmanager"), "database_dir": database.data_dir}


def test_status_of_a_failed_video_says_the_claim_was_released_and_counts_no_events(failed_video):
    from deepsentinel.commands import status

    video_id, job_id = failed_video["video_id"], failed_video["job_id"]
    assert failed_video["claim_before"]["status"]["S"] == "SUBMITTED"  # it was processed
    assert failed_video["run"].status == "FAILED"
    view = status.video_status(video_id, outputs=failed_video["outputs"], dynamodb=failed_video["dynamodb"],
                               batch=failed_video["batch"], s3=failed_video["s3"])
    view["database"] = status.database_row(video_id, outputs=failed_video["outputs"], secrets=failed_video["secrets"],
                                           batch=failed_video["batch"], local_data_dir=failed_video["database_dir"])
    assert view["claim"] is None  # the monitor deleted it
    row = view["database"]["row"]
    assert row["status"] == "FAILED" and row["event_count"] is None  # the worker's mark_failed leaves it unset
    lines = status.render(view).splitlines()
    assert lines[1] == (f"  claim: released after the job failed ({job_id}); a new job message for the video "
                        "claims it again")
    assert lines[2] == f"  batch job video-{video_id} ({job_id}): FAILED - Essential container in task exited"
    assert lines[3].startswith("    attempt 1: exit 65 (Essential container in task exited)")
    assert lines[-1] == f"  database: FAILED, no events, failure: {row['failure_reason']}"
    assert "None" not in status.render(view)


def test_smoke_summary_of_a_failed_video_leads_with_the_workers_reason(failed_video, capsys):
    """The worker logs `job_failed` with its reason (video_worker.logs) and publishes FAILED with it; Batch's own
    reason is the generic one and comes second."""
    from deepsentinel.commands import smoke

    run = failed_video["run"]
    log_lines = run.attempts[-1].log_tail.splitlines()
    report = smoke.SmokeReport(video_id=failed_video["video_id"], status="FAILED", events=0,
                               notification=failed_video["notification"],
                               job={"status": run.status, "attempts": len(run.attempts),
                                    "status_reason": run.status_reason})
    smoke.note_failure_reason(report, log_lines=log_lines)
    smoke._print_report(report)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"video {failed_video['video_id']}: FAILED"
    assert lines[2].startswith("  reason: ModelMissing: ") and MODEL_URI in lines[2]
    assert lines[2].endswith(" (worker log)")
    assert "  batch job: FAILED after 1 attempt(s) (Batch: Essential container in task exited)" in lines
    assert lines.index(lines[2]) < lines.index(
        "  batch job: FAILED after 1 attempt(s) (Batch: Essential container in task exited)")


def test_without_the_workers_log_the_database_row_then_the_notification_give_the_reason(failed_video):
    from deepsentinel.commands import smoke

    notified = failed_video["notification"]
    assert notified["status"] == "FAILED" and MODEL_URI in notified["reason"]  # the worker published it
    from_row = smoke.SmokeReport(video_id="v", status="FAILED", notification=notified)
    smoke.note_failure_reason(from_row, log_lines=["not json", "{\"level\": \"info\", \"event\": \"x\"}"],
                              row_reason="attempt 1 of 2: ModelMissing: gone")
    assert (from_row.failure_reason, from_row.failure_reason_source) == ("attempt 1 of 2: ModelMissing: gone",
                                                                          "database")
    from_notification = smoke.SmokeReport(video_id="v", status="FAILED", notification=notified)
    smoke.note_failure_reason(from_notification)
    assert (from_notification.failure_reason, from_notification.failure_reason_source) == (
        notified["reason"], "notification")
    done = smoke.SmokeReport(video_id="v", status="DONE", notification={"status": "DONE"})
    smoke.note_failure_reason(done, row_reason="stale")
    assert done.failure_reason is None
