"""YOLO (ultralytics) on batches of frames: the model is resolved, loaded and warmed exactly once."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .config import WorkerConfig
from .errors import ConfigError, ModelMissing, RetryableError, WorkerError
from .logs import log_event
from .media import Frame


@dataclass(frozen=True)
class Detection:
    frame_index: int
    t_s: float
    class_id: int
    confidence: float
    # Box corners normalised to 0..1 of the frame, so they survive any decode scaling.
    x1: float
    y1: float
    x2: float
    y2: float


def resolve_device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


#: A content-addressed file name, as `deepsentinel model publish` writes: <stem>-<sha256 prefix>.pt.
CONTENT_ADDRESSED_NAME = re.compile(r"-([0-9a-f]{12,64})\.pt$")
PUBLISH_HINT = (
    "publish the weights with `deepsentinel model publish FILE --env <env>` and deploy with "
    "model_key set to the key it prints"
)


def resolve_model_path(model_uri: str, *, s3: Any, cache_dir: str, model_dir: str | None = None) -> str:
    """Weights are never baked into the image: an ``s3://`` URI is the file of that name in ``model_dir`` (the
    golden AMI's pre-loaded weights) when it is there, else a download to a local cache.

    A ``*.yaml`` name (e.g. ``yolov8n.yaml``) builds an untrained model with no download (tests,
    benchmarks); any other value is a local path.
    """
    if model_uri.startswith("s3://"):
        parsed = urlparse(model_uri)
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
        if not bucket or not key.endswith(".pt"):
            raise ConfigError(f"MODEL_URI {model_uri!r} must be s3://<bucket>/<key>.pt")
        if model_dir:
            preloaded = preloaded_weights(Path(model_dir), key)
            if preloaded is not None:
                log_event("model_preloaded", model_uri=model_uri, path=str(preloaded))
                return str(preloaded)
        local = Path(cache_dir) / "models" / bucket / key
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_suffix(".part")
            try:
                s3.download_file(bucket, key, str(tmp))
            except Exception as exc:  # botocore ClientError / BotoCoreError
                tmp.unlink(missing_ok=True)
                raise model_download_error(model_uri, exc) from exc
            os.replace(tmp, local)  # atomic: a half-written file is never taken for weights
            log_event("model_downloaded", model_uri=model_uri, path=str(local))
        return str(local)
    if model_uri.endswith((".yaml", ".yml")):
        return model_uri
    if not Path(model_uri).is_file():
        raise ConfigError(f"MODEL_URI {model_uri!r}: no such file")
    return model_uri


def preloaded_weights(model_dir: Path, key: str) -> Path | None:
    """The file named like the key in ``model_dir``, if it holds those weights.

    The Packer template copies the object under its own file name. A content-addressed name also carries the
    sha256 prefix of the bytes, which is checked: an AMI baked with other weights under that name is not used.
    """
    candidate = model_dir / PurePosixPath(key).name
    if not candidate.is_file():
        return None
    match = CONTENT_ADDRESSED_NAME.search(candidate.name)
    if match:
        digest = hashlib.sha256()
        with open(candidate, "rb") as weights:
            for chunk in iter(lambda: weights.read(1 << 20), b""):
                digest.update(chunk)
        if not digest.hexdigest().startswith(match.group(1)):
            log_event("preloaded_model_mismatch", level=logging.WARNING, path=str(candidate), sha256=digest.hexdigest())
            return None
    return candidate


def model_download_error(model_uri: str, exc: Exception) -> WorkerError:
    """A missing (or hidden) model is the deployment's configuration: no retry finds it. Anything else is
    transient."""
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
        return ModelMissing(f"model {model_uri} does not exist: {PUBLISH_HINT}")
    if code in ("403", "AccessDenied"):
        return ModelMissing(
            f"model {model_uri}: S3 refused it (403): the object is missing (the job role may not "
            "list the models bucket, and S3 then answers a missing key with 403) or the job role "
            f"may not read or decrypt it; if it is missing, {PUBLISH_HINT}"
        )
    return RetryableError(f"model download failed: {exc}")


class Detector:
    """Wraps an ultralytics model; ``detect`` maps one batch of frames to detections per frame."""

    def __init__(
        self,
        model: Any,
        *,
        device: str,
        imgsz: int,
        conf: float,
        iou: float,
        max_det: int,
        torch_threads: int | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.names: dict[int, str] = {int(k): str(v) for k, v in model.names.items()}
        self._torch_threads = torch_threads
        self._warmed: set[tuple[int, int, int]] = set()
        self._args = dict(
            imgsz=imgsz,
            conf=conf,
            iou=iou,
            max_det=max_det,
            device=device,
            # FP16 on the A10G (~2x throughput, same boxes); FP32 on CPU. ("half" is deprecated.)
            quantize=16 if device.startswith("cuda") else None,
            verbose=False,
            save=False,
        )

    @property
    def cpu_threads(self) -> int:
        """Cores torch computes on (0 on a GPU): ffmpeg gets the rest (see pipeline)."""
        if not self.device.startswith("cpu"):
            return 0
        import torch

        return torch.get_num_threads()

    def warmup(self, height: int, width: int, batch: int) -> None:
        """One throwaway batch: builds the predictor, picks kernels, allocates GPU memory.

        Called once by ``load_detector`` (the ~2 s predictor setup happens there, once per process);
        the pipeline calls it again with the video's real frame shape, which is a no-op if seen.
        On a CPU one frame does it: the predictor is built the same way and there is no device memory to
        allocate, so the rest of a batch is only inference thrown away (7 frames: 1-2 s on 2 cores, measured).
        """
        if self.device.startswith("cpu"):
            batch = 1
        if (height, width, batch) in self._warmed:
            return
        blank = np.zeros((height, width, 3), np.uint8)
        self._predict([blank] * batch)
        self._warmed.add((height, width, batch))

    def _predict(self, images_bgr: list[np.ndarray]) -> list[Any]:
        results = self.model.predict(images_bgr, **self._args)
        if self._torch_threads:
            # ultralytics' select_device() resets CPU threads to cores-1 on every predictor setup.
            import torch

            torch.set_num_threads(self._torch_threads)
        return results

    def detect(self, frames: Sequence[Frame]) -> list[list[Detection]]:
        if not frames:
            return []
        # ultralytics treats numpy input as OpenCV BGR; the pipe delivers RGB.
        images = [np.ascontiguousarray(f.image[..., ::-1]) for f in frames]
        results = self._predict(images)
        out: list[list[Detection]] = []
        for frame, res in zip(frames, results, strict=True):
            boxes = res.boxes
            if boxes is None or len(boxes) == 0:
                out.append([])
                continue
            xyxyn = boxes.xyxyn.cpu().numpy()
            confs = boxes.conf.cpu().numpy()
            classes = boxes.cls.cpu().numpy().astype(int)
            out.append(
                [
                    Detection(frame.index, frame.t_s, int(c), float(p), *map(float, b))
                    for b, p, c in zip(xyxyn, confs, classes, strict=True)
                ]
            )
        return out


def load_detector(cfg: WorkerConfig, *, s3: Any) -> Detector:
    """The warmed detector; logs `model_ready` with the seconds of each step (a job's start-up is mostly these)."""
    steps: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name] = round(now - clock, 3)
        clock = now

    from ultralytics import YOLO  # heavy import (torch): only when a model is really needed

    step("import")
    path = resolve_model_path(cfg.model_uri, s3=s3, cache_dir=cfg.model_cache_dir, model_dir=cfg.model_dir)
    step("fetch")
    device = resolve_device(cfg.device)
    model = YOLO(path, task="detect")
    step("load")
    detector = Detector(
        model,
        device=device,
        imgsz=cfg.imgsz,
        conf=cfg.conf_threshold,
        iou=cfg.iou_threshold,
        max_det=cfg.max_det,
        torch_threads=cfg.torch_threads,
    )
    # Warm here, once per process, with a 16:9 frame at the configured size (the common CCTV shape),
    # so the predictor setup is not paid inside the video's timed pipeline.
    # The first prediction also imports torchvision (ultralytics then uses its NMS), counted here.
    detector.warmup(cfg.imgsz * 9 // 16 // 2 * 2, cfg.imgsz, cfg.batch_size)
    step("warmup")
    log_event("model_ready", model_uri=cfg.model_uri, device=device, steps_s=steps)
    return detector
