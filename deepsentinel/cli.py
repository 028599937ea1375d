"""`deepsentinel COMMAND`: the DeepSentinel platform's CDK-for-Terraform toolkit.

Builds the parser from the command registry (deepsentinel/commands/__init__.py: one module per command) and turns
the known errors into one line and an exit code. `--help` lists the commands from the parser; heavy imports (cdktf,
the provider binding, checkov) happen inside the commands, so `--help` and settings errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from deepsentinel.commands import COMMANDS
from deepsentinel.settings import SettingsError


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

    lines = [
        f"deepsentinel-infra {installed('deepsentinel-infra')}",
        f"cdktf {installed('cdktf')}",
        f"cdktf-cdktf-provider-aws {installed('cdktf-cdktf-provider-aws')} (hashicorp/aws 5.100.0)",
        terraform.version() or "terraform: not on PATH",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepsentinel")
    parser.add_argument(
        "--version",
        action=_VersionAction,
        nargs=0,
        help="print the toolkit, cdktf, provider binding and terraform versions",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sub, name)
        sub.set_defaults(run=module.run, command_name=name)
    # From the registered commands, so the description cannot name fewer than exist.
    parser.description = (
        f"The DeepSentinel platform's CDK-for-Terraform toolkit. Commands: "
        f"{', '.join(commands.choices)}; `deepsentinel COMMAND --help` for one."
    )
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

    warnings.filterwarnings(
        "ignore",
        message=r"XDG_RUNTIME_DIR is not set, falling back to ",
        category=UserWarning,
        module=r"platformdirs(\.|$)",
    )


if __name__ == "__main__":
    sys.exit(main())
