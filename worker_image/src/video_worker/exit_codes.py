"""Process exit codes: a FIXED contract with the Batch job definition's retry strategy.

The pipeline construct's job definition evaluates ``onExitCode "65" -> EXIT`` and retries every other
non-zero code, so changing a number here silently changes retry behaviour in AWS. The values follow
BSD sysexits(3): EX_DATAERR (65) and EX_TEMPFAIL (75).
"""

from typing import Final

EXIT_OK: Final = 0
#: Bad input, do not retry: the video is unreadable/empty/zero-length (the row is set FAILED with the
#: reason) or the job's own parameters are invalid. A retry would fail the same way.
EXIT_BAD_INPUT: Final = 65
#: Infrastructure error (S3, Secrets Manager, database): transient, the job definition retries it.
EXIT_RETRYABLE: Final = 75
#: Unexpected bug (EX_SOFTWARE). Not 65, so the job definition retries it like a transient error.
EXIT_INTERNAL: Final = 70
