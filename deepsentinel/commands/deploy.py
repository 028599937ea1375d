"""`deepsentinel deploy|destroy [--local]`: apply or destroy one environment.

--local: a moto server (deepsentinel.local.server) on a free loopback port stands in for AWS. It runs
detached, so the deployment outlives the command; its address and the synthesized stacks live in the
working directory (default `.deepsentinel/local/<env>/`). The server is bootstrapped like an account
(`deepsentinel bootstrap`), so the state lives in its state bucket, locked as on AWS. `destroy --local`
stops the server (its resources go with it) and removes the directory; with --terraform it runs terraform
destroy against the server first.

Without --local: the user's AWS account, state in the S3 backend of the account stack, after a
confirmation prompt (`--yes` skips it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable

from deepsentinel.commands import arguments
from deepsentinel.commands.progress import CONFIRMED_PLAN, Progress, confirm

LOCAL_PARALLELISM = 30  # the provider mostly sleeps in waiters; overlapping them is what makes a cycle fast
AWS_PARALLELISM = 10


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    arguments.add_settings_arguments(parser, multiple_envs=False)
    arguments.add_local_arguments(parser, local_help="use an embedded moto server instead of AWS (no account needed)")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (AWS mode)")
    if name == "destroy":
        parser.add_argument(
            "--terraform",
            action="store_true",
            help="local mode: run terraform destroy on the local server before stopping it (a "
            "rehearsal of an AWS destroy, bound by the provider's waits; by default the server "
            "is stopped, and every resource goes with it)",
        )
    parser.add_argument(
        "--parallelism",
        type=int,
        default=None,
        help=f"terraform -parallelism (default {LOCAL_PARALLELISM} local, {AWS_PARALLELISM} AWS)",
    )
    arguments.add_verbose_argument(parser)


def run(args: argparse.Namespace) -> int:
    (settings,) = arguments.settings_from_args(args, default_envs=("dev",))
    from deepsentinel import terraform

    try:
        if args.local:
            return _run_local(args, settings)
        return _run_aws(args, settings)
    except terraform.TerraformError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


# --- local ------------------------------------------------------------------------------------------------


def _run_local(args: argparse.Namespace, settings) -> int:
    from deepsentinel import recovery, state_lock, terraform
    from deepsentinel.commands.bootstrap import bootstrap
    from deepsentinel.local.patches import MOTO_EXCEPTIONS
    from deepsentinel.local.server import LocalAws
    from deepsentinel.local.stand_in import LocalDatabase
    from deepsentinel.stacks.names import platform_stack_name
    from deepsentinel.target import LocalWorkdir, default_workdir, initialised_platform, local_target

    stack = platform_stack_name(settings)
    parallelism = args.parallelism or LOCAL_PARALLELISM
    if args.command_name == "destroy":
        work = LocalWorkdir(args.workdir.resolve() if args.workdir else default_workdir(settings))
        server = LocalAws.find(work.server_info)
        LocalDatabase.stop(work.smoke_database_dir)  # the smoke's PostgreSQL stand-in, if it ran
        if server is None:
            print(
                f"no local server is running for {stack} (nothing recorded in {work.root} answers); "
                f"its resources went with it. Removing {work.root}."
            )
            shutil.rmtree(work.root, ignore_errors=True)
            return 0
        stack_dir = work.outdir / "stacks" / stack
        # Every local resource lives in the server's memory: stopping it removes them all. A Terraform destroy
        # against it waits out the provider's fixed delays (Batch job queue, RDS: a minute each,
        # docs/local-speed.md), so it runs only when asked; the live suite's destroy test exercises it anyway.
        if args.terraform and (stack_dir / ".terraform").is_dir():
            print(f"destroying {stack} on {server.endpoint_url} (parallelism {parallelism}) ...", flush=True)
            env = terraform.environment(work.terraform_cli_dir, endpoint_url=server.endpoint_url)
            state_lock.locked(
                lambda: terraform.destroy(
                    stack_dir, parallelism=parallelism, env=env, on_line=Progress("destroyed", verbose=args.verbose)
                ),
                stack_dir=stack_dir,
                env=env,
                local=True,
            )
        server.stop(work.server_info)
        shutil.rmtree(work.root, ignore_errors=True)
        how = "" if args.terraform else " (its resources went with it; --terraform runs terraform destroy first)"
        print(f"destroyed {stack}; stopped the moto server (pid {server.pid}){how}; removed {work.root}")
        return 0

    target = local_target(settings, args.workdir, start=True)
    print(
        f"deploying {stack} on {target.endpoint_url} (moto with {len(MOTO_EXCEPTIONS)} documented patches"
        + (")" if args.verbose else "; --verbose lists them)")
    )
    for exception in MOTO_EXCEPTIONS if args.verbose else ():  # also docs/local-aws.md's table
        print(f"local mode: {exception.resource}: {exception.mechanism}")
    bootstrap(target)  # the state backend on this server, as on AWS
    stack_dir = initialised_platform(target)
    started = time.perf_counter()
    with recovery.recovering(stack_dir, target) as recovered:  # what an interrupted run left in no state
        print(f"terraform apply (parallelism {parallelism}) ...", flush=True)
        state_lock.locked(
            lambda: terraform.apply(
                stack_dir,
                parallelism=parallelism,
                env=target.tf_env,
                on_line=recovered.watch(Progress("created", verbose=args.verbose)),
            ),
            stack_dir=stack_dir,
            env=target.tf_env,
            local=True,
        )
        recovered.applied()
    _print_outputs(terraform.outputs(stack_dir, env=target.tf_env))
    print(
        f"\n{stack} is deployed on {target.endpoint_url} in {time.perf_counter() - started:.0f}s.\n"
        f"Try: AWS_ENDPOINT_URL={target.endpoint_url} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
        f"aws --region {settings.region} sqs list-queues\n"
        f"Remove it with: deepsentinel destroy --env {settings.environment}{target.local_flag}"
    )
    return 0


def _print_outputs(outputs: dict[str, object]) -> None:
    print("\noutputs:")
    for name, value in sorted(outputs.items()):
        print(f"  {name} = {json.dumps(value)}")


# --- AWS --------------------------------------------------------------------------------------------------


def _run_aws(args: argparse.Namespace, settings) -> int:
    from deepsentinel import recovery, state_lock, terraform
    from deepsentinel.stacks.names import platform_stack_name
    from deepsentinel.target import aws_target, initialised_platform

    stack = platform_stack_name(settings)
    verb = args.command_name
    parallelism = args.parallelism or AWS_PARALLELISM
    target = aws_target(settings, args.out)
    stack_dir = initialised_platform(target)
    # The plan the user confirms is saved and applied as it is, not planned again; its "Plan:" line gives the
    # progress total (applying a saved plan does not print one).
    from deepsentinel.commands.plan import PlanProgress

    progress = Progress("destroyed" if verb == "destroy" else "created", verbose=args.verbose)
    with recovery.recovering(stack_dir, target, active=verb == "deploy") as recovered:  # before the plan shown
        changes = state_lock.locked(
            lambda: terraform.plan(
                stack_dir,
                destroy=verb == "destroy",
                out=CONFIRMED_PLAN,
                env=target.tf_env,
                on_line=_plan_lines(progress, PlanProgress(verbose=args.verbose)),
            ),
            stack_dir=stack_dir,
            env=target.tf_env,
            local=False,
        )
        if not changes:
            recovered.applied()  # nothing is left to create
            print(f"{stack}: no changes")
            return 0
        if not args.yes and not confirm(
            f"{verb} {stack} in the AWS account of your current credentials ({settings.region})?"
        ):
            print("aborted; nothing changed")
            return 1
        progress.started = time.perf_counter()
        state_lock.locked(
            lambda: terraform.apply(
                stack_dir,
                parallelism=parallelism,
                plan_file=CONFIRMED_PLAN,
                env=target.tf_env,
                on_line=recovered.watch(progress),
            ),
            stack_dir=stack_dir,
            env=target.tf_env,
            local=False,
        )
        recovered.applied()
    if verb == "deploy":
        _print_outputs(terraform.outputs(stack_dir, env=target.tf_env))
    return 0


def _plan_lines(progress: Progress, shown: Callable[[str], None]) -> Callable[[str], None]:
    """The plan a user confirms, compact (or in full with --verbose); its "Plan:" line sets the apply's total."""
    return lambda line: progress(line) if line.startswith("Plan: ") else shown(line)
