"""`--live-keep` and the sweeper on a small deployment of its own: kept, found by its record, destroyed.

Marked slow (about a minute, two minutes beside the other live deployments' destroys): it checks the test
harness, not the platform. Run it with `pytest -m slow tests/live/test_sweep.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.live.harness import RECORD, STACK, Deployment


def build_queue_and_bucket(app: Any, settings: Any, options: Any) -> None:
    from cdktf import TerraformStack
    from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
    from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue

    from deepsentinel.stacks.provider import configure_stack

    stack = TerraformStack(app, STACK)
    configure_stack(stack, settings, options, STACK)
    SqsQueue(stack, "queue", name=settings.name("sweep-me"))
    S3Bucket(stack, "bucket", bucket=settings.bucket_name("sweep-me"), force_destroy=True)


@pytest.mark.slow  # a deployment of its own (about a minute) to check the test harness's sweeper, not the platform;
# as a live test it would run on the live worker, whose path bounds the default suite (docs/testing.md#tests)
def test_a_kept_deployment_outlives_its_run_and_the_sweeper_removes_it(tmp_path: Path):
    from deepsentinel.local.server import LocalAws
    from deepsentinel.settings import load_settings

    workdir = tmp_path / "sweep-me"
    kept = Deployment(name="sweep-me", settings=load_settings("dev"), build=build_queue_and_bucket, workdir=workdir,
                      keep=True, log=lambda _: None)
    kept.prepare()
    kept.start_apply()
    kept.wait_applied(timeout=300)
    kept.destroy()  # --live-keep: nothing is destroyed, the detached server stays up
    assert kept.leftovers is None
    server = LocalAws.find(workdir / "server.json")
    assert server is not None and json.loads((workdir / RECORD).read_text())["prefix"] == "deepsentinel-dev"
    assert [q.rsplit("/", 1)[1] for q in kept.clients("sqs").list_queues()["QueueUrls"]] == ["deepsentinel-dev-sweep-me"]

    listed = subprocess.run([sys.executable, "-m", "tests.live.sweep", "--root", str(tmp_path), "--dry-run"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert f"sweep-me (moto, project deepsentinel, {workdir}): would destroy" in listed.stdout
    assert LocalAws.find(workdir / "server.json") is not None  # a dry run changes nothing

    swept = subprocess.run([sys.executable, "-m", "tests.live.sweep", "--root", str(tmp_path)], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=300)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert "destroyed; nothing of deepsentinel-dev is left" in swept.stdout
    assert not (workdir / RECORD).exists() and LocalAws.find(workdir / "server.json") is None
    again = subprocess.run([sys.executable, "-m", "tests.live.sweep", "--root", str(tmp_path)], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.startswith("nothing to sweep")
