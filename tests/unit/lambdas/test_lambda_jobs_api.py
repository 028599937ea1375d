"""jobs_api: the three routes of the Jobs API against moto's S3, DynamoDB and Batch.

Events are API Gateway HTTP API Lambda proxy events in payload format 2.0 ("Create AWS Lambda proxy
integrations for HTTP APIs in API Gateway", Payload format version 2.0:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html),
with the IAM authorizer's context an ``AWS_IAM`` route passes (``requestContext.authorizer.iam``).
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
import requests

from lambda_testkit import ACCOUNT_ID, REGION, count_calls, fail_call, load_handler
from tests.aws_events import load_event, s3_object_created

FUNCTION = "jobs_api"
PREFIX = "jobs-api-"
RAW = "deepsentinel-dev-raw-videos"
HIGHLIGHTS = "deepsentinel-dev-highlights"
TABLE = "deepsentinel-dev-job-claims"
QUEUE = "deepsentinel-dev-video-analysis"
JOB_DEFINITION = "deepsentinel-dev-video-analysis-gpu"
CALLER = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deepsentinel-dev-jobs-api-client/gateway-7"


def http_event(route_key: str, *, video_id: str | None = None, body: str | None = None) -> dict[str, Any]:
    """An HTTP API payload format 2.0 event as API Gateway sends it for an IAM-authorized route."""
    method, template = route_key.split(" ", 1)
    path = template.replace("{id}", video_id) if video_id is not None else template
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": f"a1b2c3d4e5.execute-api.{REGION}.amazonaws.com", "user-agent": "awscurl/0.36",
                    "x-amz-date": "20260101T000000Z", "content-length": str(len(body or ""))},
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "a1b2c3d4e5",
            "authorizer": {"iam": {"accessKey": "ASIAEXAMPLE", "accountId": ACCOUNT_ID,
                                   "callerId": "AROAEXAMPLE:gateway-7", "cognitoIdentity": None,
                                   "principalOrgId": None, "userArn": CALLER, "userId": "AROAEXAMPLE:gateway-7"}},
            "domainName": f"a1b2c3d4e5.execute-api.{REGION}.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "awscurl/0.36"},
            "requestId": "Jq1mRgxGIE0EJQg=",
            "routeKey": route_key,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        **({"pathParameters": {"id": video_id}} if video_id is not None else {}),
        **({"body": body} if body is not None else {}),
        "isBase64Encoded": False,
    }


@dataclass
class Env:
    module: ModuleType
    s3: Any
    dynamodb: Any
    batch: Any

    def call(self, route_key: str, video_id: str | None = None, context: Any = None) -> tuple[int, dict[str, Any]]:
        entry = {"POST /videos": self.module.create_video, "GET /videos/{id}": self.module.get_video,
                 "GET /videos/{id}/results": self.module.get_results}[route_key]
        response = entry(http_event(route_key, video_id=video_id), context)
        assert response["headers"]["content-type"] == "application/json" and response["isBase64Encoded"] is False
        return response["statusCode"], json.loads(response["body"])

    def create(self) -> dict[str, Any]:
        status, body = self.call("POST /videos")
        assert status == 201
        return body


@pytest.fixture
def env(handler_module: ModuleType, boto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Env:
    s3, dynamodb, batch, iam = boto_client("s3"), boto_client("dynamodb"), boto_client("batch"), boto_client("iam")
    for bucket in (RAW, HIGHLIGHTS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    dynamodb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "video_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "video_id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    ce = batch.create_compute_environment(computeEnvironmentName="gpu", type="UNMANAGED", state="ENABLED",
                                          serviceRole=role)
    batch.create_job_queue(jobQueueName=QUEUE, state="ENABLED", priority=10,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}])
    batch.register_job_definition(jobDefinitionName=JOB_DEFINITION, type="container",
                                  containerProperties={"image": "worker:1", "vcpus": 1, "memory": 512})
    for name, value in {"UPLOAD_PREFIX": PREFIX, "URL_EXPIRY_SECONDS": "900", "RAW_BUCKET": RAW,
                        "HIGHLIGHTS_BUCKET": HIGHLIGHTS, "IDEMPOTENCY_TABLE": TABLE, "JOB_QUEUE": QUEUE}.items():
        monkeypatch.setenv(name, value)
    return Env(module=handler_module, s3=s3, dynamodb=dynamodb, batch=batch)


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


# --- POST /videos --------------------------------------------------------------------------------------------


def test_post_videos_returns_an_id_and_a_presigned_put_url_that_uploads_to_the_raw_bucket(env):
    """A presigned URL grants the signer's permission for one operation until it expires (S3 User Guide,
    "Download and upload objects with presigned URLs":
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html)."""
    created = env.create()
    video_id, upload = created["video_id"], created["upload"]
    assert re.fullmatch(PREFIX + r"[0-9a-f]{32}", video_id)
    assert upload["method"] == "PUT" and upload["bucket"] == RAW and upload["key"] == video_id
    assert created["links"] == {"status": f"/videos/{video_id}", "results": f"/videos/{video_id}/results"}
    signature = query(upload["url"])
    assert signature["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and signature["X-Amz-Expires"] == "900"
    assert urllib.parse.urlsplit(upload["url"]).path.endswith(f"/{video_id}")

    assert requests.put(upload["url"], data=b"\x00\x00\x00\x18ftypmp42", timeout=10).status_code == 200
    assert env.s3.get_object(Bucket=RAW, Key=video_id)["Body"].read() == b"\x00\x00\x00\x18ftypmp42"
    assert env.create()["video_id"] != video_id  # every POST is a new video


def test_post_videos_answers_201_with_the_status_location(env):
    response = env.module.create_video(http_event("POST /videos", body="{}"), None)
    body = json.loads(response["body"])
    assert response["statusCode"] == 201 and response["headers"]["location"] == f"/videos/{body['video_id']}"
    assert body["status"] == "AWAITING_UPLOAD" and body["upload"]["expires_in"] == 900


# --- GET /videos/{id} ------------------------------------------------------------------------------------------


def test_status_is_404_until_the_upload_arrives_then_uploaded(env):
    video_id = env.create()["video_id"]
    status, body = env.call("GET /videos/{id}", video_id)
    assert status == 404 and body["status"] == "NOT_FOUND"
    env.s3.put_object(Bucket=RAW, Key=video_id, Body=b"video")
    status, body = env.call("GET /videos/{id}", video_id)
    assert status == 200 and body["status"] == "UPLOADED" and body["job"] is None and body["claim"] is None
    assert body["finished"] is False


def test_status_reports_an_in_flight_claim_as_claimed(env):
    video_id = env.create()["video_id"]
    env.dynamodb.put_item(TableName=TABLE, Item={"video_id": {"S": video_id}, "status": {"S": "IN_FLIGHT"},
                                                 "claimed_at": {"N": "1767225600"}})
    status, body = env.call("GET /videos/{id}", video_id)
    assert status == 200 and body["status"] == "CLAIMED"
    assert body["claim"] == {"status": "IN_FLIGHT", "job_id": None, "claimed_at": 1767225600, "submitted_at": None}


def test_status_follows_the_job_sqs_to_batch_submitted_for_the_upload_message(env, monkeypatch):
    """The message of the upload rule (video_id = s3_key = the object key) goes through sqs_to_batch; the
    status route then reads its claim and the Batch job it names."""
    video_id = env.create()["video_id"]
    env.s3.put_object(Bucket=RAW, Key=video_id, Body=b"video")
    sqs_to_batch = load_handler("sqs_to_batch")
    monkeypatch.setenv("JOB_DEFINITION", JOB_DEFINITION)
    settings = sqs_to_batch.Settings.from_env()
    message = json.dumps({"video_id": video_id, "s3_key": video_id, "bucket": RAW})
    result = sqs_to_batch.process_record({"messageId": "m-1", "body": message}, dynamodb=env.dynamodb,
                                         batch=env.batch, settings=settings)

    status, body = env.call("GET /videos/{id}", video_id)
    job = env.batch.describe_jobs(jobs=[result.job_id])["jobs"][0]
    assert status == 200 and body["job"]["jobId"] == result.job_id
    assert body["job"]["jobName"] == f"video-{video_id}" and body["status"] == job["status"]
    assert body["finished"] == (job["status"] in ("SUCCEEDED", "FAILED"))
    assert body["claim"]["status"] == "SUBMITTED" and body["claim"]["job_id"] == result.job_id


def test_status_finds_the_job_by_name_when_the_claim_was_released(env):
    """batch_failure_monitor deletes a failed video's claim; ListJobs with a JOB_NAME filter lists jobs in
    every status (AWS Batch API Reference, ListJobs:
    https://docs.aws.amazon.com/batch/latest/APIReference/API_ListJobs.html)."""
    video_id = env.create()["video_id"]
    job_id = env.batch.submit_job(jobName=f"video-{video_id}", jobQueue=QUEUE, jobDefinition=JOB_DEFINITION)["jobId"]
    env.batch.submit_job(jobName=f"video-{PREFIX}{'0' * 32}", jobQueue=QUEUE, jobDefinition=JOB_DEFINITION)
    status, body = env.call("GET /videos/{id}", video_id)
    assert status == 200 and body["job"]["jobId"] == job_id and body["claim"] is None


@pytest.mark.parametrize("route", ["GET /videos/{id}", "GET /videos/{id}/results"])
@pytest.mark.parametrize("video_id", ["video-1", f"{PREFIX}{'A' * 32}", f"{PREFIX}{'0' * 31}", "jobs-api-x/y", ""])
def test_ids_this_api_did_not_hand_out_are_rejected(env, route, video_id):
    clients = env.module.clients()
    calls = count_calls(clients.s3, clients.dynamodb, clients.batch)
    status, body = env.call(route, video_id)
    assert status == 400 and PREFIX in body["message"]
    assert calls == []  # nothing is looked up for a malformed id


def test_an_aws_failure_answers_502_and_logs_the_cause(env, capsys):
    video_id = env.create()["video_id"]
    capsys.readouterr()
    env.module.clients.cache_clear()
    clients = env.module.clients()
    fail_call(clients.dynamodb, "GetItem", code="ProvisionedThroughputExceededException", status=400)
    status, body = env.call("GET /videos/{id}", video_id)
    assert status == 502 and "ProvisionedThroughputExceeded" not in body["message"]
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["status"] == 502 and "ProvisionedThroughputExceededException" in line["error"]
    assert line["caller"] == CALLER and line["route"] == "GET /videos/{id}"


def test_a_function_without_its_configuration_answers_500(env, monkeypatch, capsys):
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    status, body = env.call("GET /videos/{id}", f"{PREFIX}{'0' * 32}")
    assert status == 500 and body == {"message": "internal error"}
    assert "IDEMPOTENCY_TABLE" in capsys.readouterr().out


# --- GET /videos/{id}/results -----------------------------------------------------------------------------------


def test_results_list_this_videos_highlights_with_presigned_get_urls_and_a_summary(env):
    video_id = env.create()["video_id"]
    keys = [f"{video_id}/0000_person_000001500ms.jpg", f"{video_id}/0001_car_000004000ms.jpg",
            f"{video_id}/0002_person_000012250ms.jpg"]
    for key in keys:
        env.s3.put_object(Bucket=HIGHLIGHTS, Key=key, Body=key.encode(), ContentType="image/jpeg")
    env.s3.put_object(Bucket=HIGHLIGHTS, Key=f"{PREFIX}{'0' * 32}/0000_dog_000000000ms.jpg", Body=b"other")

    status, body = env.call("GET /videos/{id}/results", video_id)
    assert status == 200 and body["source"] == "s3" and body["truncated"] is False
    assert body["summary"] == {"events": 3, "by_class": {"car": 1, "person": 2}}
    assert [(e["ordinal"], e["class_name"], e["start_s"]) for e in body["events"]] == [
        (0, "person", 1.5), (1, "car", 4.0), (2, "person", 12.25)]
    for event, key in zip(body["events"], keys):
        assert event["highlight"]["key"] == key and query(event["highlight"]["url"])["X-Amz-Expires"] == "900"
        assert requests.get(event["highlight"]["url"], timeout=10).content == key.encode()


def test_results_are_empty_before_the_worker_wrote_any(env):
    status, body = env.call("GET /videos/{id}/results", env.create()["video_id"])
    assert status == 200 and body["events"] == [] and body["summary"] == {"events": 0, "by_class": {}}


def test_the_summary_follows_the_workers_highlight_key_layout():
    """The key format is the worker's (worker_image/src/video_worker/highlights.py: highlight_key)."""
    from video_worker.events import Event
    from video_worker.highlights import highlight_key

    module = load_handler(FUNCTION)
    fields = {f: None for f in Event.__dataclass_fields__}
    event = Event(**{**fields, "class_id": 2, "class_name": "traffic light", "start_s": 83.4567})
    parsed = module.parse_highlight_key(highlight_key(f"{PREFIX}{'0' * 32}", 12, event))
    assert parsed == {"ordinal": 12, "class_name": "traffic-light", "start_s": 83.457}


# --- enqueue_upload: the upload rule's target with a FIFO jobs queue ---------------------------------------------

# The "Object created" example of the S3 User Guide, "EventBridge event message structure"
# (tests/fixtures/aws_events/s3_object_created.json), as EventBridge delivers it to a rule's Lambda target (the whole
# event, no input transformer).
S3_OBJECT_CREATED_SAMPLE: dict[str, Any] = load_event("s3_object_created")
FIFO_QUEUE = "deepsentinel-dev-jobs.fifo"
# What every upload shared before: an EventBridge rule's SQS target names one fixed group (SqsParameters).
ONE_GROUP_FOR_ALL = "jobs-api-uploads"


def object_created(key: str, *, sequencer: str = "617f08299329d189", event_id: str | None = None) -> dict[str, Any]:
    """The documented sample for another object of the raw bucket (only key, bucket, sequencer and id differ)."""
    return s3_object_created(bucket=RAW, key=key, sequencer=sequencer, event_id=event_id)


@dataclass
class Fifo:
    module: ModuleType
    sqs: Any
    url: str

    def receive_one(self) -> dict[str, Any] | None:
        """What a consumer gets now (one message, kept in flight: not deleted, as a failing consumer leaves it)."""
        messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1, VisibilityTimeout=300,
                                            MessageSystemAttributeNames=["All"]).get("Messages", [])
        return messages[0] if messages else None

    def depth(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)
        return sum(int(v) for v in attributes["Attributes"].values())


