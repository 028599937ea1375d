"""The job: download -> probe -> (decode || inference || upload) -> one DB transaction.

Decode (ffmpeg, own thread), inference (this thread) and highlight upload (own thread) overlap through
bounded queues, so the GPU is fed while ffmpeg decodes the next batch and S3 latency never stalls it;
the bounds cap memory when one stage is slower than the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from . import store
from .config import WorkerConfig
from .detect import Detection, Detector
from .errors import BadInputError, InputAccessDenied, RetryableError
from .events import Event, EventTracker, embed_event
from .highlights import delete_highlights, encode_jpeg, highlight_key, upload_highlight
from .logs import log_event
from .media import Frame, VideoInfo, decode_frames, output_size, probe_video

_DONE = object()  # end-of-stream marker on the frame queue


class StageTimer:
    """Seconds per stage, summed across threads (so stages may add up to more than the wall time)."""

    def __init__(self) -> None:
        self._totals: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._totals[stage] += seconds

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {k: round(v, 4) for k, v in self._totals.items()}


@dataclass(frozen=True)
class Analysis:
    info: VideoInfo
    frames: int
    detections: list[Detection]
    events: list[Event]


@dataclass(frozen=True)
class RunResult:
    video_id: str
    status: str
    frames: int
    detections: int
    events: tuple[Event, ...]
    highlight_keys: tuple[str, ...]
    wall_s: float
    timings: dict[str, float]


@contextlib.contextmanager
def _db(action: str) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        raise RetryableError(f"database error while {action}: {type(exc).__name__}: {exc}") from exc


def download_video(s3: Any, *, bucket: str, key: str, dest: Path) -> Path:
    """Stream the object to ``dest`` (1 MiB chunks: memory stays flat for multi-GB videos)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with open(dest, "wb") as out:
            shutil.copyfileobj(body, out, length=1 << 20)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404"):
            # The upload is gone: a retry cannot make it appear, so it is bad input, not infra.
            raise BadInputError(f"video object s3://{bucket}/{key} does not exist") from exc
        if code in ("AccessDenied", "403"):
            raise InputAccessDenied(
                f"access denied to s3://{bucket}/{key}: the job role needs s3:GetObject on "
                "the object and s3:ListBucket on the bucket (without ListBucket S3 also "
                "answers a missing key with 403)"
            ) from exc
        raise RetryableError(f"S3 download failed ({code}): {exc}") from exc
    except (BotoCoreError, OSError) as exc:
        raise RetryableError(f"S3 download failed: {type(exc).__name__}: {exc}") from exc
    return dest


def run(cfg: WorkerConfig, *, s3: Any, connect: store.Connect, load_detector: Callable[[], Detector]) -> RunResult:
    """Analyse one video. Raises BadInputError (video marked FAILED) or RetryableError.

    `load_detector` is called once, when the video is downloaded and ffprobe has read it: a bad upload fails before
    the model is fetched and torch is loaded (seconds on a CPU, more with CUDA on a GPU instance)."""
    started = time.perf_counter()
    timer = StageTimer()
    with timer.stage("db_prepare"), _db("preparing the database"), connect() as conn:
        store.apply_schema(conn)
        store.mark_processing(conn, video_id=cfg.video_id, s3_key=cfg.s3_key, model_uri=cfg.model_uri)

    uploaded: list[str] = []
    try:
        # Everything on disk lives in this directory and is removed on success AND failure.
        with tempfile.TemporaryDirectory(prefix="video-worker-", dir=cfg.work_dir) as tmp:
            with timer.stage("download"):
                path = download_video(s3, bucket=cfg.raw_bucket, key=cfg.s3_key, dest=Path(tmp) / "input")
            with timer.stage("probe"):
                info = probe_video(path)
            detector = load_detector()
            analysis = _analyse(cfg, path, info, s3=s3, detector=detector, timer=timer, uploaded=uploaded)
    except BadInputError as exc:
        # Nothing partial survives a bad video: highlights removed, detections/events deleted.
        delete_highlights(s3, bucket=cfg.highlights_bucket, keys=uploaded)
        with _db("recording the failure"), connect() as conn:
            store.mark_failed(conn, video_id=cfg.video_id, s3_key=cfg.s3_key, model_uri=cfg.model_uri, reason=str(exc))
        log_event("video_failed", video_id=cfg.video_id, reason=str(exc))
        raise

    embeddings = [embed_event(e, video_duration_s=info.duration_s) for e in analysis.events]
    with timer.stage("db_write"), _db("writing results"), connect() as conn:
        store.write_results(
            conn,
            video=store.VideoRow(
                video_id=cfg.video_id,
                s3_key=cfg.s3_key,
                model_uri=cfg.model_uri,
                duration_s=info.duration_s,
                width=info.width,
                height=info.height,
                source_fps=info.fps,
                codec=info.codec,
                sample_fps=min(cfg.sample_fps, info.fps),
                frames_analyzed=analysis.frames,
            ),
            detections=analysis.detections,
            events=analysis.events,
            embeddings=embeddings,
            names=detector.names,
        )
    wall = time.perf_counter() - started
    timings = timer.snapshot()
    log_event(
        "timings",
        video_id=cfg.video_id,
        status="COMPLETED",
        frames=analysis.frames,
        detections=len(analysis.detections),
        events=len(analysis.events),
        highlights=len(uploaded),
        wall_s=round(wall, 3),
        frames_per_s=round(analysis.frames / wall, 2) if wall > 0 else None,
        stages_s=timings,
    )
    return RunResult(
        video_id=cfg.video_id,
        status="COMPLETED",
        frames=analysis.frames,
        detections=len(analysis.detections),
        events=tuple(analysis.events),
        highlight_keys=tuple(uploaded),
        wall_s=wall,
        timings=timings,
    )


