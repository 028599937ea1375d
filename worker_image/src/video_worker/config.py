"""Typed, frozen job configuration read from the environment the Batch job definition sets."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .errors import ConfigError

T = TypeVar("T", int, float)

# Defaults live here and only here (applied in ``from_env``).
DEFAULT_SAMPLE_FPS = 5.0
DEFAULT_BATCH_SIZE = 8
DEFAULT_CONF_THRESHOLD = 0.25
DEFAULT_IOU_THRESHOLD = 0.7
DEFAULT_IMGSZ = 640
DEFAULT_MAX_DET = 100
DEFAULT_EVENT_GAP_S = 1.0
DEFAULT_MIN_EVENT_FRAMES = 1
DEFAULT_QUEUE_SIZE = 4
DEFAULT_JPEG_QUALITY = 85
DEFAULT_DB_PORT = 5432


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """Everything one job needs. Built once by ``from_env``; never mutated."""

    video_id: str
    s3_key: str
    raw_bucket: str
    highlights_bucket: str
    #: Exactly one of the two database settings is set: the secret in AWS, a URL locally.
    #: The RDS-managed secret holds only username and password; the endpoint comes from the job
    #: definition (DB_HOST, DB_PORT, DB_NAME, read from the DB instance at deploy time).
    db_secret_arn: str | None = None
    database_url: str | None = None
    db_host: str | None = None
    db_port: int = DEFAULT_DB_PORT
    db_name: str | None = None
    #: ``s3://bucket/key.pt`` (production), a local ``.pt`` path, or an ultralytics YAML (untrained).
    model_uri: str
    sample_fps: float = DEFAULT_SAMPLE_FPS
    batch_size: int = DEFAULT_BATCH_SIZE
    #: None = "cuda" when torch sees a GPU, else "cpu" (resolved when the model loads).
    device: str | None = None
    conf_threshold: float = DEFAULT_CONF_THRESHOLD
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    #: Frames are scaled by ffmpeg so their long side is at most this, which is also YOLO's imgsz.
    imgsz: int = DEFAULT_IMGSZ
    max_det: int = DEFAULT_MAX_DET
    #: A class may vanish this long (detector flicker) before its event is closed.
    event_gap_s: float = DEFAULT_EVENT_GAP_S
    min_event_frames: int = DEFAULT_MIN_EVENT_FRAMES
    #: Bounded queue depth (in batches) between decode -> inference and inference -> upload.
    queue_size: int = DEFAULT_QUEUE_SIZE
    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    #: ffmpeg ``-hwaccel`` value (e.g. "cuda" for NVDEC on g5); None = software decode.
    ffmpeg_hwaccel: str | None = None
    #: ffmpeg ``-threads`` for decoding; 0 = ffmpeg's choice.
    decode_threads: int = 0
    #: torch intra-op threads on CPU; None = ultralytics' choice (cores - 1, leaving one to ffmpeg).
    torch_threads: int | None = None
    work_dir: str = tempfile.gettempdir()
    model_cache_dir: str = tempfile.gettempdir()
    #: Weights already on the host (the golden AMI's directory, mounted read-only by the job definition): an
    #: ``s3://`` MODEL_URI whose file name is there is not downloaded. None: always from S3 (or the cache).
    model_dir: str | None = None
    #: This attempt (AWS Batch sets AWS_BATCH_JOB_ATTEMPT, 1 for the first) and the job definition's
    #: attempts (JOB_ATTEMPTS). Without them (a local run) every attempt is the last.
    attempt: int = 1
    job_attempts: int = 1
    #: The video-events SNS topic (VIDEO_EVENTS_TOPIC_ARN): DONE/FAILED per video; None: no notifications.
    video_events_topic_arn: str | None = None
    #: AWS_BATCH_JOB_ID, for the notification and logs.
    job_id: str | None = None

    @property
    def final_attempt(self) -> bool:
        """A retryable failure now ends the video: Batch will not run the job again."""
        return self.attempt >= self.job_attempts

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerConfig:
        """Parse and validate; every problem is collected and raised once (ConfigError)."""
        problems: list[str] = []

        def req(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is required")
            return value

        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def num(name: str, parse: Callable[[str], T], default: T, minimum: T) -> T:
            raw = opt(name)
            if raw is None:
                return default
            try:
                value = parse(raw)
            except ValueError:
                problems.append(f"{name}={raw!r} is not a valid {parse.__name__}")
                return default
            if value < minimum:
                problems.append(f"{name}={raw!r} must be >= {minimum}")
            return value

        video_id, s3_key = req("VIDEO_ID"), req("S3_KEY")
        raw_bucket, highlights_bucket = req("RAW_BUCKET"), req("HIGHLIGHTS_BUCKET")
        model_uri = req("MODEL_URI")
        db_secret_arn, database_url = opt("DB_SECRET_ARN"), opt("DATABASE_URL")
        if db_secret_arn and database_url:
            problems.append("DB_SECRET_ARN and DATABASE_URL conflict: set only one")
        elif not (db_secret_arn or database_url):
            problems.append("one of DB_SECRET_ARN (AWS) or DATABASE_URL (local) is required")
        db_host, db_name = opt("DB_HOST"), opt("DB_NAME")
        if db_secret_arn and not (db_host and db_name):
            problems.append(
                "DB_SECRET_ARN needs DB_HOST and DB_NAME: the RDS-managed secret holds only username and password"
            )
        if "/" in video_id:
            problems.append("VIDEO_ID must not contain '/' (it is an S3 key prefix)")

        torch_threads_raw = opt("TORCH_THREADS")
        cfg = dict(
            video_id=video_id,
            s3_key=s3_key,
            raw_bucket=raw_bucket,
            highlights_bucket=highlights_bucket,
            db_secret_arn=db_secret_arn,
            database_url=database_url,
            db_host=db_host,
            db_port=num("DB_PORT", int, DEFAULT_DB_PORT, 1),
            db_name=db_name,
            model_uri=model_uri,
            sample_fps=num("SAMPLE_FPS", float, DEFAULT_SAMPLE_FPS, 0.01),
            batch_size=num("BATCH_SIZE", int, DEFAULT_BATCH_SIZE, 1),
            device=opt("DEVICE"),
            conf_threshold=num("CONF_THRESHOLD", float, DEFAULT_CONF_THRESHOLD, 0.0),
            iou_threshold=num("IOU_THRESHOLD", float, DEFAULT_IOU_THRESHOLD, 0.0),
            imgsz=num("IMGSZ", int, DEFAULT_IMGSZ, 32),
            max_det=num("MAX_DET", int, DEFAULT_MAX_DET, 1),
            event_gap_s=num("EVENT_GAP_S", float, DEFAULT_EVENT_GAP_S, 0.0),
            min_event_frames=num("MIN_EVENT_FRAMES", int, DEFAULT_MIN_EVENT_FRAMES, 1),
            queue_size=num("QUEUE_SIZE", int, DEFAULT_QUEUE_SIZE, 1),
            jpeg_quality=num("JPEG_QUALITY", int, DEFAULT_JPEG_QUALITY, 1),
            ffmpeg_hwaccel=opt("FFMPEG_HWACCEL"),
            decode_threads=num("DECODE_THREADS", int, 0, 0),
            torch_threads=None if torch_threads_raw is None else num("TORCH_THREADS", int, 1, 1),
            work_dir=opt("WORK_DIR") or tempfile.gettempdir(),
            model_cache_dir=opt("MODEL_CACHE_DIR") or tempfile.gettempdir(),
            model_dir=opt("MODEL_DIR"),
            attempt=num("AWS_BATCH_JOB_ATTEMPT", int, 1, 1),
            job_attempts=num("JOB_ATTEMPTS", int, 1, 1),
            video_events_topic_arn=opt("VIDEO_EVENTS_TOPIC_ARN"),
            job_id=opt("AWS_BATCH_JOB_ID"),
        )
        if problems:
            raise ConfigError("invalid job environment: " + "; ".join(problems))
        return cls(**cfg)  # type: ignore[arg-type]
