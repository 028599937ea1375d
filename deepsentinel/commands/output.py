"""`deepsentinel output [--env] [--local] [--workdir DIR] [--json]`: the deployed outputs, each with its meaning.

The environment is synthesized for its target (AWS, or with --local the `deploy --local` deployment's
moto server) and its outputs are read from the state in the target's S3 backend.
"""

from __future__ import annotations

import argparse
import json
import sys

from deepsentinel.commands import arguments


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    arguments.add_settings_arguments(parser, multiple_envs=False, out_help=None)
    arguments.add_local_arguments(parser)
    parser.add_argument("--json", action="store_true", help='print {"<name>": {"value": ..., "description": ...}, ...}')


def run(args: argparse.Namespace) -> int:
    (settings,) = arguments.settings_from_args(args, default_envs=("dev",))
    from deepsentinel.stacks.names import OUTPUT_DESCRIPTIONS, platform_stack_name
    from deepsentinel.target import deployed_outputs, target_from_args

    stack = platform_stack_name(settings)
    values = deployed_outputs(target_from_args(args, settings))
    if not values:
        print(f"error: {stack} has no outputs: it is not deployed (run `deepsentinel deploy`)", file=sys.stderr)
        return 1
    described = {
        name: {"value": value, "description": OUTPUT_DESCRIPTIONS.get(name, "")}
        for name, value in sorted(values.items())
    }
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    for name, entry in described.items():
        print(f"{name}: {json.dumps(entry['value'])}\n    {entry['description']}")
    return 0
