"""End to end: main(env) with real ffmpeg, an untrained YOLO, moto S3 and PostgreSQL 16 + pgvector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config

import video_worker.__main__ as worker_main
from video_worker import detect, pipeline, store
from video_worker.__main__ import main
from video_worker.errors import BadInputError
from video_worker.events import EMBEDDING_DIM
from video_worker.exit_codes import EXIT_BAD_INPUT, EXIT_OK, EXIT_RETRYABLE


def _setup_s3(env: dict[str, str], video: Path | None, s3: Any = None) -> Any:
    s3 = s3 or boto3.client("s3", region_name="ap-northeast-2")
    for bucket in (env["RAW_BUCKET"], env["HIGHLIGHTS_BUCKET"]):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
    if video is not None:
        s3.upload_file(str(video), env["RAW_BUCKET"], env["S3_KEY"])
    return s3


def _highlight_keys(s3: Any, env: dict[str, str]) -> list[str]:
    resp = s3.list_objects_v2(Bucket=env["HIGHLIGHTS_BUCKET"], Prefix=env["VIDEO_ID"] + "/")
    return sorted(o["Key"] for o in resp.get("Contents", []))


def _rows(db: psycopg.Connection, video_id: str) -> dict[str, Any]:
    video = db.execute(
        "SELECT status, failure_reason, frames_analyzed, detection_count, event_count FROM videos"
        " WHERE video_id = %s", (video_id,)).fetchone()
    dets = db.execute("SELECT count(*) FROM detections WHERE video_id = %s", (video_id,)).fetchone()[0]
    events = db.execute(
        "SELECT id, class_name, start_s, end_s, peak_count, best_confidence, highlight_key,"
        " vector_dims(embedding) FROM events WHERE video_id = %s ORDER BY id", (video_id,)).fetchall()
    return {"video": video, "detections": dets, "events": events}


@pytest.fixture(scope="module")
def completed(videos: dict[str, Path], pg_url: str, tmp_path_factory: pytest.TempPathFactory,
              tools: Any) -> dict[str, Any]:
    """Run the real job once (the model is loaded by main from MODEL_URI) and read back all state."""
    from moto import mock_aws

    work = tmp_path_factory.mktemp("work")
    env = {
        "VIDEO_ID": "e2e-1", "S3_KEY": "uploads/e2e-1.mp4", "RAW_BUCKET": "raw-videos",
        "HIGHLIGHTS_BUCKET": "highlights", "DATABASE_URL": pg_url, "MODEL_URI": "yolov8n.yaml",
        "SAMPLE_FPS": "5", "BATCH_SIZE": "4", "DEVICE": "cpu", "IMGSZ": str(tools.imgsz),
        "CONF_THRESHOLD": tools.conf, "MAX_DET": "20", "WORK_DIR": str(work),
    }
    logs: list[str] = []
    logging_modules = (pipeline, worker_main, detect)  # each imported log_event by name
    with tools.no_network(), tools.aws_env(), mock_aws():
        s3 = _setup_s3(env, videos["good"])
        orig = pipeline.log_event
        for module in logging_modules:
            module.log_event = lambda event, **kw: (logs.append(json.dumps({"event": event, **kw}, default=str)),
                                                    orig(event, **kw))  # type: ignore[assignment]
        try:
            code = main(env, s3=s3)
        finally:
            for module in logging_modules:
                module.log_event = orig  # type: ignore[assignment]
        objects = {k: s3.get_object(Bucket=env["HIGHLIGHTS_BUCKET"], Key=k)["Body"].read()
                   for k in _highlight_keys(s3, env)}
    with psycopg.connect(pg_url) as db:
        rows = _rows(db, env["VIDEO_ID"])
    return {"code": code, "env": env, "objects": objects, "rows": rows, "logs": logs, "work": work}


def test_worker_run_completes_and_writes_rows(completed: dict[str, Any]) -> None:
    assert completed["code"] == EXIT_OK
    status, reason, frames, det_count, ev_count = completed["rows"]["video"]
    assert (status, reason) == ("COMPLETED", None)
    assert frames == 15  # 3 s sampled at 5 fps
    assert det_count == completed["rows"]["detections"] > 0
    assert ev_count == len(completed["rows"]["events"]) > 0


def test_worker_events_have_embeddings_and_highlights(completed: dict[str, Any]) -> None:
    events = completed["rows"]["events"]
    keys = {e[6] for e in events}
    assert set(completed["objects"]) == keys  # one JPEG per event, nothing else under the prefix
    for _id, _cls, start, end, peak, conf, key, dims in events:
        assert 0 <= start <= end <= 3.0
        assert peak >= 1 and conf > 0
        assert key.startswith("e2e-1/") and key.endswith(".jpg")
        assert dims == EMBEDDING_DIM
    assert all(body[:3] == b"\xff\xd8\xff" for body in completed["objects"].values())  # JPEG magic


def test_worker_nearest_neighbour_returns_an_event(completed: dict[str, Any], db: psycopg.Connection) -> None:
    event_id = completed["rows"]["events"][0][0]
    (emb,) = db.execute("SELECT embedding::text FROM events WHERE id = %s", (event_id,)).fetchone()
    query = [float(x) for x in emb.strip("[]").split(",")]
    hits = store.nearest_events(db, query, limit=3)
    assert hits and hits[0][0] == event_id and hits[0][3] == pytest.approx(0.0, abs=1e-6)
    # The planner can serve the ORDER BY from the HNSW index.
    db.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in db.execute(
        "EXPLAIN SELECT id FROM events ORDER BY embedding <=> %s::vector LIMIT 3",
        (store.vector_literal(query),)).fetchall())
    assert "events_embedding_hnsw_idx" in plan


def test_worker_logs_one_timings_line_and_cleans_temp(completed: dict[str, Any]) -> None:
    timings = [json.loads(line) for line in completed["logs"] if json.loads(line)["event"] == "timings"]
    assert len(timings) == 1
    stages = timings[0]["stages_s"]
    for stage in ("download", "probe", "decode", "inference", "upload", "db_write"):
        assert stage in stages and stages[stage] >= 0
    assert list(completed["work"].iterdir()) == []  # temp video removed


def test_worker_logs_where_its_seconds_went(completed: dict[str, Any]) -> None:
    """One `job_phases` line: each phase of the job in order, the whole and the CPU time; one `model_ready` line with
    the model's steps. The smoke's report and benchmarks/smoke.py read them."""
    events = [json.loads(line) for line in completed["logs"]]
    (phases,) = [e for e in events if e["event"] == "job_phases"]
    assert list(phases["phases_s"]) == ["imports", "clients", "input", "model", "pipeline", "notify"]
    assert all(seconds >= 0 for seconds in phases["phases_s"].values())
    assert sum(phases["phases_s"].values()) <= phases["wall_s"] + 0.01  # phases are consecutive parts of the job
    assert phases["exit_code"] == EXIT_OK and phases["cpu_s"] > 0 and phases["video_id"] == "e2e-1"
    (model,) = [e for e in events if e["event"] == "model_ready"]
    assert list(model["steps_s"]) == ["import", "fetch", "load", "warmup"]
    assert model["device"] == "cpu" and model["model_uri"] == "yolov8n.yaml"
    assert [e["event"] for e in events].index("model_ready") < [e["event"] for e in events].index("timings")


def test_worker_retry_replaces_rows(videos: dict[str, Path], aws: None, job_env: dict[str, str],
                                    detector: Any, db: psycopg.Connection) -> None:
    s3 = _setup_s3(job_env, videos["good"])
    job_env["VIDEO_ID"] = "retry-1"
    assert main(job_env, s3=s3, detector=detector) == EXIT_OK
    first = _rows(db, "retry-1")
    assert main(job_env, s3=s3, detector=detector) == EXIT_OK  # Batch retried a finished job
    second = _rows(db, "retry-1")
    assert second["detections"] == first["detections"] and len(second["events"]) == len(first["events"])
    assert len(_highlight_keys(s3, job_env)) == len(second["events"])


@pytest.mark.parametrize("kind", ["corrupt", "empty", "audio"])
def test_worker_bad_video_is_failed_without_partial_rows(
    kind: str, videos: dict[str, Path], aws: None, job_env: dict[str, str], detector: Any,
    db: psycopg.Connection,
) -> None:
    job_env["VIDEO_ID"] = f"bad-{kind}"
    s3 = _setup_s3(job_env, videos[kind])
    assert main(job_env, s3=s3, detector=detector) == EXIT_BAD_INPUT == 65
    rows = _rows(db, job_env["VIDEO_ID"])
    status, reason, *_ = rows["video"]
    assert status == "FAILED" and reason
    assert rows["detections"] == 0 and rows["events"] == []
    assert _highlight_keys(s3, job_env) == []
    assert list(Path(job_env["WORK_DIR"]).iterdir()) == []


def test_worker_missing_object_is_bad_input(aws: None, job_env: dict[str, str], detector: Any,
                                            db: psycopg.Connection) -> None:
    job_env["VIDEO_ID"] = "missing-1"
    s3 = _setup_s3(job_env, None)
    assert main(job_env, s3=s3, detector=detector) == EXIT_BAD_INPUT
    assert _rows(db, "missing-1")["video"][0] == "FAILED"


def test_worker_failure_mid_stream_removes_uploaded_highlights(
    videos: dict[str, Path], aws: None, job_env: dict[str, str], detector: Any,
    db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Frames decode and events close (highlights uploaded), then the stream turns out corrupt."""
    real = pipeline.decode_frames

    def decode_then_fail(*args: Any, **kwargs: Any) -> Any:
        yield from real(*args, **kwargs)
        raise BadInputError("corrupt tail")

    monkeypatch.setattr(pipeline, "decode_frames", decode_then_fail)

    class FirstSecondOnly:
        """The real detector, but objects leave the view after 1 s so events close mid-stream."""

        names = detector.names
        cpu_threads = detector.cpu_threads

        def warmup(self, *args: Any) -> None:
            detector.warmup(*args)

        def detect(self, frames: Any) -> Any:
            return [d if f.t_s < 1.0 else [] for f, d in zip(frames, detector.detect(frames))]

    job_env.update(VIDEO_ID="tail-1", EVENT_GAP_S="0", BATCH_SIZE="2")
    s3 = _setup_s3(job_env, videos["good"])
    uploaded: list[str] = []
    real_upload = pipeline.upload_highlight
    monkeypatch.setattr(pipeline, "upload_highlight",
                        lambda s3, **kw: (uploaded.append(kw["key"]), real_upload(s3, **kw))[1])
    assert main(job_env, s3=s3, detector=FirstSecondOnly()) == EXIT_BAD_INPUT
    rows = _rows(db, "tail-1")
    assert rows["video"][:2] == ("FAILED", "corrupt tail")
    assert rows["detections"] == 0 and rows["events"] == []
    assert uploaded, "the scenario needs highlights uploaded before the failure"
    assert _highlight_keys(s3, job_env) == []  # ...and they were deleted again
    assert list(Path(job_env["WORK_DIR"]).iterdir()) == []


