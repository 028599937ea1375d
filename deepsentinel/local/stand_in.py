"""Local stand-ins for what AWS runs by itself: the SQS event source mapping, Lambda, Batch and RDS.

Used by `deepsentinel smoke --local` against a `deploy --local` deployment. Every stand-in reads its
configuration back from the deployment (the mapping's batch size, the function's code and environment,
the job definition's container environment and retry strategy, the RDS-managed secret) and runs the
project's real code with exactly that. Only endpoints differ from AWS:

* every AWS client reaches the local moto server (`AWS_ENDPOINT_URL`, test credentials);
* the RDS address maps to a local PostgreSQL 16 + pgvector (pgserver) through its Unix socket
  (`DB_HOST` = the socket directory; libpq ignores `sslmode` on a Unix socket), whose master user and
  password are the ones in the deployed RDS-managed secret.

One difference is the hardware's: a job whose definition asks for a GPU runs with `DEVICE=cpu` when this
machine has none (no `nvidia-smi`), as Batch would place it on a GPU instance that this host cannot be.

A submitted job waits in RUNNABLE on the local server until the Batch stand-in runs it (STARTING, RUNNING, then
SUCCEEDED, FAILED or RUNNABLE again for a retry: "Job states"). Batch's own ways of ending an attempt are reproduced
too: the job's timeout (SIGTERM, then SIGKILL after a
grace of 30 s, "Job timeouts"; never retried) and a kill from outside (a Spot reclaim or the OOM killer:
SIGKILL, then the retry strategy decides). Every state change becomes EventBridge's "Batch Job State Change"
event, handed to the rule stand-ins, which invoke their target function when the deployed pattern matches.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from deepsentinel.local.patches import BATCH_JOB_OUTCOME_PATH

if TYPE_CHECKING:
    from moto.events.utils import EventMessageType

WORKER_SRC = Path(__file__).resolve().parents[2] / "worker_image" / "src"  # from deepsentinel/local/
WORKER_TIMEOUT_SECONDS = 900  # an attempt's limit when its job has no timeout (Batch has none by default)
WORKER_COMMAND = (sys.executable, "-m", "video_worker")
# "Job timeouts" (https://docs.aws.amazon.com/batch/latest/userguide/job_timeouts.html): "your job's container
# receives a SIGTERM signal ... If the container is still running after 30 seconds, a SIGKILL signal is sent",
# and "If a job is terminated for exceeding the timeout duration, it isn't retried."
TERMINATION_GRACE_SECONDS = 30.0
TIMEOUT_STATUS_REASON = "Job attempt duration exceeded timeout"  # the statusReason Batch reports for it
ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"
# What Batch sets in every container ("AWS Batch job environment variables").
BATCH_RUNTIME_VARIABLES = ("AWS_BATCH_JOB_ID", "AWS_BATCH_JOB_ATTEMPT", "AWS_BATCH_JQ_NAME", "AWS_BATCH_CE_NAME")


class StandInError(RuntimeError):
    """The deployment lacks something a stand-in needs (named in the message)."""


@dataclass(frozen=True)
class LocalAwsEnvironment:
    """How processes reach the local server: the only values that differ from AWS."""

    endpoint_url: str
    region: str

    def variables(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }


def _base_environment() -> dict[str, str]:
    """The parts of this process's environment a child needs to start Python at all."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
    return {k: os.environ[k] for k in keep if k in os.environ}


