"""The `deepsentinel` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def deepsentinel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deepsentinel.cli", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


def test_synth_one_environment_prints_the_resource_table(tmp_path: Path):
    result = deepsentinel("synth", "--env", "dev", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    modules = {row[1]: int(row[2]) for row in rows if row and row[0] == "deepsentinel-dev" and row[1] != "total"}
    assert set(modules) == {"encryption", "network", "security", "storage", "iam", "compute", "pipeline"}
    total = next(int(row[2]) for row in rows if row[:2] == ["deepsentinel-dev", "total"])
    assert total == sum(modules.values()) >= 140
    assert sorted(p.name for p in (tmp_path / "stacks").iterdir()) == ["deepsentinel-account", "deepsentinel-dev"]
    assert "Node 20 is end-of-life" not in result.stdout + result.stderr


def test_unknown_environment_is_refused_by_the_parser():
    result = deepsentinel("synth", "--env", "staging")
    assert result.returncode == 2 and "invalid choice: 'staging' (choose from 'dev', 'prod')" in result.stderr


def test_validate_without_synthesized_stacks_says_what_to_do(tmp_path: Path):
    result = deepsentinel("validate", "--no-synth", "--out", str(tmp_path))
    assert result.returncode == 1 and "run `deepsentinel synth` first" in result.stderr


def test_synth_refuses_values_aws_refuses_with_exit_2_and_writes_nothing(tmp_path: Path):
    """AWS pages: "Supported DB engines for DB instance classes",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Support.html;
    "Amazon EC2 accelerated computing instance specifications",
    https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html;
    "Amazon ECS task definition parameters for Fargate", task size,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size."""
    out = tmp_path / "out"
    result = deepsentinel("synth", "--env", "dev", "--out", str(out), "-c", "db_instance_class=db.t9.nano",
                          "-c", "gpu_instance_types=g5.huge", "-c", "frontend_cpu=300")
    assert result.returncode == 2, result.stderr
    for expected in ("db_instance_class: 'db.t9.nano' is not an RDS class for PostgreSQL 16; allowed: db.t3, db.t4g",
                     "gpu_instance_types: 'g5.huge' is not an x86_64 GPU instance type; allowed families: g4dn, g5",
                     "frontend_cpu: 300 is not a Fargate CPU size; allowed: 256, 512, 1024, 2048, 4096, 8192, 16384"):
        assert expected in result.stderr
    assert not out.exists()


def test_version_names_the_toolkit_cdktf_binding_and_terraform():
    result = deepsentinel("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("deepsentinel-infra ") and lines[1] == "cdktf 0.21.0"
    assert lines[2].startswith("cdktf-cdktf-provider-aws 20.1.0") and lines[3].startswith("Terraform v1.")


def test_a_missing_terraform_is_one_error_line_not_a_traceback(tmp_path: Path):
    import os

    (tmp_path / "stacks" / "deepsentinel-dev").mkdir(parents=True)
    (tmp_path / "stacks" / "deepsentinel-dev" / "cdk.tf.json").write_text("{}")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # python, but no terraform
    result = subprocess.run([sys.executable, "-m", "deepsentinel.cli", "validate", "--no-synth", "--out",
                             str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: terraform is not on PATH (install 1.11 or newer: https://developer.hashicorp.com/terraform/install)"]


def test_a_wrong_provider_mirror_is_named(tmp_path: Path):
    import os

    (tmp_path / "stacks" / "deepsentinel-dev").mkdir(parents=True)
    (tmp_path / "stacks" / "deepsentinel-dev" / "cdk.tf.json").write_text("{}")
    env = dict(os.environ, DEEPSENTINEL_TF_PLUGIN_MIRROR=str(tmp_path / "no-such-mirror"))
    result = subprocess.run([sys.executable, "-m", "deepsentinel.cli", "validate", "--no-synth", "--out",
                             str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "DEEPSENTINEL_TF_PLUGIN_MIRROR=" in result.stderr and "is not a directory" in result.stderr


def test_every_stack_output_is_described(platform):
    from deepsentinel.stacks.platform import OUTPUT_DESCRIPTIONS

    for stack in ("deepsentinel-dev", "deepsentinel-prod"):
        outputs = platform.documents[stack]["output"]
        assert set(outputs) == set(OUTPUT_DESCRIPTIONS)
        assert all(o["description"] == OUTPUT_DESCRIPTIONS[n] for n, o in outputs.items())


def test_output_prints_the_deployed_values_with_their_descriptions(tmp_path: Path):
    """A deployment's state read back by `terraform output` (a stack of outputs only: no provider needed)."""
    import json

    from deepsentinel import terraform

    stack_dir = tmp_path / "cdktf.out" / "stacks" / "deepsentinel-dev"
    stack_dir.mkdir(parents=True)
    (stack_dir / "cdk.tf.json").write_text(json.dumps({"output": {
        "vpc_id": {"value": "vpc-0abc"}, "bucket_names": {"value": {"raw-videos": "deepsentinel-dev-raw-videos"}}}}))
    env = terraform.environment(tmp_path / ".terraform-cli")
    terraform.init(stack_dir, env=env)
    terraform.apply(stack_dir, env=env)
    result = deepsentinel("output", "--local", "--workdir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "bucket_names": {"value": {"raw-videos": "deepsentinel-dev-raw-videos"}, "description": "S3 bucket per purpose"},
        "vpc_id": {"value": "vpc-0abc", "description": "the environment's VPC"}}
    missing = deepsentinel("output", "--local", "--workdir", str(tmp_path / "none"))
    assert missing.returncode == 1 and missing.stderr.startswith("error: no local deployment of dev")


def test_synth_json_is_one_document_on_stdout(tmp_path: Path):
    import json

    result = deepsentinel("synth", "--env", "dev", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"deepsentinel-dev", "deepsentinel-account"}
    dev = report["deepsentinel-dev"]
    assert dev["total"] == sum(dev["modules"].values()) >= 140 and Path(dev["path"]).is_file()
    assert "synthesizing" in result.stderr
