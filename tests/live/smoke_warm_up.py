"""The smoke's local stand-ins made ready while the platform's apply waits on the provider.

`LocalPlatform.prepare` (deepsentinel.commands.smoke) starts the database, builds the smoke model and checks it with
ultralytics in this process before the first clip runs; none of that needs the deployment, except the master user
read from the deployed secret. On moto the live worker starts those three in a thread as soon as the apply has
started (the apply then spends about 100 s in the provider's fixed waits, docs/local-speed.md), and the smoke fixture
waits for it, so they leave the live worker's path (the suite's longest). `prepare` then finds the server running,
the model built and ultralytics imported; it does every other step as `deepsentinel smoke --local` does.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

SMOKE_FIXTURE = "smoke_platform"
SCRATCH = "smoke"  # in the platform's workdir, where `deepsentinel smoke --local` keeps its scratch
_WARM_UP = pytest.StashKey["Future[None] | None"]()


def start(config: pytest.Config, items: list[pytest.Item], scratch: Path) -> None:
    """In a thread, if a selected test uses the smoke fixture."""
    future: Future[None] | None = None
    if any(SMOKE_FIXTURE in getattr(item, "fixturenames", ()) for item in items
           if not item.get_closest_marker("skip")):
        future = Future()
        threading.Thread(target=_run, args=(future, scratch), name="smoke-warm-up", daemon=True).start()
    config.stash[_WARM_UP] = future


def wait(config: pytest.Config) -> None:
    """Until the warm-up (if started) is done; its error, if any, is the smoke fixture's."""
    future = config.stash.get(_WARM_UP, None)
    if future is not None:
        future.result(timeout=600)


def stop_database(config: pytest.Config, scratch: Path) -> None:
    """The server the warm-up started, at the live pool's end: its one owner, whether the smoke tests ran or not (the
    apply failed, say)."""
    from deepsentinel.local.stand_in import SMOKE_DATABASE_DIR, LocalDatabase

    future = config.stash.get(_WARM_UP, None)
    if future is not None:
        future.exception(timeout=600)  # started, or failed: either way nothing is starting it any more
        LocalDatabase.stop(scratch / SMOKE_DATABASE_DIR)


def _run(future: Future[None], scratch: Path) -> None:
    try:
        from deepsentinel.commands.smoke import build_smoke_model
        from deepsentinel.local.stand_in import SMOKE_DATABASE_DIR, LocalDatabase

        scratch.mkdir(parents=True, exist_ok=True)
        LocalDatabase(scratch / SMOKE_DATABASE_DIR).start_server()
        build_smoke_model(scratch)
        from ultralytics import YOLO  # noqa: F401 - deepsentinel.commands.model.check_loads imports it here
    except BaseException as error:  # noqa: BLE001 - handed to the smoke fixture
        future.set_exception(error)
    else:
        future.set_result(None)
