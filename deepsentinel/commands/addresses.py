"""`deepsentinel addresses`: check (or --update) the committed resource-address snapshot (addresses/)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deepsentinel.commands.arguments import add_settings_arguments, synth_from_args


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    add_settings_arguments(parser)
    parser.add_argument("--update", action="store_true", help="record the current addresses as the snapshot")
    parser.add_argument("--snapshot-dir", type=Path, default=Path("addresses"), help="default: addresses/")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"<stack>": {"clean", "removed_stateful", "removed", "added"}} (progress on stderr)',
    )


def run(args: argparse.Namespace) -> int:
    from deepsentinel.addresses import compare, write_snapshot

    stacks = synth_from_args(args)
    if args.update:
        for stack, path in stacks.items():
            print(f"{stack}: wrote {write_snapshot(stack, path, args.snapshot_dir)}")
        return 0
    drifts = {stack: compare(stack, path, args.snapshot_dir) for stack, path in stacks.items()}
    if args.json:
        print(json.dumps({stack: drift.as_dict() for stack, drift in drifts.items()}, indent=2))
        return 0 if all(drift.clean for drift in drifts.values()) else 1
    drifted = 0
    for stack, drift in drifts.items():
        if drift.clean:
            print(f"{stack}: addresses match the snapshot")
        else:
            drifted += 1
            print(drift.explain(), file=sys.stderr)
    return 1 if drifted else 0
