"""What the local server changes in moto 5.2.5, and why: one registry of patches.

Every deviation from moto's defaults is a MotoException in MOTO_EXCEPTIONS (the resource, what AWS does that moto
does not, and how it is bridged: a moto setting in MOTO_SETTINGS or a response patch in LOCAL_PATCHES); the table in
docs/local-aws.md (The local server and its patches) says the same. `configure_moto()` applies them all (the
server, deepsentinel/local/server.py, calls it before it serves a request); each patch can be applied and undone
on its own (`patch_state`), which is how tests/unit/test_local_patches.py pins each one both ways.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from moto.events.utils import EventMessageType


@dataclass(frozen=True)
class MotoException:
    resource: str
    cause: str
    mechanism: str
    patch: str | None = None  # its LOCAL_PATCHES entry (None: a moto setting, MOTO_SETTINGS)


# What this project changes in moto 5.2.5, and why. Keep in step with configure_moto() and docs/local-aws.md.
MOTO_EXCEPTIONS = (
    MotoException(
        "aws_appautoscaling_target",
        "moto does not implement the Application Auto Scaling ListTagsForResource/TagResource/UntagResource "
        "actions; the server answers HTTP 500 (NotImplementedError), the provider reads tags after every "
        "RegisterScalableTarget and the AWS SDK retries 5xx answers with backoff up to max_retries (25 by "
        "default): the apply looks hung for ~15 minutes",
        "response patch in the local server: the three tag actions, tags kept per scalable-target ARN "
        "(RegisterScalableTarget's Tags included); the provider's max_retries is 3 in local mode so any other "
        "unimplemented action fails in seconds instead of hanging",
        patch="application_autoscaling_tags",
    ),
    MotoException(
        "aws_iam_*_policy_attachment of AWS managed policies",
        "moto starts without AWS managed policies (ReadOnlyAccess, AWSBatchServiceRole, "
        "AmazonECSTaskExecutionRolePolicy, ...): attaching one answers NoSuchEntity",
        "moto setting iam.load_aws_managed_policies=true (moto ships the policy documents)",
    ),
    MotoException(
        "aws_iam_user (force_destroy)",
        "moto does not implement IAM ListServiceSpecificCredentials, which the provider calls before deleting a "
        "user with force_destroy: HTTP 500, destroy fails",
        "response patch in the local server: ListServiceSpecificCredentials answers an empty list (moto cannot "
        "create such credentials, so empty is the true answer) and NoSuchEntity for an unknown user",
        patch="iam_service_specific_credentials",
    ),
    MotoException(
        "aws_db_parameter_group (second plan)",
        "moto's DescribeDBParameters returns parameters without Source; with parameters in the config the provider "
        "keeps only those whose Source is user (or that the config names with a Source): every refresh drops them",
        "response patch: parameters moto reports (only user-set ones exist in moto) carry Source=user",
        patch="rds_parameter_source",
    ),
    MotoException(
        "aws_ecs_service (second plan)",
        "moto's CreateService ignores healthCheckGracePeriodSeconds and availabilityZoneRebalancing, so the refresh "
        "reads 0 and empty (its UpdateService keeps them)",
        "response patch: CreateService stores both fields on the service",
        patch="ecs_service_fields",
    ),
    MotoException(
        "aws_launch_template (second plan)",
        "moto copies CreateLaunchTemplate's TagSpecifications (ResourceType launch-template: the template's own "
        "tags) into version 1's LaunchTemplateData; the refresh reads a tag_specifications block nobody configured",
        "response patch: version data keeps only its own (non launch-template) tag specifications",
        patch="launch_template_data_tags",
    ),
    MotoException(
        "aws_vpc_security_group_ingress/egress_rule (second plan)",
        "moto drops the Description of rules that reference another security group (it reads it from an IP range only)",
        "response patch: the description of a group-referencing rule comes from its group pair. Also "
        "skip_requesting_account_id is off in local mode (moto's STS answers), or the provider reads "
        "'<account>/sg-...' for every same-account reference",
        patch="security_group_rule_descriptions",
    ),
    MotoException(
        "aws_sqs_queue redrive_policy (second plan)",
        "moto answers RedrivePolicy with json.dumps spacing; AWS answers compact JSON, which is what the provider "
        "normalizes the configuration to: a whitespace-only diff on every plan",
        "response patch: RedrivePolicy is answered as compact JSON",
        patch="sqs_redrive_policy_json",
    ),
    MotoException(
        "aws_appautoscaling_policy (destroy)",
        "moto answers DeleteScalingPolicy for a policy that is already gone with ValidationException; AWS answers "
        "ObjectNotFoundException, which the provider takes as deleted. Seen once in a local destroy: a delete whose "
        "answer was lost under load was retried and failed the destroy after 60 s",
        "response patch: a missing policy answers ObjectNotFoundException, as AWS does (an invalid namespace stays "
        "a ValidationException)",
        patch="scaling_policy_not_found",
    ),
    MotoException(
        "Batch jobs (smoke and pipeline checks)",
        "moto runs submitted jobs in Docker, or without Docker (batch.use_docker=false) marks them SUCCEEDED "
        "the moment they are submitted; there is no Docker engine here, and AWS moves a job without dependencies "
        "to RUNNABLE, where it waits until capacity runs it (AWS Batch User Guide, 'Job states')",
        "moto setting batch.use_docker=false, and a submitted job waits in RUNNABLE (PENDING with dependsOn, "
        "which nothing here resolves) until a runner (the smoke command's Batch stand-in) reports each state "
        "and attempt through the local-only endpoint /moto-api/deepsentinel/batch-job-outcome; CancelJob or "
        "TerminateJob of a waiting job fails it at once, as on AWS (moto left it waiting)",
        patch="batch_jobs_wait_for_a_runner",
    ),
    MotoException(
        "S3 object requests on buckets with the TLS-only policy",
        "moto ignores Bool conditions in bucket policies: the Deny on aws:SecureTransport=false matches every "
        "request (AWS sets the key on every request, true over HTTPS), so every PutObject/GetObject answers 403",
        "response patch: statements that apply only to aws:SecureTransport=false are skipped (the local HTTP "
        "endpoint stands in for S3's HTTPS one)",
        patch="s3_policy_secure_transport",
    ),
    MotoException(
        "aws_lambda_function.dead_letter_config (second plan)",
        "moto ignores a function's DeadLetterConfig: it is neither stored nor answered by GetFunction",
        "response patch: the config is stored at create/update and answered as AWS does",
        patch="lambda_dead_letter_config",
    ),
    MotoException(
        "aws_s3_bucket_notification with eventbridge (second plan)",
        "moto stores EventBridgeConfiguration but leaves it out of GetBucketNotificationConfiguration",
        "response patch: the answer carries <EventBridgeConfiguration/> when it is set",
        patch="s3_eventbridge_notification",
    ),
    MotoException(
        "EventBridge input transformers of S3 events at run time (the Jobs API's upload rule)",
        "moto sends S3's EventBridge events to a rule's targets without the target's input transformer, and its "
        "transformer inserts a string variable outside quotes as bare text (invalid JSON) where AWS inserts it as "
        "a JSON string: an upload reached the jobs queue as the raw event, which sqs_to_batch rejects",
        "response patch: S3 events go through the targets' input transformers, and placeholders are filled as AWS "
        "documents (outside quotes the JSON value, inside quotes its text); a target without a transformer gets "
        "the event unchanged",
        patch="eventbridge_input_transformer",
    ),
    MotoException(
        "aws_budgets_budget",
        "moto implements neither DescribeSubscribersForNotification, which the provider calls for every notification "
        "when it reads a budget, nor the Budgets tag actions (ListTagsForResource/TagResource/UntagResource; the "
        "provider's default tags apply to budgets): HTTP 500, the apply fails after the budget is created",
        "response patch: a notification's subscribers are answered from what CreateBudget/CreateNotification stored "
        "(NotFoundException for an unknown one), and tags are kept per budget ARN (CreateBudget's ResourceTags "
        "included, dropped with the budget)",
        patch="budgets_subscribers_and_tags",
    ),
    MotoException(
        "every create with a client token (aws_nat_gateway, aws_scheduler_schedule, ...): a request the AWS SDK "
        "sends again",
        "AWS answers a request sent again with the idempotency token of one that succeeded (the SDKs fill in the "
        "model's idempotencyToken member, ClientToken for EC2's CreateNatGateway and Scheduler's CreateSchedule, "
        "and send it unchanged when they retry) with that request's result, creating nothing more (\"Ensuring "
        'idempotency in Amazon EC2 API requests"; EventBridge Scheduler API Reference, CreateSchedule: ClientToken); '
        "moto ignores the token and runs the request again: a second CreateNatGateway answers "
        "Resource.AlreadyAssociated (its Elastic IP went to the first gateway), a second CreateSchedule "
        "ConflictException, and the apply fails although the resource was made",
        "response patch: a request of an operation whose botocore input shape has an idempotencyToken member, "
        "repeated with the token and parameters of one that succeeded in the same account, region and moto "
        "backend, gets the first answer again without running; the same token with other parameters is refused "
        "IdempotentParameterMismatch on EC2, as EC2 documents (any parameter: AWS allows another Availability Zone), "
        "and answered by moto elsewhere; another token is moto's as before",
        patch="client_token_idempotency",
    ),
    MotoException(
        "aws_lambda_event_source_mapping (SQS) at run time",
        "on every SendMessage moto receives the queue's messages for the mapping and invokes the function, which "
        "cannot run without Docker: each message loses one receive (a malformed message reached the DLQ after "
        "two deliveries, not maxReceiveCount=3)",
        "response patch: moto does not poll for mappings; the smoke command's mapping stand-in receives with the "
        "deployed batch size and runs the deployed code, as the real mapping would",
        patch="sqs_no_builtin_lambda_polling",
    ),
)


# --- patches (run inside the server process) -------------------------------------------------------------

# moto's own settings in the local server: no Docker engine here; AWS managed policies exist on AWS.
MOTO_SETTINGS: dict[str, dict[str, Any]] = {"batch": {"use_docker": False}, "iam": {"load_aws_managed_policies": True}}

_MISSING = object()
_applied: dict[str, list[tuple[Any, str, Any]]] = {}  # applied patch -> what it replaced: (owner, name, original)
_recording: list[tuple[Any, str, Any]] = []
_settings_before: dict[str, Any] | None = None  # moto's settings before configure_moto, for unconfigure_moto


def configure_moto() -> None:
    """Settings and response patches of the local server; idempotent (each patch wraps moto's methods once)."""
    from moto.core.config import default_user_config

    global _settings_before
    config = cast("dict[str, Any]", default_user_config)  # a TypedDict; MOTO_SETTINGS names its sections
    if _settings_before is None:
        _settings_before = {section: config.get(section, _MISSING) for section in MOTO_SETTINGS}
    config.update({section: dict(values) for section, values in MOTO_SETTINGS.items()})
    for name in LOCAL_PATCHES:
        apply_patch(name)


def unconfigure_moto() -> None:
    """moto as released again: every patch undone and the settings back to moto's defaults. Tests that ran a server
    in their own process call it, so later in-process `mock_aws` tests of the same worker see moto unpatched (with
    `load_aws_managed_policies` left on, every `mock_aws` exit rebuilds IAM with all managed policies: minutes)."""
    from moto.core.config import default_user_config

    global _settings_before
    config = cast("dict[str, Any]", default_user_config)  # a TypedDict; MOTO_SETTINGS names its sections
    for name in list(_applied):
        undo_patch(name)
    for section, before in (_settings_before or {}).items():
        config.pop(section, None) if before is _MISSING else config.update({section: before})
    _settings_before = None


def apply_patch(name: str) -> None:
    """One of LOCAL_PATCHES, applied once; what it replaces is remembered for undo_patch."""
    if name in _applied:
        return
    _recording.clear()
    LOCAL_PATCHES[name]()
    _applied[name] = list(_recording)
    _recording.clear()


def undo_patch(name: str) -> None:
    """moto as released again where `name` changed it (the patch tests run each check without the patch)."""
    for owner, attribute, original in reversed(_applied.pop(name, [])):
        if isinstance(owner, dict):
            owner.pop(attribute, None) if original is _MISSING else owner.update({attribute: original})
        elif original is _MISSING:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, original)


