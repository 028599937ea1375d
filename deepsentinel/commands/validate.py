"""`deepsentinel validate`: synth, then `terraform init -backend=false` and `terraform validate` of every stack."""

from __future__ import annotations

import argparse
import sys
import time

from deepsentinel.commands.arguments import add_settings_arguments, synth_from_args


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    add_settings_arguments(parser)
    parser.add_argument("--no-synth", action="store_true", help="validate what is already in --out")


def run(args: argparse.Namespace) -> int:
    from deepsentinel import terraform
    from deepsentinel.synthesized import stack_files

    stacks = stack_files(args.out) if args.no_synth else synth_from_args(args)
    if not stacks:
        print(f"error: no synthesized stacks under {args.out}/stacks; run `deepsentinel synth` first", file=sys.stderr)
        return 1
    env = terraform.environment()
    failed = []
    for i, (name, path) in enumerate(stacks.items(), 1):
        started = time.perf_counter()
        print(f"[{i}/{len(stacks)}] {name}: terraform init -backend=false ...", flush=True)
        try:
            terraform.init(path.parent, backend=False, env=env)
            print(f"[{i}/{len(stacks)}] {name}: terraform validate ...", flush=True)
            terraform.validate(path.parent, env=env)
        except terraform.TerraformError as error:
            print(f"[{i}/{len(stacks)}] {name}: FAILED\n{error}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        print(f"[{i}/{len(stacks)}] {name}: valid ({time.perf_counter() - started:.1f}s)", flush=True)
    if failed:
        print(f"validation failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(stacks)} stacks are valid")
    return 0
