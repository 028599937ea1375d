"""Settings: defaults, overrides from TOML and -c, and validation that names the bad setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deepsentinel.settings import DEFAULTS, SettingsError, load_settings


def problems_of(environment: str = "dev", **kwargs) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(environment, **kwargs)
    return str(caught.value)


def test_defaults_differ_only_where_prod_must():
    dev, prod = load_settings("dev"), load_settings("prod")
    assert (dev.db_multi_az, prod.db_multi_az) == (False, True)
    assert (dev.deletion_protection, prod.deletion_protection) == (False, True)
    assert (dev.nat_per_az, prod.nat_per_az) == (False, True)
    assert (dev.night_scale_down, prod.night_scale_down) == (True, False)
    assert dev.prefix == "deepsentinel-dev" and dev.name("jobs") == "deepsentinel-dev-jobs"
    assert dev.region == "ap-northeast-2" and dev.availability_zones == ("ap-northeast-2a", "ap-northeast-2c")


def test_toml_file_then_command_line_overrides(tmp_path: Path):
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('log_retention_days = 60\nuser_names = ["dana", "eve"]\nadmin_user_names = ["dana"]\n'
                             '[prod]\ngpu_max_instances = 8\n[tags]\nCostCenter = "vision"\n')
    dev = load_settings("dev", settings_file=settings_file, overrides=["log_retention_days=90", "gpu_use_spot=true"])
    prod = load_settings("prod", settings_file=settings_file)
    assert dev.log_retention_days == 90 and dev.gpu_use_spot is True
    assert dev.user_names == ("dana", "eve") and dev.gpu_max_instances == 4
    assert prod.gpu_max_instances == 8 and prod.log_retention_days == 60
    assert dev.common_tags["CostCenter"] == "vision"


def test_optional_and_list_values_from_the_command_line():
    s = load_settings("dev", overrides=["domain_name=video.example.com", "gpu_instance_types=g5.xlarge,g5.2xlarge",
                                        "gpu_ami_id=none"])
    assert s.domain_name == "video.example.com"
    assert s.gpu_instance_types == ("g5.xlarge", "g5.2xlarge") and s.gpu_ami_id is None


@pytest.mark.parametrize(("overrides", "expected"), [
    (["vpc_cidr=10.0.0.0/33"], "vpc_cidr: '10.0.0.0/33' is not a valid CIDR"),
    (["public_subnet_cidrs=10.0.1.0/24,10.0.11.0/25"], "overlaps"),
    (["private_subnet_cidrs=10.1.11.0/24,10.0.12.0/24"], "private_subnet_cidrs: 10.1.11.0/24 is not inside vpc_cidr"),
    (["availability_zones=ap-northeast-2a"], "availability_zones: at least 2 are required, got 1"),
    (["service_min_tasks=4"], "service_min_tasks: 4 is above service_max_tasks (3)"),
    (["gpu_min_instances=5"], "gpu_min_instances: 5 is above gpu_max_instances (4)"),
    (["bucket_suffix=Not_Valid"], "is not a valid S3 name"),
    (["gpu_instance_types=m5.xlarge"], "gpu_instance_types: 'm5.xlarge' is not an x86_64 GPU instance type; allowed"),
    (["queue_visibility_timeout_seconds=30"], "queue_visibility_timeout_seconds: 30 must be at least 6 x"),
    (["log_retention_days=10"], "log_retention_days: 10 is not a CloudWatch retention; allowed: 1, 3, 5"),
    (["gpu_ami_id=ubuntu"], "gpu_ami_id: 'ubuntu' is not an AMI id"),
    (["db_multi_az=maybe"], "db_multi_az: expected true or false, got 'maybe'"),
    (["gpu_max_instances=four"], "gpu_max_instances: expected an integer, got 'four'"),
    (["no_such_setting=1"], "no_such_setting: unknown setting; known settings: project, environment"),
])
def test_bad_values_name_the_setting_and_what_is_allowed(overrides, expected):
    assert expected in problems_of(overrides=overrides)


@pytest.mark.parametrize("overrides, expected", [
    # "Supported DB engines for DB instance classes",
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Support.html
    (["db_instance_class=db.t9.nano"], "db_instance_class: 'db.t9.nano' is not an RDS class for PostgreSQL 16"),
    # "Amazon EC2 instance type specifications - Accelerated computing",
    # https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html
    (["gpu_instance_types=g5.huge"], "gpu_instance_types: 'g5.huge' is not an x86_64 GPU instance type"),
    # "Amazon ECS task definition parameters for Fargate", task size,
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
    (["frontend_cpu=300"], "frontend_cpu: 300 is not a Fargate CPU size; allowed: 256, 512, 1024"),
    (["backend_memory_mb=1024"], "backend_memory_mb: 1024 MiB does not fit backend_cpu=1024; allowed: 2048..8192"),
    # "Configuring an Amazon SQS queue to use with Lambda",
    # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html: >= 6 x timeout + batching window
    (["lambda_timeout_seconds=60", "sqs_batching_window_seconds=20", "queue_visibility_timeout_seconds=370"],
     "queue_visibility_timeout_seconds: 370 must be at least 6 x lambda_timeout_seconds + "
     "sqs_batching_window_seconds = 380"),
    (["sqs_batching_window_seconds=301"], "sqs_batching_window_seconds: allowed 0..300, got 301"),
])
def test_values_aws_refuses_fail_before_synth(overrides, expected):
    """Each expectation is AWS's documented limit (the page is named above the case)."""
    assert expected in problems_of(overrides=overrides)


