"""Restart the ECS services after the RDS-managed database secret rotated.

RDS rotates its managed master secret (every 7 days by default) and ECS reads a secret into a container's
environment only when the task starts, so running backend tasks keep the old password until they are
replaced. EventBridge sends Secrets Manager's ``RotationSucceeded`` event ("AWS Service Event via
CloudTrail"; the secret's ARN in ``detail.additionalEventData.SecretId``, or ``serviceEventDetails.secretId``
as reported for RDS-managed secrets) here, and each service gets a
new deployment (``UpdateService`` with ``forceNewDeployment``): new tasks start with the new password while
the deployment circuit breaker guards the rollout.

Environment:
    CLUSTER      ECS cluster name or ARN (required)
    SERVICES     comma-separated service names (required)
    SECRET_ARN   only events for this secret restart anything (optional; every rotation otherwise)

A failed service does not stop the others; the invocation then raises so EventBridge's retry policy
tries again (UpdateService with forceNewDeployment is safe to repeat).

Standard library and boto3 only (what the Lambda runtime ships).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ROTATION_EVENT = "RotationSucceeded"


class RedeployError(RuntimeError):
    """At least one service could not be restarted (named in the message)."""


@dataclass(frozen=True)
class Settings:
    cluster: str
    services: tuple[str, ...]
    secret_arn: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        cluster = env.get("CLUSTER", "").strip()
        services = tuple(s.strip() for s in env.get("SERVICES", "").split(",") if s.strip())
        missing = [name for name, value in (("CLUSTER", cluster), ("SERVICES", services)) if not value]
        if missing:
            raise ValueError(f"missing environment: {', '.join(missing)}")
        return cls(cluster=cluster, services=services, secret_arn=env.get("SECRET_ARN", "").strip() or None)


@lru_cache(maxsize=1)
def clients() -> Any:
    return boto3.client("ecs")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return process_event(event, ecs=clients(), settings=Settings.from_env())


def rotated_secret(event: Mapping[str, Any]) -> str | None:
    """The rotated secret's ARN, or None for any other event."""
    detail = event.get("detail") or {}
    if detail.get("eventName") != ROTATION_EVENT:
        return None
    # The documented entry names the secret in additionalEventData; RDS-managed secrets are reported with it in
    # serviceEventDetails (tests/fixtures/aws_events/README.md). The rule matches either.
    documented = (detail.get("additionalEventData") or {}).get("SecretId")
    reported = (detail.get("serviceEventDetails") or {}).get("secretId")
    return documented or reported or None


def process_event(event: Mapping[str, Any], *, ecs: Any, settings: Settings) -> dict[str, Any]:
    secret = rotated_secret(event)
    if secret is None or (settings.secret_arn and secret != settings.secret_arn):
        result: dict[str, Any] = {"outcome": "ignored", "secret": secret, "restarted": []}
        _emit(result)
        return result
    restarted: list[str] = []
    failed: dict[str, str] = {}
    for service in settings.services:
        try:
            response = ecs.update_service(cluster=settings.cluster, service=service, forceNewDeployment=True)
            restarted.append(response["service"]["serviceName"])
        except (ClientError, BotoCoreError) as error:
            failed[service] = str(error)
    result = {
        "outcome": "restarted" if not failed else "partial",
        "secret": secret,
        "restarted": restarted,
        "failed": failed,
    }
    _emit(result)
    if failed:
        raise RedeployError(
            f"could not restart {', '.join(failed)} after rotation of {secret}: " + "; ".join(failed.values())
        )
    return result


def _emit(line: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps({"function": "ecs_redeploy", **line}, default=str) + "\n")
