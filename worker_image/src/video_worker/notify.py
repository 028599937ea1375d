"""Completion notifications: one message per video that ends, on the environment's video-events topic.

The message (JSON) is what subscribers (e-mail, the smoke check, the backend) read: ``video_id``,
``status`` (DONE | FAILED), counts, ``highlight_keys`` and, for FAILED, ``reason``. A notification that
cannot be sent is logged, never fatal: the video's outcome is already in the database.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .config import WorkerConfig
from .logs import log_event

DONE = "DONE"
FAILED = "FAILED"
SUBJECT_LIMIT = 100  # SNS subjects are at most 100 characters


def completion_message(
    cfg: WorkerConfig,
    status: str,
    *,
    events: int = 0,
    detections: int = 0,
    highlight_keys: tuple[str, ...] = (),
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "video_id": cfg.video_id,
        "status": status,
        "s3_key": cfg.s3_key,
        "events": events,
        "detections": detections,
        "highlights": len(highlight_keys),
        "highlight_keys": list(highlight_keys),
        "highlights_bucket": cfg.highlights_bucket,
        "reason": reason,
        "job_id": cfg.job_id,
        "attempt": cfg.attempt,
    }


def publish(sns: Any, cfg: WorkerConfig, message: dict[str, Any]) -> bool:
    if not cfg.video_events_topic_arn or sns is None:
        return False
    subject = f"video {message['video_id']}: {message['status']}"[:SUBJECT_LIMIT]
    try:
        sns.publish(
            TopicArn=cfg.video_events_topic_arn,
            Subject=subject,
            Message=json.dumps(message),
            MessageAttributes={"status": {"DataType": "String", "StringValue": message["status"]}},
        )
    except Exception as exc:  # noqa: BLE001 - botocore errors; the outcome is recorded already, it must stand
        log_event("notification_failed", level=logging.WARNING, video_id=cfg.video_id, reason=str(exc))
        return False
    log_event("notification_sent", video_id=cfg.video_id, status=message["status"])
    return True
