"""Restart the ECS services after the RDS-managed database secret rotated.

RDS rotates its managed master secret (every 7 days by default) and ECS reads a secret into a container's
environment only when the task starts, so running backend tasks keep the old password until they are
replaced. EventBridge sends Secrets Manager's ``RotationSucceeded`` event ("AWS Service Event via
CloudTrail"; the secret's ARN in ``detail.additionalEventData.SecretId``, or ``serviceEventDetails.secretId``
as reported for RDS-managed secrets) here, and each service gets a
new deployment (``UpdateService`` with ``forceNewDeployment``): new tasks start with the new password while
the deployment circuit breaker guards the rollout.

Only a rotation of the DB instance's own master secret restarts anything: its ARN is read from the instance when the
event comes (``DescribeDBInstances``, ``MasterUserSecret.SecretArn``; "MasterUserSecret", Amazon RDS API Reference),
so the function names only the instance and is deployed before it is (the instance's 80 s of creation no longer
precede it in an apply), and a managed secret the instance was given since is the one checked.

Environment:
    CLUSTER      ECS cluster name or ARN (required)
    SERVICES     comma-separated service names (required)
    DB_INSTANCE  the RDS instance identifier whose managed master secret's rotation restarts them (required)

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
    db_instance: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        cluster = env.get("CLUSTER", "").strip()
        services = tuple(s.strip() for s in env.get("SERVICES", "").split(",") if s.strip())
        db_instance = env.get("DB_INSTANCE", "").strip()
        required = (("CLUSTER", cluster), ("SERVICES", services), ("DB_INSTANCE", db_instance))
        missing = [name for name, value in required if not value]
        if missing:
            raise ValueError(f"missing environment: {', '.join(missing)}")
        return cls(cluster=cluster, services=services, db_instance=db_instance)


@dataclass(frozen=True)
class Clients:
    ecs: Any
    rds: Any


@lru_cache(maxsize=1)
def clients() -> Clients:
    """Clients created on first use (after a test's mock starts) and reused while the runtime is warm."""
    return Clients(ecs=boto3.client("ecs"), rds=boto3.client("rds"))


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    c = clients()
    return process_event(event, ecs=c.ecs, rds=c.rds, settings=Settings.from_env())


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


def master_secret_arn(rds: Any, db_instance: str) -> str | None:
    """The ARN of the instance's RDS-managed master secret, None when it has none; RedeployError when it cannot be
    read (EventBridge tries the event again)."""
    try:
        (instance,) = rds.describe_db_instances(DBInstanceIdentifier=db_instance)["DBInstances"]
    except (ClientError, BotoCoreError) as error:
        raise RedeployError(f"could not read the master secret of DB instance {db_instance}: {error}") from error
    return (instance.get("MasterUserSecret") or {}).get("SecretArn")


def process_event(event: Mapping[str, Any], *, ecs: Any, rds: Any, settings: Settings) -> dict[str, Any]:
    secret = rotated_secret(event)
    if secret is None or secret != master_secret_arn(rds, settings.db_instance):
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
