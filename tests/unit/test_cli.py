"""The `deepsentinel` command as a user runs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import JSII_MODULES, REPO_ROOT, deepsentinel_in_a_new_process, deepsentinel_in_process


@pytest.fixture
def cli():
    """The command in this process, for what is decided before any process boundary matters (parsing, settings,
    messages): tests/conftest.py deepsentinel_in_process."""
    return deepsentinel_in_process


def test_unknown_environment_is_refused_by_the_parser(cli):
    result = cli("synth", "--env", "staging")
    assert result.returncode == 2 and "invalid choice: 'staging' (choose from 'dev', 'prod')" in result.stderr


def test_help_names_every_command_the_parser_accepts(cli, capsys):
    """Issue 19: the description named 6 of the 12 commands. Every command the parser dispatches is in the
    description's list (in order, nothing else) and has its own help line, and answers its own --help."""
    import argparse
    import re

    from deepsentinel.cli import build_parser
    from deepsentinel.commands import COMMANDS

    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    accepted = list(subparsers.choices)
    assert list(COMMANDS) == accepted
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    listed = " ".join(result.stdout.split("Commands: ", 1)[1].split(";", 1)[0].split())
    assert listed.split(", ") == accepted
    for name in accepted:
        assert re.search(rf"^    {name}\s+\S", result.stdout, re.MULTILINE), f"{name} has no help line"
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([name, "--help"])
        assert exited.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: deepsentinel {name}")


def test_validate_without_synthesized_stacks_says_what_to_do(cli, tmp_path: Path):
    result = cli("validate", "--no-synth", "--out", str(tmp_path))
    assert result.returncode == 1 and "run `deepsentinel synth` first" in result.stderr


def test_synth_refuses_values_aws_refuses_with_exit_2_and_writes_nothing(cli, tmp_path: Path):
    """AWS pages: "Supported DB engines for DB instance classes",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Support.html;
    "Amazon EC2 accelerated computing instance specifications",
    https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html;
    "Amazon ECS task definition parameters for Fargate", task size,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size."""
    out = tmp_path / "out"
    result = cli("synth", "--env", "dev", "--out", str(out), "-c", "db_instance_class=db.t9.nano",
                 "-c", "gpu_instance_types=g5.huge", "-c", "frontend_cpu=300")
    assert result.returncode == 2, result.stderr
    for expected in ("db_instance_class: 'db.t9.nano' is not an RDS class for PostgreSQL 16; allowed: db.t3, db.t4g",
                     "gpu_instance_types: 'g5.huge' is not an x86_64 GPU instance type; allowed families: g4dn, g5",
                     "frontend_cpu: 300 is not a Fargate CPU size; allowed: 256, 512, 1024, 2048, 4096, 8192, 16384"):
        assert expected in result.stderr
    assert not out.exists()


def test_version_names_the_toolkit_cdktf_binding_and_terraform(cli):
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("deepsentinel-infra ") and lines[1] == "cdktf 0.21.0"
    assert lines[2].startswith("cdktf-cdktf-provider-aws 20.1.0") and lines[3].startswith("Terraform v1.")


