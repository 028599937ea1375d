"""The AWS provider and backend of every stack: real AWS, or every endpoint pointed at one URL (moto).

A local stack's provider names no `endpoints`: terraform runs with `AWS_ENDPOINT_URL` set to the server
(`deepsentinel.terraform.environment(endpoint_url=...)`), which the provider applies to every service. The block would
cost each provider start that validates or configures the provider about 1.9 s of CPU (the plugin framework's
validation of that set of some 450 attributes; a validate of one resource 2.6 -> 0.75 provider CPU-s on 2026-12-03,
docs/local-speed.md), two of the three starts of a plan or apply. The state backend keeps its own `endpoints`
(Terraform's code, not the provider's). Run without that variable, a local stack reaches AWS with the test keys (its
account lookup, IAM's GetUser, first), which AWS refuses (InvalidClientTokenId): nothing of a real account is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf import LocalBackend, S3Backend, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags

from deepsentinel.settings import PlatformSettings
from deepsentinel.stacks.names import state_object_key

LOCAL_MAX_RETRIES = 3


@dataclass(frozen=True, kw_only=True)
class StackOptions:
    """How a stack reaches AWS and keeps its state.

    endpoint_url: None for real AWS; a URL (a local moto server): the state backend is pointed there, the provider
    gets test keys and is sent there by terraform's environment (`terraform.environment(endpoint_url=...)`).
    local_state_dir: None keeps state in the S3 backend the account stack creates (`bootstrap`); a directory
    keeps it in a local `<key>.tfstate` there (the account stack's first apply, the live tests' deployments).
    """

    endpoint_url: str | None = None
    local_state_dir: str | None = None


def configure_stack(stack: TerraformStack, settings: PlatformSettings, options: StackOptions, state_key: str) -> None:
    endpoint = options.endpoint_url
    AwsProvider(
        stack,
        "aws",
        region=settings.region,
        default_tags=[AwsProviderDefaultTags(tags=settings.common_tags)],
        **(local_provider_settings() if endpoint else {}),
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


def local_provider_settings() -> dict[str, Any]:
    """The provider's arguments for a local server, besides its region and default tags (Terraform's names, which are
    also AwsProvider's keyword arguments); the server's URL comes from terraform's environment."""
    return {
        "access_key": "test",
        "secret_key": "test",
        "skip_credentials_validation": True,
        # The account id is asked from the server (moto answers); without it the provider cannot tell same-account
        # group references from cross-account ones ("<account>/sg-..." diffs).
        "skip_metadata_api_check": "true",
        "s3_use_path_style": True,
        # An action the emulator lacks answers HTTP 500: fail in seconds, not after 25 backoffs.
        "max_retries": LOCAL_MAX_RETRIES,
    }


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
