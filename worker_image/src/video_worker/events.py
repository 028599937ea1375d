"""Per-frame detections -> events: one object class entering and later leaving the view.

A class is "in view" in a sampled frame when at least one box of that class was detected. An event
opens on the first such frame and closes once the class has been absent for longer than the gap
tolerance (absorbs detector flicker). The tracker is incremental so highlights can be uploaded while
inference is still running; ``build_events`` is the batch form of the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .detect import Detection

#: The embedding's class one-hot has this many slots (COCO's 80 classes map 1:1; a custom model with
#: more classes wraps around with ``class_id % EMBED_CLASS_SLOTS``).
EMBED_CLASS_SLOTS = 80
#: Features after the one-hot, in order. Everything is scaled to roughly 0..1 so no feature dominates
#: the cosine distance except the class, which is the first thing a "similar event" query should match.
EMBED_FEATURES: tuple[str, ...] = (
    "best_confidence",  # max detector confidence within the event
    "peak_count_log",  # log1p(peak simultaneous count) / log1p(100), clipped to 1
    "mean_count_ratio",  # mean count over frames in view / peak count (steady crowd vs one spike)
    "duration_log",  # log1p(duration seconds) / log1p(3600), clipped to 1
    "start_frac",  # start time / video duration
    "end_frac",  # end time / video duration
    "coverage",  # frames in view / frames spanned (how continuous the sighting was)
    "box_cx",  # best box centre x (0..1 of frame width)
    "box_cy",  # best box centre y
    "box_w",  # best box width
    "box_h",  # best box height
    "box_sqrt_area",  # sqrt(w * h): apparent object size
)
EMBEDDING_DIM = EMBED_CLASS_SLOTS + len(EMBED_FEATURES)  # 92; schema.sql declares vector(92)


@dataclass(frozen=True)
class Event:
    class_id: int
    class_name: str
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    peak_count: int
    best_confidence: float
    best_frame_index: int
    best_t_s: float
    best_box: tuple[float, float, float, float]  # normalised x1, y1, x2, y2 of the best detection
    frames_in_view: int
    detection_count: int
    highlight_key: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class _Open:
    """Mutable state of an event still in progress (private to the tracker)."""

    class_id: int
    start_frame: int
    start_s: float
    last_frame: int
    last_s: float
    peak_count: int = 0
    best: Detection | None = None
    best_image: Any = None
    frames_in_view: int = 0
    detection_count: int = 0
    counts: list[int] = field(default_factory=list)


class EventTracker:
    """Feed frames in order with ``update``; closed events come back with their best frame image."""

    def __init__(self, *, names: dict[int, str], sample_fps: float, gap_s: float, min_frames: int = 1) -> None:
        self._names = names
        # Absent for more than this many consecutive sampled frames -> the class left the view.
        self._gap_frames = max(0, round(gap_s * sample_fps))
        self._min_frames = min_frames
        self._open: dict[int, _Open] = {}

    def update(
        self, frame_index: int, t_s: float, detections: Sequence[Detection], image: Any = None
    ) -> list[tuple[Event, Any]]:
        by_class: dict[int, list[Detection]] = {}
        for det in detections:
            by_class.setdefault(det.class_id, []).append(det)
        closed = [
            self._close(cid)
            for cid, ev in list(self._open.items())
            if cid not in by_class and frame_index - ev.last_frame > self._gap_frames
        ]
        for cid, dets in by_class.items():
            ev = self._open.get(cid)
            if ev is None:
                ev = self._open[cid] = _Open(cid, frame_index, t_s, frame_index, t_s)
            ev.last_frame, ev.last_s = frame_index, t_s
            ev.frames_in_view += 1
            ev.detection_count += len(dets)
            ev.peak_count = max(ev.peak_count, len(dets))
            top = max(dets, key=lambda d: d.confidence)
            if ev.best is None or top.confidence > ev.best.confidence:
                # Keep only the best frame's pixels: memory stays bounded by the open classes.
                ev.best, ev.best_image = top, image
        return [c for c in closed if c is not None]

    def finish(self) -> list[tuple[Event, Any]]:
        closed = [self._close(cid) for cid in list(self._open)]
        return [c for c in closed if c is not None]

    def _close(self, class_id: int) -> tuple[Event, Any] | None:
        ev = self._open.pop(class_id)
        if ev.frames_in_view < self._min_frames or ev.best is None:
            return None
        b = ev.best
        event = Event(
            class_id=class_id,
            class_name=self._names.get(class_id, str(class_id)),
            start_frame=ev.start_frame,
            end_frame=ev.last_frame,
            start_s=ev.start_s,
            end_s=ev.last_s,
            peak_count=ev.peak_count,
            best_confidence=b.confidence,
            best_frame_index=b.frame_index,
            best_t_s=b.t_s,
            best_box=(b.x1, b.y1, b.x2, b.y2),
            frames_in_view=ev.frames_in_view,
            detection_count=ev.detection_count,
        )
        return event, ev.best_image


def build_events(
    frames: Iterable[tuple[int, float, Sequence[Detection]]],
    *,
    names: dict[int, str],
    sample_fps: float,
    gap_s: float,
    min_frames: int = 1,
) -> list[Event]:
    """Batch form of the tracker, ordered by start time then class."""
    tracker = EventTracker(names=names, sample_fps=sample_fps, gap_s=gap_s, min_frames=min_frames)
    events = [e for idx, t, dets in frames for e, _ in tracker.update(idx, t, dets)]
    events += [e for e, _ in tracker.finish()]
    return sorted(events, key=lambda e: (e.start_s, e.class_id))


def embed_event(event: Event, *, video_duration_s: float) -> list[float]:
    """Fixed-length (EMBEDDING_DIM) feature vector; see EMBED_FEATURES for the layout."""
    vec = [0.0] * EMBEDDING_DIM
    vec[event.class_id % EMBED_CLASS_SLOTS] = 1.0
    x1, y1, x2, y2 = event.best_box
    w, h = max(0.0, x2 - x1), max(0.0, y2 - y1)
    spanned = event.end_frame - event.start_frame + 1
    dur = max(video_duration_s, 1e-6)
    feats = (
        event.best_confidence,
        min(1.0, math.log1p(event.peak_count) / math.log1p(100)),
        (event.detection_count / event.frames_in_view) / event.peak_count if event.peak_count else 0.0,
        min(1.0, math.log1p(max(0.0, event.duration_s)) / math.log1p(3600)),
        min(1.0, event.start_s / dur),
        min(1.0, event.end_s / dur),
        event.frames_in_view / spanned,
        (x1 + x2) / 2,
        (y1 + y2) / 2,
        w,
        h,
        math.sqrt(w * h),
    )
    vec[EMBED_CLASS_SLOTS:] = [float(min(1.0, max(0.0, f))) for f in feats]
    return vec
