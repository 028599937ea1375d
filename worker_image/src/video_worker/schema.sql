-- DeepSentinel video-analysis schema (PostgreSQL 16 + pgvector >= 0.5).
-- Applied by every worker at start, so every statement is idempotent. The backend reads these tables.
-- Keep vector(92) in step with video_worker.events.EMBEDDING_DIM (a unit test checks it).

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS videos (
    video_id         text PRIMARY KEY,
    s3_key           text NOT NULL,
    status           text NOT NULL CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')),
    failure_reason   text,
    duration_s       double precision,
    width            integer,
    height           integer,
    source_fps       double precision,
    codec            text,
    sample_fps       double precision,
    frames_analyzed  integer,
    detection_count  integer,
    event_count      integer,
    model_uri        text,
    started_at       timestamptz,
    completed_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per box per sampled frame. Coordinates are normalised to 0..1 of the frame.
CREATE TABLE IF NOT EXISTS detections (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    video_id     text NOT NULL REFERENCES videos (video_id) ON DELETE CASCADE,
    frame_index  integer NOT NULL,
    t_s          double precision NOT NULL,
    class_id     integer NOT NULL,
    class_name   text NOT NULL,
    confidence   real NOT NULL,
    x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL
);
CREATE INDEX IF NOT EXISTS detections_video_frame_idx ON detections (video_id, frame_index);

-- One row per object class entering and leaving the view.
-- embedding: 80-slot class one-hot + 12 scaled features (see video_worker/events.py EMBED_FEATURES).
CREATE TABLE IF NOT EXISTS events (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    video_id          text NOT NULL REFERENCES videos (video_id) ON DELETE CASCADE,
    class_id          integer NOT NULL,
    class_name        text NOT NULL,
    start_s           double precision NOT NULL,
    end_s             double precision NOT NULL,
    peak_count        integer NOT NULL,
    best_confidence   real NOT NULL,
    best_frame_index  integer NOT NULL,
    best_t_s          double precision NOT NULL,
    best_box          real[] NOT NULL,
    frames_in_view    integer NOT NULL,
    detection_count   integer NOT NULL,
    highlight_key     text,
    embedding         vector(92) NOT NULL,
    CHECK (end_s >= start_s)
);
CREATE INDEX IF NOT EXISTS events_video_start_idx ON events (video_id, start_s);
CREATE INDEX IF NOT EXISTS events_class_idx ON events (class_name);
-- Approximate nearest-neighbour search ("events like this one"): ORDER BY embedding <=> $1.
CREATE INDEX IF NOT EXISTS events_embedding_hnsw_idx ON events USING hnsw (embedding vector_cosine_ops);