@contextmanager
def patch_state(name: str, applied: bool) -> Iterator[None]:
    """moto with one patch applied (or undone) for the duration; as it was afterwards."""
    was_applied = name in _applied
    (apply_patch if applied else undo_patch)(name)
    try:
        yield
    finally:
        (apply_patch if was_applied else undo_patch)(name)


def _replace(owner: Any, name: str, value: Any) -> None:
    """`owner.name = value` (`owner[name]` for a dict), recorded so that undo_patch can put the original back."""
    if isinstance(owner, dict):
        _recording.append((owner, name, owner.get(name, _MISSING)))
        owner[name] = value
    else:  # the class's own attribute: an inherited one is restored by deleting the replacement
        _recording.append((owner, name, vars(owner).get(name, _MISSING)))
        setattr(owner, name, value)


def _patch_application_autoscaling_tags() -> None:
    from moto.applicationautoscaling import models, responses

    cls = responses.ApplicationAutoScalingResponse

    def tag_store(self: Any) -> dict[str, dict[str, str]]:
        backend = self.applicationautoscaling_backend
        if not hasattr(backend, "deepsentinel_tags"):
            backend.deepsentinel_tags = {}
        return backend.deepsentinel_tags

    original_register = cls.register_scalable_target
    original_deregister = models.ApplicationAutoscalingBackend.deregister_scalable_target

    def register_scalable_target(self: Any) -> str:
        body = original_register(self)
        tags = self._get_param("Tags")
        if tags:
            tag_store(self).setdefault(json.loads(body)["ScalableTargetARN"], {}).update(tags)
        return body

    def deregister_scalable_target(self: Any, namespace: str, r_id: str, dimension: str) -> None:
        target = self.targets.get(dimension, {}).get(r_id)
        original_deregister(self, namespace, r_id, dimension)
        if target is not None:
            getattr(self, "deepsentinel_tags", {}).pop(target.arn, None)

    def list_tags_for_resource(self: Any) -> str:
        return json.dumps({"Tags": tag_store(self).get(self._get_param("ResourceARN"), {})})

    def tag_resource(self: Any) -> str:
        tag_store(self).setdefault(self._get_param("ResourceARN"), {}).update(self._get_param("Tags") or {})
        return json.dumps({})

    def untag_resource(self: Any) -> str:
        tags = tag_store(self).get(self._get_param("ResourceARN"), {})
        for key in self._get_param("TagKeys") or []:
            tags.pop(key, None)
        return json.dumps({})

    _replace(cls, "register_scalable_target", register_scalable_target)
    _replace(cls, "list_tags_for_resource", list_tags_for_resource)
    _replace(cls, "tag_resource", tag_resource)
    _replace(cls, "untag_resource", untag_resource)
    _replace(models.ApplicationAutoscalingBackend, "deregister_scalable_target", deregister_scalable_target)


