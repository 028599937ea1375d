"""`python -m deepsentinel.local.smoke_model OUT.pt`: a known-positive detector for the smoke check.

YOLOv8n built from its YAML (no weight download) with the class-0 ("person") logit bias raised and every
other class lowered, so every frame yields confident detections. The smoke check proves the wiring
(upload -> queue -> Lambda -> Batch -> worker -> database, highlights, notification) on the local
platform, where no trained weights exist: `smoke --local` publishes it (deepsentinel.commands.model) at the key of the
deployed job definition's MODEL_URI. On AWS, trained weights are published with `deepsentinel model publish`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

POSITIVE_CLASS = 0
LOGIT_BIAS = 10.0


def build(path: Path) -> Path:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")
    # Detect: cv3[i][-1] is the class-logit conv of scale i (ultralytics annotates Model.model as str | None; a
    # model built from a yaml holds the nn.Module)
    head: Any = model.model.model[-1]  # type: ignore[union-attr, index]
    with torch.no_grad():
        for branch in head.cv3:
            branch[-1].bias.fill_(-LOGIT_BIAS)
            branch[-1].bias[POSITIVE_CLASS] = LOGIT_BIAS
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return path


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
