"""The live deployment first: the other xdist workers yield the CPU to it.

The live worker's path (bootstrap, apply, the checks, the destroy: about seven minutes alone on 2 cores, most of it
the provider's fixed waits) is the default suite's critical path; the other workers' unit tests end minutes
before it. Competing for two cores, they stretched its CPU-bound phases (Terraform's plans, the synths, the smoke
worker) by 35 s in the apply alone (benchmarks/test_suite.py, docs/testing.md). So when the live pool starts,
every other process of the session (the sibling workers and what they started, each thread: Linux keeps a nice
value per thread) gets a lower priority; what they start later inherits it. Lowering another process's priority
needs no privilege when it is one's own user's.
"""

from __future__ import annotations

import os

import psutil

UNIT_TEST_NICENESS = 10  # CFS weight 110 against 1024: the live path gets ~90% of a contended core


def yield_cpu_to_this_worker() -> int:
    """Lower the priority of the session's other processes; how many were lowered (0 outside pytest-xdist)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return 0
    me = psutil.Process()
    controller = me.parent()
    if controller is None:
        return 0
    mine = {me.pid, *(child.pid for child in me.children(recursive=True))}
    lowered = 0
    for process in controller.children(recursive=True):
        if process.pid in mine:
            continue
        try:
            for thread in process.threads():
                os.setpriority(os.PRIO_PROCESS, thread.id, max(UNIT_TEST_NICENESS,
                                                               os.getpriority(os.PRIO_PROCESS, thread.id)))
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue  # ended meanwhile, or not ours to lower
        lowered += 1
    return lowered