def _patch_iam_service_specific_credentials() -> None:
    from moto.core.responses import ActionResult
    from moto.iam import responses

    cls = responses.IamResponse
    if hasattr(cls, "list_service_specific_credentials"):
        return

    def list_service_specific_credentials(self: Any) -> Any:
        self.backend.get_user(self._get_param("UserName"))  # NoSuchEntity for an unknown user, as AWS does
        return ActionResult({"ServiceSpecificCredentials": []})  # moto cannot create any

    _replace(cls, "list_service_specific_credentials", list_service_specific_credentials)


def _patch_rds_parameter_source() -> None:
    from moto.core.responses import ActionResult
    from moto.rds import responses

    cls = responses.RDSResponse
    original = cls.describe_db_parameters

    def describe_db_parameters(self: Any) -> Any:
        result: Any = original(self)  # moto types ActionResult.result as object; here it is the answer's dict
        # moto keeps only the parameters a user set and reports no Source; AWS says "user" for those
        parameters = [{**p, "Source": p.get("Source") or "user"} for p in result.result["Parameters"]]
        return ActionResult({**result.result, "Parameters": parameters})

    _replace(cls, "describe_db_parameters", describe_db_parameters)


ECS_SERVICE_FIELDS = ("healthCheckGracePeriodSeconds", "availabilityZoneRebalancing")


