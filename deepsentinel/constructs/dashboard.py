"""Dashboard: one CloudWatch dashboard per environment (named {prefix}), and the two job counts it needs.

The body is plain JSON built here from the construct's typed inputs; the inputs that are references
(queue and function names, the ALB's ARN suffix, the DB identifier) stay `${...}` inside the JSON string
and Terraform fills them in, as it does for every other JSON attribute of the stacks.

AWS Batch job counts: the job state change events on the default event bus are the source AWS documents
("AWS Batch events": one event per change of state, none for the initial submission), and EventBridge
publishes per rule how many events matched it (AWS/Events TriggeredRules, dimension RuleName: "Monitoring
Amazon EventBridge"). So SUCCEEDED and FAILED are the TriggeredRules of two rules on this job queue: the
pipeline's FAILED rule (which also invokes the failure monitor) and a SUCCEEDED rule here that exists only
to be counted. Submissions have no event, so that count comes from our own code: every job sqs_to_batch
submits is one JSON log line with "outcome": "submitted", and a metric filter turns those lines into
JobsSubmitted in the environment's own namespace. Jobs waiting in RUNNABLE have no AWS metric either: the pipeline's
batch_runnable_monitor publishes the oldest one's age and their count in the same namespace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_log_metric_filter import (
    CloudwatchLogMetricFilter,
    CloudwatchLogMetricFilterMetricTransformation,
)
from constructs import Construct

from deepsentinel.constructs.names import ResourceNames
from deepsentinel.settings import PlatformSettings

PERIOD_SECONDS = 300
WIDGET_WIDTH = 8  # three widgets per row of the 24-unit grid
WIDGET_HEIGHT = 6
JOBS_SUBMITTED_METRIC = "JobsSubmitted"
SUBMITTED_LOG_PATTERN = '{ $.outcome = "submitted" }'  # sqs_to_batch's new-job log line (docs/platform.md)
# What batch_runnable_monitor publishes in the namespace (lambdas/batch_runnable_monitor/handler.py, packaged on
# its own: a test keeps the names equal); the pipeline's jobs-stuck-runnable alarm watches the age.
RUNNABLE_AGE_METRIC = "OldestRunnableJobAgeSeconds"
RUNNABLE_COUNT_METRIC = "RunnableJobs"
RUNNABLE_QUEUE_DIMENSION = "JobQueue"


def metrics_namespace(settings: PlatformSettings) -> str:
    """The environment's custom metric namespace (dev and prod share an account: one namespace each)."""
    return f"DeepSentinel/{settings.prefix}"


@dataclass(frozen=True, kw_only=True)
class DashboardProps:
    settings: PlatformSettings
    jobs_queue_name: str
    dlq_name: str
    function_names: dict[str, str]  # label (function folder; jobs-api-<route> for the Jobs API's) -> function name
    submitter_log_group_name: str  # sqs_to_batch's log group: its "submitted" lines are the jobs submitted
    job_queue_arn: str  # Batch job queue whose SUCCEEDED jobs are counted
    batch_failed_rule_name: str  # the pipeline's rule on the job queue's FAILED jobs
    ecs_cluster_name: str
    ecs_service_names: dict[str, str]  # purpose -> service name
    alb_arn_suffix: str  # the LoadBalancer dimension of AWS/ApplicationELB
    db_instance_identifier: str
    # With jobs_api_enabled: ApiId and Stage of the Jobs API's AWS/ApiGateway metrics (requests, 4xx/5xx, latency
    # widgets); None: no Jobs API widgets.
    jobs_api_dimensions: dict[str, str] | None = None