def test_a_missing_terraform_is_one_error_line_not_a_traceback(cli, tmp_path: Path, monkeypatch):
    (tmp_path / "stacks" / "deepsentinel-dev").mkdir(parents=True)
    (tmp_path / "stacks" / "deepsentinel-dev" / "cdk.tf.json").write_text("{}")
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python, but no terraform
    result = cli("validate", "--no-synth", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: terraform is not on PATH (install 1.11 or newer: https://developer.hashicorp.com/terraform/install)"]


def test_a_wrong_provider_mirror_is_named(cli, tmp_path: Path, monkeypatch):
    (tmp_path / "stacks" / "deepsentinel-dev").mkdir(parents=True)
    (tmp_path / "stacks" / "deepsentinel-dev" / "cdk.tf.json").write_text("{}")
    monkeypatch.setenv("DEEPSENTINEL_TF_PLUGIN_MIRROR", str(tmp_path / "no-such-mirror"))
    result = cli("validate", "--no-synth", "--out", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "DEEPSENTINEL_TF_PLUGIN_MIRROR=" in result.stderr and "is not a directory" in result.stderr


def test_every_stack_output_is_described(platform):
    from deepsentinel.stacks.names import OUTPUT_DESCRIPTIONS

    for stack in ("deepsentinel-dev", "deepsentinel-prod"):
        outputs = platform.documents[stack]["output"]
        assert set(outputs) == set(OUTPUT_DESCRIPTIONS)
        assert all(o["description"] == OUTPUT_DESCRIPTIONS[n] for n, o in outputs.items())


def test_output_without_a_local_deployment_says_how_to_make_one(cli, tmp_path: Path):
    """(The outputs of a deployment are read in tests/live/test_platform.py, on the deployed platform.)"""
    result = cli("output", "--local", "--workdir", str(tmp_path / "none"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no local deployment of dev is running in {tmp_path / 'none'}: run "
        "`deepsentinel deploy --local --env dev` first"]


@pytest.mark.parametrize("command", [["output"], ["destroy"], ["smoke"], ["status", "a-video"], ["redrive"]],
                         ids=lambda command: command[0])
def test_a_command_that_synthesizes_nothing_starts_no_jsii_runtime(tmp_path: Path, command: list[str]):
    """Before its first word: importing cdktf starts jsii's node and loads the provider binding (`output --local`
    with no deployment took 7.1 s, `destroy --local` with no server 5.8 s; both 0.6 s without, 2026-12-03)."""
    workdir = tmp_path / "none"
    done, jsii = deepsentinel_in_a_new_process(tmp_path / "imported.json", *command, "--local", "--workdir",
                                               str(workdir))
    assert done.returncode in (0, 1), done.stderr  # 1: nothing deployed there, which each says in one line
    assert len(done.stdout.strip().splitlines() + done.stderr.strip().splitlines()) == 1, done.stdout + done.stderr
    assert jsii == set(), f"imported {sorted(jsii)} of {sorted(JSII_MODULES)}"


def test_commands_on_aws_without_credentials_say_so_in_one_line(tmp_path: Path, monkeypatch, capsys):
    import os

    from deepsentinel.cli import main

    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    for command in (["plan"], ["bootstrap", "--yes"], ["output"], ["status", "some-video"], ["deploy", "--yes"]):
        assert main([*command, "--env", "dev"]) == 1, command
        assert capsys.readouterr().err.strip().splitlines() == [
            "error: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run "
            "where a role is assumed (GitHub OIDC, an instance profile); --local needs none"], command
    assert not list(tmp_path.iterdir())  # nothing synthesized or written


@pytest.mark.parametrize("old", ["v1.9.8", "v1.10.5"])
def test_an_old_terraform_is_refused_with_the_version_it_needs(cli, tmp_path: Path, old: str, monkeypatch):
    """Write-only arguments (`secret_string_wo`) need Terraform 1.11: "Use temporary write-only arguments",
    https://developer.hashicorp.com/terraform/language/manage-sensitive-data/write-only ("available in Terraform
    v1.11 and later"); 1.10 (S3-native locking alone) is refused too."""
    import os

    fake = tmp_path / "bin" / "terraform"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho 'Terraform {old}'\necho 'on linux_amd64'\n")
    fake.chmod(0o755)
    (tmp_path / "stacks" / "deepsentinel-dev").mkdir(parents=True)
    (tmp_path / "stacks" / "deepsentinel-dev" / "cdk.tf.json").write_text("{}")
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    result = cli("validate", "--no-synth", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {fake} is Terraform {old}; DeepSentinel needs Terraform 1.11 or newer (write-only arguments keep the "
        "generated secrets out of the state): "
        "https://developer.hashicorp.com/terraform/install"]


def test_addresses_without_a_snapshot_names_the_file_and_the_fix(cli, tmp_path: Path):
    result = cli("addresses", "--env", "dev", "--out", str(tmp_path / "out"), "--snapshot-dir", str(tmp_path / "none"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no address snapshot of deepsentinel-dev at {tmp_path / 'none' / 'deepsentinel-dev.txt'}: record one "
        "with `deepsentinel addresses --update` (and commit it), or pass --snapshot-dir")


def test_addresses_json_reports_each_stack(cli, tmp_path: Path):
    import json
    import shutil

    snapshots = tmp_path / "snapshots"
    shutil.copytree(REPO_ROOT / "addresses", snapshots)
    dev = snapshots / "deepsentinel-dev.txt"
    dev.write_text("".join(line + "\n" for line in dev.read_text().split()[1:]) + "aws_s3_bucket.gone\n")
    result = cli("addresses", "--out", str(tmp_path / "out"), "--snapshot-dir", str(snapshots), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"deepsentinel-dev", "deepsentinel-prod", "deepsentinel-account"}
    assert report["deepsentinel-dev"]["removed_stateful"] == ["aws_s3_bucket.gone"]
    assert len(report["deepsentinel-dev"]["added"]) == 1 and report["deepsentinel-dev"]["clean"] is False


def test_graph_without_graphviz_says_what_to_install(cli, platform, tmp_path: Path, monkeypatch):
    import shutil

    assert shutil.which("dot") is not None  # the suite itself has Graphviz; this run does not see it
    bin_dir = tmp_path / "bin"  # a PATH without dot
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    result = cli("graph", "--stacks", str(platform.outdir), "--out", str(tmp_path / "g.svg"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: Graphviz's `dot` is not on PATH, needed to draw g.svg (install Debian's graphviz package, or write "
        "--out FILE.dot and render it elsewhere)"]


def test_synth_json_is_one_document_on_stdout(cli, tmp_path: Path):
    import json

    result = cli("synth", "--env", "dev", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"deepsentinel-dev", "deepsentinel-account"}
    dev = report["deepsentinel-dev"]
    assert dev["total"] == sum(dev["modules"].values()) >= 140 and Path(dev["path"]).is_file()
    assert "synthesizing" in result.stderr


def test_plan_without_a_state_backend_points_at_bootstrap(cli, tmp_path: Path):
    from deepsentinel.local.server import LocalAws

    with LocalAws.start(info_file=tmp_path / "server.json") as server:  # a fresh "account": nothing bootstrapped
        result = cli("plan", "--local", "--workdir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no state backend: the bucket deepsentinel-tfstate does not exist on the moto server on "
        f"{server.endpoint_url}; create it with `deepsentinel bootstrap --local --workdir {tmp_path}`"]


def test_status_names_jobs_as_sqs_to_batch_does():
    """`status` runs where the Lambda's own package is not importable, so it keeps its own copy of the rule."""
    from deepsentinel.commands.status import job_name_for
    from lambdas.sqs_to_batch.handler import job_name_for as submitters

    for video_id in ("cam-01_2026", "a/b c.mp4", "x" * 200, "비디오-1", "jobs-api-0123456789abcdef"):
        assert job_name_for(video_id) == submitters(video_id)


def test_every_terraform_ci_installs_meets_the_minimum():
    """The workflows' hashicorp/setup-terraform pins and .ci/run's check ask for at least the version the stacks
    need (write-only arguments: Terraform 1.11)."""
    import re

    import yaml

    from deepsentinel.terraform import MINIMUM_VERSION, parse_version

    pins = []
    for workflow in sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("hashicorp/setup-terraform"):
                    pins.append((workflow.name, step["with"]["terraform_version"]))
    assert pins
    for name, pin in pins:
        assert parse_version(f"v{pin}") >= MINIMUM_VERSION, (name, pin)
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"terraform_minimum=\"?" + re.escape(".".join(map(str, MINIMUM_VERSION))), ci)
    assert MINIMUM_VERSION == (1, 11)
