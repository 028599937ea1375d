"""`deepsentinel redrive [--env] [--local] [--workdir DIR] [--dry-run] [--max N] [--drop-done] [--json]`.

The jobs queue's dead-letter queue holds the job messages sqs_to_batch failed max_receive_count times. For each one
this lists the video it names and why it failed, read as `deepsentinel status` reads it (the claim in the idempotency
table, the video's Batch job: deepsentinel.commands.status), and moves back to the jobs queue the messages whose video
can be submitted again:

* moved: no claim holds the video (none was taken, sqs_to_batch released it after a failed submit, the failure
  monitor released it after the job FAILED, or it expired) and no Batch job of the video is running or succeeded;
* left: the video is done (its Batch job SUCCEEDED; deleted from the DLQ only with --drop-done), in progress (a job
  of it is queued or running), held (a live claim would make sqs_to_batch acknowledge a resend as a duplicate
  without a job), or the body is malformed (sqs_to_batch's own parser refuses it; resending could only fail again).

How: SQS's message-move task (StartMessageMoveTask, DLQ -> jobs queue) when every message in the DLQ is to be moved,
since a task moves the whole queue and SQS cannot filter or modify messages during a redrive ("Learn how to configure
a dead-letter queue redrive in Amazon SQS", SQS Developer Guide; a FIFO DLQ redrives into a FIFO queue). Else
(or where the task is unavailable: the local moto server does not implement it) one message at a time: SendMessage
to the jobs queue, then DeleteMessage from the DLQ. On a FIFO jobs queue the resend carries the message's own
MessageGroupId (the video's group) and, as MessageDeduplicationId, the DLQ message's id, so a resend repeated
within SQS's 5-minute deduplication interval (a delete that failed, then a second run) is dropped by SQS.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import deepsentinel
from deepsentinel.commands import arguments
from deepsentinel.commands.status import describe_claim, read_claim, read_job

# Beside the package in the checkout (the package's parent, wherever this module sits inside it).
SUBMITTER_HANDLER = Path(deepsentinel.__file__).resolve().parents[1] / "lambdas" / "sqs_to_batch" / "handler.py"
# Long enough to look every listed message's video up before any of them is received by someone else again.
LISTING_VISIBILITY_SECONDS = 600
RECEIVE_WAIT_SECONDS = 1  # long polling asks every SQS server, so an empty answer means an empty queue
SQS_BATCH_LIMIT = 10  # ReceiveMessage's MaxNumberOfMessages and ChangeMessageVisibilityBatch's entries
MOVE_TASK_WAIT_SECONDS = 300
MOVE_TASK_POLL_SECONDS = 2
PROGRESS_EVERY = 25
# AWS Batch "Job states": a job in one of these will still run; SUCCEEDED and FAILED are final.
ACTIVE_JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")

REDRIVABLE, DONE, IN_PROGRESS, HELD, MALFORMED = "redrivable", "done", "in-progress", "held", "malformed"
MOVED, MOVING, LEFT, DROPPED, ERROR = "moved", "moving", "left", "dropped", "error"
WOULD_MOVE, WOULD_DROP = "would move", "would drop"
MOVE_TASK, ONE_BY_ONE = "message-move task", "receive + send + delete"

Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Queues:
    dlq_url: str
    dlq_arn: str
    jobs_url: str
    jobs_arn: str
    table: str  # the idempotency table
    job_queue: str  # the Batch job queue

    @property
    def fifo(self) -> bool:
        return self.jobs_url.endswith(".fifo")


@dataclass(kw_only=True)
class DeadMessage:
    message_id: str
    body: str
    receipt_handle: str = field(repr=False)
    group_id: str | None = None  # FIFO queues: the group the sender chose (one per video)
    attributes: dict[str, Any] = field(default_factory=dict)  # the sender's message attributes
    video_id: str | None = None
    verdict: str = ""
    reason: str = ""
    claim: dict[str, Any] | None = None
    job: dict[str, Any] | None = None
    claim_summary: str = ""
    action: str = ""
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for internal in ("receipt_handle", "attributes"):
            data.pop(internal)
        return data


@dataclass(kw_only=True)
class RedriveReport:
    dlq_url: str
    jobs_queue_url: str
    dry_run: bool
    messages: list[DeadMessage]
    method: str | None = None  # MOVE_TASK, ONE_BY_ONE, or None when nothing was moved
    method_reason: str = ""
    task: dict[str, Any] | None = None  # the move task as ListMessageMoveTasks last reported it

    @property
    def failed(self) -> bool:
        return any(m.action == ERROR for m in self.messages)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for message in self.messages:
            counts[message.action] = counts.get(message.action, 0) + 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "dlq_url": self.dlq_url,
            "jobs_queue_url": self.jobs_queue_url,
            "dry_run": self.dry_run,
            "method": self.method,
            "method_reason": self.method_reason,
            "task": self.task,
            "counts": self.counts(),
            "messages": [m.as_json() for m in self.messages],
        }


# --- the command -----------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    arguments.add_settings_arguments(parser, multiple_envs=False, out_help=None)
    arguments.add_local_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="list the messages and what would happen; move none")
    parser.add_argument("--max", type=_positive, default=None, metavar="N", help="move at most N messages")
    parser.add_argument(
        "--drop-done",
        action="store_true",
        help="delete from the DLQ the messages of videos already done (default: left and reported)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def run(args: argparse.Namespace) -> int:
    (settings,) = arguments.settings_from_args(args, default_envs=("dev",))
    from deepsentinel.errors import OperationFailed
    from deepsentinel.target import deployed_outputs, target_from_args

    target = target_from_args(args, settings)
    outputs = deployed_outputs(target)
    if "jobs_dlq_url" not in outputs:
        raise OperationFailed(f"deepsentinel-{settings.environment} is not deployed on {target.where}")
    sqs = target.client("sqs")
    report = redrive(
        sqs=sqs,
        dynamodb=target.client("dynamodb"),
        batch=target.client("batch"),
        queues=queues_from_outputs(sqs, outputs),
        dry_run=args.dry_run,
        max_moves=args.max,
        drop_done=args.drop_done,
        say=progress,
        # moto (the local server) answers StartMessageMoveTask with HTTP 500, "not implemented".
        move_task=None if target.local else True,
    )
    if args.json:
        print(json.dumps(report.as_json(), indent=2, default=str))
    else:
        print(render(report))
    return 1 if report.failed else 0


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # stdout is the result (one JSON document with --json)


def queues_from_outputs(sqs: Any, outputs: dict[str, Any]) -> Queues:
    def arn(url: str) -> str:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    return Queues(
        dlq_url=outputs["jobs_dlq_url"],
        dlq_arn=arn(outputs["jobs_dlq_url"]),
        jobs_url=outputs["jobs_queue_url"],
        jobs_arn=arn(outputs["jobs_queue_url"]),
        table=outputs["idempotency_table_name"],
        job_queue=outputs["job_queue_arn"],
    )


# --- what is in the DLQ, and why --------------------------------------------------------------------------------


def redrive(
    *,
    sqs: Any,
    dynamodb: Any,
    batch: Any,
    queues: Queues,
    dry_run: bool = False,
    max_moves: int | None = None,
    drop_done: bool = False,
    move_task: bool | None = True,
    say: Say = lambda _: None,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveReport:
    """List, classify, then move (or, dry, say what would move). move_task: True to use the message-move task
    where it fits, False never, None: unavailable here (the local server)."""
    say(f"reading {queues.dlq_url.rsplit('/', 1)[-1]} ...")
    messages = receive_all(sqs, queues.dlq_url)
    report = RedriveReport(dlq_url=queues.dlq_url, jobs_queue_url=queues.jobs_url, dry_run=dry_run, messages=messages)
    try:
        classify_all(messages, dynamodb=dynamodb, batch=batch, queues=queues, now=now(), say=say)
        movable = [m for m in messages if m.verdict == REDRIVABLE]
        chosen = movable[:max_moves] if max_moves is not None else movable
        for message in messages:
            message.action = LEFT
        if dry_run:
            for message in chosen:
                message.action = WOULD_MOVE
            for message in (m for m in messages if drop_done and m.verdict == DONE):
                message.action = WOULD_DROP
            return report
        if drop_done:
            for message in (m for m in messages if m.verdict == DONE):
                drop(sqs, queues, message)
        if not chosen:
            return report
        report.method, report.method_reason = choose_method(sqs, queues, messages, chosen, move_task)
        if report.method == MOVE_TASK:
            release(sqs, queues.dlq_url, messages)  # the task moves what is visible
            report.task = run_move_task(sqs, queues, chosen, say=say, sleep=sleep)
            return report
        else:
            for number, message in enumerate(chosen, 1):
                move_one(sqs, queues, message)
                if number % PROGRESS_EVERY == 0 or number == len(chosen):
                    say(f"moved {number}/{len(chosen)}")
        return report
    finally:
        # What stays in the DLQ is visible again at once, not after the listing's visibility timeout.
        if report.method != MOVE_TASK:  # released before the task started
            release(sqs, queues.dlq_url, [m for m in messages if m.action not in (MOVED, DROPPED)])


def receive_all(sqs: Any, dlq_url: str) -> list[DeadMessage]:
    """Every visible message, each kept invisible (to others) for LISTING_VISIBILITY_SECONDS; in receive order,
    which on a FIFO queue is each group's order."""
    messages: dict[str, DeadMessage] = {}
    while True:
        received = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=SQS_BATCH_LIMIT,
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            VisibilityTimeout=LISTING_VISIBILITY_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return list(messages.values())
        for raw in received:
            # A message received twice keeps its latest receipt handle (DeleteMessage needs the latest).
            messages[raw["MessageId"]] = DeadMessage(
                message_id=raw["MessageId"],
                body=raw.get("Body", ""),
                receipt_handle=raw["ReceiptHandle"],
                group_id=(raw.get("Attributes") or {}).get("MessageGroupId"),
                attributes=resendable_attributes(raw.get("MessageAttributes") or {}),
            )


