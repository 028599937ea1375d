"""Weekly ECR cleanup: delete old images that nothing can still run.

For each repository in ``REPOSITORIES`` an image is deleted when all of these hold:

* it was pushed more than ``MAX_AGE_DAYS`` ago;
* it is not among the newest ``KEEP_LATEST`` tagged images of its repository (rollback targets);
* no ACTIVE AWS Batch job definition and no ACTIVE ECS task definition revision references it, by
  tag or by digest (deleting those would break the next job or the next task launch).

ECR lifecycle rules cannot express the last condition, hence this function. The references are read
once per invocation, before anything is deleted; if they cannot be read, nothing is deleted.

``DRY_RUN=true`` only reports. The result (also logged, one JSON line per repository) gives, per
repository, the number of images deleted (or that would be) and the bytes freed. The bytes are the
sum of ``imageSizeInBytes``; layers shared with kept images stay stored, so the storage actually
released can be smaller.

Environment:
    REPOSITORIES   comma-separated repository names (required)
    MAX_AGE_DAYS   default 30
    KEEP_LATEST    default 10
    DRY_RUN        true/false (default false)

Standard library and boto3 only (what the Lambda runtime ships).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_MAX_AGE_DAYS = 30
DEFAULT_KEEP_LATEST = 10
DELETE_BATCH_SIZE = 100  # BatchDeleteImage's limit
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class CleanupError(Exception):
    """Raised after all repositories were processed if any of them failed (so the error alarm fires)."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    repositories: tuple[str, ...]
    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    keep_latest: int = DEFAULT_KEEP_LATEST
    dry_run: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        problems: list[str] = []
        repositories = tuple(dict.fromkeys(r.strip() for r in env.get("REPOSITORIES", "").split(",") if r.strip()))
        if not repositories:
            problems.append("REPOSITORIES must name at least one repository")
        max_age = _int_env(env, "MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS, minimum=1, problems=problems)
        keep = _int_env(env, "KEEP_LATEST", DEFAULT_KEEP_LATEST, minimum=0, problems=problems)
        raw_dry = env.get("DRY_RUN", "").strip().lower()
        if raw_dry not in _TRUE | _FALSE:
            problems.append(f"DRY_RUN must be true or false, got {raw_dry!r}")
        if problems:
            raise CleanupError("; ".join(problems))
        return cls(repositories=repositories, max_age_days=max_age, keep_latest=keep, dry_run=raw_dry in _TRUE)


@dataclass(frozen=True)
class ImageRef:
    """One image reference as written in a job or task definition."""

    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        """``[registry/]repo[:tag][@digest]``; the registry host is dropped (matching is by name)."""
        name, _, digest = ref.partition("@")
        tag = None
        colon = name.rfind(":")
        if colon > name.rfind("/"):  # a colon after the last slash is a tag, before it a registry port
            name, tag = name[:colon], name[colon + 1 :]
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            name = rest
        if tag is None and not digest:
            tag = "latest"
        return cls(repository=name, tag=tag, digest=digest or None)


@dataclass
class References:
    """Tags and digests in use, per repository name."""

    tags: dict[str, set[str]] = field(default_factory=dict)
    digests: dict[str, set[str]] = field(default_factory=dict)

    def add(self, image: str) -> None:
        ref = ImageRef.parse(image)
        if ref.tag:
            self.tags.setdefault(ref.repository, set()).add(ref.tag)
        if ref.digest:
            self.digests.setdefault(ref.repository, set()).add(ref.digest)

    def uses(self, repository: str, image: Mapping[str, Any]) -> bool:
        if image.get("imageDigest") in self.digests.get(repository, ()):
            return True
        return bool(set(image.get("imageTags") or ()) & self.tags.get(repository, set()))


@dataclass(frozen=True, kw_only=True)
class RepositoryReport:
    repository: str
    scanned: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    kept_latest: int = 0
    kept_referenced: int = 0
    kept_recent: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "repository"}
        if data["error"] is None:
            del data["error"]
        return data


@dataclass(frozen=True)
class Clients:
    ecr: Any
    batch: Any
    ecs: Any


@lru_cache(maxsize=1)
def clients() -> Clients:
    """Clients created on first use (after a test's mock starts) and reused while the runtime is warm."""
    return Clients(ecr=boto3.client("ecr"), batch=boto3.client("batch"), ecs=boto3.client("ecs"))


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return run_cleanup(clients=clients(), settings=Settings.from_env(), now=datetime.now(UTC))


def run_cleanup(*, clients: Clients, settings: Settings, now: datetime) -> dict[str, Any]:
    # Read every reference first: an incomplete picture must stop the run, not delete a live image.
    references = active_references(clients.batch, clients.ecs)
    reports = [
        clean_repository(clients.ecr, repository, references=references, settings=settings, now=now)
        for repository in settings.repositories
    ]
    for report in reports:
        _emit(
            {
                "level": "ERROR" if report.error else "INFO",
                "repository": report.repository,
                "dry_run": settings.dry_run,
                **report.as_dict(),
            }
        )
    result = {
        "dry_run": settings.dry_run,
        "repositories": {r.repository: r.as_dict() for r in reports},
        "total_deleted": sum(r.deleted for r in reports),
        "total_bytes_freed": sum(r.bytes_freed for r in reports),
    }
    failed = [r for r in reports if r.error]
    if failed:
        raise CleanupError("; ".join(f"{r.repository}: {r.error}" for r in failed) + f" (result: {json.dumps(result)})")
    return result


