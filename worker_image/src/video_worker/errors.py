"""Exceptions that carry the exit code the process should end with."""

from __future__ import annotations

from .exit_codes import EXIT_BAD_INPUT, EXIT_RETRYABLE


class WorkerError(Exception):
    """Base class; ``exit_code`` is what ``__main__`` returns for it."""

    exit_code: int = EXIT_RETRYABLE


class BadInputError(WorkerError):
    """The video cannot be analysed (unreadable, empty, zero-length, missing). Never retried."""

    exit_code = EXIT_BAD_INPUT


class InputAccessDenied(BadInputError):
    """S3 refused the input (403). With s3:ListBucket a missing key is a 404, so a 403 means the job role may
    not read the object: a retry of the same job cannot change that."""


class ConfigError(WorkerError):
    """The job's environment is invalid. Retrying the same job definition cannot fix it."""

    exit_code = EXIT_BAD_INPUT


class ModelMissing(ConfigError):
    """MODEL_URI names weights S3 does not have (or will not show this job). Not retried: Batch runs the retries
    at once, with the same job definition, so they would fail the same way; publishing the weights
    (`deepsentinel model publish`) and deploying the key it prints is what fixes it."""


class RetryableError(WorkerError):
    """S3 / Secrets Manager / database failure: transient from the job's point of view."""

    exit_code = EXIT_RETRYABLE
