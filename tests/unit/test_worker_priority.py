"""The unit-test workers run at a lower CPU priority than the live one (tests/conftest.py, UNIT_WORKER_NICENESS):
checked on a real `pytest -n 2 --dist loadgroup` of a small project that uses this suite's hook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, UNIT_WORKER_NICENESS

PROJECT = {
    "conftest.py": """
import os, pytest
from tests.conftest import pytest_runtest_setup  # the hook under test

def pytest_configure(config):
    config.addinivalue_line("markers", "live: as tests/live/conftest.py marks every live test")

@pytest.fixture
def record(request):
    kind = "live" if request.node.get_closest_marker("live") else "unit"
    with open(os.environ["RUN_PRIORITY"], "a") as f:
        f.write(f"{os.environ['PYTEST_XDIST_WORKER']} {kind} {os.nice(0)}\\n")
""",
    # as tests/live/conftest.py marks them: one xdist group, the largest unit, handed out first
    "test_live.py": "import pytest\npytestmark = [pytest.mark.live, pytest.mark.xdist_group('live')]\n"
                    + "".join(f"def test_live_{i}(record): pass\n" for i in range(3)),
    "test_unit.py": "".join(f"def test_unit_{i}(record): pass\n" for i in range(4)),
}


def test_a_worker_whose_first_test_is_a_unit_test_runs_at_lower_priority_and_the_live_one_does_not(tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    for name, text in PROJECT.items():
        (project / name).write_text(text)
    runs = tmp_path / "runs.txt"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--disable-plugin-autoload",
                    "-p", "xdist", "-n", "2", "--dist", "loadgroup", "--rootdir", str(project), str(project)],
                   cwd=project, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "RUN_PRIORITY": str(runs)},
                   check=True, capture_output=True, text=True, timeout=120)
    base = os.nice(0)
    by_worker: dict[str, list[tuple[str, int]]] = {}
    for line in runs.read_text().splitlines():
        worker, kind, niceness = line.split()
        by_worker.setdefault(worker, []).append((kind, int(niceness)))
    (live_worker,) = [w for w, tests in by_worker.items() if tests[0][0] == "live"]
    assert {n for _, n in by_worker[live_worker]} == {base}  # its unit tests after the live group too
    unit_workers = [w for w in by_worker if w != live_worker]
    assert unit_workers and all(n == min(base + UNIT_WORKER_NICENESS, 19)
                                for w in unit_workers for _, n in by_worker[w])
