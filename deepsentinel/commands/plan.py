"""`deepsentinel plan [--env] [--local] [--json-out FILE] [--no-refresh]`: a locked plan of one environment.

Exit codes as `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error (one `error:` line).
The plan takes the state lock (an S3 object beside the state, `use_lockfile`), so it never reads a state
that a running apply is about to change; a held lock is one line naming its holder (deepsentinel.state_lock).
`--json-out` writes `terraform show -json` of the saved plan: the file `deepsentinel review --plan` reads.
`--no-refresh` plans from the state alone (`-refresh=false`): it does not read each deployed resource first.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from deepsentinel.commands import arguments

PLAN_FILE = "deepsentinel-plan.tfplan"
EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
# Terraform's per-resource lines of a plan's reading phase: counted, not printed (--verbose prints them).
READING_PHASE = {": Refreshing state...": "refreshed", ": Read complete": "read", ": Opening complete": "opened"}
READING_NOISE = (": Reading...", ": Opening...", ": Closing...", ": Closing complete")
# The headline of each planned action ("  # aws_s3_bucket.x will be created", "  # ... must be replaced") and its
# reason ("  # (because ... is not in configuration)"): two spaces in; attribute lines are deeper.
ACTION_HEADLINE = re.compile(r"^  # \S")
LISTED_CREATIONS = 10  # more are one line: a first deploy's plan creates everything


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    arguments.add_settings_arguments(parser, multiple_envs=False)
    arguments.add_local_arguments(parser, local_help="plan against the `deploy --local` deployment")
    parser.add_argument(
        "--json-out",
        type=Path,
        metavar="FILE",
        help="also write the plan as JSON (`terraform show -json`), the input of `review --plan`",
    )
    parser.add_argument(
        "--lock-timeout",
        default="0s",
        metavar="DURATION",
        help="how long to wait for a held state lock, e.g. 5m (default 0s: fail at once)",
    )
    parser.add_argument(
        "--refresh",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read every deployed resource before planning (default); --no-refresh plans from the state alone: "
        "faster, and blind to what was changed outside Terraform",
    )
    arguments.add_verbose_argument(parser)


def run(args: argparse.Namespace) -> int:
    (settings,) = arguments.settings_from_args(args, default_envs=("dev",))
    from deepsentinel import state_lock, terraform
    from deepsentinel.stacks.names import platform_stack_name
    from deepsentinel.target import initialised_platform, target_from_args

    if not re.fullmatch(r"\d+[smh]", args.lock_timeout):
        print(
            f"error: --lock-timeout {args.lock_timeout!r}: expected a duration like 0s, 30s, 5m or 1h", file=sys.stderr
        )
        return 2
    stack = platform_stack_name(settings)
    target = target_from_args(args, settings)
    stack_dir = initialised_platform(target)
    reading = "" if args.refresh else ", no refresh"
    print(
        f"terraform plan of {stack} on {target.where} (locked, lock timeout {args.lock_timeout}{reading}) ...",
        flush=True,
    )
    changes = state_lock.locked(
        lambda: terraform.plan(
            stack_dir,
            out=PLAN_FILE,
            lock_timeout=args.lock_timeout,
            refresh=args.refresh,
            env=target.tf_env,
            on_line=PlanProgress(verbose=args.verbose),
        ),
        stack_dir=stack_dir,
        env=target.tf_env,
        local=target.local,
        wait_hint=" (or pass --lock-timeout 5m)",
    )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(terraform.show_plan_json(stack_dir, PLAN_FILE, env=target.tf_env))
        print(f"wrote the plan as JSON to {args.json_out} (for `deepsentinel review --plan {args.json_out}`)")
    print(f"{stack}: {'changes' if changes else 'no changes'} (exit {EXIT_CHANGES if changes else EXIT_NO_CHANGES})")
    return EXIT_CHANGES if changes else EXIT_NO_CHANGES


class PlanProgress:
    """A plan's output, compact: the reading phase (one line per resource refreshed or data source read) as one
    line of counts, each planned action's headline (creations as one count when there are more than
    LISTED_CREATIONS, as on a first deploy), the "Plan:" summary or "No changes.", and each warning's summary line.
    Errors are left out: the failed command reports them (a held lock as one line). `verbose`: every line."""

    def __init__(self, *, verbose: bool = False, print_line: Callable[[str], None] = print) -> None:
        self.verbose, self._print = verbose, print_line
        self.started = time.perf_counter()
        self.counts: dict[str, int] = {}
        self._reading = True
        self._box: list[str] | None = None  # a boxed diagnostic (╷ ... ╵) being collected
        self._creations: list[str] = []
        self._shown_last_headline = False

    def __call__(self, line: str) -> None:
        if self.verbose:
            self._print(line)
            return
        text = line.strip()
        if self._box is not None:
            self._box.append(text)
            if text.startswith("╵"):
                box, self._box = self._box, None
                summary = next((b.lstrip("│ ") for b in box[1:] if b.lstrip("│ ")), "")
                if summary.startswith("Warning:"):
                    self._print(summary)
            return
        if text.startswith("╷"):
            self._box = [text]
            return
        kind = next((kind for marker, kind in READING_PHASE.items() if marker in text), None)
        if kind is not None:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            return
        if not text or any(marker in text for marker in READING_NOISE):
            return
        self._end_reading()
        if ACTION_HEADLINE.match(line):
            if text.startswith("# ("):  # the reason of the headline above
                if self._shown_last_headline:
                    self._print(line.rstrip())
            elif text.endswith(" will be created"):
                self._creations.append(line.rstrip())
                self._shown_last_headline = False
            else:
                self._print(line.rstrip())
                self._shown_last_headline = True
        elif text.startswith(("Plan: ", "No changes.")):
            self._end_actions()
            self._print(text)
        elif text.startswith("Warning:"):
            self._print(text)

    def _end_reading(self) -> None:
        if not self._reading:
            return
        self._reading = False
        names = {
            "refreshed": "resource(s) refreshed",
            "read": "data source(s) read",
            "opened": "ephemeral resource(s) opened",
        }
        counts = ", ".join(f"{self.counts[k]} {name}" for k, name in names.items() if self.counts.get(k))
        self._print(f"[{time.perf_counter() - self.started:6.1f}s] {counts or 'nothing to refresh'}")

    def _end_actions(self) -> None:
        creations, self._creations = self._creations, []
        if len(creations) > LISTED_CREATIONS:
            self._print(f"  # {len(creations)} resources will be created (--verbose lists them)")
        else:
            for headline in creations:
                self._print(headline)
