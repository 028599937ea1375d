"""How fast this machine's CPU is right now: the CPU seconds of one fixed pure-Python loop, several times, then on
every core at once.

    python benchmarks/machine.py [--runs 5]

Every other figure here is CPU-bound on two cores, and the machines this project is measured on differ and vary
(a virtual machine's core can be slower from one minute to the next): run it before and after a measurement and
quote it beside the figure, to compare that figure with one taken elsewhere or earlier. The loop alone lands on
whichever core is faster; the suite keeps every core busy, and on a shared host one of them can then be far slower
than the other (2026-12-03: 0.74 and 1.36 s, while the loop alone took 0.72-0.91 s): `every core at once` runs one
loop pinned to each core, all at the same time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

ITERATIONS = 20_000_000


def loop_seconds() -> float:
    started, total = time.process_time(), 0
    for i in range(ITERATIONS):
        total += i
    return time.process_time() - started


def pinned_loop_seconds(cpu: int) -> float:
    os.sched_setaffinity(0, {cpu})
    return loop_seconds()


def every_core_at_once() -> dict[int, float]:
    """The loop's CPU seconds on each core this process may use, one pinned process per core, all running at once."""
    cpus = sorted(os.sched_getaffinity(0))
    with ProcessPoolExecutor(len(cpus)) as pool:
        return dict(zip(cpus, pool.map(pinned_loop_seconds, cpus), strict=True))


def describe_every_core_at_once() -> str:
    return ", ".join(f"cpu{cpu} {seconds:.2f} s" for cpu, seconds in every_core_at_once().items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = [loop_seconds() for _ in range(parser.parse_args().runs)]
    print(f"{ITERATIONS:,} additions in a Python loop, CPU seconds per run: {', '.join(f'{s:.2f}' for s in runs)}")
    print(f"min {min(runs):.2f} s, median {statistics.median(runs):.2f} s, max {max(runs):.2f} s")
    print(f"every core at once (one pinned loop each): {describe_every_core_at_once()}")


if __name__ == "__main__":
    main()
