"""Interrupted runs recover by themselves (issue 19 item 1).

Fast, in the default suite: real terraform (its built-in `terraform_data` with a `local-exec` sleep, no provider to
install) keeping its state in an S3 backend with S3-native locking on a local moto server, interrupted the way a
terminal does it (SIGINT to the whole foreground process group) or CI does (SIGTERM to the command); jsii's node
kernel interrupted mid-synth; locks left by a terraform that is still running, that was killed, or that ran
elsewhere.

Slow (`pytest -m slow tests/unit/test_interrupts.py`, about 12 minutes on 2 cores): `deploy --local` interrupted
during the bootstrap, the synth and the apply, `destroy --local` mid-destroy, each rerun to completion.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO_ROOT

INTERRUPTED = "interrupted: run the same command again"
BUCKET = "interrupt-state"
NOISE = ("Traceback", "ECONNRESET", "Exception ignored", "jsii", "Interrupt received", "Error")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from deepsentinel.local_aws import LocalAws

    with LocalAws.start(info_file=tmp_path_factory.mktemp("server") / "server.json") as aws:
        s3(aws).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
        yield aws


def s3(aws: object):
    import boto3

    return boto3.client("s3", endpoint_url=aws.endpoint_url, aws_access_key_id="test",  # type: ignore[attr-defined]
                        aws_secret_access_key="test", region_name="ap-northeast-2")


def sleeping_stack(directory: Path, aws: object) -> Path:
    """A stack whose apply sits in a `local-exec` provisioner for 5 minutes, state in `<dir name>/terraform.tfstate`
    of the moto server's bucket, locked with a `.tflock` object (the S3 backend's `use_lockfile`)."""
    from deepsentinel.stacks.provider import local_backend_settings

    directory.mkdir(parents=True)
    (directory / "main.tf.json").write_text(json.dumps({
        "terraform": {"backend": {"s3": {"bucket": BUCKET, "key": f"{directory.name}/terraform.tfstate",
                                         "region": "ap-northeast-2", "use_lockfile": True,
                                         **local_backend_settings(aws.endpoint_url)}}},  # type: ignore[attr-defined]
        "resource": {"terraform_data": {"slow": {"provisioner": [{"local-exec": {"command": "exec sleep 300"}}]}}}}))
    return directory


# The command under test, as cli.main runs one: deepsentinel.interruption around terraform calls.
APPLY = """
import sys
from pathlib import Path
from deepsentinel import interruption, terraform
stack = Path(sys.argv[1])
def command():
    env = terraform.environment(stack.parent / "terraform-cli")
    terraform.init(stack, env=env)
    terraform.apply(stack, on_line=print, env=env)
    return 0
sys.exit(interruption.run_interruptibly(command))
"""


def start(argv: list[str]) -> subprocess.Popen[str]:
    """A command in a session of its own, like a shell's foreground job: its group is what Ctrl-C signals."""
    return subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 300) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return lines
        assert time.monotonic() < deadline, f"no {marker!r} within {timeout}s:\n{''.join(lines)[-3000:]}"
    raise AssertionError(f"the command ended before {marker!r}:\n{''.join(lines)[-3000:]}{process.stderr.read()}")


