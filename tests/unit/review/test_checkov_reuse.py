"""run_checkov gives the same files, unchanged, the report of its earlier run in the process, and runs checkov again
for anything that could change the report: a file's content, the files given, the working directory (checkov reads
.checkov.yaml there)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepsentinel.review import policy


@pytest.fixture
def runs(monkeypatch) -> list[list[str]]:
    """checkov's commands as run (a stand-in answering a report that names its run), and a fresh set of reports."""
    commands: list[list[str]] = []

    def fake_checkov(command: list[str], timeout: float) -> dict:
        commands.append(command)
        return {"summary": {"passed": len(commands)}, "results": {"failed_checks": []}}

    monkeypatch.setattr(policy, "_run_checkov", fake_checkov)
    monkeypatch.setattr(policy, "_REPORTS", {})
    return commands


def stack(root: Path, name: str, document: dict) -> Path:
    path = root / "stacks" / name / "cdk.tf.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def test_the_same_files_are_checked_once_and_each_caller_gets_its_own_copy(tmp_path, runs):
    files = {"deepsentinel-dev": stack(tmp_path, "deepsentinel-dev", {"resource": {}})}
    first = policy.run_checkov(files)
    first["summary"]["passed"] = 999  # a caller's edit reaches no later caller
    assert policy.run_checkov(files) == {"summary": {"passed": 1}, "results": {"failed_checks": []}}
    assert len(runs) == 1


def test_a_changed_file_another_file_set_or_another_directory_runs_checkov_again(tmp_path, runs, monkeypatch):
    dev = stack(tmp_path, "deepsentinel-dev", {"resource": {}})
    prod = stack(tmp_path, "deepsentinel-prod", {"resource": {}})
    policy.run_checkov({"deepsentinel-dev": dev})
    dev.write_text(json.dumps({"resource": {"aws_sqs_queue": {"q": {}}}}))
    assert policy.run_checkov({"deepsentinel-dev": dev})["summary"]["passed"] == 2
    assert policy.run_checkov({"deepsentinel-dev": dev, "deepsentinel-prod": prod})["summary"]["passed"] == 3
    monkeypatch.chdir(tmp_path)
    assert policy.run_checkov({"deepsentinel-dev": dev})["summary"]["passed"] == 4
    assert [c.count("-f") for c in runs] == [1, 1, 2, 1]
