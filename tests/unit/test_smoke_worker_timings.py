"""The smoke report's account of the worker's seconds, read from the lines the worker's own logging writes."""

from __future__ import annotations

import io
import json
import logging

from deepsentinel.commands.smoke import SmokeReport, _print_report, worker_timings
from video_worker.logs import JsonFormatter, log_event


def _worker_lines(emit) -> list[str]:
    """What video_worker.logs writes (one JSON object per line) while `emit` runs, plus a library's plain line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    worker_logger = logging.getLogger("video_worker")
    logging.getLogger().addHandler(handler)  # as video_worker.logs.configure does
    previous = worker_logger.level
    worker_logger.setLevel(logging.INFO)
    try:
        logging.getLogger("botocore.credentials").warning("Found credentials in environment variables.")
        emit()
    finally:
        logging.getLogger().removeHandler(handler)
        worker_logger.setLevel(previous)
    return ["ffmpeg wrote this, not JSON", *stream.getvalue().splitlines()]


def test_the_workers_phases_model_steps_and_pipeline_stages_come_from_its_log_lines():
    def job() -> None:
        log_event("model_ready", model_uri="s3://m/models/yolov8n.pt", device="cpu",
                  steps_s={"import": 2.1, "fetch": 0.05, "load": 0.3, "warmup": 2.0})
        log_event("timings", video_id="v", stages_s={"decode": 0.2, "inference": 2.6})
        log_event("job_phases", video_id="v", exit_code=0, wall_s=7.9, cpu_s=7.1,
                  phases_s={"imports": 0.5, "clients": 0.3, "model": 4.45, "pipeline": 2.9, "notify": 0.05})

    timing = worker_timings(_worker_lines(job), attempt_seconds=8.4)
    assert timing == {"attempt_s": 8.4, "phases_s": {"imports": 0.5, "clients": 0.3, "model": 4.45, "pipeline": 2.9,
                                                     "notify": 0.05},
                      "wall_s": 7.9, "cpu_s": 7.1, "model_steps_s": {"import": 2.1, "fetch": 0.05, "load": 0.3,
                                                                      "warmup": 2.0},
                      "pipeline_stages_s": {"decode": 0.2, "inference": 2.6}, "process_s": 0.5}


def test_a_worker_that_logged_no_phases_leaves_only_the_attempts_seconds_and_the_summary_says_nothing(capsys):
    """A worker killed before its end (a timeout, an OOM kill) logs no `job_phases` line."""
    timing = worker_timings(_worker_lines(lambda: None), attempt_seconds=31.0)
    assert timing == {"attempt_s": 31.0}
    _print_report(SmokeReport(video_id="v", status="TIMEOUT", worker=timing))
    assert "worker:" not in capsys.readouterr().out


def test_the_summary_names_each_phase_the_process_and_the_cpu_time(capsys):
    timing = {"attempt_s": 8.4, "phases_s": {"imports": 0.5, "model": 4.4}, "wall_s": 7.9, "cpu_s": 7.1,
              "process_s": 0.5}
    report = SmokeReport(video_id="v", status="DONE", worker=timing)
    _print_report(report)
    assert "  worker: 8.4s attempt = imports 0.5, model 4.4, process 0.5 (CPU 7.1s)" in capsys.readouterr().out
    assert json.loads(report.as_json())["worker"] == timing
