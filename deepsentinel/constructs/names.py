"""Names of resources that one module creates and another must reference before they exist.

IAM policies are written before the pipeline and compute resources they grant access to (those
resources need the roles), so both sides take their names from here instead of from each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepsentinel.settings import PlatformSettings

LAMBDA_FUNCTIONS = (
    "sqs_to_batch",
    "batch_failure_monitor",
    "ecr_cleanup",
    "ecs_redeploy",
    "batch_runnable_monitor",
)  # folders under lambdas/
ECR_REPOSITORIES = ("frontend", "backend", "video-analysis")
ECS_SERVICES = ("frontend", "backend")


@dataclass(frozen=True)
class ResourceNames:
    settings: PlatformSettings

    @property
    def jobs_queue(self) -> str:
        return self.settings.name("jobs") + self._fifo_suffix

    @property
    def jobs_dlq(self) -> str:
        return self.settings.name("jobs-dlq") + self._fifo_suffix

    @property
    def _fifo_suffix(self) -> str:
        """SQS requires a FIFO queue's name to end in .fifo (CreateQueue, FifoQueue)."""
        return ".fifo" if self.settings.fifo_job_queue else ""

    @property
    def functions_dlq(self) -> str:
        return self.settings.name("functions-dlq")

    @property
    def db_instance(self) -> str:
        """The RDS instance identifier (storage creates it; the night stop's role names it)."""
        return self.settings.name("postgres")

    @property
    def idempotency_table(self) -> str:
        return self.settings.name("job-claims")

    @property
    def alerts_topic(self) -> str:
        return self.settings.name("alerts")

    @property
    def batch_job_queue(self) -> str:
        return self.settings.name("video-analysis")

    @property
    def gpu_job_definition(self) -> str:
        return self.settings.name("video-analysis-gpu")

    @property
    def cpu_job_definition(self) -> str:
        return self.settings.name("video-analysis-cpu")

    @property
    def batch_log_group(self) -> str:
        return f"/aws/batch/{self.settings.name('video-analysis')}"

    @property
    def video_events_topic(self) -> str:
        return self.settings.name("video-events")

    @property
    def ecs_cluster(self) -> str:
        return self.settings.name("cluster")

    def ecs_service(self, purpose: str) -> str:
        return self.settings.name(purpose)

    def lambda_role(self, folder: str) -> str:
        """Role purpose of a function; the role's name is `{prefix}-lambda-<function>`."""
        return f"lambda-{folder.replace('_', '-')}"

    def role_arn(self, account_id: str, purpose: str) -> str:
        return f"arn:aws:iam::{account_id}:role/{self.settings.name(purpose)}"

    def function(self, folder: str) -> str:
        return self.settings.name(folder.replace("_", "-"))

    def function_log_group(self, folder: str) -> str:
        return f"/aws/lambda/{self.function(folder)}"

    def ecr_repository(self, purpose: str) -> str:
        return f"{self.settings.prefix}/{purpose}"

    def ecs_log_group(self, service: str) -> str:
        return f"/ecs/{self.settings.prefix}/{service}"
