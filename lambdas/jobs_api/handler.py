"""Jobs API for clients without the web app (camera gateways): one small function per HTTP API route.

API Gateway HTTP API, Lambda proxy integration, payload format 2.0. Each route is deployed as its own
function (its own least-privilege role), all from this file:

``POST /videos`` -> :func:`create_video`
    A new video id and a presigned PUT URL for ``s3://RAW_BUCKET/<video_id>``. The upload itself
    enqueues the job: an EventBridge rule on the raw bucket's "Object Created" events (key prefix
    ``UPLOAD_PREFIX``) sends ``{"video_id": <key>, "s3_key": <key>, "bucket": <bucket>}`` to the jobs
    queue. An input transformer cannot cut a prefix or suffix off the key, so the object key IS the
    video id (no folder, no extension: the worker probes the file with ffmpeg and keeps highlights under
    ``<video_id>/``, so a video id must not contain ``/``).
``GET /videos/{id}`` -> :func:`get_video`
    The status: the Batch job's (DescribeJobs on the claim's ``job_id``; else ListJobs by the job name
    ``video-<id>``, which also finds a job whose claim the failure monitor released), else the claim
    sqs_to_batch wrote (IN_FLIGHT: being submitted), else whether the upload is there (UPLOADED: the
    message is on its way), else 404.
``GET /videos/{id}/results`` -> :func:`get_results`
    The highlights the worker wrote to ``s3://HIGHLIGHTS_BUCKET/<video_id>/`` with presigned GET URLs,
    and an events summary read from their keys (``NNNN_<class>_<start ms>ms.jpg``, see
    worker_image/src/video_worker/highlights.py). The events' database rows (end time, confidence,
    counts) are not read: the database admits only the ECS and Batch security groups and the Lambda
    runtime has no PostgreSQL driver, so the summary says ``"source": "s3"``. Poll the status until
    SUCCEEDED first: before that an empty list means "not finished", after it "no events".

Not a route: with a FIFO jobs queue the upload rule invokes :func:`enqueue_upload` instead of sending to the
queue itself. It takes the S3 "Object Created" event as EventBridge delivers it and sends the jobs queue the
same message the rule's input transformer would, with ``MessageGroupId`` = the video id (one message group per
video, so a failing video holds back only itself) and ``MessageDeduplicationId`` derived from the bucket, key and
S3's ``sequencer`` (the same write redelivered is dropped for 5 minutes; a new upload of the key is a new
message). A failed send raises: Lambda retries the asynchronous invocation, then the functions' DLQ keeps it.

Environment (each function gets what its route needs):
    UPLOAD_PREFIX        first characters of every video id and raw key (required by every route)
    URL_EXPIRY_SECONDS   lifetime of the presigned URLs (default 900)
    RAW_BUCKET           POST /videos, GET /videos/{id}
    IDEMPOTENCY_TABLE    GET /videos/{id}: sqs_to_batch's claim table (partition key video_id)
    JOB_QUEUE            GET /videos/{id}: Batch job queue name or ARN
    HIGHLIGHTS_BUCKET    GET /videos/{id}/results
    JOBS_QUEUE_URL       enqueue_upload: the FIFO jobs queue

Standard library and boto3 only (what the Lambda runtime ships).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_URL_EXPIRY_SECONDS = 900
MAX_HIGHLIGHTS = 1000  # one ListObjectsV2 page; more are reported as truncated
MAX_JOB_NAME_LENGTH = 128
# worker_image/src/video_worker/highlights.py: f"{video_id}/{ordinal:04d}_{name}_{start_ms:09d}ms.jpg"
HIGHLIGHT_NAME = re.compile(r"^(?P<ordinal>\d{4,})_(?P<class_name>.+)_(?P<start_ms>\d{9,})ms\.jpg$")
_JOB_NAME_INVALID = re.compile(r"[^A-Za-z0-9_-]")
# SendMessage: MessageGroupId and MessageDeduplicationId are 1..128 alphanumeric or punctuation characters.
_SQS_ID = re.compile(r"^[!-~]{1,128}$")
FINISHED = ("SUCCEEDED", "FAILED")

Response = dict[str, Any]


class ApiError(Exception):
    """Answered to the caller as ``{"message": ...}`` with this status code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, kw_only=True)
