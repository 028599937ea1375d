"""tests/live/priority.py: the live worker lowers the priority of its sibling workers' processes, every thread,
and never its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT
from tests.live.priority import UNIT_TEST_NICENESS

# A stand-in for the xdist controller: a sibling "worker" with a second thread and a child, then the "live worker".
CONTROLLER = textwrap.dedent("""
    import json, os, subprocess, sys, time
    sibling = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, threading, time; "
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start(); "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(child.pid, flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    grandchild = int(sibling.stdout.readline())
    live = subprocess.run([sys.executable, "-c", "import json, os; from tests.live.priority import "
        "yield_cpu_to_this_worker as y; print(json.dumps([y(), os.getpriority(os.PRIO_PROCESS, 0)]))"],
        env=dict(os.environ, PYTEST_XDIST_WORKER="gw0"), capture_output=True, text=True, check=True)
    lowered, own = json.loads(live.stdout)
    threads = [int(t) for t in os.listdir(f"/proc/{sibling.pid}/task")]
    print(json.dumps({"lowered": lowered, "own": own, "controller": os.getpriority(os.PRIO_PROCESS, 0),
                      "sibling_threads": [os.getpriority(os.PRIO_PROCESS, t) for t in threads],
                      "grandchild": os.getpriority(os.PRIO_PROCESS, grandchild)}))
    sibling.kill()
    os.kill(grandchild, 9)
""")


def test_the_live_worker_lowers_its_siblings_and_their_children_but_not_itself():
    done = subprocess.run([sys.executable, "-c", CONTROLLER], check=False, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["lowered"] == 2  # the sibling and its child
    # under the suite's own live worker this test's processes may already run at nice 10: nothing goes back up
    lowered = max(UNIT_TEST_NICENESS, seen["controller"])
    assert len(seen["sibling_threads"]) >= 2 and set(seen["sibling_threads"]) == {lowered}
    assert seen["grandchild"] == lowered
    assert seen["own"] == seen["controller"]


def test_outside_xdist_nothing_is_lowered():
    done = subprocess.run([sys.executable, "-c", "from tests.live.priority import yield_cpu_to_this_worker as y; "
                           "print(y())"], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in __import__("os").environ.items() if k != "PYTEST_XDIST_WORKER"})
    assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr
