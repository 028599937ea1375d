"""The install fits the job: the toolkit's own dependencies leave out the worker's analysis stack (torch and its
CUDA wheels), which only `smoke --local`, `model publish` and the worker's tests need (the `worker` extra)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from deepsentinel.cli import main
from tests.conftest import REPO_ROOT

# The analysis stack and what it pulls in (torch's CUDA runtime comes as nvidia-* wheels and triton; ultralytics
# brings OpenCV): none may be a dependency of the toolkit itself.
ANALYSIS_STACK = ("torch", "torchvision", "ultralytics", "opencv-python", "triton", "nvidia-")
ANALYSIS_MODULES = ("torch", "torchvision", "ultralytics", "cv2", "triton", "nvidia")


def project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> dict[str, Requirement]:
    return {Requirement(r).name.lower(): Requirement(r) for r in requirements}


def test_the_base_dependencies_leave_out_the_analysis_stack_and_dev_installs_the_worker_extra():
    """PEP 508 requirement names (packaging's parser); an extra naming its own project with another extra is how
    pip installs one extra's packages with another's ("pip install" documentation, extras)."""
    base = names(project()["dependencies"])
    assert not [n for n in base if n.startswith(ANALYSIS_STACK)], sorted(base)
    worker = names(project()["optional-dependencies"]["worker"])
    assert {"torch", "torchvision", "ultralytics", "ffmpeg-python", "pgserver"} <= set(worker)
    dev = [Requirement(r) for r in project()["optional-dependencies"]["dev"]]
    assert any(r.name == project()["name"] and r.extras == {"worker"} for r in dev)
    assert not [r.name for r in dev if r.name.lower().startswith(ANALYSIS_STACK)]  # through the worker extra only


def test_the_worker_extra_pins_what_the_worker_image_installs():
    """The worker's tests run against the versions its image installs (worker_image/pyproject.toml)."""
    image = names(tomllib.loads((REPO_ROOT / "worker_image" / "pyproject.toml").read_text())["project"]["dependencies"])
    installed_here = names(project()["dependencies"]) | names(project()["optional-dependencies"]["worker"])
    for name in ("torch", "torchvision", "ultralytics", "ffmpeg-python", "psycopg"):
        assert installed_here[name].specifier == image[name].specifier, name


def test_synth_of_dev_as_a_user_runs_it_needs_no_analysis_stack_and_prints_the_resource_table(tmp_path: Path):
    """In a fresh interpreter where importing the analysis stack fails (as without the extra): `deepsentinel synth
    --env dev` run as `python -m deepsentinel.cli` runs it (runpy, `__main__`), which exits 0, prints each module's
    resource count and writes the account and dev stacks; then every module of the toolkit imports; nothing asked
    for torch, ultralytics or OpenCV. One process for both checks: each new synth process starts Python and jsii's
    runtime again (about 10 CPU-s)."""
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import importlib, json, pkgutil, runpy, sys

        asked = []

        class WithoutAnalysisStack:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {ANALYSIS_MODULES!r}:
                    asked.append(name)
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, WithoutAnalysisStack())
        sys.argv = ["deepsentinel", "synth", "--env", "dev", "--out", {str(out)!r}]
        try:
            runpy.run_module("deepsentinel.cli", run_name="__main__", alter_sys=True)
            code = "returned without sys.exit"
        except SystemExit as exited:
            code = exited.code
        import deepsentinel
        for module in pkgutil.walk_packages(deepsentinel.__path__, "deepsentinel."):
            importlib.import_module(module.name)
        print(json.dumps({{"code": code, "asked": asked,
                          "loaded": sorted(n for n in sys.modules if n.split(".")[0] in {ANALYSIS_MODULES!r})}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    *printed, last = result.stdout.splitlines()
    assert json.loads(last) == {"code": 0, "asked": [], "loaded": []}
    rows = [line.split() for line in printed]
    modules = {row[1]: int(row[2]) for row in rows if row and row[0] == "deepsentinel-dev" and row[1] != "total"}
    assert set(modules) == {"encryption", "network", "security", "storage", "iam", "compute", "pipeline",
                            "dashboard", "service-alarms", "budget"}  # dev has no access-logs bucket
    total = next(int(row[2]) for row in rows if row[:2] == ["deepsentinel-dev", "total"])
    assert total == sum(modules.values()) >= 140
    assert sorted(p.name for p in (out / "stacks").iterdir()) == ["deepsentinel-account", "deepsentinel-dev"]
    assert (out / "stacks" / "deepsentinel-dev" / "cdk.tf.json").is_file()
    assert "Node 20 is end-of-life" not in result.stdout + result.stderr


@pytest.mark.parametrize("absent", ["torch", "ultralytics", "pgserver"])
def test_smoke_local_without_the_worker_extra_says_which_extra_in_one_line(absent, tmp_path: Path, monkeypatch,
                                                                            capsys):
    """Python's import system: a None in sys.modules makes the import fail with ModuleNotFoundError (Python
    Language Reference, "The import system", 5.3.1 The module cache) and importlib.util.find_spec return None."""
    monkeypatch.setitem(sys.modules, absent, None)
    code = main(["smoke", "--local", "--env", "dev", "--workdir", str(tmp_path / "nothing-deployed")])
    distribution = {"torch": "torch", "ultralytics": "ultralytics", "pgserver": "pgserver"}[absent]
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: smoke --local needs the worker extra ({distribution} not installed): pip install -e '.[worker]' in "
        "the checkout (or pip install 'deepsentinel-infra[worker]')"]
    assert not (tmp_path / "nothing-deployed").exists()  # said before anything started


def test_model_publish_without_the_worker_extra_says_which_extra_in_one_line(tmp_path: Path, monkeypatch, capsys):
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"not read: the extra is missing")
    monkeypatch.setitem(sys.modules, "ultralytics", None)
    code = main(["model", "publish", str(weights), "--env", "dev", "--local", "--workdir", str(tmp_path / "w")])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: model publish needs the worker extra (ultralytics not installed): pip install -e '.[worker]' in "
        "the checkout (or pip install 'deepsentinel-infra[worker]')"]