class Settings:
    upload_prefix: str
    url_expiry_seconds: int = DEFAULT_URL_EXPIRY_SECONDS
    raw_bucket: str | None = None
    highlights_bucket: str | None = None
    table: str | None = None
    job_queue: str | None = None
    jobs_queue_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        if not env.get("UPLOAD_PREFIX"):
            raise RuntimeError("missing environment variable: UPLOAD_PREFIX")
        raw = env.get("URL_EXPIRY_SECONDS") or str(DEFAULT_URL_EXPIRY_SECONDS)
        try:
            expiry = int(raw)
        except ValueError:
            raise RuntimeError(f"URL_EXPIRY_SECONDS must be an integer, got {raw!r}") from None
        if expiry <= 0:
            raise RuntimeError(f"URL_EXPIRY_SECONDS must be positive, got {expiry}")
        return cls(
            upload_prefix=env["UPLOAD_PREFIX"],
            url_expiry_seconds=expiry,
            raw_bucket=env.get("RAW_BUCKET") or None,
            highlights_bucket=env.get("HIGHLIGHTS_BUCKET") or None,
            table=env.get("IDEMPOTENCY_TABLE") or None,
            job_queue=env.get("JOB_QUEUE") or None,
            jobs_queue_url=env.get("JOBS_QUEUE_URL") or None,
        )

    def require(self, *names: str) -> None:
        """A route called without its configuration fails the request (500), not silently."""
        env_names = {
            "raw_bucket": "RAW_BUCKET",
            "highlights_bucket": "HIGHLIGHTS_BUCKET",
            "table": "IDEMPOTENCY_TABLE",
            "job_queue": "JOB_QUEUE",
            "jobs_queue_url": "JOBS_QUEUE_URL",
        }
        missing = [env_names[n] for n in names if not getattr(self, n)]
        if missing:
            raise RuntimeError(f"missing environment variables: {', '.join(missing)}")


@dataclass(frozen=True)
class Clients:
    s3: Any
    dynamodb: Any
    batch: Any
    sqs: Any


@lru_cache(maxsize=1)
def clients() -> Clients:
    """Created on first use and reused across warm invocations (lazy, so tests start moto first).

    SigV4 for presigning: objects in the raw and highlights buckets are SSE-KMS encrypted, and S3 accepts
    only Signature Version 4 for those.
    """
    return Clients(
        s3=boto3.client("s3", config=Config(signature_version="s3v4")),
        dynamodb=boto3.client("dynamodb"),
        batch=boto3.client("batch"),
        sqs=boto3.client("sqs"),
    )


# --- routes: plain functions over injected clients ----------------------------------------------------------


def create_video_route(
    *, s3: Any, settings: Settings, new_id: Callable[[], str] | None = None, now: Callable[[], float] = time.time
) -> Response:
    settings.require("raw_bucket")
    video_id = new_id() if new_id else settings.upload_prefix + uuid.uuid4().hex
    key = raw_key(video_id)
    url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": settings.raw_bucket, "Key": key},
        ExpiresIn=settings.url_expiry_seconds,
        HttpMethod="PUT",
    )
    return json_response(
        201,
        {
            "video_id": video_id,
            "status": "AWAITING_UPLOAD",
            "upload": {
                "method": "PUT",
                "url": url,
                "bucket": settings.raw_bucket,
                "key": key,
                "expires_in": settings.url_expiry_seconds,
                "expires_at": int(now()) + settings.url_expiry_seconds,
            },
            "links": {"status": f"/videos/{video_id}", "results": f"/videos/{video_id}/results"},
        },
        headers={"location": f"/videos/{video_id}"},
    )


def get_video_route(video_id: str, *, s3: Any, dynamodb: Any, batch: Any, settings: Settings) -> Response:
    settings.require("raw_bucket", "table", "job_queue")
    assert settings.raw_bucket and settings.job_queue  # require's 500 otherwise
    check_video_id(video_id, settings)
    claim = dynamodb.get_item(TableName=settings.table, Key={"video_id": {"S": video_id}}, ConsistentRead=True).get(
        "Item"
    )
    job = None
    job_id = (claim or {}).get("job_id", {}).get("S")
    if job_id:
        jobs = batch.describe_jobs(jobs=[job_id]).get("jobs") or []
        job = jobs[0] if jobs else None
    if job is None:
        job = latest_job(batch, settings.job_queue, job_name_for(video_id))
    body: dict[str, Any] = {
        "video_id": video_id,
        "job": job_view(job) if job else None,
        "claim": claim_view(claim) if claim else None,
    }
    if job is not None:
        status = str(job.get("status"))
    elif claim is not None:
        # IN_FLIGHT: sqs_to_batch is submitting; SUBMITTED without a job: Batch no longer lists it.
        status = "CLAIMED" if body["claim"]["status"] == "IN_FLIGHT" else body["claim"]["status"]
    elif upload_present(s3, settings.raw_bucket, raw_key(video_id)):
        status = "UPLOADED"
    else:
        return json_response(
            404,
            {
                "video_id": video_id,
                "status": "NOT_FOUND",
                "message": "no upload, claim or job for this video id (an upload URL may still be unused)",
            },
        )
    body["status"] = status
    body["finished"] = status in FINISHED
    return json_response(200, body)


