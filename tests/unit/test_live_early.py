"""tests/live/early.py: when the session's main process deploys the platform before collection, and what it leaves
when no worker adopts it. The adoption itself runs in every default `pytest` (the live platform tests pass on it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.live import early
from tests.live.harness import RECORD

LIVE = REPO_ROOT / "tests" / "live"


@pytest.mark.parametrize(("paths", "markexpr", "modules_alone", "selected"), [
    ([REPO_ROOT / "tests"], "not slow", False, True),  # the default run (testpaths, addopts' -m)
    ([LIVE], "", False, True),
    ([REPO_ROOT], "live and not slow", False, True),
    ([LIVE / "test_platform.py"], "not slow", False, True),
    ([LIVE / "test_storage.py"], "not slow", False, True),  # the modules' checks use the platform
    ([LIVE / "test_storage.py"], "not slow", True, False),  # ... unless --live-modules deploys them alone
    ([REPO_ROOT / "tests" / "unit"], "not slow", False, False),
    ([LIVE / "test_sweep.py"], "", False, False),  # deploys a stack of its own
    ([REPO_ROOT / "tests"], "not live", False, False),
    ([REPO_ROOT / "tests"], "not live and not slow", False, False),
    ([REPO_ROOT / "tests"], "slow", False, False),
])
def test_the_platform_is_deployed_early_only_for_a_selection_that_needs_it(paths, markexpr, modules_alone, selected):
    assert early.platform_selected(paths, markexpr, modules_alone=modules_alone) is selected


def test_an_unadopted_early_deployment_is_stopped_with_its_server_and_record(tmp_path: Path):
    from deepsentinel.local.server import LocalAws

    workdir = tmp_path / "platform"
    server = LocalAws.start(info_file=workdir / "server.json", detach=True)  # as the early process leaves it
    (workdir / RECORD).write_text(json.dumps({"name": "platform"}))
    still_applying = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        early.stop(early.EarlyStart(root=tmp_path, pid=still_applying.pid), still_applying)
        assert still_applying.returncode is not None  # interrupted, not left running
        assert LocalAws.find(workdir / "server.json") is None and not (workdir / "server.json").exists()
        assert not (workdir / RECORD).exists()
    finally:
        still_applying.kill()
        server.stop()


def test_an_adopted_early_deployment_is_left_to_its_worker(tmp_path: Path):
    from deepsentinel.local.server import LocalAws

    workdir = tmp_path / "platform"
    server = LocalAws.start(info_file=workdir / "server.json", detach=True)
    try:
        early.claim(workdir)
        done = subprocess.Popen([sys.executable, "-c", "pass"])
        done.wait()
        early.stop(early.EarlyStart(root=tmp_path, pid=done.pid), done)
        assert LocalAws.find(workdir / "server.json") is not None  # the worker destroys it and stops its server
    finally:
        server.stop()


def test_the_worker_is_told_when_the_early_process_ended_without_a_result(tmp_path: Path):
    workdir = tmp_path / "platform"
    workdir.mkdir()
    (workdir / early.LOG).write_text("Traceback (most recent call last):\nKilled\n")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])  # not reaped yet: a zombie, as in the main process
    try:
        while early._running(ended.pid):
            pass
        with pytest.raises(RuntimeError, match=r"ended without a result; its log .*\n(.|\n)*Killed"):
            early.wait_for_result(early.EarlyStart(root=tmp_path, pid=ended.pid), workdir)
    finally:
        ended.wait()
