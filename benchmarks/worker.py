"""Video worker benchmark: end-to-end frames/s vs model-only frames/s on a generated 1080p clip.

    python benchmarks/worker.py [--duration 15] [--sample-fps 5] [--batch-size 8] [--no-db]

What runs: ffmpeg generates a 1080p30 H.264 clip (``testsrc2``, moving content); the real job
(``video_worker.pipeline.run``: S3 download -> probe -> decode || YOLO || highlight upload -> one DB
transaction) processes it against moto S3 (in-process) and PostgreSQL 16 + pgvector (``pgserver``),
or a no-op connection with ``--no-db``. Then, in the same process, the model alone runs on the very
same sampled frames (decoded into memory first, untimed) with the same batch size: the ratio
end-to-end / model-only says how much of the model's speed the pipeline delivers (goal >= 0.8).
Each pair is repeated (``--repeat``, default 3) and medians are reported: on a small shared machine a
single run varies by +-15%. A last pass times decoding alone, because ffmpeg must decode every source frame (30 fps) even when
only SAMPLE_FPS of them are analysed.

The model is ``yolov8n.yaml`` with untrained weights (no download; same architecture and cost as
trained YOLOv8n). Its confidences sit near 2e-4, so ``--conf 1e-4 --max-det 20`` by default makes it
emit about 20 boxes per frame, a busy-scene load for events, highlights and the database write.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "worker_image" / "src"))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "video-worker-bench-ultralytics"))
for _k, _v in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "ap-northeast-2"}.items():
    os.environ.setdefault(_k, _v)  # moto only: never real credentials

#: The original system's budget per video.
BUDGET_GPU_MINUTES = 15.0


class _NullConnection:
    """--no-db: accepts the calls ``video_worker.store`` makes and does nothing."""

    def __enter__(self) -> _NullConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, *args: Any, **kwargs: Any) -> _NullConnection:
        return self

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def cursor(self) -> _NullConnection:
        return self

    def copy(self, *args: Any) -> _NullConnection:
        return self

    def write_row(self, row: Any) -> None:
        return None

    def executemany(self, *args: Any) -> None:
        return None


def make_clip(path: Path, duration: int) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size=1920x1080:rate=30:duration={duration}",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60", str(path)],
        check=True,
    )


@contextlib.contextmanager
def database(no_db: bool, root: Path) -> Iterator[Any]:
    if no_db:
        yield lambda: _NullConnection()
        return
    import pgserver
    import psycopg

    server = pgserver.get_server(root / "pg", cleanup_mode="delete")
    try:
        url = server.get_uri()
        yield lambda: psycopg.connect(url)
    finally:
        server.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=15, help="clip length in seconds (1080p30)")
    ap.add_argument("--clip", type=Path, help="use this video instead of generating one")
    ap.add_argument("--sample-fps", type=float, default=5.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--conf", type=float, default=1e-4)
    ap.add_argument("--max-det", type=int, default=20)
    ap.add_argument("--device", default=None, help="default: cuda if available else cpu")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="CPU only; default: ultralytics' choice (cores - 1, leaving one to ffmpeg)")
    ap.add_argument("--model", default="yolov8n.yaml")
    ap.add_argument("--no-db", action="store_true", help="skip PostgreSQL (no-op connection)")
    ap.add_argument("--gpu-speedup", type=float, default=25.0,
                    help="assumed A10G (g5.xlarge, FP16) speed-up over THIS machine for the model stage")
    ap.add_argument("--decode-speedup", type=float, default=2.0,
                    help="assumed g5.xlarge (4 vCPU) speed-up over THIS machine for software decode")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved end-to-end/model-only pairs (median)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()

    import boto3
    from moto import mock_aws

    from video_worker import pipeline
    from video_worker.config import WorkerConfig
    from video_worker.detect import load_detector
    from video_worker.media import decode_frames, probe_video

    root = Path(tempfile.mkdtemp(prefix="worker-bench-"))
    try:
        clip = args.clip or root / "clip_1080p.mp4"
        if args.clip is None:
            t0 = time.perf_counter()
            make_clip(clip, args.duration)
            gen_s = time.perf_counter() - t0
        else:
            gen_s = 0.0
        info = probe_video(clip)
        env = {
            "VIDEO_ID": "bench-1", "S3_KEY": "uploads/bench-1.mp4", "RAW_BUCKET": "raw-videos",
            "HIGHLIGHTS_BUCKET": "highlights", "DATABASE_URL": "postgresql://unused",
            "MODEL_URI": args.model, "SAMPLE_FPS": str(args.sample_fps), "BATCH_SIZE": str(args.batch_size),
            "IMGSZ": str(args.imgsz), "CONF_THRESHOLD": str(args.conf), "MAX_DET": str(args.max_det),
            "WORK_DIR": str(root),
        }
        if args.device:
            env["DEVICE"] = args.device
        if args.torch_threads:
            env["TORCH_THREADS"] = str(args.torch_threads)
        cfg = WorkerConfig.from_env(env)

        with mock_aws(), database(args.no_db, root) as connect:
            s3 = boto3.client("s3", region_name="ap-northeast-2")
            for bucket in (cfg.raw_bucket, cfg.highlights_bucket):
                s3.create_bucket(Bucket=bucket,
                                 CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
            s3.upload_file(str(clip), cfg.raw_bucket, cfg.s3_key)
            t0 = time.perf_counter()
            detector = load_detector(cfg, s3=s3)
            load_s = time.perf_counter() - t0

            frames = list(decode_frames(clip, info, sample_fps=cfg.sample_fps, max_side=cfg.imgsz))
            runs: list[tuple[float, float]] = []  # (end-to-end s, model-only s), interleaved pairs
            for _ in range(args.repeat):
                # 1. End to end: the real job (a retry of the same video: rows are replaced).
                result = pipeline.run(cfg, s3=s3, connect=connect, load_detector=lambda: detector)
                # 2. Model only, same frames, same batches, same process, right after.
                t0 = time.perf_counter()
                for i in range(0, len(frames), cfg.batch_size):
                    detector.detect(frames[i:i + cfg.batch_size])
                runs.append((result.wall_s, time.perf_counter() - t0))
            e2e_s = statistics.median(r[0] for r in runs)
            model_s = statistics.median(r[1] for r in runs)

            # 3. Decode only (every source frame is decoded; only SAMPLE_FPS are kept).
            t0 = time.perf_counter()
            n_decoded = sum(1 for _ in decode_frames(clip, info, sample_fps=cfg.sample_fps, max_side=cfg.imgsz))
            decode_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)

    n = result.frames
    e2e_fps = n / e2e_s
    model_fps = len(frames) / model_s
    source_frames = info.duration_s * info.fps
    # Projection for 1 hour of 30 fps video.
    hour_sampled = 3600 * min(cfg.sample_fps, 30.0)
    hour_source = 3600 * 30
    here_model_min = hour_sampled / model_fps / 60
    here_e2e_min = hour_sampled / e2e_fps / 60
    gpu_model_min = here_model_min / args.gpu_speedup
    decode_here_min = hour_source * (decode_s / source_frames) / 60
    gpu_decode_min = decode_here_min / args.decode_speedup
    # Decode and inference overlap, so the job takes about the slower of the two.
    gpu_job_min = max(gpu_model_min, gpu_decode_min)

    report = {
        "clip": {"width": info.width, "height": info.height, "fps": info.fps, "duration_s": round(info.duration_s, 2),
                 "codec": info.codec, "generated_in_s": round(gen_s, 1)},
        "settings": {"sample_fps": cfg.sample_fps, "batch_size": cfg.batch_size, "imgsz": cfg.imgsz,
                     "device": detector.device, "model": cfg.model_uri, "conf": cfg.conf_threshold,
                     "max_det": cfg.max_det, "db": "none" if args.no_db else "pgserver PostgreSQL 16 + pgvector",
                     "torch_threads": _torch_threads(), "cpus": os.cpu_count()},
        "model_load_s": round(load_s, 2),
        "frames": n,
        "detections": result.detections,
        "events": len(result.events),
        "highlights": len(result.highlight_keys),
        "repeats": args.repeat,
        "end_to_end_s_median": round(e2e_s, 2),
        "ratio_per_repeat": [round(m / e, 3) for e, m in runs],
        "end_to_end_fps": round(e2e_fps, 2),
        "model_only_fps": round(model_fps, 2),
        "ratio_e2e_over_model": round(e2e_fps / model_fps, 3),
        "decode_only_s": round(decode_s, 2),
        "decode_only_source_fps": round(source_frames / decode_s, 1),
        "decoded_sampled_frames": n_decoded,
        "stages_s": result.timings,
        "one_hour_30fps": {
            "sampled_frames": int(hour_sampled),
            "this_machine_e2e_min": round(here_e2e_min, 1),
            "assumed_gpu_model_speedup": args.gpu_speedup,
            "assumed_decode_speedup": args.decode_speedup,
            "g5_model_bound_min": round(gpu_model_min, 1),
            "g5_decode_bound_min": round(gpu_decode_min, 1),
            "g5_estimate_gpu_min": round(gpu_job_min, 1),
            "budget_gpu_min": BUDGET_GPU_MINUTES,
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    h = report["one_hour_30fps"]
    print(f"clip: {info.width}x{info.height} {info.fps:g} fps {info.duration_s:.1f} s {info.codec}; "
          f"device {detector.device}, torch threads {_torch_threads()}, {os.cpu_count()} CPUs; "
          f"model {cfg.model_uri} imgsz {cfg.imgsz} batch {cfg.batch_size}; db {report['settings']['db']}")
    print(f"frames analysed: {n} (SAMPLE_FPS {cfg.sample_fps:g}); detections {result.detections}; "
          f"events {len(result.events)}; highlights {len(result.highlight_keys)}")
    print(f"medians of {args.repeat} interleaved repeats:")
    print(f"end to end : {e2e_fps:6.2f} frames/s  ({e2e_s:.2f} s, everything run() does)")
    print(f"model only : {model_fps:6.2f} frames/s  ({model_s:.2f} s, same frames and batches)")
    print(f"ratio      : {e2e_fps / model_fps:.3f}  (goal >= 0.8; per repeat: "
          f"{', '.join(f'{m / e:.2f}' for e, m in runs)})")
    print(f"decode only: {source_frames / decode_s:6.1f} source frames/s ({decode_s:.2f} s for the clip)")
    print("stages of the last repeat (s, summed per stage; decode/upload run on their own threads):")
    for k, v in sorted(result.timings.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<15} {v:8.3f}")
    print(f"one hour of 30 fps video -> {int(hour_sampled)} sampled frames:")
    print(f"  this machine end to end         : {h['this_machine_e2e_min']:.1f} min")
    print(f"  g5.xlarge model-bound (/{args.gpu_speedup:g})  : {h['g5_model_bound_min']:.1f} GPU min  "
          f"(assumed A10G FP16 speed-up over this CPU for the model stage)")
    print(f"  g5.xlarge decode-bound (/{args.decode_speedup:g}) : {h['g5_decode_bound_min']:.1f} min  "
          f"(software decode of all {hour_source} source frames, 4 vCPU vs {os.cpu_count()} here)")
    print(f"  estimate (stages overlap: the slower one) : {h['g5_estimate_gpu_min']:.1f} GPU min "
          f"vs budget {BUDGET_GPU_MINUTES:g} GPU min per video")
    return 0


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
