"""The schema and the one-transaction writes against a real PostgreSQL 16 + pgvector."""

from __future__ import annotations

import json

import psycopg
import pytest

from video_worker import store
from video_worker.detect import Detection
from video_worker.errors import RetryableError
from video_worker.events import build_events, embed_event

NAMES = {0: "person", 2: "car"}


def _video(video_id: str) -> store.VideoRow:
    return store.VideoRow(video_id=video_id, s3_key=f"{video_id}.mp4", model_uri="m.pt", duration_s=4.0,
                          width=1920, height=1080, source_fps=30.0, codec="h264", sample_fps=5.0,
                          frames_analyzed=20)


def _synthetic(video_id: str, cls: int, box: tuple[float, float, float, float]) -> dict:
    dets = [Detection(i, i / 5, cls, 0.5 + i / 100, *box) for i in range(8)]
    events = build_events([(i, i / 5, [d]) for i, d in enumerate(dets)], names=NAMES, sample_fps=5, gap_s=0)
    events = [e.__class__(**{**e.__dict__, "highlight_key": f"{video_id}/0000.jpg"}) for e in events]
    return dict(video=_video(video_id), detections=dets, events=events,
                embeddings=[embed_event(e, video_duration_s=4.0) for e in events], names=NAMES)


def test_worker_schema_is_idempotent(db: psycopg.Connection) -> None:
    store.apply_schema(db)
    store.apply_schema(db)  # every worker applies it at start
    indexes = {r[0] for r in db.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'events'")}
    assert "events_embedding_hnsw_idx" in indexes
    assert db.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()


def test_worker_results_in_one_transaction_and_nearest_neighbour(db: psycopg.Connection) -> None:
    store.apply_schema(db)
    store.write_results(db, **_synthetic("nn-person", 0, (0.1, 0.1, 0.3, 0.5)))
    store.write_results(db, **_synthetic("nn-car", 2, (0.5, 0.5, 0.9, 0.9)))
    (probe,) = build_events([(0, 0.0, [Detection(0, 0.0, 2, 0.7, 0.5, 0.5, 0.85, 0.9)])],
                            names=NAMES, sample_fps=5, gap_s=0)
    hits = store.nearest_events(db, embed_event(probe, video_duration_s=4.0), limit=2)
    assert hits[0][1:3] == ("nn-car", "car")  # the one-hot class dominates the cosine distance
    row = db.execute("SELECT status, detection_count, event_count FROM videos WHERE video_id = 'nn-car'").fetchone()
    assert row == ("COMPLETED", 8, 1)


def test_worker_failed_write_leaves_nothing(db: psycopg.Connection) -> None:
    store.apply_schema(db)
    bad = _synthetic("atomic-1", 0, (0.1, 0.1, 0.3, 0.5))
    bad["embeddings"] = [[0.0] * 3]  # wrong dimension: the INSERT into events fails after the COPY
    with pytest.raises(psycopg.errors.DataException):
        store.write_results(db, **bad)
    assert db.execute("SELECT count(*) FROM detections WHERE video_id = 'atomic-1'").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM videos WHERE video_id = 'atomic-1'").fetchone() == (0,)


def test_worker_mark_failed_removes_previous_rows(db: psycopg.Connection) -> None:
    store.apply_schema(db)
    store.write_results(db, **_synthetic("refail-1", 0, (0.1, 0.1, 0.3, 0.5)))
    store.mark_failed(db, video_id="refail-1", s3_key="refail-1.mp4", model_uri="m.pt", reason="unreadable video")
    assert db.execute("SELECT status, failure_reason FROM videos WHERE video_id = 'refail-1'").fetchone() == (
        "FAILED", "unreadable video")
    assert db.execute("SELECT count(*) FROM events WHERE video_id = 'refail-1'").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM detections WHERE video_id = 'refail-1'").fetchone() == (0,)


# What an RDS-managed master secret holds, exactly ("Password management with Amazon RDS and AWS Secrets
# Manager", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html): no endpoint.
RDS_MANAGED_SECRET = {"username": "deepsentinel", "password": "p w'\"x"}


def test_worker_dsn_from_rds_managed_secret_and_the_job_endpoint() -> None:
    """The secret RDS writes has only username and password; host, port and database come from the job."""
    dsn = store.dsn_from_secret(json.dumps(RDS_MANAGED_SECRET), host="db.example", port=5433, dbname="sentinel")
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    assert (params["host"], params["port"], params["user"], params["password"], params["dbname"],
            params["sslmode"]) == ("db.example", "5433", "deepsentinel", "p w'\"x", "sentinel", "require")
    with pytest.raises(RetryableError):
        store.dsn_from_secret("not json", host="db.example", port=5432, dbname="sentinel")
    with pytest.raises(RetryableError):
        store.dsn_from_secret(json.dumps({"username": "only"}), host="db.example", port=5432, dbname="sentinel")


def test_worker_endpoint_comes_from_the_job_not_from_extra_secret_keys() -> None:
    """A secret with more keys than RDS writes cannot move the connection elsewhere."""
    secret = {**RDS_MANAGED_SECRET, "host": "attacker.example", "port": 1, "dbname": "other"}
    params = psycopg.conninfo.conninfo_to_dict(
        store.dsn_from_secret(json.dumps(secret), host="db.example", port=5432, dbname="sentinel"))
    assert (params["host"], params["port"], params["dbname"]) == ("db.example", "5432", "sentinel")
