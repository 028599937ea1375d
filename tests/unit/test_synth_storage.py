"""Storage module: five private encrypted buckets with their retention, RDS PostgreSQL 16, secrets."""

from __future__ import annotations

import json

from tests.unit.synth_helpers import of_type, only, policy, ref

PURPOSES = ("raw-videos", "thumbnails", "highlights", "terraform-state", "analysis-models")


def buckets(document):
    return {c["tags"]["Purpose"]: ref("aws_s3_bucket", n) for n, c in of_type(document, "aws_s3_bucket").items()}


def per_bucket(document, resource_type, bucket_attribute="bucket"):
    by_ref = {v: k for k, v in buckets(document).items()}
    return {by_ref[c[bucket_attribute]]: c for c in of_type(document, resource_type).values()}


def test_five_buckets_each_encrypted_private_tls_only(platform):
    doc = platform.dev
    assert set(buckets(doc)) == set(PURPOSES)
    encryption = per_bucket(doc, "aws_s3_bucket_server_side_encryption_configuration")
    blocks = per_bucket(doc, "aws_s3_bucket_public_access_block")
    policies = per_bucket(doc, "aws_s3_bucket_policy")
    for purpose in PURPOSES:
        rule = encryption[purpose]["rule"][0]["apply_server_side_encryption_by_default"]
        assert rule["sse_algorithm"] == "aws:kms", purpose
        assert all(blocks[purpose][k] is True for k in ("block_public_acls", "block_public_policy",
                                                        "ignore_public_acls", "restrict_public_buckets"))
        statement = policy(policies[purpose])["Statement"][0]
        assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_lifecycle_rules_per_bucket(platform):
    rules = {p: c["rule"][0] for p, c in per_bucket(platform.dev, "aws_s3_bucket_lifecycle_configuration").items()}
    assert set(rules) == set(PURPOSES)
    for purpose, rule in rules.items():
        assert rule["status"] == "Enabled"
        assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 7}], purpose
    assert rules["raw-videos"]["transition"] == [{"days": 30, "storage_class": "GLACIER"}]
    assert "expiration" not in rules["raw-videos"]
    assert rules["thumbnails"]["expiration"] == [{"days": 90}]
    for kept in ("highlights", "terraform-state", "analysis-models"):
        assert "expiration" not in rules[kept] and "transition" not in rules[kept], kept


def test_versioning_where_it_matters(platform):
    versioned = {p for p, c in per_bucket(platform.dev, "aws_s3_bucket_versioning").items()
                 if c["versioning_configuration"]["status"] == "Enabled"}
    assert versioned == {"raw-videos", "thumbnails", "highlights", "terraform-state", "analysis-models"}


def test_rds_postgres16_encrypted_backed_up_in_private_subnets(platform):
    doc = platform.dev
    _, db = only(doc, "aws_db_instance")
    assert (db["engine"], db["engine_version"], db["instance_class"]) == ("postgres", "16", "db.t3.micro")
    assert db["storage_encrypted"] is True and db["storage_type"] == "gp3"
    assert (db["allocated_storage"], db["max_allocated_storage"]) == (20, 100)
    assert db["backup_retention_period"] == 7 and db["publicly_accessible"] is False
    # In the hours the night stop lets dev's instance run (settings: test_database_windows_fall_in_the_hours...).
    assert (db["backup_window"], db["maintenance_window"]) == ("03:00-03:30", "wed:04:00-wed:04:30")
    assert db["manage_master_user_password"] is True and "password" not in db
    subnet_group_name, subnet_group = only(doc, "aws_db_subnet_group")
    assert db["db_subnet_group_name"] == ref("aws_db_subnet_group", subnet_group_name, "name")
    private = {ref("aws_subnet", n) for n, s in of_type(doc, "aws_subnet").items() if s["tags"]["Tier"] == "private"}
    assert set(subnet_group["subnet_ids"]) == private
    _, parameters = only(doc, "aws_db_parameter_group")
    assert parameters["family"] == "postgres16"


def test_prod_database_is_multi_az_and_protected(platform):
    _, dev_db = only(platform.dev, "aws_db_instance")
    _, prod_db = only(platform.prod, "aws_db_instance")
    assert (dev_db["multi_az"], dev_db["deletion_protection"]) == (False, False)
    assert (prod_db["multi_az"], prod_db["deletion_protection"]) == (True, True)
    assert prod_db["skip_final_snapshot"] is False and prod_db["final_snapshot_identifier"]


def test_django_secret_is_generated_ephemerally_and_written_write_only(platform):
    """No data source (Terraform stores a data source's result in the state: "Data sources", Terraform
    language) generates the key: an ephemeral resource does ("Ephemeral resources": never persisted in plan
    or state), and only a write-only argument reads it ("Use temporary write-only arguments": ephemeral values
    are accepted only there). The live platform run checks the deployed state holds no trace of the key."""
    for document in (platform.dev, platform.prod):
        _, secret = only(document, "aws_secretsmanager_secret")
        assert secret["name"].endswith("-django-secret-key")
        assert "aws_secretsmanager_random_password" not in document.get("data", {})
        (name, generator), = document["ephemeral"]["aws_secretsmanager_random_password"].items()
        assert generator["password_length"] >= 50  # Django's check: SECRET_KEY of at least 50 characters
        _, version = only(document, "aws_secretsmanager_secret_version")
        assert "secret_string" not in version
        assert version["secret_string_wo"] == f"${{ephemeral.aws_secretsmanager_random_password.{name}.random_password}}"
        # The reference appears nowhere but in the write-only argument.
        assert json.dumps(document).count(f"aws_secretsmanager_random_password.{name}.") == 1