# --- Lambda -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployedFunction:
    """A deployed function: its name, environment and the code it runs (found by the SHA-256 it reports)."""

    name: str
    arn: str
    environment: dict[str, str]
    code_dir: Path
    handler: str

    @classmethod
    def read_back(cls, lambda_client: Any, name: str, *, assets_dir: Path, work_dir: Path) -> DeployedFunction:
        config = lambda_client.get_function_configuration(FunctionName=name)
        code = _asset_with_digest(assets_dir, config["CodeSha256"])
        target = work_dir / f"{name}-{config['CodeSha256'][:12].replace('/', '_')}"
        if not target.is_dir():
            with zipfile.ZipFile(code) as archive:
                archive.extractall(target)
        return cls(
            name=name,
            arn=config["FunctionArn"],
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            code_dir=target,
            handler=config["Handler"],
        )

    def invoke(
        self, event: Mapping[str, Any], aws: LocalAwsEnvironment, environment_overrides: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Run the handler in its own process with the deployed environment (endpoints replaced by
        `environment_overrides`, e.g. the local database's DB_HOST/DB_PORT); return its result."""
        module, _, function = self.handler.rpartition(".")
        script = (
            "import json, sys, importlib\n"
            f"result = getattr(importlib.import_module({module!r}), {function!r})(json.load(sys.stdin), None)\n"
            "sys.stdout.write('\\n' + json.dumps(result))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(event),
            capture_output=True,
            text=True,
            cwd=self.code_dir,
            timeout=300,
            check=False,  # a failed handler is a StandInError with its stderr, below
            env={
                **_base_environment(),
                **self.environment,
                **(environment_overrides or {}),
                **aws.variables(),
                "AWS_LAMBDA_FUNCTION_NAME": self.name,
                # Lambda's code directory is read-only; byte code written into a staged
                # package would change its asset hash.
                "PYTHONDONTWRITEBYTECODE": "1",
            },
        )
        if done.returncode != 0:
            raise StandInError(f"{self.name} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout.rstrip().rsplit("\n", 1)[-1] or "null") or {}


def _asset_with_digest(assets_dir: Path, digest: str) -> Path:
    for archive in sorted(assets_dir.glob("**/*.zip")):
        if base64.b64encode(hashlib.sha256(archive.read_bytes()).digest()).decode() == digest:
            return archive
    raise StandInError(
        f"no asset under {assets_dir} has the deployed code's SHA-256 {digest}: synthesize and deploy again"
    )


# --- SQS event source mapping -------------------------------------------------------------------------------


@dataclass
class EventSourceMappingStandIn:
    """Receives from the queue with the mapping's batch size, invokes the function with Lambda's SQS event,
    and deletes what the function did not report in batchItemFailures (ReportBatchItemFailures). A reported message
    is left alone: it stays invisible for the queue's own visibility timeout and is then received again, as the real
    mapping leaves it ("Handling errors for an SQS event source in Lambda")."""

    sqs: Any
    function: DeployedFunction
    queue_url: str
    queue_arn: str
    batch_size: int
    region: str

    @classmethod
    def read_back(
        cls, lambda_client: Any, sqs: Any, function: DeployedFunction, region: str
    ) -> EventSourceMappingStandIn:
        mappings = lambda_client.list_event_source_mappings(FunctionName=function.arn)["EventSourceMappings"]
        if not mappings:
            raise StandInError(f"{function.name} has no event source mapping")
        mapping = mappings[0]
        queue_name = mapping["EventSourceArn"].rsplit(":", 1)[-1]
        return cls(
            sqs=sqs,
            function=function,
            queue_url=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"],
            queue_arn=mapping["EventSourceArn"],
            batch_size=int(mapping.get("BatchSize", 10)),
            region=region,
        )

    def poll_once(self, aws: LocalAwsEnvironment, *, wait_seconds: int = 1) -> dict[str, int]:
        """One receive + invoke; returns counts of received, deleted and failed messages."""
        # No VisibilityTimeout: the queue's own applies, as to the mapping's receives.
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return {"received": 0, "deleted": 0, "failed": 0}
        result = self.function.invoke({"Records": [self._record(m) for m in messages]}, aws)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for message in done:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return {"received": len(messages), "deleted": len(done), "failed": len(failed)}

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Lambda's SQS record ("Using Lambda with Amazon SQS", example standard queue message event)."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }


# --- Batch --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    attempt: int
    exit_code: int  # as Batch reports a container killed by signal N: 128 + N
    seconds: float
    log_tail: str
    status_reason: str = ESSENTIAL_CONTAINER_EXITED
    container_reason: str | None = None  # e.g. OutOfMemoryError: ...
    timed_out: bool = False
    signals: tuple[str, ...] = ()  # what the stand-in sent the worker, in order ("SIGTERM", "SIGKILL")


@dataclass(frozen=True)
class Kill:
    """A SIGKILL from outside the job `after_seconds` into each attempt from `from_attempt` on, as a Spot reclaim or
    the out-of-memory killer does (uncatchable), with the reasons Batch then reports."""

    after_seconds: float
    status_reason: str
    container_reason: str | None = None
    from_attempt: int = 1


# The status reason the job definition's "Host EC2*" rule retries (a reclaimed Spot instance); an out-of-memory kill
# is the container's reason, the job's is the usual one.
SPOT_RECLAIM_STATUS_REASON = "Host EC2 (instance i-0123456789abcdef0) terminated."
OUT_OF_MEMORY_REASON = "OutOfMemoryError: Container killed due to memory usage"


def spot_reclaim(after_seconds: float, *, from_attempt: int = 1) -> Kill:
    return Kill(after_seconds, SPOT_RECLAIM_STATUS_REASON, from_attempt=from_attempt)


def out_of_memory(after_seconds: float, *, from_attempt: int = 1) -> Kill:
    return Kill(after_seconds, ESSENTIAL_CONTAINER_EXITED, OUT_OF_MEMORY_REASON, from_attempt=from_attempt)


@dataclass
class JobRun:
    job_id: str
    job_name: str
    status: str
    attempts: list[AttemptResult] = field(default_factory=list)
    status_reason: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # results of the rule targets it invoked


def retry_action(strategy: Mapping[str, Any], exit_code: int, reason: str, container_reason: str | None = None) -> str:
    """RETRY or EXIT for a failed attempt, as Batch decides it ("Automated job retries",
    https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html, and the API Reference's EvaluateOnExit,
    https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html): the first evaluateOnExit entry
    whose conditions all match decides (its action is not case sensitive); RETRY when none matches. `reason` is the
    job's status reason (onStatusReason), `container_reason` the container's (onReason; empty when it has none),
    `exit_code` the container's (onExitCode, its decimal representation). Whether an attempt remains is the caller's."""
    values = {"onExitCode": str(exit_code), "onStatusReason": reason, "onReason": container_reason or ""}
    for rule in strategy.get("evaluateOnExit", []):
        if all(_glob_matches(rule[key], value) for key, value in values.items() if key in rule):
            return str(rule["action"]).upper()
    return "RETRY"


def _glob_matches(pattern: str, value: str) -> bool:
    """EvaluateOnExit's glob: an exact match, or, when the pattern ends with an asterisk, "only the start of the
    string needs to be an exact match" (no other wildcard exists: the patterns allow letters, numbers, periods,
    colons and white space only)."""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


@dataclass(frozen=True)
class EventRuleStandIn:
    """An EventBridge rule whose target is a function: an event the deployed pattern matches is delivered to the
    function (with the stand-ins' endpoints), as EventBridge invokes a Lambda target."""

    name: str
    event_pattern: str
    function: DeployedFunction
    aws: LocalAwsEnvironment
    environment_overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read_back(
        cls,
        events: Any,
        rule_name: str,
        function: DeployedFunction,
        aws: LocalAwsEnvironment,
        environment_overrides: Mapping[str, str] | None = None,
    ) -> EventRuleStandIn:
        rule = events.describe_rule(Name=rule_name)
        targets = {t["Arn"] for t in events.list_targets_by_rule(Rule=rule_name)["Targets"]}
        if function.arn not in targets:
            raise StandInError(f"rule {rule_name} does not target {function.name} (targets: {sorted(targets)})")
        return cls(
            name=rule_name,
            event_pattern=rule["EventPattern"],
            function=function,
            aws=aws,
            environment_overrides=dict(environment_overrides or {}),
        )

    def matches(self, event: Mapping[str, Any]) -> bool:
        from moto.events.models import EventPattern  # EventBridge's matching rules, as the local server applies them

        return bool(EventPattern.load(self.event_pattern).matches_event(cast("EventMessageType", dict(event))))

    def deliver(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """The target's result, or None when the pattern does not match the event."""
        if not self.matches(event):
            return None
        return self.function.invoke(event, self.aws, self.environment_overrides)


@dataclass
class BatchStandIn:
    """Stands in for the capacity that runs the queue's RUNNABLE jobs: runs each as `python -m video_worker` with the
    job definition's container environment plus the job's overrides, attempt after attempt as its retry strategy
    says (RUNNABLE -> STARTING -> RUNNING, back to RUNNABLE for a retry: "Job states"), ends an attempt that
    outlives the job's timeout as Batch does (SIGTERM, SIGKILL after the grace; not retried), reports every
    state change to the local server and hands its "Batch Job State Change" event to `event_rules`."""

    batch: Any
    aws: LocalAwsEnvironment
    job_queue: str
    endpoint_overrides: dict[str, str]  # DB_HOST / DB_PORT of the local database
    extra_environment: dict[str, str] = field(default_factory=dict)  # runtime-only (YOLO_OFFLINE, caches)
    on_attempt: Callable[[JobRun, AttemptResult], None] | None = None
    host_has_gpu: bool = field(default_factory=lambda: shutil.which("nvidia-smi") is not None)
    command: tuple[str, ...] = WORKER_COMMAND  # what a container runs (tests: a stub that stands in for the worker)
    termination_grace_seconds: float = TERMINATION_GRACE_SECONDS  # Batch's 30 s; tests shorten it
    event_rules: list[EventRuleStandIn] = field(default_factory=list)

    def run_runnable(self, job_name: str | None = None, *, kill: Kill | None = None) -> list[JobRun]:
        """Every RUNNABLE job of the queue (waiting for capacity), or only those named `job_name`."""
        pages = self.batch.get_paginator("list_jobs").paginate(jobQueue=self.job_queue, jobStatus="RUNNABLE")
        summaries = [summary for page in pages for summary in page["jobSummaryList"]]
        return [self.run_job(s["jobId"], kill=kill) for s in summaries if job_name in (None, s["jobName"])]

    def run_job(self, job_id: str, *, kill: Kill | None = None) -> JobRun:
        job = self.batch.describe_jobs(jobs=[job_id])["jobs"][0]
        definition = self.batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"][0]
        container = definition["containerProperties"]
        environment = {e["name"]: e["value"] for e in container.get("environment", [])}
        overrides = job.get("container", {}).get("environment") or []
        environment.update({e["name"]: e["value"] for e in overrides})
        wants_gpu = any(r.get("type") == "GPU" for r in container.get("resourceRequirements", []))
        if wants_gpu and not self.host_has_gpu:
            environment["DEVICE"] = "cpu"  # the hardware differs, not the configuration
        strategy = definition.get("retryStrategy", {"attempts": 1})
        attempts = int(strategy.get("attempts", 1))
        # SubmitJob's timeout overrides the definition's ("Job timeouts").
        timeout = (job.get("timeout") or definition.get("timeout") or {}).get("attemptDurationSeconds")
        run = JobRun(job_id=job_id, job_name=job["jobName"], status="RUNNING", environment=environment)
        for attempt in range(1, attempts + 1):
            self._report(run, status="STARTING")  # placed on a host, the container being started
            self._report(run, status="RUNNING")
            result = self._attempt(
                environment,
                job_id,
                attempt,
                timeout_seconds=timeout,
                kill=kill if kill and attempt >= kill.from_attempt else None,
            )
            run.attempts.append(result)
            if self.on_attempt:
                self.on_attempt(run, result)
            if result.exit_code == 0 and not result.timed_out:
                run.status = "SUCCEEDED"
                self._report(run, status="SUCCEEDED", exitCode=0, reason=ESSENTIAL_CONTAINER_EXITED)
                return run
            final = (
                result.timed_out
                or attempt == attempts
                or retry_action(strategy, result.exit_code, result.status_reason, result.container_reason) == "EXIT"
            )
            self._report(
                run,
                status="FAILED" if final else "RUNNABLE",
                exitCode=result.exit_code,
                reason=result.container_reason or result.status_reason,
                statusReason=result.status_reason if final else None,
            )
            if final:
                run.status, run.status_reason = "FAILED", result.status_reason
                return run
        return run

    def _attempt(
        self,
        environment: Mapping[str, str],
        job_id: str,
        attempt: int,
        *,
        timeout_seconds: float | None = None,
        kill: Kill | None = None,
    ) -> AttemptResult:
        started = time.perf_counter()
        env = {
            **_base_environment(),
            **environment,
            **self.endpoint_overrides,
            **self.aws.variables(),
            **self.extra_environment,
            "AWS_BATCH_JOB_ID": job_id,
            "AWS_BATCH_JOB_ATTEMPT": str(attempt),
            "AWS_BATCH_JQ_NAME": self.job_queue,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(WORKER_SRC), os.environ.get("PYTHONPATH")])),
        }
        limit = float(timeout_seconds or WORKER_TIMEOUT_SECONDS)
        kill_after = kill.after_seconds if kill is not None and kill.after_seconds < limit else None
        # Its own process group: a signal reaches the worker's children too (ffmpeg), as it reaches a container's.
        process = subprocess.Popen(
            self.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        sent: list[str] = []
        try:
            output, _ = process.communicate(timeout=limit if kill_after is None else kill_after)
        except subprocess.TimeoutExpired:
            # A timeout: SIGTERM, SIGKILL after the grace. A kill: SIGKILL at once.
            output, sent = _stop(process, grace=self.termination_grace_seconds if kill_after is None else None)
        code = process.returncode
        exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as Docker reports it
        timed_out = bool(sent) and kill_after is None
        if timed_out:
            status_reason, container_reason = TIMEOUT_STATUS_REASON, None
        elif sent and kill is not None:
            status_reason, container_reason = kill.status_reason, kill.container_reason
        else:
            status_reason, container_reason = ESSENTIAL_CONTAINER_EXITED, None
        return AttemptResult(
            attempt=attempt,
            exit_code=exit_code,
            seconds=time.perf_counter() - started,
            log_tail=(output or "").strip()[-4000:],
            status_reason=status_reason,
            container_reason=container_reason,
            timed_out=timed_out,
            signals=tuple(sent),
        )

    def _report(self, run: JobRun, **outcome: Any) -> None:
        """Tell the local server the job's new state, then hand the state change event to the rules."""
        body = json.dumps({"jobId": run.job_id, **{k: v for k, v in outcome.items() if v is not None}}).encode()
        request = urllib.request.Request(
            self.aws.endpoint_url + BATCH_JOB_OUTCOME_PATH,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        if not self.event_rules:
            return
        job = self.batch.describe_jobs(jobs=[run.job_id])["jobs"][0]
        event = batch_state_change_event(job, self.aws.region, job["jobArn"].split(":")[4])
        for rule in self.event_rules:
            delivered = rule.deliver(event)
            if delivered is not None:
                run.deliveries.append(delivered)


def _stop(process: subprocess.Popen[str], *, grace: float | None) -> tuple[str, list[str]]:
    """SIGTERM, then SIGKILL if it still runs after `grace` seconds; SIGKILL at once when `grace` is None.
    Returns the process's output and the signals sent."""
    sent: list[str] = []
    if grace is not None:
        sent.append(_signal_group(process, signal.SIGTERM))
        try:
            output, _ = process.communicate(timeout=grace)
            return output, sent
        except subprocess.TimeoutExpired:
            pass
    sent.append(_signal_group(process, signal.SIGKILL))
    output, _ = process.communicate()
    return output, sent


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> str:
    with contextlib.suppress(ProcessLookupError):  # it ended between the timeout and the signal
        os.killpg(process.pid, sig)
    return sig.name


# The detail's fields in "Job state change events" (https://docs.aws.amazon.com/batch/latest/userguide/
# batch_job_events.html), with the example's empty values for those a DescribeJobs answer may leave out.
STATE_CHANGE_DETAIL_DEFAULTS: dict[str, Any] = {
    "attempts": [],
    "retryStrategy": {"attempts": 1, "evaluateOnExit": []},
    "dependsOn": [],
    "parameters": {},
    "container": {},
    "tags": {},
    "propagateTags": False,
    "platformCapabilities": [],
}


def batch_state_change_event(job: Mapping[str, Any], region: str, account: str) -> dict[str, Any]:
    """EventBridge's "Batch Job State Change" event: the DescribeJobs shape of the job under `detail`
    ("AWS Batch job state change events", https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html)."""
    detail = {**json.loads(json.dumps(STATE_CHANGE_DETAIL_DEFAULTS)), **dict(job)}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Batch Job State Change",
        "source": "aws.batch",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [job["jobArn"]],
        "detail": detail,
    }


# --- RDS ----------------------------------------------------------------------------------------------------

SMOKE_DATABASE_DIR = "postgres"  # the stand-in's data directory inside a smoke scratch directory


@dataclass
class LocalDatabase:
    """PostgreSQL 16 + pgvector standing in for the RDS instance, with the deployed secret's master user."""

    data_dir: Path
    server: Any = None

    def start(self, *, username: str, password: str, database: str) -> dict[str, str]:
        """Start (or reuse) the server, create the master user and database; return DB_HOST/DB_PORT."""
        import psycopg
        from psycopg import sql

        self.start_server()
        with psycopg.connect(self.server.get_uri(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            # RDS's master user owns the database; CREATE EXTENSION vector needs it to be allowed (rds_superuser).
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                    sql.Identifier(username), sql.Literal(password)
                )
            )
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(username))
                )
        return {"DB_HOST": self.socket_dir, "DB_PORT": str(self.port)}

    def start_server(self) -> None:
        """Initialize the data directory if it is new and start its server, or attach to the one running there (it
        outlives the process that started it)."""
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(self.data_dir, cleanup_mode=None)

    @property
    def socket_dir(self) -> str:
        from urllib.parse import parse_qs, urlparse

        return parse_qs(urlparse(self.server.get_uri()).query)["host"][0]

    @property
    def port(self) -> int:
        from urllib.parse import urlparse

        return urlparse(self.server.get_uri()).port or 5432

    def uri(self, database: str) -> str:
        return self.server.get_uri(database)

    @staticmethod
    def stop(data_dir: Path) -> bool:
        """Stop the server of `data_dir`, if one runs: it outlives the process that started it (so `status
        --local` can read it), so whoever removes a local deployment stops it. Returns whether one was running."""
        import signal

        pid_file = data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)  # PostgreSQL's "smart" shutdown
        except (OSError, ValueError, IndexError):
            return False
        return True
