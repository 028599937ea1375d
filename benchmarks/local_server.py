"""The local server's own CPU: to start, and per request of the kinds a Terraform refresh sends.

    python benchmarks/local_server.py [--rounds 100]

Starts `python -m deepsentinel.local.server` as deploy --local does (LocalAws.start), reads its CPU seconds from
/proc when it answers, then sends `--rounds` rounds of seven read requests (STS GetCallerIdentity, S3 ListBuckets,
IAM ListRoles, SQS ListQueues, KMS ListKeys, CloudWatch Logs DescribeLogGroups, EC2 DescribeVpcs) after one warm-up
round (each service's first request imports and builds its backend: its CPU is printed too), and prints the
server's CPU per request. The client runs in this process; only the server's CPU is counted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3

from deepsentinel.local.server import LocalAws

REGION = "eu-west-1"


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (fields 14 and 15 of /proc/PID/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="rounds of seven requests (default 100)")
    rounds = parser.parse_args().rounds
    started = time.perf_counter()
    server = LocalAws.start()
    try:
        ready, start_cpu = time.perf_counter() - started, cpu_seconds(server.pid)
        options = {"endpoint_url": server.endpoint_url, "region_name": REGION, "aws_access_key_id": "test",
                   "aws_secret_access_key": "test"}
        services = ("sts", "s3", "iam", "sqs", "kms", "logs", "ec2")
        sts, s3, iam, sqs, kms, logs, ec2 = (boto3.client(name, **options) for name in services)

        def one_round() -> None:
            sts.get_caller_identity(), s3.list_buckets(), iam.list_roles(), sqs.list_queues()
            kms.list_keys(), logs.describe_log_groups(), ec2.describe_vpcs()

        one_round()
        before = cpu_seconds(server.pid)
        first_round = before - start_cpu
        for _ in range(rounds):
            one_round()
        per_request = (cpu_seconds(server.pid) - before) / (rounds * 7)
    finally:
        server.stop()
    print(f"local server, {os.cpu_count()} CPUs: answering after {ready:.2f} s, {start_cpu:.2f} CPU-s to start; "
          f"{first_round:.2f} CPU-s for the first round (each backend's first request); "
          f"{per_request * 1000:.2f} ms of its CPU per request ({rounds * 7} requests after a warm-up round)")


if __name__ == "__main__":
    main()
