"""A pytest plugin for benchmarks/test_suite.py: when each test phase ran and on which xdist worker.

The benchmark loads it (`-p benchmarks.worker_timeline`, the checkout's root on PYTHONPATH) and names a file in
DEEPSENTINEL_TIMELINE; the main process, which gets every worker's reports, appends one JSON line per phase (worker,
test, setup/call/teardown, start and stop as epoch seconds, outcome). From them the benchmark says which worker ended
last and where the live worker's time went: a suite figure alone does not say whether the live path or the CPU bounds
it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

VARIABLE = "DEEPSENTINEL_TIMELINE"
_timeline: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _timeline
    # only the main process writes: an xdist worker's own reports reach it as well
    named = os.environ.get(VARIABLE)
    _timeline = Path(named) if named and not hasattr(config, "workerinput") else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _timeline is None:
        return
    node = getattr(report, "node", None)  # xdist's WorkerController on a worker's report
    worker = node.gateway.id if node is not None else "main"
    line = {
        "worker": worker,
        "test": report.nodeid,
        "when": report.when,
        "start": report.start,
        "stop": report.stop,
        "outcome": report.outcome,
    }
    with _timeline.open("a") as timeline:
        timeline.write(json.dumps(line) + "\n")


def read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
