"""tests/live/early.py: when the session's main process deploys the platform before collection, and what it leaves
when no worker adopts it. The adoption itself runs in every default `pytest` (the live platform tests pass on it)."""

from __future__ import annotations

import json
import signal
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
    # interruptible as early.main makes itself, whatever SIGINT disposition this test's process passes on (ignored
    # under a backgrounded pytest: the test then waited out early.stop's 60 s)
    interruptible = ("import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
                     "print(flush=True); time.sleep(120)")
    still_applying = subprocess.Popen([sys.executable, "-c", interruptible], stdout=subprocess.PIPE)
    assert still_applying.stdout is not None and still_applying.stdout.readline() == b"\n"  # interruptible now
    try:
        early.stop(early.EarlyStart(root=tmp_path, pid=still_applying.pid), still_applying)
        assert still_applying.returncode == -signal.SIGINT  # interrupted, neither left running nor killed
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


START_IN_A_PROCESS_OF_ITS_OWN = """
import json, os, subprocess, sys
import pytest
from tests.live import early

class Config:  # what early.start reads of pytest's config
    def __init__(self, options):
        self.options, self.stash = options, pytest.Stash()
    def getoption(self, name, default=None):
        return self.options.get(name, default)

launched, popen = [], subprocess.Popen
def the_early_process(command, **kwargs):  # started as early.start starts it, running something harmless
    launched.append(popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs))
    return launched[-1]

early.wanted = lambda config: True
early.subprocess.Popen = the_early_process
base = os.nice(0)
early.start(Config({"--live-workdir": sys.argv[1], "numprocesses": int(sys.argv[2])}))
child = int(open(f"/proc/{launched[0].pid}/stat").read().rsplit(")", 1)[1].split()[16])  # its nice value
launched[0].kill()
print(json.dumps({"base": base, "main": os.nice(0), "early": child}))
"""


@pytest.mark.parametrize("workers", [3, 0])
def test_the_workers_start_below_the_early_deployments_priority(tmp_path: Path, workers: int):
    """With xdist (-n 3), the main process lowers its own priority by WORKER_NICENESS after starting the early
    process and before xdist starts the workers, which inherit it; the early process keeps the session's. Without
    workers (-n 0) nothing changes: the main process runs the tests itself. In a process of its own (nice(2) cannot
    be undone)."""
    done = subprocess.run([sys.executable, "-c", START_IN_A_PROCESS_OF_ITS_OWN, str(tmp_path), str(workers)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["early"] == seen["base"]
    assert seen["main"] == min(seen["base"] + (early.WORKER_NICENESS if workers else 0), 19)
