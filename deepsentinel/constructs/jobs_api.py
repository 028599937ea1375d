"""Jobs API: an HTTP API for clients without the web app (camera gateways), and upload-triggered jobs.

Routes (API Gateway HTTP API, Lambda proxy integrations, payload format 2.0, one function per route):
``POST /videos`` (a video id and a presigned PUT URL), ``GET /videos/{id}`` (status) and
``GET /videos/{id}/results`` (highlights with presigned GET URLs). lambdas/jobs_api/handler.py says what
each answers.

Authorization is IAM (``AWS_IAM``): callers sign requests with SigV4. The callers are machines, and the
platform has no user directory; IAM gives each gateway short-lived credentials (an IAM role assumed by
the gateway's own principal, e.g. through IAM Roles Anywhere with the device's X.509 certificate), per-route
grants (``execute-api:Invoke`` on a route ARN) and CloudTrail-attributed calls, with nothing to store or
rotate on the API side. JWT (Cognito) would add a user pool, app clients and token refresh in the gateway
firmware for no gain here. The construct creates the client role ``{prefix}-jobs-api-client``. Its trust
policy always admits the account (root): IAM principals of the account (an operator's CLI, a gateway that has an
IAM user or role) may assume it once their own identity policy grants ``sts:AssumeRole`` on it, and nobody else
can. With ``jobs_api_roles_anywhere_trust_anchor_arns`` it also admits IAM Roles Anywhere
(``rolesanywhere.amazonaws.com``, the three actions the service needs) for certificates of those trust anchors
only (``aws:SourceArn``), and with ``jobs_api_roles_anywhere_subject_cns`` only for those subject CNs.

Upload completes -> job enqueued: the raw bucket already sends its object events to EventBridge
(storage.py). A rule matches "Object Created" under the API's key prefix. With a standard jobs queue the rule
sends the queue exactly the message sqs_to_batch parses, ``{"video_id": <key>, "s3_key": <key>, "bucket":
<bucket>}``, through an input transformer. A transformer cannot cut text out of the key, so the API's object key
is the video id itself (``jobs-api-<32 hex digits>``: no folder, no extension). With ``fifo_job_queue`` the rule
invokes the function ``{prefix}-jobs-api-enqueue`` instead, which sends the same message with the video id as
its message group: an EventBridge rule's SQS target names one fixed message group (SqsParameters.MessageGroupId,
a plain string, also in provider 5.100.0's ``sqs_target``), so every upload would share one group and one
failing message would hold back every later upload. A standard queue has no groups, so it keeps the direct
target (no function to run, pay for or watch). Only the API's prefix is matched, so the web app's uploads, which
the backend enqueues itself, are never enqueued twice; that is also why the rule exists only with the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cdktf import AssetType, ITerraformDependable, TerraformAsset
from cdktf_cdktf_provider_aws.apigatewayv2_api import Apigatewayv2Api, Apigatewayv2ApiCorsConfiguration
from cdktf_cdktf_provider_aws.apigatewayv2_integration import Apigatewayv2Integration
from cdktf_cdktf_provider_aws.apigatewayv2_route import Apigatewayv2Route
from cdktf_cdktf_provider_aws.apigatewayv2_stage import (
    Apigatewayv2Stage,
    Apigatewayv2StageAccessLogSettings,
    Apigatewayv2StageDefaultRouteSettings,
)
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetInputTransformer,
)
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionDeadLetterConfig,
    LambdaFunctionEnvironment,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from constructs import Construct

from deepsentinel.constructs.encryption import PUBLISH_KEY_ACTIONS
from deepsentinel.constructs.iam import AWS_MANAGED, LAMBDA_MANAGED_POLICIES
from deepsentinel.constructs.pipeline import (
    DEFAULT_LAMBDAS_DIR,
    LAMBDA_ERROR_RATE_PERCENT,
    LAMBDA_MEMORY_MB,
    LAMBDA_RUNTIME,
    OTHER_FUNCTIONS_RESERVED_CONCURRENCY,
    MissingHandlerError,
)
from deepsentinel.constructs.policies import Statement, allow, assume_role_policy, policy_document
from deepsentinel.constructs.service_alarms import rate_alarm
from deepsentinel.lambda_package import code_archive
from deepsentinel.settings import PlatformSettings

FOLDER = "jobs_api"  # lambdas/jobs_api/handler.py
# First characters of every video id (= raw object key) the API hands out; the upload rule matches them.
UPLOAD_PREFIX = "jobs-api-"
STAGE = "$default"
# The API's own metrics (AWS/ApiGateway, "Monitor CloudWatch metrics for HTTP APIs in API Gateway"): requests, 4xx,
# 5xx, latency per ApiId and Stage. Above this share of 5xx answers in 5 minutes the alerts topic hears of it.
API_5XX_RATE_PERCENT = 5
# API Gateway waits at most 30 s for an integration; the routes answer in well under a second.
FUNCTION_TIMEOUT_SECONDS = 10
# What a SigV4-signing browser sends (only used when jobs_api_cors_origins is set).
CORS_HEADERS = ["authorization", "content-type", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"]
CORS_MAX_AGE_SECONDS = 600
# One JSON line per request (HTTP API access-log variables; $context.identity.userArn: the IAM caller).
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.identity.userArn",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationStatus": "$context.integrationStatus",
        "integrationError": "$context.integrationErrorMessage",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)
# The message sqs_to_batch parses ({"video_id", "s3_key"} plus "bucket"); placeholders outside quotes are
# replaced by JSON values (quoted and escaped), so any key yields valid JSON.
UPLOAD_INPUT_PATHS = {"key": "$.detail.object.key", "bucket": "$.detail.bucket.name"}
UPLOAD_INPUT_TEMPLATE = '{"video_id": <key>, "s3_key": <key>, "bucket": <bucket>}'
# With fifo_job_queue the rule invokes this function (lambdas/jobs_api/handler.py), which sends the same message
# with the video id as its message group.
ENQUEUE_PURPOSE = "enqueue"
ENQUEUE_ENTRY_POINT = "enqueue_upload"
# What IAM Roles Anywhere needs on a role's trust policy (IAM Roles Anywhere User Guide, "Trust model", Role trusts).
ROLES_ANYWHERE_PRINCIPAL = "rolesanywhere.amazonaws.com"
ROLES_ANYWHERE_ACTIONS = ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]


@dataclass(frozen=True)
class Route:
    purpose: str  # function and role names: {prefix}-jobs-api-<purpose>
    method: str
    path: str
    entry_point: str  # function in lambdas/jobs_api/handler.py

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = (
    Route("create", "POST", "/videos", "create_video"),
    Route("status", "GET", "/videos/{id}", "get_video"),
    Route("results", "GET", "/videos/{id}/results", "get_results"),
)


@dataclass(frozen=True, kw_only=True)
class JobsApiProps:
    settings: PlatformSettings
    account_id: str  # trusted to assume the client role (grants to gateways are made in IAM)
    kms_key_arn: str  # the environment's key: function environments, log groups, the data the routes read
    raw_bucket_name: str  # uploads land here (presigned PUT); its events enqueue the jobs
    raw_bucket_arn: str
    highlights_bucket_name: str  # the worker's highlight frames (presigned GET)
    highlights_bucket_arn: str
    idempotency_table_name: str  # sqs_to_batch's claims (status)
    idempotency_table_arn: str
    job_queue_arn: str  # the Batch job queue (status: the video's job)
    jobs_queue_arn: str  # the SQS jobs queue: the upload rule's target
    jobs_queue_url: str
    functions_dlq_arn: str  # the functions' dead-letter queue (asynchronous invocations only)
    alerts_topic_arn: str  # the functions' error alarms notify it
    private_subnet_ids: list[str]  # where the functions run, like every function of the platform
    lambda_security_group_id: str
    lambdas_dir: Path = DEFAULT_LAMBDAS_DIR  # must hold jobs_api/handler.py


class JobsApi(Construct):
    api_id: str
    api_endpoint: str  # https://<api id>.execute-api.<region>.amazonaws.com
    api_execution_arn: str
    access_log_group_name: str
    function_names: dict[str, str]  # route purpose (create, status, results) -> function name
    client_role_arn: str  # the role camera gateways assume to call the API
    upload_rule_arn: str
    metric_dimensions: dict[str, str]  # ApiId and Stage of the API's AWS/ApiGateway metrics (dashboard, alarm)
    alarm_names: dict[str, str]  # purpose (5xx-rate, <route>-error-rate, enqueue-errors) -> alarm name

    def __init__(self, scope: Construct, id_: str, *, props: JobsApiProps) -> None:
        super().__init__(scope, id_)
        if not (props.lambdas_dir / FOLDER / "handler.py").is_file():
            raise MissingHandlerError(
                f"{props.lambdas_dir / FOLDER} has no handler.py; the Jobs API's functions "
                f"need {', '.join(r.entry_point for r in ROUTES)} defined there"
            )
        s = self._s = props.settings
        self._props = props
        self._code = TerraformAsset(
            self, "code", path=str(code_archive(props.lambdas_dir / FOLDER)), type=AssetType.FILE
        )

        api = Apigatewayv2Api(
            self,
            "api",
            name=s.name("jobs-api"),
            protocol_type="HTTP",
            description="Jobs API for camera gateways: upload a video, read its status and results (IAM auth)",
            cors_configuration=Apigatewayv2ApiCorsConfiguration(
                allow_origins=list(s.jobs_api_cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=CORS_HEADERS,
                max_age=CORS_MAX_AGE_SECONDS,
            )
            if s.jobs_api_cors_origins
            else None,
            tags={"Name": s.name("jobs-api")},
        )
        access_logs = CloudwatchLogGroup(
            self,
            "access-logs",
            name=f"/aws/apigateway/{s.name('jobs-api')}",
            retention_in_days=s.log_retention_days,
            kms_key_id=props.kms_key_arn,
        )
        Apigatewayv2Stage(
            self,
            "stage",
            api_id=api.id,
            name=STAGE,
            auto_deploy=True,
            default_route_settings=Apigatewayv2StageDefaultRouteSettings(
                throttling_rate_limit=s.jobs_api_throttle_rate,
                throttling_burst_limit=s.jobs_api_throttle_burst,
                detailed_metrics_enabled=True,
            ),
            access_log_settings=Apigatewayv2StageAccessLogSettings(
                destination_arn=access_logs.arn, format=ACCESS_LOG_FORMAT
            ),
            tags={"Name": s.name("jobs-api")},
        )

        self.metric_dimensions = {"ApiId": api.id, "Stage": STAGE}
        self.alarm_names = {}
        # 5xx answers: the functions' failures and timeouts (API Gateway answers them with a 5xx) and its own.
        self.alarm_names["5xx-rate"] = rate_alarm(
            self,
            "5xx-rate-alarm",
            alarm_name=s.name("jobs-api-5xx-rate"),
            namespace="AWS/ApiGateway",
            description=f"{s.name('jobs-api')}: more than {API_5XX_RATE_PERCENT} % of requests answered 5xx in "
            "5 minutes",
            dimensions=self.metric_dimensions,
            part=("errors_5xx", "5xx"),
            whole=("requests", "Count"),
            label="5xx answers (%)",
            threshold_percent=API_5XX_RATE_PERCENT,
            alerts_topic_arn=props.alerts_topic_arn,
        ).alarm_name

        statements = self._route_statements()
        self.function_names = {}
        for route in ROUTES:
            function = self._function(
                route.purpose,
                route.entry_point,
                statements[route.purpose],
                ROUTE_ENVIRONMENT[route.purpose](props),
                error_rate=True,
            )
            integration = Apigatewayv2Integration(
                self,
                f"{route.purpose}-integration",
                api_id=api.id,
                integration_type="AWS_PROXY",
                integration_uri=function.invoke_arn,
                payload_format_version="2.0",
            )
            Apigatewayv2Route(
                self,
                f"{route.purpose}-route",
                api_id=api.id,
                route_key=route.key,
                target=f"integrations/{integration.id}",
                authorization_type="AWS_IAM",
            )
            LambdaPermission(
                self,
                f"{route.purpose}-permission",
                statement_id="AllowJobsApi",
                action="lambda:InvokeFunction",
                function_name=function.function_name,
                principal="apigateway.amazonaws.com",
                source_arn=f"{api.execution_arn}/*/{route.method}{route.path}",
            )
            self.function_names[route.purpose] = function.function_name

        client = IamRole(
            self,
            "client-role",
            name=s.name("jobs-api-client"),
            description="Assumed by camera gateways to call the Jobs API (SigV4)",
            assume_role_policy=policy_document(
                *client_trust_statements(
                    props.account_id, s.jobs_api_roles_anywhere_trust_anchor_arns, s.jobs_api_roles_anywhere_subject_cns
                )
            ),
            tags={"Name": s.name("jobs-api-client")},
        )
        IamRolePolicy(
            self,
            "client-policy",
            name="invoke-jobs-api",
            role=client.id,
            policy=policy_document(allow(["execute-api:Invoke"], invoke_arns(api.execution_arn), "InvokeJobsApi")),
        )

        rule = CloudwatchEventRule(
            self,
            "upload-rule",
            name=s.name("jobs-api-uploads"),
            description="Jobs API uploads to the raw bucket -> the jobs queue",
            event_pattern=upload_event_pattern(props.raw_bucket_name),
        )
        if s.fifo_job_queue:
            # One message group per video: the function sends with MessageGroupId = the video id.
            enqueue = self._function(
                ENQUEUE_PURPOSE,
                ENQUEUE_ENTRY_POINT,
                [allow(["sqs:SendMessage"], [props.jobs_queue_arn], "SendUploadJobs")],
                {"JOBS_QUEUE_URL": props.jobs_queue_url},
            )
            CloudwatchEventTarget(self, "upload-target", rule=rule.name, arn=enqueue.arn)
            # EventBridge invokes the function asynchronously (Lambda retries twice, then the functions' DLQ).
            LambdaPermission(
                self,
                "enqueue-permission",
                statement_id="AllowJobsApiUploadRule",
                action="lambda:InvokeFunction",
                function_name=enqueue.function_name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
            )
            self.function_names[ENQUEUE_PURPOSE] = enqueue.function_name
        else:
            CloudwatchEventTarget(
                self,
                "upload-target",
                rule=rule.name,
                arn=props.jobs_queue_arn,
                input_transformer=CloudwatchEventTargetInputTransformer(
                    input_paths=UPLOAD_INPUT_PATHS, input_template=UPLOAD_INPUT_TEMPLATE
                ),
            )
            # SQS is a resource-policy target: no role on the target; the queue policy admits this rule only.
            SqsQueuePolicy(
                self,
                "jobs-queue-policy",
                queue_url=props.jobs_queue_url,
                policy=policy_document(
                    {
                        "Sid": "UploadsFromJobsApiRule",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": props.jobs_queue_arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": rule.arn}},
                    }
                ),
            )

        self.api_id = api.id
        self.api_endpoint = api.api_endpoint
        self.api_execution_arn = api.execution_arn
        self.access_log_group_name = access_logs.name
        self.client_role_arn = client.arn
        self.upload_rule_arn = rule.arn

    def _route_statements(self) -> dict[str, list[Statement]]:
        """Exactly what each route calls, on exactly its bucket, prefix or table."""
        p = self._props
        under_prefix = {"StringLike": {"s3:prefix": [f"{UPLOAD_PREFIX}*"]}}
        return {
            "create": [allow(["s3:PutObject"], [f"{p.raw_bucket_arn}/{UPLOAD_PREFIX}*"], "PresignUploads")],
            "status": [
                allow(["dynamodb:GetItem"], [p.idempotency_table_arn], "ReadClaims"),
                # DescribeJobs and ListJobs have no resource-level permissions.
                allow(["batch:DescribeJobs", "batch:ListJobs"], "*", "ReadJobs"),
                allow(["s3:ListBucket"], [p.raw_bucket_arn], "FindUploads", Condition=under_prefix),
            ],
            "results": [
                allow(["s3:ListBucket"], [p.highlights_bucket_arn], "ListHighlights", Condition=under_prefix),
                allow(["s3:GetObject"], [f"{p.highlights_bucket_arn}/{UPLOAD_PREFIX}*"], "PresignHighlights"),
            ],
        }

    def _function(
        self,
        purpose: str,
        entry_point: str,
        own: list[Statement],
        own_environment: dict[str, str],
        *,
        error_rate: bool = False,
    ) -> LambdaFunction:
        """The function, its log group and role, and its alarm: with `error_rate` (a route's function, called per
        request) on Errors / Invocations above LAMBDA_ERROR_RATE_PERCENT, as sqs_to_batch's; otherwise (the
        enqueue function, one call per upload) on any error."""
        s, p = self._s, self._props
        name = s.name(f"jobs-api-{purpose}")
        log_group = CloudwatchLogGroup(
            self,
            f"{purpose}-logs",
            name=f"/aws/lambda/{name}",
            retention_in_days=s.log_retention_days,
            kms_key_id=p.kms_key_arn,
        )
        role, ready = self._role(purpose, own, log_group.arn)
        environment = {
            "UPLOAD_PREFIX": UPLOAD_PREFIX,
            "URL_EXPIRY_SECONDS": str(s.jobs_api_url_expiry_seconds),
            **own_environment,
        }
        function = LambdaFunction(
            self,
            purpose,
            function_name=name,
            role=role.arn,
            runtime=LAMBDA_RUNTIME,
            handler=f"handler.{entry_point}",
            filename=self._code.path,
            source_code_hash=self._code.asset_hash,
            memory_size=LAMBDA_MEMORY_MB,
            timeout=FUNCTION_TIMEOUT_SECONDS,
            environment=LambdaFunctionEnvironment(variables=environment),
            kms_key_arn=p.kms_key_arn,
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            dead_letter_config=LambdaFunctionDeadLetterConfig(target_arn=p.functions_dlq_arn),
            reserved_concurrent_executions=OTHER_FUNCTIONS_RESERVED_CONCURRENCY
            if s.lambda_reserved_concurrency
            else None,
            vpc_config=LambdaFunctionVpcConfig(
                subnet_ids=p.private_subnet_ids, security_group_ids=[p.lambda_security_group_id]
            ),
            depends_on=[log_group, *ready],
        )
        if error_rate:
            self.alarm_names[f"{purpose}-error-rate"] = rate_alarm(
                self,
                f"{purpose}-error-rate-alarm",
                alarm_name=s.name(f"jobs-api-{purpose}-error-rate"),
                description=f"{name}: more than {LAMBDA_ERROR_RATE_PERCENT} % of invocations failed in 5 minutes",
                namespace="AWS/Lambda",
                dimensions={"FunctionName": function.function_name},
                part=("errors", "Errors"),
                whole=("invocations", "Invocations"),
                label="error rate (%)",
                threshold_percent=LAMBDA_ERROR_RATE_PERCENT,
                alerts_topic_arn=p.alerts_topic_arn,
            ).alarm_name
            return function
        alarm = CloudwatchMetricAlarm(
            self,
            f"{purpose}-errors-alarm",
            alarm_name=s.name(f"jobs-api-{purpose}-errors"),
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": function.function_name},
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[p.alerts_topic_arn],
            ok_actions=[p.alerts_topic_arn],
        )
        self.alarm_names[f"{purpose}-errors"] = alarm.alarm_name
        return function

    def _role(
        self, purpose: str, own: list[Statement], log_group_arn: str
    ) -> tuple[IamRole, list[ITerraformDependable]]:
        s, p = self._s, self._props
        role_name = f"lambda-jobs-api-{purpose}"
        role = IamRole(
            self,
            f"{purpose}-role",
            name=s.name(role_name),
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
            tags={"Name": s.name(role_name)},
        )
        ready: list[ITerraformDependable] = [role]
        for policy in LAMBDA_MANAGED_POLICIES:
            ready.append(
                IamRolePolicyAttachment(
                    self, f"{purpose}-{policy.rsplit('/', 1)[-1]}", role=role.name, policy_arn=f"{AWS_MANAGED}/{policy}"
                )
            )
        document = policy_document(
            allow(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"], "WriteOwnLogs"),
            allow(["sqs:SendMessage"], [p.functions_dlq_arn], "DeadLetters"),
            # Objects, the claim table, the DLQ and the jobs queue are encrypted with the environment's key (an SSE-KMS
            # queue's producer needs kms:GenerateDataKey and kms:Decrypt).
            allow(PUBLISH_KEY_ACTIONS, [p.kms_key_arn], "UseEnvironmentKey"),
            *own,
        )
        ready.append(IamRolePolicy(self, f"{purpose}-policy", name=role_name, role=role.id, policy=document))
        return role, ready


# Each route's function environment beyond UPLOAD_PREFIX and URL_EXPIRY_SECONDS.
ROUTE_ENVIRONMENT = {
    "create": lambda p: {"RAW_BUCKET": p.raw_bucket_name},
    "status": lambda p: {
        "RAW_BUCKET": p.raw_bucket_name,
        "IDEMPOTENCY_TABLE": p.idempotency_table_name,
        "JOB_QUEUE": p.job_queue_arn,
    },
    "results": lambda p: {"HIGHLIGHTS_BUCKET": p.highlights_bucket_name},
}


def client_trust_statements(
    account_id: str, trust_anchor_arns: tuple[str, ...] = (), subject_cns: tuple[str, ...] = ()
) -> list[Statement]:
    """Who may take the client role: the account's IAM principals (each still needs sts:AssumeRole in its own
    policy) and, with trust anchors, IAM Roles Anywhere for certificates of exactly those anchors (and CNs).

    The Roles Anywhere statement is the one the IAM Roles Anywhere User Guide documents ("Trust model", Role trusts;
    "Attribute mapping and trust policy"): the service principal, sts:AssumeRole, sts:SetSourceIdentity and
    sts:TagSession, ``ArnEquals`` on ``aws:SourceArn`` (the trust anchor) and optionally ``StringEquals`` on
    ``aws:PrincipalTag/x509Subject/CN``. Without the anchor condition any certificate of any anchor in the account
    could take the role.
    """
    statements: list[Statement] = [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}}
    ]
    if trust_anchor_arns:
        condition: dict[str, dict[str, list[str]]] = {"ArnEquals": {"aws:SourceArn": list(trust_anchor_arns)}}
        if subject_cns:
            condition["StringEquals"] = {"aws:PrincipalTag/x509Subject/CN": list(subject_cns)}
        statements.append(
            {
                "Sid": "RolesAnywhere",
                "Effect": "Allow",
                "Principal": {"Service": ROLES_ANYWHERE_PRINCIPAL},
                "Action": ROLES_ANYWHERE_ACTIONS,
                "Condition": condition,
            }
        )
    return statements


def upload_event_pattern(raw_bucket_name: str) -> str:
    """S3 "Object Created" events of the raw bucket under the API's prefix (S3 sends them to EventBridge)."""
    return json.dumps(
        {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [raw_bucket_name]}, "object": {"key": [{"prefix": UPLOAD_PREFIX}]}},
        }
    )


def invoke_arns(execution_arn: str) -> list[str]:
    """What a client may invoke: the routes' methods on their paths in any stage ({id} is any one segment)."""
    return sorted({f"{execution_arn}/*/{r.method}{r.path.replace('{id}', '*')}" for r in ROUTES})
