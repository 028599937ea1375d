"""The CPU seconds of `terraform validate` of dev with Go's default collector and with the toolkit's setting.

    python benchmarks/terraform_gc.py [--runs 5]

Synthesizes dev, initializes it without a backend, then runs `terraform validate` (one start of the 700 MB AWS
provider: most of a small plan's CPU) alternately with Go's defaults (GOGC and GOMEMLIMIT removed from the
environment) and with deepsentinel.terraform.GO_GARBAGE_COLLECTION, the environment every terraform the toolkit
runs gets. Prints each variant's user, system and total CPU seconds (terraform and its provider plugin: the children
of the timed process) and its peak resident set. Needs terraform and the provider (DEEPSENTINEL_TF_PLUGIN_MIRROR).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from deepsentinel import terraform

VARIANTS = ("Go's defaults", "GO_GARBAGE_COLLECTION")


def timed_validate(stack_dir: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """(user, system) CPU seconds and the peak resident set (KiB) of one validate, terraform and its provider."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    terraform.validate(stack_dir, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, after.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="validates per variant (default 5)")
    runs = parser.parse_args().runs
    from deepsentinel.app import synth
    from deepsentinel.settings import load_settings

    with tempfile.TemporaryDirectory() as work:
        stack_dir = synth([load_settings("dev")], outdir=Path(work) / "out").stacks["deepsentinel-dev"].parent
        toolkit = terraform.environment(Path(work) / "cli")
        defaults = {k: v for k, v in toolkit.items() if k not in terraform.GO_GARBAGE_COLLECTION}
        toolkit.update(terraform.GO_GARBAGE_COLLECTION)
        terraform.init(stack_dir, backend=False, env=toolkit)
        figures: dict[str, list[tuple[float, float, int]]] = {variant: [] for variant in VARIANTS}
        for _ in range(runs):
            for variant, env in zip(VARIANTS, (defaults, toolkit), strict=True):
                figures[variant].append(timed_validate(stack_dir, env))
    print(f"terraform validate of deepsentinel-dev, {runs} runs each, {os.cpu_count()} CPUs "
          f"({', '.join(f'{k}={v}' for k, v in terraform.GO_GARBAGE_COLLECTION.items())} vs Go's defaults)")
    for variant, rows in figures.items():
        user = statistics.median(row[0] for row in rows)
        system = statistics.median(row[1] for row in rows)
        total = statistics.median(row[0] + row[1] for row in rows)
        print(f"  {variant:22} CPU median {total:5.2f} s (user {user:.2f}, system {system:.2f})")
    peak = max(row[2] for rows in figures.values() for row in rows) / 1024
    print(f"  peak resident set: {peak:.0f} MiB (the largest process of any run, the provider: ru_maxrss)")


if __name__ == "__main__":
    main()
