"""`deepsentinel plan [--env] [--local] [--json-out FILE]`: a locked plan of one environment.

Exit codes as `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error (one `error:` line).
The plan takes the state lock (an S3 object beside the state, `use_lockfile`), so it never reads a state
that a running apply is about to change; a held lock is one line naming its holder (deepsentinel.state_lock).
`--json-out` writes `terraform show -json` of the saved plan: the file `deepsentinel review --plan` reads.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from deepsentinel import cli

PLAN_FILE = "deepsentinel-plan.tfplan"
EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    cli.add_settings_arguments(parser, multiple_envs=False)
    parser.add_argument("--local", action="store_true", help="plan against the `deploy --local` deployment")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="local mode: the deployment's directory (default .deepsentinel/local/<env>)")
    parser.add_argument("--json-out", type=Path, metavar="FILE",
                        help="also write the plan as JSON (`terraform show -json`), the input of `review --plan`")
    parser.add_argument("--lock-timeout", default="0s", metavar="DURATION",
                        help="how long to wait for a held state lock, e.g. 5m (default 0s: fail at once)")


def run(args: argparse.Namespace) -> int:
    (settings,) = cli.settings_from_args(args, default_envs=("dev",))
    from deepsentinel import state_lock, terraform
    from deepsentinel.app import platform_stack_name
    from deepsentinel.target import initialised_platform, target_from_args

    if not re.fullmatch(r"\d+[smh]", args.lock_timeout):
        print(f"error: --lock-timeout {args.lock_timeout!r}: expected a duration like 0s, 30s, 5m or 1h",
              file=sys.stderr)
        return 2
    stack = platform_stack_name(settings)
    target = target_from_args(args, settings)
    stack_dir = initialised_platform(target)
    print(f"terraform plan of {stack} on {target.where} (locked, lock timeout {args.lock_timeout}) ...", flush=True)
    changes = state_lock.locked(
        lambda: terraform.plan(stack_dir, out=PLAN_FILE, lock_timeout=args.lock_timeout, env=target.tf_env,
                               on_line=print),
        stack_dir=stack_dir, env=target.tf_env, local=target.local, wait_hint=" (or pass --lock-timeout 5m)")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(terraform.show_plan_json(stack_dir, PLAN_FILE, env=target.tf_env))
        print(f"wrote the plan as JSON to {args.json_out} (for `deepsentinel review --plan {args.json_out}`)")
    print(f"{stack}: {'changes' if changes else 'no changes'} (exit {EXIT_CHANGES if changes else EXIT_NO_CHANGES})")
    return EXIT_CHANGES if changes else EXIT_NO_CHANGES
