"""The one place that runs the terraform binary.

Provider installation: when `DEEPSENTINEL_TF_PLUGIN_MIRROR` names a filesystem mirror, a CLI config
using it is written under the working directory and `TF_CLI_CONFIG_FILE` points at it for our
subprocesses only; otherwise Terraform installs from its registry as usual.

Interruption: terraform runs in a session of its own, so a terminal's Ctrl-C reaches only the Python process,
which passes it on (Terraform then stops gracefully: it saves what it applied and releases its state lock) and,
after INTERRUPT_GRACE_SECONDS or when terraform has exited, kills what is left of terraform's process group (its
provider plugins). Each run is recorded in `<dir>/.deepsentinel-runs/<pid>.json` until it ends by itself: a
record left behind names a terraform that was killed, whose lock, if it holds one, nobody will release
(deepsentinel.state_lock releases such locks in local mode).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deepsentinel import interruption

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
# How long an interrupted terraform may take to stop by itself before its group is killed (which loses what it did
# since its last state write, and leaves its lock): the calls it waits for include provider waiters that ignore the
# stop (an S3 lifecycle configuration waits 55 s on the local server); a second Ctrl-C ends it at once (its rule).
INTERRUPT_GRACE_SECONDS = 300.0
RUNS_DIR = ".deepsentinel-runs"
# Go's collector for terraform and the provider: collect when the heap reaches 512 MiB, not each time it doubles. Both
# allocate far more than they keep (dev's 212-resource apply under a 1 GiB limit: terraform's first collection came at
# ~940 MB and kept 70-90 MB; the provider keeps ~60 MB), which the default (GOGC=100) collects over and over
# (terraform 17 times, the provider 13, in a validate of dev): a `validate` of dev takes 2.3 CPU-s instead of 3.1
# (benchmarks/terraform_gc.py), benchmarks/live.py's deploy, plan and destroy 57 instead of 86 (docs/local-speed.md).
# A soft limit: a heap that neared it would be collected more often. A user's own GOGC or GOMEMLIMIT replaces both.
GO_GARBAGE_COLLECTION = {"GOGC": "off", "GOMEMLIMIT": "512MiB"}
# The AWS provider's base endpoint for every service ("Custom Service Endpoint Configuration", AWS provider guide:
# after the provider's `endpoints` block and `AWS_ENDPOINT_URL_<SERVICE>`, before shared config files).
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
IGNORE_ENDPOINTS_VARIABLE = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
LOCK_HELD = "Error acquiring the state lock"
LOCK_NOT_RELEASED = "Error releasing the state lock"


class TerraformUnavailable(RuntimeError):
    """terraform is missing or the configured provider mirror is not usable (the message says how to fix it)."""


class TerraformError(RuntimeError):
    """A terraform command failed; the message carries Terraform's own output."""

    def __init__(self, command: Sequence[str], cwd: Path, returncode: int, output: str) -> None:
        self.returncode = returncode
        self.output = output
        super().__init__(f"`terraform {' '.join(command)}` failed in {cwd} (exit {returncode}):\n{output.strip()}")


@dataclass(frozen=True, kw_only=True)
class LockInfo:
    """Who holds a state lock: Terraform's lock info (statemgr.LockInfo), the JSON of an S3 `<key>.tflock` object
    and the "Lock Info:" block of a held-lock error. `who` is `user@hostname`; Terraform records no process id."""

    id: str
    who: str = ""
    operation: str = ""  # OperationTypePlan, OperationTypeApply, ...
    created: str = ""
    path: str = ""
    version: str = ""
    info: str = ""

    @property
    def host(self) -> str:
        return self.who.rpartition("@")[2]

    @property
    def since(self) -> str:
        """`created` to the second: the `.tflock` object has RFC 3339 (2026-12-01T22:31:57.908867691Z), the error
        Go's time format (2026-12-01 22:31:57.908867691 +0000 UTC); Terraform takes it in UTC."""
        match = re.match(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)", self.created)
        return f"{match[1]}T{match[2]}Z" if match else self.created

    @property
    def operation_name(self) -> str:
        """ "apply" for OperationTypeApply."""
        return self.operation.removeprefix("OperationType").lower() or "an operation"

    @classmethod
    def from_json(cls, document: dict[str, object]) -> LockInfo:
        return cls(
            **{
                field: str(document.get(field.capitalize()) or document.get(field.upper()) or "")
                for field in ("id", "who", "operation", "created", "path", "version", "info")
            }
        )

    @classmethod
    def from_error(cls, output: str) -> LockInfo | None:
        """The holder named in Terraform's held-lock error, or None when the output has no lock info."""
        if "Lock Info:" not in output:
            return None
        fields: dict[str, object] = {}
        for line in output[output.index("Lock Info:") :].splitlines()[1:]:
            match = re.fullmatch(r"[\s│]*(ID|Path|Operation|Who|Version|Created|Info):\s*(.*?)\s*", line)
            if match is None:
                if fields:
                    break
                continue
            fields[match[1]] = match[2]
        return cls.from_json(fields) if fields.get("ID") else None


