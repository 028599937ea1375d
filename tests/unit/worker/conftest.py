"""Fixtures for the video worker: real ffmpeg, a real (untrained) YOLO, moto S3, real PostgreSQL 16.

Nothing here touches the network: ultralytics runs offline (YOLO_OFFLINE, its own config dir), the
model is built from ``yolov8n.yaml`` (no weight download), highlights use Pillow (no font download),
moto is in-process, PostgreSQL listens on a Unix socket, and ``no_network`` makes any other socket
connection fail loudly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

# Must precede the first ultralytics import anywhere in the session.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "video-worker-tests-ultralytics"))

#: An untrained model's confidences sit around 2e-4; this threshold makes it produce boxes so the
#: events/highlights/embedding path runs for real (the DB is then read back for the actual counts).
UNTRAINED_CONF = "0.0001"
TEST_IMGSZ = 320
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "ap-northeast-2",
}


class NetworkBlocked(RuntimeError):
    pass


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Allow Unix sockets and loopback only; anything else raises NetworkBlocked."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: object) -> None:
        if sock.family == socket.AF_UNIX:
            return
        host = address[0] if isinstance(address, tuple) else str(address)
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise NetworkBlocked(f"test tried to reach the network: {address!r}")

    def connect(sock: socket.socket, address: object) -> None:
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: object) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    with no_network():
        yield


@contextlib.contextmanager
def aws_env() -> Iterator[None]:
    """moto's credentials rule: fake credentials in place before any client exists."""
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with aws_env(), mock_aws():
        yield


# ----------------------------------------------------------------------------- videos (real ffmpeg)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    d = tmp_path_factory.mktemp("videos")
    good = d / "testsrc.mp4"
    # 3 s of the classic test card at 25 fps, 320x240, H.264: sampled at 5 fps -> 15 frames.
    _ffmpeg("-f", "lavfi", "-i", "testsrc=duration=3:size=320x240:rate=25",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(good))
    corrupt = d / "corrupt.mp4"
    data = good.read_bytes()
    # Keep the first bytes (looks like an MP4 to a sniffing eye), then garbage: no moov, undecodable.
    corrupt.write_bytes(data[:64] + os.urandom(4096))
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    audio = d / "audio_only.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(audio))
    return {"good": good, "corrupt": corrupt, "empty": empty, "audio": audio}


# ----------------------------------------------------------------------------- PostgreSQL + pgvector


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 16.2 with pgvector (the ``pgserver`` wheel), stopped and deleted at the end."""
    pgserver = pytest.importorskip("pgserver")
    # A short path: the Unix socket lives in the data directory (108-byte path limit).
    root = Path(tempfile.mkdtemp(prefix="vwpg-"))
    server = pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db(pg_url: str) -> Iterator[object]:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


# ----------------------------------------------------------------------------- model


@pytest.fixture(scope="session")
def detector() -> object:
    """Untrained YOLOv8n from its YAML (no download), low threshold so it yields boxes."""
    from video_worker.config import WorkerConfig
    from video_worker.detect import load_detector

    cfg = WorkerConfig(
        video_id="model", s3_key="k", raw_bucket="r", highlights_bucket="h", database_url="x",
        model_uri="yolov8n.yaml", device="cpu", imgsz=TEST_IMGSZ, conf_threshold=float(UNTRAINED_CONF),
        max_det=20, batch_size=4,
    )
    with no_network():
        return load_detector(cfg, s3=None)


@pytest.fixture
def job_env(pg_url: str, tmp_path: Path) -> dict[str, str]:
    """A complete job environment (buckets are created by the test inside moto)."""
    work = tmp_path / "work"
    work.mkdir()
    return {
        "VIDEO_ID": "vid-1",
        "S3_KEY": "uploads/vid-1.mp4",
        "RAW_BUCKET": "raw-videos",
        "HIGHLIGHTS_BUCKET": "highlights",
        "DATABASE_URL": pg_url,
        "MODEL_URI": "yolov8n.yaml",
        "SAMPLE_FPS": "5",
        "BATCH_SIZE": "4",
        "DEVICE": "cpu",
        "IMGSZ": str(TEST_IMGSZ),
        "CONF_THRESHOLD": UNTRAINED_CONF,
        "MAX_DET": "20",
        "WORK_DIR": str(work),
    }


@pytest.fixture(scope="session")
def tools() -> SimpleNamespace:
    """Helpers for module-scoped fixtures in test files (test modules cannot import conftest)."""
    return SimpleNamespace(no_network=no_network, aws_env=aws_env, imgsz=TEST_IMGSZ, conf=UNTRAINED_CONF)
