"""Slow tests run somewhere: the default suite leaves out the tests marked `slow` (pyproject's addopts
`-m 'not slow'`), and .github/workflows/slow-tests.yml runs them every night and on demand. The check collects the
tests with the workflow's own pytest arguments, as GitHub's runner would, and compares them with every test carrying
the `slow` marker (recorded before `-m` deselects anything, by tests/unit/slow_probe.py)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
# pytest options that leave tests of testpaths uncollected or unselected besides -m (positional paths too).
NARROWING = {"-k", "--deselect", "--ignore", "--ignore-glob", "--lf", "--last-failed", "--sw", "--stepwise", "-c",
             "--rootdir", "--confcutdir", "--pyargs"}


def _pytest_arguments(workflow: dict, step_name: str = "Slow tests") -> list[str]:
    """The arguments of the step that runs pytest under that name."""
    (command,) = [step["run"] for job in workflow["jobs"].values() for step in job["steps"]
                  if step.get("name") == step_name and "pytest" in str(step.get("run", ""))]
    argv = shlex.split(command)
    return argv[argv.index("pytest") + 1:]


def test_the_slow_workflow_deploys_each_module_alone():
    """The default suite checks network, security and storage on the platform deployment (tests/live/module_view.py);
    Mode 2, each module deployed alone, runs nightly: every module's live tests with --live-modules."""
    arguments = _pytest_arguments(yaml.safe_load((WORKFLOWS / "slow-tests.yml").read_text()), "Modules deployed alone")
    modules = {p.name for p in (REPO / "tests" / "live").glob("test_*.py")} - {"test_platform.py", "test_sweep.py"}
    assert "--live-modules" in arguments
    assert {Path(a).name for a in arguments if a.endswith(".py")} == modules


def test_the_slow_workflow_runs_nightly_and_on_demand_with_the_pull_requests_terraform():
    """GitHub's "Events that trigger workflows": `schedule` (cron, UTC) and `workflow_dispatch` (manual)."""
    workflow = yaml.safe_load((WORKFLOWS / "slow-tests.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the bare key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"} and triggers["schedule"][0]["cron"].split()[2:] == \
        ["*", "*", "*"]

    def terraform_version(name: str) -> str:
        steps = [s for job in yaml.safe_load((WORKFLOWS / name).read_text())["jobs"].values() for s in job["steps"]]
        return next(s["with"]["terraform_version"] for s in steps
                    if str(s.get("uses", "")).startswith("hashicorp/setup-terraform@"))

    assert terraform_version("slow-tests.yml") == terraform_version("pull-request.yml")


def test_the_slow_workflow_selects_every_test_marked_slow_and_only_those(tmp_path):
    arguments = _pytest_arguments(yaml.safe_load((WORKFLOWS / "slow-tests.yml").read_text()))
    assert arguments[:2] == ["-m", "slow"]
    # Nothing narrows the collection to less than pyproject's testpaths, so "marked" below is every slow test.
    assert not [a for a in arguments[2:] if not a.startswith("-") or a.split("=")[0] in NARROWING], arguments
    probe = tmp_path / "probe.json"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    collected = subprocess.run(
        # -n 0: collected once, in this process (each xdist worker would collect the same items again)
        [sys.executable, "-m", "pytest", *arguments, "--collect-only", "-q", "-n", "0", "-p", "tests.unit.slow_probe"],
        cwd=REPO, env={**environment, "SLOW_PROBE_OUT": str(probe)}, capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    found = json.loads(probe.read_text())
    marked, selected = set(found["marked"]), set(found["selected"])
    assert marked, "no test is marked slow: the workflow runs nothing"
    assert sorted(marked - selected) == [], "marked slow, but the nightly workflow does not run them"
    assert sorted(selected - marked) == [], "the nightly workflow runs tests the default suite already runs"
    # Collecting imports every test module: none may start jsii's runtime at import (4-5 CPU-s of node and the
    # binding's load, before any test runs) for a constant of a construct module; the constants the tests read
    # live in modules without cdktf (deepsentinel/constructs/buckets.py, ports.py, deepsentinel/stacks/names.py).
    assert found["jsii"] == [], found["jsii"]
