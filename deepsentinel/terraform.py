"""The one place that runs the terraform binary.

Provider installation: when `DEEPSENTINEL_TF_PLUGIN_MIRROR` names a filesystem mirror, a CLI config
using it is written under the working directory and `TF_CLI_CONFIG_FILE` points at it for our
subprocesses only; otherwise Terraform installs from its registry as usual.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

MIRROR_ENV = "DEEPSENTINEL_TF_PLUGIN_MIRROR"
CLI_CONFIG_DIR = Path(".deepsentinel")
# Write-only arguments (`secret_string_wo`) and ephemeral resources in them need Terraform 1.11 ("Use temporary
# write-only arguments", developer.hashicorp.com/terraform/language/manage-sensitive-data/write-only); S3-native
# state locking (`use_lockfile`) needs 1.10, so 1.11 covers both.
MINIMUM_VERSION = (1, 11)
MINIMUM_VERSION_REASON = "write-only arguments keep the generated secrets out of the state"
# Not also written as `terraform.required_version` into the stacks: checkov 3.3.30's terraform_json parser fails
# on that string ("could not parse"), and the policy gate must read every stack.
INSTALL_HINT = "https://developer.hashicorp.com/terraform/install"


class TerraformUnavailable(RuntimeError):
    """terraform is missing or the configured provider mirror is not usable (the message says how to fix it)."""


class TerraformError(RuntimeError):
    """A terraform command failed; the message carries Terraform's own output."""

    def __init__(self, command: Sequence[str], cwd: Path, returncode: int, output: str) -> None:
        self.returncode = returncode
        self.output = output
        super().__init__(f"`terraform {' '.join(command)}` failed in {cwd} (exit {returncode}):\n{output.strip()}")


def cli_config(mirror: str) -> str:
    return (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n  }}\n'
        "}\n"
    )


def environment(config_dir: Path = CLI_CONFIG_DIR) -> dict[str, str]:
    """The environment of every terraform subprocess."""
    env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        if not Path(mirror).is_dir():
            raise TerraformUnavailable(f"{MIRROR_ENV}={mirror!r} is not a directory (expected a Terraform "
                                       "filesystem mirror: <dir>/registry.terraform.io/hashicorp/aws/...)")
        config_dir.mkdir(parents=True, exist_ok=True)
        path = (config_dir / "terraform.rc").resolve()
        path.write_text(cli_config(str(Path(mirror).resolve())))
        env["TF_CLI_CONFIG_FILE"] = str(path)
    return env


def run(args: Sequence[str], cwd: Path, *, on_line: Callable[[str], None] | None = None,
        ok_codes: tuple[int, ...] = (0,), env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `terraform <args>` in `cwd`; stream lines to `on_line`; raise TerraformError on other exit codes."""
    binary = _checked_binary()
    command = [binary, *args]
    process = subprocess.Popen(command, cwd=cwd, env=env or environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if on_line:
            on_line(line.rstrip("\n"))
    returncode = process.wait()
    output = "".join(lines)
    if returncode not in ok_codes:
        raise TerraformError(args, cwd, returncode, output)
    return subprocess.CompletedProcess(command, returncode, output, "")


def _checked_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        raise TerraformUnavailable(f"terraform is not on PATH (install {'.'.join(map(str, MINIMUM_VERSION))} or "
                                   f"newer: {INSTALL_HINT})")
    _require_minimum_version(binary)
    return binary


@functools.cache
def _require_minimum_version(binary: str) -> None:
    line = version(binary) or ""
    found = parse_version(line)
    if found is None or found < MINIMUM_VERSION:
        raise TerraformUnavailable(f"{binary} is {line or 'of an unknown version'}; DeepSentinel needs Terraform "
                                   f"{'.'.join(map(str, MINIMUM_VERSION))} or newer ({MINIMUM_VERSION_REASON}): "
                                   f"{INSTALL_HINT}")


def parse_version(line: str) -> tuple[int, int] | None:
    """(major, minor) from `terraform version`'s first line ("Terraform v1.11.4")."""
    match = re.search(r"v(\d+)\.(\d+)", line)
    return (int(match[1]), int(match[2])) if match else None


def version(binary: str | None = None) -> str | None:
    """`terraform version`'s first line, or None when terraform is not on PATH."""
    binary = binary or shutil.which("terraform")
    if binary is None:
        return None
    done = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, CHECKPOINT_DISABLE="1"))
    return done.stdout.splitlines()[0] if done.stdout else None


def init(stack_dir: Path, *, backend: bool = True, reconfigure: bool = False, **kw) -> None:
    """`reconfigure`: forget the backend recorded in .terraform/ (a moto server's port, a backend switch)."""
    run(["init", "-input=false", "-no-color", *([] if backend else ["-backend=false"]),
         *(["-reconfigure"] if reconfigure else [])], stack_dir, **kw)


def validate(stack_dir: Path, **kw) -> None:
    run(["validate", "-no-color"], stack_dir, **kw)


def plan(stack_dir: Path, *, destroy: bool = False, out: str | None = None, lock_timeout: str = "0s",
         **kw) -> bool:
    """Return True when the plan has changes (`-detailed-exitcode`: 0 none, 2 changes).

    The plan takes the state lock (waiting up to `lock_timeout`): a plan read while another apply holds the
    lock would describe a state that is about to change.
    """
    args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-lock-timeout={lock_timeout}"]
    args += ["-destroy"] if destroy else []
    args += [f"-out={out}"] if out else []
    return run(args, stack_dir, ok_codes=(0, 2), **kw).returncode == 2


def apply(stack_dir: Path, *, parallelism: int = 10, plan_file: str | None = None, **kw) -> None:
    """Apply a fresh plan, or exactly the saved `plan_file` (the one a user confirmed; also a destroy plan)."""
    run(["apply", "-input=false", "-no-color", "-auto-approve", f"-parallelism={parallelism}",
         *([plan_file] if plan_file else [])], stack_dir, **kw)


def destroy(stack_dir: Path, *, parallelism: int = 10, **kw) -> None:
    run(["destroy", "-input=false", "-no-color", "-auto-approve", f"-parallelism={parallelism}"], stack_dir, **kw)


def outputs(stack_dir: Path, **kw) -> dict[str, object]:
    result = run(["output", "-json", "-no-color"], stack_dir, **kw)
    # CLI-configuration warnings come on stdout ahead of the JSON document.
    document = result.stdout[result.stdout.find("{"):] if "{" in result.stdout else "{}"
    return {name: value["value"] for name, value in json.loads(document).items()}



def show_plan_json(stack_dir: Path, plan_file: str, **kw) -> str:
    """`terraform show -json <plan>`: the plan as JSON (what `review --plan` reads)."""
    output = run(["show", "-json", "-no-color", plan_file], stack_dir, **kw).stdout
    return output[output.find("{"):]  # CLI-configuration warnings come first on stdout


def state_push(stack_dir: Path, state_file: Path, **kw) -> None:
    """Write a local state file into the configured backend (the account stack's move into its bucket)."""
    run(["state", "push", "-no-color", str(state_file.resolve())], stack_dir, **kw)
