"""Storage module on network + security: five buckets, RDS PostgreSQL 16, secrets."""

from __future__ import annotations

import pytest

from deepsentinel.constructs.buckets import BUCKETS, bucket_specs
from tests.live.aws_checks import (assert_s3_bucket_exists, get_address_of_rds_instance, get_rds_instance_details,
                                   get_s3_bucket_encryption_algorithm, get_s3_bucket_lifecycle_rules,
                                   get_s3_bucket_policy, get_s3_bucket_public_access_block,
                                   get_s3_bucket_versioning, get_secret)

pytestmark = pytest.mark.live

SPECS = {spec.purpose: spec for spec in BUCKETS}


@pytest.mark.parametrize("purpose", sorted(SPECS))
def test_bucket_is_encrypted_private_and_tls_only(storage_live, purpose):
    d = storage_live
    bucket = d.outputs["bucket_names"][purpose]
    assert_s3_bucket_exists(d.clients, bucket)
    assert get_s3_bucket_encryption_algorithm(d.clients, bucket) == "aws:kms"
    assert set(get_s3_bucket_public_access_block(d.clients, bucket).values()) == {True}
    deny = get_s3_bucket_policy(d.clients, bucket)["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("purpose", sorted(SPECS))
def test_bucket_versioning_and_lifecycle(storage_live, purpose):
    d = storage_live
    spec = {s.purpose: s for s in bucket_specs(d.settings)}[purpose]  # the raw videos' days are settings
    bucket = d.outputs["bucket_names"][purpose]
    assert get_s3_bucket_versioning(d.clients, bucket) == ("Enabled" if spec.versioned else None)
    (rule,) = get_s3_bucket_lifecycle_rules(d.clients, bucket)
    assert rule["Status"] == "Enabled" and rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    if spec.glacier_after_days is not None:
        assert rule["Transitions"] == [{"Days": spec.glacier_after_days, "StorageClass": "GLACIER"}]
    if spec.expire_after_days is not None:
        assert rule["Expiration"]["Days"] == spec.expire_after_days
    if spec.glacier_after_days is None and spec.expire_after_days is None:
        assert "Expiration" not in rule and not rule.get("Transitions")  # kept


def test_rds_is_postgres_16_encrypted_private_with_backups(storage_live):
    d = storage_live
    identifier = d.outputs["db_instance_identifier"]
    db = get_rds_instance_details(d.clients, identifier)
    assert db["Engine"] == "postgres" and db["EngineVersion"].startswith("16")
    assert db["DBInstanceClass"] == d.settings.db_instance_class
    assert db["StorageEncrypted"] is True and db["PubliclyAccessible"] is False
    assert db["BackupRetentionPeriod"] == d.settings.db_backup_retention_days
    assert db["MultiAZ"] is d.settings.db_multi_az
    assert db["DBParameterGroups"][0]["DBParameterGroupName"] == d.settings.name("postgres16")
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [d.outputs["rds_security_group_id"]]
    assert get_address_of_rds_instance(d.clients, identifier) == d.outputs["db_host"]


def test_the_database_secret_exists(storage_live):
    """The RDS-managed master secret (the Django key is the account stack's: tests/live/test_platform.py)."""
    d = storage_live
    assert get_secret(d.clients, d.outputs["db_secret_arn"])["ARN"] == d.outputs["db_secret_arn"]


@pytest.mark.while_destroying  # the plan's outcome is kept: waiting for it never holds up the other checks
def test_second_plan_has_no_changes(storage_live):
    d = storage_live.wait_planned()
    assert d.second_plan_has_changes is False, d.second_plan_output


@pytest.mark.live_destroy
def test_destroy_leaves_nothing_of_the_project(storage_live):
    assert storage_live.destroy().leftovers == []
