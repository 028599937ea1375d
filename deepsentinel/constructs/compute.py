"""Compute: ECS Fargate services with autoscaling, ECR repositories, log groups, Batch GPU capacity."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification,
)
from cdktf_cdktf_provider_aws.appautoscaling_scheduled_action import (
    AppautoscalingScheduledAction,
    AppautoscalingScheduledActionScalableTargetAction,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.batch_compute_environment import (
    BatchComputeEnvironment,
    BatchComputeEnvironmentComputeResources,
    BatchComputeEnvironmentComputeResourcesEc2Configuration,
    BatchComputeEnvironmentComputeResourcesLaunchTemplate,
)
from cdktf_cdktf_provider_aws.batch_job_queue import BatchJobQueue, BatchJobQueueComputeEnvironmentOrder
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from cdktf_cdktf_provider_aws.ecs_cluster import EcsCluster, EcsClusterSetting
from cdktf_cdktf_provider_aws.ecs_service import (
    EcsService,
    EcsServiceDeploymentCircuitBreaker,
    EcsServiceLoadBalancer,
    EcsServiceNetworkConfiguration,
)
from cdktf_cdktf_provider_aws.ecs_task_definition import EcsTaskDefinition, EcsTaskDefinitionRuntimePlatform
from cdktf_cdktf_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateMetadataOptions,
)
from constructs import Construct

from deepsentinel.constructs.names import ECR_REPOSITORIES, ResourceNames
from deepsentinel.constructs.ports import BACKEND_PORT, FRONTEND_PORT
from deepsentinel.settings import PlatformSettings

JOB_QUEUE_PRIORITY = 10
GPU_ROOT_VOLUME_GB = 100  # video temp files and the CUDA image layers


@dataclass(frozen=True, kw_only=True)
class ComputeProps:
    settings: PlatformSettings
    private_subnet_ids: list[str]
    ecs_security_group_id: str
    batch_security_group_id: str
    frontend_target_group_arn: str
    backend_target_group_arn: str
    ecs_task_execution_role_arn: str
    frontend_task_role_arn: str
    backend_task_role_arn: str
    batch_service_role_arn: str
    batch_instance_profile_arn: str
    kms_key_arn: str  # ECR repositories and log groups
    # AWS rejects CreateService while a target group has no load balancer: the listeners and rules first.
    load_balancer_ready: list[ITerraformDependable] = field(default_factory=list)
    # A compute environment created before its service role's policy cannot be deleted cleanly (DELETING).
    batch_service_role_ready: list[ITerraformDependable] = field(default_factory=list)
    backend_environment: dict[str, str] = field(default_factory=dict)
    backend_secrets: dict[str, str] = field(default_factory=dict)  # env name -> Secrets Manager valueFrom


@dataclass(frozen=True)
class _ServiceSpec:
    name: str
    port: int
    cpu: int
    memory_mb: int
    image_tag: str  # tag in the service's own repository (settings.<service>_image_tag)
    target_group_arn: str
    task_role_arn: str
    environment: dict[str, str]
    secrets: dict[str, str]


class Compute(Construct):
    cluster_name: str
    service_names: dict[str, str]
    ecr_repository_urls: dict[str, str]  # purpose -> URL (frontend, backend, video-analysis)
    compute_environment_arn: str
    job_queue_arn: str
    job_queue_name: str
    batch_log_group_name: str

    def __init__(self, scope: Construct, id_: str, *, props: ComputeProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        self._s, self._names = s, ResourceNames(s)
        self._kms_key_arn = props.kms_key_arn
        self.ecr_repository_urls = {purpose: self._repository(purpose) for purpose in ECR_REPOSITORIES}

        cluster = EcsCluster(
            self,
            "cluster",
            name=self._names.ecs_cluster,
            setting=[EcsClusterSetting(name="containerInsights", value="enabled")],
        )
        self.cluster_name = cluster.name
        specs = (
            _ServiceSpec(
                "frontend",
                FRONTEND_PORT,
                s.frontend_cpu,
                s.frontend_memory_mb,
                s.frontend_image_tag,
                props.frontend_target_group_arn,
                props.frontend_task_role_arn,
                {"PORT": str(FRONTEND_PORT), "NEXT_TELEMETRY_DISABLED": "1"},
                {},
            ),
            _ServiceSpec(
                "backend",
                BACKEND_PORT,
                s.backend_cpu,
                s.backend_memory_mb,
                s.backend_image_tag,
                props.backend_target_group_arn,
                props.backend_task_role_arn,
                {"PORT": str(BACKEND_PORT), **bedrock_environment(s), **props.backend_environment},
                props.backend_secrets,
            ),
        )
        self.service_names = {spec.name: self._service(spec, cluster, props) for spec in specs}
        self._batch(props)

    def _repository(self, purpose: str) -> str:
        s = self._s
        repo = EcrRepository(
            self,
            f"ecr-{purpose}",
            name=self._names.ecr_repository(purpose),
            image_tag_mutability="IMMUTABLE",
            force_delete=not s.deletion_protection,
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[
                EcrRepositoryEncryptionConfiguration(encryption_type="KMS", kms_key=self._kms_key_arn)
            ],
            tags={"Name": self._names.ecr_repository(purpose)},
        )
        EcrLifecyclePolicy(
            self,
            f"ecr-{purpose}-lifecycle",
            repository=repo.name,
            policy=json.dumps(
                {
                    "rules": [
                        # Untagged only: a count rule over tagged images would expire the tag a service or job
                        # definition still runs. Tagged images are the cleanup Lambda's, which checks what is in use.
                        {
                            "rulePriority": 1,
                            "description": "Drop untagged images after a day",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": 1,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
        )
        return repo.repository_url

    def _service(self, spec: _ServiceSpec, cluster: EcsCluster, props: ComputeProps) -> str:
        s = self._s
        log_group = CloudwatchLogGroup(
            self,
            f"{spec.name}-logs",
            name=self._names.ecs_log_group(spec.name),
            retention_in_days=s.log_retention_days,
            kms_key_id=self._kms_key_arn,
        )
        container = {
            "name": spec.name,
            "image": f"{self.ecr_repository_urls[spec.name]}:{spec.image_tag}",
            "essential": True,
            "portMappings": [{"containerPort": spec.port, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in sorted(spec.environment.items())],
            "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(spec.secrets.items())],
            "readonlyRootFilesystem": False,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group.name,
                    "awslogs-region": s.region,
                    "awslogs-stream-prefix": spec.name,
                },
            },
        }
        task = EcsTaskDefinition(
            self,
            f"{spec.name}-task",
            family=s.name(spec.name),
            cpu=str(spec.cpu),
            memory=str(spec.memory_mb),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            execution_role_arn=props.ecs_task_execution_role_arn,
            task_role_arn=spec.task_role_arn,
            runtime_platform=EcsTaskDefinitionRuntimePlatform(
                operating_system_family="LINUX", cpu_architecture="X86_64"
            ),
            container_definitions=json.dumps([container]),
        )
        service = EcsService(
            self,
            f"{spec.name}-service",
            name=self._names.ecs_service(spec.name),
            cluster=cluster.id,
            task_definition=task.arn,
            launch_type="FARGATE",
            desired_count=s.service_min_tasks,
            propagate_tags="SERVICE",
            health_check_grace_period_seconds=60,
            deployment_circuit_breaker=EcsServiceDeploymentCircuitBreaker(enable=True, rollback=True),
            network_configuration=EcsServiceNetworkConfiguration(
                subnets=props.private_subnet_ids, security_groups=[props.ecs_security_group_id], assign_public_ip=False
            ),
            load_balancer=[
                EcsServiceLoadBalancer(
                    target_group_arn=spec.target_group_arn, container_name=spec.name, container_port=spec.port
                )
            ],
            lifecycle={"ignore_changes": ["desired_count"]},  # owned by autoscaling after creation
            depends_on=props.load_balancer_ready or None,
        )
        self._autoscaling(spec.name, cluster.name, service.name)
        return service.name

    def _autoscaling(self, name: str, cluster_name: str, service_name: str) -> None:
        s = self._s
        target = AppautoscalingTarget(
            self,
            f"{name}-scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{cluster_name}/{service_name}",
            min_capacity=s.service_min_tasks,
            max_capacity=s.service_max_tasks,
        )
        AppautoscalingPolicy(
            self,
            f"{name}-cpu-policy",
            name=s.name(name, "cpu"),
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                target_value=s.cpu_target_percent,
                scale_out_cooldown=s.scale_out_cooldown_seconds,
                scale_in_cooldown=s.scale_in_cooldown_seconds,
                predefined_metric_specification=(
                    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
                        predefined_metric_type="ECSServiceAverageCPUUtilization"
                    )
                ),
            ),
        )
        if not s.night_scale_down:
            return
        for action, schedule, low, high in (
            ("night-stop", s.scale_down_schedule, 0, 0),
            ("morning-start", s.scale_up_schedule, s.service_min_tasks, s.service_max_tasks),
        ):
            AppautoscalingScheduledAction(
                self,
                f"{name}-{action}",
                name=s.name(name, action),
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                schedule=schedule,
                timezone=s.schedule_timezone,
                scalable_target_action=AppautoscalingScheduledActionScalableTargetAction(
                    min_capacity=str(low), max_capacity=str(high)
                ),
            )

    def _batch(self, props: ComputeProps) -> None:
        s = self._s
        log_group = CloudwatchLogGroup(
            self,
            "batch-logs",
            name=self._names.batch_log_group,
            retention_in_days=s.log_retention_days,
            kms_key_id=self._kms_key_arn,
        )
        template = LaunchTemplate(
            self,
            "gpu-launch-template",
            name=s.name("gpu"),
            update_default_version=True,
            metadata_options=LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=2
            ),  # hop 2: containers
            block_device_mappings=[
                LaunchTemplateBlockDeviceMappings(
                    device_name="/dev/xvda",
                    ebs=LaunchTemplateBlockDeviceMappingsEbs(
                        volume_size=GPU_ROOT_VOLUME_GB,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tags={"Name": s.name("gpu")},
        )
        environment = BatchComputeEnvironment(
            self,
            "gpu-compute-environment",
            compute_environment_name=s.name("gpu"),
            type="MANAGED",
            service_role=props.batch_service_role_arn,
            state="ENABLED",
            compute_resources=BatchComputeEnvironmentComputeResources(
                type="SPOT" if s.gpu_use_spot else "EC2",
                allocation_strategy="SPOT_CAPACITY_OPTIMIZED" if s.gpu_use_spot else "BEST_FIT_PROGRESSIVE",
                instance_type=list(s.gpu_instance_types),
                min_vcpus=s.gpu_min_instances * s.gpu_vcpus_per_instance,
                max_vcpus=s.gpu_max_instances * s.gpu_vcpus_per_instance,
                subnets=props.private_subnet_ids,
                security_group_ids=[props.batch_security_group_id],
                instance_role=props.batch_instance_profile_arn,
                launch_template=BatchComputeEnvironmentComputeResourcesLaunchTemplate(
                    launch_template_id=template.id, version="$Latest"
                ),
                ec2_configuration=[
                    BatchComputeEnvironmentComputeResourcesEc2Configuration(
                        image_type="ECS_AL2_NVIDIA", image_id_override=s.gpu_ami_id
                    )
                ],
                tags={"Name": s.name("gpu")},
            ),
            tags={"Name": s.name("gpu")},
            depends_on=props.batch_service_role_ready or None,
        )
        queue = BatchJobQueue(
            self,
            "job-queue",
            name=self._names.batch_job_queue,
            state="ENABLED",
            priority=JOB_QUEUE_PRIORITY,
            compute_environment_order=[
                BatchJobQueueComputeEnvironmentOrder(order=1, compute_environment=environment.arn)
            ],
        )
        self.compute_environment_arn = environment.arn
        self.job_queue_arn = queue.arn
        self.job_queue_name = queue.name
        self.batch_log_group_name = log_group.name


def bedrock_environment(s: PlatformSettings) -> dict[str, str]:
    """The Bedrock models the backend calls (the task role may invoke exactly these). Without a reranker there are
    no BEDROCK_RERANK_* variables: the backend skips reranking."""
    environment = {
        "BEDROCK_TEXT_MODEL_ID": s.bedrock_text_model_id,
        "BEDROCK_EMBEDDING_MODEL_ID": s.bedrock_embedding_model_id,
    }
    if s.bedrock_rerank_model_id:
        environment |= {
            "BEDROCK_RERANK_MODEL_ID": s.bedrock_rerank_model_id,
            "BEDROCK_RERANK_REGION": s.bedrock_rerank_region,
        }
    return environment
