"""batch_runnable_monitor: the age of the job queue's oldest RUNNABLE job, published as a CloudWatch metric.

Batch is stubbed with botocore's Stubber, which checks every request and response against the real service model
(moto's Docker-free Batch runs a job to SUCCEEDED at once, so it cannot hold one in RUNNABLE). The JobDetail
fixtures copy the shape AWS documents for a RUNNABLE job: the `detail` of the "Batch Job Queue Blocked" event,
which "resembles the JobDetail object that's returned from a DescribeJobs API operation" ("Job queue blocked
events", AWS Batch User Guide, https://docs.aws.amazon.com/batch/latest/userguide/batch-job-queue-blocked-events.html).
CloudWatch is moto's, read back with ListMetrics/GetMetricStatistics.
"""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from lambda_testkit import ACCOUNT_ID, REGION

FUNCTION = "batch_runnable_monitor"
QUEUE = "deepsentinel-dev-video-analysis"
QUEUE_ARN = f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job-queue/{QUEUE}"
NAMESPACE = "DeepSentinel/deepsentinel-dev"
NOW_MS = 1_764_000_000_000
MINUTE_MS = 60_000


class BatchStubber(Stubber):
    """Validates responses against the Batch service model, except one documented gap: the model lists JobDetail's
    `startedAt` ("when the job transitioned from the STARTING state to the RUNNING state") as required, but a job
    that never ran has none, as AWS's own RUNNABLE JobDetail example shows (the page in the module docstring)."""

    def _validate_response(self, shape, response):
        report = ParamValidator().validate(response, shape) if shape is not None else None
        errors = [e for e in (report._errors if report else [])
                  if not (e[0] == "missing required field" and e[2].get("required_name") == "startedAt")]
        assert not errors, errors


def job_summary(job_id: str, created_at: int) -> dict:
    """A ListJobs JobSummary ("JobSummary", AWS Batch API Reference)."""
    return {"jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job/{job_id}", "jobId": job_id, "jobName": f"video-{job_id}",
            "createdAt": created_at, "status": "RUNNABLE",
            "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job-definition/deepsentinel-dev-video-analysis-gpu:1"}


def job_detail(job_id: str, created_at: int, *, status: str = "RUNNABLE", attempts: list | None = None,
               status_reason: str | None = None) -> dict:
    """A DescribeJobs JobDetail of a waiting job, the fields of AWS's "Batch Job Queue Blocked" example."""
    detail = {"jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job/{job_id}", "jobName": f"video-{job_id}",
              "jobId": job_id, "jobQueue": QUEUE_ARN, "status": status, "attempts": attempts or [],
              "createdAt": created_at, "retryStrategy": {"attempts": 3, "evaluateOnExit": []}, "dependsOn": [],
              "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job-definition/deepsentinel-dev-video-analysis-gpu:1",
              "parameters": {}, "container": {"image": "video-analysis:1.0.0", "resourceRequirements": [
                  {"value": "4", "type": "VCPU"}, {"value": "15360", "type": "MEMORY"}, {"value": "1", "type": "GPU"}]},
              "propagateTags": True, "platformCapabilities": ["EC2"]}
    if status_reason:
        detail["statusReason"] = status_reason
    return detail


def finished_attempt(started_at: int, stopped_at: int) -> dict:
    """An AttemptDetail of an attempt that ended (a retry puts the job back in RUNNABLE)."""
    return {"container": {"exitCode": 75, "logStreamName": "video-analysis/default/abc"},
            "startedAt": started_at, "stoppedAt": stopped_at, "statusReason": "Essential container in task exited"}


@pytest.fixture
def batch(aws):
    client = boto3.client("batch", region_name=REGION)
    with BatchStubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def cloudwatch(boto_client):
    return boto_client("cloudwatch")


def run(handler_module, batch_client, cloudwatch_client, now_ms: int = NOW_MS) -> dict:
    settings = handler_module.Settings.from_env({"JOB_QUEUE": QUEUE, "METRIC_NAMESPACE": NAMESPACE})
    return handler_module.check_queue(batch=batch_client, cloudwatch=cloudwatch_client, settings=settings,
                                      now_ms=now_ms)


def published(cloudwatch_client, metric: str) -> float:
    """The one datapoint published for `metric` on the queue, read back from CloudWatch."""
    stats = cloudwatch_client.get_metric_statistics(
        Namespace=NAMESPACE, MetricName=metric, Dimensions=[{"Name": "JobQueue", "Value": QUEUE}],
        StartTime=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10),
        EndTime=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1), Period=60, Statistics=["Maximum"])
    (point,) = stats["Datapoints"]
    return point["Maximum"]


