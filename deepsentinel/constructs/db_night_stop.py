"""DB night stop: stop the RDS instance in the evening and start it in the morning (dev, `db_night_stop`).

It sits beside the services' night schedule (compute.py scales them to 0 at 20:00 and back at 09:00 in
`schedule_timezone`): two EventBridge Scheduler schedules whose universal target calls the RDS API itself
(`arn:aws:scheduler:::aws-sdk:rds:stopDBInstance` / `startDBInstance`, "Using universal targets",
EventBridge Scheduler User Guide), so no function is needed. The role is iam.py's `db-night-stop` role, which
may call exactly those two actions on this instance.

AWS starts a stopped instance again by itself after seven days ("Stopping an Amazon RDS DB instance
temporarily", RDS User Guide): with a start schedule on weekdays only, or an instance stopped by hand for
longer, it comes back up on the seventh day and runs until the next evening stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.scheduler_schedule import (
    SchedulerSchedule,
    SchedulerScheduleFlexibleTimeWindow,
    SchedulerScheduleTarget,
    SchedulerScheduleTargetRetryPolicy,
)
from constructs import Construct

from deepsentinel.settings import PlatformSettings

RDS_ACTIONS = {"night-stop": "stopDBInstance", "morning-start": "startDBInstance"}
# A call RDS refuses because the instance is not in the right state (already stopped, still starting) will not
# succeed on a retry hours later; a few retries within the hour cover throttling and transient errors.
RETRY_ATTEMPTS = 3
MAX_EVENT_AGE_SECONDS = 3600


def universal_target_arn(action: str) -> str:
    return f"arn:aws:scheduler:::aws-sdk:rds:{action}"


@dataclass(frozen=True, kw_only=True)
class DbNightStopProps:
    settings: PlatformSettings
    db_instance_identifier: str
    scheduler_role_arn: str  # assumable by scheduler.amazonaws.com; rds:StopDBInstance/StartDBInstance on the DB
    kms_key_arn: str  # encrypts the schedules, like the ECR cleanup schedule


class DbNightStop(Construct):
    schedule_names: dict[str, str]  # night-stop, morning-start

    def __init__(self, scope: Construct, id_: str, *, props: DbNightStopProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        expressions = {"night-stop": s.db_stop_schedule, "morning-start": s.db_start_schedule}
        self.schedule_names = {}
        for purpose, action in RDS_ACTIONS.items():
            schedule = SchedulerSchedule(
                self,
                f"{purpose}-schedule",
                name=s.name("db", purpose),
                kms_key_arn=props.kms_key_arn,
                description=f"{action} of {s.name('postgres')} (db_night_stop)",
                schedule_expression=expressions[purpose],
                schedule_expression_timezone=s.schedule_timezone,
                flexible_time_window=SchedulerScheduleFlexibleTimeWindow(mode="OFF"),
                target=SchedulerScheduleTarget(
                    arn=universal_target_arn(action),
                    role_arn=props.scheduler_role_arn,
                    # The request in the AWS SDK's JSON casing (DbInstanceIdentifier), which the universal target
                    # validates against; the RDS Query API page spells it DBInstanceIdentifier.
                    input=json.dumps({"DbInstanceIdentifier": props.db_instance_identifier}),
                    retry_policy=SchedulerScheduleTargetRetryPolicy(
                        maximum_retry_attempts=RETRY_ATTEMPTS, maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS
                    ),
                ),
            )
            self.schedule_names[purpose] = schedule.name
