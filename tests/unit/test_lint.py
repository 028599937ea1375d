"""Lint and types over the code that ships: ruff (lint and format) and mypy over deepsentinel/, lambdas/ and
worker_image/src/, configured in pyproject.toml ([tool.ruff], [tool.mypy]), zero findings. The pull-request workflow
runs the same commands. Each test prints the findings when it fails.

mypy keeps its cache in pytest's (.pytest_cache/d/mypy): a first run analyses the imported libraries (about 17 s
of CPU, torch left out: pyproject.toml), later ones only what changed (seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TREES = ("deepsentinel", "lambdas", "worker_image/src")
PYPROJECT = REPO / "pyproject.toml"
# one xdist worker runs them all: the two mypy runs share one cache, never at once
pytestmark = pytest.mark.xdist_group("lint")


def run(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    # `python -m`: the ruff and mypy of this interpreter's environment (the dev extra pins them)
    return subprocess.run(
        [sys.executable, "-m", *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd, check=False
    )


@pytest.fixture(scope="module")
def mypy_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)  # None under `-p no:cacheprovider` (benchmarks/test_suite.py)
    return cache.mkdir("mypy") if cache is not None else tmp_path_factory.mktemp("mypy-cache")


def test_ruff_finds_nothing():
    result = run("ruff", "check", "--output-format", "concise", *TREES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_ruff_formatted():
    result = run("ruff", "format", "--diff", *TREES)
    assert result.returncode == 0, f"run `ruff format {' '.join(TREES)}`:\n{result.stdout}{result.stderr}"


def test_mypy_finds_nothing(mypy_cache):
    # no paths: [tool.mypy] files names the three trees (each Lambda as lambdas.<function>.handler)
    result = run("mypy", "--cache-dir", mypy_cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues found in" in result.stdout


def test_the_configuration_catches_a_planted_defect_of_each_kind(tmp_path, mypy_cache):
    """The settings are in force: a loop-variable closure (ruff's B023), a subprocess.run that ignores its exit
    (PLW1510) and a type error in an unannotated function (mypy's check_untyped_defs)."""
    planted = tmp_path / "planted.py"
    planted.write_text(
        "import subprocess\n\n\n"
        "def callbacks():\n"
        "    out = []\n"
        "    for i in range(3):\n"
        "        out.append(lambda: i)\n"
        "    subprocess.run(['true'])\n"
        "    return out\n\n\n"
        "def untyped():\n"
        "    return 'a' + 1\n"
    )
    lint = run("ruff", "check", "--config", PYPROJECT, "--output-format", "concise", planted)
    assert "B023" in lint.stdout and "PLW1510" in lint.stdout, lint.stdout + lint.stderr
    types = run("mypy", "--config-file", PYPROJECT, "--cache-dir", mypy_cache, planted)
    assert types.returncode == 1 and 'Unsupported operand types for + ("str" and "int")' in types.stdout, (
        types.stdout + types.stderr
    )
