"""AWS's documented sample events (tests/fixtures/aws_events/, README.md there names each page), and EventBridge's
TestEventPattern for the in-process moto.

The rule tests (tests/unit/test_event_patterns.py) and the handler tests (tests/unit/lambdas/) build their events
from the same samples: the documented event with every field AWS sends, and only our account, region and resource
names (and the fields the test is about) put in. No pytest dependency.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "aws_events"
ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "ap-northeast-2"
# The fields the TestEventPattern API requires of its Event ("TestEventPattern", Amazon EventBridge API Reference,
# Request Parameters: "the following fields are mandatory: id, account, source, time, region, resources,
# detail-type").
REQUIRED_EVENT_FIELDS = frozenset({"id", "account", "source", "time", "region", "resources", "detail-type"})


def load_event(name: str, /, **overrides: Any) -> dict[str, Any]:
    """The sample `<name>.json`, with `overrides` merged in: a dict value merges into the sample's dict (so
    ``detail={"status": "FAILED"}`` keeps every other detail field), any other value replaces the field. A key
    the sample does not have is refused, so a typo cannot add a field AWS never sends; add one on purpose with
    ``add_fields``."""
    event = json.loads((FIXTURES / f"{name}.json").read_text())
    return merge(event, overrides, path=name)


def merge(base: dict[str, Any], overrides: Mapping[str, Any], *, path: str = "event",
          add_fields: bool = False) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if key not in result and not add_fields:
            raise KeyError(f"{path} has no field {key!r} (documented fields: {sorted(result)})")
        if isinstance(value, Mapping) and isinstance(result.get(key), dict) and result[key]:
            result[key] = merge(result[key], value, path=f"{path}.{key}", add_fields=add_fields)
        else:
            result[key] = copy.deepcopy(value)
    return result


def with_fields(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """`event` with fields its sample lacks but AWS sends in this case (e.g. a FAILED job's statusReason, which
    the RUNNABLE sample has not yet)."""
    return merge(event, fields, add_fields=True)


# --- one builder per source, in our account and region -----------------------------------------------------


def batch_job_state_change(*, job_queue_arn: str, status: str = "FAILED", job_id: str | None = None,
                           **detail: Any) -> dict[str, Any]:
    """AWS Batch User Guide, "Job state change events": the sample moved to our account, region and queue.
    `detail` merges into the sample's detail (fields the sample lacks, such as a failed job's statusReason or a
    container's exitCode, are added: the detail "resembles the JobDetail object" of DescribeJobs)."""
    event = load_event("batch_job_state_change")
    job_id = job_id or event["detail"]["jobId"]
    job_arn = f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job/{job_id}"
    event = merge(event, {"account": ACCOUNT_ID, "region": REGION, "resources": [job_arn],
                          "detail": {"jobArn": job_arn, "jobId": job_id, "jobQueue": job_queue_arn, "status": status,
                                     "tags": {"resourceArn": job_arn}}})
    return merge(event, {"detail": detail}, add_fields=True)


def s3_object_created(*, bucket: str, key: str, sequencer: str | None = None, event_id: str | None = None,
                      **detail: Any) -> dict[str, Any]:
    """Amazon S3 User Guide, "EventBridge event message structure": the "Object Created" sample for `key` of
    `bucket` in our account and region."""
    event = load_event("s3_object_created", account=ACCOUNT_ID, region=REGION, resources=[f"arn:aws:s3:::{bucket}"],
                       detail={"bucket": {"name": bucket}, "requester": ACCOUNT_ID,
                               "object": {"key": key, **({"sequencer": sequencer} if sequencer else {})}, **detail})
    return event if event_id is None else merge(event, {"id": event_id})


def rotation_succeeded(*, secret_arn: str, event_name: str = "RotationSucceeded") -> dict[str, Any]:
    """Secrets Manager's RotationSucceeded as EventBridge delivers it (the fixture's README says which page and
    why this shape) for `secret_arn`, in our account and region."""
    event = load_event("secretsmanager_rotation_succeeded")
    request_id = event["detail"]["requestID"].replace(event["detail"]["additionalEventData"]["SecretId"], secret_arn)
    return merge(event, {"account": ACCOUNT_ID, "region": REGION, "detail": {
        "userIdentity": {"accountId": ACCOUNT_ID}, "eventName": event_name, "awsRegion": REGION,
        "additionalEventData": {"SecretId": secret_arn}, "requestID": request_id,
        "recipientAccountId": ACCOUNT_ID}})


def sqs_record(body: str, *, message_id: str, queue_arn: str, receive_count: int = 1,
               fifo_group: str | None = None, **record: Any) -> dict[str, Any]:
    """One record of the Lambda Developer Guide's SQS message event ("Using Lambda with Amazon SQS"; the FIFO
    sample when `fifo_group` is given) carrying `body`, with the MD5 of that body as SQS computes it."""
    sample = load_event("sqs_message_event_fifo" if fifo_group else "sqs_message_event")["Records"][0]
    attributes: dict[str, Any] = {"ApproximateReceiveCount": str(receive_count)}
    if fifo_group:
        attributes.update(MessageGroupId=fifo_group, MessageDeduplicationId=message_id)
    return merge(sample, {"messageId": message_id, "receiptHandle": f"{sample['receiptHandle']}{message_id}",
                          "body": body, "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                          "attributes": attributes, "eventSourceARN": queue_arn, "awsRegion": REGION, **record})


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


# --- TestEventPattern on the in-process moto ------------------------------------------------------------------


@contextmanager
def eventbridge_test_event_pattern() -> Iterator[None]:
    """moto 5.2.5 answers TestEventPattern with an empty body (its handler is a stub); inside this block it
    answers as the API Reference documents: the Event must carry the mandatory fields, an invalid pattern is an
    InvalidEventPatternException, and Result is whether the pattern matches, decided by moto's own matcher (the
    one its rules and deepsentinel.local.stand_in use). Where that matcher differs from EventBridge is listed in
    tests/fixtures/aws_events/README.md."""
    from moto.events import responses
    from moto.events.exceptions import InvalidEventPatternException, ValidationException
    from moto.events.models import EventPattern

    def test_event_pattern(self: Any) -> str:
        try:
            event = json.loads(self._get_param("Event"))
        except (TypeError, ValueError):
            raise ValidationException("Event is not valid JSON") from None
        missing = sorted(REQUIRED_EVENT_FIELDS - set(event)) if isinstance(event, dict) else ["(an object)"]
        if missing:
            raise InvalidEventPatternException(f"Event is missing mandatory fields: {', '.join(missing)}")
        return json.dumps({"Result": EventPattern.load(self._get_param("EventPattern")).matches_event(event)})

    original = responses.EventsHandler.test_event_pattern
    responses.EventsHandler.test_event_pattern = test_event_pattern
    try:
        yield
    finally:
        responses.EventsHandler.test_event_pattern = original