def get_results_route(video_id: str, *, s3: Any, settings: Settings) -> Response:
    settings.require("highlights_bucket")
    check_video_id(video_id, settings)
    page = s3.list_objects_v2(Bucket=settings.highlights_bucket, Prefix=f"{video_id}/", MaxKeys=MAX_HIGHLIGHTS)
    events = []
    for obj in sorted(page.get("Contents", []), key=lambda o: o["Key"]):
        key = obj["Key"]
        url = s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": settings.highlights_bucket, "Key": key},
            ExpiresIn=settings.url_expiry_seconds,
            HttpMethod="GET",
        )
        events.append({**parse_highlight_key(key), "highlight": {"key": key, "url": url, "size": obj.get("Size")}})
    by_class = Counter(e["class_name"] for e in events if e.get("class_name"))
    return json_response(
        200,
        {
            "video_id": video_id,
            "source": "s3",
            "note": "events summarized from the highlight objects' keys; the database rows (end time, confidence, "
            "counts) are not reachable from this function",
            "summary": {"events": len(events), "by_class": dict(sorted(by_class.items()))},
            "events": events,
            "truncated": bool(page.get("IsTruncated")),
            "expires_in": settings.url_expiry_seconds,
        },
    )


def enqueue_upload_message(event: Mapping[str, Any], *, sqs: Any, settings: Settings) -> dict[str, str]:
    """Send the jobs queue sqs_to_batch's message for an S3 "Object Created" event, in the video's own group."""
    settings.require("jobs_queue_url")
    detail = event.get("detail") or {}
    key = str((detail.get("object") or {}).get("key") or "")
    bucket = str((detail.get("bucket") or {}).get("name") or "")
    if event.get("detail-type") != "Object Created" or not key or not bucket:
        raise ValueError(f"not an S3 Object Created event with a bucket and key: {event.get('id')!r}")
    # The same text the standard queue's input transformer produces (constructs/jobs_api.py).
    body = json.dumps({"video_id": key, "s3_key": key, "bucket": bucket})
    write = f"{bucket}/{key}@{(detail.get('object') or {}).get('sequencer') or event.get('id')}"
    sent = {
        "MessageGroupId": message_group_for(key),
        "MessageDeduplicationId": hashlib.sha256(write.encode()).hexdigest(),
    }
    response = sqs.send_message(QueueUrl=settings.jobs_queue_url, MessageBody=body, **sent)
    return {"video_id": key, "message_id": response["MessageId"], **sent}


# --- Lambda entry points (one per deployed function) ---------------------------------------------------------


def create_video(event: Mapping[str, Any], context: Any) -> Response:
    return _serve(event, lambda settings, c: create_video_route(s3=c.s3, settings=settings))


def get_video(event: Mapping[str, Any], context: Any) -> Response:
    return _serve(
        event,
        lambda settings, c: get_video_route(
            path_id(event), s3=c.s3, dynamodb=c.dynamodb, batch=c.batch, settings=settings
        ),
    )


def get_results(event: Mapping[str, Any], context: Any) -> Response:
    return _serve(event, lambda settings, c: get_results_route(path_id(event), s3=c.s3, settings=settings))


def enqueue_upload(event: Mapping[str, Any], context: Any) -> dict[str, str]:
    """EventBridge invokes this asynchronously; an exception makes Lambda retry, then the DLQ keeps the event."""
    started = time.perf_counter()
    try:
        sent = enqueue_upload_message(event, sqs=clients().sqs, settings=Settings.from_env())
    except Exception as exc:
        _log_line(
            {
                "level": "ERROR",
                "event": "enqueue_upload",
                "event_id": event.get("id"),
                "error": f"{type(exc).__name__}: {exc}",
                "ms": _elapsed_ms(started),
            }
        )
        raise
    _log_line(
        {"level": "INFO", "event": "enqueue_upload", "event_id": event.get("id"), **sent, "ms": _elapsed_ms(started)}
    )
    return sent


