"""A release deploys only images that exist where the platform pulls them.

The release workflow is read as GitHub runs it (its env, step outputs, job outputs and `needs`), its own
`deepsentinel deploy -c ...` arguments are loaded as settings and synthesized, and the image references the task
and job definitions then hold are compared with what the workflow pushed or copied.

Facts the expectations come from:
- Terraform AWS provider, `aws_ecr_repository` attribute reference: `repository_url` is
  `aws_account_id.dkr.ecr.region.amazonaws.com/repositoryName`.
- aws-actions/amazon-ecr-login README: output `registry` is the logged-in registry,
  `<account>.dkr.ecr.<region>.amazonaws.com` for the region configure-aws-credentials set.
- GitHub Actions, "Contexts" (`needs.<job_id>.outputs`, `steps.<step_id>.outputs`) and "Workflow commands"
  (a step sets an output with `echo "<name>=<value>" >> "$GITHUB_OUTPUT"`).
- OCI Distribution Spec, "Pulling manifests": a tag matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from deepsentinel.settings import SettingsError, load_settings
from tests.unit.synth_helpers import of_type

RELEASE = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "release.yml"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"  # what ${{ github.sha }} is: a full 40-hex commit id
ACCOUNT = "123456789012"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
SHELL_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
COMMAND_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
OUTPUT_LINE = re.compile(r'echo\s+"([A-Za-z_][\w-]*)=(.*)"\s*>>\s*"?\$GITHUB_OUTPUT"?')


# ---------------------------------------------------------------------------------------------------------------
# Reading the workflow as the runner does


class Workflow:
    def __init__(self, path: Path) -> None:
        self.document = yaml.safe_load(path.read_text())
        self.jobs: dict[str, dict[str, Any]] = self.document["jobs"]

    def needs(self, job: str) -> list[str]:
        needs = self.jobs[job].get("needs", [])
        return [needs] if isinstance(needs, str) else list(needs)

    def ancestors(self, job: str) -> set[str]:
        found: set[str] = set()
        for parent in self.needs(job):
            found |= {parent, *self.ancestors(parent)}
        return found

    def expression(self, job: str, expr: str, step_index: int) -> str:
        """The value of `${{ expr }}` inside `job` at step `step_index`."""
        if expr == "github.sha":
            return SHA
        if expr == "github.run_id":
            return "4242"
        if expr.startswith("vars."):
            return f"<{expr}>"
        if expr.startswith("env."):
            return self.environment(job, None)[expr.removeprefix("env.")]
        if match := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr):
            return self.step_output(job, match[1], match[2], before=step_index)
        if match := re.fullmatch(r"needs\.([\w-]+)\.outputs\.([\w-]+)", expr):
            parent, name = match[1], match[2]
            assert parent in self.needs(job), f"{job} reads needs.{parent} but does not need it"
            return self.resolve(parent, self.jobs[parent]["outputs"][name], len(self.jobs[parent]["steps"]))
        raise AssertionError(f"unknown expression ${{{{ {expr} }}}} in job {job}")

    def resolve(self, job: str, text: str, step_index: int) -> str:
        return EXPRESSION.sub(lambda m: self.expression(job, m[1], step_index), str(text))

    def environment(self, job: str, step_index: int | None) -> dict[str, str]:
        """Workflow env, then job env, then the step's env; expressions resolved."""
        layers = [self.document.get("env", {}), self.jobs[job].get("env", {})]
        if step_index is not None:
            layers.append(self.jobs[job]["steps"][step_index].get("env", {}))
        values: dict[str, str] = {}
        for layer in layers:
            for key, value in layer.items():
                values[key] = self.resolve(job, value, len(self.jobs[job]["steps"]) if step_index is None
                                           else step_index)
        return values

    def step_output(self, job: str, step_id: str, name: str, *, before: int) -> str:
        steps = self.jobs[job]["steps"]
        index = next((i for i, s in enumerate(steps[:before]) if s.get("id") == step_id), None)
        assert index is not None, f"{job}: step {step_id!r} is read before it runs (or does not exist)"
        step = steps[index]
        if step.get("uses", "").startswith("aws-actions/amazon-ecr-login@") and name == "registry":
            region = self.region(job, index)
            return f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com"
        for line in self.lines(step.get("run", "")):
            if (match := OUTPUT_LINE.search(line)) and match[1] == name:
                return self.shell(job, index, match[2])
        raise AssertionError(f"{job}: step {step_id!r} sets no output {name!r}")

    def region(self, job: str, before: int) -> str:
        """aws-region of the last configure-aws-credentials step before `before`."""
        credentials = [(i, s) for i, s in enumerate(self.jobs[job]["steps"][:before])
                       if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
        assert credentials, f"{job}: no AWS credentials before step {before}"
        index, step = credentials[-1]
        return self.resolve(job, step["with"]["aws-region"], index)

    def shell(self, job: str, step_index: int, text: str) -> str:
        """Expand $NAME / ${NAME} from the step's environment; a script's own variables stay as written."""
        environment = self.environment(job, step_index)
        return SHELL_VARIABLE.sub(lambda m: environment.get(m[1], m[0]), text)

    @staticmethod
    def lines(script: str) -> list[str]:
        return [line.strip() for line in script.replace("\\\n", " ").splitlines() if line.strip()]

    def commands(self, job: str) -> list[tuple[int, list[str]]]:
        """(step index, argv) of every command line of the job's run steps (a `$(...)` substitution counts as a
        command of its own), variables expanded."""
        found = []
        for index, step in enumerate(self.jobs[job]["steps"]):
            for line in self.lines(step.get("run", "")):
                expanded = self.shell(job, index, line)
                for text in (*COMMAND_SUBSTITUTION.findall(expanded), COMMAND_SUBSTITUTION.sub("$(...)", expanded)):
                    found.append((index, [w for w in shlex.split(text) if w not in (";;", ";")]))
        return found


def after(words: list[str], *prefix: str) -> list[str] | None:
    """The words after `prefix` if the command line contains it."""
    for start in range(len(words) - len(prefix) + 1):
        if tuple(words[start:start + len(prefix)]) == prefix:
            return words[start + len(prefix):]
    return None


def option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


@dataclass
class Release:
    pushed: dict[str, set[str]] = field(default_factory=dict)  # job -> image references it pushed
    copies: list[tuple[str, str, str]] = field(default_factory=list)  # (job, target, source)
    deploys: list[tuple[str, int, str, list[str]]] = field(default_factory=list)  # (job, step, env, -c overrides)
    digest_queries: list[tuple[str, str, str, str]] = field(default_factory=list)  # (job, repository, tag, command)


def read_release(workflow: Workflow) -> Release:
    release = Release()
    for job in workflow.jobs:
        release.pushed[job] = set()
        for index, step in enumerate(workflow.jobs[job]["steps"]):
            if step.get("uses", "").startswith("docker/build-push-action@") and step["with"].get("push"):
                tags = workflow.resolve(job, step["with"]["tags"], index)
                release.pushed[job] |= {t.strip() for t in re.split(r"[,\n]", tags) if t.strip()}
        for index, words in workflow.commands(job):
            if (rest := after(words, "docker", "push")) is not None:
                release.pushed[job].add(rest[-1])
            if (rest := after(words, "docker", "buildx", "imagetools", "create")) is not None:
                release.copies.append((job, option(rest, "--tag"), rest[-1]))
            if (rest := after(words, "deepsentinel", "deploy")) is not None:
                overrides = [rest[i + 1] for i, w in enumerate(rest) if w == "-c"]
                release.deploys.append((job, index, option(rest, "--env"), overrides))
            if (rest := after(words, "aws", "ecr", "describe-images")) is not None and "--query" in rest:
                release.digest_queries.append((job, option(rest, "--repository-name"),
                                               option(rest, "--image-ids").removeprefix("imageTag="),
                                               option(rest, "--query")))
    return release


# ---------------------------------------------------------------------------------------------------------------
# Synthesizing with the workflow's own arguments


@dataclass(frozen=True)
class Deployed:
    environment: str
    registry: str
    repository_prefix: str
    worker_images: dict[str, str]  # job definition name -> image
    service_images: dict[str, str]  # task definition family -> image


def image_references(document: dict[str, Any], registry: str) -> tuple[dict[str, str], dict[str, str]]:
    """Image references of the job and task definitions with the repository URL token resolved."""
    urls = {f"${{aws_ecr_repository.{key}.repository_url}}": f"{registry}/{config['name']}"
            for key, config in of_type(document, "aws_ecr_repository").items()}

    def resolved(image: str) -> str:
        for token, url in urls.items():
            image = image.replace(token, url)
        assert "${" not in image, f"unresolved reference in {image}"
        return image

    jobs = {c["name"]: resolved(json.loads(c["container_properties"])["image"])
            for c in of_type(document, "aws_batch_job_definition").values()}
    services = {c["family"]: resolved(json.loads(c["container_definitions"])[0]["image"])
                for c in of_type(document, "aws_ecs_task_definition").values()}
    return jobs, services


@pytest.fixture(scope="module")
def workflow() -> Workflow:
    return Workflow(RELEASE)


@pytest.fixture(scope="module")
def release(workflow) -> Release:
    return read_release(workflow)


@pytest.fixture(scope="module")
def deployed(release, tmp_path_factory) -> dict[str, Deployed]:
    """Each deploy step's environment synthesized with exactly that step's -c arguments."""
    from deepsentinel.stacks.names import platform_stack_name
    from tests.synth_cache import synthesized

    overrides = {env: overrides for _, _, env, overrides in release.deploys}
    settings = {env: load_settings(env, overrides=o) for env, o in overrides.items()}
    assert sorted(settings) == ["dev", "prod"], f"expected a dev and a prod deploy, found {release.deploys}"
    documents = synthesized(tmp_path_factory, overrides.items(), include_account_stack=False).documents
    found = {}
    for env, s in settings.items():
        registry = f"{ACCOUNT}.dkr.ecr.{s.region}.amazonaws.com"
        jobs, services = image_references(documents[platform_stack_name(s)], registry)
        found[env] = Deployed(env, registry, s.prefix, jobs, services)
    return found


# ---------------------------------------------------------------------------------------------------------------


def test_each_deploy_changes_only_the_worker_image_tag(release):
    """The release builds only worker_image/: its deploys may set worker_image_tag and nothing else of images."""
    assert [(env, overrides) for _, _, env, overrides in release.deploys] == [
        ("dev", [f"worker_image_tag={SHA}"]), ("prod", [f"worker_image_tag={SHA}"])]


def test_the_worker_job_definitions_pull_the_commit_from_their_own_environment(deployed):
    for env, d in deployed.items():
        assert set(d.worker_images) == {f"{d.repository_prefix}-video-analysis-gpu",
                                        f"{d.repository_prefix}-video-analysis-cpu"}
        for image in d.worker_images.values():
            assert image == f"{d.registry}/{d.repository_prefix}/video-analysis:{SHA}", env


def test_the_services_keep_the_images_their_own_pipelines_publish(deployed):
    for env, d in deployed.items():
        s = load_settings(env)
        assert d.service_images == {
            f"{d.repository_prefix}-frontend": f"{d.registry}/{d.repository_prefix}/frontend:{s.frontend_image_tag}",
            f"{d.repository_prefix}-backend": f"{d.registry}/{d.repository_prefix}/backend:{s.backend_image_tag}"}
        assert not any(SHA in image for image in d.service_images.values())


def test_every_image_a_deploy_points_at_was_pushed_or_copied_before_it(workflow, release, deployed):
    """An image carrying the commit exists only if an earlier job (through `needs`) or an earlier step of the same
    job pushed or copied exactly that reference."""
    for job, step, env, _ in release.deploys:
        available = set()
        for earlier in workflow.ancestors(job):
            available |= release.pushed[earlier]
            available |= {target for copier, target, _ in release.copies if copier == earlier}
        for copier, target, _ in release.copies:
            copy_step = next(i for i, words in workflow.commands(copier) if target in words)
            if copier == job and copy_step < step:
                available.add(target)
        images = {*deployed[env].worker_images.values(), *deployed[env].service_images.values()}
        released = {image for image in images if SHA in image}
        assert released, f"{env}: the deploy sets no image to the commit"
        assert released <= available, f"{job} deploys {sorted(released - available)}, never pushed or copied"


def test_promotion_copies_the_digest_dev_ran_to_exactly_what_prod_pulls(workflow, release, deployed):
    dev, prod = deployed["dev"], deployed["prod"]
    (dev_image,) = set(dev.worker_images.values())
    (prod_image,) = set(prod.worker_images.values())
    ((copier, target, source),) = release.copies
    assert copier == next(job for job, _, env, _ in release.deploys if env == "prod")
    assert target == prod_image
    # The source is dev's image by digest (immutable), not by tag, and the digest is the one the image job read
    # back from ECR for the very tag it pushed.
    dev_repository, _, digest_expression = source.partition("@")
    assert dev_image.startswith(f"{dev_repository}:") and dev_image in release.pushed["image"]
    assert digest_expression == workflow.resolve(copier, "${{ needs.image.outputs.digest }}", 0)
    image_job_queries = [(repo, tag, query) for job, repo, tag, query in release.digest_queries if job == "image"]
    assert image_job_queries == [(f"{dev.repository_prefix}/video-analysis", SHA, "imageDetails[0].imageDigest")]


def test_promotion_checks_prods_tag_names_that_digest_before_deploying(workflow, release, deployed):
    """ECR's DescribeImages answers imageDetails[].imageDigest for an imageTag (ECR API Reference, DescribeImages);
    the check compares that with the digest dev ran, between the copy and the prod deploy."""
    prod = deployed["prod"]
    job = next(job for job, _, env, _ in release.deploys if env == "prod")
    deploy_step = next(step for j, step, env, _ in release.deploys if env == "prod")
    checks = [(index, words) for index, words in workflow.commands(job)
              if after(words, "aws", "ecr", "describe-images") and "--query" in words]
    assert checks, "no read-back of prod's tag"
    index, words = checks[-1]
    assert index < deploy_step
    assert option(words, "--repository-name") == f"{prod.repository_prefix}/video-analysis"
    assert option(words, "--image-ids") == f"imageTag={SHA}"
    script = workflow.jobs[job]["steps"][index]["run"]
    digest = workflow.resolve(job, "${{ needs.image.outputs.digest }}", index)
    assert workflow.environment(job, index)["DIGEST"] == digest
    assert re.search(r'\[ "\$copied" != "\$DIGEST" \]; then\s+echo "::error::.*"\s+exit 1', script)


def test_the_workflow_region_is_the_region_the_stacks_deploy_to(workflow, deployed):
    """The registry the workflow logs in to is the one the repository URLs name (same account and region)."""
    region = workflow.document["env"]["AWS_REGION"]
    for d in deployed.values():
        assert d.registry.split(".")[3] == region


# ---------------------------------------------------------------------------------------------------------------
# The settings


@pytest.mark.parametrize("tag", ["1.0.0", "_build", SHA, "v2-rc.1_x", "A" * 128])
def test_an_oci_tag_is_accepted(tag):
    """OCI Distribution Spec, "Pulling manifests": [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}."""
    s = load_settings("dev", overrides=[f"frontend_image_tag={tag}", f"backend_image_tag={tag}",
                                        f"worker_image_tag={tag}"])
    assert (s.frontend_image_tag, s.backend_image_tag, s.worker_image_tag) == (tag, tag, tag)


@pytest.mark.parametrize("tag", [".hidden", "-rc", "a" * 129, "1.0+build", "team/1.0", "1.0:x", ""])
def test_a_tag_outside_the_oci_grammar_is_refused_by_name(tag):
    with pytest.raises(SettingsError) as caught:
        load_settings("prod", overrides=[f"worker_image_tag={tag}"])
    assert [p for p in caught.value.problems if p.startswith("worker_image_tag:")], caught.value.problems


def test_the_old_image_tag_setting_names_its_three_replacements(tmp_path):
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('image_tag = "1.2.3"\n')
    for kwargs in ({"overrides": ["image_tag=abc"]}, {"settings_file": settings_file}):
        with pytest.raises(SettingsError) as caught:
            load_settings("dev", **kwargs)
        (problem,) = caught.value.problems
        assert problem.startswith("image_tag: no longer a setting")
        for name in ("frontend_image_tag", "backend_image_tag", "worker_image_tag"):
            assert name in problem