class Dashboard(Construct):
    dashboard_name: str
    dashboard_arn: str
    batch_succeeded_rule_name: str
    metrics_namespace: str  # where JobsSubmitted is published

    def __init__(self, scope: Construct, id_: str, *, props: DashboardProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        self.metrics_namespace = metrics_namespace(s)
        CloudwatchLogMetricFilter(
            self,
            "jobs-submitted",
            name=s.name("jobs-submitted"),
            log_group_name=props.submitter_log_group_name,
            pattern=SUBMITTED_LOG_PATTERN,
            # No default value: periods without submissions stay empty instead of storing zeros.
            metric_transformation=CloudwatchLogMetricFilterMetricTransformation(
                name=JOBS_SUBMITTED_METRIC, namespace=self.metrics_namespace, value="1", unit="Count"
            ),
        )
        succeeded = CloudwatchEventRule(
            self,
            "batch-succeeded-rule",
            name=s.name("batch-succeeded"),
            description="Counts the job queue's SUCCEEDED jobs (AWS/Events TriggeredRules); no target",
            event_pattern=json.dumps(
                {
                    "source": ["aws.batch"],
                    "detail-type": ["Batch Job State Change"],
                    "detail": {"status": ["SUCCEEDED"], "jobQueue": [props.job_queue_arn]},
                }
            ),
        )
        self.batch_succeeded_rule_name = succeeded.name
        dashboard = CloudwatchDashboard(
            self, "dashboard", dashboard_name=s.prefix, dashboard_body=json.dumps(dashboard_body(props, succeeded.name))
        )
        self.dashboard_name = dashboard.dashboard_name
        self.dashboard_arn = dashboard.dashboard_arn


def jobs_api_widgets(dimensions: dict[str, str] | None) -> list[tuple[str, str, list[list[Any]]]]:
    """The Jobs API's requests, 4xx/5xx and latency: the HTTP API metrics Count, 4xx, 5xx, Latency and
    IntegrationLatency ("Monitor CloudWatch metrics for HTTP APIs in API Gateway"); none without the API."""
    if dimensions is None:
        return []
    api = [part for pair in sorted(dimensions.items()) for part in pair]
    return [
        ("Jobs API requests", "Sum", [["AWS/ApiGateway", "Count", *api, {"label": "requests"}]]),
        (
            "Jobs API 4xx and 5xx",
            "Sum",
            [
                ["AWS/ApiGateway", "4xx", *api, {"label": "4xx (client)"}],
                ["AWS/ApiGateway", "5xx", *api, {"label": "5xx (server)"}],
            ],
        ),
        (
            "Jobs API latency (ms)",
            "Average",
            [
                ["AWS/ApiGateway", "Latency", *api, {"label": "average"}],
                ["AWS/ApiGateway", "Latency", *api, {"label": "p99", "stat": "p99"}],
                ["AWS/ApiGateway", "IntegrationLatency", *api, {"label": "in the functions (average)"}],
            ],
        ),
    ]


def dashboard_body(props: DashboardProps, succeeded_rule_name: str) -> dict[str, Any]:
    """The dashboard as CloudWatch's JSON ("Dashboard body structure and syntax"): metric widgets in rows of
    three, each metric `[namespace, name, dimension, value, ..., {options}]`."""
    s = props.settings
    functions = sorted(props.function_names.items())
    services = sorted(props.ecs_service_names.items())
    queue = ("QueueName", props.jobs_queue_name)
    alb = ("LoadBalancer", props.alb_arn_suffix)
    db = ("DBInstanceIdentifier", props.db_instance_identifier)
    cluster = ("ClusterName", props.ecs_cluster_name)
    job_queue = (RUNNABLE_QUEUE_DIMENSION, ResourceNames(s).batch_job_queue)
    widgets = [
        (
            "Jobs queue: depth and oldest message (s)",
            "Maximum",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", *queue, {"label": "visible"}],
                ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", *queue, {"label": "in flight"}],
                ["AWS/SQS", "ApproximateAgeOfOldestMessage", *queue, {"label": "oldest (s)", "yAxis": "right"}],
            ],
        ),
        (
            "Dead-letter queue depth",
            "Maximum",
            [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", props.dlq_name, {"label": "DLQ"}]],
        ),
        (
            "Batch jobs: submitted, succeeded, failed",
            "Sum",
            [
                [metrics_namespace(s), JOBS_SUBMITTED_METRIC, {"label": "submitted (sqs_to_batch)"}],
                ["AWS/Events", "TriggeredRules", "RuleName", succeeded_rule_name, {"label": "succeeded"}],
                ["AWS/Events", "TriggeredRules", "RuleName", props.batch_failed_rule_name, {"label": "failed"}],
            ],
        ),
        (
            "Batch jobs waiting in RUNNABLE: oldest (s) and count",
            "Maximum",
            [
                [metrics_namespace(s), RUNNABLE_AGE_METRIC, *job_queue, {"label": "oldest waiting (s)"}],
                [metrics_namespace(s), RUNNABLE_COUNT_METRIC, *job_queue, {"label": "waiting", "yAxis": "right"}],
            ],
        ),
        (
            "Lambda errors",
            "Sum",
            [["AWS/Lambda", "Errors", "FunctionName", name, {"label": folder}] for folder, name in functions],
        ),
        (
            "Lambda duration (ms)",
            "Average",
            [["AWS/Lambda", "Duration", "FunctionName", name, {"label": folder}] for folder, name in functions],
        ),
        (
            "Lambda throttles",
            "Sum",
            [["AWS/Lambda", "Throttles", "FunctionName", name, {"label": folder}] for folder, name in functions],
        ),
        (
            "ECS CPU and memory (%)",
            "Average",
            [
                *[
                    ["AWS/ECS", "CPUUtilization", *cluster, "ServiceName", name, {"label": f"{purpose} CPU"}]
                    for purpose, name in services
                ],
                *[
                    ["AWS/ECS", "MemoryUtilization", *cluster, "ServiceName", name, {"label": f"{purpose} memory"}]
                    for purpose, name in services
                ],
            ],
        ),
        (
            "ECS tasks: running and desired",
            "Average",
            [
                *[
                    [
                        "ECS/ContainerInsights",
                        "RunningTaskCount",
                        *cluster,
                        "ServiceName",
                        name,
                        {"label": f"{purpose} running"},
                    ]
                    for purpose, name in services
                ],
                *[
                    [
                        "ECS/ContainerInsights",
                        "DesiredTaskCount",
                        *cluster,
                        "ServiceName",
                        name,
                        {"label": f"{purpose} desired"},
                    ]
                    for purpose, name in services
                ],
            ],
        ),
        ("ALB requests", "Sum", [["AWS/ApplicationELB", "RequestCount", *alb, {"label": "requests"}]]),
        (
            "ALB 5xx",
            "Sum",
            [
                ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", *alb, {"label": "from targets"}],
                ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", *alb, {"label": "from the load balancer"}],
            ],
        ),
        (
            "ALB target response time (s)",
            "Average",
            [
                ["AWS/ApplicationELB", "TargetResponseTime", *alb, {"label": "average"}],
                ["AWS/ApplicationELB", "TargetResponseTime", *alb, {"label": "p99", "stat": "p99"}],
            ],
        ),
        (
            "RDS CPU (%) and connections",
            "Average",
            [
                ["AWS/RDS", "CPUUtilization", *db, {"label": "CPU (%)"}],
                ["AWS/RDS", "DatabaseConnections", *db, {"label": "connections", "yAxis": "right"}],
            ],
        ),
        ("RDS free storage (bytes)", "Minimum", [["AWS/RDS", "FreeStorageSpace", *db, {"label": "free storage"}]]),
        *jobs_api_widgets(props.jobs_api_dimensions),
    ]
    return {
        "widgets": [
            {
                "type": "metric",
                "x": (i % 3) * WIDGET_WIDTH,
                "y": (i // 3) * WIDGET_HEIGHT,
                "width": WIDGET_WIDTH,
                "height": WIDGET_HEIGHT,
                "properties": {
                    "title": title,
                    "region": s.region,
                    "view": "timeSeries",
                    "stacked": False,
                    "stat": stat,
                    "period": PERIOD_SECONDS,
                    "metrics": metrics,
                },
            }
            for i, (title, stat, metrics) in enumerate(widgets)
        ]
    }
