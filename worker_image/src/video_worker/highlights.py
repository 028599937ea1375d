"""Best frame of each event -> JPEG -> s3://HIGHLIGHTS_BUCKET/<video_id>/...

Pillow only (no ultralytics plotting): plotting would fetch a font (Arial.ttf) from the network.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .errors import RetryableError
from .events import Event

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def highlight_key(video_id: str, ordinal: int, event: Event) -> str:
    """Deterministic, so a retried job overwrites its previous attempt's objects."""
    name = _UNSAFE.sub("-", event.class_name).strip("-") or str(event.class_id)
    return f"{video_id}/{ordinal:04d}_{name}_{round(event.start_s * 1000):09d}ms.jpg"


def encode_jpeg(
    image_rgb: np.ndarray, *, box: tuple[float, float, float, float] | None = None, quality: int = 85
) -> bytes:
    img = Image.fromarray(np.ascontiguousarray(image_rgb, dtype=np.uint8))  # (H, W, 3) -> RGB
    if box is not None:
        w, h = img.size
        x1, y1, x2, y2 = box
        ImageDraw.Draw(img).rectangle((x1 * w, y1 * h, x2 * w, y2 * h), outline=(255, 32, 32), width=2)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def upload_highlight(s3: Any, *, bucket: str, key: str, body: bytes) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/jpeg")
    except Exception as exc:  # botocore ClientError / BotoCoreError
        raise RetryableError(f"highlight upload s3://{bucket}/{key} failed: {exc}") from exc


def delete_highlights(s3: Any, *, bucket: str, keys: Iterable[str]) -> None:
    """Best effort (failure path): a leftover object is harmless, a masked original error is not."""
    keys = list(keys)
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
        with contextlib.suppress(Exception):  # deliberately best effort
            s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True},
            )
