"""`deepsentinel status VIDEO_ID [--env] [--local] [--json]`: one view of where a video is.

Read from what is deployed: the claim sqs_to_batch wrote in the idempotency table, the Batch job of that
video (its attempts, status reason, exit codes and log streams), the highlight frames in S3 and, where
the database can be reached from here, the video's row. RDS sits in private subnets, so from outside
the VPC the row is reported as unreachable; with --local the smoke's PostgreSQL stand-in is read.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from deepsentinel.commands import arguments

DB_CONNECT_TIMEOUT_SECONDS = 3


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("video_id", metavar="VIDEO_ID", help="the id the job message carried (the smoke prints it)")
    arguments.add_settings_arguments(parser, multiple_envs=False, out_help=None)
    arguments.add_local_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the view as one JSON document")


def run(args: argparse.Namespace) -> int:
    (settings,) = arguments.settings_from_args(args, default_envs=("dev",))
    from deepsentinel.errors import OperationFailed
    from deepsentinel.target import deployed_outputs, target_from_args

    target = target_from_args(args, settings)
    outputs = deployed_outputs(target)
    if "idempotency_table_name" not in outputs:
        raise OperationFailed(f"deepsentinel-{settings.environment} is not deployed on {target.where}")
    view = video_status(
        args.video_id,
        outputs=outputs,
        dynamodb=target.client("dynamodb"),
        batch=target.client("batch"),
        s3=target.client("s3"),
    )
    view["database"] = database_row(
        args.video_id,
        outputs=outputs,
        secrets=target.client("secretsmanager"),
        batch=target.client("batch"),
        local_data_dir=target.work.smoke_database_dir if target.work else None,
    )
    view["claim_summary"] = describe_claim(view)
    if args.json:
        print(json.dumps(view, indent=2, default=str))
    else:
        print(render(view))
    return 0 if view["claim"] or view["job"] else 1


def video_status(video_id: str, *, outputs: dict[str, Any], dynamodb: Any, batch: Any, s3: Any) -> dict[str, Any]:
    claim = read_claim(dynamodb, outputs["idempotency_table_name"], video_id)
    job = read_job(batch, outputs["job_queue_arn"], video_id, job_id=claim.get("job_id") if claim else None)
    highlights = s3.list_objects_v2(Bucket=outputs["bucket_names"]["highlights"], Prefix=f"{video_id}/")
    return {"video_id": video_id, "claim": claim, "job": job, "highlights": highlights.get("KeyCount", 0)}


def read_claim(dynamodb: Any, table: str, video_id: str) -> dict[str, Any] | None:
    """sqs_to_batch's claim item as plain values (status IN_FLIGHT or SUBMITTED, job_id once submitted)."""
    item = dynamodb.get_item(TableName=table, Key={"video_id": {"S": video_id}}, ConsistentRead=True).get("Item")
    if not item:
        return None
    return {name: (int(value["N"]) if "N" in value else value.get("S")) for name, value in sorted(item.items())}


def read_job(batch: Any, job_queue: str, video_id: str, *, job_id: str | None) -> dict[str, Any] | None:
    """The video's latest Batch job: by the claim's job id, else by its name (`video-<id>`)."""
    if job_id is None:
        name = job_name_for(video_id)
        # With filters, ListJobs returns jobs in every status (AWS Batch API reference, ListJobs).
        summaries = [
            j
            for j in batch.list_jobs(jobQueue=job_queue, filters=[{"name": "JOB_NAME", "values": [name]}])[
                "jobSummaryList"
            ]
            if j["jobName"] == name
        ]
        if not summaries:
            return None
        job_id = max(summaries, key=lambda j: j.get("createdAt", 0))["jobId"]
    jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
    if not jobs:
        return None
    job = jobs[0]
    return {
        "job_id": job["jobId"],
        "job_name": job["jobName"],
        "status": job["status"],
        "status_reason": job.get("statusReason"),
        "attempts": [
            {
                "exit_code": a.get("container", {}).get("exitCode"),
                "reason": a.get("container", {}).get("reason") or a.get("statusReason"),
                "log_stream": a.get("container", {}).get("logStreamName"),
            }
            for a in job.get("attempts", [])
        ],
        "log_stream": job.get("container", {}).get("logStreamName"),
    }


