"""`deepsentinel bootstrap [--local]`: create the account stack and keep its state in the bucket it creates.

The account stack holds the state bucket every stack keeps its state in, so its own first apply cannot
use that bucket: it runs with a local state file, then that state is pushed into the bucket under
`account/terraform.tfstate` and the local file is removed (like `cdk bootstrap`, whose state lives in the
account, not on the machine that ran it). Every later run (another machine, a fresh clone, after
`rm -rf cdktf.out`) finds the bucket and plans against the state in it, so bootstrap is idempotent.

A run interrupted between the apply and the push leaves the local file in `.deepsentinel/bootstrap/`
(or the local workdir); the next run applies and pushes it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsentinel.commands import arguments
from deepsentinel.errors import OperationFailed

BOOTSTRAP_STATE_DIR = Path(".deepsentinel") / "bootstrap"


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    arguments.add_settings_arguments(parser, multiple_envs=False)
    arguments.add_local_arguments(
        parser, local_help="bootstrap the moto server of a local deployment (started if none is running)"
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (AWS mode)")


def run(args: argparse.Namespace) -> int:
    (settings,) = arguments.settings_from_args(args, default_envs=("dev",))
    from deepsentinel.commands.progress import confirm as ask_user
    from deepsentinel.target import target_from_args

    target = target_from_args(args, settings, start=True)
    confirm = (lambda question: True) if (args.yes or target.local) else ask_user
    outputs = bootstrap(target, confirm=confirm)
    # The account stack's own state object was named already (planned against, or moved into): not again here.
    print(
        f"state backend: s3://{outputs['state_bucket']} ({target.where}); locks are `<key>.tflock` objects "
        f"beside each state"
    )
    if outputs.get("github_role_arns"):  # github_repository set: the workflows' OIDC roles (docs/release.md)
        print("GitHub repository variables to set (Settings > Secrets and variables > Actions > Variables):")
        for variable, arn in sorted(outputs["github_role_arns"].items()):
            print(f"  gh variable set {variable} --body {arn}")
    for zone, servers in sorted((outputs.get("hosted_zone_name_servers") or {}).items()):
        # hosted_zones: the registrar must delegate to these before ACM can validate a certificate in the zone.
        print(f"hosted zone {zone}: set its name servers at the registrar: {', '.join(sorted(servers))}")
    return 0


@dataclass(frozen=True)
class AccountStacks:
    """The account stack synthesized twice: with a local state (first apply) and with its S3 backend."""

    first_apply_dir: Path
    stack_dir: Path
    local_state: Path


def bootstrap(target: Any, *, confirm: Any = lambda question: True, log: Any = print) -> dict[str, Any]:
    """Create or update the account stack on `target`; return its outputs. Idempotent."""
    _plans_against_the_bucket(target, account_stack_dirs(target))  # a lost state is refused before the synth
    return apply_account_stack(target, synth_account_stacks(target), confirm=confirm, log=log)


def account_stack_dirs(target: Any) -> AccountStacks:
    """Where the account stack is synthesized and its first apply keeps its local state (nothing written)."""
    from deepsentinel.stacks.names import ACCOUNT_STACK, ACCOUNT_STATE_KEY

    local_dir = (target.work.root / "bootstrap") if target.work else BOOTSTRAP_STATE_DIR.resolve()
    return AccountStacks(
        first_apply_dir=local_dir / "cdktf.out" / "stacks" / ACCOUNT_STACK,
        stack_dir=target.outdir / "stacks" / ACCOUNT_STACK,
        local_state=local_dir / f"{ACCOUNT_STATE_KEY}.tfstate",
    )


def synth_account_stacks(target: Any) -> AccountStacks:
    """Both syntheses up front (jsii runs in one thread; the terraform part may run in another)."""
    from deepsentinel.app import synth_account
    from deepsentinel.stacks.provider import StackOptions

    stacks = account_stack_dirs(target)
    local_dir = stacks.local_state.parent
    local_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(sys.stderr):  # jsii's own chatter, if any
        first = synth_account(
            target.settings,
            outdir=local_dir / "cdktf.out",
            options=StackOptions(endpoint_url=target.endpoint_url, local_state_dir=str(local_dir)),
        )
        final = synth_account(
            target.settings, outdir=target.outdir, options=StackOptions(endpoint_url=target.endpoint_url)
        )
    assert (first.parent, final.parent) == (stacks.first_apply_dir, stacks.stack_dir), (first, final)
    return stacks


def apply_account_stack(
    target: Any, stacks: AccountStacks, *, confirm: Any = lambda question: True, log: Any = print
) -> dict[str, Any]:
    from deepsentinel import state_lock, terraform
    from deepsentinel.stacks.names import ACCOUNT_STATE_KEY, state_object_key

    bucket = target.settings.state_bucket_name
    key = state_object_key(ACCOUNT_STATE_KEY)
    first_apply_interrupted = _first_apply_interrupted(stacks)
    if _plans_against_the_bucket(target, stacks):
        log(f"the state bucket {bucket} exists; planning the account stack against s3://{bucket}/{key}")
    else:
        # First run (or one interrupted before the push): apply with a local state, then move it.
        log(
            f"the state bucket {bucket} does not exist yet on {target.where}: creating the account stack with "
            f"a local state in {stacks.local_state.parent}/"
            if not first_apply_interrupted
            else f"found the state of an interrupted bootstrap in {stacks.local_state}: finishing it"
            if stacks.local_state.is_file()
            else f"found an interrupted bootstrap in {stacks.first_apply_dir}: finishing it"
        )
        terraform.init(stacks.first_apply_dir, reconfigure=True, env=target.tf_env)
        if not _plan_and_apply(target, stacks.first_apply_dir, confirm, log):
            raise OperationFailed("bootstrap aborted; nothing changed")
        terraform.init(stacks.stack_dir, reconfigure=True, env=target.tf_env)
        log(f"moving the account stack's state into s3://{bucket}/{key} ...")
        state_lock.locked(
            lambda: terraform.state_push(stacks.stack_dir, stacks.local_state, env=target.tf_env),
            stack_dir=stacks.stack_dir,
            env=target.tf_env,
            local=target.local,
            log=log,
        )
        for leftover in stacks.local_state.parent.glob(f"{stacks.local_state.name}*"):  # and terraform's .backup
            leftover.unlink()
        # The S3-backed stack is the first apply's but for its backend: a plan now has nothing to do (20-50 s of
        # provider start and refresh, docs/local-speed.md). Its outputs are read from the moved state.
        return terraform.outputs(stacks.stack_dir, env=target.tf_env)
    terraform.init(stacks.stack_dir, reconfigure=True, env=target.tf_env)
    if not _plan_and_apply(target, stacks.stack_dir, confirm, log):
        raise OperationFailed("bootstrap aborted; nothing changed")
    return terraform.outputs(stacks.stack_dir, env=target.tf_env)


def _plan_and_apply(target: Any, stack_dir: Path, confirm: Any, log: Any) -> bool:
    """Plan; when there are changes, confirm and apply exactly that plan. False when the user declined."""
    from deepsentinel import recovery, state_lock, terraform
    from deepsentinel.commands.progress import CONFIRMED_PLAN, Progress

    def locked(operation: Any) -> Any:
        return state_lock.locked(operation, stack_dir=stack_dir, env=target.tf_env, local=target.local, log=log)

    progress = Progress("created")
    with recovery.recovering(stack_dir, target, log=log) as recovered:  # what an interrupted run left in no state
        changes = locked(
            lambda: terraform.plan(
                stack_dir,
                out=CONFIRMED_PLAN,
                env=target.tf_env,
                on_line=lambda line: progress(line) if line.startswith("Plan: ") else None,
            )
        )
        if not changes:
            recovered.applied()  # nothing is left to create
            log("deepsentinel-account: no changes")
            return True
        if not confirm(f"apply the account stack ({progress.total} changes) on {target.where}?"):
            return False
        started = time.perf_counter()
        progress.started = started
        locked(
            lambda: terraform.apply(
                stack_dir, plan_file=CONFIRMED_PLAN, env=target.tf_env, on_line=recovered.watch(progress)
            )
        )
        recovered.applied()
    log(f"deepsentinel-account: applied in {time.perf_counter() - started:.0f}s")
    return True


def _first_apply_interrupted(stacks: AccountStacks) -> bool:
    """A first apply interrupted while creating the bucket can leave it in no state: that run is finished (the bucket
    imported), not refused for a bucket without the account state."""
    from deepsentinel import recovery

    return stacks.local_state.is_file() or bool(recovery.pending(stacks.first_apply_dir))


def _plans_against_the_bucket(target: Any, stacks: AccountStacks) -> bool:
    """Whether this run plans against the account state in the bucket (it exists, no first apply was interrupted);
    refused when the bucket holds no account state."""
    from deepsentinel.stacks.names import ACCOUNT_STATE_KEY, state_object_key
    from deepsentinel.target import state_bucket_exists

    bucket, key = target.settings.state_bucket_name, state_object_key(ACCOUNT_STATE_KEY)
    if _first_apply_interrupted(stacks) or not state_bucket_exists(target):
        return False
    if not _object_exists(target.client("s3"), bucket, key):
        raise OperationFailed(
            f"the state bucket {bucket} exists on {target.where} but holds no account state at {key}: "
            "restore it from an earlier version of that object, or import the account stack's resources "
            "(docs/state-and-bootstrap.md: Recovering the account stack's state)"
        )
    return True


def _object_exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