def _patch_ecs_service_fields() -> None:
    from botocore import xform_name
    from moto.ecs import responses

    cls = responses.EC2ContainerServiceResponse
    original = cls.create_service

    def create_service(self: Any) -> Any:
        result: Any = original(self)  # moto types ActionResult.result as object; here it is the answer's dict
        service = result.result["service"]
        for key in ECS_SERVICE_FIELDS:  # moto's CreateService drops these; its UpdateService keeps them
            value = self._get_param(key)
            if value is not None:
                setattr(service, xform_name(key), value)
        return result

    _replace(cls, "create_service", create_service)


def _patch_launch_template_data_tags() -> None:
    from moto.ec2.models import launch_templates

    cls = launch_templates.LaunchTemplateVersion
    original_init = cls.__init__

    def __init__(self: Any, template: Any, number: int, data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        # CreateLaunchTemplate's TagSpecifications tag the template itself; moto also copies them into
        # version 1's LaunchTemplateData, where AWS keeps only the data's own (instance/volume) specifications.
        own = [t for t in data.get("TagSpecifications", []) if t.get("ResourceType") != "launch-template"]
        data = {k: v for k, v in data.items() if k != "TagSpecifications"} | ({"TagSpecifications": own} if own else {})
        original_init(self, template, number, data, *args, **kwargs)

    _replace(cls, "__init__", __init__)


def _patch_security_group_rule_descriptions() -> None:
    from moto.ec2.models import security_groups

    cls = security_groups.SecurityGroupRule

    def description(self: Any) -> str | None:
        # a rule that references a group keeps its description in the group pair, not in an IP range
        return self.ip_range.get("Description") or (self.source_group or {}).get("Description")

    _replace(cls, "description", property(description))


def _patch_sqs_redrive_policy_json() -> None:
    from moto.sqs import models

    cls = models.Queue
    original: Any = cls.attributes  # the property object (read from the class), not a method as mypy infers

    def attributes(self: Any) -> dict[str, Any]:
        result = original.fget(self)
        if self.redrive_policy:  # AWS answers the policy as compact JSON, moto with json.dumps' spaces
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    _replace(cls, "attributes", property(attributes))


def _patch_scaling_policy_not_found() -> None:
    import botocore.session
    from moto.applicationautoscaling import models
    from moto.core.exceptions import JsonRESTError

    cls = models.ApplicationAutoscalingBackend
    original = cls.delete_scaling_policy
    # AWS validates the namespace first (ValidationException, as moto answers); only a valid one can be not found
    namespaces = set(
        botocore.session.get_session().get_service_model("application-autoscaling").shape_for("ServiceNamespace").enum
    )

    def delete_scaling_policy(
        self: Any, policy_name: str, service_namespace: str, resource_id: str, scalable_dimension: str
    ) -> None:
        key = models.FakeApplicationAutoscalingPolicy.formulate_key(
            service_namespace, resource_id, scalable_dimension, policy_name
        )
        if key not in self.policies and service_namespace in namespaces:  # the provider takes it as deleted
            raise JsonRESTError("ObjectNotFoundException", f"No scaling policy found: {policy_name}")
        original(self, policy_name, service_namespace, resource_id, scalable_dimension)

    _replace(cls, "delete_scaling_policy", delete_scaling_policy)


def _patch_s3_policy_secure_transport() -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3 import models

    def insecure_transport_only(statement: dict[str, Any]) -> bool:
        condition = statement.get("Condition", {})
        return str(condition.get("Bool", {}).get("aws:SecureTransport", "")).lower() == "false"

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        # moto ignores Bool conditions, so a TLS-only Deny would match every request. The local server's plain
        # HTTP stands in for S3's HTTPS endpoint, where aws:SecureTransport is true: such statements never apply.
        document = json.loads(self.policy.decode())
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        document["Statement"] = [s for s in statements if not insecure_transport_only(s)]
        return IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)

    _replace(models.FakeBucket, "get_permission", get_permission)


