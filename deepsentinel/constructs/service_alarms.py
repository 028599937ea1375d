"""Service alarms: the web tier's health (ALB 5xx, ECS tasks below desired) to the alerts topic, and `rate_alarm`,
the percentage alarm the Jobs API's 5xx rate and its functions' error rates use.

The pipeline's alarms (queues, Lambda errors) live beside the pipeline in pipeline.py; these watch the
load balancer and the ECS services, which belong to other modules, so they take their names as inputs.
Both are metric math alarms ("Create a CloudWatch alarm based on a metric math expression", CloudWatch
User Guide): each metric in an alarm is billed as one alarm metric.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from constructs import Construct

from deepsentinel.settings import PlatformSettings

ALB_5XX_ALARM_COUNT = 10  # 5xx answers (targets + load balancer) in ALB_5XX_PERIOD_SECONDS
ALB_5XX_PERIOD_SECONDS = 300
# Container Insights publishes service metrics every minute; a shortfall must last TASKS_EVALUATION_MINUTES
# consecutive minutes, longer than a Fargate task takes to start on a scale-out or a deployment.
TASKS_PERIOD_SECONDS = 60
TASKS_EVALUATION_MINUTES = 5
RATE_PERIOD_SECONDS = 300


@dataclass(frozen=True, kw_only=True)
class ServiceAlarmsProps:
    settings: PlatformSettings
    alerts_topic_arn: str
    alb_arn_suffix: str  # app/<name>/<id>: the LoadBalancer dimension
    ecs_cluster_name: str
    ecs_service_names: dict[str, str]  # purpose -> service name


class ServiceAlarms(Construct):
    alarm_names: dict[str, str]  # purpose -> alarm name

    def __init__(self, scope: Construct, id_: str, *, props: ServiceAlarmsProps) -> None:
        super().__init__(scope, id_)
        self._props = props
        self.alarm_names = {}
        # ALB 5xx: AWS/ApplicationELB publishes the HTTPCode_* counts only for periods that had such answers, so
        # missing data means no errors (notBreaching); FILL keeps one code's gap from blanking the sum.
        alb = {"LoadBalancer": props.alb_arn_suffix}
        self._alarm(
            "alb-5xx",
            f"more than {ALB_5XX_ALARM_COUNT} 5xx answers in {ALB_5XX_PERIOD_SECONDS // 60} minutes",
            threshold=ALB_5XX_ALARM_COUNT,
            evaluation_periods=1,
            queries=[
                _metric(
                    "target_5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, "Sum", ALB_5XX_PERIOD_SECONDS
                ),
                _metric("elb_5xx", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", alb, "Sum", ALB_5XX_PERIOD_SECONDS),
                _expression("errors_5xx", "FILL(target_5xx, 0) + FILL(elb_5xx, 0)", "5xx answers"),
            ],
        )
        # Tasks below desired: Container Insights publishes RunningTaskCount and DesiredTaskCount every minute while
        # the service exists (both 0 at night in dev), so a shortage always shows as datapoints; a gap says nothing
        # about a shortage and is not breaching (a stuck ALARM would otherwise outlive the service).
        for purpose, service in sorted(props.ecs_service_names.items()):
            dimensions = {"ClusterName": props.ecs_cluster_name, "ServiceName": service}
            self._alarm(
                f"{purpose}-tasks-below-desired",
                f"{purpose}: fewer running tasks than desired for {TASKS_EVALUATION_MINUTES} minutes",
                threshold=0,
                evaluation_periods=TASKS_EVALUATION_MINUTES,
                queries=[
                    _metric(
                        "running",
                        "ECS/ContainerInsights",
                        "RunningTaskCount",
                        dimensions,
                        "Average",
                        TASKS_PERIOD_SECONDS,
                    ),
                    _metric(
                        "desired",
                        "ECS/ContainerInsights",
                        "DesiredTaskCount",
                        dimensions,
                        "Average",
                        TASKS_PERIOD_SECONDS,
                    ),
                    _expression("missing_tasks", "desired - running", "desired minus running tasks"),
                ],
            )

    def _alarm(
        self,
        purpose: str,
        description: str,
        *,
        threshold: float,
        evaluation_periods: int,
        queries: list[CloudwatchMetricAlarmMetricQuery],
    ) -> None:
        s, topic = self._props.settings, self._props.alerts_topic_arn
        alarm = CloudwatchMetricAlarm(
            self,
            f"{purpose}-alarm",
            alarm_name=s.name(purpose),
            alarm_description=description,
            comparison_operator="GreaterThanThreshold",
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data="notBreaching",
            metric_query=queries,
            alarm_actions=[topic],
            ok_actions=[topic],
        )
        self.alarm_names[purpose] = alarm.alarm_name


def rate_alarm(
    scope: Construct,
    id_: str,
    *,
    alarm_name: str,
    description: str,
    namespace: str,
    dimensions: dict[str, str],
    part: tuple[str, str],
    whole: tuple[str, str],
    label: str,
    threshold_percent: float,
    alerts_topic_arn: str,
    rate_id: str = "rate",
) -> CloudwatchMetricAlarm:
    """100 x part / whole above threshold_percent in one RATE_PERIOD_SECONDS period (metric math: "Create a
    CloudWatch alarm based on a metric math expression"); `part` and `whole` are (query id, metric name), summed;
    `rate_id` is the expression's query id.

    Missing data is not breaching: Lambda and API Gateway publish their counts only for periods with traffic, so an
    idle period has no rate at all, and no traffic means no errors. FILL(part, 0) makes a period with traffic but
    no error datapoint a 0 % period rather than a gap.
    """
    (part_id, part_metric), (whole_id, whole_metric) = part, whole
    return CloudwatchMetricAlarm(
        scope,
        id_,
        alarm_name=alarm_name,
        alarm_description=description,
        evaluation_periods=1,
        threshold=threshold_percent,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[alerts_topic_arn],
        ok_actions=[alerts_topic_arn],
        metric_query=[
            _metric(part_id, namespace, part_metric, dimensions, "Sum", RATE_PERIOD_SECONDS),
            _metric(whole_id, namespace, whole_metric, dimensions, "Sum", RATE_PERIOD_SECONDS),
            _expression(rate_id, f"100 * FILL({part_id}, 0) / {whole_id}", label),
        ],
    )


def _metric(
    id_: str, namespace: str, name: str, dimensions: dict[str, str], stat: str, period: int
) -> CloudwatchMetricAlarmMetricQuery:
    return CloudwatchMetricAlarmMetricQuery(
        id=id_,
        return_data=False,
        metric=CloudwatchMetricAlarmMetricQueryMetric(
            namespace=namespace, metric_name=name, dimensions=dimensions, stat=stat, period=period
        ),
    )


def _expression(id_: str, expression: str, label: str) -> CloudwatchMetricAlarmMetricQuery:
    return CloudwatchMetricAlarmMetricQuery(id=id_, expression=expression, label=label, return_data=True)
