"""Storage module: five private encrypted buckets with their retention, RDS PostgreSQL 16; the Django key's secret
(the account stack's) and its lookup."""

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


def test_django_secret_is_the_account_stacks_generated_ephemerally_and_written_write_only(platform):
    """No data source (Terraform stores a data source's result in the state: "Data sources", Terraform
    language) generates the key: an ephemeral resource does ("Ephemeral resources": never persisted in plan
    or state), and only a write-only argument reads it ("Use temporary write-only arguments": ephemeral values
    are accepted only there). It is the account stack's, one per environment: opening the ephemeral calls
    GetRandomPassword and refreshing a secret version GetSecretValue, neither of which an environment's plan
    identities may do (tests/unit/test_recorded_terraform_calls.py). No kms_key_id: Secrets Manager then uses the
    AWS managed key aws/secretsmanager ("CreateSecret", Secrets Manager API Reference, KmsKeyId). The live platform
    run checks that neither the account's nor the environment's state holds the key."""
    account = platform.documents["deepsentinel-account"]
    assert "aws_secretsmanager_random_password" not in account.get("data", {})
    secrets = {f"aws_secretsmanager_secret.{n}": c for n, c in of_type(account, "aws_secretsmanager_secret").items()}
    assert sorted(c["name"] for c in secrets.values()) == ["deepsentinel/dev/django-secret-key",
                                                            "deepsentinel/prod/django-secret-key"]
    for secret in secrets.values():
        # Outlives the environments: not named like what an environment's destroy removes ({project}-{env}-*).
        assert not secret["name"].startswith(("deepsentinel-dev", "deepsentinel-prod"))
        assert "kms_key_id" not in secret and secret["recovery_window_in_days"] == 7
    generators = account["ephemeral"]["aws_secretsmanager_random_password"]
    assert len(generators) == 2
    versions = of_type(account, "aws_secretsmanager_secret_version").values()
    written = {}
    for version in versions:
        assert "secret_string" not in version and version["secret_string_wo_version"] == 1
        secret = secrets[version["secret_id"].removeprefix("${").removesuffix(".id}")]
        written[secret["name"].split("/")[1]] = version["secret_string_wo"]
    assert set(written) == {"dev", "prod"}
    for env, reference in written.items():
        (name,) = [n for n in generators if reference == f"${{ephemeral.aws_secretsmanager_random_password.{n}"
                                                            ".random_password}"]
        assert generators[name]["password_length"] >= 50  # Django's check: SECRET_KEY of at least 50 characters
        # The reference appears nowhere but in the write-only argument.
        assert json.dumps(account).count(f"aws_secretsmanager_random_password.{name}.") == 1
    assert len(set(written.values())) == 2  # a key of its own for each environment


def test_the_environment_looks_its_django_secret_up_and_never_generates_or_reads_it(platform):
    """The environment names the account stack's secret by name with the `aws_secretsmanager_secret` data source
    (metadata only; the value would be `aws_secretsmanager_secret_version`'s, AWS provider docs): no ephemeral
    resource, no secret or secret version of its own."""
    for env, document in (("dev", platform.dev), ("prod", platform.prod)):
        assert "ephemeral" not in document
        assert of_type(document, "aws_secretsmanager_secret") == {}
        assert of_type(document, "aws_secretsmanager_secret_version") == {}
        assert "aws_secretsmanager_secret_version" not in document.get("data", {})
        (lookup,) = document["data"]["aws_secretsmanager_secret"].values()
        assert lookup["name"] == f"deepsentinel/{env}/django-secret-key" and set(lookup) == {"//", "name"}

def test_raw_video_retention_settings_drive_the_raw_buckets_lifecycle(tmp_path):
    """The raw bucket's rule takes its transition and expiration days from the settings (0 days: the Glacier move
    on the first day, which S3 allows for GLACIER: "Transition", Amazon S3 API Reference); the other buckets keep
    theirs. Two environments' storage modules in one small stack, synthesized once."""
    from cdktf import App, TerraformStack
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    from deepsentinel.constructs.storage import Storage, StorageProps
    from deepsentinel.settings import load_settings
    from deepsentinel.synthesized import load

    variants = {"archived-then-deleted": ["raw_video_glacier_after_days=0", "raw_video_retention_days=365"],
                "deleted-never-archived": ["raw_video_glacier_after_days=none", "raw_video_retention_days=7"]}
    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "retention")
    AwsProvider(stack, "aws", region="ap-northeast-2")
    for variant, overrides in variants.items():
        Storage(stack, variant, props=StorageProps(
            settings=load_settings("dev", overrides=overrides), private_subnet_ids=["subnet-a", "subnet-c"],
            rds_security_group_id="sg-rds", kms_key_arn="arn:aws:kms:ap-northeast-2:111122223333:key/example"))
    app.synth()
    document = load(tmp_path / "stacks" / "retention" / "cdk.tf.json")
    rules: dict[str, dict[str, dict]] = {variant: {} for variant in variants}
    for name, config in of_type(document, "aws_s3_bucket_lifecycle_configuration").items():
        variant = next(v for v in variants if name.startswith(f"{v}_"))
        rules[variant][config["rule"][0]["id"].removesuffix("-retention")] = config["rule"][0]
    archived, deleted = rules["archived-then-deleted"], rules["deleted-never-archived"]
    assert archived["raw-videos"]["transition"] == [{"days": 0, "storage_class": "GLACIER"}]
    assert archived["raw-videos"]["expiration"] == [{"days": 365}]
    assert "transition" not in deleted["raw-videos"] and deleted["raw-videos"]["expiration"] == [{"days": 7}]
    for variant in (archived, deleted):
        assert variant["thumbnails"]["expiration"] == [{"days": 90}] and "transition" not in variant["thumbnails"]
        assert variant["raw-videos"]["noncurrent_version_expiration"] == [{"noncurrent_days": 90}]
