"""`deepsentinel review`: synthesize head and base, then report changes, risks, cost and policy as markdown.

Exit status: 0 when the policy gate passes, 1 when checkov finds a failed check the baseline does not
cover (or checkov cannot run), 2 for usage errors (bad base, unreadable plan/prices/usage/baseline).
`--fail-on-risk SEVERITY` also exits 1 when a risk of that severity or worse is found.

Outputs besides the markdown: `--json` prints the report's data as one JSON document on stdout (progress
and notes go to stderr), `--sarif FILE` writes the failed checks outside the baseline as SARIF 2.1.0 for
GitHub code scanning, `--comment FILE` writes the markdown cut to `--max-chars` for a PR comment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepsentinel.review.ai_summary import add_arguments as add_ai_arguments
from deepsentinel.review.cost import DEFAULT_PRICES, DEFAULT_USAGE
from deepsentinel.review.policy import DEFAULT_BASELINE
from deepsentinel.review.report import COMMENT_MAX_CHARS, DEFAULT_ARTIFACT

if TYPE_CHECKING:
    from deepsentinel.review.ai_summary import AiSummary
    from deepsentinel.review.report import Review


class ReviewError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser, name: str = "review") -> None:
    from deepsentinel.commands.arguments import add_settings_arguments

    add_settings_arguments(parser, multiple_envs=True, out_help=None)
    parser.add_argument("--out", metavar="FILE", help="write the markdown here (default: stdout)")
    parser.add_argument(
        "--base",
        default="HEAD",
        metavar="REF_OR_DIR",
        help="git ref (synthesized from `git archive` in a temp dir), a source tree, a directory of "
        "synthesized stacks (<dir>/stacks/<stack>/cdk.tf.json), or `none` (default HEAD)",
    )
    parser.add_argument(
        "--head",
        type=Path,
        metavar="DIR",
        help="use these synthesized stacks as the head instead of synthesizing the working tree",
    )
    parser.add_argument(
        "--plan",
        action="append",
        default=[],
        metavar="[STACK=]FILE",
        help="`terraform show -json` output whose actions replace the synthesized diff (repeatable; "
        "without STACK= the stack defining most of its addresses)",
    )
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES, metavar="FILE", help="price table (TOML)")
    parser.add_argument("--usage", type=Path, default=DEFAULT_USAGE, metavar="FILE", help="usage file (TOML)")
    parser.add_argument(
        "--baseline", type=Path, default=DEFAULT_BASELINE, metavar="FILE", help="checkov baseline (TOML)"
    )
    parser.add_argument("--no-policy", action="store_true", help="skip checkov (the gate then never fails)")
    parser.add_argument(
        "--fail-on-risk",
        choices=("high", "medium", "low"),
        default=None,
        help="also exit 1 when a risk of this severity or worse is found",
    )
    parser.add_argument(
        "--synth-dir",
        type=Path,
        metavar="DIR",
        help="keep head/ and base/ synthesized stacks here (default: a temp dir, removed)",
    )
    parser.add_argument(
        "--least-privilege",
        type=Path,
        metavar="FILE",
        default=os.environ.get("LEAST_PRIVILEGE_REPORT") or None,
        help="add the recorded calls' least-privilege report (JSON written by "
        "tests/unit/test_recorded_calls.py) when the file exists (default: $LEAST_PRIVILEGE_REPORT)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report's data (changes, risks, cost, policy) as one JSON document on stdout "
        "instead of the markdown (progress on stderr; --out still writes the markdown)",
    )
    parser.add_argument(
        "--sarif",
        type=Path,
        metavar="FILE",
        help="write the failed checks not in the baseline as SARIF 2.1.0 (GitHub code scanning); "
        "locations are the stack files relative to the repository root",
    )
    parser.add_argument(
        "--comment",
        type=Path,
        metavar="FILE",
        help="write the markdown as a PR comment body: cut at a line boundary to --max-chars, "
        "with a note pointing at the full report in the workflow artifact --artifact",
    )
    parser.add_argument(
        "--max-chars",
        type=int,
        default=COMMENT_MAX_CHARS,
        metavar="N",
        help=f"longest --comment body (default {COMMENT_MAX_CHARS:,}; GitHub rejects comments above 65,536 characters)",
    )
    parser.add_argument(
        "--artifact",
        default=DEFAULT_ARTIFACT,
        metavar="NAME",
        help=f"artifact named in the truncation note (default {DEFAULT_ARTIFACT})",
    )
    parser.add_argument("--run-url", metavar="URL", help="workflow run linked from the truncation note")
    add_ai_arguments(parser)


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)  # its stderr, below
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
            done = subprocess.run(  # a failure is reported with git's stderr, below
                ["git", "archive", "--format=tar", commit], cwd=root, stdout=fh, stderr=subprocess.PIPE, check=False
            )
        if done.returncode != 0:
            raise ReviewError(f"git archive {commit}: {done.stderr.decode().strip()}")
        with tarfile.open(archive) as tar:
            tar.extractall(source, filter="data")
        label = f"{base} ({commit[:8]})"
    outdir = workdir / "base"
    env = {**os.environ, "PYTHONPATH": str(source), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    process = subprocess.Popen(
        _synth_command(args, outdir), cwd=source, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
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
            stack = max(scores, key=lambda name: scores[name]) if scores and max(scores.values()) > 0 else ""
            if not stack:
                raise ReviewError(f"--plan {file}: no stack defines its addresses; name it as STACK={file}")
        plans[stack] = plan
    return plans


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass
class Outcome:
    review: Review
    code: int
    head_files: dict[str, Path]  # the reviewed head stacks, by name
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)  # --plan documents, by stack
    ai: AiSummary | None = None  # --ai


def review(args: argparse.Namespace, workdir: Path) -> Outcome:
    from deepsentinel.review.cost import PriceTable, Usage, environment_of, estimate
    from deepsentinel.review.diff import diff_documents, diff_plan
    from deepsentinel.review.policy import Baseline, evaluate
    from deepsentinel.review.report import Review
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
            from deepsentinel.app import synth
            from deepsentinel.commands.arguments import settings_from_args

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
    # The baseline serves every stack of the project: what this review does not see, it cannot call stale.
    every_stack = sorted({*project_stacks(), *head_files, *base_files})
    policy = (
        None
        if baseline is None
        else evaluate({n: head_files[n] for n in head_docs}, head_docs, baseline, all_stacks=every_stack)
    )
    notes = [f"Base synthesized from {base_label}."] if base_process else []
    if policy is not None and (unreviewed := [n for n in every_stack if n not in head_docs]):
        notes.append(
            f"Not reviewed: {', '.join(unreviewed)}; baseline entries that apply to them are not judged stale here."
        )
    least_privilege_file = getattr(args, "least_privilege", None)
    least_privilege = (
        json.loads(Path(least_privilege_file).read_text())
        if least_privilege_file and Path(least_privilege_file).is_file()
        else None
    )
    reviewed = Review(
        base_label,
        head_label,
        diffs,
        risks,
        costs,
        base_costs,
        prices,
        _display(Path(args.usage)),
        policy,
        notes,
        least_privilege,
    )
    code = 1 if (policy is not None and not policy.ok) else 0
    if args.fail_on_risk and any(SEVERITY_ORDER[r.severity] <= SEVERITY_ORDER[args.fail_on_risk] for r in risks):
        code = 1
    return Outcome(reviewed, code, {n: head_files[n] for n in head_docs}, plans)


def ai_summary(args: argparse.Namespace, outcome: Outcome) -> AiSummary:
    """Bedrock's summary of the reviewed plan; a failed call is a summary that says why it is missing."""
    from deepsentinel.review.ai_summary import summary_for

    started = time.perf_counter()
    summary = summary_for(outcome.review, outcome.plans, model_id=args.ai_model, language=args.ai_language)
    state = "written" if summary.ok else f"unavailable: {summary.reason}"
    print(f"AI summary ({args.ai_model}) {state} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return summary


def project_stacks() -> list[str]:
    """Every stack the project defines: one per environment and the account stack (deepsentinel.app's names,
    without importing cdktf)."""
    from deepsentinel.settings import ENVIRONMENTS

    return [f"deepsentinel-{env}" for env in ENVIRONMENTS] + ["deepsentinel-account"]


def repository_root() -> Path:
    """The git work tree holding the current directory (SARIF paths are relative to it), else the cwd."""
    # outside a work tree (or without git) the cwd is the root
    done = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False)
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else Path.cwd()


