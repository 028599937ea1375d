"""``python -m video_worker``: one Batch job = one video. The exit code drives Batch's retry strategy."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from .config import WorkerConfig
from .errors import BadInputError, ConfigError, RetryableError, WorkerError
from .exit_codes import EXIT_INTERNAL, EXIT_OK
from .logs import configure, log_event


def main(
    env: Mapping[str, str] | None = None,
    *,
    s3: Any = None,
    secrets: Any = None,
    detector: Any = None,
) -> int:
    """Run one job and return the process exit code (clients/detector injectable for tests)."""
    env = os.environ if env is None else env
    try:
        cfg = WorkerConfig.from_env(env)
    except ConfigError as exc:
        log_event("config_error", level=logging.ERROR, reason=str(exc), exit_code=exc.exit_code)
        return exc.exit_code
    try:
        # Imported here so a config error exits before paying for torch.
        from . import pipeline, store
        from .detect import load_detector

        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        if secrets is None and cfg.db_secret_arn:
            import boto3

            secrets = boto3.client("secretsmanager")
        dsn = store.resolve_dsn(db_secret_arn=cfg.db_secret_arn, database_url=cfg.database_url,
                                secrets=secrets, host=cfg.db_host, port=cfg.db_port, dbname=cfg.db_name)
        if detector is None:
            detector = load_detector(cfg, s3=s3)
        result = pipeline.run(cfg, s3=s3, connect=store.connector(dsn), detector=detector)
        log_event("video_completed", video_id=cfg.video_id, events=len(result.events))
        return EXIT_OK
    except (BadInputError, RetryableError, ConfigError) as exc:
        log_event("job_failed", level=logging.ERROR, video_id=cfg.video_id, kind=type(exc).__name__,
                  reason=str(exc), exit_code=exc.exit_code)
        return exc.exit_code
    except WorkerError as exc:  # pragma: no cover - every subclass is listed above
        return exc.exit_code
    except Exception:
        logging.getLogger("video_worker").exception("unexpected error (retried by the job definition)")
        return EXIT_INTERNAL


def cli() -> None:
    configure()
    raise SystemExit(main())


if __name__ == "__main__":
    cli()
