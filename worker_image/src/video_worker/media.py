"""Probe a video and decode only the sampled, scaled frames as raw rgb24 through a pipe.

Why a pipe of raw frames: ffmpeg does the expensive work (decode, frame-rate sampling, scaling) in
native code, and Python receives exactly the pixels YOLO needs, with no intermediate files.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np

from .errors import BadInputError


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    width: int
    height: int
    fps: float
    codec: str


@dataclass(frozen=True)
class Frame:
    index: int  # position among the sampled frames
    t_s: float  # seconds from the first frame, on the fps filter grid (index / rate)
    image: np.ndarray  # (H, W, 3) uint8, RGB


def _rate(text: str | None) -> float:
    try:
        return float(Fraction(text)) if text and text != "0/0" else 0.0
    except (ValueError, ZeroDivisionError):
        return 0.0


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """ffprobe the file; any reason it cannot be analysed becomes a BadInputError (exit 65)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise BadInputError("zero-length video file")
    try:
        meta = ffmpeg.probe(str(path))
    except ffmpeg.Error as exc:
        raise BadInputError(f"unreadable video: {_last_line(exc.stderr)}") from exc
    stream = next((s for s in meta.get("streams", []) if s.get("codec_type") == "video"), None)
    if stream is None:
        raise BadInputError("no video stream")
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    duration = float(stream.get("duration") or meta.get("format", {}).get("duration") or 0.0)
    if width <= 0 or height <= 0:
        raise BadInputError("video stream has no frame size")
    if duration <= 0 or fps <= 0:
        raise BadInputError(f"empty video (duration {duration:.3f}s, {fps:.3f} fps)")
    return VideoInfo(duration, width, height, fps, str(stream.get("codec_name", "?")))


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Scale so the long side is at most ``max_side`` (never upscale); even sizes for ffmpeg."""
    scale = min(1.0, max_side / max(width, height))
    w = max(2, round(width * scale / 2) * 2)
    h = max(2, round(height * scale / 2) * 2)
    return w, h


def decode_frames(
    path: str | os.PathLike[str],
    info: VideoInfo,
    *,
    sample_fps: float,
    max_side: int,
    hwaccel: str | None = None,
    threads: int = 0,
) -> Generator[Frame, None, None]:
    """Yield sampled frames. Raises BadInputError if ffmpeg fails or yields no frame at all.

    Timestamps assume the ``fps`` filter's output grid (frame i at i / rate), accurate to one
    sampling interval, which is the resolution events are measured in anyway.
    """
    rate = min(sample_fps, info.fps)  # never invent frames by duplicating
    w, h = output_size(info.width, info.height, max_side)
    input_args: dict[str, object] = {"threads": threads}
    if hwaccel:
        input_args["hwaccel"] = hwaccel  # frames come back to system memory for the CPU filters
    proc = (
        ffmpeg.input(str(path), **input_args)
        .filter("fps", fps=rate)
        .filter("scale", w, h)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .global_args(
            "-nostdin", "-hide_banner", "-loglevel", "error", *(("-filter_threads", str(threads)) if threads else ())
        )
        .run_async(pipe_stdout=True, pipe_stderr=True)
    )
    # stderr is drained on its own thread: a stream full of decode errors must not fill the pipe
    # buffer and deadlock ffmpeg while we block on stdout.
    err_tail: collections.deque[bytes] = collections.deque(maxlen=20)
    drain = threading.Thread(target=lambda: err_tail.extend(proc.stderr), daemon=True)
    drain.start()
    frame_bytes = w * h * 3
    count = 0
    try:
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            yield Frame(count, count / rate, np.frombuffer(buf, np.uint8).reshape(h, w, 3))
            count += 1
        rc = proc.wait()
        drain.join(timeout=5)  # the error text is complete once stderr hits EOF
        if rc != 0:
            raise BadInputError(f"ffmpeg decode failed (exit {rc}): {_last_line(b''.join(err_tail))}")
        if count == 0:
            raise BadInputError("no decodable frames")
    finally:
        # Early exit (consumer stopped, error downstream): do not leave ffmpeg running.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _last_line(stderr: bytes | None) -> str:
    lines = [ln for ln in (stderr or b"").decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else "no detail from ffmpeg"


__all__ = ["Frame", "VideoInfo", "decode_frames", "output_size", "probe_video"]
