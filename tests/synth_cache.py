"""One synth per distinct platform variant per test session, shared by pytest-xdist's workers.

A variant is what `deepsentinel.app.synth` is given: the environments (each a name and its `-c` overrides), the
stack options and whether the account stack is in the app. A synth costs seconds of CPU in jsii's node, and several
test modules ask for the same variant, so the first process asking synthesizes it into a directory keyed by the
variant under the session's temporary root, holding a file lock on that key; any other worker asking meanwhile waits
on the lock, then reads what was written. Each call loads the documents afresh, so no test sees another's edits.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

DONE = "synth-cache.json"  # written last: its presence means the directory is complete


@dataclass(frozen=True)
class SynthesizedPlatform:
    outdir: Path
    paths: dict[str, Path]  # stack name -> cdk.tf.json
    documents: dict[str, dict[str, Any]]

    @property
    def dev(self) -> dict[str, Any]:
        return self.documents["deepsentinel-dev"]

    @property
    def prod(self) -> dict[str, Any]:
        return self.documents["deepsentinel-prod"]


Environment = tuple[str, Sequence[str]]  # ("dev", ["jobs_api_enabled=true", ...])


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory every process of this session sees: xdist gives each worker its own base temp directory
    under one parent per run; without xdist the base temp directory is the run's own (its parent, shared by
    every earlier run, would serve synths of code since changed)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def synthesized(tmp_path_factory: pytest.TempPathFactory, environments: Iterable[Environment], *,
                include_account_stack: bool = True, options: Any = None) -> SynthesizedPlatform:
    """The stacks `synth` makes of these environments, synthesized once per session."""
    from deepsentinel.stacks.provider import StackOptions

    environments = tuple((name, tuple(overrides)) for name, overrides in environments)
    options = StackOptions() if options is None else options
    key = repr((environments, include_account_stack, options))
    label = "-".join(name for name, _ in environments)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    directory = shared_root(tmp_path_factory) / "synth-cache" / f"{label}-{digest}"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        if not (directory / DONE).is_file():
            _synth_into(directory, environments, include_account_stack, options, key)
    recorded = json.loads((directory / DONE).read_text())
    assert recorded["key"] == key, (recorded["key"], key)
    paths = {name: directory / relative for name, relative in recorded["stacks"].items()}
    return SynthesizedPlatform(directory, paths, {name: json.loads(path.read_text()) for name, path in paths.items()})


def _synth_into(directory: Path, environments: tuple[tuple[str, tuple[str, ...]], ...], include_account_stack: bool,
                options: Any, key: str) -> None:
    from deepsentinel.app import synth
    from deepsentinel.settings import load_settings

    shutil.rmtree(directory, ignore_errors=True)  # a synth interrupted in an earlier holder of the lock
    settings = [load_settings(name, overrides=list(overrides)) for name, overrides in environments]
    result = synth(settings, outdir=directory, options=options, include_account_stack=include_account_stack)
    stacks = {name: str(Path(path).relative_to(directory)) for name, path in result.stacks.items()}
    (directory / DONE).write_text(json.dumps({"key": key, "stacks": stacks}))
