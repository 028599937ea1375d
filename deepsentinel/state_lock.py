"""A held state lock, as every command that locks a state (deploy, destroy, bootstrap, plan) meets it.

Terraform's own answer is a 25-line `Error acquiring the state lock`. Here it is one line naming the holder
(Terraform's lock info: who, what, since when, the lock ID) and the way out. In local mode a lock whose
holder is gone is released instead, in one line, and the command goes on: the holder was a terraform of
this machine (the lock's `Who` is user@<this host>) that deepsentinel.terraform recorded in the stack
directory and that no longer runs (killed before it could release its lock; an interrupted terraform
releases it itself). Terraform records no process id in the lock, hence the record.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from deepsentinel import terraform
from deepsentinel.errors import OperationFailed
from deepsentinel.interruption import pid_alive

T = TypeVar("T")


def locked(
    operation: Callable[[], T],
    *,
    stack_dir: Path,
    env: dict[str, str],
    local: bool,
    wait_hint: str = "",
    log: Callable[[str], None] = print,
) -> T:
    """Run `operation` (a terraform call that takes the state lock of `stack_dir`'s stack). A held lock becomes
    OperationFailed in one line; in `local` mode a lock left by a terraform that is gone is released first and
    the operation runs again. `wait_hint`: how this command can wait for a live holder, e.g. " (or pass
    --lock-timeout 5m)"."""
    try:
        return operation()
    except terraform.StateLocked as error:
        lock = error.lock
        dead = dead_holders(stack_dir, lock) if local and lock else []
        if lock is None or not dead:
            raise held_lock_error(
                stack_dir, lock, live=live_holders(stack_dir) if local else [], wait_hint=wait_hint
            ) from None
        terraform.force_unlock(stack_dir, lock.id, env=env)
        terraform.forget_runs(stack_dir, dead)
        log(
            f"released the state lock of {stack_dir.name}: {_holder(lock)} was interrupted and is gone "
            f"(terraform pid {', '.join(map(str, dead))})"
        )
        return operation()


def dead_holders(stack_dir: Path, lock: terraform.LockInfo) -> list[int]:
    """The recorded terraform runs of `stack_dir` that died, when the lock can only be theirs: it was taken on this
    host and no recorded run is alive. Empty when the holder may live (or was no run of ours)."""
    if lock.host != socket.gethostname():
        return []
    runs = terraform.unfinished_runs(stack_dir)
    return [] if any(pid_alive(pid) for pid in runs) else runs


def live_holders(stack_dir: Path) -> list[int]:
    return [pid for pid in terraform.unfinished_runs(stack_dir) if pid_alive(pid)]


def held_lock_error(
    stack_dir: Path, lock: terraform.LockInfo | None, *, live: Sequence[int] = (), wait_hint: str = ""
) -> OperationFailed:
    """One line: who holds the lock of `stack_dir`'s state and how to go on."""
    lock_id = lock.id if lock else "<lock id>"
    running = f", still running here as terraform pid {', '.join(map(str, live))}" if live else ""
    return OperationFailed(
        f"the state of {stack_dir.name} is locked by another run ({_holder(lock) if lock else 'holder unknown'}, "
        f"lock ID {lock_id}{running}); wait for it to finish and run the same command again{wait_hint}, or if "
        f"that run is gone, release the lock: terraform -chdir={_shown(stack_dir)} force-unlock {lock_id}"
    )


def _holder(lock: terraform.LockInfo) -> str:
    return f"{lock.who or 'someone'}'s {lock.operation_name}" + (f" since {lock.since}" if lock.created else "")


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is below it (what a user types)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
