"""Upload-to-DONE latency of one video through the local platform, per stage and per worker phase.

    python benchmarks/smoke.py [--workdir DIR] [--runs 5] [--keep]

Deploys dev locally (`deepsentinel deploy --local`) unless DIR already holds a running deployment, then runs
`deepsentinel smoke --local --json` RUNS times with the default 5-second clip and prints each run, then the median
and max upload-to-DONE latency, max/median, each stage's median and the worker's phases' medians (from its own log
lines: `job_phases`, `model_ready`, `timings`; `process` is its interpreter's start and exit). The first run in a
fresh deployment also pays for the smoke model and the database (prepare, before the clock starts).
Goals (issue 20), on a 2-core machine: median <= 10 s over 5 runs and max/median <= 1.5. Destroys the deployment
it created unless --keep. Needs terraform and the AWS provider (DEEPSENTINEL_TF_PLUGIN_MIRROR=/opt/tf-plugins here).
Say what else ran on the machine with the figures: every stage is CPU-bound, and the worker's wall time against
its CPU time shows how long it waited for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GOAL_MEDIAN_SECONDS = 10.0
GOAL_MAX_OVER_MEDIAN = 1.5
CLI = [sys.executable, "-m", "deepsentinel.cli"]


def _medians(rows: list[dict[str, float]]) -> dict[str, float]:
    names = list(dict.fromkeys(name for row in rows for name in row))
    return {name: statistics.median(row[name] for row in rows if name in row) for name in names}


def _line(values: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.2f}" for name, seconds in values.items())


def summarize(reports: list[dict[str, Any]]) -> list[str]:
    """The summary lines of a series of smoke reports (their `--json` objects)."""
    latencies = [r["latency_s"] for r in reports]
    median, worst = statistics.median(latencies), max(latencies)
    spread = worst / median if median else float("inf")
    lines = [f"median per stage (s): {_line(_medians([{s['name']: s['seconds'] for s in r['stages']} for r in reports]))}"]
    workers = [r.get("worker") or {} for r in reports]
    if any(w.get("phases_s") for w in workers):
        totals = [{"attempt": w["attempt_s"], "process": w.get("process_s", 0.0), **w["phases_s"],
                   "wall": w.get("wall_s", 0.0), "cpu": w.get("cpu_s", 0.0)} for w in workers if w.get("phases_s")]
        lines.append(f"median worker phases (s): {_line(_medians(totals))}")
        lines.append(f"median model steps (s): {_line(_medians([w.get('model_steps_s', {}) for w in workers]))}")
        stages = _medians([w.get("pipeline_stages_s", {}) for w in workers])
        lines.append(f"median pipeline stages (s): {_line({k: v for k, v in stages.items() if v >= 0.01})}")
    lines.append(f"upload-to-DONE over {len(reports)} runs: median {median:.1f} s (goal <= {GOAL_MEDIAN_SECONDS:.0f} s: "
                 f"{'met' if median <= GOAL_MEDIAN_SECONDS else 'NOT met'}), max {worst:.1f} s, max/median "
                 f"{spread:.2f} (goal <= {GOAL_MAX_OVER_MEDIAN}: {'met' if spread <= GOAL_MAX_OVER_MEDIAN else 'NOT met'})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(".deepsentinel/bench-smoke"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the deployment running")
    args = parser.parse_args(argv)
    workdir = ["--workdir", str(args.workdir)]
    created = not (args.workdir / "server.json").is_file()
    if created:
        started = time.perf_counter()
        subprocess.run([*CLI, "deploy", "--local", *workdir], check=True, stdout=subprocess.DEVNULL)
        print(f"deploy --local: {time.perf_counter() - started:.0f} s")
    try:
        print(f"load average before the runs: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
              f"({os.cpu_count()} cores)")
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
            worker = report.get("worker") or {}
            phases = ", ".join(f"{k} {v:.1f}" for k, v in (worker.get("phases_s") or {}).items())
            print(f"run {run}: {report['status']} events={report['events']} highlights={report['highlights']} "
                  f"latency {report['latency_s']:.1f} s (command {wall:.1f} s): {stages}"
                  + (f"; worker attempt {worker['attempt_s']:.1f} s = process {worker.get('process_s', 0):.1f}, "
                     f"{phases} (CPU {worker.get('cpu_s', 0):.1f} s)" if phases else ""))
        print(f"load average after the runs: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for line in summarize(reports):
            print(line)
        return 0 if all(r["status"] == "DONE" for r in reports) else 1
    finally:
        if created and not args.keep:
            subprocess.run([*CLI, "destroy", "--local", *workdir], check=False, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
