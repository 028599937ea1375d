"""The `deepsentinel` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def deepsentinel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deepsentinel.cli", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


def test_synth_one_environment_prints_the_resource_table(tmp_path: Path):
    result = deepsentinel("synth", "--env", "dev", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    modules = {row[1]: int(row[2]) for row in rows if row and row[0] == "deepsentinel-dev" and row[1] != "total"}
    assert set(modules) == {"encryption", "network", "security", "storage", "iam", "compute", "pipeline"}
    total = next(int(row[2]) for row in rows if row[:2] == ["deepsentinel-dev", "total"])
    assert total == sum(modules.values()) >= 140
    assert sorted(p.name for p in (tmp_path / "stacks").iterdir()) == ["deepsentinel-account", "deepsentinel-dev"]
    assert "Node 20 is end-of-life" not in result.stdout + result.stderr


def test_unknown_environment_is_refused_by_the_parser():
    result = deepsentinel("synth", "--env", "staging")
    assert result.returncode == 2 and "invalid choice: 'staging' (choose from 'dev', 'prod')" in result.stderr


def test_validate_without_synthesized_stacks_says_what_to_do(tmp_path: Path):
    result = deepsentinel("validate", "--no-synth", "--out", str(tmp_path))
    assert result.returncode == 1 and "run `deepsentinel synth` first" in result.stderr
