"""Every 5 minutes: publish how long the Batch job queue's oldest RUNNABLE job has been waiting.

Why a function: AWS Batch publishes no CloudWatch metric for jobs waiting in RUNNABLE. When nothing can place them
(a new account's G-instance vCPU quota is 0, Spot capacity is short, a bad AMI or subnet), jobs stay RUNNABLE
forever and nothing fails ("Jobs stuck in a RUNNABLE status", AWS Batch User Guide, troubleshooting,
https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable.html). The queue's own remedy,
`jobStateTimeLimitActions`, was weighed and not used: it acts only on the job at the head of the queue and only
once Batch has inferred one of three reasons (CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY,
MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE, MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT, same page); a vCPU
quota of 0 is none of them as documented, so the stuck job would wait on unalarmed. It also cancels the video,
where a raised quota would have let it run. Measuring the age covers every cause; the alarm on it tells people.

What is measured: ListJobs (jobStatus RUNNABLE, every page) names the jobs; DescribeJobs (100 at a time) gives
each one's `createdAt` and `attempts`. A retried job is RUNNABLE again since its last attempt stopped, so a job
waits since the latest of `createdAt` and its attempts' `stoppedAt` (JobDetail, AttemptDetail in the AWS Batch
API Reference); `createdAt` alone would make every retry look hours old. A job that left RUNNABLE between the two
calls is not counted.

Published (PutMetricData, namespace METRIC_NAMESPACE, dimension JobQueue=<queue>): OldestRunnableJobAgeSeconds
(0 when none waits) and RunnableJobs. A value is published on every run, so no data means the watcher itself is
not running: the alarm treats missing data as breaching. The log line names the oldest job and its
`statusReason` (Batch's reason, when it inferred one: where to start looking).

Environment:
    JOB_QUEUE         Batch job queue name or ARN (required)
    METRIC_NAMESPACE  CloudWatch namespace to publish in (required; the role may publish only there)

Standard library and boto3 only (what the Lambda runtime ships).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3

AGE_METRIC = "OldestRunnableJobAgeSeconds"
COUNT_METRIC = "RunnableJobs"
DIMENSION = "JobQueue"
DESCRIBE_JOBS_MAX = 100  # DescribeJobs: "A list of up to 100 job IDs"


@dataclass(frozen=True)
class Settings:
    job_queue: str
    metric_namespace: str

    @property
    def queue_name(self) -> str:
        """The dimension value: the queue's name, also when JOB_QUEUE is its ARN (...:job-queue/<name>)."""
        return self.job_queue.rsplit("/", 1)[-1]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        values = {name: env.get(name, "").strip() for name in ("JOB_QUEUE", "METRIC_NAMESPACE")}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise ValueError(f"missing environment: {', '.join(missing)}")
        return cls(job_queue=values["JOB_QUEUE"], metric_namespace=values["METRIC_NAMESPACE"])


@dataclass(frozen=True)
class RunnableJobs:
    count: int
    oldest_age_seconds: int  # 0 when none waits
    oldest_job_id: str | None = None
    oldest_status_reason: str | None = None


@lru_cache(maxsize=1)
def clients() -> tuple[Any, Any]:
    return boto3.client("batch"), boto3.client("cloudwatch")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    batch, cloudwatch = clients()
    return check_queue(batch=batch, cloudwatch=cloudwatch, settings=Settings.from_env())


def check_queue(*, batch: Any, cloudwatch: Any, settings: Settings, now_ms: int | None = None) -> dict[str, Any]:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    jobs = runnable_jobs(batch, settings.job_queue, now_ms)
    dimensions = [{"Name": DIMENSION, "Value": settings.queue_name}]
    cloudwatch.put_metric_data(
        Namespace=settings.metric_namespace,
        MetricData=[
            {"MetricName": AGE_METRIC, "Dimensions": dimensions, "Value": jobs.oldest_age_seconds, "Unit": "Seconds"},
            {"MetricName": COUNT_METRIC, "Dimensions": dimensions, "Value": jobs.count, "Unit": "Count"},
        ],
    )
    result = {
        "queue": settings.queue_name,
        "runnable": jobs.count,
        "oldest_age_seconds": jobs.oldest_age_seconds,
        "oldest_job_id": jobs.oldest_job_id,
        "status_reason": jobs.oldest_status_reason,
    }
    sys.stdout.write(json.dumps({"function": "batch_runnable_monitor", **result}) + "\n")
    return result


def runnable_jobs(batch: Any, job_queue: str, now_ms: int) -> RunnableJobs:
    ids = [
        job["jobId"]
        for page in batch.get_paginator("list_jobs").paginate(jobQueue=job_queue, jobStatus="RUNNABLE")
        for job in page["jobSummaryList"]
    ]
    details = [job for job in describe(batch, ids) if job["status"] == "RUNNABLE"]
    if not details:
        return RunnableJobs(count=0, oldest_age_seconds=0)
    oldest = min(details, key=runnable_since)
    return RunnableJobs(
        count=len(details),
        oldest_age_seconds=max(0, (now_ms - runnable_since(oldest)) // 1000),
        oldest_job_id=oldest["jobId"],
        oldest_status_reason=oldest.get("statusReason"),
    )


def describe(batch: Any, job_ids: list[str]) -> Iterable[Mapping[str, Any]]:
    for start in range(0, len(job_ids), DESCRIBE_JOBS_MAX):
        yield from batch.describe_jobs(jobs=job_ids[start : start + DESCRIBE_JOBS_MAX])["jobs"]


def runnable_since(job: Mapping[str, Any]) -> int:
    """Epoch milliseconds since which the job has been waiting: its creation, or the end of its last attempt."""
    stops = [attempt["stoppedAt"] for attempt in job.get("attempts", []) if attempt.get("stoppedAt")]
    return max([job["createdAt"], *stops])
