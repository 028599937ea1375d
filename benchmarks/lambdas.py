"""Lambda handler benchmark: AWS API calls per record and handler time per batch, against moto.

    python benchmarks/lambdas.py [--batches 20] [--records 10]

Calls are counted with a botocore ``before-parameter-build`` hook on the handler's own clients, so the figure is
exactly what the function would send to AWS. Times are wall-clock per ``handler()`` call against
moto's in-process backends: they measure the handler's own overhead plus moto, not AWS latency
(on AWS each call adds roughly 5-20 ms of network round trip, so the call count dominates).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
REGION = "ap-northeast-2"
QUEUE, JOB_DEFINITION, TABLE = "bench-queue", "bench-job", "bench-idempotency"


def load_handler(function: str) -> ModuleType:
    name = f"lambda_{function}_handler"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "lambdas" / function / "handler.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class CallCounter:
    """Counts API calls made through the given clients.

    ``before-parameter-build`` fires for every call before any ``before-call`` handler, so a call that
    a test hook short-circuits is still counted.
    """

    def __init__(self, *clients: Any) -> None:
        self.calls: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-parameter-build", self._hook)

    def _hook(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        calls, self.calls = self.calls, Counter()
        return calls


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    sink = io.StringIO()  # the handlers' JSON log lines
    start = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        result = fn()
    return result, (time.perf_counter() - start) * 1000


def setup_batch_and_table() -> None:
    import boto3

    iam, batch, dynamodb = boto3.client("iam"), boto3.client("batch"), boto3.client("dynamodb")
    role = iam.create_role(RoleName="bench-batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    ce = batch.create_compute_environment(computeEnvironmentName="bench-ce", type="UNMANAGED",
                                          state="ENABLED", serviceRole=role)
    batch.create_job_queue(jobQueueName=QUEUE, priority=10, state="ENABLED",
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}])
    batch.register_job_definition(jobDefinitionName=JOB_DEFINITION, type="container",
                                  containerProperties={"image": "w:1", "vcpus": 1, "memory": 512})
    dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "video_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "video_id", "AttributeType": "S"}])
    os.environ.update(JOB_QUEUE=QUEUE, JOB_DEFINITION=JOB_DEFINITION, IDEMPOTENCY_TABLE=TABLE)


def record(body: Any) -> dict[str, Any]:
    return {"messageId": str(uuid.uuid4()), "body": body if isinstance(body, str) else json.dumps(body)}


def bench_sqs_to_batch(batches: int, size: int) -> list[tuple[str, int, Counter[str], list[float], int]]:
    from botocore.awsrequest import AWSResponse

    module = load_handler("sqs_to_batch")
    module.clients.cache_clear()
    dynamodb, batch = module.clients()
    counter = CallCounter(dynamodb, batch)

    # One video id per batch is made to fail at submit (as a throttled SubmitJob would).
    def fail_unlucky(params: dict[str, Any], **_: Any) -> Any:
        if b"video-unlucky-" in (params.get("body") or b""):
            return AWSResponse("https://injected.invalid", 429, {}, None), {
                "Error": {"Code": "TooManyRequestsException", "Message": "injected"}}
        return None

    batch.meta.events.register("before-call.batch.SubmitJob", fail_unlucky)

    def video(vid: str) -> dict[str, str]:
        return {"video_id": vid, "s3_key": f"raw/{vid}.mp4"}

    scenarios: dict[str, Callable[[int], list[dict[str, Any]]]] = {
        "all new": lambda b: [record(video(f"new-{b}-{i}")) for i in range(size)],
        "all duplicate": lambda b: [record(video(f"new-{b}-{i}")) for i in range(size)],  # replays "all new"
        "mixed 4/3/2/1": lambda b: (
            [record(video(f"mix-{b}-{i}")) for i in range(4)]
            + [record(video(f"new-{b}-{i}")) for i in range(3)]
            + [record("{oops"), record({"video_id": "x"})]
            + [record(video(f"unlucky-{b}"))]
        ),
    }
    rows = []
    for name, make in scenarios.items():
        calls: Counter[str] = Counter()
        times: list[float] = []
        failures = 0
        records = 0
        for b in range(batches):
            event = {"Records": make(b)}
            records += len(event["Records"])
            result, ms = timed(lambda: module.handler(event, None))
            failures += len(result["batchItemFailures"])
            times.append(ms)
            calls += counter.take()
        rows.append((name, records, calls, times, failures))
    return rows


def bench_failure_monitor(runs: int) -> tuple[Counter[str], list[float]]:
    import boto3

    module = load_handler("batch_failure_monitor")
    module.clients.cache_clear()
    os.environ["ALERT_TOPIC_ARN"] = boto3.client("sns").create_topic(Name="bench-alarms")["TopicArn"]
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/aws/batch/job")
    logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName="bench/default/1")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/aws/batch/job", logStreamName="bench/default/1",
                        logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(200)])
    c = module.clients()
    counter = CallCounter(c.logs, c.sns, c.secretsmanager)
    event = {"detail-type": "Batch Job State Change", "detail": {
        "jobName": "video-x", "jobId": "j-1", "status": "FAILED", "statusReason": "Essential container in task exited",
        "container": {"exitCode": 1, "logStreamName": "bench/default/1",
                      "environment": [{"name": "VIDEO_ID", "value": "x"}]}}}
    times = [timed(lambda: module.handler(event, None))[1] for _ in range(runs)]
    return counter.take(), times


def bench_ecr_cleanup(images: int) -> tuple[Counter[str], float, dict[str, Any]]:
    import boto3
    from moto.ecr.models import ecr_backends

    module = load_handler("ecr_cleanup")
    module.clients.cache_clear()
    ecr = boto3.client("ecr")
    ecr.create_repository(repositoryName="bench-repo")
    for i in range(images):
        digest = f"sha256:{uuid.uuid4().hex * 2}"
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"size": 1000 + i, "digest": digest},
                    "layers": [{"size": 1000 + i, "digest": digest}]}
        ecr.put_image(repositoryName="bench-repo", imageManifest=json.dumps(manifest), imageTag=f"t{i}")
    for i, image in enumerate(ecr_backends["123456789012"][REGION].repositories["bench-repo"].images):
        image.image_pushed_at = int(time.time()) - (images - i) * 86400
    os.environ.update(REPOSITORIES="bench-repo", MAX_AGE_DAYS="30", KEEP_LATEST="10", DRY_RUN="false")
    c = module.clients()
    counter = CallCounter(c.ecr, c.batch, c.ecs)
    result, ms = timed(lambda: module.handler({}, None))
    return counter.take(), ms, result["repositories"]["bench-repo"]


def fmt_calls(calls: Counter[str], per: int) -> str:
    return ", ".join(f"{op} {n / per:.2f}" for op, n in sorted(calls.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="batches per scenario (default 20)")
    parser.add_argument("--records", type=int, default=10, help="records per batch (default 10, the SQS maximum)")
    args = parser.parse_args(argv)

    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_DEFAULT_REGION": REGION}.items():
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)  # in-process moto, not a server
    from moto import mock_aws

    with mock_aws(config={"batch": {"use_docker": False}}):
        setup_batch_and_table()
        rows = bench_sqs_to_batch(args.batches, args.records)
        monitor_calls, monitor_times = bench_failure_monitor(args.batches)
        ecr_calls, ecr_ms, ecr_report = bench_ecr_cleanup(60)

    print(f"sqs_to_batch: {args.batches} batches per scenario, {args.records} records per batch, moto in-process")
    header = f"{'scenario':<16}{'records':>8}{'calls/rec':>10}{'fails':>7}{'ms/batch p50':>14}{'p95':>8}  calls per record by operation"
    print(header)
    print("-" * len(header))
    for name, records, calls, times, failures in rows:
        p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
        print(f"{name:<16}{records:>8}{sum(calls.values()) / records:>10.2f}{failures:>7}"
              f"{statistics.median(times):>14.1f}{p95:>8.1f}  {fmt_calls(calls, records)}")
    print()
    print(f"batch_failure_monitor: {len(monitor_times)} FAILED events, "
          f"{sum(monitor_calls.values()) / len(monitor_times):.2f} calls/event ({fmt_calls(monitor_calls, len(monitor_times))}), "
          f"{statistics.median(monitor_times):.1f} ms/event p50")
    print(f"ecr_cleanup: 1 repository of 60 images, {sum(ecr_calls.values())} calls "
          f"({fmt_calls(ecr_calls, 1)}), {ecr_ms:.1f} ms, deleted {ecr_report['deleted']}, "
          f"{ecr_report['bytes_freed']} bytes")


if __name__ == "__main__":
    main()