def resendable_attributes(received: dict[str, Any]) -> dict[str, Any]:
    """ReceiveMessage's MessageAttributeValue as SendMessage takes it (only the set value fields)."""
    return {
        name: {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
        for name, value in received.items()
    }


def classify_all(
    messages: list[DeadMessage], *, dynamodb: Any, batch: Any, queues: Queues, now: float, say: Say
) -> None:
    looked_up: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
    for number, message in enumerate(messages, 1):
        classify(message, dynamodb=dynamodb, batch=batch, queues=queues, now=now, looked_up=looked_up)
        if number % PROGRESS_EVERY == 0:
            say(f"looked up {number}/{len(messages)} message(s)")


def classify(
    message: DeadMessage,
    *,
    dynamodb: Any,
    batch: Any,
    queues: Queues,
    now: float,
    looked_up: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    video_id, problem = parse_job_message(message.body)
    message.video_id = video_id
    if problem is not None:
        message.verdict, message.reason = MALFORMED, f"malformed: {problem}"
        return
    assert video_id is not None
    if video_id not in looked_up:
        claim = read_claim(dynamodb, queues.table, video_id)
        looked_up[video_id] = (
            claim,
            read_job(batch, queues.job_queue, video_id, job_id=claim.get("job_id") if claim else None),
        )
    message.claim, message.job = looked_up[video_id]
    message.claim_summary = describe_claim({"claim": message.claim, "job": message.job})
    message.verdict, message.reason = verdict_for(message.claim, message.job, now=now)


def parse_job_message(body: str) -> tuple[str | None, str | None]:
    """(video id, None) for a body sqs_to_batch accepts; else (the video id if it has one, what is wrong), in the
    submitter's own words: its parser is the one that refused the message."""
    submitter = submitter_module()
    try:
        message = submitter.parse_body(body)
    except submitter.InvalidMessageError as error:
        return error.video_id, str(error)
    return message.video_id, None


@lru_cache(maxsize=1)
def submitter_module() -> Any:
    """lambdas/sqs_to_batch/handler.py, loaded from its file (the function folders are not a package)."""
    from deepsentinel.errors import OperationFailed

    if not SUBMITTER_HANDLER.is_file():
        raise OperationFailed(
            f"redrive reads messages with sqs_to_batch's own parser, {SUBMITTER_HANDLER}: not found "
            "(run from the repository checkout, as for synth)"
        )
    name = "deepsentinel_redrive_sqs_to_batch"
    spec = importlib.util.spec_from_file_location(name, SUBMITTER_HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def verdict_for(claim: dict[str, Any] | None, job: dict[str, Any] | None, *, now: float) -> tuple[str, str]:
    """Whether a resend would give the video a job, from what the pipeline recorded, and why."""
    if job is not None and job["status"] == "SUCCEEDED":
        return DONE, f"done: its Batch job {job['job_id']} SUCCEEDED"
    if job is not None and job["status"] in ACTIVE_JOB_STATUSES:
        return IN_PROGRESS, f"in progress: its Batch job {job['job_id']} is {job['status']}"
    # sqs_to_batch treats an expired claim as free (its TTL sweep can lag by hours).
    if claim and int(claim.get("expires_at") or 0) > now:
        until = datetime.fromtimestamp(int(claim["expires_at"]), UTC).strftime("%Y-%m-%d %H:%M UTC")
        return HELD, (
            f"held: its {claim.get('status')} claim stands until {until}; sqs_to_batch would acknowledge "
            "a resend as a duplicate without a job"
        )
    if job is not None:  # FAILED: the failure monitor released the claim
        return REDRIVABLE, f"failed: {describe_job(job)}"
    return REDRIVABLE, "failed before a job was submitted (no Batch job of the video)"


def describe_job(job: dict[str, Any]) -> str:
    last = job["attempts"][-1] if job.get("attempts") else {}
    exit_code = f", exit {last['exit_code']}" if last.get("exit_code") is not None else ""
    reason = job.get("status_reason") or last.get("reason") or "no reason given"
    return f"job {job['job_id']} FAILED ({reason}{exit_code})"


# --- moving ---------------------------------------------------------------------------------------------------


def choose_method(
    sqs: Any, queues: Queues, messages: list[DeadMessage], chosen: list[DeadMessage], move_task: bool | None
) -> tuple[str, str]:
    if move_task is None:
        return ONE_BY_ONE, "the local server (moto) does not implement the message-move task"
    if not move_task:
        return ONE_BY_ONE, "message-move task not requested"
    if len(chosen) < len(messages):
        return ONE_BY_ONE, (
            f"{len(messages) - len(chosen)} message(s) stay in the DLQ, and a message-move task "
            "moves the whole queue (SQS does not filter messages during a redrive)"
        )
    unavailable = move_task_unavailable(sqs, queues.dlq_arn)
    if unavailable:
        return ONE_BY_ONE, unavailable
    return MOVE_TASK, "every message in the DLQ is to be moved"


def move_task_unavailable(sqs: Any, dlq_arn: str) -> str | None:
    """Why the move task cannot be used here (no permission, a task already running), or None."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1).get("Results", [])
    except (ClientError, BotoCoreError) as error:
        return f"ListMessageMoveTasks failed ({_error_code(error)})"
    if tasks and tasks[0].get("Status") in ("RUNNING", "CANCELLING"):
        return f"a message-move task is already {tasks[0]['Status']} on the DLQ (one per queue at a time)"
    return None


def run_move_task(
    sqs: Any, queues: Queues, chosen: list[DeadMessage], *, say: Say, sleep: Callable[[float], None]
) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        handle = sqs.start_message_move_task(SourceArn=queues.dlq_arn, DestinationArn=queues.jobs_arn)["TaskHandle"]
    except (ClientError, BotoCoreError) as error:
        for message in chosen:
            message.action, message.error = ERROR, f"StartMessageMoveTask failed: {error}"
        return {"status": "NOT_STARTED", "error": str(error)}
    say(f"message-move task started ({len(chosen)} message(s))")
    waited, task = 0.0, {"TaskHandle": handle, "Status": "RUNNING"}
    while waited < MOVE_TASK_WAIT_SECONDS:
        results = sqs.list_message_move_tasks(SourceArn=queues.dlq_arn, MaxResults=1).get("Results", [])
        task = {**(results[0] if results else task), "TaskHandle": handle}
        if task.get("Status") != "RUNNING":
            break
        say(
            f"message-move task: {task.get('ApproximateNumberOfMessagesMoved', 0)}/"
            f"{task.get('ApproximateNumberOfMessagesToMove', len(chosen))} moved"
        )
        sleep(MOVE_TASK_POLL_SECONDS)
        waited += MOVE_TASK_POLL_SECONDS
    status = task.get("Status")
    for message in chosen:
        if status == "COMPLETED":
            message.action = MOVED
        elif status == "RUNNING":  # still moving after MOVE_TASK_WAIT_SECONDS: not an error
            message.action = MOVING
        else:
            message.action = ERROR
            message.error = f"message-move task {status}: {task.get('FailureReason') or 'no reason given'}"
    return task


def move_one(sqs: Any, queues: Queues, message: DeadMessage) -> None:
    """SendMessage to the jobs queue, then DeleteMessage from the DLQ; a failure is recorded on the message."""
    from botocore.exceptions import BotoCoreError, ClientError

    sent: dict[str, Any] = {"MessageAttributes": message.attributes} if message.attributes else {}
    if queues.fifo:
        # SendMessage on a FIFO queue requires MessageGroupId; the explicit deduplication id overrides the queue's
        # content-based one (Amazon SQS API Reference, SendMessage).
        sent["MessageGroupId"] = message.group_id or message.video_id
        sent["MessageDeduplicationId"] = message.message_id
    try:
        sqs.send_message(QueueUrl=queues.jobs_url, MessageBody=message.body, **sent)
    except (ClientError, BotoCoreError) as error:
        message.action, message.error = ERROR, f"not sent to the jobs queue: {error}"
        return
    try:
        sqs.delete_message(QueueUrl=queues.dlq_url, ReceiptHandle=message.receipt_handle)
    except (ClientError, BotoCoreError) as error:
        message.action = ERROR
        message.error = (
            f"sent to the jobs queue but not deleted from the DLQ ({error}); a resend is acknowledged "
            "by sqs_to_batch as a duplicate"
        )
        return
    message.action = MOVED


def drop(sqs: Any, queues: Queues, message: DeadMessage) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sqs.delete_message(QueueUrl=queues.dlq_url, ReceiptHandle=message.receipt_handle)
    except (ClientError, BotoCoreError) as error:
        message.action, message.error = ERROR, f"not deleted from the DLQ: {error}"
        return
    message.action = DROPPED


def release(sqs: Any, url: str, messages: list[DeadMessage]) -> None:
    """Visible again now (ChangeMessageVisibility to 0: "Amazon SQS visibility timeout"); on failure they are
    visible again after the listing's timeout anyway."""
    from botocore.exceptions import BotoCoreError, ClientError

    for start in range(0, len(messages), SQS_BATCH_LIMIT):
        chunk = messages[start : start + SQS_BATCH_LIMIT]
        with contextlib.suppress(ClientError, BotoCoreError):
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(number), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                    for number, m in enumerate(chunk)
                ],
            )


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or type(error).__name__)


# --- output ---------------------------------------------------------------------------------------------------


def render(report: RedriveReport) -> str:
    if not report.messages:
        return f"the DLQ {report.dlq_url.rsplit('/', 1)[-1]} is empty: nothing to redrive"
    lines = [render_line(m) for m in report.messages]
    counts = report.counts()
    summary = ", ".join(f"{count} {action}" for action, count in sorted(counts.items()))
    how = f" with the {report.method} ({report.method_reason})" if report.method else ""
    lines.append(f"{len(report.messages)} message(s) in the DLQ: {summary}{how}")
    return "\n".join(lines)


def render_line(message: DeadMessage) -> str:
    video = message.video_id or "-"
    line = f"{message.action:<10} {message.message_id}  video {video}: {message.reason}"
    if message.verdict != MALFORMED:
        line += f"; claim: {message.claim_summary}"
    if message.error:
        line += f"; error: {message.error}"
    return line
