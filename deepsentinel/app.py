"""Build the cdktf App: the platform stack of each chosen environment plus the account stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdktf import App

from deepsentinel.constructs.pipeline import DEFAULT_LAMBDAS_DIR
from deepsentinel.settings import PlatformSettings
from deepsentinel.stacks.account import AccountStack
from deepsentinel.stacks.names import ACCOUNT_STACK, platform_stack_name
from deepsentinel.stacks.platform import PlatformStack
from deepsentinel.stacks.provider import StackOptions


@dataclass(frozen=True, kw_only=True)
class SynthResult:
    outdir: Path
    stacks: dict[str, Path]  # stack name -> cdk.tf.json


def synth(
    environments: list[PlatformSettings],
    *,
    outdir: Path,
    options: StackOptions = StackOptions(),
    include_account_stack: bool = True,
    lambdas_dir: Path = DEFAULT_LAMBDAS_DIR,
) -> SynthResult:
    """Synthesize the given environments (all settings already validated) into `outdir`."""
    app = App(outdir=str(outdir))
    names = []
    for settings in environments:
        PlatformStack(app, platform_stack_name(settings), settings=settings, options=options, lambdas_dir=lambdas_dir)
        names.append(platform_stack_name(settings))
    if include_account_stack and environments:
        AccountStack(app, ACCOUNT_STACK, settings=environments[0], options=options)
        names.append(ACCOUNT_STACK)
    app.synth()
    return SynthResult(outdir=outdir, stacks={n: outdir / "stacks" / n / "cdk.tf.json" for n in names})


def synth_account(settings: PlatformSettings, *, outdir: Path, options: StackOptions) -> Path:
    """Synthesize the account stack alone (bootstrap); return its cdk.tf.json."""
    app = App(outdir=str(outdir))
    AccountStack(app, ACCOUNT_STACK, settings=settings, options=options)
    app.synth()
    return outdir / "stacks" / ACCOUNT_STACK / "cdk.tf.json"