def _write(path: Path, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def write_outputs(args: argparse.Namespace, outcome: Outcome) -> None:
    from deepsentinel.review.ai_summary import markdown as ai_markdown
    from deepsentinel.review.report import COST_TOP_N, render, review_data, truncate_for_comment
    from deepsentinel.review.sarif import to_sarif

    top = ai_markdown(outcome.ai) if outcome.ai else ""
    text = top + render(outcome.review)
    if args.out:
        _write(args.out, text)
        print(f"wrote {args.out} (exit {outcome.code})", file=sys.stderr)
    if args.comment:
        # the comment's per-resource cost lines stop at the largest changes; review.md lists them all
        short = top + render(outcome.review, cost_rows=COST_TOP_N)
        body = truncate_for_comment(short, args.max_chars, artifact=args.artifact, run_url=args.run_url)
        _write(args.comment, body)
        cut = " (truncated)" if body != short else ""
        print(f"wrote {args.comment}: {len(body):,} characters{cut}", file=sys.stderr)
    if args.sarif:
        policy = outcome.review.policy
        if policy is None or policy.error:
            print(
                f"did not write {args.sarif}: checkov produced no report, so there are no results to upload",
                file=sys.stderr,
            )
        else:
            sarif = to_sarif(policy, outcome.head_files, root=repository_root())
            _write(args.sarif, json.dumps(sarif, indent=2) + "\n")
            results = sarif["runs"][0]["results"]
            print(f"wrote {args.sarif}: {len(results)} results", file=sys.stderr)
            if any(
                loc["physicalLocation"]["artifactLocation"]["uri"].startswith("file:")
                for r in results
                for loc in r["locations"]
            ):
                print(
                    "note: the reviewed stacks are outside the repository, so code scanning cannot match their "
                    "paths; review synthesized stacks inside it (--head cdktf.out or --synth-dir DIR)",
                    file=sys.stderr,
                )
    if args.json:
        ai = {"ai_summary": outcome.ai.data()} if outcome.ai else {}
        print(json.dumps({**review_data(outcome.review), **ai, "exit_code": outcome.code}, indent=2, default=str))
    elif not args.out:
        print(text)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if args.sarif and args.no_policy:
        print("error: --sarif needs the policy gate (drop --no-policy)", file=sys.stderr)
        return 2
    if args.comment and args.max_chars < 1000:
        print(f"error: --max-chars {args.max_chars}: too small for a report (at least 1000)", file=sys.stderr)
        return 2
    # with --json stdout is one document: anything the review prints on the way goes to stderr
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    try:
        with contextlib.ExitStack() as stack:
            if args.synth_dir:
                args.synth_dir.mkdir(parents=True, exist_ok=True)
                workdir = args.synth_dir
            else:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deepsentinel-review-")))
            with quiet:
                outcome = review(args, workdir)
            if getattr(args, "ai", False):
                outcome.ai = ai_summary(args, outcome)
            write_outputs(args, outcome)  # before a temp dir goes: SARIF locations read the stack files
    except ReviewError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return outcome.code
