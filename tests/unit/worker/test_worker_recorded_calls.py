"""The worker's AWS calls, recorded under the Batch job role and decided with dev's synthesized policies (issue 18
item 1; how calls become authorizations and decisions: tests/unit/test_recorded_calls.py).

The worker runs one real job (`video_worker.__main__.main`: real ffmpeg, the untrained YOLO, PostgreSQL 16 +
pgvector) with the GPU job definition's synthesized environment, references resolved to dev's resources created in
moto (tests/recorded_deployment.py). Only the database endpoint differs: the local PostgreSQL's socket instead of
the RDS address, with the local server's user in the RDS-managed secret, as the smoke's stand-ins do. The detector is
handed in (no weights are published here), so the model's download from the analysis-models bucket is not among
the recorded calls.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from tests.permission_check import unused_grants
from tests.recorded_calls import acting_as, recording
from tests.recorded_deployment import REGION, Recorded, create_in_moto, evaluate
from tests.unit.policy_eval import ALLOW

ROLE = "deepsentinel-dev-batch-job"


def test_the_workers_calls_are_allowed_by_the_job_role(platform: Any, videos: dict[str, Path], pg_url: str,
                                                       detector: Any, tmp_path: Path, tools: Any) -> None:
    from video_worker.__main__ import main
    from video_worker.exit_codes import EXIT_OK

    database = urllib.parse.urlsplit(pg_url)
    socket_dir = urllib.parse.parse_qs(database.query)["host"][0]
    with tools.aws_env(), mock_aws(), recording() as recorder:
        deployment = create_in_moto(platform.dev)
        [definition] = [c for c in deployment.resources("aws_batch_job_definition").values()
                        if c["name"].endswith("-gpu")]
        container = json.loads(deployment.value(definition["container_properties"]))
        assert container["jobRoleArn"].rsplit("/", 1)[-1] == ROLE
        env = {e["name"]: e["value"] for e in container["environment"]}
        db_secret = env["DB_SECRET_ARN"]
        boto3.client("secretsmanager", region_name=REGION).put_secret_value(
            SecretId=db_secret, SecretString=json.dumps({"username": database.username or "postgres",
                                                         "password": database.password or ""}))
        boto3.client("s3", region_name=REGION).upload_file(str(videos["good"]), env["RAW_BUCKET"],
                                                            "raw/cam1-0001.mp4")
        work = tmp_path / "work"
        work.mkdir()
        env.update(VIDEO_ID="cam1-0001", S3_KEY="raw/cam1-0001.mp4", AWS_BATCH_JOB_ATTEMPT="1", DEVICE="cpu",
                   DB_HOST=socket_dir, DB_PORT="5432", DB_NAME=database.path.lstrip("/") or "postgres",
                   IMGSZ=str(tools.imgsz), CONF_THRESHOLD=tools.conf, MAX_DET="20", BATCH_SIZE="4",
                   WORK_DIR=str(work))
        with acting_as(recorder, ROLE):
            assert main(env, detector=detector) == EXIT_OK
        recorded = Recorded(deployment, list(recorder.calls))

    made = {f"{c.service}.{c.operation}" for c in recorded.calls}
    assert {"secretsmanager.GetSecretValue", "s3.GetObject", "s3.PutObject", "sns.Publish"} <= made, made
    identity = recorded.identity(ROLE)
    decisions = evaluate(recorded, ROLE, identity=identity)
    for statement, actions in unused_grants(identity, decisions).items():
        print(f"  {ROLE}: {statement} grants, unused: {', '.join(actions)}")
    denied = [d.describe() for d in decisions if d.outcome != ALLOW]
    assert not denied, "\n".join(denied)