@pytest.fixture
def fifo(handler_module: ModuleType, boto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Fifo:
    """The FIFO jobs queue as pipeline.py creates it with fifo_job_queue (content-based deduplication on)."""
    sqs = boto_client("sqs")
    url = sqs.create_queue(QueueName=FIFO_QUEUE, Attributes={"FifoQueue": "true",
                                                            "ContentBasedDeduplication": "true"})["QueueUrl"]
    monkeypatch.setenv("UPLOAD_PREFIX", PREFIX)
    monkeypatch.setenv("JOBS_QUEUE_URL", url)
    return Fifo(module=handler_module, sqs=sqs, url=url)


def test_enqueue_upload_sends_sqs_to_batch_its_message_in_the_videos_own_group(fifo, lambda_context):
    """SendMessage to a FIFO queue with MessageGroupId = the video id (Amazon SQS API Reference, SendMessage;
    ReceiveMessage returns the group as the MessageGroupId system attribute). The event is the S3 User Guide's
    "Object created" example exactly; sqs_to_batch's own parser reads the body."""
    sent = fifo.module.enqueue_upload(copy.deepcopy(S3_OBJECT_CREATED_SAMPLE), lambda_context)
    message = fifo.receive_one()
    assert message is not None and message["MessageId"] == sent["message_id"]
    assert message["Attributes"]["MessageGroupId"] == "example-key"
    assert json.loads(message["Body"]) == {"video_id": "example-key", "s3_key": "example-key",
                                           "bucket": "amzn-s3-demo-bucket1"}
    parsed = load_handler("sqs_to_batch").parse_body(message["Body"])
    assert (parsed.video_id, parsed.s3_key, parsed.bucket) == ("example-key", "example-key", "amzn-s3-demo-bucket1")

    video_id = f"{PREFIX}{'a' * 32}"
    fifo.module.enqueue_upload(object_created(video_id), lambda_context)
    assert fifo.receive_one()["Attributes"]["MessageGroupId"] == video_id


def test_two_videos_land_in_two_groups_and_a_failing_video_holds_back_only_itself(fifo, lambda_context):
    """FIFO queues deliver no further message of a group while one of it is in flight, and other groups' messages
    meanwhile ("Amazon SQS FIFO queue key terms", Message group ID; moto implements the same rule). One group per
    video: a video whose message keeps failing delays only that video."""
    poisoned, healthy = f"{PREFIX}{'1' * 32}", f"{PREFIX}{'2' * 32}"
    fifo.module.enqueue_upload(object_created(poisoned, sequencer="0000000000000001"), lambda_context)
    fifo.module.enqueue_upload(object_created(healthy, sequencer="0000000000000002"), lambda_context)
    fifo.module.enqueue_upload(object_created(poisoned, sequencer="0000000000000003"), lambda_context)  # re-upload

    first = fifo.receive_one()  # the consumer fails on it: it stays in flight until its visibility timeout
    assert json.loads(first["Body"])["video_id"] == poisoned
    second = fifo.receive_one()
    assert second is not None and json.loads(second["Body"])["video_id"] == healthy
    assert second["Attributes"]["MessageGroupId"] == healthy
    assert fifo.receive_one() is None  # the poisoned video's re-upload waits behind its own first message


def test_one_shared_group_would_block_every_upload_behind_a_failing_one(fifo):
    """The behaviour this replaces: one fixed group for all uploads, as an EventBridge rule's SQS target sends."""
    for video_id in (f"{PREFIX}{'1' * 32}", f"{PREFIX}{'2' * 32}"):
        fifo.sqs.send_message(QueueUrl=fifo.url, MessageGroupId=ONE_GROUP_FOR_ALL,
                              MessageBody=json.dumps({"video_id": video_id, "s3_key": video_id, "bucket": RAW}))
    assert fifo.receive_one() is not None
    assert fifo.receive_one() is None  # the other video waits for the failing one


def test_a_redelivered_event_is_dropped_and_a_new_upload_of_the_key_is_not(fifo, lambda_context):
    """A message with a MessageDeduplicationId already sent within 5 minutes is accepted but not delivered (SQS API
    Reference, SendMessage, MessageDeduplicationId; an explicit id overrides content-based deduplication). The id
    comes from bucket, key and S3's sequencer, so EventBridge's or Lambda's retry of the same event is one message
    and a second write of the key is another."""
    video_id = f"{PREFIX}{'3' * 32}"
    first = fifo.module.enqueue_upload(object_created(video_id), lambda_context)
    again = fifo.module.enqueue_upload(object_created(video_id, event_id="retry-of-the-same-write"), lambda_context)
    assert again["MessageDeduplicationId"] == first["MessageDeduplicationId"]
    assert fifo.depth() == 1
    fifo.module.enqueue_upload(object_created(video_id, sequencer="617f08299329d19a"), lambda_context)
    assert fifo.depth() == 2


def test_enqueue_upload_raises_so_lambda_retries_and_logs_the_cause(fifo, lambda_context, monkeypatch, capsys):
    """An asynchronous invocation that raises is retried twice, then sent to the dead-letter queue (Lambda Developer
    Guide, "Asynchronous invocation"): the function must not swallow a failed send."""
    from botocore.exceptions import ClientError

    monkeypatch.setenv("JOBS_QUEUE_URL", fifo.url.replace(FIFO_QUEUE, "missing.fifo"))
    with pytest.raises(ClientError):
        fifo.module.enqueue_upload(object_created(f"{PREFIX}{'4' * 32}"), lambda_context)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["level"] == "ERROR" and line["event_id"] == S3_OBJECT_CREATED_SAMPLE["id"]
    with pytest.raises(ValueError):
        fifo.module.enqueue_upload({**object_created("x"), "detail-type": "Object Deleted"}, lambda_context)
    monkeypatch.delenv("JOBS_QUEUE_URL")
    with pytest.raises(RuntimeError, match="JOBS_QUEUE_URL"):
        fifo.module.enqueue_upload(object_created(f"{PREFIX}{'4' * 32}"), lambda_context)
