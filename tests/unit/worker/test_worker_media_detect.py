"""Real ffmpeg decoding and a real (untrained) ultralytics model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import psutil
import pytest

from video_worker.detect import resolve_model_path
from video_worker.errors import BadInputError, ConfigError
from video_worker.media import decode_frames, output_size, probe_video


def test_worker_probe_reads_generated_video(videos: dict[str, Path]) -> None:
    info = probe_video(videos["good"])
    assert (info.width, info.height, info.fps, info.codec) == (320, 240, 25.0, "h264")
    assert info.duration_s == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize(("kind", "reason"), [("empty", "zero-length"), ("corrupt", "unreadable"),
                                              ("audio", "no video stream")])
def test_worker_probe_rejects_bad_input(videos: dict[str, Path], kind: str, reason: str) -> None:
    with pytest.raises(BadInputError, match=reason):
        probe_video(videos[kind])


def test_worker_output_size_keeps_aspect_and_never_upscales() -> None:
    assert output_size(1920, 1080, 640) == (640, 360)
    assert output_size(1080, 1920, 640) == (360, 640)
    assert output_size(320, 240, 640) == (320, 240)


def test_worker_decode_samples_and_scales(videos: dict[str, Path]) -> None:
    info = probe_video(videos["good"])
    frames = list(decode_frames(videos["good"], info, sample_fps=5, max_side=160))
    assert len(frames) == 15
    assert [f.index for f in frames] == list(range(15))
    assert frames[5].t_s == pytest.approx(1.0)
    img = frames[0].image
    assert img.shape == (120, 160, 3) and img.dtype == np.uint8
    # testsrc's top colour bars are saturated: some pixel has red high with blue low (RGB order).
    assert ((img[..., 0] > 200) & (img[..., 2] < 60)).any()


# decode_frames' own bound on ending early: it kills ffmpeg, waits for it and joins its stderr reader for at most 5 s.
DECODE_STDERR_JOIN_SECONDS = 5


def test_worker_decode_stops_ffmpeg_when_consumer_stops(videos: dict[str, Path]) -> None:
    """A consumer that stops early (gen.close()) must not hang or leave a process behind: close returns within
    decode_frames' own bound, the ffmpeg child is gone (killed and reaped: no child of this process is left that was
    not there before), and its stderr reader thread has ended (its join did not run into the timeout)."""
    me = psutil.Process()
    children_before = {child.pid for child in me.children(recursive=True)}
    threads_before = set(threading.enumerate())
    info = probe_video(videos["good"])
    gen = decode_frames(videos["good"], info, sample_fps=25, max_side=320)
    next(gen)
    (decoder,) = [child for child in me.children(recursive=True) if child.pid not in children_before]
    assert decoder.name() == "ffmpeg"

    closer = threading.Thread(target=gen.close)
    closer.start()
    closer.join(timeout=DECODE_STDERR_JOIN_SECONDS + 5)  # bounded, so a hang fails the test instead of stalling it
    assert not closer.is_alive(), "gen.close() did not return"
    assert {child.pid for child in me.children(recursive=True)} == children_before
    assert not decoder.is_running()
    assert set(threading.enumerate()) - threads_before == set()


def test_worker_detector_batches(detector: Any, videos: dict[str, Path]) -> None:
    info = probe_video(videos["good"])
    frames = list(decode_frames(videos["good"], info, sample_fps=2, max_side=320))
    results = detector.detect(frames)
    assert len(results) == len(frames)
    dets = [d for per in results for d in per]
    assert dets, "the untrained model yields boxes at the test threshold"
    assert all(0.0 <= v <= 1.0 for d in dets for v in (d.x1, d.y1, d.x2, d.y2))
    assert all(d.x1 <= d.x2 and d.y1 <= d.y2 for d in dets)
    assert {d.frame_index for d in dets} <= {f.index for f in frames}
    assert all(0 <= d.class_id < len(detector.names) for d in dets)
    assert detector.detect([]) == []


def test_worker_cpu_warmup_predicts_one_frame_and_a_gpu_warmup_the_whole_batch() -> None:
    """On a CPU the warm-up builds the predictor with one frame (nothing to allocate per batch); on a GPU with the
    batch the video will use. A shape already warmed is not predicted again."""
    from video_worker.detect import Detector

    predicted: list[tuple[int, tuple[int, ...]]] = []

    class CountingModel:  # what the warm-up hands ultralytics' predict
        names = {0: "person"}

        def predict(self, images: list[np.ndarray], **kwargs: Any) -> list[Any]:
            predicted.append((len(images), images[0].shape))
            return []

    for device in ("cpu", "cuda:0"):
        warming = Detector(CountingModel(), device=device, imgsz=64, conf=0.5, iou=0.7, max_det=5)
        warming.warmup(36, 64, 4)
        warming.warmup(36, 64, 4)
    assert predicted == [(1, (36, 64, 3)), (4, (36, 64, 3))]


def test_worker_model_uri_from_s3_is_cached(aws: None, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="ap-northeast-2")
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
    s3.put_object(Bucket="models", Key="yolo/best.pt", Body=b"weights")
    path = resolve_model_path("s3://models/yolo/best.pt", s3=s3, cache_dir=str(tmp_path))
    assert Path(path).read_bytes() == b"weights"
    s3.delete_object(Bucket="models", Key="yolo/best.pt")
    assert resolve_model_path("s3://models/yolo/best.pt", s3=s3, cache_dir=str(tmp_path)) == path  # cached
    assert resolve_model_path("yolov8n.yaml", s3=s3, cache_dir=str(tmp_path)) == "yolov8n.yaml"
    with pytest.raises(ConfigError):
        resolve_model_path("s3://models/not-weights.txt", s3=s3, cache_dir=str(tmp_path))
    with pytest.raises(ConfigError):
        resolve_model_path(str(tmp_path / "missing.pt"), s3=s3, cache_dir=str(tmp_path))


def test_worker_decode_threads_share_cpu_with_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    from video_worker import pipeline

    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 4)
    assert pipeline.decode_threads_for(0) == 0  # GPU: ffmpeg decides
    assert pipeline.decode_threads_for(3) == 1  # CPU: the cores torch leaves free
    assert pipeline.decode_threads_for(8) == 1
