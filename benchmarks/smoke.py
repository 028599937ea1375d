"""Upload-to-DONE latency of one video through the local platform, per stage.

    python benchmarks/smoke.py [--workdir DIR] [--runs 3] [--keep]

Deploys dev locally (`deepsentinel deploy --local`) unless DIR already holds a running deployment, then runs
`deepsentinel smoke --local --json` RUNS times with the default 5-second clip and prints each stage's median.
The first run also pays for the smoke model and the database (prepare); later runs show the steady state.
Goal on a 2-core machine: a 5-second clip DONE within 30 s of upload. Destroys the deployment it created
unless --keep. Needs terraform and the AWS provider (DEEPSENTINEL_TF_PLUGIN_MIRROR=/opt/tf-plugins here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_SECONDS = 30.0
CLI = [sys.executable, "-m", "deepsentinel.cli"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(".deepsentinel/bench-smoke"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the deployment running")
    args = parser.parse_args(argv)
    workdir = ["--workdir", str(args.workdir)]
    created = not (args.workdir / "server.json").is_file()
    if created:
        started = time.perf_counter()
        subprocess.run([*CLI, "deploy", "--local", *workdir], check=True, stdout=subprocess.DEVNULL)
        print(f"deploy --local: {time.perf_counter() - started:.0f} s")
    try:
        reports = []
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            done = subprocess.run([*CLI, "smoke", "--local", "--json", *workdir], capture_output=True, text=True)
            wall = time.perf_counter() - started
            if done.returncode != 0 and not done.stdout.strip():
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            report = json.loads(done.stdout)
            reports.append(report)
            stages = ", ".join(f"{s['name']} {s['seconds']:.1f}" for s in report["stages"])
            print(f"run {run}: {report['status']} events={report['events']} highlights={report['highlights']} "
                  f"latency {report['latency_s']:.1f} s (command {wall:.1f} s): {stages}")
        names = [s["name"] for s in reports[0]["stages"]]
        medians = {n: statistics.median(s["seconds"] for r in reports for s in r["stages"] if s["name"] == n)
                   for n in names}
        latency = statistics.median(r["latency_s"] for r in reports)
        print("median per stage: " + ", ".join(f"{n} {v:.2f} s" for n, v in medians.items()))
        print(f"median upload-to-outcome latency: {latency:.1f} s (goal {GOAL_SECONDS:.0f} s): "
              f"{'met' if latency <= GOAL_SECONDS else 'NOT met'}")
        return 0 if all(r["status"] == "DONE" for r in reports) else 1
    finally:
        if created and not args.keep:
            subprocess.run([*CLI, "destroy", "--local", *workdir], check=False, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