def _patch_lambda_dead_letter_config() -> None:
    from moto.awslambda import models

    cls = models.LambdaFunction
    init, update, configuration = cls.__init__, cls.update_configuration, cls.get_configuration

    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        init(self, account_id, spec, *args, **kwargs)
        self.dead_letter_config = spec.get("DeadLetterConfig") or None

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "DeadLetterConfig" in config_updates:
            self.dead_letter_config = config_updates["DeadLetterConfig"] or None
        return update(self, config_updates)

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config = configuration(self, *args, **kwargs)
        if getattr(self, "dead_letter_config", None) and self.dead_letter_config.get("TargetArn"):
            config["DeadLetterConfig"] = {"TargetArn": self.dead_letter_config["TargetArn"]}
        return config

    _replace(cls, "__init__", __init__)
    _replace(cls, "update_configuration", update_configuration)
    _replace(cls, "get_configuration", get_configuration)


def _patch_s3_eventbridge_notification() -> None:
    from moto.s3 import responses

    original = responses.S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:
        answer = original(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or getattr(config, "event_bridge", None) is None:
            return answer
        status, headers, body = answer
        body = body.encode() if isinstance(body, str) else body
        element = b"<EventBridgeConfiguration></EventBridgeConfiguration>"
        if b"</NotificationConfiguration>" in body:
            body = body.replace(b"</NotificationConfiguration>", element + b"</NotificationConfiguration>")
        else:  # no other configuration: moto answered an empty result
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><NotificationConfiguration '
                b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' + element + b"</NotificationConfiguration>"
            )
        return status, headers, body

    _replace(responses.S3Response, "get_bucket_notification", get_bucket_notification)


