"""Shared fixtures: the platform is synthesized once per test session."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deepsentinel.local.server import GC_THRESHOLDS as LOCAL_SERVER_GC_THRESHOLDS
from deepsentinel.local.server import share_one_botocore_loader_per_data_path
from tests.live import early
from tests.synth_cache import SynthesizedPlatform, synthesized

REPO_ROOT = Path(__file__).resolve().parents[1]
LIVE_AWS_OPT_IN = "DEEPSENTINEL_LIVE_AWS"


def deepsentinel_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """`deepsentinel <args>` run by this process, from the checkout: the code a user's command runs, its exit status
    (`main()`'s return value or argparse's exit code, as `sys.exit(main())` makes it; tests/unit/test_cli.py runs
    `python -m deepsentinel.cli` itself) and what it printed to sys.stdout and sys.stderr. A process per command
    would start Python and the jsii runtime again each time (docs/testing.md)."""
    from deepsentinel.cli import main

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exited:  # argparse
                code = exited.code if isinstance(exited.code, int) else 1
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["deepsentinel", *args], code, out.getvalue(), err.getvalue())


# Importing one starts jsii's node (the binding's package itself is an empty stand-in: deepsentinel/provider.py).
JSII_MODULES = frozenset({"cdktf", "constructs", "cdktf_cdktf_provider_aws._jsii"})
_RUN_AND_LIST_JSII_MODULES = """
import json, sys
from deepsentinel.cli import main
try:
    code = main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as report:
        json.dump(sorted(set(%r) & set(sys.modules)), report)
sys.exit(code)
"""


def deepsentinel_in_a_new_process(report: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`deepsentinel <args>` in a Python process of its own, from the checkout, and which of JSII_MODULES it
    imported: a command that synthesizes nothing should start no jsii runtime (4-5 s before it prints a word).
    `report` is the file the process writes that list to."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST_JSII_MODULES % sorted(JSII_MODULES), str(report), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    return done, set(json.loads(report.read_text()))


def as_typed_at_a_prompt() -> None:
    """`preexec_fn` of a command a test interrupts as a terminal's Ctrl-C does: it starts with SIGINT and SIGQUIT at
    their defaults, as a command typed at a prompt does, also when this suite itself runs with them ignored (a POSIX
    shell starts a background job, `pytest &`, with both ignored, its children inherit that, and Python then keeps
    SIGINT ignored instead of raising KeyboardInterrupt: the command would never see the Ctrl-C)."""
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


# Every botocore session of a test process shares one Loader per data path (the local server's processes do the same).
share_one_botocore_loader_per_data_path()

# Python's cyclic garbage collector at its default thresholds (700, 10, 10) spent a quarter of a test process's CPU:
# these processes hold hundreds of thousands of long-lived containers (botocore's service models, moto's backends,
# jsii's objects), and each full collection walks them all. tests/unit/{lambdas,worker}, test_local_patches.py,
# test_leftovers.py and test_preflight.py with -n 0 (2026-12-03): 9,424 collections, 14.1 s of 75.6 CPU-s, 78.1 s;
# at (10000, 10, 10) 530 collections, 4.7 s of 66.3 CPU-s, 69.1 s, the same peak memory (1.33 GB). Every cycle is
# still collected, later. The same thresholds as the local server's process (deepsentinel/local/server.py), whose
# heap is moto's too; the toolkit's commands keep Python's defaults.
gc.set_threshold(*LOCAL_SERVER_GC_THRESHOLDS)


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, at the root of the tests, so `pytest -m live --live-target=aws` works from the repo root.
    parser.addoption("--live-target", choices=("moto", "aws"), default="moto",
                     help=f"where live tests apply: moto (local, default) or aws (also needs {LIVE_AWS_OPT_IN}=1)")
    parser.addoption("--live-keep", action="store_true", default=False,
                     help="keep the live deployments (no destroy; moto servers stay up) to iterate on checks; a "
                          "later run with the same --live-workdir reuses them; `python -m tests.live.sweep` removes them")
    parser.addoption("--live-modules", action="store_true", default=False,
                     help="deploy network, security and storage each alone (Mode 2) for their tests; by default they "
                          "check those modules on the platform deployment, which contains them")
    parser.addoption("--live-workdir", type=Path, default=None, metavar="DIR",
                     help="where live deployments keep their servers, stacks, state and logs (default: pytest's tmp)")


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedPlatform:
    """dev, prod and the account stack with default settings, synthesized once per session (xdist's workers share
    it: tests/synth_cache.py)."""
    return synthesized(tmp_path_factory, [("dev", []), ("prod", [])])


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers, which inherit early.VARIABLE
def pytest_sessionstart(session: pytest.Session) -> None:
    early.start(session.config)  # the platform deployment, if this run needs it (tests/live/early.py)


def pytest_sessionfinish(session: pytest.Session) -> None:
    early.finish(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """pytest's unraisableexception plugin runs five full collections when the process ends, to report exceptions
    raised in `__del__` of what only they free: over a test process's heap 3-5 s each process (at the end of the run,
    on its path). What is alive now is frozen (`gc.freeze`: left out of collections, as it will be freed by the exit
    anyway), so they look only at what is left; an unraisable exception raised during a test is reported as before."""
    gc.freeze()


# How much lower the unit tests' CPU priority is than the live deployment's, in nice(2) steps (0 to 19).
UNIT_WORKER_NICENESS = 10
_first_test_started = False  # this xdist worker's: its kind decides the worker's priority


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The live deployment's path (its apply, checks and destroy, one after another on one worker) is the default
    suite's longest; the unit tests on the other workers have slack. A worker whose first test is a unit test lowers
    its priority (and its children's: terraform, the CLI, the local servers it starts), so the live path gets a core
    whenever it needs one and the unit tests fill the provider's waits (docs/testing.md#tests). The live worker's
    first test is a live one: `--dist loadgroup` hands out the largest unit first, and the live group (66 tests) is by
    far the largest (a test in no group is a unit of its own; the other groups hold 2-21). Run with another `--dist`,
    a worker running unit tests may be handed the live tests later: the live path then runs at the unit tests'
    priority, as every test did before."""
    global _first_test_started
    if _first_test_started or "PYTEST_XDIST_WORKER" not in os.environ:
        return
    _first_test_started = True
    if not item.get_closest_marker("live"):
        os.nice(UNIT_WORKER_NICENESS)
