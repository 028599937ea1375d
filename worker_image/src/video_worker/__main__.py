"""``python -m video_worker``: one Batch job = one video. The exit code drives Batch's retry strategy.

A bad video or a missing model (exit 65) ends FAILED at once. A retryable failure (exit 75) leaves the video
PROCESSING for the next attempt, except on the last one (AWS_BATCH_JOB_ATTEMPT >= JOB_ATTEMPTS): Batch will not run
the job again, so the worker records FAILED with its reason first. Either end is published on the video-events
topic (DONE or FAILED).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from . import notify
from .config import WorkerConfig
from .errors import BadInputError, ConfigError, ModelMissing, RetryableError, WorkerError
from .exit_codes import EXIT_INTERNAL, EXIT_OK
from .logs import configure, log_event


class _Phases:
    """Seconds of each phase of the job, in order: what the job's wall time went to (logged as `job_phases`)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = self._clock = time.perf_counter()
        self._cpu = time.process_time()

    def end(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._clock, 3)
        self._clock = now

    def log(self, cfg: WorkerConfig, exit_code: int) -> None:
        # cpu_s (every thread of this process) well under wall_s: the job waited for a core, not for work.
        log_event(
            "job_phases",
            video_id=cfg.video_id,
            exit_code=exit_code,
            phases_s=self.seconds,
            wall_s=round(time.perf_counter() - self._started, 3),
            cpu_s=round(time.process_time() - self._cpu, 3),
        )


def main(
    env: Mapping[str, str] | None = None,
    *,
    s3: Any = None,
    secrets: Any = None,
    detector: Any = None,
    sns: Any = None,
) -> int:
    """Run one job and return the process exit code (clients/detector injectable for tests)."""
    env = os.environ if env is None else env
    phases = _Phases()
    try:
        cfg = WorkerConfig.from_env(env)
    except ConfigError as exc:
        log_event("config_error", level=logging.ERROR, reason=str(exc), exit_code=exc.exit_code)
        return exc.exit_code
    code = _run(cfg, phases, s3=s3, secrets=secrets, detector=detector, sns=sns)
    phases.log(cfg, code)
    return code


def _run(cfg: WorkerConfig, phases: _Phases, *, s3: Any, secrets: Any, detector: Any, sns: Any) -> int:
    dsn: str | None = None  # known once the secret is read; the final-attempt failure record needs it
    try:
        # Imported here so a config error exits before paying for torch.
        from . import pipeline, store
        from .detect import load_detector

        phases.end("imports")
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        if secrets is None and cfg.db_secret_arn:
            import boto3

            secrets = boto3.client("secretsmanager")
        if sns is None and cfg.video_events_topic_arn:
            import boto3

            sns = boto3.client("sns")
        dsn = store.resolve_dsn(
            db_secret_arn=cfg.db_secret_arn,
            database_url=cfg.database_url,
            secrets=secrets,
            host=cfg.db_host,
            port=cfg.db_port,
            dbname=cfg.db_name,
        )
        phases.end("clients")

        def model_once_the_video_is_readable() -> Any:
            phases.end("input")
            loaded = detector if detector is not None else load_detector(cfg, s3=s3)
            phases.end("model")
            return loaded

        result = pipeline.run(cfg, s3=s3, connect=store.connector(dsn), load_detector=model_once_the_video_is_readable)
        phases.end("pipeline")
        log_event("video_completed", video_id=cfg.video_id, events=len(result.events))
        notify.publish(
            sns,
            cfg,
            notify.completion_message(
                cfg,
                notify.DONE,
                events=len(result.events),
                detections=result.detections,
                highlight_keys=result.highlight_keys,
            ),
        )
        phases.end("notify")
        return EXIT_OK
    except (BadInputError, RetryableError, ConfigError) as exc:
        log_event(
            "job_failed",
            level=logging.ERROR,
            video_id=cfg.video_id,
            kind=type(exc).__name__,
            reason=str(exc),
            exit_code=exc.exit_code,
            attempt=cfg.attempt,
            attempts=cfg.job_attempts,
        )
        if isinstance(exc, ModelMissing):  # raised before the pipeline touched the video: not retried either
            _end_failed(cfg, dsn, sns, reason=str(exc))
        elif not isinstance(exc, RetryableError):  # bad input: the pipeline has recorded FAILED already
            notify.publish(sns, cfg, notify.completion_message(cfg, notify.FAILED, reason=str(exc)))
        elif cfg.final_attempt:
            _end_failed(cfg, dsn, sns, reason=str(exc))
        return exc.exit_code
    except WorkerError as exc:  # pragma: no cover - every subclass is listed above
        return exc.exit_code
    except Exception as exc:
        logging.getLogger("video_worker").exception("unexpected error (retried by the job definition)")
        if cfg.final_attempt:
            _end_failed(cfg, dsn, sns, reason=f"{type(exc).__name__}: {exc}")
        return EXIT_INTERNAL


def _end_failed(cfg: WorkerConfig, dsn: str | None, sns: Any, *, reason: str) -> None:
    """The last attempt failed: record FAILED (best effort: the database may be what failed) and notify."""
    reason = f"attempt {cfg.attempt} of {cfg.job_attempts}: {reason}"
    notify.publish(sns, cfg, notify.completion_message(cfg, notify.FAILED, reason=reason))
    if dsn is None:
        return
    from . import store

    try:
        with store.connector(dsn)() as conn:
            store.apply_schema(conn)
            store.mark_failed(conn, video_id=cfg.video_id, s3_key=cfg.s3_key, model_uri=cfg.model_uri, reason=reason)
    except Exception as exc:  # noqa: BLE001 - psycopg errors; nothing more to do on the last attempt
        log_event("final_failure_not_recorded", level=logging.ERROR, video_id=cfg.video_id, reason=str(exc))


def cli() -> None:
    configure()
    code = main()
    # Everything the job does is done: its logs are written, its files and connections closed by their context
    # managers, its notification sent. The interpreter's own teardown with torch loaded takes 1.5-3 s on 2 cores
    # (measured), and Batch counts the job RUNNING until the process is gone, so skip it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