def _serve(event: Mapping[str, Any], route: Callable[[Settings, Clients], Response]) -> Response:
    started = time.perf_counter()
    try:
        response = route(Settings.from_env(), clients())
    except ApiError as exc:
        response = json_response(exc.status, {"message": str(exc)})
    except (ClientError, BotoCoreError) as exc:
        _log(event, 502, started, error=f"{type(exc).__name__}: {exc}")
        return json_response(502, {"message": "an AWS call failed; retry later"})
    except Exception as exc:  # noqa: BLE001 - the caller gets a 500, the log gets the cause
        _log(event, 500, started, error=f"{type(exc).__name__}: {exc}")
        return json_response(500, {"message": "internal error"})
    _log(event, response["statusCode"], started)
    return response


# --- helpers ---------------------------------------------------------------------------------------------------


def raw_key(video_id: str) -> str:
    """The upload's object key: the video id itself (see the module docstring)."""
    return video_id


def message_group_for(video_id: str) -> str:
    """The video's FIFO message group: the id itself (the API's ids always qualify), else its SHA-256."""
    return video_id if _SQS_ID.match(video_id) else "sha256-" + hashlib.sha256(video_id.encode()).hexdigest()


def job_name_for(video_id: str) -> str:
    """sqs_to_batch's job name: ``video-<video_id>`` reduced to [A-Za-z0-9_-], at most 128 characters."""
    return _JOB_NAME_INVALID.sub("_", f"video-{video_id}")[:MAX_JOB_NAME_LENGTH]


def check_video_id(video_id: str, settings: Settings) -> None:
    """Only ids this API hands out: the prefix and 32 hex digits. Anything else is a client error."""
    if not re.fullmatch(re.escape(settings.upload_prefix) + r"[0-9a-f]{32}", video_id or ""):
        raise ApiError(400, f"not a video id of this API: expected {settings.upload_prefix}<32 hex digits>")


def path_id(event: Mapping[str, Any]) -> str:
    return str((event.get("pathParameters") or {}).get("id") or "")


def latest_job(batch: Any, job_queue: str, job_name: str) -> dict[str, Any] | None:
    """The newest job of this name in the queue, any status (with ``filters`` ListJobs ignores jobStatus)."""
    kwargs: dict[str, Any] = {"jobQueue": job_queue, "filters": [{"name": "JOB_NAME", "values": [job_name]}]}
    newest = None
    while True:
        page = batch.list_jobs(**kwargs)
        for job in page.get("jobSummaryList", []):
            if job.get("jobName") == job_name and (
                newest is None or int(job.get("createdAt", 0)) > int(newest.get("createdAt", 0))
            ):
                newest = job
        if not page.get("nextToken"):
            return newest
        kwargs["nextToken"] = page["nextToken"]


def upload_present(s3: Any, bucket: str, key: str) -> bool:
    """ListObjectsV2 rather than HeadObject: the role may list only keys with the upload prefix, and a
    HeadObject without ListBucket answers a missing key with 403, not 404."""
    page = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(obj.get("Key") == key for obj in page.get("Contents", []))


def job_view(job: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: job.get(k) for k in ("jobId", "jobName", "status", "statusReason", "createdAt", "startedAt", "stoppedAt")
    }


def claim_view(item: Mapping[str, Any]) -> dict[str, Any]:
    def value(name: str) -> Any:
        attribute = item.get(name) or {}
        if "N" in attribute:
            return int(attribute["N"])
        return attribute.get("S")

    return {
        "status": value("status"),
        "job_id": value("job_id"),
        "claimed_at": value("claimed_at"),
        "submitted_at": value("submitted_at"),
    }


def parse_highlight_key(key: str) -> dict[str, Any]:
    name = key.rsplit("/", 1)[-1]
    match = HIGHLIGHT_NAME.match(name)
    if match is None:
        return {"ordinal": None, "class_name": None, "start_s": None}
    return {
        "ordinal": int(match["ordinal"]),
        "class_name": match["class_name"],
        "start_s": int(match["start_ms"]) / 1000,
    }


def json_response(status: int, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None) -> Response:
    """The payload format 2.0 response: API Gateway takes statusCode, headers and body as given."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body, default=str),
        "isBase64Encoded": False,
    }


def _log(event: Mapping[str, Any], status: int, started: float, *, error: str | None = None) -> None:
    context = event.get("requestContext") or {}
    caller = ((context.get("authorizer") or {}).get("iam") or {}).get("userArn")
    line = {
        "level": "ERROR" if status >= 500 else "INFO",
        "route": event.get("routeKey"),
        "request_id": context.get("requestId"),
        "caller": caller,
        "status": status,
        "ms": _elapsed_ms(started),
    }
    if error is not None:
        line["error"] = error
    _log_line(line)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _log_line(line: Mapping[str, Any]) -> None:
    # A bare JSON line on stdout lands in CloudWatch as-is, so Logs Insights can query its fields.
    sys.stdout.write(json.dumps(line, default=str) + "\n")