def job_name_for(video_id: str) -> str:
    """sqs_to_batch's job name (lambdas/sqs_to_batch/handler.py, which is packaged on its own: a test keeps the
    two equal): `video-<video_id>` reduced to Batch's rules, [A-Za-z0-9_-], at most 128 characters."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"video-{video_id}")[:128]


def database_row(
    video_id: str, *, outputs: dict[str, Any], secrets: Any, batch: Any, local_data_dir: Path | None
) -> dict[str, Any]:
    """The video's row, or why it could not be read from here."""
    try:
        import psycopg
        from psycopg.conninfo import make_conninfo
    except ImportError:
        return {"reachable": False, "reason": "psycopg is not installed (pip install -e .)"}

    definition = batch.describe_job_definitions(jobDefinitions=[outputs["gpu_job_definition_arn"]])["jobDefinitions"]
    env = {e["name"]: e["value"] for e in definition[0]["containerProperties"]["environment"]} if definition else {}
    secret = json.loads(secrets.get_secret_value(SecretId=outputs["db_secret_arn"])["SecretString"])
    if local_data_dir is not None:
        if not local_data_dir.is_dir():
            return {"reachable": False, "reason": "no local database yet (`deepsentinel smoke --local` creates it)"}
        from deepsentinel.local.stand_in import LocalDatabase

        database = LocalDatabase(local_data_dir)
        database.start(username=secret["username"], password=secret["password"], database=env["DB_NAME"])
        conninfo = database.uri(env["DB_NAME"])
    else:
        # As the worker connects (video_worker.store): the secret's credentials, TLS required.
        conninfo = make_conninfo(
            host=env["DB_HOST"],
            port=env["DB_PORT"],
            dbname=env["DB_NAME"],
            user=secret["username"],
            password=secret["password"],
            sslmode="require",
        )
    try:
        with psycopg.connect(conninfo, connect_timeout=DB_CONNECT_TIMEOUT_SECONDS) as conn:
            if conn.execute("SELECT to_regclass('videos')").fetchone() == (None,):  # no videos table yet
                return {"reachable": True, "row": None}
            cursor = conn.execute(
                "SELECT status, failure_reason, event_count, frames_analyzed, started_at, "
                "completed_at FROM videos WHERE video_id = %s",
                (video_id,),
            )
            row = cursor.fetchone()
            columns = [c.name for c in cursor.description or []]
    except psycopg.OperationalError as error:
        return {
            "reachable": False,
            "reason": f"{env.get('DB_HOST')} is not reachable from here "
            f"(private subnets): {str(error).strip().splitlines()[0]}",
        }
    return {"reachable": True, "row": dict(zip(columns, row, strict=True)) if row else None}


def describe_claim(view: dict[str, Any]) -> str:
    """The claim, or why there is none: batch_failure_monitor deletes the claim of a job that FAILED (so the video
    can be sent again), which leaves a processed video without one."""
    claim, job = view["claim"], view["job"]
    row = (view.get("database") or {}).get("row")
    if claim:
        return f"{claim['status']} (job {claim.get('job_id', '-')}, s3 key {claim.get('s3_key')})"
    if job and job["status"] == "FAILED":
        return f"released after the job failed ({job['job_id']}); a new job message for the video claims it again"
    if job:
        return f"none (job {job['job_id']} is {job['status']}; its claim expired or was deleted)"
    if row and row.get("status") == "FAILED":
        return "released after the video failed (its Batch job is no longer listed)"
    if row:
        return f"none (the database has a {row.get('status')} row, but Batch lists no job for the video)"
    return "none (no job message for this video was processed)"


def describe_events(row: dict[str, Any]) -> str:
    """event_count is written when the worker completes the video; a FAILED video keeps no events (the worker and
    the failure monitor delete them), one still running has none counted yet."""
    if row.get("event_count") is not None:
        return f"{row['event_count']} event(s)"
    return "no events" if row.get("status") == "FAILED" else "no events counted yet"


def render(view: dict[str, Any]) -> str:
    lines = [f"video {view['video_id']}", f"  claim: {view.get('claim_summary') or describe_claim(view)}"]
    job = view["job"]
    if job:
        lines.append(
            f"  batch job {job['job_name']} ({job['job_id']}): {job['status']}"
            + (f" - {job['status_reason']}" if job.get("status_reason") else "")
        )
        for number, attempt in enumerate(job["attempts"], 1):
            lines.append(
                f"    attempt {number}: exit {attempt['exit_code']}"
                + (f" ({attempt['reason']})" if attempt.get("reason") else "")
                + (f", log stream {attempt['log_stream']}" if attempt.get("log_stream") else "")
            )
    else:
        lines.append("  batch job: none")
    lines.append(f"  highlights: {view['highlights']} object(s)")
    database = view.get("database") or {}
    if not database.get("reachable"):
        lines.append(f"  database: {database.get('reason', 'not read')}")
    elif database.get("row") is None:
        lines.append("  database: no row for this video")
    else:
        row = database["row"]
        lines.append(
            f"  database: {row['status']}, {describe_events(row)}"
            + (f", failure: {row['failure_reason']}" if row.get("failure_reason") else "")
        )
    return "\n".join(lines)
