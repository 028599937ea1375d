"""A local AWS for deploys and live tests: a moto server on a free loopback port, plus the few patches it needs.

Two ways to run it:

* `LocalAws.start()` spawns `python -m deepsentinel.local.server` as its own process (its own CPU, its own
  GIL: Terraform hammers it with requests) and waits until it answers; `detach=True` keeps it alive
  after this Python exits (`deepsentinel deploy --local`, stopped again by `destroy --local`).
* `start_in_process()` runs the same server in a thread of this process (small scripts, debugging).

Either way `configure_moto()` (deepsentinel/local/patches.py) is applied inside the server process before it
serves a request.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsentinel.interruption import pid_alive
from deepsentinel.local.patches import configure_moto, unconfigure_moto

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_SECONDS = 60.0
# The server process's cyclic garbage collector: moto's backends are a large heap of long-lived containers that every
# full collection walks, and a request makes many young objects. At Python's default (700, 10, 10) a small workload
# (tests/unit/test_recorded_terraform_calls.py's eight Terraform runs) spent 0.85 of the server's 3.06 CPU-s
# collecting; at this threshold 0.49 of 2.55 (2026-12-03). Cycles are still collected, later.
GC_THRESHOLDS = (10_000, 10, 10)


# --- server ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@contextmanager
def in_process(port: int = 0) -> Iterator[str]:
    """start_in_process for a test or a script: yields the endpoint; afterwards the server is stopped and moto is
    back as released (later in-process `mock_aws` tests of the same process see it unpatched; the two spared
    per-request lookups and the shared botocore loader below stay, as they answer what moto's and botocore's do, and
    so does the one-write answer, a transport detail)."""
    server, endpoint = start_in_process(port)
    try:
        yield endpoint
    finally:
        server.stop()
        unconfigure_moto()


def log_dropped_connections() -> None:
    """werkzeug ignores, without a word, a connection that fails while it reads a request or writes the answer (its
    access log has already shown the status by then). Say so on stderr (the server's log): when an SDK sends again a
    request the server answered, this tells whether the server saw the client go (docs/testing.md#a-known-flake)."""
    from moto.server import MotoRequestHandler

    def connection_dropped(handler: Any, error: BaseException, environ: dict[str, Any] | None = None) -> None:
        request = (
            f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}" if environ else getattr(handler, "requestline", "")
        )
        print(
            f"connection dropped by {handler.client_address[0]}:{handler.client_address[1]} while answering "
            f"{request!r}: {type(error).__name__}: {error}",
            file=sys.stderr,
            flush=True,
        )

    MotoRequestHandler.connection_dropped = connection_dropped  # type: ignore[method-assign,assignment]


class AnswerWriter:
    """A werkzeug handler's `wfile` that writes through, except that the status line and headers wait for the
    answer's first body bytes (or the flush that ends an empty answer) and leave with them in one send."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.pending = b""

    def hold(self, head: bytes) -> None:
        self.pending += head

    def write(self, data: bytes) -> int:
        if self.pending:
            data, self.pending = self.pending + data, b""
        return int(self.raw.write(data))

    def flush(self) -> None:
        if self.pending:
            self.write(b"")
        self.raw.flush()

    def __getattr__(self, name: str) -> Any:  # closed, close, ...: the socket writer's
        return getattr(self.raw, name)


def send_each_answer_in_one_write() -> None:
    """werkzeug sends an answer's headers and its body in two writes, and the Go SDK in Terraform's AWS provider
    sometimes drops the connection between the two: in two straced deployments (2026-12-03) the provider read the
    headers of a CreateUser and a ListRolePolicies answer, closed the connection within a millisecond without reading
    the body, and sent the request again as attempt 2 (for the create, refused as existing: a failed apply). 13-16 %
    of the answers reached the provider in two reads; with the headers held until the body is written, the answer
    comes in one (docs/testing.md#a-known-flake). An interim answer (`100 Continue`) is not held: the client waits
    for it before sending its body."""
    from moto.server import MotoRequestHandler

    if getattr(MotoRequestHandler, "holds_headers", False):
        return
    setup = MotoRequestHandler.setup

    def setup_with_answer_writer(handler: Any) -> None:
        setup(handler)
        handler.wfile = AnswerWriter(handler.wfile)

    def flush_headers(handler: Any) -> None:  # BaseHTTPRequestHandler.end_headers calls it with the header block
        if hasattr(handler, "_headers_buffer"):
            head, handler._headers_buffer = b"".join(handler._headers_buffer), []
            if head.startswith(b"HTTP/1.1 1"):  # an interim answer (100 Continue): at once
                handler.wfile.write(head)
            else:
                handler.wfile.hold(head)

    MotoRequestHandler.setup = setup_with_answer_writer  # type: ignore[method-assign,assignment]
    MotoRequestHandler.flush_headers = flush_headers  # type: ignore[method-assign,assignment]
    MotoRequestHandler.holds_headers = True  # type: ignore[attr-defined]


def list_moto_modules_once() -> None:
    """moto's dispatcher asks `moto.backends.list_of_moto_modules()` for every request (is the host a module's
    name?), and that lists moto's package directory and stats each of its ~170 entries, under the dispatcher's lock:
    listed once, a request costs the server 3.3-3.9 ms of CPU instead of 6.0-6.2 (benchmarks/local_server.py,
    2026-12-03). The directory is the installed package's, fixed while the process runs."""
    from moto import backends

    if not hasattr(backends.list_of_moto_modules, "cache_info"):
        listed = backends.list_of_moto_modules
        backends.list_of_moto_modules = functools.cache(lambda: tuple(listed()))


def look_up_access_keys_in_existing_iam_backends() -> None:
    """moto finds a request's account by its access key in the IAM backend of each of the six partitions
    (`moto.iam.models.get_account_id_from`), and asking for a partition's backend creates it: with AWS's managed
    policies loaded (MOTO_SETTINGS), the first signed request built five IAM backends nobody uses, 0.86 CPU-s per server
    start and again after each reset (2026-12-03). A key exists only in a backend that was created, so only those are
    searched: the same answers."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam import models
    from moto.utilities.utils import PARTITION_NAMES

    def get_account_id_from(access_key: str) -> str:
        for account_id, account in list(models.iam_backends.items()):  # list(): as moto's, requests run in threads
            for partition in PARTITION_NAMES:
                backend = dict.get(account, partition)  # dict's own get: moto's __getitem__ would create it
                if backend is not None and access_key in backend.access_keys:
                    return account_id
        return DEFAULT_ACCOUNT_ID

    models.get_account_id_from = get_account_id_from


def share_one_botocore_loader_per_data_path() -> None:
    """botocore parses its data files (endpoints.json, each service's model and rules) once per Loader, and each
    Session makes a Loader of its own: moto's EC2 models ask three new Sessions for EC2's regions when imported (one
    per partition, moto/ec2/models/availability_zones_and_regions.py), each parsing EC2's model again, and moto's
    mock_aws gives every test a new default session. Here every session of the process shares one Loader per data
    path: the same files, parsed once (a server process starts on 1.08-1.58 CPU-s instead of 1.78-1.80,
    benchmarks/local_server.py, 2026-12-03). The dicts are shared as botocore's own clients of one session share
    them; what a client changes in them, every later session of the process sees: once an S3 client has sent a
    request, its operations' `requestUri` no longer starts with `/{Bucket}` (botocore's
    `remove_bucket_from_url_paths_from_model`, harmless to clients; deepsentinel/local/request_log.py reads the model
    with a loader of its own for that reason). The test suite's processes share it too (tests/conftest.py)."""
    import botocore.session

    if not hasattr(botocore.session.create_loader, "cache_info"):
        botocore.session.create_loader = functools.cache(botocore.session.create_loader)


def start_in_process(port: int = 0) -> Any:
    """A ThreadedMotoServer in this process with the patches applied; returns (server, endpoint_url)."""
    from moto.server import ThreadedMotoServer

    share_one_botocore_loader_per_data_path()  # before configure_moto, whose patches import moto's EC2 models
    configure_moto()
    log_dropped_connections()
    send_each_answer_in_one_write()
    list_moto_modules_once()
    look_up_access_keys_in_existing_iam_backends()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    from deepsentinel.local import request_log

    if os.environ.get(request_log.LOG_VARIABLE):  # opt-in: who called what (deepsentinel/local/request_log.py)
        request_log.install(server, Path(os.environ[request_log.LOG_VARIABLE]))
    host, bound = server.get_host_and_port()
    endpoint = f"http://{host}:{bound}"
    # moto's backends are global to the process: a new in-process server starts empty, not with what an earlier
    # one in this process (another test module) left behind.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
    return server, endpoint


def is_alive(endpoint_url: str, timeout: float = 2.0) -> bool:
    """The server accepts connections (a TCP connect: moto's data.json dump is slow once state is big)."""
    parsed = urllib.parse.urlsplit(endpoint_url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class LocalAws:
    """A moto server in its own process. `info_file` (JSON: pid, endpoint_url) lets a later process find it."""

    pid: int
    endpoint_url: str
    log_path: Path | None = None

    @classmethod
    def start(
        cls,
        *,
        log_path: Path | None = None,
        info_file: Path | None = None,
        detach: bool = False,
        meanwhile: Callable[[], object] = lambda: None,
    ) -> LocalAws:
        """A server answering on its endpoint, recorded in `info_file`. `meanwhile` runs while the server's process
        starts (its imports take 2-3 s); if it fails (or a Ctrl-C comes), the server is stopped, never recorded."""
        server = cls.launch(log_path=log_path, detach=detach)
        try:
            meanwhile()
        except BaseException:
            server.stop()
            raise
        server.wait_ready(info_file)
        return server

    @classmethod
    def launch(cls, *, log_path: Path | None = None, detach: bool = False) -> LocalAws:
        """The server's process started, not yet answering: `wait_ready` follows (`start` is the two)."""
        port = free_port()
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            [sys.executable, "-m", "deepsentinel.local.server", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        if log_path:
            log.close()  # type: ignore[union-attr]
        server = cls(pid=process.pid, endpoint_url=f"http://{LOOPBACK}:{port}", log_path=log_path)
        server._process = process  # type: ignore[attr-defined]
        return server

    def wait_ready(self, info_file: Path | None = None) -> None:
        """Until the launched server answers; then it is recorded in `info_file`. Stopped if it never does."""
        process = self._process  # type: ignore[attr-defined]
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        try:
            while not is_alive(self.endpoint_url, timeout=1.0):
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the moto server exited with {process.returncode}"
                        + (f"; see {self.log_path}" if self.log_path else "")
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the moto server did not answer on {self.endpoint_url} within {READY_TIMEOUT_SECONDS:.0f}s"
                    )
                time.sleep(0.1)
            if info_file:
                info_file.parent.mkdir(parents=True, exist_ok=True)
                info_file.write_text(json.dumps({"pid": self.pid, "endpoint_url": self.endpoint_url}))
        except BaseException:  # also Ctrl-C: a detached server nobody recorded would run on, found by no one
            self.stop()
            raise

    @classmethod
    def find(cls, info_file: Path) -> LocalAws | None:
        """The server recorded in `info_file`, if it still answers."""
        try:
            info = json.loads(info_file.read_text())
        except (OSError, ValueError):
            return None
        server = cls(pid=int(info["pid"]), endpoint_url=str(info["endpoint_url"]))
        return server if pid_alive(server.pid) and is_alive(server.endpoint_url) else None

    def stop(self, info_file: Path | None = None) -> None:
        process = getattr(self, "_process", None)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        else:  # found through its info file (another process started it): stopped once its port is closed
            deadline = time.monotonic() + 10
            while is_alive(self.endpoint_url, timeout=0.5) and time.monotonic() < deadline:
                time.sleep(0.1)
            if is_alive(self.endpoint_url, timeout=0.5):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
        if info_file is not None:
            info_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalAws:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deepsentinel.local.server", description="moto server with DeepSentinel's local-mode patches"
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    gc.set_threshold(*GC_THRESHOLDS)  # this process only (start_in_process leaves its host's collector alone)
    server, endpoint = start_in_process(args.port)
    print(f"moto server on {endpoint}", flush=True)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    while not stopping:
        time.sleep(0.2)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
