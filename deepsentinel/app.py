"""Build the cdktf App: the platform stack of each chosen environment plus the state-backend stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdktf import App

from deepsentinel.constructs.pipeline import DEFAULT_LAMBDAS_DIR
from deepsentinel.settings import PlatformSettings
from deepsentinel.stacks.platform import PlatformStack
from deepsentinel.stacks.provider import StackOptions
from deepsentinel.stacks.state_backend import StateBackendStack

STATE_STACK = "deepsentinel-state"


def platform_stack_name(settings: PlatformSettings) -> str:
    return f"deepsentinel-{settings.environment}"


@dataclass(frozen=True, kw_only=True)
class SynthResult:
    outdir: Path
    stacks: dict[str, Path]  # stack name -> cdk.tf.json


def synth(environments: list[PlatformSettings], *, outdir: Path, options: StackOptions = StackOptions(),
          include_state_stack: bool = True, lambdas_dir: Path = DEFAULT_LAMBDAS_DIR) -> SynthResult:
    """Synthesize the given environments (all settings already validated) into `outdir`."""
    app = App(outdir=str(outdir))
    names = []
    for settings in environments:
        PlatformStack(app, platform_stack_name(settings), settings=settings, options=options,
                      lambdas_dir=lambdas_dir)
        names.append(platform_stack_name(settings))
    if include_state_stack and environments:
        StateBackendStack(app, STATE_STACK, settings=environments[0], options=options)
        names.append(STATE_STACK)
    app.synth()
    return SynthResult(outdir=outdir, stacks={n: outdir / "stacks" / n / "cdk.tf.json" for n in names})