def test_gpu_vcpus_come_from_the_instance_type():
    """g5.xlarge has 4 vCPUs, g5.12xlarge 48 (EC2 accelerated computing specifications): the largest counts."""
    assert load_settings("dev").gpu_vcpus_per_instance == 4
    assert load_settings("dev", overrides=["gpu_instance_types=g5.xlarge,g5.12xlarge"]).gpu_vcpus_per_instance == 48
    assert "gpu_vcpus_per_instance: unknown setting" in problems_of(overrides=["gpu_vcpus_per_instance=8"])


def test_prod_serves_https_unless_plain_http_is_chosen_explicitly():
    assert load_settings("prod").domain_name == "deepsentinel.cloud"
    assert "domain_name: not set, so the ALB would serve the API and the Django admin over plain HTTP" in problems_of(
        "prod", overrides=["domain_name=none"])
    assert load_settings("prod", overrides=["domain_name=none", "allow_plain_http=true"]).domain_name is None


def test_unknown_environment_lists_the_allowed_ones():
    assert "environment: unknown environment 'staging'; allowed: dev, prod" in problems_of("staging")


def test_every_problem_is_reported_at_once():
    problems = problems_of(overrides=["vpc_cidr=nonsense", "service_min_tasks=9", "gpu_instance_types=t3.large"])
    assert "vpc_cidr:" in problems and "service_min_tasks:" in problems and "gpu_instance_types:" in problems


def test_the_defaults_themselves_are_valid():
    for environment in DEFAULTS:
        load_settings(environment)


def test_cli_rejects_bad_settings_before_writing_anything(tmp_path: Path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "deepsentinel.cli", "synth", "--out", str(out),
                             "-c", "vpc_cidr=10.0.0.0/8", "-c", "availability_zones=ap-northeast-2a"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "vpc_cidr: prefix /8 is outside the VPC range /16../28" in result.stderr
    assert "availability_zones: at least 2 are required" in result.stderr
    assert not out.exists()


def test_settings_file_problems_are_named(tmp_path: Path):
    broken = tmp_path / "broken.toml"
    broken.write_text("vpc_cidr = \n")
    assert f"--settings {broken}:" in problems_of(settings_file=broken)
    staging = tmp_path / "staging.toml"
    staging.write_text("[staging]\ngpu_max_instances = 2\n")
    assert "[staging]: unknown table" in problems_of(settings_file=staging)
    assert "--settings" in problems_of(settings_file=tmp_path / "missing.toml")