def processes_under(directory: Path) -> list[psutil.Process]:
    """Live processes working in, running from or writing to `directory` (what an interrupted run could leave)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            paths = [process.cwd(), *process.cmdline(), *(f.path for f in process.open_files())]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(str(directory) in path for path in paths):
            found.append(process)
    return found


def lock_object(aws: object, stack: Path) -> dict | None:
    try:
        body = s3(aws).get_object(Bucket=BUCKET, Key=f"{stack.name}/terraform.tfstate.tflock")["Body"].read()
    except Exception as error:  # noqa: BLE001 - NoSuchKey
        if "NoSuchKey" in str(error):
            return None
        raise
    return json.loads(body)


def state_resources(aws: object, stack: Path) -> list[dict]:
    body = s3(aws).get_object(Bucket=BUCKET, Key=f"{stack.name}/terraform.tfstate")["Body"].read()
    return json.loads(body)["resources"]


@pytest.mark.parametrize("send", ["ctrl-c", "sigterm"])
def test_an_interrupted_apply_stops_terraform_gracefully_in_one_line(server, tmp_path: Path, send: str):
    """Ctrl-C in a terminal is SIGINT to the foreground process group; CI cancels with SIGTERM to the command. Either
    way terraform is interrupted and stops by itself: "If state locking fails, Terraform does not continue" and an
    interrupted Terraform releases its lock (State Locking, developer.hashicorp.com/terraform/language/state/
    locking: force-unlock is only for "the situation where automatic unlocking failed"); a creation-time
    provisioner that fails leaves its resource tainted ("Failure Behavior", developer.hashicorp.com/terraform/
    language/resources/provisioners/syntax). Nothing started by the command outlives it."""
    stack = sleeping_stack(tmp_path / f"apply-{send}", server)
    command = start([sys.executable, "-c", APPLY, str(stack)])
    read_until(command, "Provisioning with 'local-exec'")
    assert processes_under(stack), "terraform and its provisioner run in the stack directory"
    if send == "ctrl-c":
        os.killpg(command.pid, signal.SIGINT)
    else:
        command.send_signal(signal.SIGTERM)
    rest, errors = command.communicate(timeout=120)

    assert command.returncode == 130
    assert errors == f"{INTERRUPTED}\n"
    assert not [word for word in NOISE if word in rest], rest
    assert processes_under(stack) == []
    assert lock_object(server, stack) is None
    assert [(r["type"], r["instances"][0].get("status")) for r in state_resources(server, stack)] == \
        [("terraform_data", "tainted")]
    assert not list((stack / ".deepsentinel-runs").glob("*.json")), "the run ended by itself: no record is kept"


def test_an_interrupted_synth_ends_jsii_quietly(tmp_path: Path):
    """jsii's Python runtime talks to a node process (`jsii-runtime`, which runs the kernel in a second node) over
    pipes; when a terminal's SIGINT killed them under it, jsii printed `Error on jsii API channel to child
    process: Error: read ECONNRESET` and its atexit hook a traceback. Now: one line, exit 130, both nodes gone."""
    command = start([sys.executable, "-m", "deepsentinel.cli", "synth", "--out", str(tmp_path / "out")])
    read_until(command, "synthesizing")
    time.sleep(1.0)  # inside app.synth(): the kernel is busy
    nodes = [child for child in psutil.Process(command.pid).children(recursive=True) if child.name() == "node"]
    assert len(nodes) == 2, "jsii-runtime and its kernel"
    os.killpg(command.pid, signal.SIGINT)
    rest, errors = command.communicate(timeout=60)

    assert command.returncode == 130
    assert errors == f"{INTERRUPTED}\n"
    assert not [word for word in NOISE if word in rest], rest
    time.sleep(0.5)
    assert [node.pid for node in nodes if node.is_running() and node.status() != psutil.STATUS_ZOMBIE] == []


def test_a_lock_is_refused_while_its_terraform_runs_and_released_once_it_is_gone(server, tmp_path: Path):
    """Terraform records who holds a lock (its `.tflock` object: ID, Operation, Who = user@host, Version, Created,
    Path; statemgr.LockInfo) but no process id. The command that started it was killed outright (SIGKILL: no chance
    to interrupt terraform, which runs on in its own session holding the lock): the next command refuses in one
    line naming the holder. Then terraform itself is killed (kill -9, OOM): "automatic unlocking failed", the case
    force-unlock exists for (developer.hashicorp.com/terraform/cli/commands/force-unlock); in local mode the next
    command releases that lock itself, says so in one line, and goes on."""
    from deepsentinel import state_lock, terraform
    from deepsentinel.errors import OperationFailed

    stack = sleeping_stack(tmp_path / "held", server)
    command = start([sys.executable, "-c", APPLY, str(stack)])
    read_until(command, "Provisioning with 'local-exec'")
    os.kill(command.pid, signal.SIGKILL)
    command.communicate(timeout=30)
    (holder,) = terraform.unfinished_runs(stack)
    assert psutil.Process(holder).name() == "terraform"
    lock = lock_object(server, stack)
    assert lock is not None and lock["Who"].endswith(f"@{socket.gethostname()}")
    since = lock["Created"][:19] + "Z"  # to the second, in UTC (Terraform's Created is UTC)
    env = terraform.environment(tmp_path / "terraform-cli")
    plan = lambda: terraform.plan(stack, env=env)  # noqa: E731 - the next command's locked operation

    with pytest.raises(OperationFailed) as refused:
        state_lock.locked(plan, stack_dir=stack, env=env, local=True)
    assert str(refused.value) == (
        f"the state of held is locked by another run ({lock['Who']}'s apply since {since}, lock ID "
        f"{lock['ID']}, still running here as terraform pid {holder}); wait for it to finish and run the same "
        f"command again, or if that run is gone, release the lock: terraform -chdir={stack} force-unlock "
        f"{lock['ID']}")
    assert lock_object(server, stack) == lock

    os.killpg(holder, signal.SIGKILL)  # terraform and its provisioner, with no chance to release the lock
    psutil.wait_procs([psutil.Process(holder)], timeout=10)
    assert lock_object(server, stack) == lock
    said: list[str] = []
    assert state_lock.locked(plan, stack_dir=stack, env=env, local=True, log=said.append)
    assert said == [f"released the state lock of held: {lock['Who']}'s apply since {since} was "
                    f"interrupted and is gone (terraform pid {holder})"]
    assert lock_object(server, stack) is None
    assert terraform.unfinished_runs(stack) == []
    assert processes_under(stack) == []


@pytest.mark.parametrize("local", [True, False], ids=["local", "aws"])
def test_a_lock_taken_elsewhere_is_refused_in_one_line(server, tmp_path: Path, local: bool):
    """A lock held from another machine (a CI runner: Who is runner@ci) may be live whatever we know here, so even
    in local mode it is never released; the line names the holder as Terraform's lock info does (ID, Who,
    Operation, Created) and the command that releases it once that run is known to be dead."""
    from deepsentinel import state_lock, terraform
    from deepsentinel.errors import OperationFailed

    stack = sleeping_stack(tmp_path / "elsewhere", server)
    env = terraform.environment(tmp_path / "terraform-cli")
    terraform.init(stack, env=env)
    lock = {"ID": "4f1c9d2e-held-by-ci", "Operation": "OperationTypeApply", "Info": "", "Who": "runner@ci",
            "Version": "1.11.4", "Created": "2026-12-01T00:00:00Z",
            "Path": f"{BUCKET}/elsewhere/terraform.tfstate.tflock"}
    s3(server).put_object(Bucket=BUCKET, Key="elsewhere/terraform.tfstate.tflock", Body=json.dumps(lock))

    with pytest.raises(OperationFailed) as refused:
        state_lock.locked(lambda: terraform.plan(stack, env=env), stack_dir=stack, env=env, local=local,
                          wait_hint=" (or pass --lock-timeout 5m)")
    assert str(refused.value) == (
        "the state of elsewhere is locked by another run (runner@ci's apply since 2026-12-01T00:00:00Z, lock ID "
        "4f1c9d2e-held-by-ci); wait for it to finish and run the same command again (or pass --lock-timeout 5m), "
        f"or if that run is gone, release the lock: terraform -chdir={stack} force-unlock 4f1c9d2e-held-by-ci")
    assert lock_object(server, stack) == lock
