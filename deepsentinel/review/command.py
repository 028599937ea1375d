"""`deepsentinel review`: synthesize head and base, then report changes, risks, cost and policy as markdown.

Exit status: 0 when the policy gate passes, 1 when checkov finds a failed check the baseline does not
cover (or checkov cannot run), 2 for usage errors (bad base, unreadable plan/prices/usage/baseline).
`--fail-on-risk SEVERITY` also exits 1 when a risk of that severity or worse is found.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from deepsentinel.review.cost import DEFAULT_PRICES, DEFAULT_USAGE
from deepsentinel.review.policy import DEFAULT_BASELINE


class ReviewError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser, name: str = "review") -> None:
    from deepsentinel.cli import add_settings_arguments

    add_settings_arguments(parser, multiple_envs=True, out_help=None)
    parser.add_argument("--out", metavar="FILE", help="write the markdown here (default: stdout)")
    parser.add_argument("--base", default="HEAD", metavar="REF_OR_DIR",
                        help="git ref (synthesized from `git archive` in a temp dir), a source tree, a directory of "
                             "synthesized stacks (<dir>/stacks/<stack>/cdk.tf.json), or `none` (default HEAD)")
    parser.add_argument("--head", type=Path, metavar="DIR",
                        help="use these synthesized stacks as the head instead of synthesizing the working tree")
    parser.add_argument("--plan", action="append", default=[], metavar="[STACK=]FILE",
                        help="`terraform show -json` output whose actions replace the synthesized diff (repeatable; "
                             "without STACK= the stack defining most of its addresses)")
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES, metavar="FILE", help="price table (TOML)")
    parser.add_argument("--usage", type=Path, default=DEFAULT_USAGE, metavar="FILE", help="usage file (TOML)")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE, metavar="FILE", help="checkov baseline (TOML)")
    parser.add_argument("--no-policy", action="store_true", help="skip checkov (the gate then never fails)")
    parser.add_argument("--fail-on-risk", choices=("high", "medium", "low"), default=None,
                        help="also exit 1 when a risk of this severity or worse is found")
    parser.add_argument("--synth-dir", type=Path, metavar="DIR",
                        help="keep head/ and base/ synthesized stacks here (default: a temp dir, removed)")


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ReviewError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _synth_command(args: argparse.Namespace, outdir: Path) -> list[str]:
    command = [sys.executable, "-m", "deepsentinel.cli", "synth", "--out", str(outdir)]
    if args.env:
        command += ["--env", args.env]
    if args.settings:
        command += ["--settings", str(Path(args.settings).resolve())]
    for override in args.overrides:
        command += ["-c", override]
    return command


def start_base(args: argparse.Namespace, workdir: Path) -> tuple[str, Path | None, subprocess.Popen | None]:
    """Resolve --base: (label, directory that will hold stacks/, running synth process or None)."""
    base = str(args.base)
    if base.lower() == "none":
        return "(empty)", None, None
    candidate = Path(base)
    if candidate.is_dir() and any(candidate.glob("stacks/*/cdk.tf.json")):
        return base, candidate, None
    if candidate.is_dir() and (candidate / "deepsentinel" / "__init__.py").exists():
        source = candidate.resolve()
        label = base
    else:
        root = Path(_git("rev-parse", "--show-toplevel", cwd=Path.cwd()))
        commit = _git("rev-parse", "--verify", f"{base}^{{commit}}", cwd=root)
        source = workdir / "base-src"
        source.mkdir(parents=True)
        archive = workdir / "base.tar"
        with open(archive, "wb") as fh:
            done = subprocess.run(["git", "archive", "--format=tar", commit], cwd=root, stdout=fh, stderr=subprocess.PIPE)
        if done.returncode != 0:
            raise ReviewError(f"git archive {commit}: {done.stderr.decode().strip()}")
        with tarfile.open(archive) as tar:
            tar.extractall(source, filter="data")
        label = f"{base} ({commit[:8]})"
    outdir = workdir / "base"
    env = {**os.environ, "PYTHONPATH": str(source), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    process = subprocess.Popen(_synth_command(args, outdir), cwd=source, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    return label, outdir, process


def finish_base(process: subprocess.Popen | None, label: str) -> None:
    if process is None:
        return
    output, _ = process.communicate()
    if process.returncode != 0:
        raise ReviewError(f"synthesizing the base {label} failed (exit {process.returncode}):\n{output[-3000:]}")


def _plans(specs: list[str], documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from deepsentinel.review.diff import plan_match_score

    plans = {}
    for spec in specs:
        stack, _, file = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        try:
            plan = json.loads(Path(file).read_text())
        except (OSError, ValueError) as error:
            raise ReviewError(f"--plan {spec}: {error}") from error
        if not stack:
            scores = {name: plan_match_score(plan, doc) for name, doc in documents.items()}
            stack = max(scores, key=scores.get) if scores and max(scores.values()) > 0 else ""
            if not stack:
                raise ReviewError(f"--plan {file}: no stack defines its addresses; name it as STACK={file}")
        plans[stack] = plan
    return plans


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def review(args: argparse.Namespace, workdir: Path) -> tuple[str, int]:
    from deepsentinel.review.cost import PriceTable, Usage, environment_of, estimate
    from deepsentinel.review.diff import diff_documents, diff_plan
    from deepsentinel.review.policy import Baseline, evaluate
    from deepsentinel.review.report import Review, render
    from deepsentinel.review.risks import SEVERITY_ORDER, assess
    from deepsentinel.synthesized import load, stack_files

    try:
        prices, usage = PriceTable.load(args.prices), Usage.load(args.usage)
        baseline = Baseline.load(args.baseline) if not args.no_policy else None
    except (OSError, ValueError) as error:
        raise ReviewError(str(error)) from error

    base_label, base_dir, base_process = start_base(args, workdir)
    try:
        if args.head:
            head_files, head_label = stack_files(args.head), str(args.head)
            if not head_files:
                raise ReviewError(f"--head {args.head}: no stacks/<stack>/cdk.tf.json below it")
        else:
            from deepsentinel.cli import settings_from_args
            from deepsentinel.app import synth

            started = time.perf_counter()
            result = synth(settings_from_args(args), outdir=workdir / "head")
            head_files, head_label = result.stacks, "working tree"
            print(f"synthesized the head in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        finish_base(base_process, base_label)
    except BaseException:
        if base_process and base_process.poll() is None:
            base_process.kill()
        raise
    base_files = stack_files(base_dir) if base_dir else {}
    names = list(head_files) + [n for n in base_files if n not in head_files]
    if args.env:
        names = [n for n in names if environment_of(n) in (args.env, "state")]
    head_docs = {n: load(head_files[n]) for n in names if n in head_files}
    base_docs = {n: load(base_files[n]) for n in names if n in base_files}
    plans = _plans(args.plan, {**base_docs, **head_docs})
    if unknown := sorted(set(plans) - set(names)):
        raise ReviewError(f"--plan names stacks that are not reviewed: {', '.join(unknown)} (have: {', '.join(names)})")

    diffs, risks = [], []
    for name in names:
        base, head = base_docs.get(name), head_docs.get(name)
        diff = diff_plan(name, plans[name], base, head) if name in plans else diff_documents(name, base, head)
        diffs.append(diff)
        risks += assess(diff, base, head, prod=environment_of(name) == "prod")
    costs = {n: estimate(n, d, prices, usage) for n, d in head_docs.items()}
    base_costs = {n: estimate(n, d, prices, usage) for n, d in base_docs.items()}
    policy = None if baseline is None else evaluate({n: head_files[n] for n in head_docs}, head_docs, baseline)
    notes = [f"Base synthesized from {base_label}."] if base_process else []
    text = render(Review(base_label, head_label, diffs, risks, costs, base_costs, prices,
                         _display(Path(args.usage)), policy, notes))
    code = 1 if (policy is not None and not policy.ok) else 0
    if args.fail_on_risk and any(SEVERITY_ORDER[r.severity] <= SEVERITY_ORDER[args.fail_on_risk] for r in risks):
        code = 1
    return text, code


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    try:
        if args.synth_dir:
            args.synth_dir.mkdir(parents=True, exist_ok=True)
            text, code = review(args, args.synth_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="deepsentinel-review-") as tmp:
                text, code = review(args, Path(tmp))
    except ReviewError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out} (exit {code})", file=sys.stderr)
    else:
        print(text)
    return code
