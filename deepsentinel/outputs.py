"""`deepsentinel output [--env] [--local] [--workdir DIR] [--json]`: the deployed outputs, each with its meaning.

--local reads the `deploy --local` deployment's state (its directory, default `.deepsentinel/local/<env>/`);
without it the environment is synthesized for AWS and its outputs are read from the S3 backend.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

from deepsentinel import cli


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    cli.add_settings_arguments(parser, multiple_envs=False, out_help=None)
    parser.add_argument("--local", action="store_true", help="the `deploy --local` deployment")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="local mode: the deployment's directory (default .deepsentinel/local/<env>)")
    parser.add_argument("--json", action="store_true",
                        help='print {"<name>": {"value": ..., "description": ...}, ...}')


def run(args: argparse.Namespace) -> int:
    (settings,) = cli.settings_from_args(args, default_envs=("dev",))
    from deepsentinel import terraform
    from deepsentinel.app import platform_stack_name
    from deepsentinel.stacks.platform import OUTPUT_DESCRIPTIONS

    stack = platform_stack_name(settings)
    if args.local:
        from deepsentinel.deploy import LOCAL_WORKDIR, LocalWorkdir

        work = LocalWorkdir((args.workdir or LOCAL_WORKDIR / settings.environment).resolve())
        stack_dir = work.outdir / "stacks" / stack
        if not (stack_dir / "cdk.tf.json").is_file():
            print(f"error: no local deployment of {settings.environment} in {work.root}: run "
                  f"`deepsentinel deploy --local --env {settings.environment}` first", file=sys.stderr)
            return 1
        values = terraform.outputs(stack_dir, env=terraform.environment(work.root / ".terraform-cli"))
    else:
        from deepsentinel.deploy import _synth

        with tempfile.TemporaryDirectory(prefix="deepsentinel-output-") as tmp:
            with contextlib.redirect_stdout(sys.stderr):  # synth progress; stdout is the outputs
                stack_dir = _synth(settings, Path(tmp) / "cdktf.out", endpoint_url=None, state_dir=None)
            env = terraform.environment()
            terraform.init(stack_dir, env=env)
            values = terraform.outputs(stack_dir, env=env)
    if not values:
        print(f"error: {stack} has no outputs: it is not deployed (run `deepsentinel deploy`)", file=sys.stderr)
        return 1
    described = {name: {"value": value, "description": OUTPUT_DESCRIPTIONS.get(name, "")}
                 for name, value in sorted(values.items())}
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    for name, entry in described.items():
        print(f"{name}: {json.dumps(entry['value'])}\n    {entry['description']}")
    return 0
