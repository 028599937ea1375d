"""Compute module: ECS services and scaling, ECR, log groups, Batch GPU capacity."""

from __future__ import annotations

import json

from tests.unit.synth_helpers import of_type, only, ref


def test_fargate_services_sizes_and_circuit_breaker(platform):
    tasks = {t["family"]: t for t in of_type(platform.dev, "aws_ecs_task_definition").values()}
    assert (tasks["deepsentinel-dev-frontend"]["cpu"], tasks["deepsentinel-dev-frontend"]["memory"]) == ("512", "1024")
    assert (tasks["deepsentinel-dev-backend"]["cpu"], tasks["deepsentinel-dev-backend"]["memory"]) == ("1024", "2048")
    for service in of_type(platform.dev, "aws_ecs_service").values():
        assert service["launch_type"] == "FARGATE"
        assert service["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
        assert service["network_configuration"]["assign_public_ip"] is False
    _, cluster = only(platform.dev, "aws_ecs_cluster")
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enabled"}]


def test_backend_secrets_come_from_secrets_manager(platform):
    backend = next(t for t in of_type(platform.dev, "aws_ecs_task_definition").values()
                   if t["family"].endswith("backend"))
    container = json.loads(backend["container_definitions"])[0]
    assert {s["name"] for s in container["secrets"]} == {"DB_USERNAME", "DB_PASSWORD", "DJANGO_SECRET_KEY"}
    assert not [e for e in container["environment"] if "PASSWORD" in e["name"] or "SECRET" in e["name"]]
    # The Django key: the account stack's secret, by the ARN the environment's lookup of it answers.
    (lookup,) = platform.dev["data"]["aws_secretsmanager_secret"]
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]}["DJANGO_SECRET_KEY"] == \
        f"${{data.aws_secretsmanager_secret.{lookup}.arn}}"


def test_autoscaling_targets_policies_and_night_schedule(platform):
    targets = of_type(platform.dev, "aws_appautoscaling_target").values()
    assert {(t["min_capacity"], t["max_capacity"]) for t in targets} == {(1, 3)} and len(targets) == 2
    for p in of_type(platform.dev, "aws_appautoscaling_policy").values():
        config = p["target_tracking_scaling_policy_configuration"]
        assert (config["target_value"], config["scale_out_cooldown"], config["scale_in_cooldown"]) == (70, 60, 300)
        assert config["predefined_metric_specification"]["predefined_metric_type"] == "ECSServiceAverageCPUUtilization"
    actions = {(a["schedule"], a["scalable_target_action"]["min_capacity"], a["scalable_target_action"]["max_capacity"])
               for a in of_type(platform.dev, "aws_appautoscaling_scheduled_action").values()}
    assert actions == {("cron(0 20 * * ? *)", "0", "0"), ("cron(0 9 * * ? *)", "1", "3")}
    assert {a["timezone"] for a in of_type(platform.dev, "aws_appautoscaling_scheduled_action").values()} == {
        "Asia/Seoul"}
    assert not of_type(platform.prod, "aws_appautoscaling_scheduled_action")


def test_ecr_repositories_scan_immutable_and_lifecycle(platform):
    repos = of_type(platform.dev, "aws_ecr_repository")
    assert {r["name"] for r in repos.values()} == {f"deepsentinel-dev/{p}" for p in
                                                   ("frontend", "backend", "video-analysis")}
    for repo in repos.values():
        assert repo["image_tag_mutability"] == "IMMUTABLE"
        assert repo["image_scanning_configuration"] == {"scan_on_push": True}
    for lifecycle in of_type(platform.dev, "aws_ecr_lifecycle_policy").values():
        rules = json.loads(lifecycle["policy"])["rules"]
        assert [r["selection"] for r in rules] == [{"tagStatus": "untagged", "countType": "sinceImagePushed",
                                                    "countUnit": "days", "countNumber": 1}]


def test_log_groups_have_retention(platform):
    for name, group in of_type(platform.dev, "aws_cloudwatch_log_group").items():
        assert group["retention_in_days"] in (14, 30), name


def test_batch_gpu_compute_environment(platform):
    doc = platform.dev
    template_name, template = only(doc, "aws_launch_template")
    assert template["metadata_options"]["http_tokens"] == "required"
    assert template["block_device_mappings"][0]["ebs"]["encrypted"] == "true"
    _, environment = only(doc, "aws_batch_compute_environment")
    resources = environment["compute_resources"]
    assert resources["instance_type"] == ["g5.xlarge"] and resources["type"] == "EC2"
    assert (resources["min_vcpus"], resources["max_vcpus"]) == (0, 16)  # 0..4 g5.xlarge of 4 vCPUs
    assert resources["launch_template"]["launch_template_id"] == ref("aws_launch_template", template_name)
    assert resources["ec2_configuration"][0]["image_type"] == "ECS_AL2_NVIDIA"
    _, queue = only(doc, "aws_batch_job_queue")
    assert queue["priority"] == 10


def test_gpu_settings_reach_the_compute_environment(tmp_path):
    from deepsentinel.app import synth
    from deepsentinel.settings import load_settings
    from deepsentinel.synthesized import load

    settings = load_settings("dev", overrides=["gpu_use_spot=true", "gpu_ami_id=ami-0123456789abcdef0",
                                               "gpu_max_instances=2"])
    document = load(synth([settings], outdir=tmp_path, include_account_stack=False).stacks["deepsentinel-dev"])
    resources = only(document, "aws_batch_compute_environment")[1]["compute_resources"]
    assert (resources["type"], resources["allocation_strategy"]) == ("SPOT", "SPOT_CAPACITY_OPTIMIZED")
    assert resources["ec2_configuration"][0]["image_id_override"] == "ami-0123456789abcdef0"
    assert resources["max_vcpus"] == 8