def active_references(batch: Any, ecs: Any) -> References:
    refs = References()
    for page in batch.get_paginator("describe_job_definitions").paginate(status="ACTIVE"):
        for definition in page.get("jobDefinitions", []):
            for image in _job_definition_images(definition):
                refs.add(image)
    for page in ecs.get_paginator("list_task_definitions").paginate(status="ACTIVE"):
        for arn in page.get("taskDefinitionArns", []):
            task = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            for container in task.get("containerDefinitions", []):
                if container.get("image"):
                    refs.add(container["image"])
    return refs


def _job_definition_images(definition: Mapping[str, Any]) -> Iterator[str]:
    # Single-node, multi-node, ECS-properties and EKS-properties job definitions keep images apart.
    containers: list[Mapping[str, Any]] = [definition.get("containerProperties") or {}]
    for node_range in (definition.get("nodeProperties") or {}).get("nodeRangeProperties", []):
        containers.append(node_range.get("container") or {})
    for task in (definition.get("ecsProperties") or {}).get("taskProperties", []):
        containers.extend(task.get("containers") or [])
    containers.extend(((definition.get("eksProperties") or {}).get("podProperties") or {}).get("containers") or [])
    for container in containers:
        if container.get("image"):
            yield container["image"]


def clean_repository(
    ecr: Any, repository: str, *, references: References, settings: Settings, now: datetime
) -> RepositoryReport:
    try:
        images = list(_images(ecr, repository))
        plan = plan_deletions(repository, images, references=references, settings=settings, now=now)
        deleted = plan["delete"] if settings.dry_run else _delete(ecr, repository, plan["delete"])
    except (ClientError, BotoCoreError) as exc:
        return RepositoryReport(repository=repository, error=str(exc))
    return RepositoryReport(
        repository=repository,
        scanned=len(images),
        deleted=len(deleted),
        bytes_freed=sum(int(i.get("imageSizeInBytes") or 0) for i in deleted),
        kept_latest=len(plan["latest"]),
        kept_referenced=len(plan["referenced"]),
        kept_recent=len(plan["recent"]),
    )


def plan_deletions(
    repository: str,
    images: Iterable[Mapping[str, Any]],
    *,
    references: References,
    settings: Settings,
    now: datetime,
) -> dict[str, list[Mapping[str, Any]]]:
    """Sort the images into delete / latest / referenced / recent. Pure: no AWS calls."""
    cutoff = now - timedelta(days=settings.max_age_days)
    newest_first = sorted(images, key=lambda i: _pushed_at(i), reverse=True)
    tagged = [i for i in newest_first if i.get("imageTags")]
    latest = {i["imageDigest"] for i in tagged[: settings.keep_latest]}
    plan: dict[str, list[Mapping[str, Any]]] = {"delete": [], "latest": [], "referenced": [], "recent": []}
    for image in newest_first:
        if image["imageDigest"] in latest:
            plan["latest"].append(image)
        elif references.uses(repository, image):
            plan["referenced"].append(image)
        elif _pushed_at(image) >= cutoff:
            plan["recent"].append(image)
        else:
            plan["delete"].append(image)
    return plan


def _images(ecr: Any, repository: str) -> Iterator[Mapping[str, Any]]:
    for page in ecr.get_paginator("describe_images").paginate(repositoryName=repository):
        yield from page.get("imageDetails", [])


def _delete(ecr: Any, repository: str, images: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Delete by digest (removes every tag of the manifest); returns the images actually deleted."""
    by_digest = {i["imageDigest"]: i for i in images}
    deleted: list[Mapping[str, Any]] = []
    digests = list(by_digest)
    for start in range(0, len(digests), DELETE_BATCH_SIZE):
        chunk = digests[start : start + DELETE_BATCH_SIZE]
        response = ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageDigest": d} for d in chunk])
        failed: set[str] = set()
        for failure in response.get("failures", []):
            failed.add((failure.get("imageId") or {}).get("imageDigest", ""))
            _emit(
                {
                    "level": "WARNING",
                    "repository": repository,
                    "image": failure.get("imageId"),
                    "message": f"{failure.get('failureCode')}: {failure.get('failureReason')}",
                }
            )
        # Everything not listed as a failure is gone (imageIds lists one entry per *tag*, so it is
        # not a reliable inventory for untagged or multi-tagged manifests).
        deleted.extend(by_digest[d] for d in chunk if d not in failed)
    return deleted


def _pushed_at(image: Mapping[str, Any]) -> datetime:
    pushed = image.get("imagePushedAt")
    if isinstance(pushed, datetime):
        return pushed if pushed.tzinfo else pushed.replace(tzinfo=UTC)
    if isinstance(pushed, (int, float)):
        return datetime.fromtimestamp(pushed, tz=UTC)
    # Unknown push time: treat as new, the safe side for a deletion.
    return datetime.max.replace(tzinfo=UTC)


def _int_env(env: Mapping[str, str], name: str, default: int, *, minimum: int, problems: list[str]) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name} must be an integer, got {raw!r}")
        return default
    if value < minimum:
        problems.append(f"{name} must be >= {minimum}, got {value}")
    return value


def _emit(line: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(line, default=str) + "\n")