def _patch_sqs_no_builtin_lambda_polling() -> None:
    from moto.sqs import models

    # moto receives a queue's messages for its event source mappings on every SendMessage and invokes the
    # function (which cannot run here), counting a receive AWS would not have made; the mapping's stand-in
    # (deepsentinel.local.stand_in) is the only consumer. Registrations go to a throwaway dict.
    _replace(models.Queue, "lambda_event_source_mappings", property(lambda self: {}, lambda self, value: None))


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def render_input_template(template: str, values: dict[str, Any]) -> str:
    """An EventBridge input template filled as AWS documents it ("Amazon EventBridge input transformation", Input
    transform examples): a placeholder outside quotes becomes the value as JSON (a string quoted and escaped), one
    inside a quoted string its text. Unknown placeholders are left as written."""
    out: list[str] = []
    in_string, escaped, i = False, False, 0
    while i < len(template):
        match = _PLACEHOLDER.match(template, i)
        if match and match[1] in values:
            value = values[match[1]]
            text = json.dumps(value)
            out.append(text[1:-1] if in_string and isinstance(value, str) else text)
            i = match.end()
            continue
        char = template[i]
        if char == '"' and not escaped:
            in_string = not in_string
        escaped = char == "\\" and not escaped
        out.append(char)
        i += 1
    return "".join(out)


def transform_event_input(input_paths: dict[str, str], template: str, event: dict[str, Any]) -> str:
    """What a target with this input transformer receives for `event` (dot-notation paths only)."""
    values: dict[str, Any] = {"aws.events.event.json": {k: v for k, v in event.items() if k != "ingestion-time"}}
    if "ingestion-time" in event:
        values["aws.events.event.ingestion-time"] = event["ingestion-time"]
    for name, path in input_paths.items():
        node: Any = event
        for part in path.removeprefix("$.").split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            values[name] = node
    return render_input_template(template, values)


def _patch_eventbridge_input_transformer() -> None:
    from moto.core.utils import unix_time
    from moto.events import models, utils

    cls = models.Rule
    original_send = cls.send_to_targets

    def parse(input_template: str | None, input_paths_map: dict[str, Any], event: dict[str, Any]) -> Any:
        if not input_template:  # no transformer: the target gets the event itself
            return {k: v for k, v in event.items() if k != "ingestion-time"}
        return json.loads(transform_event_input(input_paths_map or {}, input_template, event))

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        # moto's S3 notification sender passes transform_input=False; AWS applies a target's transformer to S3
        # events like any other. Archive replays (marked with replay-name) keep moto's behaviour.
        if not transform_input and original_event.get("source") == "aws.s3" and "replay-name" not in original_event:
            original_event = {**original_event, "ingestion-time": original_event.get("ingestion-time") or unix_time()}
            transform_input = True
        original_send(self, cast("EventMessageType", original_event), transform_input)

    _replace(utils.EventTemplateParser, "parse", staticmethod(parse))
    _replace(cls, "send_to_targets", send_to_targets)


BATCH_JOB_OUTCOME_PATH = "/moto-api/deepsentinel/batch-job-outcome"


def _patch_batch_jobs_wait_for_a_runner() -> None:
    """A submitted job waits in RUNNABLE, as on AWS until capacity runs it ("Job states": the scheduler moves a job
    without dependencies to RUNNABLE, one with dependencies to PENDING); a runner
    (deepsentinel.local.stand_in.BatchStandIn) reports each state and attempt through BATCH_JOB_OUTCOME_PATH, and
    DescribeJobs answers it as Batch would."""
    from datetime import datetime

    from moto.batch import models as batch_models
    from moto.batch.utils import JobStatus
    from moto.batch_simple import models
    from moto.moto_api._internal import urls

    def wait_for_capacity(self: Any, include_start_attempt: bool, job: Any) -> None:
        self.backend._jobs[job.job_id] = job
        job.log_stream_name = job._stream_name
        # Set, not advanced: moto's "manual" transition of batch::job only moves on advance(), which nothing calls.
        job.status = (JobStatus.PENDING if job.depends_on else JobStatus.RUNNABLE).value

    def job_outcome(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.data or b"{}")  # sent as application/json (form bodies are parsed away)
        if not {"jobId", "status"} <= set(body):
            return 400, {}, json.dumps({"message": "expected JSON with jobId and status"})
        jobs = [
            j
            for backend in models.batch_simple_backends.values()
            for regional in backend.values()
            for j in [regional.backend._jobs.get(body["jobId"])]
            if j is not None
        ]
        if not jobs:
            return 404, {}, json.dumps({"message": f"no job {body['jobId']}"})
        job, now = jobs[0], datetime.now()  # noqa: DTZ005 - moto's Job keeps naive local times, as here
        if body["status"] != JobStatus.STARTING and job.job_started_at.year == 1970:
            job.job_started_at = now  # startedAt: when the job left STARTING (DescribeJobs' JobDetail)
        if body["status"] in (JobStatus.SUCCEEDED, JobStatus.FAILED) or "exitCode" in body:
            job.attempts.append(
                {
                    "container": {
                        "exitCode": body.get("exitCode"),
                        "reason": body.get("reason"),
                        "logStreamName": job.log_stream_name,
                    },
                    "startedAt": int(body.get("startedAt", now.timestamp()) * 1000),
                    "stoppedAt": int(now.timestamp() * 1000),
                    "statusReason": body.get("reason"),
                }
            )
            job.exit_code = body.get("exitCode")
        if body["status"] in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            job.job_stopped, job.job_stopped_at = True, now
            job.job_stopped_reason = body.get("statusReason")
        job.status = body["status"]
        return 200, {}, json.dumps(job.describe())

    original_terminate = batch_models.Job.terminate

    def terminate(self: Any, reason: str) -> None:
        original_terminate(self, reason)  # moto only flags the job for its (here never started) thread
        if self.status in (JobStatus.SUBMITTED, JobStatus.PENDING, JobStatus.RUNNABLE):  # "CancelJob": FAILED
            # moto's Job keeps naive local times (its datetime.now())
            self.job_stopped, self.job_stopped_at, self.status = True, datetime.now(), JobStatus.FAILED.value  # noqa: DTZ005

    _replace(models.BatchSimpleBackend, "_mark_job_as_finished", wait_for_capacity)
    _replace(urls.url_paths, "{0}" + BATCH_JOB_OUTCOME_PATH, job_outcome)
    _replace(batch_models.Job, "terminate", terminate)


