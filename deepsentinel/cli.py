"""`deepsentinel COMMAND`: the DeepSentinel platform's CDK-for-Terraform toolkit.

The commands are the three defined here and EXTERNAL_COMMANDS; `--help` lists them from the parser.
Heavy imports (cdktf, the provider binding, checkov) happen inside the commands, so `--help` and
settings errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from deepsentinel.settings import ENVIRONMENTS, PlatformSettings, SettingsError, load_settings

DEFAULT_OUTDIR = Path("cdktf.out")
# Commands that live in their own modules: each has add_arguments(parser) and run(args) -> int.
EXTERNAL_COMMANDS = {
    "bootstrap": ("deepsentinel.bootstrap", "create the account stack: the state backend (once per account), people"),
    "plan": ("deepsentinel.plan", "a locked plan of one environment: exit 0 no changes, 2 changes, 1 error"),
    "deploy": ("deepsentinel.deploy", "apply one environment (--local: on an embedded moto server)"),
    "destroy": ("deepsentinel.deploy", "destroy one environment (--local: the local deployment)"),
    "review": ("deepsentinel.review.command", "plan review: changes, risks, cost and policy as markdown"),
    "graph": ("deepsentinel.graph", "draw the platform (modules as clusters) with Graphviz"),
    "output": ("deepsentinel.outputs", "the deployed outputs with their descriptions (--json for CI)"),
    "smoke": ("deepsentinel.smoke", "one video through the deployed platform (--local: with stand-ins)"),
    "status": ("deepsentinel.status", "where one video is: its claim, its Batch job, its database row"),
    "model": ("deepsentinel.model", "publish weights to the models bucket (checked with ultralytics): model_key"),
    "preflight": ("deepsentinel.preflight", "what would stop a first deploy (quotas, models, tags, zone): exit 0 ready"),
}


def main(argv: list[str] | None = None) -> int:
    silence_known_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    from deepsentinel import interruption

    # Ctrl-C, SIGTERM, SIGHUP: terraform stops gracefully, what we started ends, one line, exit 130.
    return interruption.run_interruptibly(lambda: _run_command(args))


def _run_command(args: argparse.Namespace) -> int:
    from deepsentinel.errors import OperationFailed
    from deepsentinel.terraform import TerraformError, TerraformUnavailable

    try:
        return args.run(args)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OperationFailed, TerraformUnavailable, TerraformError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def versions() -> str:
    """The toolkit's, cdktf's, the provider binding's and terraform's versions (no heavy imports)."""
    from importlib.metadata import PackageNotFoundError, version

    from deepsentinel import terraform

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    lines = [f"deepsentinel-infra {installed('deepsentinel-infra')}", f"cdktf {installed('cdktf')}",
             f"cdktf-cdktf-provider-aws {installed('cdktf-cdktf-provider-aws')} (hashicorp/aws 5.100.0)",
             terraform.version() or "terraform: not on PATH"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepsentinel")
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="print the toolkit, cdktf, provider binding and terraform versions")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="synthesize the stacks to cdktf.out/ and print a resource table")
    add_settings_arguments(synth)
    synth.add_argument("--json", action="store_true",
                       help='print {"<stack>": {"path", "modules": {"<module>": n}, "total"}} (progress on stderr)')
    synth.set_defaults(run=run_synth)

    validate = commands.add_parser("validate", help="synth, then terraform init -backend=false + validate")
    add_settings_arguments(validate)
    validate.add_argument("--no-synth", action="store_true", help="validate what is already in --out")
    validate.set_defaults(run=run_validate)

    addresses = commands.add_parser("addresses", help="check (or --update) the committed resource-address snapshot")
    add_settings_arguments(addresses)
    addresses.add_argument("--update", action="store_true", help="record the current addresses as the snapshot")
    addresses.add_argument("--snapshot-dir", type=Path, default=Path("addresses"), help="default: addresses/")
    addresses.add_argument("--json", action="store_true",
                           help='print {"<stack>": {"clean", "removed_stateful", "removed", "added"}} '
                                "(progress on stderr)")
    addresses.set_defaults(run=run_addresses)

    for name, (module_name, help_text) in EXTERNAL_COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sub, name)
        sub.set_defaults(run=module.run, command_name=name)
    # From the registered commands, so the description cannot name fewer than exist.
    parser.description = (f"The DeepSentinel platform's CDK-for-Terraform toolkit. Commands: "
                          f"{', '.join(commands.choices)}; `deepsentinel COMMAND --help` for one.")
    return parser


class _VersionAction(argparse.Action):
    """Like argparse's version action, but terraform is only asked when --version is given."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(versions())
        parser.exit()


def silence_known_warnings() -> None:
    """pgserver (the local PostgreSQL stand-in) asks platformdirs for a runtime directory when it is imported;
    without XDG_RUNTIME_DIR (containers, CI, ssh without a login session) platformdirs warns and falls back to
    /tmp/runtime-<uid>, which serves pgserver's lock file as well. Only that warning is silenced."""
    import warnings

    warnings.filterwarnings("ignore", message=r"XDG_RUNTIME_DIR is not set, falling back to ", category=UserWarning,
                            module=r"platformdirs(\.|$)")


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """--verbose: Terraform's own output line by line (and, locally, the local server's patches) instead of the
    compact progress."""
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="print Terraform's full output (and in local mode the local server's patches) instead of "
                             "compact progress")


def add_settings_arguments(parser: argparse.ArgumentParser, *, multiple_envs: bool = True,
                           out_help: str | None = "output directory (default cdktf.out)") -> None:
    """--env, --settings, -c; and --out as the synth directory unless out_help is None (the command defines it)."""
    parser.add_argument("--env", choices=ENVIRONMENTS, default=None,
                        help="one environment (default: " + ("all" if multiple_envs else "dev") + ")")
    parser.add_argument("--settings", type=Path, metavar="FILE",
                        help="TOML overrides: top-level keys for every environment, [dev]/[prod] tables for one")
    parser.add_argument("-c", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting (repeatable); lists are comma separated")
    if out_help is not None:
        parser.add_argument("--out", type=Path, default=DEFAULT_OUTDIR, help=out_help)


def settings_from_args(args: argparse.Namespace, *, default_envs: tuple[str, ...] = ENVIRONMENTS
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
    print(f"synthesized {len(result.stacks)} stacks in {time.perf_counter() - started:.1f}s", file=progress,
          flush=True)
    return result.stacks


def run_synth(args: argparse.Namespace) -> int:
    from deepsentinel.synthesized import count_by_module, load

    stacks = synth_from_args(args)
    counts = {stack: count_by_module(load(path)) for stack, path in stacks.items()}
    if args.json:
        print(json.dumps({stack: {"path": str(path), "modules": dict(sorted(counts[stack].items())),
                                  "total": sum(counts[stack].values())} for stack, path in stacks.items()}, indent=2))
        return 0
    width = max(len(stack) for stack in stacks)
    print(f"\n{'stack':<{width}}  {'module':<10}  resources")
    for stack, by_module in counts.items():
        for module, count in sorted(by_module.items()):
            print(f"{stack:<{width}}  {module:<10}  {count:>9}")
    for stack, path in stacks.items():
        print(f"{stack:<{width}}  {'total':<10}  {sum(counts[stack].values()):>9}   {path}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
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


def run_addresses(args: argparse.Namespace) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
