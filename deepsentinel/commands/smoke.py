"""`deepsentinel smoke [--env] [--local] [--video FILE] [--json]`: one video through the deployed platform.

Stages, each timed: upload (presigned PUT to the raw bucket, as the browser does), enqueue (the backend's job
message on the deployed queue), dispatch, run, and report. On AWS the event source mapping and Batch do
dispatch and run, and the report comes from the completion notification, Batch and S3. With --local (after
`deploy --local`) the stand-ins in deepsentinel.local.stand_in do them with the deployment's own configuration,
and the report also reads the database and answers one nearest-neighbour query.

Exit 0 only when the video reached DONE.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepsentinel.commands import arguments
from deepsentinel.errors import OperationFailed

# The backend's layout: every upload under uploads/<video id>/ in the raw bucket.
RAW_KEY_LAYOUT = "uploads/{video_id}/{filename}"
DEFAULT_CLIP_SECONDS = 5
LOCAL_TIMEOUT_SECONDS = 600
AWS_TIMEOUT_SECONDS = 3600  # a GPU instance may have to start first
SMOKE_MODEL_FILE = "smoke-model.pt"  # in the scratch dir; published at the job definition's MODEL_URI


class SmokeError(OperationFailed):
    """The deployment is missing or a stage could not run (the message says which)."""


@dataclass
class Stage:
    name: str
    seconds: float
    detail: str


@dataclass
class SmokeReport:
    video_id: str
    status: str = "UNKNOWN"  # DONE | FAILED | TIMEOUT
    events: int | None = None
    highlights: int = 0
    notification: dict[str, Any] | None = None
    stages: list[Stage] = field(default_factory=list)
    latency_s: float = 0.0
    job: dict[str, Any] = field(default_factory=dict)
    nearest: list[dict[str, Any]] | None = None
    failure_reason: str | None = None  # the worker's own, when the video FAILED (Batch's generic one is job's)
    failure_reason_source: str | None = None  # worker log | database | notification
    worker: dict[str, Any] | None = None  # where the worker's seconds went (worker_timings; locally)

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    arguments.add_settings_arguments(parser, multiple_envs=False, out_help=None)
    arguments.add_local_arguments(parser, local_help="the `deploy --local` deployment (stand-ins run it)")
    parser.add_argument(
        "--video",
        type=Path,
        default=None,
        help=f"a video file to send (default: a {DEFAULT_CLIP_SECONDS} s clip made with ffmpeg)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds to wait for the outcome (default {LOCAL_TIMEOUT_SECONDS} local, {AWS_TIMEOUT_SECONDS} AWS)",
    )


def run(args: argparse.Namespace) -> int:
    (settings,) = arguments.settings_from_args(args, default_envs=("dev",))
    from deepsentinel import terraform
    from deepsentinel.extras import require_worker_extra
    from deepsentinel.local.stand_in import StandInError

    if args.local:
        require_worker_extra("smoke --local")  # it runs the worker, its model and its database here
    if args.video is not None and not args.video.is_file():
        print(f"error: --video {args.video}: no such file", file=sys.stderr)
        return 2
    if args.video is None and shutil.which("ffmpeg") is None:
        print(
            "error: ffmpeg is not on PATH (needed to make the default clip; install Debian's ffmpeg or pass "
            "--video FILE)",
            file=sys.stderr,
        )
        return 1
    say = _Progress(to_stderr=args.json)
    try:
        if args.local:
            report = smoke_local(
                settings, workdir=args.workdir, video=args.video, say=say, timeout=args.timeout or LOCAL_TIMEOUT_SECONDS
            )
        else:
            report = smoke_aws(settings, video=args.video, say=say, timeout=args.timeout or AWS_TIMEOUT_SECONDS)
    except (OperationFailed, StandInError, terraform.TerraformError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(report.as_json())
    else:
        _print_report(report)
    return 0 if report.status == "DONE" else 1


# --- stages common to both targets -------------------------------------------------------------------------


class _Progress:
    def __init__(self, *, to_stderr: bool) -> None:
        self._stream = sys.stderr if to_stderr else sys.stdout
        self.started = time.perf_counter()

    def __call__(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.1f}s] {text}", file=self._stream, flush=True)


@contextlib.contextmanager
def _stage(report: SmokeReport, name: str, say: _Progress) -> Iterator[dict[str, str]]:
    started = time.perf_counter()
    note: dict[str, str] = {"detail": ""}
    say(f"{name} ...")
    yield note
    seconds = time.perf_counter() - started
    report.stages.append(Stage(name, round(seconds, 2), note["detail"]))
    say(f"{name}: {note['detail']} ({seconds:.1f}s)")


def make_clip(path: Path, seconds: int = DEFAULT_CLIP_SECONDS) -> Path:
    """A clip whose content moves (ffmpeg's testsrc2: a moving pattern and counter), H.264 in MP4."""
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=640x360:rate=10:d={seconds}",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


def runtime_environment(scratch: Path, base: Mapping[str, str]) -> dict[str, str]:
    """Runtime-only settings of the local worker: no ultralytics update checks, caches in the scratch dir."""
    return {**base, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(scratch / "ultralytics")}


def build_smoke_model(scratch: Path) -> Path:
    """The smoke model (deepsentinel.local.smoke_model) in `scratch`, built once, in a child process: torch is
    imported there, not here. Written under a temporary name and renamed, so an interrupted build leaves no partial
    file that a later run would take for the model."""
    model = scratch / SMOKE_MODEL_FILE
    if not model.is_file():
        building = scratch / f".building-{os.getpid()}-{SMOKE_MODEL_FILE}"
        try:
            subprocess.run(
                [sys.executable, "-m", "deepsentinel.local.smoke_model", str(building)],
                check=True,
                capture_output=True,
                env=runtime_environment(scratch, os.environ),
            )
            os.replace(building, model)
        finally:
            building.unlink(missing_ok=True)
    return model


def upload_and_enqueue(
    report: SmokeReport,
    *,
    s3: Any,
    sqs: Any,
    outputs: dict[str, Any],
    video: Path | None,
    say: _Progress,
    scratch: Path,
) -> str:
    raw_bucket = outputs["bucket_names"]["raw-videos"]
    with _stage(report, "upload", say) as note:
        clip = video or make_clip(scratch / "smoke.mp4")
        key = RAW_KEY_LAYOUT.format(video_id=report.video_id, filename=clip.name)
        url = s3.generate_presigned_url(
            "put_object", Params={"Bucket": raw_bucket, "Key": key, "ContentType": "video/mp4"}, ExpiresIn=900
        )
        request = urllib.request.Request(
            url, data=clip.read_bytes(), method="PUT", headers={"Content-Type": "video/mp4"}
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            if response.status != 200:
                raise SmokeError(f"presigned PUT answered HTTP {response.status}")
        note["detail"] = f"s3://{raw_bucket}/{key} ({clip.stat().st_size} bytes, presigned PUT)"
    with _stage(report, "enqueue", say) as note:
        # The original backend's message format.
        body = {"video": {"id": report.video_id}, "s3": {"bucket": raw_bucket, "key": key}}
        # A FIFO jobs queue (fifo_job_queue) takes a message only with a MessageGroupId: one group per video.
        fifo = {"MessageGroupId": report.video_id} if outputs["jobs_queue_url"].endswith(".fifo") else {}
        message = sqs.send_message(QueueUrl=outputs["jobs_queue_url"], MessageBody=json.dumps(body), **fifo)
        note["detail"] = f"message {message['MessageId']} on {outputs['jobs_queue_url'].rsplit('/', 1)[-1]}"
    return key


@contextlib.contextmanager
def notification_subscription(sns: Any, sqs: Any, topic_arn: str, name: str) -> Iterator[str]:
    """A temporary SQS queue subscribed to the video-events topic; both removed afterwards."""
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                        }
                    ],
                }
            )
        },
    )
    subscription = sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )
    try:
        yield queue_url
    finally:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
        sqs.delete_queue(QueueUrl=queue_url)


