"""Time the phases of `deepsentinel review` on the real platform: synth, diff+risks, cost, checkov.

    python benchmarks/review.py            # dev, prod and the account stack
    python benchmarks/review.py --env dev
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=("dev", "prod"), default=None)
    args = parser.parse_args()
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    timings: list[tuple[str, float]] = []

    def timed(label, fn):
        started = time.perf_counter()
        value = fn()
        timings.append((label, time.perf_counter() - started))
        return value

    from deepsentinel.settings import load_settings

    envs = [args.env] if args.env else ["dev", "prod"]
    with tempfile.TemporaryDirectory() as tmp:
        def synth():
            from deepsentinel.app import synth as run
            return run([load_settings(e) for e in envs], outdir=Path(tmp)).stacks

        files = timed("synth (import cdktf + provider, synthesize)", synth)
        from deepsentinel.review.cost import PriceTable, Usage, estimate
        from deepsentinel.review.diff import diff_documents
        from deepsentinel.review.policy import Baseline, evaluate
        from deepsentinel.review.risks import assess
        from deepsentinel.synthesized import load, resources

        docs = {n: load(p) for n, p in files.items()}
        timed("diff + risks vs an empty base", lambda: [assess(diff_documents(n, None, d), None, d, prod=n.endswith("prod"))
                                                        for n, d in docs.items()])
        timed("cost (head)", lambda: [estimate(n, d, PriceTable.load(), Usage.load()) for n, d in docs.items()])
        result = timed("checkov (one process, all stacks)", lambda: evaluate(files, docs, Baseline.load()))
    count = sum(len(list(resources(d))) for d in docs.values())
    print(f"{len(docs)} stacks, {count} resources, {len(result.findings)} failed checks "
          f"({len(result.new)} not in the baseline), {result.passed} passed")
    for label, seconds in timings:
        print(f"{seconds:7.2f}s  {label}")
    print(f"{sum(s for _, s in timings):7.2f}s  total")


if __name__ == "__main__":
    main()