class StateLocked(TerraformError):
    """The state lock is held by another run; `lock` says who (None when Terraform did not say)."""

    def __init__(self, command: Sequence[str], cwd: Path, returncode: int, output: str) -> None:
        super().__init__(command, cwd, returncode, output)
        self.lock = LockInfo.from_error(output)


def cli_config(mirror: str) -> str:
    return f'provider_installation {{\n  filesystem_mirror {{\n    path    = "{mirror}"\n  }}\n}}\n'


def environment(config_dir: Path = CLI_CONFIG_DIR, *, endpoint_url: str | None = None) -> dict[str, str]:
    """The environment of every terraform subprocess (and so of its provider plugins, which inherit it).

    endpoint_url: a local server's URL, for stacks synthesized with `StackOptions(endpoint_url=...)`: the AWS
    provider sends every service there (`AWS_ENDPOINT_URL`; deepsentinel/stacks/provider.py says why not the
    provider's `endpoints` block), and no service-specific `AWS_ENDPOINT_URL_<SERVICE>` of the caller's, which would
    take precedence, nor `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is passed on."""
    env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    if not any(name in os.environ for name in GO_GARBAGE_COLLECTION):
        env.update(GO_GARBAGE_COLLECTION)
    if endpoint_url is not None:
        for name in [name for name in env if name.startswith(ENDPOINT_VARIABLE) or name == IGNORE_ENDPOINTS_VARIABLE]:
            del env[name]
        env[ENDPOINT_VARIABLE] = endpoint_url
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        if not Path(mirror).is_dir():
            raise TerraformUnavailable(
                f"{MIRROR_ENV}={mirror!r} is not a directory (expected a Terraform "
                "filesystem mirror: <dir>/registry.terraform.io/hashicorp/aws/...)"
            )
        path = write_cli_config(config_dir / "terraform.rc", cli_config(str(Path(mirror).resolve())))
        env["TF_CLI_CONFIG_FILE"] = str(path)
    return env