def wait_for_notification(sqs: Any, queue_url: str, video_id: str, *, deadline: float) -> dict[str, Any] | None:
    while time.monotonic() < deadline:
        wait = max(0, min(20, int(deadline - time.monotonic())))
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get(
            "Messages", []
        ):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            if body.get("video_id") == video_id and body.get("status") in ("DONE", "FAILED"):
                return body
        if wait == 0:
            break
    return None


def count_highlights(s3: Any, bucket: str, video_id: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{video_id}/")
    return sum(len(page.get("Contents", [])) for page in pages)


def job_summary(batch: Any, job_queue: str, video_id: str) -> dict[str, Any]:
    name = f"video-{video_id}"  # sqs_to_batch's job name (the smoke's ids need no sanitizing)
    jobs = [
        j
        for j in batch.list_jobs(jobQueue=job_queue, filters=[{"name": "JOB_NAME", "values": [name]}])["jobSummaryList"]
        if j["jobName"] == name
    ]
    if not jobs:
        return {}
    job = batch.describe_jobs(jobs=[jobs[0]["jobId"]])["jobs"][0]
    return {
        "job_id": job["jobId"],
        "count": len(jobs),
        "status": job["status"],
        "status_reason": job.get("statusReason"),
        "attempts": len(job.get("attempts", [])),
        "exit_codes": [a.get("container", {}).get("exitCode") for a in job.get("attempts", [])],
    }


def worker_failure_reason(log_lines: Iterable[str]) -> str | None:
    """The worker's reason from its JSON log lines (video_worker.logs): the last `job_failed` event's kind and
    reason, else the last line of the last logged exception."""
    for line in reversed(list(log_lines)):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("event") == "job_failed" and entry.get("reason"):
            return f"{entry['kind']}: {entry['reason']}" if entry.get("kind") else str(entry["reason"])
        if entry.get("exc"):
            return str(entry["exc"]).strip().splitlines()[-1]
    return None


def note_failure_reason(report: SmokeReport, *, log_lines: Iterable[str] = (), row_reason: str | None = None) -> None:
    """Why the video FAILED, from the first source that has it: the worker's log, its database row, the FAILED
    notification (the failure monitor's, naming Batch's reason, when the worker could not send one)."""
    if report.status != "FAILED" or report.failure_reason:
        return
    notified = (report.notification or {}).get("reason")
    for source, reason in (
        ("worker log", worker_failure_reason(log_lines)),
        ("database", row_reason),
        ("notification", notified),
    ):
        if reason:
            report.failure_reason, report.failure_reason_source = str(reason), source
            return


def worker_timings(log_lines: Iterable[str], *, attempt_seconds: float) -> dict[str, Any]:
    """Where one attempt's seconds went, from the worker's JSON log lines (video_worker.logs): its phases
    (`job_phases`: imports, clients, input, model, pipeline, notify; wall and CPU seconds), the model's steps
    (`model_ready`: import, fetch, load, warmup) and the pipeline's stages (`timings`). `process_s` is the rest of
    the attempt: the interpreter's start and exit and the modules imported before the job's code runs."""
    found: dict[str, Any] = {"attempt_s": round(attempt_seconds, 3)}
    for line in log_lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("event") == "job_phases":
            found.update(phases_s=entry.get("phases_s", {}), wall_s=entry.get("wall_s"), cpu_s=entry.get("cpu_s"))
        elif entry.get("event") == "model_ready":
            found["model_steps_s"] = entry.get("steps_s", {})
        elif entry.get("event") == "timings":
            found["pipeline_stages_s"] = entry.get("stages_s", {})
    if isinstance(found.get("wall_s"), (int, float)):
        found["process_s"] = round(attempt_seconds - found["wall_s"], 3)
    return found


def worker_log_lines(logs: Any, batch: Any, job_id: str) -> list[str]:
    """The last lines of the job's last attempt in CloudWatch Logs (the job definition's awslogs group, else
    Batch's default /aws/batch/job); empty when they cannot be read with these credentials."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        stream = (job.get("attempts") or [{}])[-1].get("container", {}).get("logStreamName") or job.get(
            "container", {}
        ).get("logStreamName")
        if not stream:
            return []
        options = job.get("container", {}).get("logConfiguration", {}).get("options", {})
        events = logs.get_log_events(
            logGroupName=options.get("awslogs-group", "/aws/batch/job"),
            logStreamName=stream,
            limit=50,
            startFromHead=False,
        )["events"]
    except (ClientError, BotoCoreError, IndexError, KeyError):
        return []
    return [event["message"] for event in events]


def _print_report(report: SmokeReport) -> None:
    print(f"\nvideo {report.video_id}: {report.status}")
    if report.failure_reason:
        print(f"  reason: {report.failure_reason} ({report.failure_reason_source})")
    print(f"  events: {report.events if report.events is not None else 'n/a (database not reachable from here)'}")
    print(f"  highlights: {report.highlights}")
    if report.job:
        print(
            f"  batch job: {report.job.get('status')} after {report.job.get('attempts')} attempt(s)"
            + (f" (Batch: {report.job['status_reason']})" if report.job.get("status_reason") else "")
        )
    if report.nearest is not None:
        print(f"  nearest-neighbour query: {len(report.nearest)} event(s) like this video's first")
    note = report.notification
    print(f"  notification: {note['status'] + ' received' if note else 'none received'}")
    print(f"  latency: {report.latency_s:.1f}s upload-to-outcome")
    worker = report.worker or {}
    if worker.get("phases_s"):
        phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in worker["phases_s"].items())
        print(
            f"  worker: {worker['attempt_s']:.1f}s attempt = {phases}, process {worker.get('process_s', 0):.1f} "
            f"(CPU {worker.get('cpu_s', 0):.1f}s)"
        )


# --- on AWS ------------------------------------------------------------------------------------------------


def smoke_aws(settings, *, video: Path | None, say: _Progress, timeout: float) -> SmokeReport:
    from deepsentinel.stacks.names import platform_stack_name
    from deepsentinel.target import aws_target, deployed_outputs

    with tempfile.TemporaryDirectory(prefix="deepsentinel-smoke-") as tmp:
        target = aws_target(settings, Path(tmp) / "cdktf.out")
        outputs = deployed_outputs(target)
        _require_outputs(outputs, platform_stack_name(settings))
        require_published_model(target.client("batch"), target.client("s3"), outputs, settings.environment)
        return run_smoke(
            target.session,
            None,
            settings,
            outputs,
            video=video,
            say=say,
            timeout=timeout,
            scratch=Path(tmp),
            local=None,
        )


def run_smoke(
    session: Any,
    endpoint_url: str | None,
    settings,
    outputs: dict[str, Any],
    *,
    video: Path | None,
    say: _Progress,
    timeout: float,
    scratch: Path,
    local: Any,
) -> SmokeReport:
    client = _client_factory(session, endpoint_url)
    s3, sqs, sns, batch = client("s3"), client("sqs"), client("sns"), client("batch")
    report = SmokeReport(video_id=f"smoke-{uuid.uuid4().hex[:12]}")
    with notification_subscription(
        sns, sqs, outputs["video_events_topic_arn"], f"{settings.prefix}-smoke-{report.video_id[-12:]}"
    ) as notifications:
        # The clip exists before its upload starts, as a user's file does: latency is upload to outcome.
        video = video or make_clip(scratch / "smoke.mp4")
        started = time.perf_counter()
        upload_and_enqueue(report, s3=s3, sqs=sqs, outputs=outputs, video=video, say=say, scratch=scratch)
        deadline = time.monotonic() + timeout
        if local is not None:
            local.dispatch_and_run(report, say=say, deadline=deadline)
        with _stage(report, "notification", say) as note:
            report.notification = wait_for_notification(sqs, notifications, report.video_id, deadline=deadline)
            note["detail"] = report.notification["status"] if report.notification else "none before the timeout"
    report.latency_s = round(time.perf_counter() - started, 2)
    report.job = job_summary(batch, outputs["job_queue_arn"], report.video_id)
    report.highlights = count_highlights(s3, outputs["bucket_names"]["highlights"], report.video_id)
    report.status = report.notification["status"] if report.notification else "TIMEOUT"
    if local is not None:
        report.worker = local.worker_timing
        local.read_database(report)  # the row's reason, after the worker's log
        note_failure_reason(report, log_lines=local.worker_log)
    elif report.status == "FAILED" and report.job:
        note_failure_reason(report, log_lines=worker_log_lines(client("logs"), batch, report.job["job_id"]))
    note_failure_reason(report)  # what the notification says, when nothing better was found
    return report


REQUIRED_OUTPUTS = (
    "bucket_names",
    "jobs_queue_url",
    "job_queue_arn",
    "video_events_topic_arn",
    "gpu_job_definition_arn",
    "lambda_function_names",
)


def _require_outputs(outputs: dict[str, Any], stack: str) -> None:
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    if missing:
        raise SmokeError(
            f"{stack} is not (completely) deployed: outputs {', '.join(missing)} are missing; "
            "run `deepsentinel deploy` for it first"
        )


def model_object_exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def require_published_model(batch: Any, s3: Any, outputs: dict[str, Any], environment: str) -> None:
    """The deployed job definition's weights exist, or the smoke stops before sending a video every attempt of
    which would fail (the worker's ModelMissing)."""
    from botocore.exceptions import ClientError

    definitions = batch.describe_job_definitions(jobDefinitions=[outputs["gpu_job_definition_arn"]])["jobDefinitions"]
    uri = (
        next((e["value"] for e in definitions[0]["containerProperties"]["environment"] if e["name"] == "MODEL_URI"), "")
        if definitions
        else ""
    )
    if not uri.startswith("s3://"):
        return
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        published = model_object_exists(s3, bucket, key)
    except ClientError:
        return  # 403: these credentials cannot tell; the job will
    if not published:
        raise SmokeError(
            f"the job definition's model {uri} is not published: run `deepsentinel model publish FILE "
            f"--env {environment}` and deploy with model_key set to the key it prints (or publish with "
            f"--key {key})"
        )


def _client_factory(session: Any, endpoint_url: str | None):
    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url) if endpoint_url else session.client(service)

    return client


# --- locally -----------------------------------------------------------------------------------------------


def smoke_local(settings, *, workdir: Path | None, video: Path | None, say: _Progress, timeout: float) -> SmokeReport:
    from deepsentinel import terraform
    from deepsentinel.stacks.names import platform_stack_name
    from deepsentinel.target import local_target

    target = local_target(settings, workdir)
    assert target.work is not None and target.endpoint_url is not None
    # The stack as it was deployed (its Lambda bundles run in the stand-ins), not a fresh synthesis.
    stack_dir = target.outdir / "stacks" / platform_stack_name(settings)
    if not (stack_dir / ".terraform").is_dir():
        raise SmokeError(
            f"no local deployment of {settings.environment} in {target.work.root}: "
            f"run `deepsentinel deploy --local --env {settings.environment}` first"
        )
    outputs = terraform.outputs(stack_dir, env=target.tf_env)
    _require_outputs(outputs, platform_stack_name(settings))
    scratch = target.work.smoke_dir
    scratch.mkdir(parents=True, exist_ok=True)
    local = LocalPlatform(
        session=target.session,
        endpoint_url=target.endpoint_url,
        region=settings.region,
        outputs=outputs,
        stack_dir=stack_dir,
        scratch=scratch,
    )
    local.prepare(say)
    return run_smoke(
        target.session,
        target.endpoint_url,
        settings,
        outputs,
        video=video,
        say=say,
        timeout=timeout,
        scratch=scratch,
        local=local,
    )


@dataclass
class LocalPlatform:
    """The stand-ins of one local deployment, configured from what was deployed."""

    session: Any
    endpoint_url: str
    region: str
    outputs: dict[str, Any]
    stack_dir: Path
    scratch: Path
    database: Any = None  # stand_in.LocalDatabase, once prepared
    db_name: str = ""
    db_endpoint: dict[str, str] = field(default_factory=dict)  # DB_HOST/DB_PORT of the local database
    job_environment: dict[str, str] = field(default_factory=dict)  # the GPU job definition's, as deployed
    worker_log: list[str] = field(default_factory=list)  # the last output of a job that FAILED (stand-in's)
    worker_timing: dict[str, Any] | None = None  # worker_timings of the last attempt run

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def prepare(self, say: _Progress) -> None:
        """The database from the deployed secret, and weights in the models bucket if it has none."""
        from deepsentinel.local.stand_in import SMOKE_DATABASE_DIR, LocalDatabase

        self.job_environment = self._job_definition_environment()
        secret = json.loads(
            self.client("secretsmanager").get_secret_value(SecretId=self.job_environment["DB_SECRET_ARN"])[
                "SecretString"
            ]
        )
        self.db_name = self.job_environment["DB_NAME"]
        self.database = LocalDatabase(self.scratch / SMOKE_DATABASE_DIR)
        self.db_endpoint = self.database.start(
            username=secret["username"], password=secret["password"], database=self.db_name
        )
        say(
            f"database: PostgreSQL 16 + pgvector at {self.db_endpoint['DB_HOST']} stands in for "
            f"{self.job_environment['DB_HOST']}:{self.job_environment['DB_PORT']} (master user from the RDS secret)"
        )
        self.publish_smoke_model(say)

    def publish_smoke_model(self, say: _Progress) -> None:
        """No trained weights exist locally: the smoke model goes where the deployed job definition's MODEL_URI
        points (model_key), through `deepsentinel model publish`'s own path (checked with ultralytics, SSE-KMS
        with the bucket's key); weights already there are kept."""
        from deepsentinel.commands.model import publish_model

        bucket, _, key = self.job_environment["MODEL_URI"].removeprefix("s3://").partition("/")
        s3 = self.client("s3")
        if model_object_exists(s3, bucket, key):
            say(f"model: s3://{bucket}/{key} (the job definition's MODEL_URI) is published")
            return
        model = build_smoke_model(self.scratch)
        published = publish_model(s3, model, bucket=bucket, key=key, where=f"the moto server on {self.endpoint_url}")
        say(
            f"model: s3://{bucket}/{key} (the job definition's MODEL_URI) was empty; published the smoke model "
            f"there (deepsentinel.local.smoke_model, sha256 {published.sha256[:12]})"
        )

    def _job_definition_environment(self) -> dict[str, str]:
        definitions = self.client("batch").describe_job_definitions(
            jobDefinitions=[self.outputs["gpu_job_definition_arn"]]
        )["jobDefinitions"]
        if not definitions:
            raise SmokeError(f"job definition {self.outputs['gpu_job_definition_arn']} is not deployed")
        return {e["name"]: e["value"] for e in definitions[0]["containerProperties"]["environment"]}

    def dispatch_and_run(self, report: SmokeReport, *, say: _Progress, deadline: float) -> None:
        from deepsentinel.local.stand_in import (
            BatchStandIn,
            DeployedFunction,
            EventSourceMappingStandIn,
            LocalAwsEnvironment,
            batch_state_change_event,
        )

        aws = LocalAwsEnvironment(self.endpoint_url, self.region)
        lambda_client, functions = self.client("lambda"), self.outputs["lambda_function_names"]
        code_dir = self.scratch / "functions"
        with _stage(report, "dispatch", say) as note:
            submitter = DeployedFunction.read_back(
                lambda_client, functions["sqs_to_batch"], assets_dir=self.stack_dir / "assets", work_dir=code_dir
            )
            mapping = EventSourceMappingStandIn.read_back(lambda_client, self.client("sqs"), submitter, self.region)
            counts = {"received": 0, "deleted": 0, "failed": 0}
            # Until the message is processed, or the queue answers nothing after a receive: a message the submitter
            # reported failed stays invisible for the queue's visibility timeout, as the real mapping leaves it (the
            # smoke does not wait minutes for its next receive; the detail says it failed).
            while counts["deleted"] == 0 and time.monotonic() < deadline:
                polled = mapping.poll_once(aws)
                for name, value in polled.items():
                    counts[name] += value
                if counts["received"] and not polled["received"]:
                    break
            note["detail"] = (
                f"{counts['received']} received (batch size {mapping.batch_size}), "
                f"{counts['deleted']} deleted, {counts['failed']} reported failed"
            )
        batch = self.client("batch")
        with _stage(report, "run", say) as note:
            runner = BatchStandIn(
                batch=batch,
                aws=aws,
                job_queue=self.outputs["job_queue_arn"],
                endpoint_overrides=self.db_endpoint,
                extra_environment=runtime_environment(
                    self.scratch,
                    {"WORK_DIR": str(self.scratch / "work"), "MODEL_CACHE_DIR": str(self.scratch / "models")},
                ),
                on_attempt=lambda run, attempt: say(
                    f"  {run.job_name} attempt {attempt.attempt}: exit {attempt.exit_code} ({attempt.seconds:.1f}s)"
                    + ("" if attempt.exit_code == 0 else "\n    " + "\n    ".join(attempt.log_tail.splitlines()[-3:]))
                ),
            )
            (self.scratch / "work").mkdir(exist_ok=True)
            runs = runner.run_runnable(job_name=f"video-{report.video_id}")
            failed = [r for r in runs if r.status == "FAILED"]
            self.worker_log = [line for r in failed[-1:] for line in r.attempts[-1].log_tail.splitlines()]
            last = next((r.attempts[-1] for r in reversed(runs) if r.attempts), None)
            self.worker_timing = (
                None if last is None else worker_timings(last.log_tail.splitlines(), attempt_seconds=last.seconds)
            )
            if failed:
                monitor = DeployedFunction.read_back(
                    lambda_client,
                    functions["batch_failure_monitor"],
                    assets_dir=self.stack_dir / "assets",
                    work_dir=code_dir,
                )
                account = self.client("sts").get_caller_identity()["Account"]
                for run in failed:
                    job = batch.describe_jobs(jobs=[run.job_id])["jobs"][0]
                    # With the local database's endpoint, as the worker: the monitor reads the row the worker ended.
                    monitor.invoke(batch_state_change_event(job, self.region, account), aws, self.db_endpoint)
            note["detail"] = (
                ", ".join(f"{r.job_name} {r.status} after {len(r.attempts)} attempt(s)" for r in runs)
                or "no RUNNABLE job"
            )
            if failed:
                note["detail"] += "; failure monitor invoked"

    def read_database(self, report: SmokeReport) -> None:
        import psycopg

        with psycopg.connect(self.database.uri(self.db_name)) as conn:
            if conn.execute("SELECT to_regclass('videos')").fetchone() == (None,):
                report.events = 0  # no worker has run against this database yet
                return
            row = conn.execute(
                "SELECT status, event_count, failure_reason FROM videos WHERE video_id = %s", (report.video_id,)
            ).fetchone()
            note_failure_reason(report, log_lines=self.worker_log, row_reason=row[2] if row else None)
            count = (
                conn.execute("SELECT count(*) FROM events WHERE video_id = %s", (report.video_id,)).fetchone()
                if row
                else None
            )
            report.events = int(count[0]) if count else 0
            first = conn.execute(
                "SELECT embedding FROM events WHERE video_id = %s ORDER BY start_s LIMIT 1", (report.video_id,)
            ).fetchone()
            if first is not None:
                rows = conn.execute(
                    "SELECT id, video_id, class_name, embedding <=> %s::vector AS distance FROM events "
                    "ORDER BY embedding <=> %s::vector LIMIT 3",
                    (first[0], first[0]),
                ).fetchall()
                report.nearest = [
                    {"event_id": r[0], "video_id": r[1], "class_name": r[2], "distance": round(float(r[3]), 4)}
                    for r in rows
                ]
