"""ecr_cleanup: which images are left in moto's ECR after a run."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.ecr.models import ecr_backends

from lambda_testkit import ACCOUNT_ID, REGION, count_calls, fail_call, load_handler

FUNCTION = "ecr_cleanup"
REGISTRY = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
DAY = 24 * 3600


@dataclass
class Env:
    module: ModuleType
    ecr: Any
    batch: Any
    ecs: Any
    sizes: dict[str, int]  # digest -> size

    def push(self, repository: str, tag: str | None, *, age_days: float, size: int = 1_000_000) -> str:
        """Push a manifest and backdate its push time; returns its digest."""
        layer = hashlib.sha256(f"{repository}:{tag}:{age_days}:{len(self.sizes)}".encode()).hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": size,
                       "digest": f"sha256:{layer}"},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": size,
                        "digest": f"sha256:{layer}"}],
        }
        params: dict[str, Any] = {"repositoryName": repository, "imageManifest": json.dumps(manifest)}
        if tag is not None:
            params["imageTag"] = tag
        digest = self.ecr.put_image(**params)["image"]["imageId"]["imageDigest"]
        # ECR sets the push time itself; backdate it in moto's backend to build an image history.
        for image in ecr_backends[ACCOUNT_ID][REGION].repositories[repository].images:
            if image.image_digest == digest:
                image.image_pushed_at = int(time.time() - age_days * DAY)
        self.sizes[digest] = size
        return digest

    def left(self, repository: str) -> set[str]:
        """Digests still in the repository."""
        return {i["imageDigest"] for i in self.ecr.describe_images(repositoryName=repository)["imageDetails"]}


@pytest.fixture
def env(handler_module: ModuleType, boto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Env:
    ecr = boto_client("ecr")
    for name in ("video-analysis", "backend"):
        ecr.create_repository(repositoryName=name)
    monkeypatch.setenv("REPOSITORIES", "video-analysis, backend")
    for name in ("MAX_AGE_DAYS", "KEEP_LATEST", "DRY_RUN"):
        monkeypatch.delenv(name, raising=False)
    return Env(handler_module, ecr, boto_client("batch"), boto_client("ecs"), {})


def register_job_definition(env: Env, name: str, image: str) -> str:
    return env.batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={"image": image, "vcpus": 1, "memory": 512, "command": ["run"]},
    )["jobDefinitionArn"]


def register_task_definition(env: Env, family: str, image: str) -> str:
    return env.ecs.register_task_definition(
        family=family, containerDefinitions=[{"name": "app", "image": image, "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture
def history(env: Env, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """video-analysis: seven images of varying ages, some referenced; KEEP_LATEST=2, MAX_AGE_DAYS=30."""
    monkeypatch.setenv("KEEP_LATEST", "2")
    monkeypatch.setenv("MAX_AGE_DAYS", "30")
    d = {
        "v1": env.push("video-analysis", "v1", age_days=100, size=100),
        "v2": env.push("video-analysis", "v2", age_days=90, size=200),
        "v3": env.push("video-analysis", "v3", age_days=60, size=300),
        "v4": env.push("video-analysis", "v4", age_days=40, size=400),
        "v5": env.push("video-analysis", "v5", age_days=5, size=500),
        "old-untagged": env.push("video-analysis", None, age_days=50, size=1000),
        "new-untagged": env.push("video-analysis", None, age_days=1, size=2000),
    }
    # v2 runs in an ACTIVE Batch job definition (by tag), v1 in an ACTIVE ECS task definition (by digest).
    register_job_definition(env, "video-analysis-gpu", f"{REGISTRY}/video-analysis:v2")
    register_task_definition(env, "legacy", f"{REGISTRY}/video-analysis@{d['v1']}")
    # v3 only appears in a deregistered (INACTIVE) job definition: no protection.
    arn = register_job_definition(env, "video-analysis-old", f"{REGISTRY}/video-analysis:v3")
    env.batch.deregister_job_definition(jobDefinition=arn)
    return d


def test_deletes_old_unreferenced_images_and_keeps_latest_referenced_and_recent(
    env: Env, history: dict[str, str], lambda_context, capsys
) -> None:
    result = env.module.handler({"source": "aws.events"}, lambda_context)

    assert env.left("video-analysis") == {history[k] for k in ("v1", "v2", "v4", "v5", "new-untagged")}
    report = result["repositories"]["video-analysis"]
    assert report == {"scanned": 7, "deleted": 2, "bytes_freed": 300 + 1000, "kept_latest": 2,
                      "kept_referenced": 2, "kept_recent": 1}
    assert result["dry_run"] is False
    assert result["total_deleted"] == 2 and result["total_bytes_freed"] == 1300
    assert result["repositories"]["backend"]["deleted"] == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(line["repository"], line["deleted"], line["bytes_freed"]) for line in lines} == {
        ("video-analysis", 2, 1300), ("backend", 0, 0)
    }


def test_dry_run_reports_the_same_plan_and_deletes_nothing(
    env: Env, history: dict[str, str], lambda_context, monkeypatch
) -> None:
    monkeypatch.setenv("DRY_RUN", "true")
    calls = count_calls(*env.module.clients().__dict__.values())

    result = env.module.handler({}, lambda_context)

    assert env.left("video-analysis") == set(history.values())
    assert result["dry_run"] is True
    assert result["repositories"]["video-analysis"]["deleted"] == 2
    assert result["repositories"]["video-analysis"]["bytes_freed"] == 1300
    assert "ECR.BatchDeleteImage" not in calls


def test_defaults_keep_ten_tagged_images_and_thirty_days(env: Env, lambda_context) -> None:
    digests = [env.push("backend", f"b{i}", age_days=100 - i) for i in range(12)]  # all older than 30 days
    recent_untagged = env.push("backend", None, age_days=29)

    result = env.module.handler({}, lambda_context)

    # The two oldest go; the newest ten tagged stay although they are old; the 29-day image stays.
    assert env.left("backend") == set(digests[2:]) | {recent_untagged}
    assert result["repositories"]["backend"]["deleted"] == 2


def test_images_referenced_by_tag_default_latest_or_registry_with_port_are_kept(env: Env, lambda_context, monkeypatch) -> None:
    monkeypatch.setenv("KEEP_LATEST", "0")
    latest = env.push("backend", "latest", age_days=200)
    pinned = env.push("backend", "2.0", age_days=200)
    gone = env.push("backend", "1.0", age_days=200)
    register_task_definition(env, "backend", f"{REGISTRY}/backend")  # no tag means :latest
    register_job_definition(env, "backend-migrate", "registry.local:5000/backend:2.0")

    env.module.handler({}, lambda_context)

    assert env.left("backend") == {latest, pinned}
    assert gone not in env.left("backend")


def test_deregistered_task_definition_no_longer_protects(env: Env, lambda_context, monkeypatch) -> None:
    monkeypatch.setenv("KEEP_LATEST", "0")
    old = env.push("backend", "old", age_days=60)
    arn = register_task_definition(env, "backend", f"{REGISTRY}/backend:old")
    env.ecs.deregister_task_definition(taskDefinition=arn)
    env.module.handler({}, lambda_context)
    assert old not in env.left("backend")


def test_unreadable_references_stop_the_run_before_any_deletion(env: Env, history: dict[str, str], lambda_context) -> None:
    fail_call(env.module.clients().ecs, "ListTaskDefinitions", code="AccessDeniedException")
    with pytest.raises(ClientError) as caught:
        env.module.handler({}, lambda_context)
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert env.left("video-analysis") == set(history.values())


def test_missing_repository_fails_the_run_after_cleaning_the_others(env: Env, lambda_context, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REPOSITORIES", "nope,backend")
    monkeypatch.setenv("KEEP_LATEST", "0")
    env.push("backend", "x", age_days=45, size=42)

    with pytest.raises(env.module.CleanupError, match="nope") as excinfo:
        env.module.handler({}, lambda_context)

    assert env.left("backend") == set()
    assert '"total_bytes_freed": 42' in str(excinfo.value)
    levels = {json.loads(line)["repository"]: json.loads(line)["level"] for line in capsys.readouterr().out.splitlines()}
    assert levels == {"nope": "ERROR", "backend": "INFO"}


@pytest.mark.parametrize(
    ("env_vars", "message"),
    [
        ({"REPOSITORIES": " , "}, "REPOSITORIES"),
        ({"REPOSITORIES": "a", "MAX_AGE_DAYS": "0"}, "MAX_AGE_DAYS"),
        ({"REPOSITORIES": "a", "KEEP_LATEST": "-1"}, "KEEP_LATEST"),
        ({"REPOSITORIES": "a", "KEEP_LATEST": "ten"}, "KEEP_LATEST"),
        ({"REPOSITORIES": "a", "DRY_RUN": "maybe"}, "DRY_RUN"),
    ],
)
def test_settings_validation(env_vars: dict[str, str], message: str) -> None:
    module = load_handler(FUNCTION)
    with pytest.raises(module.CleanupError, match=message):
        module.Settings.from_env(env_vars)


def test_settings_defaults() -> None:
    settings = load_handler(FUNCTION).Settings.from_env({"REPOSITORIES": "frontend,backend,frontend"})
    assert settings.repositories == ("frontend", "backend")
    assert (settings.max_age_days, settings.keep_latest, settings.dry_run) == (30, 10, False)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (f"{REGISTRY}/video-analysis:1.4.0", ("video-analysis", "1.4.0", None)),
        (f"{REGISTRY}/team/video-analysis", ("team/video-analysis", "latest", None)),
        ("localhost:5000/backend@sha256:abc", ("backend", None, "sha256:abc")),
        ("backend:2@sha256:abc", ("backend", "2", "sha256:abc")),
        ("library/nginx", ("library/nginx", "latest", None)),
    ],
)
def test_image_reference_parsing(ref: str, expected: tuple[str, str | None, str | None]) -> None:
    parsed = load_handler(FUNCTION).ImageRef.parse(ref)
    assert (parsed.repository, parsed.tag, parsed.digest) == expected


def test_images_ecr_refuses_to_delete_are_not_counted(env: Env, lambda_context, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KEEP_LATEST", "0")
    stuck = env.push("backend", "stuck", age_days=60, size=10)
    freed = env.push("backend", "freed", age_days=60, size=20)
    ecr = env.module.clients().ecr

    def refuse_stuck(params: dict[str, Any], **_: Any) -> None:
        # ECR answers 200 with a per-image failure, e.g. for a manifest a manifest list still uses.
        body = json.loads(params["body"])
        body["imageIds"] = [i for i in body["imageIds"] if i["imageDigest"] != stuck]
        params["body"] = json.dumps(body).encode()

    def add_failure(parsed: dict[str, Any], **_: Any) -> None:
        parsed.setdefault("failures", []).append(
            {"imageId": {"imageDigest": stuck}, "failureCode": "ImageReferencedByManifestList",
             "failureReason": "Requested image is referenced by a manifest list"})

    ecr.meta.events.register("before-call.ecr.BatchDeleteImage", refuse_stuck)
    ecr.meta.events.register("after-call.ecr.BatchDeleteImage", add_failure)

    result = env.module.handler({}, lambda_context)

    assert env.left("backend") == {stuck}
    assert result["repositories"]["backend"]["deleted"] == 1
    assert result["repositories"]["backend"]["bytes_freed"] == 20
    assert freed not in env.left("backend")
    assert any('"ImageReferencedByManifestList' in line for line in capsys.readouterr().out.splitlines())