def write_cli_config(path: Path, content: str) -> Path:
    """`path` holding `content`, resolved. Every command (and test) writes the same file, while a terraform started by
    another may be reading it: a config read while being rewritten in place is empty, and Terraform then looks for
    the provider in the registry instead of the mirror ("Failed to query available provider packages", seen in a test
    run, 2026-12-04). So it is left alone when it already holds `content`, else replaced whole (a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path = path.resolve()
    with contextlib.suppress(OSError):
        if path.read_text() == content:
            return path
    staged = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    staged.write_text(content)
    os.replace(staged, path)
    return path


def run(
    args: Sequence[str],
    cwd: Path,
    *,
    on_line: Callable[[str], None] | None = None,
    ok_codes: tuple[int, ...] = (0,),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `terraform <args>` in `cwd`; stream lines to `on_line`; raise TerraformError on other exit codes.

    Interrupted (KeyboardInterrupt: Ctrl-C, SIGTERM, SIGHUP): terraform is interrupted in turn and given
    INTERRUPT_GRACE_SECONDS to stop, its group is killed, and the interruption propagates; Terraform's own
    interruption messages are not passed to `on_line`."""
    binary = _checked_binary()
    command = [binary, *args]
    # An interruption while terraform is being started would leave it running with nobody to stop it (Popen has
    # not returned it yet, or this function not entered the block that stops it): it waits until terraform is
    # ours, then is delivered again below, where it stops terraform as any other interruption does. (A handler
    # swap, not a signal mask: terraform inherits masks but not handlers.)
    deferred: list[int] = []
    with interruption.signals_calling(lambda signum, _frame: deferred.append(signum)):
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env or environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        record = _record_run(Path(cwd), process.pid, args)
    lines: list[str] = []
    try:
        if deferred:
            signal.raise_signal(deferred[0])  # the handler in place again raises KeyboardInterrupt or Interrupted
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if on_line:
                on_line(line.rstrip("\n"))
        interruption.wait_for_exit(process)
    except BaseException:
        _interrupt(process, lines)
        raise
    finally:
        ended_by_itself = interruption.end_process_group(process)  # and whatever it left behind
        output = "".join(lines)
        if ended_by_itself and LOCK_NOT_RELEASED not in output:
            record.unlink(missing_ok=True)
    returncode = process.returncode
    if returncode not in ok_codes:
        raise (StateLocked if LOCK_HELD in output else TerraformError)(args, cwd, returncode, output)
    return subprocess.CompletedProcess(command, returncode, output, "")


def _interrupt(process: subprocess.Popen[str], lines: list[str]) -> None:
    """Pass the interruption on, as a terminal's Ctrl-C would have: SIGINT. Its output keeps being read (a full pipe
    would block it) but is no longer shown; a further Ctrl-C/SIGTERM is passed on too (Terraform exits at once)."""
    # os.kill, not Popen.send_signal: that polls, and reaping terraform would free its group id (see run).
    interrupt = lambda *_: os.kill(process.pid, signal.SIGINT)  # noqa: E731
    interrupt()
    if process.stdout is not None:
        threading.Thread(target=_read_into, args=(process.stdout, lines), name="terraform-output", daemon=True).start()
    with interruption.signals_calling(interrupt):
        interruption.wait_for_exit(process, timeout=INTERRUPT_GRACE_SECONDS)


