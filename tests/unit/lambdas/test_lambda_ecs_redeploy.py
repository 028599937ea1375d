"""ecs_redeploy: a rotation of the database secret restarts the ECS services (moto ECS and RDS)."""

from __future__ import annotations

import pytest

from lambda_testkit import ACCOUNT_ID, REGION
from tests.aws_events import rotation_succeeded

FUNCTION = "ecs_redeploy"
DB_INSTANCE = "deepsentinel-dev-postgres"
# an RDS-managed secret's ARN as RDS names them (`rds!db-<uuid>`), of another instance
OTHER_SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:rds!db-0123abcd-4567-89ef-aaaa-bbbbccccdddd-AbCdEf"


def rotation_event(secret_arn: str, event_name: str = "RotationSucceeded") -> dict:
    """Secrets Manager's rotation event as EventBridge delivers it: the documented sample
    (tests/fixtures/aws_events/README.md names the page and why this shape) for `secret_arn`."""
    return rotation_succeeded(secret_arn=secret_arn, event_name=event_name)


@pytest.fixture
def database(boto_client):
    """The instance, with its master password managed by RDS: moto creates the `rds!db-...` secret and answers
    DescribeDBInstances with its MasterUserSecret ("MasterUserSecret", Amazon RDS API Reference)."""
    rds = boto_client("rds")
    rds.create_db_instance(DBInstanceIdentifier=DB_INSTANCE, Engine="postgres", DBInstanceClass="db.t4g.micro",
                           MasterUsername="deepsentinel", ManageMasterUserPassword=True, AllocatedStorage=20)
    return rds


@pytest.fixture
def secret(database) -> str:
    """The instance's master secret ARN, as RDS reports it."""
    (instance,) = database.describe_db_instances(DBInstanceIdentifier=DB_INSTANCE)["DBInstances"]
    return instance["MasterUserSecret"]["SecretArn"]


@pytest.fixture
def cluster(boto_client):
    ecs = boto_client("ecs")
    ecs.create_cluster(clusterName="deepsentinel-dev-cluster")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    for name in ("deepsentinel-dev-frontend", "deepsentinel-dev-backend"):
        ecs.create_service(cluster="deepsentinel-dev-cluster", serviceName=name, taskDefinition="web", desiredCount=1)
    return ecs


@pytest.fixture
def updates(cluster, monkeypatch):
    """UpdateService requests that reached moto (moto keeps no deployment history to read back)."""
    calls = []
    original = cluster.update_service

    def recording_update(**kwargs):
        response = original(**kwargs)
        calls.append((kwargs["service"], kwargs["forceNewDeployment"]))
        return response

    monkeypatch.setattr(cluster, "update_service", recording_update)
    return calls


def settings(handler_module, **overrides):
    env = {"CLUSTER": "deepsentinel-dev-cluster", "SERVICES": "deepsentinel-dev-frontend,deepsentinel-dev-backend",
           "DB_INSTANCE": DB_INSTANCE, **overrides}
    return handler_module.Settings.from_env(env)


def test_a_rotation_forces_a_new_deployment_of_every_service(handler_module, cluster, database, secret, updates):
    result = handler_module.process_event(rotation_event(secret), ecs=cluster, rds=database,
                                          settings=settings(handler_module))
    assert result["restarted"] == ["deepsentinel-dev-frontend", "deepsentinel-dev-backend"]
    assert updates == [("deepsentinel-dev-frontend", True), ("deepsentinel-dev-backend", True)]


def test_other_secrets_and_other_events_are_ignored(handler_module, cluster, database, secret, updates):
    s = settings(handler_module)
    other = handler_module.process_event(rotation_event(OTHER_SECRET_ARN), ecs=cluster, rds=database, settings=s)
    started = handler_module.process_event(rotation_event(secret, event_name="RotationStarted"), ecs=cluster,
                                           rds=database, settings=s)
    assert other["outcome"] == started["outcome"] == "ignored" and updates == []


def test_the_secret_is_also_read_from_service_event_details(handler_module, cluster, database, secret, updates):
    """Not documented: the shape public code reports for RDS-managed secrets (tests/fixtures/aws_events/README.md),
    which the rule also matches; another secret in that place is still ignored."""
    def reported(secret_arn):
        event = rotation_event(secret_arn)
        del event["detail"]["additionalEventData"]
        event["detail"]["serviceEventDetails"] = {"secretId": secret_arn}
        return event

    s = settings(handler_module)
    assert handler_module.process_event(reported(OTHER_SECRET_ARN), ecs=cluster, rds=database,
                                        settings=s)["outcome"] == "ignored"
    assert handler_module.process_event(reported(secret), ecs=cluster, rds=database,
                                        settings=s)["outcome"] == "restarted"
    assert updates == [("deepsentinel-dev-frontend", True), ("deepsentinel-dev-backend", True)]


def test_an_instance_it_cannot_read_fails_the_invocation_and_restarts_nothing(handler_module, cluster, database,
                                                                              secret, updates):
    """DescribeDBInstances of an unknown identifier is DBInstanceNotFound: the invocation raises (EventBridge tries
    again, the errors alarm sees it) rather than ignoring a rotation it cannot judge."""
    s = settings(handler_module, DB_INSTANCE="deepsentinel-dev-gone")
    with pytest.raises(handler_module.RedeployError, match="deepsentinel-dev-gone.*DBInstanceNotFound"):
        handler_module.process_event(rotation_event(secret), ecs=cluster, rds=database, settings=s)
    assert updates == []


def test_a_missing_service_fails_the_invocation_after_restarting_the_rest(handler_module, cluster, database, secret,
                                                                          updates):
    s = settings(handler_module, SERVICES="deepsentinel-dev-gone,deepsentinel-dev-backend")
    with pytest.raises(handler_module.RedeployError, match="deepsentinel-dev-gone"):
        handler_module.process_event(rotation_event(secret), ecs=cluster, rds=database, settings=s)
    assert updates == [("deepsentinel-dev-backend", True)]


def test_missing_environment_names_the_variables(handler_module):
    with pytest.raises(ValueError, match="CLUSTER, SERVICES, DB_INSTANCE"):
        handler_module.Settings.from_env({})


def test_the_handler_uses_the_environment(handler_module, cluster, secret, monkeypatch, lambda_context):
    """The deployed function's environment names (pipeline construct): CLUSTER, SERVICES, DB_INSTANCE."""
    monkeypatch.setenv("CLUSTER", "deepsentinel-dev-cluster")
    monkeypatch.setenv("SERVICES", "deepsentinel-dev-backend")
    monkeypatch.setenv("DB_INSTANCE", DB_INSTANCE)
    assert handler_module.handler(rotation_event(secret), lambda_context)["restarted"] == ["deepsentinel-dev-backend"]
