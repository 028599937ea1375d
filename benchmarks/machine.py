"""How fast this machine's CPU is right now: the CPU seconds of one fixed pure-Python loop, several times.

    python benchmarks/machine.py [--runs 5]

Every other figure here is CPU-bound on two cores, and the machines this project is measured on differ and vary
(a virtual machine's core can be slower from one minute to the next): run it before and after a measurement and
quote it beside the figure, to compare that figure with one taken elsewhere or earlier.
"""

from __future__ import annotations

import argparse
import statistics
import time

ITERATIONS = 20_000_000


def loop_seconds() -> float:
    started, total = time.process_time(), 0
    for i in range(ITERATIONS):
        total += i
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = [loop_seconds() for _ in range(parser.parse_args().runs)]
    print(f"{ITERATIONS:,} additions in a Python loop, CPU seconds per run: {', '.join(f'{s:.2f}' for s in runs)}")
    print(f"min {min(runs):.2f} s, median {statistics.median(runs):.2f} s, max {max(runs):.2f} s")


if __name__ == "__main__":
    main()
