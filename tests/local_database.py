"""The worker's PostgreSQL 16 + pgvector for tests that drive the stand-ins, started and stopped in one place."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deepsentinel.local.stand_in import LocalDatabase


@contextmanager
def worker_database(prefix: str, *, username: str, password: str,
                    database: str) -> Iterator[tuple[LocalDatabase, dict[str, str]]]:
    """A LocalDatabase with the worker's schema (video_worker/schema.sql) applied; yields it and its endpoint.

    The stand-in's server outlives its starter on purpose (`status --local` reads it) and pgserver's cleanup() does
    not stop a server started that way, so it is stopped by its data directory, which is then removed."""
    import psycopg
    from video_worker import store

    root = Path(tempfile.mkdtemp(prefix=prefix))  # short: the socket path has a 108-byte limit
    db = LocalDatabase(root / "pg")
    try:
        endpoint = db.start(username=username, password=password, database=database)
        with psycopg.connect(db.uri(database), autocommit=True) as conn:
            store.apply_schema(conn)
        yield db, endpoint
    finally:
        LocalDatabase.stop(root / "pg")
        shutil.rmtree(root, ignore_errors=True)