def test_worker_database_unreachable_is_retryable(videos: dict[str, Path], aws: None, job_env: dict[str, str],
                                                  detector: Any, tmp_path: Path) -> None:
    s3 = _setup_s3(job_env, videos["good"])
    job_env["DATABASE_URL"] = f"postgresql://postgres@/postgres?host={tmp_path}&connect_timeout=2"
    assert main(job_env, s3=s3, detector=detector) == EXIT_RETRYABLE == 75


def test_worker_s3_unreachable_is_retryable(aws: None, job_env: dict[str, str], detector: Any) -> None:
    # A closed loopback port: the same failure as an S3 outage, without leaving the machine.
    s3 = boto3.client("s3", region_name="ap-northeast-2", endpoint_url="http://127.0.0.1:9",
                      config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    assert main(job_env, s3=s3, detector=detector) == EXIT_RETRYABLE


def test_worker_reads_database_secret(videos: dict[str, Path], aws: None, job_env: dict[str, str],
                                      detector: Any, pg_url: str, db: psycopg.Connection) -> None:
    """DB_SECRET_ARN path as on AWS: the secret has RDS's exact shape ({"username", "password"}); the endpoint
    comes from the job definition's DB_HOST/DB_PORT/DB_NAME (here the local server's socket directory)."""
    socket_dir = pg_url.split("host=")[1]
    sm = boto3.client("secretsmanager", region_name="ap-northeast-2")
    arn = sm.create_secret(Name="db", SecretString=json.dumps({"username": "postgres", "password": "x"}))["ARN"]
    job_env.pop("DATABASE_URL")
    job_env.update(DB_SECRET_ARN=arn, DB_HOST=socket_dir, DB_PORT="5432", DB_NAME="postgres", VIDEO_ID="secret-1")
    s3 = _setup_s3(job_env, videos["good"])
    assert main(job_env, s3=s3, secrets=sm, detector=detector) == EXIT_OK
    assert _rows(db, "secret-1")["video"][0] == "COMPLETED"


def test_worker_real_process_end_to_end(videos: dict[str, Path], job_env: dict[str, str], tools: Any) -> None:
    """``python -m video_worker`` as Batch runs it: a separate process, S3 via a loopback moto server."""
    import os
    import subprocess
    import sys

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        with tools.aws_env():
            s3 = boto3.client("s3", region_name="ap-northeast-2", endpoint_url=endpoint)
            job_env["VIDEO_ID"] = "proc-1"
            _setup_s3(job_env, videos["good"], s3)
            env = {**os.environ, **job_env, "AWS_ENDPOINT_URL": endpoint,
                   "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "worker_image" / "src")}
            proc = subprocess.run([sys.executable, "-m", "video_worker"], env=env, capture_output=True,
                                  text=True, timeout=120)
            assert proc.returncode == EXIT_OK, proc.stdout[-2000:] + proc.stderr[-2000:]
            assert _highlight_keys(s3, job_env)
    finally:
        server.stop()
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    (timings,) = [line for line in lines if line.get("event") == "timings"]
    assert timings["frames"] == 15 and timings["events"] >= 1
    with psycopg.connect(job_env["DATABASE_URL"]) as db:
        assert _rows(db, "proc-1")["video"][0] == "COMPLETED"