def decode_threads_for(torch_cpu_threads: int) -> int:
    """On a GPU (0 torch CPU threads) ffmpeg picks its own thread count. On CPU, torch and ffmpeg
    share the cores: ffmpeg gets the cores torch does not use, or they thrash each other (measured:
    inference 40% slower with both at full width on 2 cores)."""
    if torch_cpu_threads <= 0:
        return 0
    return max(1, (os.cpu_count() or 1) - torch_cpu_threads)


def _analyse(
    cfg: WorkerConfig,
    path: Path,
    info: VideoInfo,
    *,
    s3: Any,
    detector: Detector,
    timer: StageTimer,
    uploaded: list[str],
) -> Analysis:
    rate = min(cfg.sample_fps, info.fps)
    width, height = output_size(info.width, info.height, cfg.imgsz)
    with timer.stage("warmup"):
        detector.warmup(height, width, cfg.batch_size)

    frame_q: queue.Queue[Any] = queue.Queue(maxsize=cfg.queue_size)
    upload_q: queue.Queue[Any] = queue.Queue(maxsize=cfg.queue_size * cfg.batch_size)
    stop = threading.Event()
    errors: list[BaseException] = []

    def put(q: queue.Queue[Any], item: Any) -> bool:
        # Blocking put that gives up once another stage has failed (no thread waits forever).
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    decode_threads = cfg.decode_threads or decode_threads_for(detector.cpu_threads)

    def decode_stage() -> None:
        frames = decode_frames(
            path,
            info,
            sample_fps=cfg.sample_fps,
            max_side=cfg.imgsz,
            hwaccel=cfg.ffmpeg_hwaccel,
            threads=decode_threads,
        )
        batch: list[Frame] = []
        try:
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                timer.add("decode", time.perf_counter() - t0)
                if frame is None:
                    break
                batch.append(frame)
                if len(batch) == cfg.batch_size:
                    with timer.stage("decode_blocked"):  # inference is the bottleneck: good
                        if not put(frame_q, batch):
                            return
                    batch = []
            if batch:
                put(frame_q, batch)
            put(frame_q, _DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            put(frame_q, exc)
        finally:
            frames.close()  # kills ffmpeg if we stopped early

    def upload_stage() -> None:
        while not stop.is_set():
            try:
                item = upload_q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                return
            key, image, box = item
            try:
                with timer.stage("upload"):
                    upload_highlight(
                        s3,
                        bucket=cfg.highlights_bucket,
                        key=key,
                        body=encode_jpeg(image, box=box, quality=cfg.jpeg_quality),
                    )
                uploaded.append(key)
            except BaseException as exc:  # noqa: BLE001 - the main thread re-raises it (submit, next_batch)
                errors.append(exc)
                stop.set()
                return

    def submit(event: Event, image: np.ndarray | None) -> Event:
        event = dataclasses.replace(event, highlight_key=highlight_key(cfg.video_id, len(events), event))
        if image is not None and not put(upload_q, (event.highlight_key, image, event.best_box)):
            raise errors[0] if errors else RuntimeError("upload stage stopped")
        return event

    def next_batch() -> Any:
        while True:
            try:
                return frame_q.get(timeout=0.1)
            except queue.Empty:
                if errors:  # the upload stage failed: stop waiting for frames
                    raise errors[0] from None
                if not decoder.is_alive() and frame_q.empty():
                    raise RuntimeError("decode stage ended without a result") from None

    tracker = EventTracker(
        names=detector.names, sample_fps=rate, gap_s=cfg.event_gap_s, min_frames=cfg.min_event_frames
    )
    detections: list[Detection] = []
    events: list[Event] = []
    frame_count = 0
    decoder = threading.Thread(target=decode_stage, name="decode", daemon=True)
    uploader = threading.Thread(target=upload_stage, name="upload", daemon=True)
    decoder.start()
    uploader.start()
    try:
        while True:
            with timer.stage("inference_wait"):  # time starved of frames: decode is the bottleneck
                item = next_batch()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            with timer.stage("inference"):
                per_frame = detector.detect(item)
            with timer.stage("events"):
                for frame, dets in zip(item, per_frame, strict=True):
                    detections.extend(dets)
                    for event, image in tracker.update(frame.index, frame.t_s, dets, frame.image):
                        events.append(submit(event, image))
            frame_count += len(item)
            if errors:
                raise errors[0]
        for event, image in tracker.finish():
            events.append(submit(event, image))
        put(upload_q, None)
        with timer.stage("upload_drain"):  # upload time NOT hidden behind inference
            uploader.join()
        if errors:
            raise errors[0]
    finally:
        stop.set()
        decoder.join(timeout=30)
        uploader.join(timeout=30)
    return Analysis(info=info, frames=frame_count, detections=detections, events=events)