def _budget_arn(account_id: str, budget_name: str) -> str:
    return f"arn:aws:budgets::{account_id}:budget/{budget_name}"


def _patch_budgets_subscribers_and_tags() -> None:
    from moto.budgets import responses
    from moto.budgets.exceptions import NotFoundException

    cls = responses.BudgetsResponse
    if hasattr(cls, "describe_subscribers_for_notification"):
        return
    original_create, original_delete = cls.create_budget, cls.delete_budget

    def tag_store(self: Any) -> dict[str, dict[str, str]]:
        backend = self.backend
        if not hasattr(backend, "deepsentinel_tags"):
            backend.deepsentinel_tags = {}
        return backend.deepsentinel_tags

    def same_notification(a: dict[str, Any], b: dict[str, Any]) -> bool:
        keys = ("NotificationType", "ComparisonOperator", "Threshold", "ThresholdType")
        return all(
            str(a.get(k, "PERCENTAGE" if k == "ThresholdType" else None))
            == str(b.get(k, "PERCENTAGE" if k == "ThresholdType" else None))
            for k in keys
        )

    def create_budget(self: Any) -> str:
        answer = original_create(self)
        tags = self._get_param("ResourceTags") or []
        if tags:
            arn = _budget_arn(self._get_param("AccountId"), self._get_param("Budget")["BudgetName"])
            tag_store(self)[arn] = {t["Key"]: t["Value"] for t in tags}
        return answer

    def delete_budget(self: Any) -> str:
        answer = original_delete(self)
        tag_store(self).pop(_budget_arn(self._get_param("AccountId"), self._get_param("BudgetName")), None)
        return answer

    def describe_subscribers_for_notification(self: Any) -> str:
        budget_name = self._get_param("BudgetName")
        budget = self.backend.budgets[self._get_param("AccountId")].get(budget_name)
        if budget is None:
            raise NotFoundException(f"Unable to get subscribers: {budget_name} - the budget doesn't exist.")
        wanted = self._get_param("Notification")
        for notification in budget.notifications:
            if same_notification(notification.details, wanted):
                return json.dumps({"Subscribers": notification.subscribers})
        raise NotFoundException(f"Unable to get subscribers - no such notification on {budget_name}.")

    def list_tags_for_resource(self: Any) -> str:
        tags = tag_store(self).get(self._get_param("ResourceARN"), {})
        return json.dumps({"ResourceTags": [{"Key": k, "Value": v} for k, v in tags.items()]})

    def tag_resource(self: Any) -> str:
        tags = tag_store(self).setdefault(self._get_param("ResourceARN"), {})
        tags.update({t["Key"]: t["Value"] for t in self._get_param("ResourceTags") or []})
        return json.dumps({})

    def untag_resource(self: Any) -> str:
        tags = tag_store(self).get(self._get_param("ResourceARN"), {})
        for key in self._get_param("ResourceTagKeys") or []:
            tags.pop(key, None)
        return json.dumps({})

    for name, method in (
        ("create_budget", create_budget),
        ("delete_budget", delete_budget),
        ("describe_subscribers_for_notification", describe_subscribers_for_notification),
        ("list_tags_for_resource", list_tags_for_resource),
        ("tag_resource", tag_resource),
        ("untag_resource", untag_resource),
    ):
        _replace(cls, name, method)


