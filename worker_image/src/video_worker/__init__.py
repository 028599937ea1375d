"""DeepSentinel video worker: the container AWS Batch runs once per uploaded video.

Pipeline: S3 object -> temp file -> ffprobe -> sampled, scaled rgb24 frames through a pipe ->
batched YOLO -> per-class events -> JPEG highlights in S3 + one PostgreSQL transaction.
Entry point: ``python -m video_worker`` (see ``__main__``).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
