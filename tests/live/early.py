"""The platform deployment started by the session's main process, before any worker has collected a test.

The live worker's path (deploy, check, destroy, one after another) is the default suite's longest, and it used to
start only once every xdist worker had collected (13-17 s: xdist hands out tests only then). What comes before the
platform's first create (the moto server, the synths, the bootstrap, the environment's init and plan: about 34 s at
one core) needs no test. So when a run will need the platform on moto (`wanted`), the main process starts
`python -m tests.live.early ROOT` at session start, which prepares and applies it exactly as the live fixture does
(`harness.live_deployment`, `Deployment.prepare` and `bootstrap_and_apply`, its server detached), writes RESULT and
exits. The live worker adopts it (`Deployment.early`: its checks, plans and destroy as before); a deployment nobody adopted
(the selection needed no platform after all) is stopped at the session's end (`finish`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

VARIABLE = "DEEPSENTINEL_LIVE_EARLY"  # {"root", "pid", "session"}: set by the main process for its xdist workers
RESULT = "early.json"  # in the platform's workdir: the early process's outcome
ADOPTED = "early-adopted"  # in the platform's workdir: a live worker has taken the deployment over
LOG = "early.log"  # in the platform's workdir: the early process's output
# The xdist workers start right after the early process and collect the suite at once (three processes on two cores
# for ~18 s) while it loads cdktf and bootstraps: the main process lowers its own priority by this many nice(2) steps
# before it starts them, so they collect behind the deployment (a unit worker then adds tests/conftest.py's
# UNIT_WORKER_NICENESS; the live worker keeps this one).
WORKER_NICENESS = 5
LIVE_DIR = Path(__file__).parent
# the test files whose tests use the platform deployment (the modules' tests check it, unless --live-modules)
PLATFORM_FILES = {"test_platform.py", "test_network.py", "test_security.py", "test_storage.py"}
_STARTED = pytest.StashKey["tuple[EarlyStart, subprocess.Popen[bytes]]"]()


@dataclass(frozen=True, kw_only=True)
class EarlyStart:
    root: Path  # the live deployments' root (--live-workdir, or the session's temporary directory)
    pid: int  # the early process


def wanted(config: pytest.Config) -> bool:
    """Whether this run will deploy the platform on moto, decided before collection: never in an xdist worker or a
    nested run, nor with --collect-only, --live-keep (a kept deployment is reused instead), --live-target=aws or -k
    (which only collection can resolve); otherwise when -m selects a test marked only `live` and a path given (or
    the configured testpaths) holds a test file that uses the platform."""
    option = config.option
    if (hasattr(config, "workerinput") or VARIABLE in os.environ or option.collectonly or option.keyword
            or config.getoption("--live-keep") or config.getoption("--live-target") != "moto"):
        return False
    base = config.rootpath if config.args_source == pytest.Config.ArgsSource.TESTPATHS else config.invocation_params.dir
    return platform_selected([(base / arg.split("::")[0]).resolve() for arg in config.args], option.markexpr,
                             modules_alone=config.getoption("--live-modules"))


def platform_selected(paths: list[Path], markexpr: str, *, modules_alone: bool) -> bool:
    """-m selects a test marked only `live`, and one of `paths` (absolute) holds a test file using the platform (with
    --live-modules the modules' files deploy their own)."""
    if markexpr:
        from _pytest.mark.expression import Expression

        if not Expression.compile(markexpr).evaluate(lambda name, **_: name == "live"):
            return False
    files = {"test_platform.py"} if modules_alone else PLATFORM_FILES
    return any(path == LIVE_DIR or path in LIVE_DIR.parents or (path.parent == LIVE_DIR and path.name in files)
               for path in paths)


def start(config: pytest.Config) -> None:
    """In the main process at session start, if `wanted`: the early process, VARIABLE for the workers and, when
    xdist will start them, this process's lower priority (WORKER_NICENESS) for them to inherit."""
    if not wanted(config):
        return
    from tests.conftest import REPO_ROOT

    root = config.getoption("--live-workdir") or config._tmp_path_factory.mktemp("live")  # type: ignore[attr-defined]
    root = Path(root).resolve()
    workdir = root / "platform"
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in (RESULT, ADOPTED):
        (workdir / stale).unlink(missing_ok=True)
    with open(workdir / LOG, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "tests.live.early", str(root)], cwd=REPO_ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    early = EarlyStart(root=root, pid=process.pid)
    config.stash[_STARTED] = (early, process)
    os.environ[VARIABLE] = json.dumps({"root": str(root), "pid": process.pid, "session": os.getpid()})
    if config.getoption("numprocesses", None):  # xdist starts its workers from this process next: they inherit it
        os.nice(WORKER_NICENESS)


def started(config: pytest.Config) -> EarlyStart | None:
    """The early deployment of this session, in the live worker (or in the main process without xdist)."""
    if _STARTED in config.stash:
        return config.stash[_STARTED][0]
    value = os.environ.get(VARIABLE)
    if not value or not hasattr(config, "workerinput"):
        return None
    info = json.loads(value)
    if info["session"] != os.getppid():  # a worker of a run nested in that session (which inherited VARIABLE)
        return None
    return EarlyStart(root=Path(info["root"]), pid=int(info["pid"]))


def claim(workdir: Path) -> None:
    (workdir / ADOPTED).touch()


def wait_for_result(early: EarlyStart, workdir: Path, timeout: float = 900) -> dict[str, Any]:
    """The early process's RESULT, once it has applied (or failed)."""
    deadline = time.monotonic() + timeout
    result = workdir / RESULT
    while not result.exists():
        if not _running(early.pid) and not result.exists():
            raise RuntimeError(f"the early deployment's process {early.pid} ended without a result; its log "
                               f"{workdir / LOG}:\n{_tail(workdir / LOG)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the early deployment gave no result within {timeout:.0f}s (log: {workdir / LOG})")
        time.sleep(0.2)
    return json.loads(result.read_text())


def finish(config: pytest.Config) -> None:
    """In the main process at session end: a deployment no worker adopted is stopped (its process interrupted as a
    Ctrl-C would, its server stopped: everything it made lives in the server's memory) and its record removed."""
    if _STARTED not in config.stash:
        return
    os.environ.pop(VARIABLE, None)
    stop(*config.stash[_STARTED])


def stop(early: EarlyStart, process: subprocess.Popen[bytes]) -> None:
    """The early process ended (interrupted if it still runs) and, unless a worker adopted its deployment, its server
    stopped and its record removed."""
    if process.poll() is None:  # the session was cut short (an adopted deployment's process has ended)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    workdir = early.root / "platform"
    if not (workdir / ADOPTED).exists():
        from deepsentinel.local.server import LocalAws
        from tests.live.harness import RECORD

        server = LocalAws.find(workdir / "server.json")
        if server is not None:
            server.stop(workdir / "server.json")
        (workdir / RECORD).unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Not ended: an ended child its parent has not reaped yet is still a process (a zombie, state Z)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: whether the id exists at all
        from deepsentinel.interruption import pid_alive

        return pid_alive(pid)
    return stat.rpartition(")")[2].split()[0] != "Z"


def _tail(path: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def main(argv: list[str] | None = None) -> int:
    """The early process: prepare and apply the platform in ROOT/platform, write RESULT there, leave its server up."""
    root = Path((sys.argv[1:] if argv is None else argv)[0])
    # `stop` interrupts this process with SIGINT; a pytest started in the background by a non-interactive shell
    # ignores SIGINT and Python keeps an inherited SIG_IGN, which would make `stop` wait out its 60 s
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def log(message: str) -> None:
        print(f"[live early] {message}", file=sys.stderr, flush=True)

    from tests.live.harness import live_deployment

    deployment = live_deployment("platform", root, target="moto", log=log, hand_over=True)
    result: dict[str, Any] = {"error": None, "applying": None}
    try:
        deployment.prepare()
        result["applying"] = deployment.bootstrap_and_apply()
    except BaseException as error:  # noqa: BLE001 - Ctrl-C too: the live worker reports why
        result["error"] = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        log(f"FAILED: {result['error']}")
    finally:
        result.update(stack_dir=str(deployment.stack_dir), timings=asdict(deployment.timings))
        written = deployment.workdir / f"{RESULT}.tmp"
        written.write_text(json.dumps(result))
        written.replace(deployment.workdir / RESULT)
    return 0 if result["error"] is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
