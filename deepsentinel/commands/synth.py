"""`deepsentinel synth`: synthesize the stacks and print how many resources each module holds."""

from __future__ import annotations

import argparse
import json

from deepsentinel.commands.arguments import add_settings_arguments, synth_from_args


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    add_settings_arguments(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"<stack>": {"path", "modules": {"<module>": n}, "total"}} (progress on stderr)',
    )


def run(args: argparse.Namespace) -> int:
    from deepsentinel.synthesized import count_by_module, load

    stacks = synth_from_args(args)
    counts = {stack: count_by_module(load(path)) for stack, path in stacks.items()}
    if args.json:
        print(
            json.dumps(
                {
                    stack: {
                        "path": str(path),
                        "modules": dict(sorted(counts[stack].items())),
                        "total": sum(counts[stack].values()),
                    }
                    for stack, path in stacks.items()
                },
                indent=2,
            )
        )
        return 0
    width = max(len(stack) for stack in stacks)
    print(f"\n{'stack':<{width}}  {'module':<10}  resources")
    for stack, by_module in counts.items():
        for module, count in sorted(by_module.items()):
            print(f"{stack:<{width}}  {module:<10}  {count:>9}")
    for stack, path in stacks.items():
        print(f"{stack:<{width}}  {'total':<10}  {sum(counts[stack].values()):>9}   {path}")
    return 0
