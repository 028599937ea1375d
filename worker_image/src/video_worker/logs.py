"""One JSON object per log line: CloudWatch Logs Insights can filter on any field."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

logger = logging.getLogger("video_worker")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = getattr(record, "fields", None) or {"msg": record.getMessage()}
        payload = {"level": record.levelname.lower(), "logger": record.name, **payload}
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("ultralytics").setLevel(logging.WARNING)  # per-call banners are noise here


def log_event(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, event, extra={"fields": {"event": event, **fields}})
