"""Ctrl-C, SIGTERM and SIGHUP end a command the way Terraform ends itself: cleanly, in one line, exit 130.

A terminal's Ctrl-C goes to its whole foreground process group. The processes we start are kept out of that
group (terraform in `deepsentinel.terraform`, jsii's node kernel here), so only this Python process hears it:
it forwards the interrupt to a running terraform (which stops gracefully and releases its state lock), ends
what it started by process group, and prints `interrupted: run the same command again`. Without that, node
died with the terminal's signal, jsii printed `Error on jsii API channel ... ECONNRESET` and its atexit hook a
traceback, and Terraform's provider plugins outlived the command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator

INTERRUPTED_LINE = "interrupted: run the same command again"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C'd command
TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # handled as a Ctrl-C (CI cancellation, a closed terminal)
JSII_SINK_THREAD = "process.stderr_sink"  # jsii's thread copying node's stderr to ours


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C's KeyboardInterrupt so one path ends the command."""


def run_interruptibly(command: Callable[[], int]) -> int:
    """Run a CLI command; if Ctrl-C, SIGTERM or SIGHUP reaches it, end what is left quietly, print the one line
    and return 130. Signal handlers are as before afterwards (the CLI also runs inside tests' processes)."""
    isolate_jsii_kernel()
    if not in_main_thread():
        return command()
    signals = (signal.SIGINT, *TERMINATING_SIGNALS)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    try:
        for sig in TERMINATING_SIGNALS:  # Python's default would end the process without any cleanup
            signal.signal(sig, _raise_interrupted)
        return command()
    except KeyboardInterrupt:
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        end_jsii_kernel()
        print(INTERRUPTED_LINE, file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def in_main_thread() -> bool:
    """Signal handlers can only be changed, and KeyboardInterrupt only arrives, in the main thread."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def signals_calling(handler: object) -> Iterator[None]:
    """Within the block SIGINT, SIGTERM and SIGHUP call `handler` (main thread only; elsewhere a no-op)."""
    if not in_main_thread():
        yield
        return
    signals = (signal.SIGINT, *TERMINATING_SIGNALS)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        signal.signal(sig, handler)  # type: ignore[arg-type]
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def pid_alive(pid: int) -> bool:
    """A process with this id exists (signal 0 checks without sending; another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for_exit(process: subprocess.Popen, timeout: float | None = None) -> bool:
    """Wait until `process` has exited (at most `timeout` seconds; None: as long as it takes) without reaping it:
    an unreaped leader keeps its process group id from being reused. True when it has exited."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while process.returncode is None:
        try:
            flags = os.WEXITED | os.WNOWAIT | (0 if deadline is None else os.WNOHANG)
            if os.waitid(os.P_PID, process.pid, flags) is not None:
                return True
        except ChildProcessError:
            return True  # reaped elsewhere
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def end_process_group(process: subprocess.Popen, *, grace: float = 0.0) -> bool:
    """Give `process` (a group leader: start_new_session) up to `grace` seconds to exit, then SIGKILL its whole
    group (what it left behind: provider plugins, jsii's second node) and reap it. True when it had exited by
    itself."""
    exited = wait_for_exit(process, grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return exited


# --- jsii's node kernel ------------------------------------------------------------------------------------

_jsii_processes: list[subprocess.Popen] = []


class _SessionSubprocess(types.ModuleType):
    """`subprocess` as jsii's kernel provider sees it: its node process starts in a session of its own, out of the
    terminal's process group, and is remembered so an interrupted command can end it quietly."""

    def __init__(self) -> None:
        super().__init__("subprocess")

    def __getattr__(self, name: str) -> object:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: object, **kwargs: object) -> subprocess.Popen:  # noqa: N802 - subprocess's name
        process = subprocess.Popen(*args, start_new_session=True, **kwargs)  # type: ignore[call-overload]
        _jsii_processes.append(process)
        return process


def isolate_jsii_kernel() -> None:
    """Before cdktf is imported: jsii's node (started on the first import of a jsii module) gets its own session.
    jsii._kernel.providers.process calls `subprocess.Popen` for it and offers no option for this."""
    from jsii._kernel.providers import process as jsii_process

    if not isinstance(jsii_process.subprocess, _SessionSubprocess):
        jsii_process.subprocess = _SessionSubprocess()


def end_jsii_kernel() -> None:
    """Kill jsii's node processes (both: jsii-runtime runs the kernel in a child node) at once, by group, so
    neither can report the other's death; then jsii's own atexit hook finds them gone and only cleans up.

    Its stdin is closed first (the atexit hook writes an exit request to an open one: a BrokenPipeError
    traceback) and its stderr sink thread is drained into /dev/null."""
    while _jsii_processes:
        process = _jsii_processes.pop()
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull), contextlib.redirect_stdout(devnull):
            if process.stdin is not None:
                with contextlib.suppress(OSError, ValueError):
                    process.stdin.close()
            end_process_group(process)
            for thread in threading.enumerate():
                if thread.name == JSII_SINK_THREAD:
                    thread.join(timeout=5)
