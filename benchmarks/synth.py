"""Wall time and peak memory (the whole process tree: Python + the jsii Node process) of a full synth.

    python benchmarks/synth.py [--runs 3] [--env dev|prod]

Goal on a 2-core machine: at most 6 s and 1 GB for all three stacks.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import psutil


def measure(command: list[str]) -> tuple[float, int]:
    """Run `command`; return (seconds, peak summed RSS of it and its children in bytes)."""
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"synth failed:\n{process.stderr.read().decode()}")
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", choices=("dev", "prod"), default=None, help="default: all stacks")
    args = parser.parse_args()
    times, peaks = [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as outdir:
            command = [sys.executable, "-m", "deepsentinel.cli", "synth", "--out", outdir]
            command += ["--env", args.env] if args.env else []
            seconds, peak = measure(command)
        times.append(seconds)
        peaks.append(peak)
        print(f"run {run}: {seconds:.2f} s, peak {peak / 2**20:.0f} MiB")
    print(f"synth ({args.env or 'dev + prod + state'}): median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}), peak memory {max(peaks) / 2**20:.0f} MiB over {args.runs} runs "
          f"[goal: <= 6 s, <= 1024 MiB]")


if __name__ == "__main__":
    main()