def _read_into(stream: Iterable[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def _record_run(cwd: Path, pid: int, args: Sequence[str]) -> Path:
    """`<cwd>/.deepsentinel-runs/<pid>.json`, removed when the run ends by itself (see the module docstring)."""
    record = cwd / RUNS_DIR / f"{pid}.json"
    record.parent.mkdir(exist_ok=True)
    record.write_text(
        json.dumps(
            {
                "pid": pid,
                "command": args[0] if args else "",
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    )
    return record


def unfinished_runs(stack_dir: Path) -> list[int]:
    """Process ids of the terraform runs in `stack_dir` that did not end by themselves (killed, or still running)."""
    return sorted(int(record.stem) for record in (stack_dir / RUNS_DIR).glob("*.json") if record.stem.isdigit())


def forget_runs(stack_dir: Path, pids: Sequence[int]) -> None:
    for pid in pids:
        (stack_dir / RUNS_DIR / f"{pid}.json").unlink(missing_ok=True)


def _checked_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        raise TerraformUnavailable(
            f"terraform is not on PATH (install {'.'.join(map(str, MINIMUM_VERSION))} or newer: {INSTALL_HINT})"
        )
    _require_minimum_version(binary)
    return binary


@functools.cache
def _require_minimum_version(binary: str) -> None:
    line = version(binary) or ""
    found = parse_version(line)
    if found is None or found < MINIMUM_VERSION:
        raise TerraformUnavailable(
            f"{binary} is {line or 'of an unknown version'}; DeepSentinel needs Terraform "
            f"{'.'.join(map(str, MINIMUM_VERSION))} or newer ({MINIMUM_VERSION_REASON}): "
            f"{INSTALL_HINT}"
        )


def parse_version(line: str) -> tuple[int, int] | None:
    """(major, minor) from `terraform version`'s first line ("Terraform v1.11.4")."""
    match = re.search(r"v(\d+)\.(\d+)", line)
    return (int(match[1]), int(match[2])) if match else None


def version(binary: str | None = None) -> str | None:
    """`terraform version`'s first line, or None when terraform is not on PATH."""
    binary = binary or shutil.which("terraform")
    if binary is None:
        return None
    done = subprocess.run(  # a terraform that cannot say its version prints nothing: None, as for no terraform
        [binary, "version"],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, CHECKPOINT_DISABLE="1"),
        check=False,
    )
    return done.stdout.splitlines()[0] if done.stdout else None


def init(stack_dir: Path, *, backend: bool = True, reconfigure: bool = False, **kw) -> None:
    """`reconfigure`: forget the backend recorded in .terraform/ (a moto server's port, a backend switch)."""
    run(
        [
            "init",
            "-input=false",
            "-no-color",
            *([] if backend else ["-backend=false"]),
            *(["-reconfigure"] if reconfigure else []),
        ],
        stack_dir,
        **kw,
    )


def validate(stack_dir: Path, **kw) -> None:
    run(["validate", "-no-color"], stack_dir, **kw)


def plan(
    stack_dir: Path,
    *,
    destroy: bool = False,
    out: str | None = None,
    lock_timeout: str = "0s",
    refresh: bool = True,
    **kw,
) -> bool:
    """Return True when the plan has changes (`-detailed-exitcode`: 0 none, 2 changes).

    The plan takes the state lock (waiting up to `lock_timeout`): a plan read while another apply holds the
    lock would describe a state that is about to change. `refresh=False` plans from the state without reading
    each object first (`-refresh=false`).
    """
    args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-lock-timeout={lock_timeout}"]
    args += ["-destroy"] if destroy else []
    args += [] if refresh else ["-refresh=false"]
    args += [f"-out={out}"] if out else []
    return run(args, stack_dir, ok_codes=(0, 2), **kw).returncode == 2


def apply(stack_dir: Path, *, parallelism: int = 10, plan_file: str | None = None, **kw) -> None:
    """Apply a fresh plan, or exactly the saved `plan_file` (the one a user confirmed; also a destroy plan)."""
    run(
        [
            "apply",
            "-input=false",
            "-no-color",
            "-auto-approve",
            f"-parallelism={parallelism}",
            *([plan_file] if plan_file else []),
        ],
        stack_dir,
        **kw,
    )


def destroy(stack_dir: Path, *, parallelism: int = 10, refresh: bool = True, **kw) -> None:
    """`refresh=False`: delete what the state records without reading each object first (`-refresh=false`), for a
    state known to be current (a plan just read it)."""
    args = ["destroy", "-input=false", "-no-color", "-auto-approve", f"-parallelism={parallelism}"]
    run(args + ([] if refresh else ["-refresh=false"]), stack_dir, **kw)


def outputs(stack_dir: Path, **kw) -> dict[str, object]:
    result = run(["output", "-json", "-no-color"], stack_dir, **kw)
    # CLI-configuration warnings come on stdout ahead of the JSON document.
    document = result.stdout[result.stdout.find("{") :] if "{" in result.stdout else "{}"
    return {name: value["value"] for name, value in json.loads(document).items()}


def show_plan_json(stack_dir: Path, plan_file: str, **kw) -> str:
    """`terraform show -json <plan>`: the plan as JSON (what `review --plan` reads)."""
    output = run(["show", "-json", "-no-color", plan_file], stack_dir, **kw).stdout
    return output[output.find("{") :]  # CLI-configuration warnings come first on stdout


def force_unlock(stack_dir: Path, lock_id: str, **kw) -> None:
    """Release a lock whose holder is gone (`-force`: no confirmation prompt)."""
    run(["force-unlock", "-force", lock_id], stack_dir, **kw)


def state_pull(stack_dir: Path, **kw) -> dict[str, object]:
    """The stack's current state as a document (`terraform state pull`; no lock taken); {} when it has none."""
    output = run(["state", "pull"], stack_dir, **kw).stdout
    return json.loads(output[output.find("{") :]) if "{" in output else {}  # warnings may come first


def state_push(stack_dir: Path, state_file: Path, **kw) -> None:
    """Write a local state file into the configured backend (the account stack's move into its bucket)."""
    run(["state", "push", "-no-color", str(state_file.resolve())], stack_dir, **kw)
