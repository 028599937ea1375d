"""PostgreSQL access (psycopg 3). Every function takes an open connection so tests can pass their own.

Results are written in ONE transaction (video row + detections + events): the backend never sees a
half-analysed video, and a Batch retry simply replaces the previous attempt's rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from .detect import Detection
from .errors import RetryableError
from .events import Event

#: Serialises concurrent workers applying the schema (CREATE EXTENSION/INDEX IF NOT EXISTS can race).
SCHEMA_LOCK_KEY = 0x5E57_1E1  # arbitrary, stable

Connect = Callable[[], psycopg.Connection]


@dataclass(frozen=True)
class VideoRow:
    video_id: str
    s3_key: str
    model_uri: str
    duration_s: float
    width: int
    height: int
    source_fps: float
    codec: str
    sample_fps: float
    frames_analyzed: int


def schema_sql() -> str:
    return resources.files("video_worker").joinpath("schema.sql").read_text(encoding="utf-8")


def dsn_from_secret(secret_string: str, *, host: str, port: int, dbname: str) -> str:
    """Credentials from the RDS-managed secret (exactly {"username", "password"}), the endpoint from the
    job definition. TLS is required (the parameter group forces SSL; libpq ignores sslmode on a Unix socket)."""
    try:
        s = json.loads(secret_string)
        return make_conninfo(
            host=host,
            port=str(port),
            user=s["username"],
            password=s["password"],
            dbname=dbname,
            sslmode="require",
            connect_timeout="10",
        )
    except (ValueError, KeyError, TypeError) as exc:
        # A malformed secret will not fix itself, but it is infrastructure, not the video: let the
        # job definition retry and the alarm fire rather than mark the video FAILED.
        raise RetryableError(f"database secret is malformed: {type(exc).__name__}: {exc}") from exc


def resolve_dsn(
    *,
    db_secret_arn: str | None,
    database_url: str | None,
    secrets: Any,
    host: str | None = None,
    port: int = 5432,
    dbname: str | None = None,
) -> str:
    if database_url:
        return database_url
    assert db_secret_arn and host and dbname, "config validation guarantees the secret with its endpoint"
    try:
        value = secrets.get_secret_value(SecretId=db_secret_arn)["SecretString"]
    except Exception as exc:  # botocore errors
        raise RetryableError(f"reading database secret failed: {exc}") from exc
    return dsn_from_secret(value, host=host, port=port, dbname=dbname)


def connector(dsn: str) -> Connect:
    def connect() -> psycopg.Connection:
        return psycopg.connect(dsn, connect_timeout=10)

    return connect


def apply_schema(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        conn.execute(schema_sql())


_UPSERT_VIDEO = """
INSERT INTO videos (video_id, s3_key, status, failure_reason, model_uri, started_at, updated_at)
VALUES (%(video_id)s, %(s3_key)s, %(status)s, %(reason)s, %(model_uri)s, now(), now())
ON CONFLICT (video_id) DO UPDATE SET
    s3_key = EXCLUDED.s3_key, status = EXCLUDED.status, failure_reason = EXCLUDED.failure_reason,
    model_uri = EXCLUDED.model_uri,
    started_at = COALESCE(videos.started_at, EXCLUDED.started_at), updated_at = now()
"""


def mark_processing(conn: psycopg.Connection, *, video_id: str, s3_key: str, model_uri: str) -> None:
    with conn.transaction():
        conn.execute(
            _UPSERT_VIDEO,
            dict(video_id=video_id, s3_key=s3_key, status="PROCESSING", reason=None, model_uri=model_uri),
        )


def mark_failed(conn: psycopg.Connection, *, video_id: str, s3_key: str, model_uri: str, reason: str) -> None:
    """FAILED with the reason, and no detections/events left behind for this video."""
    with conn.transaction():
        conn.execute(
            _UPSERT_VIDEO,
            dict(video_id=video_id, s3_key=s3_key, status="FAILED", reason=reason[:2000], model_uri=model_uri),
        )
        conn.execute("UPDATE videos SET completed_at = now() WHERE video_id = %s", (video_id,))
        conn.execute("DELETE FROM events WHERE video_id = %s", (video_id,))
        conn.execute("DELETE FROM detections WHERE video_id = %s", (video_id,))


def vector_literal(values: Sequence[float]) -> str:
    """pgvector's text form; avoids a client-side adapter dependency."""
    return "[" + ",".join(f"{v:.6g}" for v in values) + "]"


def write_results(
    conn: psycopg.Connection,
    *,
    video: VideoRow,
    detections: Sequence[Detection],
    events: Sequence[Event],
    embeddings: Sequence[Sequence[float]],
    names: dict[int, str],
) -> None:
    if len(events) != len(embeddings):
        raise ValueError("one embedding per event")
    with conn.transaction():
        conn.execute(
            _UPSERT_VIDEO,
            dict(
                video_id=video.video_id, s3_key=video.s3_key, status="COMPLETED", reason=None, model_uri=video.model_uri
            ),
        )
        conn.execute(
            """UPDATE videos SET duration_s = %s, width = %s, height = %s, source_fps = %s, codec = %s,
                   sample_fps = %s, frames_analyzed = %s, detection_count = %s, event_count = %s,
                   completed_at = now()
               WHERE video_id = %s""",
            (
                video.duration_s,
                video.width,
                video.height,
                video.source_fps,
                video.codec,
                video.sample_fps,
                video.frames_analyzed,
                len(detections),
                len(events),
                video.video_id,
            ),
        )
        # A retried job replaces its previous attempt's rows instead of duplicating them.
        conn.execute("DELETE FROM events WHERE video_id = %s", (video.video_id,))
        conn.execute("DELETE FROM detections WHERE video_id = %s", (video.video_id,))
        with conn.cursor() as cur:
            # COPY: an hour at 5 fps is tens of thousands of rows; row-by-row INSERTs would dominate.
            with cur.copy(
                "COPY detections (video_id, frame_index, t_s, class_id, class_name, confidence,"
                " x1, y1, x2, y2) FROM STDIN"
            ) as copy:
                for d in detections:
                    copy.write_row(
                        (
                            video.video_id,
                            d.frame_index,
                            d.t_s,
                            d.class_id,
                            names.get(d.class_id, str(d.class_id)),
                            d.confidence,
                            d.x1,
                            d.y1,
                            d.x2,
                            d.y2,
                        )
                    )
            cur.executemany(
                """INSERT INTO events (video_id, class_id, class_name, start_s, end_s, peak_count,
                       best_confidence, best_frame_index, best_t_s, best_box, frames_in_view,
                       detection_count, highlight_key, embedding)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::vector)""",
                [
                    (
                        video.video_id,
                        e.class_id,
                        e.class_name,
                        e.start_s,
                        e.end_s,
                        e.peak_count,
                        e.best_confidence,
                        e.best_frame_index,
                        e.best_t_s,
                        list(e.best_box),
                        e.frames_in_view,
                        e.detection_count,
                        e.highlight_key,
                        vector_literal(emb),
                    )
                    for e, emb in zip(events, embeddings, strict=True)
                ],
            )


def nearest_events(
    conn: psycopg.Connection, embedding: Sequence[float], *, limit: int = 5
) -> list[tuple[int, str, str, float]]:
    """(event id, video id, class name, cosine distance), nearest first; served by the HNSW index."""
    rows = conn.execute(
        """SELECT id, video_id, class_name, embedding <=> %s::vector AS distance
           FROM events ORDER BY embedding <=> %s::vector LIMIT %s""",
        (vector_literal(embedding), vector_literal(embedding), limit),
    ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]
