"""Settings: defaults, overrides from TOML and -c, and validation that names the bad setting."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from deepsentinel.settings import DEFAULTS, FIELDS, PlatformSettings, SettingsError, load_settings


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
    (["log_retention_days=10"], "log_retention_days: 10 is not a CloudWatch retention; allowed: 1, 3, 5"),
    (["gpu_ami_id=ubuntu"], "gpu_ami_id: 'ubuntu' is not an AMI id"),
    (["db_multi_az=maybe"], "db_multi_az: expected true or false, got 'maybe'"),
    (["gpu_max_instances=four"], "gpu_max_instances: expected an integer, got 'four'"),
    (["no_such_setting=1"], "no_such_setting: unknown setting; known settings: project, environment"),
])
def test_bad_values_name_the_setting_and_what_is_allowed(overrides, expected):
    assert expected in problems_of(overrides=overrides)


@pytest.mark.parametrize("db_class", ["db.t9.nano", "db.m5.micro", "db.t3.24xlarge", "t3.micro"])
def test_db_instance_class_must_be_offered_for_postgresql_16(db_class):
    """AWS page: "Supported DB engines for DB instance classes",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Support.html
    (db.m5 has no micro size, db.t3 stops at 2xlarge)."""
    assert (f"db_instance_class: {db_class!r} is not an RDS class for PostgreSQL 16; allowed: db.t3, db.t4g, db.m5, "
            "db.m6g, db.m6i, db.m7g, db.r5, db.r6g, db.r6i, db.r7g families, e.g. db.t3.micro") in problems_of(
        overrides=[f"db_instance_class={db_class}"])
    for good in ("db.t4g.micro", "db.m7g.16xlarge", "db.r6i.32xlarge"):
        assert load_settings("dev", overrides=[f"db_instance_class={good}"]).db_instance_class == good


@pytest.mark.parametrize("itype", ["g5.huge", "m5.xlarge", "g5g.xlarge", "g4ad.xlarge", "p5.xlarge"])
def test_gpu_instance_types_must_be_x86_64_nvidia_types(itype):
    """AWS page: "Amazon EC2 accelerated computing instance specifications",
    https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html (g5g is Arm and g4ad has AMD GPUs, so neither
    runs the x86_64 ECS_AL2_NVIDIA AMI; p5 comes as 4xlarge and 48xlarge, so p5.xlarge does not exist)."""
    assert (f"gpu_instance_types: {itype!r} is not an x86_64 GPU instance type; allowed families: g4dn, g5, g6, g6e, "
            "gr6, p3, p3dn, p4d, p4de, p5 (e.g. g5.xlarge, g6.2xlarge)") in problems_of(
        overrides=[f"gpu_instance_types=g5.xlarge,{itype}"])


def test_gpu_vcpus_come_from_the_instance_type():
    """AWS page: "Amazon EC2 accelerated computing instance specifications",
    https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html: g5.xlarge has 4 vCPUs, g5.12xlarge 48,
    p4d.24xlarge 96; the largest configured type counts, and the vCPU count is no longer a setting."""
    assert load_settings("dev").gpu_vcpus_per_instance == 4
    assert load_settings("dev", overrides=["gpu_instance_types=g5.12xlarge,g5.xlarge"]).gpu_vcpus_per_instance == 48
    assert load_settings("dev", overrides=["gpu_instance_types=p4d.24xlarge"]).gpu_vcpus_per_instance == 96
    assert "gpu_vcpus_per_instance: unknown setting" in problems_of(overrides=["gpu_vcpus_per_instance=8"])


@pytest.mark.parametrize(("overrides", "expected"), [
    (["frontend_cpu=300"], "frontend_cpu: 300 is not a Fargate CPU size; allowed: 256, 512, 1024, 2048, 4096, 8192, "
                           "16384"),
    (["backend_cpu=3072", "backend_memory_mb=8192"], "backend_cpu: 3072 is not a Fargate CPU size; allowed: 256"),
    (["frontend_cpu=256", "frontend_memory_mb=1536"],
     "frontend_memory_mb: 1536 MiB does not fit frontend_cpu=256; allowed: 512, 1024, 2048"),
    (["frontend_memory_mb=8192"], "frontend_memory_mb: 8192 MiB does not fit frontend_cpu=512; allowed: 1024, 2048, "
                                  "3072, 4096"),
    (["backend_memory_mb=1024"], "backend_memory_mb: 1024 MiB does not fit backend_cpu=1024; allowed: 2048..8192 in "
                                 "steps of 1024"),
    (["backend_cpu=8192", "backend_memory_mb=18432"],
     "backend_memory_mb: 18432 MiB does not fit backend_cpu=8192; allowed: 16384..61440 in steps of 4096"),
    (["backend_cpu=16384", "backend_memory_mb=126976"],
     "backend_memory_mb: 126976 MiB does not fit backend_cpu=16384; allowed: 32768..122880 in steps of 8192"),
])
def test_fargate_cpu_and_memory_must_be_a_task_size(overrides, expected):
    """AWS page: "Amazon ECS task definition parameters for Fargate", task size,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size."""
    assert expected in problems_of(overrides=overrides)


@pytest.mark.parametrize(("cpu", "memory"), [(256, 512), (256, 2048), (512, 4096), (2048, 16384), (4096, 30720),
                                             (8192, 61440), (16384, 32768), (16384, 122880)])
def test_fargate_task_sizes_at_the_edges_are_accepted(cpu, memory):
    """AWS page: "Amazon ECS task definition parameters for Fargate", task size,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size."""
    s = load_settings("dev", overrides=[f"frontend_cpu={cpu}", f"frontend_memory_mb={memory}",
                                        f"backend_cpu={cpu}", f"backend_memory_mb={memory}"])
    assert (s.frontend_cpu, s.backend_memory_mb) == (cpu, memory)


def test_queue_visibility_covers_six_lambda_timeouts_plus_the_batching_window():
    """AWS page: "Using Lambda with Amazon SQS" / "Configuring an Amazon SQS queue to use with Lambda",
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html: visibility >= 6 x function timeout
    (+ MaximumBatchingWindowInSeconds); SQS's VisibilityTimeout maximum is 43200 s ("SetQueueAttributes",
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html) and the
    window's is 300 s ("CreateEventSourceMapping",
    https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html)."""
    defaults = load_settings("dev")
    assert (defaults.lambda_timeout_seconds, defaults.sqs_batching_window_seconds,
            defaults.queue_visibility_timeout_seconds) == (60, 5, 400)
    assert load_settings("dev", overrides=["queue_visibility_timeout_seconds=365"]).queue_visibility_timeout_seconds \
        == 365
    assert ("queue_visibility_timeout_seconds: 364 must be at least 6 x lambda_timeout_seconds + "
            "sqs_batching_window_seconds = 365 (AWS's guidance for SQS event sources); allowed: 365..43200") in \
        problems_of(overrides=["queue_visibility_timeout_seconds=364"])
    assert "queue_visibility_timeout_seconds: 370 must be at least 6 x lambda_timeout_seconds + " \
           "sqs_batching_window_seconds = 380" in problems_of(overrides=[
               "lambda_timeout_seconds=60", "sqs_batching_window_seconds=20", "queue_visibility_timeout_seconds=370"])
    assert ("queue_visibility_timeout_seconds: 43201 is above SQS's maximum visibility timeout; allowed: 365..43200"
            in problems_of(overrides=["queue_visibility_timeout_seconds=43201"]))
    assert "queue_visibility_timeout_seconds: 400 must be at least 6 x lambda_timeout_seconds + " \
           "sqs_batching_window_seconds = 5405" in problems_of(overrides=["lambda_timeout_seconds=900"])
    assert "sqs_batching_window_seconds: allowed 0..300, got 301" in problems_of(
        overrides=["sqs_batching_window_seconds=301", "queue_visibility_timeout_seconds=1000"])
    assert "sqs_batching_window_seconds: allowed 0..300, got -1" in problems_of(
        overrides=["sqs_batching_window_seconds=-1"])
    assert load_settings("dev", overrides=["sqs_batching_window_seconds=0", "queue_visibility_timeout_seconds=360"])


def test_prod_serves_https_unless_plain_http_is_chosen_explicitly():
    assert load_settings("prod").domain_name == "deepsentinel.cloud"
    assert load_settings("prod").allow_plain_http is False
    assert ("domain_name: not set, so the ALB would serve the API and the Django admin over plain HTTP; set "
            "domain_name, or allow_plain_http=true to accept that") in problems_of("prod",
                                                                                   overrides=["domain_name=none"])
    assert load_settings("prod", overrides=["domain_name=none", "allow_plain_http=true"]).domain_name is None


def test_dev_has_no_domain_and_says_so_with_allow_plain_http():
    dev = load_settings("dev")
    assert (dev.domain_name, dev.allow_plain_http) == (None, True)
    assert "domain_name: not set" in problems_of("dev", overrides=["allow_plain_http=false"])
    assert load_settings("dev", overrides=["allow_plain_http=false", "domain_name=video.example.com"])


def test_every_setting_has_a_comment_in_the_reference():
    """The field comments of PlatformSettings are the settings reference: none may be missing."""
    source = inspect.getsource(PlatformSettings).splitlines()
    uncommented = []
    for name in FIELDS:
        index = next(i for i, line in enumerate(source) if re.match(rf"\s+{name}: ", line))
        if "#" not in source[index] and not source[index - 1].strip().startswith("#"):
            uncommented.append(name)
    assert uncommented == []


def test_unknown_environment_lists_the_allowed_ones():
    assert "environment: unknown environment 'staging'; allowed: dev, prod" in problems_of("staging")


def test_every_problem_is_reported_at_once():
    problems = problems_of(overrides=["vpc_cidr=nonsense", "service_min_tasks=9", "gpu_instance_types=t3.large"])
    assert "vpc_cidr:" in problems and "service_min_tasks:" in problems and "gpu_instance_types:" in problems


def test_the_defaults_themselves_are_valid():
    for environment in DEFAULTS:
        load_settings(environment)


def test_cli_rejects_bad_settings_before_writing_anything(tmp_path: Path, capsys):
    from deepsentinel.cli import main

    out = tmp_path / "out"
    code = main(["synth", "--out", str(out), "-c", "vpc_cidr=10.0.0.0/8", "-c", "availability_zones=ap-northeast-2a"])
    assert code == 2
    stderr = capsys.readouterr().err
    assert "vpc_cidr: prefix /8 is outside the VPC range /16../28" in stderr
    assert "availability_zones: at least 2 are required" in stderr
    assert not out.exists()


def test_settings_file_problems_are_named(tmp_path: Path):
    broken = tmp_path / "broken.toml"
    broken.write_text("vpc_cidr = \n")
    assert f"--settings {broken}:" in problems_of(settings_file=broken)
    staging = tmp_path / "staging.toml"
    staging.write_text("[staging]\ngpu_max_instances = 2\n")
    assert "[staging]: unknown table" in problems_of(settings_file=staging)
    assert "--settings" in problems_of(settings_file=tmp_path / "missing.toml")


@pytest.mark.parametrize(("typed", "expected"), [
    ("vpc_cid", "vpc_cid: unknown setting; did you mean vpc_cidr?"),
    ("VPC_CIDR", "VPC_CIDR: unknown setting; did you mean vpc_cidr?"),
    ("domain", "domain: unknown setting; did you mean domain_name?"),
    ("log_retention", "log_retention: unknown setting; did you mean log_retention_days or flow_log_retention_days?"),
])
def test_an_unknown_setting_suggests_the_closest_names_instead_of_listing_all(typed, expected):
    """Issue 19: a typo gets "did you mean", not every setting name; the suggestion is an allowed name."""
    problems = problems_of(overrides=[f"{typed}=1"])
    assert expected in problems
    assert "known settings:" not in problems and "every setting: docs/settings.md" in problems


def test_an_unknown_setting_with_no_close_name_lists_its_family_or_every_setting():
    family = problems_of(overrides=["gpu_count=2"])
    assert ("gpu_count: unknown setting; the gpu_* settings are gpu_instance_types, gpu_min_instances, "
            "gpu_max_instances, gpu_ami_id, gpu_use_spot") in family
    nothing_alike = problems_of(overrides=["no_such_setting=1"])
    assert f"no_such_setting: unknown setting; known settings: {', '.join(FIELDS)}" in nothing_alike


def test_a_misspelt_table_in_the_settings_file_suggests_the_table(tmp_path: Path):
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text("[prdo]\ngpu_max_instances = 8\n[Tags]\nCostCenter = 'vision'\n")
    problems = problems_of(settings_file=settings_file)
    assert f"[prdo]: unknown table in {settings_file}; did you mean [prod]? allowed: [dev], [prod], [tags]" in problems
    assert f"[Tags]: unknown table in {settings_file}; did you mean [tags]? allowed: [dev], [prod], [tags]" in problems


def _file_error(path: Path) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings("dev", settings_file=path)
    return str(caught.value)


def test_a_settings_file_that_cannot_be_used_is_one_line_without_python_errno(tmp_path: Path, monkeypatch):
    """Issue 19: `--settings FILE: no such file`, not `[Errno 2] No such file or directory`. TOML is UTF-8 text
    (toml.io, TOML v1.0.0, "Spec": "A TOML file must be a valid UTF-8 encoded Unicode document")."""
    missing = tmp_path / "missing.toml"
    assert _file_error(missing) == f"--settings {missing}: no such file"
    assert _file_error(tmp_path) == f"--settings {tmp_path}: is a directory, not a TOML file"
    broken = tmp_path / "broken.toml"
    broken.write_text("log_retention_days = 60\nvpc_cidr = \n")
    assert _file_error(broken) == f"--settings {broken}: not TOML: invalid value (at line 2, column 12)"
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes("log_retention_days = 60\nbucket_suffix = 'caf\u00e9'\n".encode("latin-1"))
    assert _file_error(latin1) == f"--settings {latin1}: not TOML: line 2 is not UTF-8 text (TOML files are UTF-8)"
    unreadable = tmp_path / "unreadable.toml"
    unreadable.write_text("log_retention_days = 60\n")

    def refuse(self: Path) -> bytes:  # root reads any file, so the permission error is simulated
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert _file_error(unreadable) == f"--settings {unreadable}: not readable (permission denied)"


def test_cli_says_a_missing_settings_file_in_one_line(tmp_path: Path, capsys):
    from deepsentinel.cli import main

    missing = tmp_path / "missing.toml"
    assert main(["synth", "--env", "dev", "--out", str(tmp_path / "out"), "--settings", str(missing)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: --settings {missing}: no such file"]


def test_notification_addresses_must_be_email_addresses():
    assert "video_events_email: 'ops' is not an e-mail address" in problems_of(overrides=["video_events_email=ops"])


def test_hosted_zone_settings_name_the_zone_the_domain_must_be_in():
    assert load_settings("prod").zone_name == "deepsentinel.cloud"
    sub = load_settings("dev", overrides=["domain_name=dev.deepsentinel.cloud", "hosted_zone_name=deepsentinel.cloud"])
    assert sub.zone_name == "deepsentinel.cloud"
    assert ("hosted_zone_name: domain_name 'video.example.org' is not in the zone 'deepsentinel.cloud'; allowed: the "
            "zone's name or a name under it") in problems_of(
        "dev", overrides=["domain_name=video.example.org", "hosted_zone_name=deepsentinel.cloud"])
    # A suffix that is not a label boundary is another zone.
    assert "is not in the zone" in problems_of(
        "dev", overrides=["domain_name=xdeepsentinel.cloud", "hosted_zone_name=deepsentinel.cloud"])
    assert "hosted_zone_name: set without domain_name" in problems_of("dev", overrides=["hosted_zone_name=a.com"])
    assert "hosted_zones: 'Not A Zone' is not a lowercase DNS name" in problems_of(
        "dev", overrides=["hosted_zones=Not A Zone"])
    assert "hosted_zones: names must be distinct" in problems_of("dev", overrides=["hosted_zones=a.com,a.com"])


def test_database_windows_fall_in_the_hours_the_night_stop_lets_it_run():
    """RDS takes no automated backup while an instance is stopped ("Stopping an Amazon RDS DB instance
    temporarily", RDS User Guide), windows are UTC, at least 30 minutes, and the backup and maintenance windows must
    not overlap ("Backup window"; "Maintaining a DB instance"). Dev stops its database 20:00-08:45 KST, so its
    windows are at noon KST; prod (no night stop) keeps 02:00 KST."""
    dev, prod = load_settings("dev"), load_settings("prod")
    assert (dev.db_backup_window, dev.db_maintenance_window) == ("03:00-03:30", "wed:04:00-wed:04:30")
    assert (prod.db_backup_window, prod.db_maintenance_window) == ("17:00-18:00", "sun:18:30-sun:19:30")
    # 02:00 KST (17:00 UTC) is inside dev's stop: refused, with the running hours named.
    assert ("db_backup_window: 17:00-18:00 UTC falls while db_night_stop has the instance stopped (it runs "
            "cron(45 8 * * ? *) to cron(0 20 * * ? *) in Asia/Seoul)") in problems_of(
        "dev", overrides=["db_backup_window=17:00-18:00"])
    assert "db_maintenance_window: sun:18:30-sun:19:30 UTC falls while" in problems_of(
        "dev", overrides=["db_maintenance_window=sun:18:30-sun:19:30"])
    # 10:50-11:00 UTC is 19:50-20:00 KST: the last running minutes; 11:00 KST + 30 min crosses the stop.
    load_settings("dev", overrides=["db_backup_window=10:30-11:00"])
    assert "falls while" in problems_of("dev", overrides=["db_backup_window=10:45-11:15"])
    # Without the night stop any valid window goes.
    load_settings("dev", overrides=["db_night_stop=false", "db_backup_window=17:00-18:00"])
    assert "shorter than RDS's minimum of 30 minutes" in problems_of("prod", overrides=["db_backup_window=17:00-17:20"])
    assert "overlaps db_maintenance_window" in problems_of(
        "prod", overrides=["db_backup_window=18:00-19:00", "db_maintenance_window=sun:18:30-sun:19:30"])
    # Windows that only touch are refused as well (the local server's CreateDBInstance refuses them).
    assert "overlaps db_maintenance_window" in problems_of(
        "prod", overrides=["db_backup_window=18:00-18:30", "db_maintenance_window=sun:18:30-sun:19:30"])
    assert "overlaps db_maintenance_window" in problems_of(
        "prod", overrides=["db_backup_window=19:30-20:00", "db_maintenance_window=sun:18:30-sun:19:30"])
    assert "must be hh24:mi-hh24:mi in UTC" in problems_of("prod", overrides=["db_backup_window=2am"])
    assert "must be ddd:hh24:mi-ddd:hh24:mi" in problems_of("prod", overrides=["db_maintenance_window=sunday"])


@pytest.mark.parametrize(("overrides", "expected"), [
    (["raw_video_glacier_after_days=-1"],
     "raw_video_glacier_after_days: allowed 0 or more days (S3 Glacier transitions take 0), or none (no transition), "
     "got -1"),
    (["raw_video_retention_days=0"], "raw_video_retention_days: allowed 31 or more days, or none (kept), got 0"),
    (["raw_video_glacier_after_days=none", "raw_video_retention_days=0"],
     "raw_video_retention_days: allowed 1 or more days, or none (kept), got 0"),
    (["raw_video_retention_days=30"],
     "raw_video_retention_days: 30 is not after raw_video_glacier_after_days (30); allowed 31 or more days"),
    (["raw_video_glacier_after_days=400", "raw_video_retention_days=365"],
     "raw_video_retention_days: 365 is not after raw_video_glacier_after_days (400); allowed 401 or more days"),
    (["raw_video_retention_days=a year"], "raw_video_retention_days: expected an integer, got 'a year'"),
])
def test_raw_video_retention_is_refused_where_s3_would_refuse_it(overrides, expected):
    """The raw bucket's lifecycle rule: a GLACIER transition takes Days "0 or positive integers" (Amazon S3 API
    Reference, "Transition"), an expiration Days "a non-zero positive integer" ("LifecycleExpiration"), and S3
    refuses an expiration not later than the same rule's transition."""
    assert expected in problems_of(overrides=overrides)


def test_raw_video_retention_defaults_keep_todays_lifecycle_and_accept_s3s_minimums():
    for environment in ("dev", "prod"):
        s = load_settings(environment)
        assert (s.raw_video_glacier_after_days, s.raw_video_retention_days) == (30, None)
    s = load_settings("dev", overrides=["raw_video_glacier_after_days=0", "raw_video_retention_days=1"])
    assert (s.raw_video_glacier_after_days, s.raw_video_retention_days) == (0, 1)
    s = load_settings("dev", overrides=["raw_video_glacier_after_days=none", "raw_video_retention_days=1"])
    assert (s.raw_video_glacier_after_days, s.raw_video_retention_days) == (None, 1)
