"""Arguments several commands share: the settings (--env, --settings, -c, --out), --verbose, and the synth they
start from."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from deepsentinel.settings import ENVIRONMENTS, PlatformSettings, load_settings

DEFAULT_OUTDIR = Path("cdktf.out")


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """--verbose: Terraform's own output line by line (and, locally, the local server's patches) instead of the
    compact progress."""
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="print Terraform's full output (and in local mode the local server's patches) instead of compact progress",
    )


def add_local_arguments(
    parser: argparse.ArgumentParser, *, local_help: str = "the `deploy --local` deployment"
) -> None:
    """--local (what the command does in local mode) and --workdir (where that local deployment lives)."""
    from deepsentinel.target import LOCAL_WORKDIR

    parser.add_argument("--local", action="store_true", help=local_help)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help=f"local mode: the deployment's directory (default {LOCAL_WORKDIR}/<env>)",
    )


def add_settings_arguments(
    parser: argparse.ArgumentParser,
    *,
    multiple_envs: bool = True,
    out_help: str | None = "output directory (default cdktf.out)",
) -> None:
    """--env, --settings, -c; and --out as the synth directory unless out_help is None (the command defines it)."""
    parser.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        default=None,
        help="one environment (default: " + ("all" if multiple_envs else "dev") + ")",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help="TOML overrides: top-level keys for every environment, [dev]/[prod] tables for one",
    )
    parser.add_argument(
        "-c",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting (repeatable); lists are comma separated",
    )
    if out_help is not None:
        parser.add_argument("--out", type=Path, default=DEFAULT_OUTDIR, help=out_help)


def settings_from_args(
    args: argparse.Namespace, *, default_envs: tuple[str, ...] = ENVIRONMENTS
) -> list[PlatformSettings]:
    """Load and validate every chosen environment before anything is written."""
    environments = [args.env] if args.env else list(default_envs)
    return [load_settings(env, settings_file=args.settings, overrides=args.overrides) for env in environments]


def synth_from_args(args: argparse.Namespace, **synth_options) -> dict[str, Path]:
    settings = settings_from_args(args)
    from deepsentinel.app import synth  # cdktf and the provider binding: only now

    started = time.perf_counter()
    names = ", ".join(f"deepsentinel-{s.environment}" for s in settings)
    progress = sys.stderr if getattr(args, "json", False) else sys.stdout  # stdout stays one JSON document
    print(f"synthesizing {names} and the account stack into {args.out}/ ...", file=progress, flush=True)
    result = synth(settings, outdir=args.out, **synth_options)
    print(f"synthesized {len(result.stacks)} stacks in {time.perf_counter() - started:.1f}s", file=progress, flush=True)
    return result.stacks