def _patch_client_token_idempotency() -> None:
    import hashlib
    import threading

    from moto.backends import get_backend
    from moto.core.exceptions import ServiceException
    from moto.core.responses import ActionResult, BaseResponse
    from moto.ec2.exceptions import EC2ClientError

    original = BaseResponse.call_action
    # (account, region, service, operation, token) -> (the answering backend's mark, the parameters' digest, answer)
    answered: dict[tuple[str, ...], tuple[object, str, Any]] = {}
    locks: dict[tuple[str, ...], threading.Lock] = {}
    guard = threading.Lock()

    def call_action(self: Any) -> Any:
        operation = self._get_action()
        token_member = _idempotency_token_member(self.service_name, operation)
        token = self._get_param(token_member) if token_member else None
        if not token:
            return original(self)
        try:  # moto's reset (a new mock_aws, /moto-api/reset) empties a backend's __dict__, and so its mark
            backend = get_backend(self.service_name)[self.current_account][self.region]
        except Exception:  # noqa: BLE001 - a service moto keys otherwise: no replay
            return original(self)
        mark = backend.__dict__.setdefault("deepsentinel_idempotency_mark", object())
        body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
        parameters = hashlib.sha256(body + repr(sorted(self.querystring.items())).encode()).hexdigest()
        request = (self.current_account, self.region, self.service_name, operation, token)
        with guard:
            lock = locks.setdefault(request, threading.Lock())
        with lock:  # a repeat that arrives while the first request runs waits for its answer
            earlier = answered.get(request)
            if earlier is not None and earlier[0] is mark:
                if earlier[1] == parameters:
                    return earlier[2]
                if self.service_name == "ec2":  # "Ensuring idempotency in Amazon EC2 API requests"
                    mismatch = f"Client token {token} was used by a request with other parameters"
                    return _refused(self, EC2ClientError("IdempotentParameterMismatch", mismatch))
            answer = original(self)
            if (
                isinstance(answer, tuple)
                and 200 <= int(answer[0]) < 300
                and (earlier is None or earlier[0] is not mark)
            ):
                answered[request] = (mark, parameters, answer)
            return answer

    def _refused(self: Any, error: ServiceException) -> Any:
        """The error as moto's call_action answers a ServiceException, in the service's protocol (the error's
        module names the service: moto.ec2.exceptions)."""
        status, headers, body = self.serialized(ActionResult(error))
        headers["status"] = status
        status, headers, body = self._transform_response(self.response_headers, (body, headers))
        headers, body = self._enrich_response(headers, body)
        return status, headers, body

    _replace(BaseResponse, "call_action", call_action)


@functools.cache
def _idempotency_token_member(service: str, operation: str) -> str | None:
    """The input member botocore's model marks idempotencyToken (ClientToken, ClientRequestToken, ...), if any."""
    from deepsentinel.local.request_log import service_model

    try:
        model = service_model(service)
    except Exception:  # noqa: BLE001 - a moto service name botocore does not know: no token
        return None
    if operation not in model.operation_names:
        return None
    shape = model.operation_model(operation).input_shape
    members = shape.members.items() if shape else ()
    return next((name for name, member in members if member.metadata.get("idempotencyToken")), None)


# Every patch by name (MotoException.patch); configure_moto applies them in this order.
LOCAL_PATCHES: dict[str, Callable[[], None]] = {
    patch.__name__.removeprefix("_patch_"): patch
    for patch in (
        _patch_application_autoscaling_tags,
        _patch_iam_service_specific_credentials,
        _patch_rds_parameter_source,
        _patch_ecs_service_fields,
        _patch_launch_template_data_tags,
        _patch_security_group_rule_descriptions,
        _patch_sqs_redrive_policy_json,
        _patch_scaling_policy_not_found,
        _patch_batch_jobs_wait_for_a_runner,
        _patch_s3_policy_secure_transport,
        _patch_lambda_dead_letter_config,
        _patch_s3_eventbridge_notification,
        _patch_sqs_no_builtin_lambda_polling,
        _patch_eventbridge_input_transformer,
        _patch_budgets_subscribers_and_tags,
        _patch_client_token_idempotency,
    )
}