def test_the_oldest_waiting_job_sets_the_age_and_every_page_is_read(handler_module, batch, cloudwatch, capsys):
    """ListJobs is paginated by nextToken ("ListJobs", AWS Batch API Reference): the oldest job is on page two."""
    client, stubber = batch
    stubber.add_response("list_jobs", {"jobSummaryList": [job_summary("young", NOW_MS - 3 * MINUTE_MS)],
                                       "nextToken": "page-2"},
                         {"jobQueue": QUEUE, "jobStatus": "RUNNABLE"})
    stubber.add_response("list_jobs", {"jobSummaryList": [job_summary("old", NOW_MS - 45 * MINUTE_MS)]},
                         {"jobQueue": QUEUE, "jobStatus": "RUNNABLE", "nextToken": "page-2"})
    reason = ("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested for "
              "instance type g5.xlarge")
    stubber.add_response("describe_jobs", {"jobs": [
        job_detail("young", NOW_MS - 3 * MINUTE_MS),
        job_detail("old", NOW_MS - 45 * MINUTE_MS, status_reason=reason)]}, {"jobs": ["young", "old"]})

    result = run(handler_module, client, cloudwatch)

    assert result == {"queue": QUEUE, "runnable": 2, "oldest_age_seconds": 45 * 60, "oldest_job_id": "old",
                      "status_reason": reason}
    assert published(cloudwatch, "OldestRunnableJobAgeSeconds") == 45 * 60
    assert published(cloudwatch, "RunnableJobs") == 2
    assert json.loads(capsys.readouterr().out.strip())["status_reason"] == reason


def test_a_retried_job_waits_since_its_last_attempt_stopped(handler_module, batch, cloudwatch):
    """A job created two hours ago whose second attempt stopped 4 minutes ago has waited 4 minutes: AttemptDetail
    `stoppedAt` is when the attempt left RUNNING ("AttemptDetail", AWS Batch API Reference); `createdAt` is when
    SubmitJob was called ("JobDetail")."""
    client, stubber = batch
    created = NOW_MS - 120 * MINUTE_MS
    stubber.add_response("list_jobs", {"jobSummaryList": [job_summary("retried", created)]},
                         {"jobQueue": QUEUE, "jobStatus": "RUNNABLE"})
    retried = job_detail("retried", created, attempts=[
        finished_attempt(created + 5 * MINUTE_MS, created + 65 * MINUTE_MS),
        finished_attempt(created + 70 * MINUTE_MS, NOW_MS - 4 * MINUTE_MS)])
    retried["startedAt"] = created + 5 * MINUTE_MS  # it ran before
    stubber.add_response("describe_jobs", {"jobs": [retried]}, {"jobs": ["retried"]})

    assert run(handler_module, client, cloudwatch)["oldest_age_seconds"] == 4 * 60


def test_an_empty_queue_publishes_zero_so_silence_means_a_broken_watcher(handler_module, batch, cloudwatch):
    client, stubber = batch
    stubber.add_response("list_jobs", {"jobSummaryList": []}, {"jobQueue": QUEUE, "jobStatus": "RUNNABLE"})

    result = run(handler_module, client, cloudwatch)

    assert (result["runnable"], result["oldest_age_seconds"], result["oldest_job_id"]) == (0, 0, None)
    assert published(cloudwatch, "OldestRunnableJobAgeSeconds") == 0
    assert published(cloudwatch, "RunnableJobs") == 0


def test_a_job_that_started_between_the_two_calls_is_not_counted(handler_module, batch, cloudwatch):
    client, stubber = batch
    stubber.add_response("list_jobs", {"jobSummaryList": [job_summary("gone", NOW_MS - 50 * MINUTE_MS),
                                                          job_summary("waits", NOW_MS - 12 * MINUTE_MS)]},
                         {"jobQueue": QUEUE, "jobStatus": "RUNNABLE"})
    started = job_detail("gone", NOW_MS - 50 * MINUTE_MS, status="STARTING")
    stubber.add_response("describe_jobs", {"jobs": [started, job_detail("waits", NOW_MS - 12 * MINUTE_MS)]},
                         {"jobs": ["gone", "waits"]})

    result = run(handler_module, client, cloudwatch)

    assert (result["runnable"], result["oldest_job_id"], result["oldest_age_seconds"]) == (1, "waits", 12 * 60)


def test_describe_jobs_is_asked_for_at_most_100_jobs_at_a_time(handler_module, batch, cloudwatch):
    """DescribeJobs takes "A list of up to 100 job IDs" (AWS Batch API Reference)."""
    client, stubber = batch
    ids = [f"job-{i:03d}" for i in range(150)]
    stubber.add_response("list_jobs", {"jobSummaryList": [job_summary(i, NOW_MS - MINUTE_MS) for i in ids]},
                         {"jobQueue": QUEUE, "jobStatus": "RUNNABLE"})
    for chunk in (ids[:100], ids[100:]):
        stubber.add_response("describe_jobs", {"jobs": [job_detail(i, NOW_MS - MINUTE_MS) for i in chunk]},
                             {"jobs": chunk})

    assert run(handler_module, client, cloudwatch)["runnable"] == 150


def test_the_dimension_is_the_queue_name_also_when_given_its_arn(handler_module):
    settings = handler_module.Settings.from_env({"JOB_QUEUE": QUEUE_ARN, "METRIC_NAMESPACE": NAMESPACE})
    assert settings.queue_name == QUEUE


def test_missing_environment_is_named(handler_module):
    with pytest.raises(ValueError, match="JOB_QUEUE, METRIC_NAMESPACE"):
        handler_module.Settings.from_env({})
