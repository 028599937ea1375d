"""Wall time of the default test suite (`pytest`), the time spent per test directory and each xdist worker's span.

    python benchmarks/test_suite.py [extra pytest args, e.g. -m slow]

After pytest's summary line it names each failed test with the start of its failure message. The per-directory
figures are summed test times from pytest's JUnit XML (setup included), so module fixtures (the one session synth,
the live applies) land in the directory that first needs them; the slowest tests follow, by the same times. Then each
xdist worker's span (benchmarks/worker_timeline.py, a plugin in pytest's main process), the last to end first, with
the live worker's first check and the end of its destroy checks: which path is the suite's length. The peak memory is
the largest sum of the resident sets of pytest's whole process tree (workers, terraform and its provider, jsii's
node, the local servers; a page shared by two processes counts twice), sampled every half second with psutil. The
machine's own share follows: how busy its cores were during the run and how much of that the suite's count leaves out
(processes that are not pytest's: another job, or this machine's own daemons, named with their CPU seconds), so a
figure measured beside other work is seen as such. The cores' speed, each loaded at once (benchmarks/machine.py), is
measured before and after the run: on a shared host one can be far slower than the other, and the same code then
takes more CPU seconds. Run as root, it last prints the CPU seconds of every process that ended during the run by
command name (the kernel's BSD process accounting, acct(2): one record per process at its exit, nothing sampled),
which says how much went to Python, Terraform, its provider and jsii's node.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import struct
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil
import worker_timeline  # benchmarks/worker_timeline.py, beside this script; pytest loads it too (-p)
from machine import describe_every_core_at_once  # benchmarks/machine.py, beside this script

REPO_ROOT = Path(__file__).resolve().parent.parent
SLOWEST = 25
FAILURE_MESSAGE = 400  # characters of a failed test's message (pytest's first line of the error), on one line
OTHERS = 3  # the machine's busiest processes outside the suite
COMMANDS = 8  # the command names that used the most CPU


def main() -> None:
    cores_before = describe_every_core_at_once()
    with tempfile.TemporaryDirectory() as tmp:
        report, timeline = Path(tmp) / "junit.xml", Path(tmp) / "timeline.jsonl"
        # the plugin as benchmarks.worker_timeline from the checkout's root (this directory itself on the path would
        # put benchmarks/lambdas.py in the place of the lambdas package)
        env = dict(os.environ, **{worker_timeline.VARIABLE: str(timeline)},
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
        started, epoch, cpu_before = time.perf_counter(), time.time(), _children_cpu()
        machine_before, others_before = _busy_cpu(), _process_cpu()
        accounting = _ProcessAccounting(Path(tmp) / "acct")
        process = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                                    "benchmarks.worker_timeline", f"--junitxml={report}", *sys.argv[1:]],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        peak = _PeakMemory(process.pid)
        stdout, _ = process.communicate()
        peak.stop()
        by_command = accounting.stop()
        wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
        machine, others = _busy_cpu() - machine_before, _others(others_before, _process_cpu())
        cores_after = describe_every_core_at_once()
        if not report.exists():  # pytest ran no session (its --help, a usage error): what it said is all there is
            print(stdout.strip())
            sys.exit(process.returncode)
        phases = worker_timeline.read(timeline)
        cases = ET.parse(report).getroot().iter("testcase")
        by_dir: dict[str, list[float]] = defaultdict(list)
        by_test: list[tuple[float, str]] = []
        failed: list[tuple[str, str]] = []
        for case in cases:
            module = case.get("classname", "").split(".")
            directory = "/".join(module[:-1]) or "."
            seconds = float(case.get("time", 0))
            by_dir[directory].append(seconds)
            by_test.append((seconds, f"{'/'.join(module)}.py::{case.get('name')}"))
            outcome = case.find("failure") if case.find("failure") is not None else case.find("error")
            if outcome is not None:
                failed.append((by_test[-1][1], " ".join(outcome.get("message", "").split())[:FAILURE_MESSAGE]))
    print(stdout.strip().splitlines()[-1])
    for test, message in failed:  # a timing of a red suite says little: name what to rerun, and why it failed
        print(f"FAILED {test}" + (f": {message}" if message else ""))
    print(f"{'directory':<24} {'tests':>5} {'seconds':>8}")
    for directory, times in sorted(by_dir.items(), key=lambda item: -sum(item[1])):
        print(f"{directory:<24} {len(times):>5} {sum(times):>8.1f}")
    print(f"the {SLOWEST} slowest tests (seconds, setup included):")
    for seconds, test in sorted(by_test, reverse=True)[:SLOWEST]:
        print(f"{seconds:8.1f}  {test}")
    for line in _timeline_summary(phases, epoch):
        print(line)
    print(f"wall time of `pytest {' '.join(sys.argv[1:])}`: {wall:.1f} s, CPU {cpu:.0f} s (user + sys of every process "
          f"it waited for, as /usr/bin/time counts) (issue 20's goals on 2 cores: the default suite 240 s, "
          f"-m 'not live and not slow' 60 s)")
    print(f"peak memory of the process tree: {peak.bytes / 2**30:.1f} GiB (resident sets summed, sampled every "
          f"{_PeakMemory.INTERVAL} s)")
    available = wall * (psutil.cpu_count() or 1)
    print(f"the machine's {psutil.cpu_count()} cores were busy {machine:.0f} of {available:.0f} CPU-s "
          f"({machine / available:.0%}); not in the suite's count: {machine - cpu:.0f} CPU-s, most of it "
          + (", ".join(f"{name} {seconds:.0f} s" for name, seconds in others[:OTHERS]) or "nothing named"))
    print(f"the cores' speed, a fixed loop's CPU-s on each at once (benchmarks/machine.py): before {cores_before}; "
          f"after {cores_after}")
    if by_command:
        total = sum(seconds for seconds, _ in by_command.values())
        print(f"CPU of the {sum(count for _, count in by_command.values())} processes that ended during the run, "
              f"{total:.0f} s, by command (acct(2)): " + ", ".join(
                  f"{name} {seconds:.0f} s ({count})"
                  for name, (seconds, count) in sorted(by_command.items(), key=lambda item: -item[1][0])[:COMMANDS]))
    else:
        print(f"CPU by command: not measured ({accounting.unavailable})")
    sys.exit(process.returncode)


def _timeline_summary(phases: list[dict[str, Any]], epoch: float) -> list[str]:
    """Each xdist worker's span, the one that ended last first, and the live worker's path: when its first check
    could start (the deployment adopted or applied) and when its destroy checks ended."""
    if not phases:
        return []
    by_worker: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for phase in phases:
        by_worker[str(phase["worker"])].append(phase)
    lines = ["each worker's tests, seconds since pytest started (first start -> last end), the last to end first:"]
    for worker, own in sorted(by_worker.items(), key=lambda item: -max(p["stop"] for p in item[1])):
        live = sorted((p for p in own if str(p["test"]).startswith("tests/live/")), key=lambda p: p["start"])
        lines.append(f"  {worker}: {len({p['test'] for p in own})} tests{' (the live ones)' if live else ''}, "
                     f"{min(p['start'] for p in own) - epoch:.1f} -> {max(p['stop'] for p in own) - epoch:.1f} s")
        if live:
            ready = next(p for p in live if p["when"] == "setup")["stop"] - epoch
            destroys = [p["stop"] - epoch for p in live if "test_destroy_leaves_nothing" in str(p["test"])]
            lines.append(f"    its first check began at {ready:.1f} s (the platform deployed, the setup's wait)"
                         + (f"; its destroy checks ended at {max(destroys):.1f} s" if destroys else ""))
    return lines


class _ProcessAccounting:
    """The kernel's BSD process accounting into `path` while the suite runs (root only): the CPU seconds and count of
    the processes that ended, by command name (16 characters: `terraform-provi` is the AWS provider)."""

    RECORD = 64  # struct acct_v3 (linux/acct.h)
    TICKS = 100  # AHZ: acct_v3 counts CPU in 1/100 s, as comp_t (13-bit mantissa, 3-bit base-8 exponent)

    def __init__(self, path: Path) -> None:
        self.path, self.unavailable = path, ""
        self._libc = ctypes.CDLL(None, use_errno=True)
        path.touch()
        if os.geteuid() != 0 or self._libc.acct(str(path).encode()) != 0:
            self.unavailable = "acct(2) needs root" if os.geteuid() else os.strerror(ctypes.get_errno())

    def stop(self) -> dict[str, tuple[float, int]]:
        if self.unavailable:
            return {}
        self._libc.acct(None)
        found: dict[str, tuple[float, int]] = {}
        data = self.path.read_bytes()
        for offset in range(0, len(data) - self.RECORD + 1, self.RECORD):
            record = data[offset:offset + self.RECORD]
            user, system = struct.unpack_from("<HH", record, 32)  # ac_utime, ac_stime
            name = record[48:64].split(b"\0")[0].decode(errors="replace")
            seconds, count = found.get(name, (0.0, 0))
            found[name] = (seconds + (_comp_t(user) + _comp_t(system)) / self.TICKS, count + 1)
        return found


def _comp_t(value: int) -> int:
    return (value & 0x1FFF) << (3 * (value >> 13))


class _PeakMemory:
    """The largest summed resident set of a process and its descendants, sampled on a thread."""

    INTERVAL = 0.5

    def __init__(self, pid: int) -> None:
        self.bytes, self._root, self._done = 0, psutil.Process(pid), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(self.INTERVAL):
            total = 0
            try:
                for process in [self._root, *self._root.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):  # ended between the listing and the reading
                        total += process.memory_info().rss
            except psutil.NoSuchProcess:
                return
            self.bytes = max(self.bytes, total)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _busy_cpu() -> float:
    """CPU seconds every core of the machine spent not idle, since boot, as psutil's cpu_percent counts them: Linux
    already counts guest time in user and nice (psutil's _cpu_tot_time), so it is not added twice."""
    times = psutil.cpu_times()
    guest = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return sum(times) - guest - times.idle - getattr(times, "iowait", 0.0)


def _process_cpu() -> dict[tuple[int, float], tuple[str, float]]:
    """(pid, start time) -> (name, CPU seconds) of every process now running (kernel threads too)."""
    found = {}
    for process in psutil.process_iter(["name", "create_time", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is not None:
            found[(process.pid, process.info["create_time"])] = (process.info["name"], times.user + times.system)
    return found


def _others(before: dict[tuple[int, float], tuple[str, float]],
            after: dict[tuple[int, float], tuple[str, float]]) -> list[tuple[str, float]]:
    """The processes that ran through the whole suite (so not its own) by the CPU seconds they used meanwhile."""
    used = [(name, seconds - before[key][1]) for key, (name, seconds) in after.items() if key in before]
    return sorted((entry for entry in used if entry[1] >= 1.0), key=lambda entry: -entry[1])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
