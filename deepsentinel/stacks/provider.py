"""The AWS provider and backend of every stack: real AWS, or every endpoint pointed at one URL (moto)."""

from __future__ import annotations

import keyword
from dataclasses import dataclass

from cdktf import LocalBackend, S3Backend, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags, AwsProviderEndpoints

from deepsentinel.settings import PlatformSettings

# Every service the stacks use; AwsProviderEndpoints takes one keyword per service.
ENDPOINT_SERVICES = (
    "acm",
    "apigatewayv2",
    "applicationautoscaling",
    "batch",
    "budgets",
    "cloudwatch",
    "cloudwatchlogs",
    "dynamodb",
    "ec2",
    "ecr",
    "ecs",
    "elbv2",
    "events",
    "iam",
    "kms",
    "lambda",
    "rds",
    "route53",
    "s3",
    "scheduler",
    "secretsmanager",
    "sns",
    "sqs",
    "sts",
)
LOCAL_MAX_RETRIES = 3


@dataclass(frozen=True, kw_only=True)
class StackOptions:
    """How a stack reaches AWS and keeps its state.

    endpoint_url: None for real AWS; a URL (a local moto server) sends every API call there, the state
    backend's included.
    local_state_dir: None keeps state in the S3 backend the account stack creates (`bootstrap`); a directory
    keeps it in a local `<key>.tfstate` there (the account stack's first apply, the live tests' deployments).
    """

    endpoint_url: str | None = None
    local_state_dir: str | None = None


def _keyword(service: str) -> str:
    """The binding's keyword for a service: Python keywords get a trailing underscore (`lambda_`)."""
    return f"{service}_" if keyword.iskeyword(service) else service


def configure_stack(stack: TerraformStack, settings: PlatformSettings, options: StackOptions, state_key: str) -> None:
    endpoint = options.endpoint_url
    AwsProvider(
        stack,
        "aws",
        region=settings.region,
        default_tags=[AwsProviderDefaultTags(tags=settings.common_tags)],
        access_key="test" if endpoint else None,
        secret_key="test" if endpoint else None,
        skip_credentials_validation=True if endpoint else None,
        # The account id is asked from the endpoint's STS (moto answers); without it the provider cannot tell
        # same-account group references from cross-account ones ("<account>/sg-..." diffs).
        skip_metadata_api_check="true" if endpoint else None,
        s3_use_path_style=True if endpoint else None,
        # Local mode: an action the emulator lacks answers HTTP 500; fail in seconds, not after 25 backoffs.
        max_retries=LOCAL_MAX_RETRIES if endpoint else None,
        endpoints=[AwsProviderEndpoints(**{_keyword(service): endpoint for service in ENDPOINT_SERVICES})]
        if endpoint
        else None,
    )
    if options.local_state_dir is not None:
        LocalBackend(stack, path=f"{options.local_state_dir}/{state_key}.tfstate")
        return
    S3Backend(
        stack, bucket=settings.state_bucket_name, key=state_object_key(state_key), region=settings.region, encrypt=True
    )
    # S3-native locking (a conditional PUT of `<key>.tflock`, Terraform 1.10+) instead of the deprecated DynamoDB
    # table; cdktf 0.21's S3Backend has no parameter for it, hence the override.
    stack.add_override("terraform.backend.s3.use_lockfile", True)
    if endpoint:
        for name, value in local_backend_settings(endpoint).items():
            stack.add_override(f"terraform.backend.s3.{name}", value)


def state_object_key(state_key: str) -> str:
    """The state object of a stack in the state bucket (its lock is this key + `.tflock`)."""
    return f"{state_key}/terraform.tfstate"


def local_backend_settings(endpoint: str) -> dict[str, object]:
    """The S3 backend's settings for a local moto server (the current, non-deprecated names)."""
    return {
        "endpoints": {"s3": endpoint, "sts": endpoint},
        "use_path_style": True,
        "access_key": "test",
        "secret_key": "test",
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": True,
    }
