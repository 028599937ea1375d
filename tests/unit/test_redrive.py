"""`deepsentinel redrive` over moto in-process: the messages reach the DLQ through SQS's own redrive policy, the
videos' claims and jobs are written by the pipeline's own code (sqs_to_batch's process_record and claim, the failure
monitor's release_claim, the local server's Batch job outcomes), and a moved message is processed again by
sqs_to_batch.

Documentation the expectations come from:
* "Using dead-letter queues in Amazon SQS" (SQS Developer Guide): a message received maxReceiveCount times without
  being deleted is moved to the DLQ.
* "Learn how to configure a dead-letter queue redrive in Amazon SQS" (SQS Developer Guide): a redrive moves the
  whole DLQ, SQS does not filter or modify messages during it; StartMessageMoveTask / ListMessageMoveTasks (Amazon SQS
  API Reference) with their request and response shapes from botocore's service model (the Stubber checks them).
* SendMessage (Amazon SQS API Reference): a FIFO queue requires MessageGroupId; an explicit MessageDeduplicationId
  overrides content-based deduplication, and a message with an id already sent within 5 minutes is accepted but not
  delivered.
* "Amazon SQS visibility timeout": ChangeMessageVisibility to 0 makes a received message visible again at once.
* AWS Batch "Job states": SUCCEEDED and FAILED are final; SUBMITTED ... RUNNING will still run.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from deepsentinel.commands import redrive
from deepsentinel.local.patches import BATCH_JOB_OUTCOME_PATH

pytestmark = pytest.mark.xdist_group("redrive")
REGION = "ap-northeast-2"
MAX_RECEIVE_COUNT = 2
MALFORMED_BODY = '{"video": {"id": '  # what the smoke's malformed-message check sends


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from deepsentinel.local.server import in_process

    with in_process() as endpoint_url:
        yield endpoint_url


def _client(endpoint: str, service: str, **config: Any) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(**config) if config else None)


@dataclass
class Pipeline:
    """One environment's jobs queue, its DLQ, the claim table and a Batch queue, named apart per test."""

    endpoint: str
    queues: redrive.Queues
    definition: str
    sqs: Any
    dynamodb: Any
    batch: Any

    @property
    def submitter_settings(self) -> Any:
        from lambdas.sqs_to_batch import handler as submitter

        return submitter.Settings(job_queue=self.queues.job_queue, job_definition=self.definition,
                                  table=self.queues.table)

    def send(self, body: str, *, group: str | None = None) -> str:
        """As the backend and the smoke send a job message (a FIFO queue: the video's own group)."""
        fifo = {"MessageGroupId": group} if self.queues.fifo else {}
        return self.sqs.send_message(QueueUrl=self.queues.jobs_url, MessageBody=body, **fifo)["MessageId"]

    def dead_letter(self, body: str, *, group: str | None = None) -> None:
        """Send, then receive without deleting (a consumer that fails every time) until SQS moves it to the DLQ."""
        self.send(body, group=group)
        for _ in range(MAX_RECEIVE_COUNT + 3):
            received = self.sqs.receive_message(QueueUrl=self.queues.jobs_url, VisibilityTimeout=0,
                                                WaitTimeSeconds=0).get("Messages", [])
            if not received:
                return
        raise AssertionError("the message never reached the DLQ")

    def submit(self, video_id: str) -> str:
        """sqs_to_batch processes the video's message: claim SUBMITTED, one Batch job; returns its id."""
        from lambdas.sqs_to_batch import handler as submitter

        record = {"messageId": f"m-{video_id}", "body": message_body(video_id)}
        result = submitter.process_record(record, dynamodb=self.dynamodb, batch=self.batch,
                                          settings=self.submitter_settings)
        assert result.outcome == "submitted"
        return result.job_id

    def end_job(self, job_id: str, status: str, exit_code: int, reason: str | None = None) -> None:
        """The job's end as the Batch stand-in reports it to the local server."""
        body = json.dumps({"jobId": job_id, "status": status, "exitCode": exit_code, "reason": reason,
                           "statusReason": reason}).encode()
        request = urllib.request.Request(self.endpoint + BATCH_JOB_OUTCOME_PATH, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def fail_job(self, job_id: str) -> None:
        """The job FAILED and the failure monitor released the video's claim (its own release_claim)."""
        from lambdas.batch_failure_monitor import handler as monitor

        self.end_job(job_id, "FAILED", 65, "Essential container in task exited")
        detail = self.batch.describe_jobs(jobs=[job_id])["jobs"][0]
        settings = monitor.Settings(alert_topic_arn="unused", idempotency_table=self.queues.table)
        assert monitor.release_claim(self.dynamodb, monitor.FailedJob.from_detail(detail), settings) == "released"

    def dlq_bodies(self) -> list[str]:
        """What the DLQ holds, visible again afterwards (a peek)."""
        seen = []
        while received := self.sqs.receive_message(QueueUrl=self.queues.dlq_url, MaxNumberOfMessages=10,
                                                   VisibilityTimeout=30, WaitTimeSeconds=0).get("Messages", []):
            seen += received
        for message in seen:
            self.sqs.change_message_visibility(QueueUrl=self.queues.dlq_url, ReceiptHandle=message["ReceiptHandle"],
                                               VisibilityTimeout=0)
        return sorted(m["Body"] for m in seen)

    def jobs_queue_messages(self) -> list[dict[str, Any]]:
        return self.sqs.receive_message(QueueUrl=self.queues.jobs_url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                        WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", [])

    def run(self, **options: Any) -> redrive.RedriveReport:
        return redrive.redrive(sqs=self.sqs, dynamodb=self.dynamodb, batch=self.batch, queues=self.queues,
                               move_task=None, **options)


def message_body(video_id: str) -> str:
    """The original backend's message, as the smoke sends it (deepsentinel/commands/smoke.py upload_and_enqueue)."""
    return json.dumps({"video": {"id": video_id},
                       "s3": {"bucket": "deepsentinel-dev-raw-videos", "key": f"uploads/{video_id}/clip.mp4"}})


def make_pipeline(endpoint: str, *, fifo: bool = False) -> Pipeline:
    name = f"rd{uuid.uuid4().hex[:8]}"
    sqs, dynamodb, batch = (_client(endpoint, s) for s in ("sqs", "dynamodb", "batch"))
    suffix = ".fifo" if fifo else ""
    # As constructs/pipeline.py: the same queue type both ways, content-based deduplication on FIFO.
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    dlq_url = sqs.create_queue(QueueName=f"{name}-jobs-dlq{suffix}", Attributes=attributes)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    jobs_url = sqs.create_queue(QueueName=f"{name}-jobs{suffix}", Attributes={
        **attributes, "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                                   "maxReceiveCount": MAX_RECEIVE_COUNT})})["QueueUrl"]
    jobs_arn = sqs.get_queue_attributes(QueueUrl=jobs_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    table = f"{name}-job-claims"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "video_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "video_id", "AttributeType": "S"}])
    role = _client(endpoint, "iam").create_role(RoleName=f"{name}-batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    environment = batch.create_compute_environment(computeEnvironmentName=f"{name}-gpu", type="UNMANAGED",
                                                   state="ENABLED", serviceRole=role)["computeEnvironmentArn"]
    job_queue = batch.create_job_queue(jobQueueName=f"{name}-gpu", state="ENABLED", priority=10,
                                       computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}]
                                       )["jobQueueArn"]
    definition = batch.register_job_definition(jobDefinitionName=f"{name}-video-analysis", type="container",
                                               containerProperties={"image": "worker:1", "vcpus": 1, "memory": 512}
                                               )["jobDefinitionArn"]
    queues = redrive.Queues(dlq_url=dlq_url, dlq_arn=dlq_arn, jobs_url=jobs_url, jobs_arn=jobs_arn, table=table,
                            job_queue=job_queue)
    return Pipeline(endpoint=endpoint, queues=queues, definition=definition, sqs=sqs, dynamodb=dynamodb, batch=batch)


@pytest.fixture
def pipeline(endpoint: str) -> Pipeline:
    return make_pipeline(endpoint)


def by_video(report: redrive.RedriveReport) -> dict[str | None, redrive.DeadMessage]:
    return {m.video_id: m for m in report.messages}


# --- which messages move ------------------------------------------------------------------------------------------

def test_a_failed_video_is_moved_back_and_submitted_again(pipeline: Pipeline):
    """The video's job FAILED, the failure monitor released its claim: the DLQ message goes back to the jobs queue,
    and sqs_to_batch gives the video a second job."""
    from lambdas.sqs_to_batch import handler as submitter

    first_job = pipeline.submit("cam1-failed")
    pipeline.fail_job(first_job)
    pipeline.dead_letter(message_body("cam1-failed"))

    report = pipeline.run()

    (message,) = report.messages
    assert (message.video_id, message.verdict, message.action) == ("cam1-failed", "redrivable", "moved")
    assert first_job in message.reason and "Essential container in task exited" in message.reason
    assert message.claim is None and message.claim_summary.startswith("released after the job failed")
    assert report.method == redrive.ONE_BY_ONE and not report.failed
    assert pipeline.dlq_bodies() == []
    (moved,) = pipeline.jobs_queue_messages()
    assert moved["Body"] == message_body("cam1-failed")  # unchanged, so the submitter parses it as before
    result = submitter.process_record({"messageId": moved["MessageId"], "body": moved["Body"]},
                                      dynamodb=pipeline.dynamodb, batch=pipeline.batch,
                                      settings=pipeline.submitter_settings)
    assert result.outcome == "submitted" and result.job_id != first_job


def test_a_message_that_failed_before_any_job_is_moved(pipeline: Pipeline):
    """No claim and no job: the submit failed (sqs_to_batch released its claim) or the function never finished."""
    pipeline.dead_letter(message_body("cam2-never-ran"))

    (message,) = pipeline.run().messages

    assert (message.verdict, message.action) == ("redrivable", "moved")
    assert message.reason == "failed before a job was submitted (no Batch job of the video)"
    assert [m["Body"] for m in pipeline.jobs_queue_messages()] == [message_body("cam2-never-ran")]


def test_a_done_video_is_left_in_the_dlq_unless_dropped(pipeline: Pipeline):
    job = pipeline.submit("cam3-done")
    pipeline.end_job(job, "SUCCEEDED", 0)
    pipeline.dead_letter(message_body("cam3-done"))

    (message,) = pipeline.run().messages
    assert (message.verdict, message.action) == ("done", "left")
    assert message.reason == f"done: its Batch job {job} SUCCEEDED"
    assert pipeline.jobs_queue_messages() == []
    assert pipeline.dlq_bodies() == [message_body("cam3-done")]  # and visible: the listing let go of it


def test_drop_done_deletes_a_done_videos_message_and_moves_nothing(pipeline: Pipeline):
    job = pipeline.submit("cam4-done")
    pipeline.end_job(job, "SUCCEEDED", 0)
    pipeline.dead_letter(message_body("cam4-done"))

    (message,) = pipeline.run(drop_done=True).messages

    assert (message.verdict, message.action) == ("done", "dropped")
    assert pipeline.dlq_bodies() == [] and pipeline.jobs_queue_messages() == []


def test_a_video_in_progress_or_held_by_a_claim_is_left(pipeline: Pipeline):
    """A resend while a live claim holds the video would be acknowledged as a duplicate and lost."""
    from lambdas.sqs_to_batch import handler as submitter

    running = pipeline.submit("cam5-running")  # the local server keeps it RUNNABLE until a runner takes it
    message = submitter.VideoMessage(video_id="cam6-claimed", s3_key="uploads/cam6-claimed/clip.mp4")
    submitter.claim(pipeline.dynamodb, pipeline.submitter_settings, message, message_id="m-6", token="t",
                    now=int(time.time()))
    pipeline.dead_letter(message_body("cam5-running"))
    pipeline.dead_letter(message_body("cam6-claimed"))

    messages = by_video(pipeline.run())

    assert messages["cam5-running"].verdict == "in-progress"
    assert messages["cam5-running"].reason == f"in progress: its Batch job {running} is RUNNABLE"
    assert messages["cam6-claimed"].verdict == "held"
    assert messages["cam6-claimed"].reason.startswith("held: its IN_FLIGHT claim stands until ")
    assert {m.action for m in messages.values()} == {"left"}
    assert len(pipeline.dlq_bodies()) == 2 and pipeline.jobs_queue_messages() == []


def test_a_malformed_message_is_reported_in_the_submitters_words_and_left(pipeline: Pipeline):
    from lambdas.sqs_to_batch import handler as submitter

    pipeline.dead_letter(MALFORMED_BODY)
    pipeline.dead_letter(json.dumps({"video_id": "cam7-no-key"}))

    messages = by_video(pipeline.run())

    with pytest.raises(submitter.InvalidMessageError) as not_json:
        submitter.parse_body(MALFORMED_BODY)
    assert messages[None].verdict == "malformed" and messages[None].reason == f"malformed: {not_json.value}"
    assert messages["cam7-no-key"].reason == "malformed: s3_key must be a non-empty string"
    assert {m.action for m in messages.values()} == {"left"}
    assert len(pipeline.dlq_bodies()) == 2


def test_max_caps_the_moves_and_dry_run_moves_nothing(pipeline: Pipeline):
    for video in ("cam8-a", "cam8-b", "cam8-c"):
        pipeline.dead_letter(message_body(video))

    dry = pipeline.run(dry_run=True, max_moves=2)
    assert sorted(m.action for m in dry.messages) == ["left", "would move", "would move"]
    assert dry.method is None and pipeline.jobs_queue_messages() == []
    assert len(pipeline.dlq_bodies()) == 3  # the listing let go of them: visible again at once

    report = pipeline.run(max_moves=2)
    assert sorted(m.action for m in report.messages) == ["left", "moved", "moved"]
    assert len(pipeline.jobs_queue_messages()) == 2 and len(pipeline.dlq_bodies()) == 1


def test_a_message_that_cannot_be_sent_stays_in_the_dlq_and_fails_the_run(pipeline: Pipeline):
    pipeline.dead_letter(message_body("cam9-unsent"))
    gone = redrive.Queues(**{**pipeline.queues.__dict__, "jobs_url": pipeline.queues.jobs_url + "-deleted"})

    report = redrive.redrive(sqs=_client(pipeline.endpoint, "sqs", retries={"total_max_attempts": 1}),
                             dynamodb=pipeline.dynamodb, batch=pipeline.batch, queues=gone, move_task=None)

    (message,) = report.messages
    assert message.action == "error" and message.error.startswith("not sent to the jobs queue")
    assert report.failed
    assert pipeline.dlq_bodies() == [message_body("cam9-unsent")]  # released, visible at once


def test_fifo_resend_keeps_the_videos_group_and_deduplicates_a_repeat(endpoint: str):
    fifo = make_pipeline(endpoint, fifo=True)
    fifo.dead_letter(message_body("cam10-fifo"), group="cam10-fifo")

    (message,) = fifo.run().messages

    assert message.action == "moved" and message.group_id == "cam10-fifo"
    # a second resend of the same DLQ message (its delete failed, then a second run) is accepted, not delivered
    redrive.move_one(fifo.sqs, fifo.queues, message)
    (moved,) = fifo.jobs_queue_messages()  # (moto forgets the id once the first is deleted; AWS keeps 5 minutes)
    assert moved["Attributes"]["MessageGroupId"] == "cam10-fifo"
    assert moved["Attributes"]["MessageDeduplicationId"] == message.message_id


def test_an_empty_dlq_is_nothing_to_do(pipeline: Pipeline):
    report = pipeline.run()
    assert report.messages == [] and not report.failed
    assert redrive.render(report).endswith("is empty: nothing to redrive")


def test_each_message_is_one_line_naming_the_message_the_video_and_why(pipeline: Pipeline):
    job = pipeline.submit("cam11-failed")
    pipeline.fail_job(job)
    pipeline.dead_letter(message_body("cam11-failed"))
    pipeline.dead_letter(MALFORMED_BODY)

    report = pipeline.run(dry_run=True)
    lines = redrive.render(report).splitlines()

    assert len(lines) == 3
    failed = next(m for m in report.messages if m.video_id)
    assert lines[[m.video_id for m in report.messages].index("cam11-failed")] == (
        f"would move {failed.message_id}  video cam11-failed: failed: job {job} FAILED (Essential container in "
        f"task exited, exit 65); claim: released after the job failed ({job}); a new job message for the video "
        "claims it again")
    assert lines[-1] == "2 message(s) in the DLQ: 1 left, 1 would move"
    json.dumps(report.as_json())  # serialisable as --json prints it


# --- the message-move task ------------------------------------------------------------------------------------------

def _dlq_message(video_id: str, number: int) -> dict[str, Any]:
    return {"MessageId": f"0000000{number}-aaaa-bbbb-cccc-dddddddddddd", "ReceiptHandle": f"handle-{number}",
            "MD5OfBody": "0" * 32, "Body": message_body(video_id), "Attributes": {"ApproximateReceiveCount": "3"}}


def test_the_move_task_moves_the_dlq_when_every_message_is_to_be_moved(pipeline: Pipeline):
    """StartMessageMoveTask from the DLQ to the jobs queue, then ListMessageMoveTasks until COMPLETED; the listed
    messages are made visible first (the task moves visible messages)."""
    sqs = boto3.client("sqs", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    q = pipeline.queues
    listing = {"QueueUrl": q.dlq_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1, "VisibilityTimeout": 600,
               "AttributeNames": ["All"], "MessageAttributeNames": ["All"]}
    with Stubber(sqs) as stub:
        stub.add_response("receive_message", {"Messages": [_dlq_message("cam12-a", 1), _dlq_message("cam12-b", 2)]},
                          listing)
        stub.add_response("receive_message", {}, listing)
        stub.add_response("list_message_move_tasks", {"Results": []}, {"SourceArn": q.dlq_arn, "MaxResults": 1})
        stub.add_response("change_message_visibility_batch", {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []},
                          {"QueueUrl": q.dlq_url, "Entries": [
                              {"Id": "0", "ReceiptHandle": "handle-1", "VisibilityTimeout": 0},
                              {"Id": "1", "ReceiptHandle": "handle-2", "VisibilityTimeout": 0}]})
        stub.add_response("start_message_move_task", {"TaskHandle": "task-1"},
                          {"SourceArn": q.dlq_arn, "DestinationArn": q.jobs_arn})
        stub.add_response("list_message_move_tasks", {"Results": [
            {"Status": "RUNNING", "SourceArn": q.dlq_arn, "ApproximateNumberOfMessagesMoved": 1,
             "ApproximateNumberOfMessagesToMove": 2, "StartedTimestamp": 1}]},
            {"SourceArn": q.dlq_arn, "MaxResults": 1})
        stub.add_response("list_message_move_tasks", {"Results": [
            {"Status": "COMPLETED", "SourceArn": q.dlq_arn, "DestinationArn": q.jobs_arn,
             "ApproximateNumberOfMessagesMoved": 2, "ApproximateNumberOfMessagesToMove": 2, "StartedTimestamp": 1}]},
            {"SourceArn": q.dlq_arn, "MaxResults": 1})
        progress: list[str] = []
        report = redrive.redrive(sqs=sqs, dynamodb=pipeline.dynamodb, batch=pipeline.batch, queues=q,
                                 move_task=True, say=progress.append, sleep=lambda _: None)
        stub.assert_no_pending_responses()

    assert report.method == redrive.MOVE_TASK and report.task["Status"] == "COMPLETED"
    assert [m.action for m in report.messages] == ["moved", "moved"] and not report.failed
    assert "message-move task: 1/2 moved" in progress


def test_the_move_task_is_not_used_when_a_message_stays(pipeline: Pipeline):
    """A move task would move the DONE video's message too: one message at a time instead, and no task call (the
    client here is moto's, which does not implement the task: a call would fail the test)."""
    job = pipeline.submit("cam13-done")
    pipeline.end_job(job, "SUCCEEDED", 0)
    pipeline.dead_letter(message_body("cam13-done"))
    pipeline.dead_letter(message_body("cam13-failed"))

    report = redrive.redrive(sqs=pipeline.sqs, dynamodb=pipeline.dynamodb, batch=pipeline.batch,
                             queues=pipeline.queues, move_task=True)

    assert report.method == redrive.ONE_BY_ONE
    assert report.method_reason.startswith("1 message(s) stay in the DLQ")
    assert {m.video_id: m.action for m in report.messages} == {"cam13-done": "left", "cam13-failed": "moved"}


def test_without_the_move_task_the_messages_move_one_by_one(pipeline: Pipeline):
    """The local server answers ListMessageMoveTasks with HTTP 500 (moto does not implement it): the probe's
    failure is the reason given, and the messages still move."""
    pipeline.dead_letter(message_body("cam14-failed"))
    sqs = _client(pipeline.endpoint, "sqs", retries={"total_max_attempts": 1})

    report = redrive.redrive(sqs=sqs, dynamodb=pipeline.dynamodb, batch=pipeline.batch, queues=pipeline.queues,
                             move_task=True)

    assert report.method == redrive.ONE_BY_ONE and report.method_reason.startswith("ListMessageMoveTasks failed")
    assert [m.action for m in report.messages] == ["moved"]

