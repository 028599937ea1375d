"""Config parsing, the exit-code contract, and event building on synthetic detections."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from video_worker import exit_codes
from video_worker.config import WorkerConfig
from video_worker.detect import Detection
from video_worker.errors import BadInputError, ConfigError, RetryableError
from video_worker.events import (
    EMBED_CLASS_SLOTS, EMBED_FEATURES, EMBEDDING_DIM, EventTracker, build_events, embed_event,
)

BASE = {"VIDEO_ID": "v1", "S3_KEY": "k.mp4", "RAW_BUCKET": "raw", "HIGHLIGHTS_BUCKET": "hl",
        "DATABASE_URL": "postgresql://x", "MODEL_URI": "yolov8n.yaml"}


def test_worker_exit_codes_are_the_batch_contract() -> None:
    # The job definition says onExitCode "65" -> EXIT and retries otherwise: never change these.
    assert exit_codes.EXIT_BAD_INPUT == 65
    assert exit_codes.EXIT_RETRYABLE == 75
    assert BadInputError.exit_code == 65 and ConfigError.exit_code == 65
    assert RetryableError.exit_code == 75
    assert exit_codes.EXIT_INTERNAL not in (0, 65)


def test_worker_config_defaults() -> None:
    cfg = WorkerConfig.from_env(BASE)
    assert (cfg.sample_fps, cfg.batch_size, cfg.device, cfg.imgsz, cfg.conf_threshold) == (5.0, 8, None, 640, 0.25)
    with pytest.raises(AttributeError):
        cfg.video_id = "other"  # type: ignore[misc]  # frozen


def test_worker_config_collects_every_problem() -> None:
    env = {**BASE, "DB_SECRET_ARN": "arn:aws:secretsmanager:x", "SAMPLE_FPS": "fast", "BATCH_SIZE": "0"}
    del env["VIDEO_ID"]
    with pytest.raises(ConfigError) as err:
        WorkerConfig.from_env(env)
    msg = str(err.value)
    for fragment in ("VIDEO_ID is required", "DB_SECRET_ARN and DATABASE_URL conflict", "SAMPLE_FPS", "BATCH_SIZE"):
        assert fragment in msg


def test_worker_config_needs_a_database() -> None:
    env = dict(BASE)
    del env["DATABASE_URL"]
    with pytest.raises(ConfigError, match="DB_SECRET_ARN"):
        WorkerConfig.from_env(env)


def test_worker_config_secret_needs_the_database_endpoint() -> None:
    """The RDS-managed secret carries no endpoint, so a job with only DB_SECRET_ARN cannot connect."""
    env = {k: v for k, v in BASE.items() if k != "DATABASE_URL"}
    env["DB_SECRET_ARN"] = "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:rds!db-x"
    with pytest.raises(ConfigError, match="DB_SECRET_ARN needs DB_HOST and DB_NAME"):
        WorkerConfig.from_env(env)
    cfg = WorkerConfig.from_env({**env, "DB_HOST": "db.example", "DB_NAME": "deepsentinel"})
    assert (cfg.db_host, cfg.db_port, cfg.db_name) == ("db.example", 5432, "deepsentinel")


def _det(frame: int, cls: int, conf: float, box: tuple[float, float, float, float] = (0.1, 0.2, 0.3, 0.6)) -> Detection:
    return Detection(frame, frame / 5, cls, conf, *box)


NAMES = {0: "person", 2: "car"}


def test_worker_events_enter_and_leave() -> None:
    frames = [
        (0, 0.0, [_det(0, 0, 0.5)]),
        (1, 0.2, [_det(1, 0, 0.9), _det(1, 0, 0.4), _det(1, 2, 0.7)]),  # two people, a car
        (2, 0.4, [_det(2, 0, 0.6)]),  # car gone
        (3, 0.6, []),
        (4, 0.8, []),
        (5, 1.0, []),
        (6, 1.2, [_det(6, 0, 0.3)]),  # person back after 0.8 s > gap 0.4 s -> new event
    ]
    events = build_events(frames, names=NAMES, sample_fps=5, gap_s=0.4)
    assert [(e.class_name, e.start_s, e.end_s, e.peak_count) for e in events] == [
        ("person", 0.0, 0.4, 2), ("car", 0.2, 0.2, 1), ("person", 1.2, 1.2, 1)]
    first = events[0]
    assert first.best_confidence == 0.9 and first.best_frame_index == 1 and first.best_t_s == 0.2
    assert (first.frames_in_view, first.detection_count) == (3, 4)


def test_worker_events_tolerate_flicker_within_gap() -> None:
    frames = [(i, i / 5, [] if i in (2, 3) else [_det(i, 0, 0.5)]) for i in range(6)]
    events = build_events(frames, names=NAMES, sample_fps=5, gap_s=0.4)  # 2 missing frames tolerated
    assert len(events) == 1 and (events[0].start_frame, events[0].end_frame) == (0, 5)
    assert events[0].frames_in_view == 4
    assert len(build_events(frames, names=NAMES, sample_fps=5, gap_s=0.2)) == 2


def test_worker_tracker_returns_best_frame_image_when_event_closes() -> None:
    tracker = EventTracker(names=NAMES, sample_fps=5, gap_s=0.0)
    assert tracker.update(0, 0.0, [_det(0, 2, 0.4)], image="img0") == []
    assert tracker.update(1, 0.2, [_det(1, 2, 0.8)], image="img1") == []
    closed = tracker.update(2, 0.4, [], image="img2")
    assert [(e.class_name, img) for e, img in closed] == [("car", "img1")]
    assert tracker.finish() == []


def test_worker_min_event_frames_drops_blips() -> None:
    frames = [(0, 0.0, [_det(0, 0, 0.9)]), (1, 0.2, []), (2, 0.4, [])]
    assert build_events(frames, names=NAMES, sample_fps=5, gap_s=0, min_frames=2) == []


def test_worker_embedding_layout() -> None:
    (event,) = build_events([(i, i / 5, [_det(i, 2, 0.8)]) for i in range(10)], names=NAMES, sample_fps=5, gap_s=0)
    vec = embed_event(event, video_duration_s=10.0)
    assert len(vec) == EMBEDDING_DIM == EMBED_CLASS_SLOTS + len(EMBED_FEATURES)
    assert vec[:EMBED_CLASS_SLOTS].count(1.0) == 1 and vec[2] == 1.0
    feats = dict(zip(EMBED_FEATURES, vec[EMBED_CLASS_SLOTS:]))
    assert feats["best_confidence"] == pytest.approx(0.8)
    assert feats["end_frac"] == pytest.approx(1.8 / 10) and feats["coverage"] == 1.0
    assert feats["box_cx"] == pytest.approx(0.2) and feats["box_h"] == pytest.approx(0.4)
    assert all(0.0 <= v <= 1.0 for v in vec)


def test_worker_schema_vector_dimension_matches_embedding() -> None:
    sql = resources.files("video_worker").joinpath("schema.sql").read_text()
    assert set(re.findall(r"vector\((\d+)\)", sql)) == {str(EMBEDDING_DIM)}
    assert "CREATE EXTENSION IF NOT EXISTS vector" in sql
    assert re.search(r"USING hnsw \(embedding vector_cosine_ops\)", sql)
